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
