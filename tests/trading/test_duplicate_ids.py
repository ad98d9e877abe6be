"""An order sent under a client id another order already holds is refused: the trader's
object says so (rejected, ``duplicate_client_id``), and the result's orders table keeps the
order the broker holds under that id (the one that rests or fills), not the refused one."""

from __future__ import annotations

import pytest

from core_engine.trading import SimBroker, Trader, replay
from core_engine.trading.orders import OrderStatus
from tests.trading.test_declared_review import TwiceAtStart, _both, _play, _same, _walk


class SameLegTwice(Trader):
    """Two limit buys under one leg at one time (so one client id), at different prices."""

    def on_start(self, ctx):
        ref = float(ctx.candles("AAA/USDT", 1)["close"].iloc[-1])
        first = ctx.buy("AAA/USDT", 1.0, type="limit", price=ref * 0.999, leg="x")
        second = ctx.buy("AAA/USDT", 1.0, type="limit", price=ref * 0.95, leg="x")
        self.state["seen"] = (first.client_id == second.client_id, first.status.value,
                              second.status.value, second.reason)


def test_the_refused_duplicate_is_marked_rejected_for_the_trader():
    panel = _walk(50, 3, 0.5)
    trader = SameLegTwice()
    replay(trader, panel, SimBroker(), start=panel.index[1])
    assert trader.state["seen"] == (True, "submitted", "rejected", "duplicate_client_id")


@pytest.mark.parametrize("numba", [True, False])
def test_the_orders_table_keeps_the_order_the_broker_holds(numba):
    panel = _walk(300, 3, 0.5)
    res, broker = _play(TwiceAtStart, panel, numba, {"initial_cash": 1_000.0},
                        start=panel.index[1])
    orders = res.orders
    assert orders["client_id"].is_unique
    for row in orders.itertuples():
        held = broker.fetch_order(row.client_id)
        assert (row.status, row.limit_price, row.filled_quantity) == (
            held.status.value, held.limit_price, held.filled_quantity), row.client_id
    assert (orders["status"] == OrderStatus.FILLED.value).sum() > 6


def test_both_paths_still_agree():
    panel = _walk(300, 3, 0.5)
    _same(*_both(TwiceAtStart, panel, {"initial_cash": 1_000.0}, start=panel.index[1]))
