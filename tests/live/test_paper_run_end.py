"""A bounded paper run reads the fills up to its end (issue 11).

``Runner(..., end=...)`` runs a trader as ``replay`` does, until ``end``. Its ticks are the
trader's cadence and wake-ups; when the next one is past ``end``, the candles between the
last tick and ``end`` were never synced. A market sell filled in parts by
``max_volume_share`` (its remainder waits for the next opens) after the last tick then
filled in replay and not in the runner's journal (seed 42000185 of the paper soak: the
window-end exit of NKN/USDT at 08:30, every 4h, end 11:00). The run now ends with a tick at
``end`` when its cadence does not fall there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_engine.data import Panel
from core_engine.live.paper import PaperBroker
from core_engine.live.runner import Runner, SimulatedClock
from core_engine.trading import SimBroker, Trader, replay
from tests.live.flat_candles import SYMBOL, flat_panel


def _panel() -> Panel:
    """24 five-minute candles at 100; from 01:00 a volume of 40 (0.4 at a share of 1 %)."""
    return flat_panel(volume=np.where(np.arange(24) >= 12, 40.0, 1_000.0))


class BuyThenSell(Trader):
    """Buys 1 at the start, sells it at 01:00 (hourly cadence)."""

    def __init__(self, every: str = "1h") -> None:
        self.every = every

    def on_start(self, ctx):
        ctx.buy(SYMBOL, 1.0, leg="entry")

    def on_bar(self, ctx):
        if ctx.now == pd.Timestamp("2021-01-01 01:00", tz="UTC"):
            ctx.sell(SYMBOL, 1.0, leg="exit")


def _fills(rows) -> list[tuple]:
    return [(f.side, f.time, round(f.quantity, 9)) for f in rows]


def test_a_bounded_run_ends_with_a_tick_at_its_end(tmp_path):
    panel = _panel()
    end = pd.Timestamp("2021-01-01 01:30", tz="UTC")  # off the hourly cadence
    result = replay(BuyThenSell(), panel, SimBroker(fee_bps=10, max_volume_share=0.01),
                    end=end)
    want = _fills(result.fills.itertuples())
    t = pd.Timestamp("2021-01-01 01:00", tz="UTC")
    assert want == [("buy", pd.Timestamp("2021-01-01", tz="UTC"), 1.0), ("sell", t, 0.4),
                    ("sell", t + pd.Timedelta("5min"), 0.4),
                    ("sell", t + pd.Timedelta("10min"), 0.2)]

    runner = Runner(BuyThenSell(), PaperBroker(panel, fee_bps=10, max_volume_share=0.01),
                    tmp_path / "j.sqlite", clock=SimulatedClock(panel.index[0]), symbols=[SYMBOL],
                    timeframe="5m", history=None, end=end, status_page=False)
    assert runner.run(until=end) == 3  # 00:00, 01:00 and the end, 01:30
    assert runner.last_tick == end
    assert _fills(runner.journal.fills()) == want
    assert runner.broker.balances()["BTC"] == 0.0


def test_a_run_stopped_before_its_end_has_no_extra_tick(tmp_path):
    panel = _panel()
    runner = Runner(BuyThenSell(), PaperBroker(panel, fee_bps=10), tmp_path / "j.sqlite",
                    clock=SimulatedClock(panel.index[0]), symbols=[SYMBOL], timeframe="5m",
                    history=None, end=pd.Timestamp("2021-01-01 01:55", tz="UTC"),
                    status_page=False)
    assert runner.run(until=pd.Timestamp("2021-01-01 01:30", tz="UTC")) == 2
    assert runner.last_tick == pd.Timestamp("2021-01-01 01:00", tz="UTC")


class SellAtTheEnd(BuyThenSell):
    """BuyThenSell whose 01:00 call also rests a limit buy at 99.6 (every candle's low is
    99.5); each fill records the time and the candles the trader sees."""

    def on_bar(self, ctx):
        self.state["calls"] = self.state.get("calls", 0) + 1
        super().on_bar(ctx)
        if ctx.now == pd.Timestamp("2021-01-01 01:00", tz="UTC"):
            ctx.buy(SYMBOL, 0.1, type="limit", price=99.6, leg="dip")

    def on_fill(self, ctx, fill):
        self.state.setdefault("seen", []).append(
            (str(fill.time), str(ctx.now), ctx.panel().n_times))


def _paper_and_replay(tmp_path, rows: int):
    panel = flat_panel(volume=np.where(np.arange(rows) >= 12, 40.0, 1_000.0), rows=rows)
    end = pd.Timestamp("2021-01-01 01:00", tz="UTC")  # the exit's call: its last
    replayed = SellAtTheEnd()
    result = replay(replayed, panel, SimBroker(fee_bps=10, max_volume_share=0.01), end=end)
    runner = Runner(SellAtTheEnd(), PaperBroker(panel, fee_bps=10, max_volume_share=0.01),
                    tmp_path / "j.sqlite", clock=SimulatedClock(panel.index[0]),
                    symbols=[SYMBOL], timeframe="5m", history=None, end=end, status_page=False)
    assert runner.run(until=end) == 2  # 00:00 and the end, 01:00
    return result, replayed, runner


def test_an_exit_partly_filled_at_the_end_fills_at_the_opens_after_it_as_in_replay(tmp_path):
    """The 01:00 sell fills 0.4 (1 % of the volume) at the end; replay fills the rest at the
    01:05 and 01:10 opens, as walk_forward's exits. The bounded paper run stopped at its end
    tick with 0.6 unsold; it now moves on candle by candle while a market order waits,
    handing each fill at its step (no call of on_bar, no resting order matched: the limit
    buy at 99.6 is not filled by the lows of 99.5 after the end)."""
    result, replayed, runner = _paper_and_replay(tmp_path, rows=24)
    want = _fills(result.fills.itertuples())
    t = pd.Timestamp("2021-01-01 01:00", tz="UTC")
    assert want[1:] == [("sell", t, 0.4), ("sell", t + pd.Timedelta("5min"), 0.4),
                        ("sell", t + pd.Timedelta("10min"), 0.2)]
    assert _fills(runner.journal.fills()) == want
    assert runner.trader.state["seen"] == replayed.state["seen"]
    assert runner.trader.state["calls"] == 1  # at 01:00 (at 00:00 no candle had closed)
    assert runner.broker.balances()["BTC"] == 0.0
    assert [o.side for o in runner.journal.orders(final=False)] == ["buy"]  # the dip, open
    assert runner.journal.last_checkpoint()["time"] == t + pd.Timedelta("10min")
    assert runner.run(until=t) == 0  # the run is over


def test_the_exit_after_the_end_waits_no_longer_than_the_data(tmp_path):
    """Two candles from the end: replay sells 0.4 at 01:00 and 0.4 at 01:05, and the data
    end (the last close's volume is used up: 0.2 stays unsold); the paper run stops there
    too, with the sell's remainder open."""
    result, _, runner = _paper_and_replay(tmp_path, rows=14)
    want = _fills(result.fills.itertuples())
    assert [w[2] for w in want] == [1.0, 0.4, 0.4]
    assert _fills(runner.journal.fills()) == want
    assert runner.broker.balances()["BTC"] == pytest.approx(0.2)
    assert sorted(o.side for o in runner.journal.orders(final=False)) == ["buy", "sell"]


def test_with_a_live_source_the_wait_after_the_end_is_bounded(tmp_path):
    """On a live candle source the next candles are waited for in real time: after the end
    the runner waits ``exit_wait_candles`` candles at most (here 3), whatever is unsold."""
    frame = flat_panel(volume=np.where(np.arange(24) >= 12, 40.0, 1_000.0)).frame(SYMBOL)

    def source(symbol, timeframe, since):
        return frame[frame["timestamp"] >= pd.Timestamp(since)].reset_index(drop=True)

    end = pd.Timestamp("2021-01-01 01:00", tz="UTC")
    paper = PaperBroker(source=source, symbols=[SYMBOL], timeframe="5m", fee_bps=10,
                        max_volume_share=0.001)
    runner = Runner(BuyThenSell(), paper, tmp_path / "j.sqlite",
                    clock=SimulatedClock(frame["timestamp"].iloc[0]), symbols=[SYMBOL],
                    timeframe="5m", history=None, end=end, status_page=False)
    runner.exit_wait_candles = 3
    assert runner.run(until=end) == 2
    sells = [f for f in _fills(runner.journal.fills()) if f[0] == "sell"]
    assert [f[1] for f in sells] == [end + pd.Timedelta(minutes=5 * k) for k in range(4)]
    assert runner.broker.balances()["BTC"] == pytest.approx(1.0 - 4 * 0.04)
    assert paper.synced_to == end + pd.Timedelta("15min")


@pytest.mark.parametrize("after_steps", [0, 1])
def test_a_run_killed_while_its_exit_waits_after_the_end_finishes_it_when_restarted(
        tmp_path, after_steps):
    """Killed at the end tick (before any candle after it) or one candle into the wait: the
    restarted run has no tick left, but a market order still waits; it moves on from
    where the paper account stopped and journals the same fills as an uninterrupted run."""
    from tests.live.kills import Killed

    panel = flat_panel(volume=np.where(np.arange(24) >= 12, 40.0, 1_000.0), rows=24)
    end = pd.Timestamp("2021-01-01 01:00", tz="UTC")
    result = replay(SellAtTheEnd(), panel, SimBroker(fee_bps=10, max_volume_share=0.01),
                    end=end)

    def runner(start):
        return Runner(SellAtTheEnd(), PaperBroker(panel, fee_bps=10, max_volume_share=0.01,
                                                  journal_path=tmp_path / "paper.sqlite"),
                      tmp_path / "j.sqlite", clock=SimulatedClock(start), symbols=[SYMBOL],
                      timeframe="5m", history=None, end=end, status_page=False)

    first = runner(panel.index[0])
    paper = first.broker.broker
    steps = {"n": 0}
    step = paper.open_next

    def dying(*args, **kwargs):
        if steps["n"] == after_steps:
            raise Killed
        steps["n"] += 1
        return step(*args, **kwargs)

    paper.open_next = dying
    with pytest.raises(Killed):
        first.run(until=end)
    first.journal.close()
    again = runner(end + pd.Timedelta(minutes=5 * (after_steps + 1)))
    assert again.run(until=end) == 0
    assert _fills(again.journal.fills()) == _fills(result.fills.itertuples())
    assert again.broker.balances()["BTC"] == 0.0
