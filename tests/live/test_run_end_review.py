"""Review of the run-end tick (issue 11): what it must not do."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core_engine.data import Panel
from core_engine.live.paper import PaperBroker
from core_engine.live.runner import Runner, SimulatedClock
from core_engine.trading import SimBroker, Trader, replay

SYMBOL = "BTC/USDT"


def _panel(dip_row: int | None = None) -> Panel:
    times = pd.date_range("2021-01-01", periods=24, freq="5min", tz="UTC")
    price = np.full(24, 100.0)
    lows = price - 0.5
    if dip_row is not None:
        lows[dip_row] = 95.0
    frame = pd.DataFrame({"timestamp": times, "open": price, "high": price + 0.5,
                          "low": lows, "close": price, "volume": np.full(24, 1_000.0)})
    return Panel.from_frames({SYMBOL: frame}, "5m")


class Buyer(Trader):
    def __init__(self, every: str = "1h") -> None:
        self.every = every

    def on_start(self, ctx):
        ctx.buy(SYMBOL, 1.0, leg="entry")

    def on_bar(self, ctx):
        ctx.buy(SYMBOL, 1.0, leg=f"bar-{ctx.now:%H%M}")


def test_a_run_started_after_its_end_does_not_tick_at_that_past_end(tmp_path):
    """A first run whose clock is already past ``end`` (and ``until``) never reached ``end``:
    it has no tick there (no start, no on_start orders, no decision on the candles of a past
    time placed at today's prices on a live broker)."""
    panel = _panel()
    end = pd.Timestamp("2021-01-01 01:00", tz="UTC")  # on the cadence: a decision is due
    runner = Runner(Buyer(), PaperBroker(panel, fee_bps=10), tmp_path / "j.sqlite",
                    clock=SimulatedClock(pd.Timestamp("2021-01-01 01:20", tz="UTC")),
                    symbols=[SYMBOL], timeframe="5m", history=None, end=end,
                    status_page=False)
    assert runner.run(until=end) == 0
    assert runner.journal.orders() == []


class LimitBuyer(Trader):
    def __init__(self, every: str = "1h") -> None:
        self.every = every

    def on_start(self, ctx):
        ctx.buy(SYMBOL, 1.0, type="limit", price=96.0, leg="entry")

    def on_bar(self, ctx):
        pass


def test_an_end_inside_a_candle_does_not_match_that_candle(tmp_path):
    """``end`` 01:32 falls inside the 01:30 candle (it closes at 01:35): replay matches the
    candles that close by ``end``; the end tick must not fill on the 01:30 candle's low (a
    fill timed 01:35, after the run's end, that replay does not have)."""
    panel = _panel(dip_row=18)  # 01:30
    end = pd.Timestamp("2021-01-01 01:32", tz="UTC")
    result = replay(LimitBuyer(), panel, SimBroker(fee_bps=10), end=end)
    assert len(result.fills) == 0
    runner = Runner(LimitBuyer(), PaperBroker(panel, fee_bps=10), tmp_path / "j.sqlite",
                    clock=SimulatedClock(panel.index[0]), symbols=[SYMBOL], timeframe="5m",
                    history=None, end=end, status_page=False)
    runner.run(until=end)
    assert [(f.side, str(f.time)) for f in runner.journal.fills()] == []
