"""The Trader contract (event strategies) and the context it acts through (DESIGN.md §7).

A trader is a small object with keyword parameters stored unchanged (as strategies: an
unknown parameter fails with a did-you-mean message, ``get_params``/``clone`` work) and up
to three hooks a user writes:

- ``on_start(ctx)`` once, before the first candle it may act on;
- ``on_bar(ctx)`` at each time of its cadence ``every`` (default: every candle of the data),
  and at the times it asked for with ``ctx.wake_at(t)``;
- ``on_fill(ctx, fill)`` after each execution of one of its orders.

``ctx`` (:class:`Context`) is everything the trader may know and do at ``ctx.now``:
closed candles only (``ctx.candles(symbol, n)`` never returns the forming candle, the time
rule of DESIGN.md §1), its position, cash, equity and open orders, and ``buy``/``sell``/
``cancel``/``wake_at``. ``ctx.note(text, **values)`` keeps the reasoning of a decision with
the orders it produced. The same trader runs in :func:`~core_engine.trading.events.replay`
and, with a live broker, in ``core_engine.live``.

Restarts: a trader keeps what it must remember between bars in JSON-able values returned by
:meth:`Trader.get_state` and restored by :meth:`Trader.set_state` (the live runner journals
them); the default keeps the ``self.state`` dict.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import json
import math
import re
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from core_engine._canonical import canonical
from core_engine._config import keyword_checked
from core_engine.data.panel import Panel
from core_engine.data.timeframes import timeframe_ns, to_utc_timestamp
from core_engine.errors import ConfigError, OrderRejected, StrategyError
from core_engine.strategies.base import did_you_mean
from core_engine.trading.orders import (
    Fill,
    FollowUp,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    client_order_id,
)

__all__ = ["BrokerView", "Context", "Records", "Trader"]

_KINDS = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP}
_SIDES = {"buy": OrderSide.BUY, "sell": OrderSide.SELL}
_EPOCH = pd.Timestamp(0, tz="UTC")  # the time in a follow-up's client id: none of its own


def _side(side: Any) -> OrderSide:
    """``OrderSide(side)``, by a dict lookup in the common case."""
    try:
        return _SIDES[side]
    except (KeyError, TypeError):
        return OrderSide(side)


def _wrap_init(cls: type, original: Callable) -> Callable:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        valid = [n for n in signature.parameters if n != "self"]
        for key in kwargs:
            if key not in valid:
                raise ConfigError(f"{cls.__name__} has no parameter {key!r}; valid parameters "
                                  f"are {valid}.{did_you_mean(key, valid)}")
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"{cls.__name__}(...): {exc}.") from None
        original(self, *args, **kwargs)
        if type(self).__init__ is __init__:
            if not hasattr(self, "state"):
                self.state = {}
            self._validate_params()

    return __init__


class Trader:
    """Base class of every event-driven trader.

    Subclasses write an explicit ``__init__`` whose keyword parameters are stored unchanged
    as attributes of the same name, and override :meth:`on_bar` (and optionally
    :meth:`on_start`, :meth:`on_fill`, :meth:`_validate_params`). A parameter named
    ``every`` (a duration such as ``"1h"``) sets the cadence of :meth:`on_bar`; without it
    the trader is called at every candle.

    Examples
    --------
    >>> class BuyOnce(Trader):
    ...     def __init__(self, symbol="BTC/USDT", value=100.0):
    ...         self.symbol = symbol
    ...         self.value = value
    ...     def on_start(self, ctx):
    ...         ctx.buy(self.symbol, value=self.value)
    >>> BuyOnce(value=50.0)
    BuyOnce(value=50.0)
    >>> BuyOnce(valu=1)
    Traceback (most recent call last):
    ...
    core_engine.errors.ConfigError: BuyOnce has no parameter 'valu'; valid parameters are ['symbol', 'value']. Did you mean 'value'?
    """

    name: ClassVar[str] = "trader"
    state: dict

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _wrap_init(cls, cls.__dict__["__init__"])  # type: ignore[method-assign]

    def __init__(self) -> None:
        self.state = {}

    # ------------------------------------------------------------------ parameters
    @classmethod
    def param_names(cls) -> list[str]:
        init = cls.__init__
        names = []
        for p in inspect.signature(init).parameters.values():
            if p.name == "self":
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise ConfigError(f"{cls.__name__}.__init__ must list its parameters explicitly "
                                  f"(no *args or **kwargs). Got {p}.")
            names.append(p.name)
        return names

    def get_params(self) -> dict[str, Any]:
        params = {}
        for key in self.param_names():
            if not hasattr(self, key):
                raise ConfigError(f"{type(self).__name__}.__init__ must store parameter {key!r} "
                                  f"as self.{key} (unchanged) so that get_params/clone work.")
            params[key] = getattr(self, key)
        return params

    def clone(self) -> Trader:
        """A new trader with deep-copied parameters and fresh state."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def _validate_params(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid parameter (override)."""

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()
                    if p.default is not p.empty}
        shown = []
        for k, v in self.get_params().items():
            try:
                same = k in defaults and bool(defaults[k] == v)
            except (TypeError, ValueError):  # an array's elementwise == (ambiguous truth)
                same = False
            if not same:
                shown.append(f"{k}={_short(v)}")
        return f"{type(self).__name__}({', '.join(shown)})"

    @property
    def trader_id(self) -> str:
        """A short stable id from the class and parameters (client order ids use it)."""
        cached = self.__dict__.get("_trader_id")
        if cached is None:  # parameters are stored unchanged, so the id is computed once
            cached = f"{self.name}-{hashlib.sha256(self._identity().encode()).hexdigest()[:8]}"
            self.__dict__["_trader_id"] = cached
        return cached

    def _identity(self) -> str:
        """What the id hashes: the repr, unless a parameter's repr names a memory address
        (a user's object, a function): that is another id in every process, so a restarted
        live runner would send a replayed decision again under new client ids. Then the
        parameters' canonical form (objects by their attributes, functions by their code
        and captured values), the same everywhere."""
        text = repr(self)
        if not _ADDRESS.search(text):
            return text
        try:
            return json.dumps({"class": f"{type(self).__module__}.{type(self).__qualname__}",
                               "params": canonical(self.get_params())}, sort_keys=True)
        except ConfigError:  # an object with nothing to identify it by
            return _ADDRESS.sub("", text)

    @property
    def every_ns(self) -> int | None:
        """The cadence of :meth:`on_bar` in nanoseconds (None: every candle; 0: never — a
        trader that does not override :meth:`on_bar` acts on fills and wake-ups only)."""
        every = getattr(self, "every", None)
        if every is None:
            return 0 if type(self).on_bar is Trader.on_bar else None
        return timeframe_ns(every, name="every")

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict:
        """What the trader must remember across a restart (JSON-able); default ``self.state``."""
        return copy.deepcopy(self.state)

    def set_state(self, state: dict) -> None:
        """Restore what :meth:`get_state` returned."""
        self.state = copy.deepcopy(dict(state))

    # ------------------------------------------------------------------ hooks
    def on_start(self, ctx: Context) -> None:
        """Called once before the first candle (override)."""

    def on_bar(self, ctx: Context) -> None:
        """Called at each time of the cadence and at requested wake times (override)."""

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        """Called after each execution of one of this trader's orders (override)."""


