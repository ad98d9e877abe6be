"""replay: run a Trader over recorded candles with a SimBroker, skipping quiet stretches.

The clock (DESIGN.md §1 and §7). The trader acts at ``t``, the open time of candle ``r``
(= the close of candle ``r − 1``); it knows rows ``< r``. At each candle that matters:

1. :meth:`SimBroker.begin_row` — market orders waiting for an open fill at ``open[r]``;
2. ``on_bar(ctx)`` when ``t`` is a time of the trader's cadence (multiples of ``every``
   since the epoch, or every candle) or a time it asked for with ``ctx.wake_at``; its
   market orders fill at once at ``open[r]``, and ``on_fill`` follows each fill;
3. :meth:`SimBroker.match_row` — resting orders are matched on the rest of candle ``r``.

Between such candles nothing can happen, so none is visited:
:meth:`SimBroker.next_event_row` (a numba search over the broker's resting book) scans
highs and lows for the first candle where a resting order can fill, and the replay jumps
to the earliest of that candle, the next wake time and the next candle the broker must see
(an ``ioc`` order expiring, a ``cap_wait`` deadline). ``skip=False`` visits every candle
and calls ``on_bar`` on each, the slow reference it must equal.

A call of the trader's cadence due while no symbol has a candle opening at ``t`` (an
exchange-wide outage) is made at the first candle after it where the market is open; a time
the trader asked for with ``ctx.wake_at`` is kept, outage or not (a deadline). At the end of
the replay, market sells still waiting for an open (the candle starting at the end is
missing) wait past the end for the first open there is, as ``walk_forward``'s exits do, and
the equity runs to that candle; when the data themselves end (a delisted symbol), they fill
at the last close there is (flagged ``exit_at_last_close``). Open positions stay open and
are marked at their last close.

Equity is marked at every candle's close: cash plus holdings times the last known close.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from core_engine.data.panel import Panel
from core_engine.data.timeframes import to_utc_timestamp
from core_engine.errors import ConfigError
from core_engine.trading._fast import DeclaredPath
from core_engine.trading.sim import SimBroker
from core_engine.trading.trader import Context, Records, Trader

__all__ = ["PanelView", "replay"]


class PanelView:
    """Market data of a replay: the panel cut at the broker's clock."""

    def __init__(self, panel: Panel, broker: SimBroker, causal_cache: bool,
                 end: pd.Timestamp | None) -> None:
        self.panel_all = panel
        self.broker = broker
        self.symbols = panel.symbols
        self.causal_cache = causal_cache
        self.end = end
        self.wakes: list[int] = []
        self._cache: dict[str, Any] = {}

    @property
    def known_rows(self) -> int:
        return self.broker._row

    def candles(self, symbol: str, n: int | None) -> pd.DataFrame:
        j = self.panel_all.column(symbol)
        stop = self.known_rows
        lo = 0
        if n is not None:
            # enough rows to hold n present candles (gaps are rare; widen when short)
            lo = max(0, stop - n)
            while lo > 0 and int(np.count_nonzero(~np.isnan(self.panel_all.close[lo:stop, j]))) < n:
                lo = max(0, lo - max(n, 64))
        part = self.panel_all.slice_rows(lo, stop).frame(symbol)
        return part if n is None else part.tail(n).reset_index(drop=True)

    def panel(self) -> Panel:
        return self.panel_all.slice_rows(0, self.known_rows)

    def causal(self, key: str, fn: Callable[[Panel], Any]) -> tuple[Any, int]:
        row = self.known_rows - 1
        if not self.causal_cache:
            return fn(self.panel()), row
        if key not in self._cache:
            self._cache[key] = fn(self.panel_all)
        return self._cache[key], row

    def last_prices(self) -> np.ndarray:
        return self.broker.last_prices()

    def wake_at(self, t: pd.Timestamp) -> None:
        ns = t.value
        index = self.panel_all.index.asi8
        row = int(np.searchsorted(index, ns, "left"))
        heapq.heappush(self.wakes, row)


def _bounds(panel: Panel, start: Any, end: Any) -> tuple[int, int, pd.Timestamp]:
    index = panel.index.asi8
    step = panel.step_ns
    start_row = 0
    if start is not None:
        start_row = int(np.searchsorted(index, to_utc_timestamp(start, name="start").value,
                                        "left"))
    end_ts = pd.Timestamp(int(index[-1]) + step, tz="UTC")
    if end is not None:
        # an end past the data is the data's end, as in walk_forward: the trader must not
        # plan (decide, hold) for candles the run does not have
        end_ts = min(to_utc_timestamp(end, name="end"), end_ts)
    # the last candle wholly before the end
    end_row = min(int(np.searchsorted(index, end_ts.value - step, "right")) - 1, len(index) - 1)
    if end_row < start_row:
        raise ConfigError(f"replay: no candle between start={start!r} and end={end!r}; the "
                          f"data cover {panel.index[0]} .. {panel.index[-1]}.")
    return start_row, end_row, end_ts


