"""What the bots share: parameter checks in the house error shape, the closed candles of one
symbol read through ``ctx.causal``, fee arithmetic and the protective exits placed right
after an entry fills.

Nothing here is a bot; each bot module stays small by leaning on these helpers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from core_engine.data.panel import Panel
from core_engine.errors import ConfigError
from core_engine.trading.orders import Order, OrderStatus
from core_engine.trading.trader import Context

__all__ = ["Candles", "check_choice", "check_int", "check_number", "check_symbol",
           "closed_candles", "fees", "net_return", "place_exits", "quote_to_spend"]


# ---------------------------------------------------------------------------- parameters
def _is_number(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
            and math.isfinite(value))


def check_number(owner: str, name: str, value: Any, *, low: float = 0.0,
                 high: float | None = None, low_open: bool = True, optional: bool = False
                 ) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number in the range."""
    if value is None and optional:
        return
    ok = _is_number(value) and (value > low if low_open else value >= low) \
        and (high is None or value < high)
    if not ok:
        bound = f"{'above' if low_open else 'at least'} {low:g}"
        if high is not None:
            bound += f" and below {high:g}"
        extra = " or None" if optional else ""
        raise ConfigError(f"The '{name}' parameter of {owner} must be a finite number {bound}"
                          f"{extra}. Got {value!r}.")


