"""Orders and fills: the records every broker, trader and journal speaks (DESIGN.md §7).

An :class:`Order` moves through the statuses of :class:`OrderStatus` along the written table
:data:`TRANSITIONS`, checked in one place (:func:`check_transition`); an impossible change
(a filled order cancelled, a rejected order filled) raises :class:`OrderStateError`, it is
never logged and ignored. A :class:`Fill` is one execution (one trade id) of one order:
partial fills are several fills of one order.

Client order ids are ours, not the exchange's: :func:`client_order_id` derives a short,
deterministic id from (trader, bar time, symbol, leg), so the same decision always produces
the same id and a retried create can be recognised (idempotency, issue 12).

The simulation reads resting orders as structured records (:data:`RESTING_DTYPE`, int
constants for side and type) so the event-skipping search stays in nopython mode.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import check_instance
from core_engine.errors import ConfigError, OrderStateError

__all__ = [
    "FINAL_STATUSES",
    "RESTING_DTYPE",
    "TRANSITIONS",
    "Fill",
    "FollowUp",
    "Order",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "check_transition",
    "client_order_id",
]


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """``market`` fills at the next open; ``limit`` at its price or better; ``stop`` is a
    stop-market order: it becomes a market order once the price reaches the stop."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class OrderStatus(StrEnum):
    NEW = "new"                            # built, not yet sent
    SUBMITTED = "submitted"                # acknowledged by the broker, resting or in flight
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"                # by us, by an OCO sibling, or expired (IOC)
    REJECTED = "rejected"                  # refused by the broker, or found never placed
    UNKNOWN = "unknown"                    # a create/cancel whose outcome we do not know yet


S = OrderStatus
#: The allowed status changes. ``unknown`` is where a create or cancel goes when the network
#: failed; a lookup by client id then moves it to what the broker says (``rejected`` when the
#: order was never placed). Final statuses allow nothing.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.NEW: frozenset({S.SUBMITTED, S.REJECTED, S.UNKNOWN}),
    S.SUBMITTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.UNKNOWN}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.UNKNOWN}),
    S.UNKNOWN: frozenset({S.UNKNOWN, S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED,
                          S.REJECTED}),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}
FINAL_STATUSES = frozenset({S.FILLED, S.CANCELLED, S.REJECTED})
del S


def check_transition(old: OrderStatus, new: OrderStatus, client_id: str = "?") -> None:
    """Raise :class:`OrderStateError` unless ``old -> new`` is in :data:`TRANSITIONS`."""
    if type(old) is not OrderStatus or type(new) is not OrderStatus:  # the common case skips this
        old = _enum(OrderStatus, old, "old", "check_transition")
        new = _enum(OrderStatus, new, "new", "check_transition")
    if new not in TRANSITIONS[old]:
        allowed = sorted(s.value for s in TRANSITIONS[old]) or "nothing (final)"
        raise OrderStateError(
            f"Order {client_id!r} cannot go from '{old.value}' to '{new.value}'; from "
            f"'{old.value}' it may go to {allowed}."
        )


# int codes of the simulation's records
SIDE_CODE = {OrderSide.BUY: 0, OrderSide.SELL: 1}
TYPE_CODE = {OrderType.MARKET: 0, OrderType.LIMIT: 1, OrderType.STOP: 2}
TIF_VALUES = ("gtc", "ioc")

#: A resting order as the event-skipping search reads it. ``level`` is the limit or stop
#: price (NaN for a trailing-only stop), ``target`` the limit price of an OCO sibling
#: evaluated with a stop (NaN if none), ``highest`` the trail's reference so far.
RESTING_DTYPE = np.dtype([
    ("col", np.int64),
    ("side", np.int8),
    ("kind", np.int8),
    ("level", np.float64),
    ("target", np.float64),
    ("trail_frac", np.float64),
    ("trail_dist", np.float64),
    ("highest", np.float64),
])


