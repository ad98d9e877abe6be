"""A runner whose process stalls (a laptop asleep, a debugger, a swap storm) and wakes hours
later acts on the latest closed bar, as a restart after a long stop does; it does not run
every missed tick in the past (each a decision on the candles of then, sent at today's
prices). The missed ticks are journaled."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core_engine.live.paper import PaperBroker
from core_engine.live.runner import Runner, SimulatedClock
from core_engine.trading import Trader
from tests.live.flat_candles import SYMBOL, flat_panel


class Stalls(SimulatedClock):
    """Sleeps as asked, except once: the sleep to ``at`` wakes ``late`` after it."""

    def __init__(self, start, at, late):
        super().__init__(start)
        self.at, self.late = at, late

    def sleep_until(self, t):
        if self.at is not None and pd.Timestamp(t) >= self.at:
            t = pd.Timestamp(t) + self.late
            self.at = None
        super().sleep_until(t)


class Hourly(Trader):
    def __init__(self, every: str = "1h") -> None:
        self.every = every

    def on_bar(self, ctx):
        self.state.setdefault("bars", []).append(str(ctx.now))
        ctx.buy(SYMBOL, 0.01, leg="hourly")


def _runner(tmp_path, clock):
    panel = flat_panel(rows=12 * 24)
    paper = PaperBroker(panel, fee_bps=10, journal_path=tmp_path / "paper.sqlite")
    return Runner(Hourly(), paper, tmp_path / "j.sqlite", clock=clock, symbols=[SYMBOL],
                  timeframe="5m", history=None, status_page=False)


def test_a_runner_that_stalls_acts_on_the_latest_bar_not_on_every_missed_one(tmp_path):
    start = pd.Timestamp("2021-01-01", tz="UTC")
    # the sleep to the 03:00 tick wakes at 08:20: the ticks of 03:00 .. 08:00 are due
    clock = Stalls(start, start + pd.Timedelta("3h"), pd.Timedelta("5h20min"))
    runner = _runner(tmp_path, clock)
    runner.run(until=start + pd.Timedelta("10h"))
    bars = runner.trader.state["bars"]
    assert bars == [str(start + pd.Timedelta(hours=h)) for h in (1, 2, 8, 9, 10)]
    buys = [o for o in runner.journal.orders() if o.side == "buy"]
    assert len(buys) == 5  # one per decision; none for the five stale ticks
    errors = runner.journal.errors()
    missed = [e for e in errors if e["kind"] == "missed_ticks"]
    assert len(missed) == 1 and "5 ticks" in missed[0]["message"], missed


def test_a_slow_tick_is_not_a_stall(tmp_path):
    start = pd.Timestamp("2021-01-01", tz="UTC")
    # wakes 50 minutes late once: the tick due then still runs (no later one is due)
    clock = Stalls(start, start + pd.Timedelta("3h"), pd.Timedelta("50min"))
    runner = _runner(tmp_path, clock)
    runner.run(until=start + pd.Timedelta("5h"))
    assert runner.trader.state["bars"] == [str(start + pd.Timedelta(hours=h))
                                           for h in range(1, 6)]
    assert not [e for e in runner.journal.errors() if e["kind"] == "missed_ticks"]
    assert np.isfinite(runner.equity()[0])