def check_int(owner: str, name: str, value: Any, *, minimum: int = 1,
              optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        extra = " or None" if optional else ""
        raise ConfigError(f"The '{name}' parameter of {owner} must be an integer >= {minimum}"
                          f"{extra}. Got {value!r}.")


def check_choice(owner: str, name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"The '{name}' parameter of {owner} must be one of {list(choices)}. "
                          f"Got {value!r}.")


def check_symbol(owner: str, value: Any, name: str = "symbol") -> None:
    if not isinstance(value, str) or "/" not in value:
        raise ConfigError(f"The '{name}' parameter of {owner} must be a pair such as "
                          f"'BTC/USDT'. Got {value!r}.")


# ---------------------------------------------------------------------------- market data
class Candles:
    """The closed candles of one symbol as arrays: ``time`` (open time, ns), ``open``,
    ``high``, ``low``, ``close``, ``volume`` (NaN where a candle is missing) and ``last``
    (the close carried over missing candles, for "the last price"). ``row`` is the last
    closed candle; read rows ``<= row`` only."""

    __slots__ = ("time", "open", "high", "low", "close", "volume", "last", "step", "row",
                 "extra")

    def __init__(self, data: dict, row: int) -> None:
        self.time: np.ndarray = data["time"]
        self.open: np.ndarray = data["open"]
        self.high: np.ndarray = data["high"]
        self.low: np.ndarray = data["low"]
        self.close: np.ndarray = data["close"]
        self.volume: np.ndarray = data["volume"]
        self.last: np.ndarray = data["last"]
        self.step: int = int(data["step"])
        self.extra: dict = data["extra"]
        self.row = row

    @property
    def ready(self) -> bool:
        """Whether at least one candle has closed."""
        return self.row >= 0 and bool(np.isfinite(self.last[self.row]))

    @property
    def price(self) -> float:
        """The last known close (NaN before the first candle)."""
        return float(self.last[self.row]) if self.row >= 0 else math.nan

    def row_at(self, t_ns: int) -> int:
        """The last row whose candle closed at or before ``t_ns`` (-1 if none)."""
        return int(np.searchsorted(self.time, t_ns - self.step, "right")) - 1


def closed_candles(ctx: Context, symbol: str,
                   extra: Callable[[Panel, int], dict] | None = None, key: str = "") -> Candles:
    """The closed candles of ``symbol`` through ``ctx.causal`` (computed once in a replay).

    ``extra(panel, col)`` may add causal arrays (indicators whose row ``i`` reads rows
    ``<= i``), under ``Candles.extra``; ``key`` names them in the replay's cache.
    """
    if symbol not in ctx.symbols:
        raise ConfigError(f"The bot trades {symbol!r}, which is not in the data; the data "
                          f"have {list(ctx.symbols)}.")

    def compute(panel: Panel) -> dict:
        j = panel.column(symbol)
        close = np.asarray(panel.close[:, j], dtype=np.float64)
        return {"time": panel.index.asi8, "open": panel.open[:, j], "high": panel.high[:, j],
                "low": panel.low[:, j], "close": close, "volume": panel.volume[:, j],
                "last": pd.Series(close).ffill().to_numpy(), "step": panel.step_ns,
                "extra": {} if extra is None else extra(panel, j)}

    data, row = ctx.causal(f"bots:{symbol}:{key}", compute)
    return Candles(data, int(row))


# ---------------------------------------------------------------------------- money
def fees(ctx: Context) -> tuple[float, float]:
    """The broker's (maker, taker) fee rates (0.001 = 10 bps); a broker that does not say
    is assumed fee-free."""
    taker = float(getattr(ctx.broker, "taker_fee", ctx.taker_fee))
    maker = float(getattr(ctx.broker, "maker_fee", taker))
    return maker, taker


def net_return(cost: float, quantity: float, price: float, sell_fee: float) -> float:
    """Return of selling ``quantity`` at ``price`` (fee ``sell_fee`` on the proceeds)
    against ``cost`` (what the position cost, buy fees included), as a fraction."""
    return quantity * price * (1.0 - sell_fee) / cost - 1.0


def quote_to_spend(ctx: Context, amount: float | None) -> float:
    """The quote value a market buy may trade: ``amount``, or all the cash when None,
    shrunk so that the value plus the taker fee fits the cash."""
    room = ctx.cash / (1.0 + ctx.taker_fee)
    return room if amount is None else min(float(amount), room)


def filled_cost(order: Order) -> float:
    """What a filled buy cost, fees included."""
    return float(order.filled_quantity * order.average_price + order.fees)


def filled_proceeds(order: Order) -> float:
    """What a filled sell brought, fees deducted."""
    return float(order.filled_quantity * order.average_price - order.fees)


def is_done(order: Order) -> bool:
    """Completely filled (bots act on an order once its last fill is in)."""
    return order.status is OrderStatus.FILLED


# ---------------------------------------------------------------------------- exits
def place_exits(ctx: Context, symbol: str, quantity: float, entry: float, *, group: str,
                stop_loss_pct: float | None = None, take_profit_pct: float | None = None,
                trailing_pct: float | None = None) -> list[Order]:
    """Rest the exits of a long position right after its entry filled: one stop order (the
    fixed stop ``stop_loss_pct`` below ``entry`` and/or a trail ``trailing_pct`` below the
    highest price since the entry, whichever is higher) and a take-profit limit
    ``take_profit_pct`` above, in one OCO ``group`` (one fill cancels the other; on a candle
    that reaches both the stop is assumed first). On a live exchange they are
    exchange-side orders."""
    placed = []
    stop = None if stop_loss_pct is None else entry * (1.0 - stop_loss_pct / 100.0)
    if stop is not None or trailing_pct is not None:
        placed.append(ctx.sell(symbol, quantity, type="stop", price=stop,
                               trail_pct=trailing_pct,
                               trail_reference=entry if trailing_pct is not None else None,
                               group=group, leg="stop", tag="stop"))
    if take_profit_pct is not None:
        placed.append(ctx.sell(symbol, quantity, type="limit",
                               price=entry * (1.0 + take_profit_pct / 100.0), group=group,
                               leg="target", tag="take_profit"))
    return placed


def iso(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").isoformat()


# ---------------------------------------------------------------------------- fills
class ActsOnKnownFills:
    """Mixin: react to a fill once its candle has closed.

    A replay reports a fill inside candle ``r`` while its clock still reads the open of
    ``r``; an order placed then would be stamped with a time at which the fill was not yet
    known (and :func:`~core_engine.testing.check_trader` would rightly flag it). So a fill
    whose time is after ``ctx.now`` is queued in ``state["deferred"]`` and handled at the
    next open (its time), as a live runner learns of it at the candle close. A fill at the
    open (``fill.time == ctx.now``) is handled at once. The subclass writes
    :meth:`on_known_fill` and calls :meth:`flush_fills` first thing in ``on_bar``.
    """

    state: dict

    def on_known_fill(self, ctx: Context, client_id: str, closed: bool) -> None:
        """Act on the fills of order ``client_id``; ``closed``: the candle where it filled
        has closed (False for a fill at the open of the candle starting now)."""
        raise NotImplementedError

    def flush_fills(self, ctx: Context) -> None:
        queued = self.state.get("deferred")
        while queued and queued[0]["time"] <= ctx.now.value:
            item = queued.pop(0)
            self.on_known_fill(ctx, item["client_id"], True)

    def on_fill(self, ctx: Context, fill: Any) -> None:
        self.flush_fills(ctx)
        if fill.time.value > ctx.now.value:
            self.state.setdefault("deferred", []).append(
                {"client_id": fill.client_id, "time": int(fill.time.value)})
            ctx.wake_at(fill.time)
            return
        self.on_known_fill(ctx, fill.client_id, fill.time.value < ctx.now.value)


def cadence_due(state: dict, now_ns: int, every_ns: int) -> bool:
    """Whether a decision of cadence ``every_ns`` is due at ``now_ns``, and if so book it.

    Decisions fall on the multiples of ``every_ns`` since the epoch; a call between them
    (a runner or ``replay(skip=False)`` calling at every candle) is not one, a call late
    (a decision postponed by an outage) is. ``state["next_due"]`` remembers the next one,
    so a restart keeps the rhythm.
    """
    due = state.get("next_due")
    if due is None:
        due = -(-now_ns // every_ns) * every_ns
    if now_ns < due:
        state["next_due"] = int(due)
        return False
    state["next_due"] = int((now_ns // every_ns + 1) * every_ns)
    return True
