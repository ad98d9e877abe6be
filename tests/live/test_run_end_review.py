"""Review of the run-end tick (issue 11): what it must not do."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_engine.data import Panel
from core_engine.live.paper import PaperBroker
from core_engine.live.runner import Runner, SimulatedClock
from core_engine.trading import SimBroker, Trader, replay
from tests.live.flat_candles import SYMBOL, flat_panel


def _panel(dip_row: int | None = None) -> Panel:
    return flat_panel(lows=None if dip_row is None else {dip_row: 95.0})


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


class LimitExitRebuy(Trader):
    """Buys 1 at the start, offers it at 100.4 at 01:00 (filled inside the candles after,
    0.4 a candle under the volume cap) and buys 0.1 back at each sell fill."""

    def __init__(self, every: str = "1h") -> None:
        self.every = every

    def on_start(self, ctx):
        ctx.buy(SYMBOL, 1.0, leg="entry")

    def on_bar(self, ctx):
        if ctx.now == pd.Timestamp("2021-01-01 01:00", tz="UTC"):
            ctx.sell(SYMBOL, 1.0, type="limit", price=100.4, leg="exit")

    def on_fill(self, ctx, fill):
        if fill.side == "sell":
            ctx.buy(SYMBOL, 0.1, leg="rebuy")


class Killed(BaseException):
    """The process dying."""


def test_the_end_tick_killed_before_its_checkpoint_and_run_again_sends_nothing_twice(tmp_path):
    times = pd.date_range("2021-01-01", periods=24, freq="5min", tz="UTC")
    price = np.full(24, 100.0)
    frame = pd.DataFrame({"timestamp": times, "open": price, "high": price + 0.5,
                          "low": price - 0.5, "close": price,
                          "volume": np.where(np.arange(24) >= 12, 40.0, 1_000.0)})
    panel = Panel.from_frames({SYMBOL: frame}, "5m")
    end = pd.Timestamp("2021-01-01 01:30", tz="UTC")

    def runner(name):
        paper = PaperBroker(panel, fee_bps=10, max_volume_share=0.01,
                            journal_path=tmp_path / f"{name}-paper.sqlite")
        return Runner(LimitExitRebuy(), paper, tmp_path / f"{name}.sqlite",
                      clock=SimulatedClock(panel.index[0]), symbols=[SYMBOL], timeframe="5m",
                      history=None, end=end, status_page=False)

    whole = runner("whole")
    whole.run(until=end)
    first = runner("cut")
    first.run(max_ticks=2)  # 00:00, 01:00

    def die(*args, **kwargs):
        raise Killed
    first.journal.record_checkpoint = die
    with pytest.raises(Killed):
        first.run(until=end)  # the end tick: three sell fills, three rebuys, then killed
    first.journal.close()
    second = runner("cut")
    assert second.run(until=end) == 1  # the end tick again
    def orders(r):
        return [(o.client_id, o.side, str(o.bar_time), o.filled_quantity)
                for o in r.journal.orders()]
    assert len([o for o in orders(whole) if o[1] == "buy"]) == 4
    assert orders(second) == orders(whole)
    assert second.broker.balances() == pytest.approx(whole.broker.balances())
