"""A follow-up sell on Binance, whose buy paid its fee in the base asset (no BNB): the
account holds the bought quantity less the fee, so the sell of ``filled_quantity`` must be
cut to what the fill left (``CCXTBroker.prepare``: at most the free base, on the lot step),
or the exchange refuses it (-2010) and the level is lost."""

from __future__ import annotations

import pytest

from core_engine.trading import FollowUp, Trader
from core_engine.trading.orders import OrderStatus

from .test_money_path import _runner, assert_clean


class OneLevel(Trader):
    """One limit buy above the market (it fills at once, as a taker) whose take-profit is
    declared: ``then=FollowUp(...)``."""

    name = "one-level"

    def on_bar(self, ctx):
        if self.state.get("cid"):
            return
        ref = float(ctx.candles("BTC/USDT", 1)["close"].iloc[-1])
        order = ctx.buy("BTC/USDT", 0.01, type="limit", price=round(ref * 1.01, 2),
                        leg="level", then=FollowUp(price=round(ref * 1.2, 2)))
        self.state["cid"] = order.client_id


def test_the_follow_up_sell_is_cut_to_what_a_base_asset_fee_left(fake, tmp_path):
    runner = _runner(fake, tmp_path / "j.sqlite", OneLevel())
    runner.run(max_ticks=3)
    assert_clean(fake, runner.journal)
    buys = [o for o in fake.orders if o.side == "BUY"]
    sells = [o for o in fake.orders if o.side == "SELL"]
    assert len(buys) == 1 and len(sells) == 1, [(o.side, o.client_id) for o in fake.orders]
    held = fake.total_balances()["BTC"]
    assert held == pytest.approx(0.01 - 0.01 * 0.001, abs=1e-12)  # the fee in BTC
    assert float(sells[0].quantity) == pytest.approx(held, abs=1e-12)
    assert sells[0].is_open
    row = runner.journal.order(sells[0].client_id)
    assert row.status is OrderStatus.SUBMITTED
    assert runner.journal.errors() == []