def client_order_id(trader_id: str, bar_time: Any, symbol: str, leg: str, *,
                    prefix: str = "ce", length: int = 32) -> str:
    """A deterministic client order id for one leg of one decision.

    The same ``(trader_id, bar_time, symbol, leg)`` always gives the same id, so a decision
    replayed after a restart produces the same ids and a duplicate create is recognised.
    The id is ``prefix`` plus hex digits of a SHA-256, ``length`` characters in all (within
    Binance's 36 and Kraken's limits; letters, digits only).

    Examples
    --------
    >>> cid = client_order_id("rank-1", "2021-01-01 02:00", "BTC/USDT", "entry")
    >>> len(cid), cid == client_order_id("rank-1", "2021-01-01T02:00Z", "BTC/USDT", "entry")
    (32, True)
    """
    for name, text in (("trader_id", trader_id), ("symbol", symbol), ("leg", leg),
                       ("prefix", prefix)):
        if type(text) is not str:
            check_instance(text, str, name, "client_order_id", expected="a string")
    if not isinstance(length, int) or not len(prefix) < length <= 36:
        raise ConfigError(f"The 'length' of a client order id must be in ({len(prefix)}, 36]. "
                          f"Got {length!r}.")
    if isinstance(bar_time, pd.Timestamp) and bar_time.tzinfo is not None:
        value = bar_time.value  # an aware time: its instant (the common case, fast)
    else:
        value = _instant(bar_time)
    text = "\x1f".join((str(trader_id), str(value), str(symbol), str(leg)))
    return prefix + hashlib.sha256(text.encode()).hexdigest()[: length - len(prefix)]


def _instant(bar_time: Any) -> int:
    """``bar_time`` (a time, text or epoch nanoseconds) as UTC nanoseconds, or ConfigError."""
    if not isinstance(bar_time, bool):
        try:
            stamp = pd.Timestamp(bar_time)
            if stamp is not pd.NaT:
                stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
                return int(stamp.value)
        except (TypeError, ValueError, OverflowError):  # pandas' parse and bounds errors
            pass
    raise ConfigError("The 'bar_time' parameter of client_order_id must be a time (a "
                      "pandas.Timestamp, an ISO string or epoch nanoseconds). "
                      f"Got {type(bar_time).__name__} {bar_time!r:.80}.")


def _positive(owner: str, name: str, value: Any, *, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if type(value) is float and 0.0 < value < math.inf:  # the common case, fast
        return value
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(value) and value > 0)
    if not ok:
        raise ConfigError(f"The '{name}' of {owner} must be a positive finite number. "
                          f"Got {value!r}.")
    return float(value)


@keyword_checked
@dataclass(frozen=True)
class FollowUp:
    """The order to place once an order has filled completely (one-triggers-the-other).

    The follow-up is on the opposite side, for the filled quantity, of ``type`` at ``price``
    (Binance's OTO order lists and Kraken's conditional close do the same on the exchange).
    With ``repeat``, its own follow-up is the first order again (same type and price, the
    same quantity), and so on until one of them is cancelled: a grid level that buys low,
    sells high and buys again. A partly filled order that is cancelled has no follow-up.
    Follow-ups rest until they fill or are cancelled (``time_in_force="gtc"``), whatever
    the filled order's: the take-profit of an IOC entry is not cancelled at once.

    :class:`~core_engine.trading.trader.Context` places it when it hands the fill over,
    before ``on_fill`` (with the client id ``client_order_id(trader, 0, symbol,
    "then:" + the filled order's id)``: it depends on the filled order alone), so a replay,
    a paper runner and a live runner place it alike, and a restart that hands the fill
    again sends nothing twice.

    Parameters
    ----------
    price : float, optional
        The limit (``limit``) or stop (``stop``) price; none for ``market``.
    type : {"limit", "stop", "market"}
    repeat : bool
        Alternate between the two orders for as long as they fill.

    Examples
    --------
    >>> FollowUp(price=105.0, repeat=True)
    FollowUp(price=105.0, type='limit', repeat=True)
    """

    price: float | None = None
    type: str = "limit"
    repeat: bool = False

    def __post_init__(self) -> None:
        if self.type not in ("limit", "stop", "market"):
            raise ConfigError("The 'type' of a FollowUp must be 'limit', 'stop' or 'market'. "
                              f"Got {self.type!r}.")
        if self.type == "market":
            if self.price is not None:
                raise ConfigError(f"A market FollowUp takes no 'price'. Got {self.price!r}.")
        else:
            object.__setattr__(self, "price", _positive("FollowUp", "price", self.price,
                                                        allow_none=False))
        if not isinstance(self.repeat, (bool, np.bool_)):
            raise ConfigError(f"The 'repeat' of a FollowUp must be True or False. Got "
                              f"{self.repeat!r}.")
        object.__setattr__(self, "repeat", bool(self.repeat))

    def to_record(self) -> dict:
        return {"price": self.price, "type": self.type, "repeat": self.repeat}

    @classmethod
    def from_record(cls, record: Any) -> FollowUp | None:
        """The follow-up of a journaled order (``None`` stays ``None``)."""
        return None if record is None else cls(**record)


