"""Adversarial review of the replay's trades (``trading/trips.py``): cases found wrong."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
import pytest

from core_engine.trading import FollowUp, SimBroker, Trader, replay
from core_engine.trading._fast import DeclaredPath
from core_engine.trading.trips import FillTable, _Orders
from tests.trading.test_follow_up import _walk
from tests.trading.test_trips import hand_trades

_READY = DeclaredPath.ready


def _hand_trades(steps: list[tuple[str, float, float, str]]) -> pd.DataFrame:
    """The trades of hand-made fills ``(side, quantity, price, tag)`` of one symbol, one a
    candle, no fees."""
    return hand_trades([{"side": side, "q": q, "price": price, "tag": tag}
                        for side, q, price, tag in steps])


def test_a_rebalancing_sale_after_a_closing_sale_is_priced_at_the_average_cost():
    """Buy 10 @ 100, sell 4 @ 110, rebalance-sell 3 @ 110, sell 3 @ 110: every unit cost
    100, so both trips enter at 100 (3 for 300, then 7 for 700; pnl 30 and 70). The
    rebalancing share was taken of what was still held (3 / 6), not of the basis (3 / 10):
    entry prices 166.67 and 71.43."""
    trades = _hand_trades([("buy", 10.0, 100.0, ""), ("sell", 4.0, 110.0, ""),
                           ("sell", 3.0, 110.0, "rebalance"), ("sell", 3.0, 110.0, "")])
    assert trades["quantity"].tolist() == [3.0, 7.0]
    np.testing.assert_allclose(trades["entry_price"], [100.0, 100.0])
    np.testing.assert_allclose(trades["entry_value"], [300.0, 700.0])
    np.testing.assert_allclose(trades["pnl"], [30.0, 70.0])


def test_a_rebalancing_sale_after_a_closing_sale_and_a_rebuy():
    """Buy 10 @ 100, sell 4 @ 110, buy 2 @ 94 (cost 1188 for 12), rebalance-sell 3 @ 110,
    sell 9 @ 110: at average cost 99 a unit, 3 for 297 then 9 for 891."""
    trades = _hand_trades([("buy", 10.0, 100.0, ""), ("sell", 4.0, 110.0, ""),
                           ("buy", 2.0, 94.0, ""), ("sell", 3.0, 110.0, "rebalance"),
                           ("sell", 5.0, 110.0, "")])
    assert trades["quantity"].tolist() == [3.0, 9.0]
    np.testing.assert_allclose(trades["entry_price"], [99.0, 99.0])
    np.testing.assert_allclose(trades["pnl"], [3 * 11.0, 9 * 11.0])


class _Reused(Trader):
    """Limit buys laid twice at the start under the same legs (the second refused for
    reusing the client ids, kept in the records), each with a repeating sell one step up
    (the declared-orders path); the first noting weight 0.1 and rank 1, the refused ones
    weight 0.9, rank 7 and tag ``rebalance``."""

    def on_start(self, ctx):
        sym = ctx.symbols[0]
        ref = float(ctx.candles(sym, 1)["close"].iloc[-1])
        for again, meta, tag in ((0, {"weight": 0.1, "rank": 1}, ""),
                                 (1, {"weight": 0.9, "rank": 7}, "rebalance")):
            for k in range(1, 4):
                price = ref * (1 - (k + again) * 0.5 / 100)
                ctx.buy(sym, value=100.0, type="limit", price=price, leg=f"l{k}", meta=meta,
                        tag=tag, then=FollowUp(price=price * 1.005, repeat=True))


@pytest.mark.parametrize("numba", [True, False])
def test_the_trades_read_the_order_that_filled_not_one_refused_for_its_client_id(numba):
    """The refused duplicates are listed after the orders they collide with, and the
    trades read the last listed: no weight (it filled nothing), its rank, its tag. The
    orders table keeps them (as the Python path tables them); the trades read the broker's."""
    panel = _walk(400, 3, 0.5)
    with mock.patch.object(DeclaredPath, "ready", lambda self: numba and _READY(self)):
        res = replay(_Reused(), panel, SimBroker(initial_cash=1_000.0),
                     start=panel.index[1])
    trades = res.trades
    assert len(trades)
    assert (trades["rank"] == 1).all()
    assert (trades["exit_reason"] != "rebalance").all()
    # 0.1 a buy (NaN: the refused order filled nothing)
    units = trades["weight"].to_numpy() / 0.1
    np.testing.assert_allclose(units, np.round(units))
    assert (units >= 1).all()


@pytest.mark.parametrize("seed", [1, 4, 7])
@pytest.mark.parametrize("numba", [True, False])
def test_every_trip_enters_within_the_prices_of_its_buys(seed, numba):
    """Random traders selling in parts, some tagged ``rebalance`` (Weighted: its own
    sales; Chaos: the follow-ups of its rebalance-tagged buys): each trip's entry price is
    an average of its buys' prices, and its symbol's trips up to a flat position add up to
    the cash its fills moved."""
    from core_engine.trading._kernels import round_trips
    from tests.trading.test_declared_review import Chaos
    from tests.trading.test_follow_up import _walk_panel
    from tests.trading.test_trips import Weighted

    for make in (lambda: Chaos(seed=seed, sells=0.7), lambda: Weighted(seed=seed)):
        panel = _walk_panel(300, seed + 5, 3, 0.03)
        broker = SimBroker(initial_cash=3_000.0, maker_bps=2.0, taker_bps=6.0)
        with mock.patch.object(DeclaredPath, "ready", lambda self: numba and _READY(self)):
            replay(make(), panel, broker, start=panel.index[1])
        orders = _Orders(broker)
        ft = FillTable(broker, orders)
        first, last, basis, sold = round_trips(ft.col, ft.buy, ft.quantity, ft.price, ft.fee,
                                               ft.weight, ft.rebalance, ft.time,
                                               panel.n_symbols)
        assert len(first)
        for t in range(len(first)):
            # the buys of the symbol since it was last flat (the entry is the earliest of
            # them in time, not always the first made)
            c = ft.col[first[t]]
            mine = ft.col == c
            held = np.cumsum(np.where(ft.buy, 1.0, -1.0) * ft.quantity * mine)
            flat = np.flatnonzero(mine[: first[t]] & (np.abs(held[: first[t]]) < 1e-9))
            at = np.arange(flat[-1] + 1 if len(flat) else 0, last[t] + 1)
            prices = ft.price[at[mine[at] & ft.buy[at]]]
            entry = basis[t, 1] / basis[t, 0]
            assert prices.min() * (1 - 1e-9) <= entry <= prices.max() * (1 + 1e-9), t
        pnl = sold[:, 1] - sold[:, 2] - basis[:, 1] - basis[:, 2]
        for c in range(panel.n_symbols):
            held = np.cumsum(np.where(ft.buy, 1.0, -1.0) * ft.quantity * (ft.col == c))
            flat = [int(i) for i in last[ft.col[last] == c] if abs(held[i]) < 1e-9]
            if not flat:
                continue
            end = max(flat)
            kept = (ft.col == c) & (np.arange(len(ft)) <= end)
            flow = np.where(ft.buy, -1.0, 1.0) * ft.quantity * ft.price - ft.fee
            mine = (ft.col[last] == c) & (last <= end)
            np.testing.assert_allclose(pnl[mine].sum(), flow[kept].sum(), rtol=1e-9,
                                       atol=1e-9)