class Records:
    """What a run keeps besides orders and fills: notes and blocked picks."""

    def __init__(self) -> None:
        self.notes: list[dict] = []
        self.blocked: list[dict] = []
        self.orders: list[Order] = []
        # client ids of the orders placed in answer to a fill inside a candle (after the
        # broker matched it; stamped at its open, they depend on its range)
        self.inside: set[str] = set()

    def notes_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.notes, columns=["time", "text", "values", "orders"])

    def blocked_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.blocked, columns=["decision_time", "symbol", "rank", "score",
                                                    "reason"])
        return frame.astype({"rank": np.int64, "score": np.float64}) if len(frame) else frame


class BrokerView:
    """Market data for a context read through ``broker.candles`` (any broker; slow but
    general). :class:`~core_engine.trading.events.PanelView` is the fast one of replay."""

    def __init__(self, broker: Any, symbols: list[str], timeframe: str) -> None:
        self.broker = broker
        self.symbols = tuple(symbols)
        self.timeframe = timeframe
        self.end: pd.Timestamp | None = None

    def candles(self, symbol: str, n: int | None) -> pd.DataFrame:
        return self.broker.candles(symbol, self.timeframe, None, n)

    def panel(self) -> Panel:
        frames = {s: self.broker.candles(s, self.timeframe) for s in self.symbols}
        return Panel.from_frames(frames, self.timeframe)

    def causal(self, key: str, fn: Callable[[Panel], Any]) -> tuple[Any, int]:
        panel = self.panel()
        return fn(panel), panel.n_times - 1

    def last_prices(self) -> np.ndarray:
        out = np.full(len(self.symbols), np.nan)
        for j, s in enumerate(self.symbols):
            frame = self.candles(s, 1)
            if len(frame):
                out[j] = float(frame["close"].iloc[-1])
        return out

    def wake_at(self, t: pd.Timestamp) -> None:
        """Live runners schedule wake-ups themselves; nothing to do here."""