@keyword_checked
@dataclass(eq=False)
class Order:
    """One order and its state.

    Parameters
    ----------
    client_id : str
        Our id (see :func:`client_order_id`); unique per broker.
    symbol : str
        ``"BTC/USDT"``.
    side : {"buy", "sell"}
    type : {"market", "limit", "stop"}
    quantity : float, optional
        Base-asset quantity. Give ``quantity`` or ``quote_quantity``, not both.
    quote_quantity : float, optional
        For buys: the quote value to trade, the fee on top (Binance ``quoteOrderQty``); the
        quantity is set at the first fill (limit orders: at placement, from the limit).
    lot_step : float, optional
        A quote-amount order's quantity is rounded down to a multiple of it.
    min_value : float, optional
        A quote-amount order whose rounded value is below it is rejected (the exchange's
        minimum notional).
    limit_price : float, optional
        Required for ``limit`` orders.
    stop_price : float, optional
        The trigger of a ``stop`` order. May be omitted for a pure trailing stop.
    trail_pct, trail_offset : float, optional
        Trailing stop (sell stops only): the stop in force is the higher of ``stop_price``
        and ``highest × (1 − trail_pct/100) − trail_offset``, where ``highest`` starts at
        ``trail_reference`` and rises with the high of every finished candle (the backtest
        rule: the trail never knows the high of the candle it is checked on).
    trail_reference : float, optional
        Start of ``highest`` (usually the entry fill); required with a trail.
    time_in_force : {"gtc", "ioc"}
        ``ioc``: what does not fill on the first candle it meets is cancelled.
    group : str, optional
        One-cancels-the-other group: when an order of the group fills completely, the
        broker cancels the group's other open orders. A stop and a limit sell in one group
        are matched together with the backtest's rule (stop first on an ambiguous candle).
    tag : str
        The leg (``"entry"``, ``"stop"``, ``"target"``, ``"exit"``, ...), free text.
    meta : dict
        Free information kept with the order (decision time, rank, score, ...).
    then : FollowUp, optional
        The order to place once this one has filled completely (see :class:`FollowUp`).

    Attributes
    ----------
    status : OrderStatus
    filled_quantity, average_price, fees : float
    created_at, updated_at : pandas.Timestamp or None
    reason : str or None
        Why it was rejected or cancelled, or how a closing sell was triggered.
    """

    client_id: str
    symbol: str
    side: OrderSide
    type: OrderType = OrderType.MARKET
    quantity: float | None = None
    quote_quantity: float | None = None
    lot_step: float | None = None
    min_value: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    trail_pct: float | None = None
    trail_offset: float | None = None
    trail_reference: float | None = None
    time_in_force: str = "gtc"
    group: str | None = None
    tag: str = ""
    meta: dict = field(default_factory=dict)
    status: OrderStatus = OrderStatus.NEW
    filled_quantity: float = 0.0
    average_price: float = math.nan
    fees: float = 0.0
    created_at: pd.Timestamp | None = None
    updated_at: pd.Timestamp | None = None
    reason: str | None = None
    exchange_id: str | None = None
    then: FollowUp | None = None

    def __post_init__(self) -> None:
        owner = f"order {self.client_id!r}"
        if not isinstance(self.client_id, str) or not self.client_id:
            raise ConfigError(f"An order needs a non-empty string client_id. Got {self.client_id!r}.")
        if not isinstance(self.symbol, str) or not self.symbol:
            raise ConfigError(f"The 'symbol' of {owner} must be a non-empty string. Got {self.symbol!r}.")
        # (the common cases test inline: an order is built per event of a replay)
        if type(self.side) is not OrderSide:
            self.side = _enum(OrderSide, self.side, "side", owner)
        if type(self.type) is not OrderType:
            self.type = _enum(OrderType, self.type, "type", owner)
        if type(self.status) is not OrderStatus:
            self.status = _enum(OrderStatus, self.status, "status", owner)
        if (self.quantity is None) == (self.quote_quantity is None):
            raise ConfigError(f"{owner} needs exactly one of 'quantity' and 'quote_quantity'. "
                              f"Got quantity={self.quantity!r}, quote_quantity={self.quote_quantity!r}.")
        self.quantity = _positive(owner, "quantity", self.quantity)
        self.quote_quantity = _positive(owner, "quote_quantity", self.quote_quantity)
        if self.quote_quantity is not None and self.side is not OrderSide.BUY:
            raise ConfigError(f"{owner}: 'quote_quantity' is for buys; give a sell its 'quantity'.")
        if self.limit_price is not None:
            self.limit_price = _positive(owner, "limit_price", self.limit_price)
        if self.stop_price is not None:
            self.stop_price = _positive(owner, "stop_price", self.stop_price)
        if self.trail_pct is not None:
            self.trail_pct = _positive(owner, "trail_pct", self.trail_pct)
        if self.trail_offset is not None:
            self.trail_offset = _positive(owner, "trail_offset", self.trail_offset)
        if self.trail_reference is not None:
            self.trail_reference = _positive(owner, "trail_reference", self.trail_reference)
        if self.lot_step is not None:
            self.lot_step = _positive(owner, "lot_step", self.lot_step)
        if self.type is OrderType.LIMIT and self.limit_price is None:
            raise ConfigError(f"{owner} is a limit order without a 'limit_price'.")
        if self.type is not OrderType.LIMIT and self.limit_price is not None:
            raise ConfigError(f"{owner}: 'limit_price' is only for limit orders. Got type "
                              f"{self.type.value!r}.")
        trailing = self.trail_pct is not None or self.trail_offset is not None
        if self.type is OrderType.STOP:
            if self.stop_price is None and not trailing:
                raise ConfigError(f"{owner} is a stop order without 'stop_price' or a trail.")
            if trailing and self.side is not OrderSide.SELL:
                raise ConfigError(f"{owner}: trailing stops are sell orders (long positions).")
            if trailing and self.trail_reference is None:
                raise ConfigError(f"{owner}: a trailing stop needs 'trail_reference', the price "
                                  "its highest starts from (usually the entry fill).")
        elif self.stop_price is not None or trailing:
            raise ConfigError(f"{owner}: 'stop_price' and trails are only for stop orders.")
        if self.trail_pct is not None and self.trail_pct >= 100:
            raise ConfigError(f"The 'trail_pct' of {owner} must be below 100. Got {self.trail_pct!r}.")
        if self.min_value is not None and (isinstance(self.min_value, bool) or not isinstance(
                self.min_value, (int, float)) or not math.isfinite(self.min_value)
                or self.min_value < 0):
            raise ConfigError(f"The 'min_value' of {owner} must be a finite number >= 0. "
                              f"Got {self.min_value!r}.")
        if self.time_in_force not in TIF_VALUES:
            raise ConfigError(f"The 'time_in_force' of {owner} must be one of {list(TIF_VALUES)}. "
                              f"Got {self.time_in_force!r}.")
        if self.type is OrderType.LIMIT and self.quote_quantity is not None:
            assert self.limit_price is not None
            self.quantity = self.quote_quantity / self.limit_price
        if self.then is not None and type(self.then) is not FollowUp:
            check_instance(self.then, FollowUp, "then", owner, expected="a FollowUp or None")
        if self.then is not None and self.then.repeat and self.type is OrderType.STOP \
                and self.stop_price is None:
            raise ConfigError(f"{owner}: a trailing stop cannot take a 'then' with repeat "
                              "(the follow-up's own follow-up is a stop at this order's "
                              "stop_price, and it has none). Give it a stop_price, or no "
                              "repeat.")

    # ------------------------------------------------------------------ state
    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_open(self) -> bool:
        """Submitted or partly filled (may still fill)."""
        return self.status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)

    @property
    def remaining(self) -> float:
        """Quantity still to fill (NaN for a quote-amount order before its first fill)."""
        if self.quantity is None:
            return math.nan
        return max(self.quantity - self.filled_quantity, 0.0)

    def transition(self, new: OrderStatus | str, time: Any = None, reason: str | None = None
                   ) -> None:
        """Move to status ``new`` (checked against :data:`TRANSITIONS`)."""
        if type(new) is not OrderStatus:
            new = OrderStatus(new)
        check_transition(self.status, new, self.client_id)
        self.status = new
        if time is not None:
            self.updated_at = time if type(time) is pd.Timestamp else pd.Timestamp(time)
        if reason is not None:
            self.reason = reason

    def apply_fill(self, fill: Fill) -> None:
        """Add one execution: quantity, average price, fees, and the status it implies."""
        if fill.client_id != self.client_id:
            raise OrderStateError(f"Fill {fill.trade_id!r} belongs to order {fill.client_id!r}, "
                                  f"not {self.client_id!r}.")
        if self.quantity is None:
            raise OrderStateError(f"Order {self.client_id!r} has no quantity yet; set it before "
                                  "applying a fill.")
        if fill.quantity > self.remaining * (1 + 1e-9) + 1e-15:
            raise OrderStateError(f"Fill {fill.trade_id!r} of {fill.quantity!r} exceeds the "
                                  f"{self.remaining!r} left on order {self.client_id!r}.")
        total = self.filled_quantity + fill.quantity
        previous = 0.0 if self.filled_quantity == 0 else self.average_price * self.filled_quantity
        self.average_price = (previous + fill.price * fill.quantity) / total
        self.filled_quantity = total
        self.fees += fill.fee
        done = self.remaining <= self.quantity * 1e-12
        self.transition(OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED, fill.time)
        if done:
            self.filled_quantity = self.quantity

    def to_record(self) -> dict:
        """A flat dict (one row of the orders table)."""
        nan = math.nan
        return {
            "client_id": self.client_id, "symbol": self.symbol, "side": self.side.value,
            "type": self.type.value,
            "quantity": nan if self.quantity is None else float(self.quantity),
            "quote_quantity": nan if self.quote_quantity is None else float(self.quote_quantity),
            "limit_price": nan if self.limit_price is None else float(self.limit_price),
            "stop_price": nan if self.stop_price is None else float(self.stop_price),
            "trail_pct": nan if self.trail_pct is None else float(self.trail_pct),
            "trail_offset": nan if self.trail_offset is None else float(self.trail_offset),
            "time_in_force": self.time_in_force,
            "group": self.group, "tag": self.tag, "status": self.status.value,
            "filled_quantity": self.filled_quantity, "average_price": self.average_price,
            "fees": self.fees, "created_at": self.created_at, "updated_at": self.updated_at,
            "reason": self.reason,
        }


