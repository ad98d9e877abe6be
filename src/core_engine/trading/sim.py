"""SimBroker: a broker that matches orders on recorded candles with the backtest's rules.

Fill rules (DESIGN.md §7; one fill and cost model for every simulation):

* **Market** orders fill at the open of the next candle of their symbol: placed while a
  trader acts at ``t`` (the open of the candle starting at ``t``), they fill at once at that
  open; placed later, or while the symbol's candle is missing (an outage), at the first
  open that exists. ``ioc`` market orders get that one open and are cancelled otherwise.
* **Limit buy**: fills when the candle's low reaches the limit, at the limit; at the open
  when the candle opens at or below it. **Limit sell**: the mirror, on the high.
* **Stop sell** (stop-market): fills when the low reaches the stop, at the stop (or per
  ``stop_fill``: the candle's low, or a share of its range below the level); at the open on
  a gap through it. **Stop buy**: the mirror, on the high. A **trailing** stop's level is
  the higher of its stop price and ``highest × (1 − trail_pct/100) − trail_offset``;
  ``highest`` rises with the high of each *finished* candle.
* A stop and a limit sell in one OCO ``group`` are matched together by
  :func:`core_engine.backtest._kernels.exit_on_candle`, the very function of the backtest:
  on a candle that reaches both, the stop is assumed first (the fill is flagged
  ``ambiguous``); a gap through either fills at the open. When an order of a group fills
  completely, its siblings are cancelled. A market sell in a group fills at the open and is
  named ``stop_loss``/``trailing_stop``/``take_profit`` when that open is already beyond the
  sibling's level (as a window-end exit of the backtest).
* **Costs**: every fill pays adverse slippage (``× (1 ± slippage_bps/1e4)``: buys above,
  sells below the raw price, limit fills included, as in the backtest's cost model) and a
  fee on its value, ``maker_bps`` for limit orders and ``taker_bps`` otherwise
  (``fee_bps`` sets both). A quote-amount buy (``quote_quantity``, Binance's
  ``quoteOrderQty``) trades that value, the fee on top: ``quantity = amount / price``
  (rounded down to the order's ``lot_step``), cash pays ``quantity × price × (1 + fee)``
  (without a ``lot_step`` and filled at once: ``amount × (1 + fee)``, the amount unrounded);
  when the rounded value is below the order's ``min_value`` it is rejected
  (``min_order_value``; a quantity rounded to 0: ``lot_step``).
* ``max_volume_share`` caps what all our orders on one symbol fill on one candle at that
  share of its volume; the rest stays open (partial fills) and continues on later candles.
* **Missing candles fill nothing.** Balances never go negative: an order the free balance
  cannot cover when placed raises :class:`InsufficientFunds` (status ``rejected``); one
  that cannot be covered when it fills is rejected (or, when partly filled, cancelled).
  The free balance is the balance minus what open orders hold (a buy limit holds its
  cost; sells in one OCO group hold the largest of them once).
* Fill times: the candle's open time for fills at the open, its close time for fills inside
  the candle.
* A client id is one order: sent again with the same fields, the broker's order is
  returned (a resend); with other fields, :class:`OrderRejected` is raised and the object
  sent is marked ``rejected`` (``duplicate_client_id``), the broker's order unchanged.
* Simulation only, for the backtest's conventions: :meth:`SimBroker.market_price` tells the
  price a market order placed now fills at (the open the trader acts at), and
  :meth:`SimBroker.cap_wait` lets a market sell stuck in an outage leave at the last close
  before the gap once a deadline passes (``walk_forward``'s ``max_exit_delay``).

The replay drives the clock through :meth:`SimBroker.begin_row` (the open of a candle, when
the trader acts) and :meth:`SimBroker.match_row` (the rest of the candle).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import check_real
from core_engine.backtest._kernels import (
    STOP_FILL_NAMES,
)
from core_engine.data.panel import Panel
from core_engine.data.timeframes import format_timeframe, timeframe_ns, to_utc_timestamp
from core_engine.errors import ConfigError, OrderNotFound, OrderRejected
from core_engine.risk._kernels import lot_quantity
from core_engine.trading._kernels import (
    next_event_row,
    triggers_on_row,
)
from core_engine.trading.book import RestingBook
from core_engine.trading.broker import split_symbol
from core_engine.trading.funds import Funds
from core_engine.trading.matching import Matching
from core_engine.trading.orders import (
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    new_fill,
)

__all__ = ["SimBroker"]

_TOL = 1e-9
_NO_DEADLINE = 2**62
_SAME_FIELDS = ("symbol", "side", "type", "quantity", "quote_quantity", "lot_step", "limit_price",
                "stop_price", "trail_pct", "trail_offset", "time_in_force", "group")
_SAME_FIELDS_BY_VALUE = tuple(f for f in _SAME_FIELDS if f != "quantity")


def _bps(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or not 0 <= value < 10_000:
        raise ConfigError(f"The '{name}' parameter of SimBroker must be a number in [0, 10000) "
                          f"basis points. Got {value!r}.")
    return float(value) / 1e4


@keyword_checked
class SimBroker(Funds, Matching):
    """A :class:`~core_engine.trading.broker.Broker` that fills orders on recorded candles.

    Parameters
    ----------
    candles : Panel, dict of candle frames, or (store, symbols, timeframe), optional
        The candles to match on; :func:`~core_engine.trading.events.replay` binds its data
        when omitted.
    initial_cash : float
        Starting balance of the quote currency.
    fee_bps : float, optional
        Fee per fill in basis points for maker and taker alike (default 10).
    maker_bps, taker_bps : float, optional
        Separate fees for limit orders (maker) and the rest (taker); instead of ``fee_bps``.
    slippage_bps : float
        Adverse slippage on every fill, in basis points.
    max_volume_share : float, optional
        In ``(0, 1]``: at most this share of a candle's volume fills per symbol and candle.
    quote : str, optional
        The quote currency (default: the quote of the first symbol, ``"USDT"``).
    stop_fill : {"level", "low", "range"}
        Fill of a stop reached inside a candle: its level (default, as the backtest), the
        candle's low, or ``level − stop_fill_frac × (high − low)`` (never below the low).
    stop_fill_frac : float
        The share of the range for ``stop_fill="range"``.

    See the module docstring for every fill rule.
    """

    _mark: float | tuple  # mark_equity, or the balances it is computed from when read
    # what replay's declared-orders path made, as columns (trading/_fast.py); a tuple, so an
    # account restored from an older save reads it empty
    _segments: tuple = ()
    # client id -> (segment, index in it) of the orders those segments made
    _segment_of: dict | None = None

    def __init__(self, candles: Any = None, *, initial_cash: float = 10_000.0,
                 fee_bps: float | None = None, maker_bps: float | None = None,
                 taker_bps: float | None = None, slippage_bps: float = 0.0,
                 max_volume_share: float | None = None, quote: str | None = None,
                 stop_fill: str = "level", stop_fill_frac: float = 0.0) -> None:
        if fee_bps is not None and (maker_bps is not None or taker_bps is not None):
            raise ConfigError("SimBroker takes 'fee_bps' or 'maker_bps'/'taker_bps', not both. "
                              f"Got fee_bps={fee_bps!r}, maker_bps={maker_bps!r}, "
                              f"taker_bps={taker_bps!r}.")
        default = 10.0 if fee_bps is None else fee_bps
        self.maker_fee = _bps("maker_bps", default if maker_bps is None else maker_bps)
        self.taker_fee = _bps("taker_bps", default if taker_bps is None else taker_bps)
        self.slippage = _bps("slippage_bps", slippage_bps)
        if max_volume_share is not None and (
                isinstance(max_volume_share, bool)
                or not isinstance(max_volume_share, (int, float))
                or not 0 < max_volume_share <= 1):
            raise ConfigError("The 'max_volume_share' parameter of SimBroker must be in (0, 1] "
                              f"or None. Got {max_volume_share!r}.")
        self.max_volume_share = None if max_volume_share is None else float(max_volume_share)
        if stop_fill not in STOP_FILL_NAMES:
            raise ConfigError(f"The 'stop_fill' parameter of SimBroker must be one of "
                              f"{list(STOP_FILL_NAMES)}. Got {stop_fill!r}.")
        self.stop_fill = STOP_FILL_NAMES.index(stop_fill)
        self.stop_fill_frac = check_real(stop_fill_frac, "stop_fill_frac", "SimBroker", low=0.0)
        if isinstance(initial_cash, bool) or not isinstance(initial_cash, (int, float)) \
                or not math.isfinite(initial_cash) or initial_cash < 0:
            raise ConfigError("The 'initial_cash' parameter of SimBroker must be a finite number "
                              f">= 0. Got {initial_cash!r}.")
        self.initial_cash = float(initial_cash)
        self.quote = quote
        self._params: dict[str, Any] = {"initial_cash": initial_cash, "fee_bps": fee_bps, "maker_bps": maker_bps,
                        "taker_bps": taker_bps, "slippage_bps": slippage_bps,
                        "max_volume_share": max_volume_share, "quote": quote,
                        "stop_fill": stop_fill, "stop_fill_frac": stop_fill_frac}
        self.panel: Panel | None = None
        if candles is not None:
            self.bind(candles)

    # ------------------------------------------------------------------ set-up
    def clone(self) -> SimBroker:
        """A new, unbound SimBroker with the same fees, slippage and fill model."""
        return SimBroker(**self._params)

    def bind(self, candles: Any, initial_cash: float | None = None) -> SimBroker:
        """Attach the candles and reset the account (cash, holdings, orders, fills)."""
        from core_engine.backtest.engine import load_panel

        panel = load_panel(candles)
        self.panel = panel
        self._open = np.asarray(panel.open)
        self._high = np.asarray(panel.high)
        self._low = np.asarray(panel.low)
        self._close = np.asarray(panel.close)
        self._volume = np.asarray(panel.volume)
        self._close_ffill: np.ndarray | None = None
        self._index = panel.index.asi8
        self._step = panel.step_ns
        self._cols = {s: j for j, s in enumerate(panel.symbols)}
        if self.quote is None:
            self.quote = split_symbol(panel.symbols[0])[1] if panel.symbols else "USDT"
        self.cash = self.initial_cash if initial_cash is None else float(initial_cash)
        self.holdings = np.zeros(panel.n_symbols)
        self._orders: dict[str, Order] = {}
        self._live: dict[str, Order] = {}   # open orders, in placement order
        self._highest: dict[str, float] = {}
        self._placed_row: dict[str, int] = {}
        self._fills: list[Fill] = []
        self._fill_rows: dict[str, tuple[int, bool]] = {}
        # trade id: the row the clock was at when it filled, where not the fill's own row
        # (a 'last_close' fill of an earlier candle), see fill_step_time
        self._fill_steps: dict[str, int] = {}
        self._deadlines: dict[str, int] = {}
        self._now: tuple | None = None  # (row, now()) of the current candle
        self._bases: list[str] | None = None  # base currency of each symbol
        self._book = RestingBook(self._cols)  # the open orders as kernel records
        self._hits = np.empty(16, dtype=np.int64)  # _match_resting's kernel output
        # open buy / sell / market / ioc orders, in placement order (indexes of _live); an
        # open buy's value is the cash it holds when that does not move with the clock
        # (None: a market buy, computed when read), see _held_cost
        self._open_buys: dict[str, float | None] = {}
        self._open_sells: dict[str, None] = {}
        # per column: what each open sell holds of the base, (remaining, group), in
        # placement order (what _reserved_base sums)
        self._sell_holds: dict[int, dict[str, tuple[float, str | None]]] = {}
        self._open_markets: dict[str, None] = {}
        self._open_ioc: dict[str, None] = {}
        self._live_seen = self._live
        self._used: dict[tuple[int, int], float] = {}
        self._segments = ()
        self._segment_of = None
        self._row = 0
        self._phase = "open"
        self._seq = 0
        self.mark_equity = self.cash
        return self

    def _require(self) -> Panel:
        if self.panel is None:
            raise ConfigError("This SimBroker has no candles; pass candles= or bind(candles).")
        return self.panel

    # ------------------------------------------------------------------ the Broker protocol
    def now(self) -> pd.Timestamp:
        self._require()
        cached = self._now
        if cached is not None and cached[0] == self._row:
            return cached[1]
        value = self._now_at(self._row)
        self._now = (self._row, value)
        return value

    def _now_at(self, row: int) -> pd.Timestamp:
        if row < len(self._index):
            return pd.Timestamp(int(self._index[row]), tz="UTC")
        return pd.Timestamp(int(self._index[-1]) + self._step, tz="UTC")

    def balances(self) -> dict[str, float]:
        panel = self._require()
        bases = self._bases
        if bases is None or len(bases) != panel.n_symbols:
            bases = [split_symbol(symbol, str(self.quote))[0] for symbol in panel.symbols]
            self._bases = bases
        out = {str(self.quote): float(self.cash)}
        for base, held in zip(bases, self.holdings.tolist(), strict=True):
            out[base] = out.get(base, 0.0) + held
        return out

    def candles(self, symbol: str, timeframe: str | None = None, since: Any = None,
                limit: int | None = None) -> pd.DataFrame:
        """Closed candles of ``symbol`` before now (never the forming one)."""
        panel = self._require()
        if timeframe is not None and timeframe_ns(timeframe) != self._step:
            raise ConfigError(f"SimBroker holds {panel.timeframe} candles; asked for "
                              f"{timeframe!r}. Resample them with core_engine.data.resample.")
        known = panel.slice_rows(0, self._row)
        self._col(symbol, error=ConfigError)
        frame = known.frame(symbol)
        if since is not None:
            frame = frame.loc[frame["timestamp"] >= to_utc_timestamp(since, name="since")]
        if limit is not None:
            frame = frame.tail(int(limit))
        return frame.reset_index(drop=True)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self._live.values() if symbol is None or o.symbol == symbol]

    def fetch_order(self, client_id: str) -> Order:
        try:
            return self._orders[client_id]
        except KeyError:
            made = self._segment_order(client_id)
            if made is not None:
                return made
            raise OrderNotFound(f"No order with client id {client_id!r} is known to this "
                                "SimBroker.") from None

    def fill_step_time(self, trade_id: str) -> pd.Timestamp | None:
        """The broker's time when it made the fill ``trade_id`` (the open of the candle its
        clock was at, :meth:`now` then), None for a trade it does not know. A paper runner
        hands a fill to ``on_fill`` at that time in its sync, and again at that time when a
        restart hands it again (the orders ``on_fill`` places keep their client ids)."""
        rows = self._fill_rows.get(trade_id)
        if rows is None:
            return None
        return self._now_at(self._fill_steps.get(trade_id, rows[0]))

    def fills(self, since: Any = None) -> list[Fill]:
        fills = self.all_fills()
        if since is None:
            return fills
        t = to_utc_timestamp(since, name="since")
        return [f for f in fills if f.time >= t]

    def all_fills(self) -> list[Fill]:
        """Every fill in the order it was made (those of replay's declared-orders path
        made objects here)."""
        if not self._segments:
            return list(self._fills)
        out: list[Fill] = []
        done = 0
        for segment in self._segments:
            out.extend(self._fills[done:segment.fills_at])
            out.extend(segment.fills())
            done = segment.fills_at
        out.extend(self._fills[done:])
        return out

    def _segment_order(self, client_id: str) -> Order | None:
        """An order replay's declared-orders path placed (made an object when asked)."""
        found = self._segment_of.get(client_id) if self._segment_of else None
        return None if found is None else found[0].order(found[1])

    def cancel(self, client_id: str) -> Order:
        order = self.fetch_order(client_id)
        if order.is_open:
            self._close_order(order, OrderStatus.CANCELLED, "cancelled")
        return order

    def place(self, order: Order) -> Order:
        self._require()
        known = self._orders.get(order.client_id)
        if known is None and self._segments:
            known = self._segment_order(order.client_id)
        if known is not None:
            # a quote-amount order's quantity is the broker's (set when it fills), not the
            # sender's: a resend that leaves it unset is the same order
            fields = _SAME_FIELDS if order.quantity is not None \
                or order.quote_quantity is None else _SAME_FIELDS_BY_VALUE
            if all(getattr(known, f) == getattr(order, f) for f in fields):
                return known
            if order.status is OrderStatus.NEW:  # the sender's object says it was refused
                order.status, order.reason = OrderStatus.REJECTED, "duplicate_client_id"
                order.updated_at = self.now()
            raise OrderRejected(f"Client order id {order.client_id!r} is already used by "
                                "another order; client ids must be unique.")
        if order.status is not OrderStatus.NEW:
            raise ConfigError(f"Only a new order can be placed; order {order.client_id!r} is "
                              f"'{order.status.value}'.")
        now = self.now()
        order.created_at = now
        self._orders[order.client_id] = order
        col = self._col(order.symbol, error=None)
        if col is None:
            self._reject(order, "unknown_symbol", OrderRejected(
                f"Order {order.client_id!r}: symbol {order.symbol!r} is not traded here; "
                f"symbols are {list(self._cols)}."))
        self._check_funds(order, col)
        order.transition(OrderStatus.SUBMITTED, now)
        self._check_live()
        self._live[order.client_id] = order
        self._track(order)
        self._book.add(order)
        self._placed_row[order.client_id] = self._row
        if order.trail_reference is not None:
            self._highest[order.client_id] = float(order.trail_reference)
        if order.type is OrderType.MARKET and self._phase == "open" \
                and self._row < len(self._index):
            self._market_at_open(order, col, self._row)
        return order

    # ------------------------------------------------------------------ account views
    def position(self, symbol: str) -> float:
        """Base quantity held of ``symbol``."""
        return float(self.holdings[self._col(symbol, error=ConfigError)])

    def last_prices(self) -> np.ndarray:
        """The last known close of every symbol (NaN before its first closed candle)."""
        panel = self._require()
        if self._row == 0:
            return np.full(panel.n_symbols, np.nan)
        if self._close_ffill is None:
            self._close_ffill = pd.DataFrame(self._close).ffill().to_numpy()
        return self._close_ffill[min(self._row, len(self._index)) - 1].copy()

    def tradable(self, symbol: str) -> bool:
        """Whether ``symbol`` has a candle opening now (a market order would fill now)."""
        col = self._col(symbol, error=ConfigError)
        return self._row < len(self._index) and not np.isnan(self._open[self._row, col])

    def market_price(self, symbol: str) -> float:
        """The raw price (before slippage) a market order placed now fills at: the open of
        the candle starting now, while the trader acts at that open; NaN otherwise (its
        candle is missing, or the clock is inside a candle). Reading it is no lookahead: it
        is the price a market order gets at ``now``, not a later one."""
        col = self._col(symbol, error=ConfigError)
        if self._phase != "open" or self._row >= len(self._index):
            return math.nan
        return float(self._open[self._row, col])

    def cap_wait(self, client_id: str, deadline: Any) -> None:
        """Simulation only (``walk_forward``'s ``max_exit_delay``): if the market sell
        ``client_id`` still waits for an open of its symbol (an outage) when the clock
        reaches ``deadline``, it fills then at the symbol's last close before it was placed,
        timed at that candle's close (``reason="last_close"``), as the backtest's capped
        time exit. A live broker has no such thing; traders check for the method."""
        order = self.fetch_order(client_id)
        if order.type is not OrderType.MARKET or order.side is not OrderSide.SELL:
            raise ConfigError(f"SimBroker.cap_wait applies to market sells; order "
                              f"{client_id!r} is a {order.type.value} {order.side.value}.")
        if order.is_open:
            ns = to_utc_timestamp(deadline, name="deadline").value
            self._deadlines[client_id] = int(np.searchsorted(self._index, ns, "left"))

    def next_deadline_row(self) -> int:
        """The first row the replay must visit even when no order can fill there (a large
        number if none): a :meth:`cap_wait` deadline, or the next candle while an ``ioc``
        order waits (it expires when that candle is matched, filled or not)."""
        row = min(self._deadlines.values(), default=_NO_DEADLINE)
        if self._open_ioc:
            self._check_live()
            if any(o.is_open for o in self._live_of("_open_ioc")):
                row = min(row, self._row + 1)
        return row

    def _expire_waits(self, row: int) -> None:
        for cid, deadline in list(self._deadlines.items()):
            order = self._orders[cid]
            if not order.is_open:
                del self._deadlines[cid]
            elif deadline <= row:
                del self._deadlines[cid]
                col = self._cols[order.symbol]
                present = np.flatnonzero(~np.isnan(self._close[: self._placed_row[cid], col]))
                if present.size:
                    r = int(present[-1])
                    self._execute(order, col, r, float(self._close[r, col]), at_open=False,
                                  reason="last_close")

    def equity(self) -> float:
        """Cash plus holdings marked at their last known close."""
        return self._equity_at(self.cash, self.holdings, self._row)

    def _equity_at(self, cash: float, holdings: np.ndarray, row: int) -> float:
        held = np.flatnonzero(holdings)
        if not held.size:
            return float(cash)
        if row == 0:
            prices = np.full(len(holdings), np.nan)
        else:
            if self._close_ffill is None:
                self._close_ffill = pd.DataFrame(self._close).ffill().to_numpy()
            prices = self._close_ffill[min(row, len(self._index)) - 1]
        value = holdings[held] * prices[held]
        return float(cash + value[~np.isnan(value)].sum())

    @property
    def mark_equity(self) -> float:
        """The account marked at the last close before the open the clock is at (before
        anything traded at that open): the portfolio mode's sizing base. Computed when
        first read from the balances kept at :meth:`begin_row`."""
        mark = self._mark
        if isinstance(mark, tuple):
            mark = self._equity_at(*mark)
            self._mark = mark
        return mark

    @mark_equity.setter
    def mark_equity(self, value: float) -> None:
        self._mark = float(value)

    def free_cash(self) -> float:
        """Cash not held by open buy orders."""
        return self.cash - self._reserved_cash(exclude=None)

    # ------------------------------------------------------------------ the clock
    def begin_row(self, row: int, resting: bool = True) -> None:
        """Move to the open of candle ``row`` (the time the trader acts): mark the account
        at the last close (:attr:`mark_equity`), fill the market sells whose
        :meth:`cap_wait` deadline came (at their last close), then the market orders
        waiting for an open and (``resting``) the resting orders this open crosses (a gap)."""
        self._require()
        self._row = int(row)
        self._phase = "open"
        self._mark = (self.cash, self.holdings.copy(), self._row)
        if self._row >= len(self._index):
            return
        self._check_live()
        if self._deadlines:
            self._expire_waits(self._row)
        if self._open_markets:
            for order in self._live_of("_open_markets"):
                if order.is_open:
                    self._market_at_open(order, self._cols[order.symbol], self._row)
        if resting:
            self._match_resting(self._row, open_only=True)

    def match_row(self, row: int) -> None:
        """Match the resting orders on the rest of candle ``row``; expire IOC orders; raise
        trailing stops with the candle's high."""
        self._row = int(row)
        self._phase = "intrabar"
        self._match_resting(row, open_only=False)
        self._check_live()
        if self._open_ioc:
            for order in self._live_of("_open_ioc"):
                if order.is_open and self._placed_row[order.client_id] <= row:
                    self._close_order(order, OrderStatus.CANCELLED, "ioc")
        for cid, highest in self._highest.items():
            trail = self._live.get(cid)
            if trail is not None:
                h = self._high[row, self._cols[trail.symbol]]
                if h > highest:
                    self._highest[cid] = float(h)

    def _match_resting(self, row: int, open_only: bool) -> None:
        """Match the resting orders on candle ``row``; ``open_only``: only those its open
        already crossed (they fill at the open, before the trader acts). A numba pass over
        the resting book (:func:`~core_engine.trading._kernels.triggers_on_row`, the
        skipping search's own test) leaves Python only the orders this candle can fill."""
        book = self._book_now()
        n = book.n
        if not book.slots:
            return
        orders = book.orders
        if self._highest:
            book.load_highs(self._highest)
        hits = self._hits
        if len(hits) < n:  # the kernel's output, reused (read into a list below)
            hits = self._hits = np.empty(2 * n, dtype=np.int64)
        count = triggers_on_row(self._open, self._high, self._low, book.records, n, row,
                                open_only, hits)
        if not count:
            return
        done: set[str] = set()
        for k in hits[:count].tolist():
            order = orders[k]
            if order is None or order.client_id in done or not order.is_open \
                    or order.type is OrderType.MARKET:
                continue
            if open_only and self._placed_row[order.client_id] >= row:
                continue
            col = self._cols[order.symbol]
            group = self._group_pair(order)
            if group is not None:
                done.update(o.client_id for o in group)
                self._match_pair(group[0], group[1], col, row, open_only)
            else:
                done.add(order.client_id)
                self._match_one(order, col, row, open_only)

    def settle_at_end(self, last_row: int) -> None:
        """End of the data: market sells still waiting fill at their symbol's last close up
        to ``last_row`` (the only price there is; ``reason="last_close"``); market buys
        still waiting are cancelled."""
        for order in list(self._live.values()):
            if order.type is not OrderType.MARKET:
                continue
            col = self._cols[order.symbol]
            present = np.flatnonzero(~np.isnan(self._close[: last_row + 1, col]))
            if order.side is OrderSide.SELL and present.size:
                r = int(present[-1])
                self._execute(order, col, r, float(self._close[r, col]), at_open=False,
                              reason="last_close")
            else:
                self._close_order(order, OrderStatus.CANCELLED, "data_end")

    def market_orders_waiting(self) -> bool:
        """Whether a market order waits for an open of its symbol (an outage)."""
        return any(o.is_open for o in self._live_of("_open_markets"))

    def _book_now(self) -> RestingBook:
        """The resting book, rebuilt when the open orders were replaced wholesale."""
        self._check_live()
        return self._book

    def has_resting(self) -> bool:
        """Whether any order is open (the skipping search has something to look for)."""
        return len(self._book_now()) > 0

    def next_event_row(self, start: int, stop: int) -> int:
        """The first row in ``[start, stop)`` where an open order can fill, ``stop`` when
        none can (the numba search :func:`~core_engine.trading._kernels.next_event_row`);
        the trails' ``highest`` follow the highs of the candles passed over."""
        if start >= stop:  # nothing to pass over (a wake-up due now)
            return stop
        book = self._book_now()
        if not len(book):
            return stop
        highest = self._highest
        if highest:
            book.load_highs(highest)
        row = int(next_event_row(self._open, self._high, self._low, book.records, book.n,
                                 start, stop))
        if highest:
            book.raise_highs(highest)
        return row

    # ------------------------------------------------------------------ matching
    def _market_at_open(self, order: Order, col: int, row: int) -> None:
        o = self._open[row, col]
        if np.isnan(o):
            if order.time_in_force == "ioc":
                self._close_order(order, OrderStatus.CANCELLED, "no_candle")
            return
        reason = "market"
        if order.side is OrderSide.SELL and order.group is not None:
            reason = self._name_exit_at_open(order, float(o))
        self._execute(order, col, row, float(o), at_open=True, reason=reason)
        if order.is_open and order.time_in_force == "ioc":
            self._close_order(order, OrderStatus.CANCELLED, "ioc")

    # ------------------------------------------------------------------ execution
    def _execute(self, order: Order, col: int, row: int, raw: float, *, at_open: bool,
                 reason: str, ambiguous: bool = False) -> None:
        """Fill as much of ``order`` as volume and balances allow at raw price ``raw``."""
        buy = order.side is OrderSide.BUY
        price = raw * (1.0 + self.slippage) if buy else raw * (1.0 - self.slippage)
        rate = self.maker_fee if order.type is OrderType.LIMIT else self.taker_fee
        whole_quote: float | None = None  # the quote amount, when it is the notional
        if order.quantity is None:  # a quote-amount market buy gets its quantity now
            assert order.quote_quantity is not None
            lot = math.nan if order.lot_step is None else float(order.lot_step)
            quantity, notional = (float(v) for v in lot_quantity(float(order.quote_quantity),
                                                                 price, lot))
            whole_quote = notional if order.lot_step is None else None
            if quantity <= 0 or (order.min_value is not None and notional < order.min_value):
                self._refuse(order, "lot_step" if quantity <= 0 else "min_order_value")
                return
            order.quantity = quantity
        quantity = order.remaining
        if self.max_volume_share is not None:
            cap = self._volume_left(col, row)
            if cap <= 0:
                return
            quantity = min(quantity, cap)
        if buy and quantity * price * (1.0 + rate) > self.cash * (1 + _TOL) + 1e-12:
            self._refuse(order, "insufficient_funds")
            return
        if not buy:
            held = float(self.holdings[col])
            if held <= 1e-12:
                self._refuse(order, "no_position")
                return
            quantity = min(quantity, held)
        value = quantity * price
        if whole_quote is not None and quantity == order.quantity:
            # a quote-amount market buy filled at once: the amount is the notional (quantity
            # × price would round it again: an account spent to the last cent kept dust)
            value = whole_quote
        fee = value * rate
        if buy:
            # the fee absorbs the last rounding, so that paying all the cash leaves exactly 0
            cost = min(value * (1.0 + rate), self.cash)
            fee = cost - value
            self.cash -= cost
            self.holdings[col] += quantity
        else:
            self.cash += value - fee
            self.holdings[col] = max(self.holdings[col] - quantity, 0.0)
        if self.max_volume_share is not None:
            self._used[(row, col)] = self._used.get((row, col), 0.0) + quantity
        self._seq += 1
        time = int(self._index[row]) + (0 if at_open else self._step)
        fill = new_fill(f"sim-{self._seq}", order.client_id, order.symbol, order.side,
                        pd.Timestamp(time, tz="UTC"), price, quantity, fee,
                        "maker" if order.type is OrderType.LIMIT else "taker", reason,
                        ambiguous)
        order.apply_fill(fill)
        self._fills.append(fill)
        self._fill_rows[fill.trade_id] = (row, at_open)
        if row != self._row:
            self._fill_steps[fill.trade_id] = self._row
        if order.status is not OrderStatus.FILLED:
            self._refresh_holds(order)
        else:
            if not buy and order.reason is None:
                order.reason = reason
            self._forget(order)
            if order.group is not None:
                for sib in self._siblings(order):
                    self._close_order(sib, OrderStatus.CANCELLED, "oco")

    def _volume_left(self, col: int, row: int) -> float:
        if self.max_volume_share is None:
            return math.inf
        volume = self._volume[row, col]
        if not np.isfinite(volume):
            return 0.0
        return self.max_volume_share * float(volume) - self._used.get((row, col), 0.0)

    def _refuse(self, order: Order, reason: str) -> None:
        status = OrderStatus.REJECTED if order.filled_quantity == 0 else OrderStatus.CANCELLED
        self._close_order(order, status, reason)

    def _close_order(self, order: Order, status: OrderStatus, reason: str) -> None:
        order.transition(status, self.now(), reason)
        self._forget(order)

    def _forget(self, order: Order) -> None:
        """Drop a closed order from the open orders and their indexes."""
        cid = order.client_id
        self._check_live()
        self._live.pop(cid, None)
        self._highest.pop(cid, None)
        self._deadlines.pop(cid, None)
        self._untrack(order)
        self._book.remove(order)

    def _reject(self, order: Order, reason: str, error: Exception) -> None:
        order.transition(OrderStatus.REJECTED, self.now(), reason)
        raise error

    def __repr__(self) -> str:
        if self.panel is None:
            return "SimBroker(unbound)"
        return (f"SimBroker({self.panel.n_symbols} symbols × {self.panel.n_times:,} "
                f"{format_timeframe(self._step)} candles, cash {self.cash:,.2f} {self.quote}, "
                f"{len(self._live)} open orders)")
