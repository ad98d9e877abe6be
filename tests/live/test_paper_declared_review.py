"""A declared ladder (limit buys with repeating limit follow-ups, no on_fill) in a paper
runner trades as replay's numba path plays it, a kill and restart included."""

from __future__ import annotations

import pandas as pd
import pytest

from core_engine.live.paper import PaperBroker
from core_engine.live.runner import Runner, SimulatedClock
from core_engine.trading import FollowUp, SimBroker, Trader, replay
from tests.live.kills import run_killed_before_checkpoint
from tests.trading.test_follow_up import _walk

SYM = "AAA/USDT"


class Ladder(Trader):
    def __init__(self, levels: int = 6, step: float = 0.4, every: str = "1h") -> None:
        self.levels = levels
        self.step = step
        self.every = every

    def on_start(self, ctx):
        ref = 100.0
        for k in range(1, self.levels + 1):
            price = ref * (1 - k * self.step / 100)
            ctx.buy(SYM, value=100.0, type="limit", price=price, meta={"k": k},
                    then=FollowUp(price=price * (1 + self.step / 100), repeat=True))

    def on_bar(self, ctx):
        pass


def _fills(rows) -> list[tuple]:
    return [(f.client_id, f.side, f.time, f.price, f.quantity, f.fee) for f in rows]


def _runner(tmp_path, panel, end):
    paper = PaperBroker(panel, fee_bps=10, initial_cash=1_000.0,
                        journal_path=tmp_path / "paper.sqlite")
    return Runner(Ladder(), paper, tmp_path / "j.sqlite", clock=SimulatedClock(panel.index[0]),
                  symbols=[SYM], timeframe="5m", history=None, end=end, status_page=False)


@pytest.mark.parametrize("kill", [False, True])
def test_a_declared_ladder_on_paper_trades_as_the_fast_replay(tmp_path, kill):
    panel = _walk(150, 3, 0.5)
    end = panel.index[-1] + pd.Timedelta("5min")
    broker = SimBroker(fee_bps=10, initial_cash=1_000.0)
    want = replay(Ladder(), panel, broker, end=end)
    assert broker._segments and len(want.fills) > 20  # numba played most of it
    runner = _runner(tmp_path, panel, end)
    if kill:
        runner.run(max_ticks=2)

        run_killed_before_checkpoint(runner)
        runner = _runner(tmp_path, panel, end)
    runner.run(until=end)
    assert _fills(runner.journal.fills()) == _fills(want.fills.itertuples())
    orders = {o.client_id: o.status for o in runner.journal.orders()}
    assert orders == dict(zip(want.orders["client_id"], want.orders["status"], strict=True))
