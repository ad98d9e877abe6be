"""The fake exchange's ``insufficient_funds`` fault, Binance's ``-2010 Account has insufficient
balance for requested action.``: ccxt raises ``InsufficientFunds``, CCXTBroker maps it to
ours, and the runner journals the order ``rejected`` — not retried, not ``unknown``, not sent
twice — and keeps trading."""

from __future__ import annotations

import json

import ccxt
import pandas as pd
import pytest

from core_engine.errors import InsufficientFunds, OrderRejected
from core_engine.live.runner import Runner
from core_engine.trading import Trader
from core_engine.trading.orders import Order, OrderStatus

from .conftest import make_client
from .fake_binance import INSUFFICIENT
from .test_ccxt_broker import _broker


def test_fake_refuses_a_create_with_binances_error_and_records_nothing(fake):
    client = make_client(fake)
    client.load_markets()
    fake.inject("insufficient_funds")            # only an order create meets it
    assert client.fetch_balance()["free"]["USDT"] == 10_000
    client.fetch_open_orders("BTC/USDT")
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):
        client.create_order("BTC/USDT", "market", "buy", 0.01, None,
                            {"newClientOrderId": "ce-if"})
    assert json.loads(client.last_http_response) == {"code": -2010, "msg": INSUFFICIENT}
    assert fake.faults_fired["insufficient_funds"] == 1
    assert fake.client_id_count["ce-if"] == 0 and fake.orders == []
    assert fake.total_balances()["USDT"] == 10_000
    client.create_order("BTC/USDT", "market", "buy", 0.01, None, {"newClientOrderId": "ce-ok"})
    assert fake.client_id_count["ce-ok"] == 1   # one fault, one create


def test_ccxt_broker_maps_it_to_insufficient_funds(fake):
    broker = _broker(fake)
    fake.inject("insufficient_funds", method="POST", path="/api/v3/order")
    order = Order(client_id="ce-poor", symbol="BTC/USDT", side="buy", quantity=0.01)
    with pytest.raises(InsufficientFunds, match="insufficient balance") as info:
        broker.place(order)
    assert isinstance(info.value, OrderRejected)   # a refusal, not an unknown outcome
    assert order.status is OrderStatus.REJECTED
    assert fake.requests["POST /api/v3/order"] == 1 and fake.client_id_count["ce-poor"] == 0


class FakeTime:
    """The fake exchange's clock, moved candle by candle in this process."""

    def __init__(self, fake):
        self.fake = fake

    def now(self):
        return pd.Timestamp(self.fake.now_ms, unit="ms", tz="UTC")

    def sleep_until(self, t):
        while self.now() < t:
            self.fake.advance()


class BuyEachBar(Trader):
    """Buys 0.01 BTC at the market at every decision; remembers what each buy became."""

    name = "buy-each-bar"

    def on_start(self, ctx):
        self.state = {"answers": []}

    def on_bar(self, ctx):
        order = ctx.buy("BTC/USDT", 0.01, leg="entry")
        self.state["answers"].append(order.status.value)


def test_runner_journals_it_rejected_without_retry_and_keeps_trading(fake, tmp_path):
    clock = FakeTime(fake)
    runner = Runner(BuyEachBar(), _broker(fake), tmp_path / "j.sqlite", clock=clock,
                    symbols=["BTC/USDT"], timeframe="5m", settle="0s", history=30,
                    status_page=False)
    fake.inject("insufficient_funds")
    assert runner.run(max_ticks=3) == 3
    journal = runner.journal
    orders = journal.orders()
    assert [o.status for o in orders] == [OrderStatus.REJECTED, OrderStatus.FILLED,
                                          OrderStatus.FILLED]
    poor = orders[0].client_id
    assert journal.order_events(poor) == [("intent", "new"), ("rejected", "rejected")]
    assert runner.trader.state["answers"] == ["rejected", "filled", "filled"]
    errors = journal.errors()
    assert len(errors) == 1 and errors[0]["kind"] == "InsufficientFunds"
    assert "insufficient balance" in errors[0]["message"]
    # one create per decision: the refused one was not retried, never reached the book
    assert fake.requests["POST /api/v3/order"] == 3
    assert fake.client_id_count[poor] == 0 and fake.duplicate_client_ids() == {}
    assert journal.orders(final=False) == []                  # nothing unknown or open
    assert len(journal.fills()) == len(fake.trades) >= 2
    held = fake.total_balances()
    assert journal.positions()["BTC"] == pytest.approx(held["BTC"], abs=1e-12)
    assert journal.positions()["USDT"] == pytest.approx(held["USDT"], abs=1e-6)
