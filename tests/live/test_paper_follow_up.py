"""Follow-up orders in a paper runner: placed as replay places them, and sent once when a
restart hands their fills again (their client ids depend on the filled order alone)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_engine.data import Panel
from core_engine.live.journaled import _spec, order_from_row
from core_engine.live.paper import PaperBroker
from core_engine.live.runner import Runner, SimulatedClock
from core_engine.trading import FollowUp, Order, SimBroker, Trader, replay
from tests.live.flat_candles import SYMBOL, flat_panel
from tests.live.kills import run_killed_before_checkpoint


def _panel() -> Panel:
    # the buy at 99 fills in rows 3 and 9 (lows 98, 98.5); every high (100.5) reaches the
    # sell at 100.4, so each sell fills in the candle after the buy's
    return flat_panel(lows={3: 98.0, 9: 98.5})


class GridLevel(Trader):
    def __init__(self, every: str = "1h") -> None:
        self.every = every

    def on_start(self, ctx):
        ctx.buy(SYMBOL, 1.0, type="limit", price=99.0, leg="level",
                then=FollowUp(price=100.4, repeat=True))

    def on_bar(self, ctx):
        pass


def _fills(rows) -> list[tuple]:
    return [(f.side, f.time, f.price, round(f.quantity, 9)) for f in rows]


def _runner(tmp_path, panel, end, trader=None):
    paper = PaperBroker(panel, fee_bps=10, journal_path=tmp_path / "paper.sqlite")
    return Runner(trader or GridLevel(), paper, tmp_path / "j.sqlite", clock=SimulatedClock(panel.index[0]),
                  symbols=[SYMBOL], timeframe="5m", history=None, end=end, status_page=False)


def test_a_paper_runner_places_follow_ups_as_replay(tmp_path):
    panel = _panel()
    end = panel.index[-1] + pd.Timedelta("5min")
    want = _fills(replay(GridLevel(), panel, SimBroker(fee_bps=10), end=end).fills.itertuples())
    assert [f[0] for f in want] == ["buy", "sell", "buy", "sell"]
    runner = _runner(tmp_path, panel, end)
    runner.run(until=end)
    assert _fills(runner.journal.fills()) == want


def test_a_restart_that_hands_the_fills_again_sends_each_follow_up_once(tmp_path):
    panel = _panel()
    end = panel.index[-1] + pd.Timedelta("5min")
    first = _runner(tmp_path, panel, end)
    first.run(max_ticks=1)  # 00:00: the buy rests

    run_killed_before_checkpoint(first)  # 01:00: the sync fills buy, sell, buy, sell; no checkpoint
    second = _runner(tmp_path, panel, end)
    second.run(until=end)
    orders = second.journal.orders()
    ids = [o.client_id for o in orders]
    assert len(ids) == len(set(ids)) == 5  # the first buy, two sells, two buys again
    assert sorted(o.side for o in orders) == ["buy"] * 3 + ["sell"] * 2
    want = _fills(replay(GridLevel(), panel, SimBroker(fee_bps=10), end=end).fills.itertuples())
    assert _fills(second.journal.fills()) == want


def test_the_journal_keeps_an_orders_follow_up():
    then = FollowUp(price=100.4, repeat=True)
    order = Order(client_id="a", symbol=SYMBOL, side="buy", type="limit", limit_price=99.0,
                  quantity=1.0, then=then)

    class Row:
        client_id, symbol, side, quantity = "a", SYMBOL, "buy", 1.0
        limit_price, stop_price, status, filled_quantity = 99.0, None, "submitted", 0.0
        average_price, exchange_order_id = None, None

    again = order_from_row(Row(), _spec(order))  # type: ignore[arg-type]
    assert again.then == then
    order.then = None
    assert order_from_row(Row(), _spec(order)).then is None  # type: ignore[arg-type]


class HalfLevel(GridLevel):
    def on_start(self, ctx):
        ctx.buy(SYMBOL, 1.0, type="limit", price=99.0, leg="level", then=FollowUp(price=100.4))


def test_a_restart_hands_a_fill_of_an_order_completed_later_without_a_second_follow_up(tmp_path):
    """The buy fills half in row 3 and half in row 4 (a volume cap); a restart hands the row 3
    fill again when the journal already says 'filled': the follow-up placed then is the one
    placed at row 4 before the kill (one id), not a second sell."""
    panel = flat_panel(lows={3: 98.0, 4: 98.0}, volume=np.full(24, 50.0))
    end = panel.index[-1] + pd.Timedelta("5min")

    def runner():
        paper = PaperBroker(panel, fee_bps=10, max_volume_share=0.01,
                            journal_path=tmp_path / "paper.sqlite")
        return Runner(HalfLevel(), paper, tmp_path / "j.sqlite",
                      clock=SimulatedClock(panel.index[0]), symbols=[SYMBOL], timeframe="5m",
                      history=None, end=end, status_page=False)

    first = runner()
    first.run(max_ticks=1)

    run_killed_before_checkpoint(first)
    second = runner()
    second.run(until=end)
    sells = [o for o in second.journal.orders() if o.side == "sell"]
    assert len(sells) == 1 and sells[0].status == "filled", sells
    want = replay(HalfLevel(), panel, SimBroker(fee_bps=10, max_volume_share=0.01), end=end)
    assert [f[0] for f in _fills(want.fills.itertuples())] == ["buy", "buy", "sell", "sell"]
    assert _fills(second.journal.fills()) == _fills(want.fills.itertuples())


class OneFollowUp(GridLevel):
    def on_start(self, ctx):
        ctx.buy(SYMBOL, 1.0, type="limit", price=99.0, leg="level", then=FollowUp(price=100.4))


@pytest.mark.parametrize("lag", [False, True])
def test_an_order_the_exchange_says_filled_after_its_last_fill_still_gets_its_follow_up(
        tmp_path, monkeypatch, lag):
    """A live exchange may report an order's last trade before its status says ``filled``:
    the fill is then handed while the order still looks open, and no follow-up is placed.
    The runner places it once the status says so (the same client id: once, lag or not)."""
    import copy

    from core_engine.trading import OrderStatus
    from core_engine.trading.trader import Context

    panel = _panel()
    end = panel.index[-1] + pd.Timedelta("5min")
    runner = _runner(tmp_path, panel, end, OneFollowUp())
    lagged: set[str] = set()
    real_hand = Context._hand_fill

    def hand(self, fill):
        if not lag or fill.side != "buy" or fill.client_id in lagged:
            return real_hand(self, fill)
        lagged.add(fill.client_id)  # once: the status catches up by the next look
        real_known = self.broker.known

        def stale(client_id):
            order = copy.copy(real_known(client_id))
            order.status = OrderStatus.PARTIALLY_FILLED
            return order

        self.broker.known = stale
        try:
            return real_hand(self, fill)
        finally:
            del self.broker.known

    monkeypatch.setattr(Context, "_hand_fill", hand)
    runner.run(until=end)
    assert bool(lagged) is lag
    sells = [o for o in runner.journal.orders() if o.side == "sell"]
    assert len(sells) == 1 and sells[0].status == "filled", sells
    assert sells[0].client_id == runner.ctx._follow_id(runner.broker.known(
        next(o.client_id for o in runner.journal.orders() if o.side == "buy")))