class _Clock:
    """Which rows the trader is called at: its cadence, its wake requests, outages."""

    def __init__(self, panel: Panel, every_ns: int | None, view: PanelView) -> None:
        index = panel.index.asi8
        self.n = len(index)
        self.index0 = int(index[0])
        self.step = panel.step_ns
        self.every = every_ns
        self.view = view
        market_open = ~np.isnan(panel.open).all(axis=1)
        nxt = np.full(self.n + 2, self.n, dtype=np.int64)
        nxt[self.n + 1] = self.n + 1
        # first open row at or after r: a running minimum from the end
        rows = np.where(market_open, np.arange(self.n, dtype=np.int64), self.n)
        nxt[: self.n] = np.minimum.accumulate(rows[::-1])[::-1]
        self.next_open = nxt

    def _cadence(self, row: int) -> int:
        if self.every is None:
            return row
        if self.every == 0:
            return self.n + 2  # no cadence: fills and wake-ups only
        t = self.index0 + row * self.step
        due = -(-t // self.every) * self.every
        return int(row + -(-(due - t) // self.step))

    def next_wake(self, row: int) -> int:
        """The first row >= ``row`` at which the trader is called (``n`` or beyond: none
        inside the data). A call of the cadence due in an exchange-wide outage moves to the
        next open candle; a time the trader asked for (``ctx.wake_at``) is kept, outage or
        not (a deadline is a deadline: a live runner's clock wakes it too)."""
        cadence = self._cadence(row)
        best = int(self.next_open[cadence]) if cadence < self.n else min(cadence, self.n + 1)
        wakes = self.view.wakes
        if wakes:
            best = min(best, max(int(wakes[0]), row))
        return best

    def due_at(self, row: int) -> bool:
        """Whether a call is due exactly at ``row`` (used for the call at the end time)."""
        wakes = self.view.wakes
        return self._cadence(row) == row or bool(wakes and wakes[0] <= row)

    def consume(self, row: int) -> None:
        wakes = self.view.wakes
        while wakes and wakes[0] <= row:
            heapq.heappop(wakes)


def replay(trader: Trader, data: Any = None, broker: SimBroker | None = None, *,
           start: Any = None, end: Any = None, initial_cash: float | None = None,
           skip: bool = True, causal_cache: bool = True) -> Any:
    """Run ``trader`` over recorded candles and return a
    :class:`~core_engine.trading.results.ReplayResult`.

    Parameters
    ----------
    trader : Trader
    data : Panel, dict of candle frames, or (store, symbols, timeframe), optional
        The candles (optional when ``broker`` already holds them).
    broker : SimBroker, optional
        Fees, slippage, volume share and stop-fill model (default ``SimBroker()``: 10 bps
        per fill, no slippage).
    start, end : time, optional
        The trader acts from the first candle open at or after ``start`` and until the last
        candle that closes by ``end``. Earlier candles are history it can read.
    initial_cash : float, optional
        Starting cash (default: the broker's ``initial_cash``, 10,000).
    skip : bool
        Jump over candles where nothing can happen (default). ``False`` visits every candle
        and calls ``on_bar`` on each (the slow reference).
    causal_cache : bool
        Compute ``ctx.causal`` inputs once on the whole data (default) rather than on the
        known candles at every call (same values for causal inputs).

    Returns
    -------
    ReplayResult
        A :class:`~core_engine.backtest.BacktestResult` with ``orders``, ``fills``,
        ``notes`` and ``blocked`` besides ``trades``, ``equity`` (every candle) and
        ``metrics``.
    """
    from core_engine.backtest.engine import load_panel
    from core_engine.trading.results import build_result

    if not isinstance(trader, Trader):
        raise ConfigError(f"replay needs a Trader instance. Got {type(trader).__name__}.")
    if broker is None:
        broker = SimBroker()
    elif not isinstance(broker, SimBroker):
        raise ConfigError(f"replay matches orders with a SimBroker. Got {type(broker).__name__}.")
    if data is None:
        if broker.panel is None:
            raise ConfigError("replay needs candles: pass data= or a SimBroker built on them.")
        panel = broker.panel
    else:
        panel = load_panel(data)
    if panel.n_times == 0:
        raise ConfigError("replay got no candles.")
    broker.bind(panel, initial_cash)
    start_row, end_row, end_ts = _bounds(panel, start, end)
    view = PanelView(panel, broker, causal_cache, end_ts)
    records = Records()
    ctx = Context(broker, view, trader, records)
    loop = _Loop(panel, broker, trader, ctx, view)
    loop.run(start_row, end_row, skip)
    return build_result(trader, panel, broker, records, loop.snapshots,
                        start_row=start_row, end_row=loop.last_row,
                        config={"start": None if start is None else str(start),
                                "end": None if end is None else str(end), "skip": skip},
                        calls=loop.calls)


class _Loop:
    def __init__(self, panel: Panel, broker: SimBroker, trader: Trader, ctx: Context,
                 view: PanelView) -> None:
        self.panel = panel
        self.broker = broker
        self.trader = trader
        self.ctx = ctx
        self.view = view
        self.clock = _Clock(panel, trader.every_ns, view)
        self.seen_fills = 0
        self.calls = 0
        self.snapshots: list[tuple[int, float, np.ndarray]] = []
        self.last_row = -1
        self.fast = DeclaredPath(broker, trader, ctx.records, self.snapshots)

    def dispatch(self) -> None:
        """Call ``on_fill`` for each new fill, in order (fills it causes included)."""
        fills = self.broker._fills
        while self.seen_fills < len(fills):
            fill = fills[self.seen_fills]
            self.seen_fills += 1
            self.ctx._call("on_fill", functools.partial(self.ctx._hand_fill, fill))

    def snapshot(self, row: int) -> None:
        self.snapshots.append((row, self.broker.cash, self.broker.holdings.copy()))

    def run(self, start_row: int, end_row: int, skip: bool) -> None:
        broker, ctx = self.broker, self.ctx
        broker.begin_row(start_row)
        self.snapshot(start_row - 1)
        ctx._call("on_start", lambda: self.trader.on_start(ctx))
        self.dispatch()
        row = start_row
        first = True
        while row <= end_row:
            wake = self.clock.next_wake(row)
            if skip:
                target = min(wake, end_row + 1)
                if not first:
                    target = min(target, broker.next_deadline_row())
                    event = broker.next_event_row(row, target)
                    # an order can fill before the wake-up: the kernel plays the stretch
                    # from there when every open order is declared (dense wake-ups with no
                    # fill between them never pay for the test)
                    if event < target and self.fast.usable and self.fast.ready():
                        row = self.fast.run(event, target)
                        event = broker.next_event_row(row, target)
                else:
                    event = row
                first = False
                if event > end_row:
                    break
            else:
                event = row
            self.step(event, called=(event == wake) or not skip)
            row = event + 1
        self.last_row = self.finish(end_row)

    def finish(self, end_row: int) -> int:
        """The call at the end time, then the market sells still waiting: returns the last
        row the account was marked at.

        A time exit due at the end fills at the open of the candle starting at the end when
        there is one; that candle is marked. When that candle is missing (an outage) and the data go on, the sell
        waits for the first open after it, as in ``walk_forward`` (the replay's equity then
        runs to that candle); with no candle left at all, it fills at the last close there
        is (``settle_at_end``).
        """
        broker, ctx = self.broker, self.ctx
        final = end_row + 1
        last = end_row
        n = self.panel.n_times
        fills = len(broker._fills)
        if self.clock.due_at(final):
            broker.begin_row(final)
            self.dispatch()
            self.clock.consume(final)
            ctx._call("on_bar", lambda: self.trader.on_bar(ctx))
            self.dispatch()
        # the candle starting at the end, where the exits due at the end fill, is marked as
        # walk_forward marks it: after those exits, or with the account flat anyway
        if final < n and (len(broker._fills) > fills or not broker.holdings.any()):
            last = final
            self.snapshot(final)
        row = last + 1
        while row < n and broker.market_orders_waiting():
            broker.begin_row(row, resting=False)
            self.dispatch()
            self.snapshot(row)
            last = row
            row += 1
        broker.settle_at_end(last)
        broker._row = last + 1
        self.dispatch()
        self.snapshot(last)
        return last

    def step(self, row: int, called: bool) -> None:
        broker, ctx = self.broker, self.ctx
        broker.begin_row(row)
        self.dispatch()
        if called:
            self.clock.consume(row)
            self.calls += 1
            ctx._call("on_bar", lambda: self.trader.on_bar(ctx))
            self.dispatch()
        broker.match_row(row)
        ctx._inside = True  # what is placed now answers fills inside the candle
        self.dispatch()
        ctx._inside = False
        self.snapshot(row)
