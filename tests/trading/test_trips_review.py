"""Adversarial review of the replay's trades (``trading/trips.py``): cases found wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core_engine.data.panel import Panel
from core_engine.trading import Order, SimBroker
from core_engine.trading.orders import Fill, OrderSide
from core_engine.trading.trips import FillTable, _Orders, trades_frame


def _hand_trades(steps: list[tuple[str, float, float, str]]) -> pd.DataFrame:
    """The trades of hand-made fills ``(side, quantity, price, tag)`` of one symbol, one a
    candle, no fees."""
    n = len(steps) + 2
    index = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")
    panel = Panel(index=index, symbols=("A/USDT",), timeframe="5m",
                  open=np.full((n, 1), 100.0), high=np.full((n, 1), 120.0),
                  low=np.full((n, 1), 90.0), close=np.full((n, 1), 100.0),
                  volume=np.ones((n, 1)))
    broker = SimBroker()
    broker.bind(panel, 10_000.0)
    orders = _Orders(broker)
    for k, (side, q, price, tag) in enumerate(steps):
        cid = f"o{k}"
        order = Order(client_id=cid, symbol="A/USDT", side=side, type="limit", quantity=q,
                      limit_price=price, tag=tag)
        order.filled_quantity = q
        orders[cid] = broker._orders[cid] = order
        fill = Fill(trade_id=f"t{k}", client_id=cid, symbol="A/USDT", side=OrderSide(side),
                    time=index[k + 1], price=price, quantity=q, fee=0.0, liquidity="maker",
                    reason="limit" if side == "buy" else "take_profit")
        broker._fills.append(fill)
        broker._fill_rows[fill.trade_id] = (k + 1, False)
    return trades_frame(FillTable(broker, orders, panel), orders, broker, panel)


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