@keyword_checked
@dataclass(frozen=True)
class Fill:
    """One execution of one order.

    ``price`` is the price paid or received (slippage included); ``fee`` is in the quote
    currency; ``liquidity`` is ``"maker"`` (a resting limit order filled at its price) or
    ``"taker"``. ``reason`` says what triggered it where the broker knows (the simulation:
    ``market``, ``limit``, ``stop``, ``stop_loss``, ``trailing_stop``, ``take_profit``,
    ``last_close``); ``ambiguous`` marks a stop filled on a candle that also reached its
    OCO target (the stop is assumed first).
    """

    trade_id: str
    client_id: str
    symbol: str
    side: OrderSide
    time: pd.Timestamp
    price: float
    quantity: float
    fee: float
    liquidity: str = "taker"
    reason: str = ""
    ambiguous: bool = False

    def to_record(self) -> dict:
        return {"trade_id": self.trade_id, "client_id": self.client_id, "symbol": self.symbol,
                "side": self.side.value if type(self.side) is OrderSide
                else OrderSide(self.side).value, "time": self.time, "price": self.price,
                "quantity": self.quantity, "fee": self.fee, "liquidity": self.liquidity,
                "reason": self.reason, "ambiguous": self.ambiguous}


def new_fill(trade_id: str, client_id: str, symbol: str, side: OrderSide, time: pd.Timestamp,
             price: float, quantity: float, fee: float, liquidity: str, reason: str,
             ambiguous: bool) -> Fill:
    """``Fill(trade_id=..., ...)`` for a broker's hot path: the same frozen record, set
    without the keyword check of the call and the frozen dataclass's one attribute at a time
    (a fill is built per event of a replay). Fill has no ``__post_init__`` to skip."""
    fill = object.__new__(Fill)
    fill.__dict__.update(trade_id=trade_id, client_id=client_id, symbol=symbol, side=side,
                         time=time, price=price, quantity=quantity, fee=fee,
                         liquidity=liquidity, reason=reason, ambiguous=ambiguous)
    return fill


def _enum(kind: type[Enum], value: Any, name: str, owner: str) -> Any:
    if type(value) is kind:
        return value
    try:
        return kind(value)
    except (ValueError, TypeError):  # TypeError: an unhashable value (a list, a dict)
        raise ConfigError(f"The '{name}' of {owner} must be one of "
                          f"{[m.value for m in kind]}. Got {value!r}.") from None