@keyword_checked
class Context:
    """What a trader may see and do at ``now``. Built by the replay or the live runner."""

    def __init__(self, broker: Any, view: Any, trader: Trader, records: Records) -> None:
        self.broker = broker
        self.view = view
        self.trader = trader
        self.records = records
        self._legs: dict[tuple, int] = {}
        self._produced: list[str] = []
        self._inside = False  # the broker's step matched a candle's range (replay)

    # ------------------------------------------------------------------ what is known
    @property
    def now(self) -> pd.Timestamp:
        """The decision time (UTC): every candle that closed by now is known, none other."""
        return self.broker.now()

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.view.symbols)

    @property
    def end(self) -> pd.Timestamp | None:
        """The last time of a replay (None when trading live)."""
        return self.view.end

    def candles(self, symbol: str, n: int | None = None) -> pd.DataFrame:
        """The last ``n`` closed candles of ``symbol`` (all when ``n`` is None), oldest first;
        never the candle still forming at ``now``. Missing candles are absent."""
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer))
                              or n < 1):
            raise ConfigError(f"The 'n' argument of ctx.candles must be a positive integer or "
                              f"None. Got {n!r}.")
        if symbol not in self.view.symbols:
            raise ConfigError(f"ctx.candles: unknown symbol {symbol!r}; the data has "
                              f"{list(self.view.symbols)}.{did_you_mean(symbol, list(self.view.symbols))}")
        return self.view.candles(symbol, n)

    def panel(self) -> Panel:
        """The closed candles of every symbol as a Panel (rows known at ``now``)."""
        return self.view.panel()

    def causal(self, key: str, fn: Callable[[Panel], Any]) -> tuple[Any, int]:
        """``fn(panel)`` for a *causal* ``fn`` (its row ``i`` reads rows ``<= i`` only) and the
        row of the last closed candle.

        In a replay ``fn`` runs once on the whole data and its rows are read as time passes
        (``replay(..., causal_cache=False)`` recomputes it on the known candles at every
        call instead); live it runs on the candles fetched. Read only rows ``<= row``:
        :func:`~core_engine.testing.check_trader` catches a trader whose decisions change
        when the data are cut at ``now``.
        """
        return self.view.causal(key, fn)

    def position(self, symbol: str) -> float:
        """Base quantity held of ``symbol``."""
        base = symbol.partition("/")[0]
        return float(self.broker.balances().get(base, 0.0))

    @property
    def cash(self) -> float:
        """The quote-currency balance."""
        return float(self.broker.balances().get(self.broker.quote, 0.0))

    @property
    def equity(self) -> float:
        """Cash plus every holding marked at its last closed candle's close."""
        prices = self.view.last_prices()
        balances = self.broker.balances()
        value = float(balances.get(self.broker.quote, 0.0))
        for j, symbol in enumerate(self.view.symbols):
            held = balances.get(symbol.partition("/")[0], 0.0)
            if held and np.isfinite(prices[j]):
                value += held * float(prices[j])
        return value

    @property
    def mark_equity(self) -> float:
        """The account marked at the last candle close, before anything traded at this open
        (the portfolio mode's sizing base); equals :attr:`equity` when nothing did."""
        value = getattr(self.broker, "mark_equity", None)
        return self.equity if value is None else float(value)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self.broker.open_orders(symbol)

    @property
    def taker_fee(self) -> float:
        """The broker's fee rate on market orders (0.001 = 10 bps)."""
        return float(getattr(self.broker, "taker_fee", 0.0))

    def tradable(self, symbol: str) -> bool:
        """Whether ``symbol`` trades now (its market is open: a market order would fill)."""
        check = getattr(self.broker, "tradable", None)
        return True if check is None else bool(check(symbol))

    # ------------------------------------------------------------------ acting
    def buy(self, symbol: str, quantity: float | None = None, *, value: float | None = None,
            type: str = "market", price: float | None = None, **options: Any) -> Order:
        """Place a buy; see :meth:`order`."""
        return self.order(symbol, "buy", quantity, value=value, type=type, price=price,
                          **options)

    def sell(self, symbol: str, quantity: float | None = None, *, value: float | None = None,
             type: str = "market", price: float | None = None, **options: Any) -> Order:
        """Place a sell; see :meth:`order`."""
        return self.order(symbol, "sell", quantity, value=value, type=type, price=price,
                          **options)

    def order(self, symbol: str, side: str, quantity: float | None = None, *,
              value: float | None = None, type: str = "market", price: float | None = None,
              leg: str | None = None, time_in_force: str = "gtc", group: str | None = None,
              lot_step: float | None = None, min_value: float | None = None,
              tag: str = "", trail_pct: float | None = None, trail_offset: float | None = None,
              trail_reference: float | None = None, meta: dict | None = None,
              then: FollowUp | None = None) -> Order:
        """Place one order and return it.

        Parameters
        ----------
        quantity, value : float
            Base quantity, or the quote amount (``value``; a buy spends it fees included,
            a sell converts it at ``price`` or the last close). Exactly one.
        type : {"market", "limit", "stop"}
        price : float, optional
            The limit price (``limit``) or the stop price (``stop``).
        leg : str, optional
            Names the order within this decision; the client id is
            ``client_order_id(trader_id, now, symbol, leg)`` (default leg: side and a
            counter), so a replayed decision produces the same ids.
        time_in_force, group, tag, trail_pct, trail_offset, trail_reference, lot_step,
        min_value, meta
            As :class:`~core_engine.trading.orders.Order`.
        then : FollowUp, optional
            The order to place once this one has filled completely (placed by the context
            before ``on_fill`` is called); see :class:`~core_engine.trading.orders.FollowUp`.

        Returns
        -------
        Order
            Its status says what happened: ``rejected`` orders are returned, not raised
            (``order.reason`` says why), so a trader decides what to do about them.
        """
        if (quantity is None) == (value is None):
            raise ConfigError(f"ctx.{side} needs exactly one of 'quantity' and 'value'. Got "
                              f"quantity={quantity!r}, value={value!r}.")
        kind = _KINDS[type] if type in ("market", "limit", "stop") else None
        if kind is None:
            raise ConfigError(f"The 'type' of ctx.{side} must be 'market', 'limit' or 'stop'. "
                              f"Got {type!r}.")
        quote_quantity = None
        if value is not None and side == "sell":
            ref = price if price is not None else self._last_price(symbol)
            quantity = float(value) / ref
        elif value is not None:
            quote_quantity = value
        now = self.now
        if leg is None:
            key = (now.value, symbol, side)
            count = self._legs.get(key, 0) + 1
            self._legs[key] = count
            leg = f"{side}-{count}"
        order = Order(
            client_id=client_order_id(self.trader.trader_id, now, symbol, leg),
            symbol=symbol, side=_side(side), type=kind, quantity=quantity,
            quote_quantity=quote_quantity, lot_step=lot_step, min_value=min_value,
            limit_price=price if kind is OrderType.LIMIT else None,
            stop_price=price if kind is OrderType.STOP else None,
            trail_pct=trail_pct, trail_offset=trail_offset, trail_reference=trail_reference,
            time_in_force=time_in_force, group=group, tag=tag, meta=dict(meta or {}),
            then=then)
        return self._send(order)

    def _send(self, order: Order) -> Order:
        try:
            placed = self.broker.place(order)
        except OrderRejected:
            placed = order
        if placed is order:
            self.records.orders.append(order)
            if self._inside:
                self.records.inside.add(order.client_id)
        self._produced.append(placed.client_id)
        return placed

    def _hand_fill(self, fill: Fill) -> None:
        """Hand one fill to the trader: place the follow-up of an order it completed
        (:class:`~core_engine.trading.orders.FollowUp`), then call ``on_fill``."""
        known = getattr(self.broker, "known", None)
        order = known(fill.client_id) if known is not None \
            else self.broker.fetch_order(fill.client_id)
        if order is not None and order.then is not None and order.status is OrderStatus.FILLED:
            self._follow(order, order.then)
        if type(self.trader).on_fill is not Trader.on_fill:
            self.trader.on_fill(self, fill)

    def _follow_late(self, orders: list[Order | None]) -> None:
        """Place the follow-ups of ``orders`` that have filled completely without one: a
        live exchange reported their last fill before their status said ``filled``. The
        client ids are those :meth:`_hand_fill` uses, so none is sent twice."""
        known = getattr(self.broker, "known", None)
        for order in orders:
            if order is not None and order.then is not None \
                    and order.status is OrderStatus.FILLED \
                    and (known is None or known(self._follow_id(order)) is None):
                self._follow(order, order.then)

    def _follow_id(self, order: Order) -> str:
        return client_order_id(self.trader.trader_id, _EPOCH, order.symbol,
                               "then:" + order.client_id)

    def _follow(self, order: Order, then: FollowUp) -> Order:
        """Place the follow-up of the filled ``order``. Its client id depends on the filled
        order alone, so handing the fill again (a restart) or handing each of its partial
        fills after it completed sends it once."""
        kind = _KINDS[then.type]
        first = order.limit_price if order.type is OrderType.LIMIT else order.stop_price
        back = FollowUp(price=first, type=order.type.value, repeat=True) if then.repeat \
            else None
        follow = Order(
            client_id=self._follow_id(order),
            symbol=order.symbol, side=OrderSide.SELL if order.side is OrderSide.BUY
            else OrderSide.BUY, type=kind, quantity=order.filled_quantity,
            lot_step=order.lot_step, min_value=order.min_value,
            limit_price=then.price if kind is OrderType.LIMIT else None,
            stop_price=then.price if kind is OrderType.STOP else None,
            time_in_force="gtc", tag=order.tag,
            meta={**order.meta, "after": order.client_id}, then=back)
        return self._send(follow)

    def cancel(self, order: Order | str) -> Order:
        """Cancel an open order (by the order or its client id); a final order is returned
        unchanged."""
        cid = order.client_id if isinstance(order, Order) else str(order)
        return self.broker.cancel(cid)

    def wake_at(self, t: Any) -> None:
        """Ask to be called (``on_bar``) at the first candle open at or after ``t``."""
        self.view.wake_at(to_utc_timestamp(t, name="t"))

    def note(self, text: str, **values: Any) -> None:
        """Keep the reasoning of this decision (with the orders it produced)."""
        self.records.notes.append({"time": self.now, "text": str(text),
                                   "values": {k: _plain(v) for k, v in values.items()},
                                   "orders": self._produced})

    def block(self, symbol: str, reason: str, *, rank: int = 0, score: float = math.nan) -> None:
        """Record a pick that did not become a position, and why (``result.blocked``)."""
        self.records.blocked.append({"decision_time": self.now, "symbol": symbol,
                                     "rank": int(rank),
                                     "score": float(score), "reason": str(reason)})

    def _last_price(self, symbol: str) -> float:
        price = float(self.view.last_prices()[list(self.view.symbols).index(symbol)])
        if not math.isfinite(price) or price <= 0:
            raise ConfigError(f"ctx.sell(value=...) needs a price for {symbol!r}; no candle "
                              "has closed yet. Give 'price' or 'quantity'.")
        return price

    def _begin_call(self) -> None:
        """Start a new callback: notes link to the orders placed from here on."""
        self._produced = []

    def _call(self, hook: str, fn: Callable[[], Any]) -> None:
        self._begin_call()
        try:
            fn()
        except (StrategyError, ConfigError):
            raise
        except Exception as exc:
            raise StrategyError(f"Trader {self.trader!r} failed in {hook}() at "
                                f"{self.now:%Y-%m-%d %H:%M} UTC: {type(exc).__name__}: "
                                f"{exc}") from exc


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _short(value: Any) -> str:
    """A parameter as shown in a repr: data containers by their shape only."""
    if isinstance(value, pd.DataFrame):
        return f"<DataFrame {value.shape[0]}x{value.shape[1]}>"
    if isinstance(value, np.ndarray):
        return f"<array {value.shape}>"
    if isinstance(value, Panel):
        return f"<Panel {value.n_times}x{value.n_symbols}>"
    return repr(value)


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
