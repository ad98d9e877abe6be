"""CCXTBroker on the fake exchange: the Broker protocol, sizing, stops, groups, partial fills."""

from __future__ import annotations

import pandas as pd
import pytest

from core_engine.errors import BrokerUnavailable, OrderNotFound, OrderRejected
from core_engine.live.ccxt_broker import CCXTBroker, ExchangeFill
from core_engine.live.ccxt_session import CCXTSession
from core_engine.live.keys import KeyRing
from core_engine.trading.broker import Broker
from core_engine.trading.orders import Order, OrderStatus

from .conftest import API_KEY, API_SECRET
from .fake_binance import FakeBinance


class Clock:
    def __init__(self, fake):
        self.fake = fake

    def now(self):
        return pd.Timestamp(self.fake.now_ms, unit="ms", tz="UTC")


def _broker(fake):
    ring = KeyRing.from_env("binance", environ={"CORE_ENGINE_BINANCE_KEY_1": API_KEY,
                                                "CORE_ENGINE_BINANCE_SECRET_1": API_SECRET})
    session = CCXTSession("binance", keys=ring, config={"timeout": 150,
                                                        "enableRateLimit": False},
                          configure=fake.configure, sleep=lambda s: None)
    return CCXTBroker("binance", session=session, symbols=["BTC/USDT", "ETH/USDT"],
                      clock=Clock(fake), price_timeframe="5m")


def test_protocol_market_buy_stop_sized_to_holdings_and_exit_cancelling_it(fake):
    broker = _broker(fake)
    assert isinstance(broker, Broker)
    buy = broker.place(broker.prepare(Order(client_id="ce-buy", symbol="BTC/USDT", side="buy",
                                            quote_quantity=300.0, tag="entry")))
    assert buy.status is OrderStatus.FILLED and buy.exchange_id
    price = float(fake.candle("BTC/USDT")[0])
    assert buy.quantity == pytest.approx(300.0 / (price * 1.001), abs=1e-5)
    held = broker.balances()["BTC"]
    assert held == pytest.approx(buy.quantity * 0.999)  # Binance's fee, in BTC
    fills = broker.fills()
    assert all(isinstance(f, ExchangeFill) and f.fee_asset == "BTC" for f in fills)
    assert sum(f.quantity for f in fills) == pytest.approx(buy.quantity)
    assert {f.client_id for f in fills} == {"ce-buy"}
    # the stop asks for the entry's quantity; it is cut to what is held, on the lot step
    stop = broker.place(broker.prepare(Order(
        client_id="ce-stop", symbol="BTC/USDT", side="sell", type="stop",
        quantity=buy.quantity, stop_price=round(price * 0.9, 2), group="ce-buy", tag="stop")))
    assert stop.status is OrderStatus.SUBMITTED and stop.quantity <= held
    assert held - stop.quantity < 1e-5
    assert [o.client_id for o in broker.open_orders()] == ["ce-stop"]
    with pytest.raises(OrderRejected, match="one exchange-side exit"):
        broker.place(Order(client_id="ce-target", symbol="BTC/USDT", side="sell",
                           type="limit", quantity=stop.quantity,
                           limit_price=round(price * 1.1, 2), group="ce-buy"))
    cancelled = broker.cancel("ce-stop")
    assert cancelled.status is OrderStatus.CANCELLED
    assert broker.cancel("ce-stop").status is OrderStatus.CANCELLED  # final: unchanged
    with pytest.raises(OrderRejected, match="trailing stops"):
        broker.prepare(Order(client_id="ce-trail", symbol="BTC/USDT", side="sell",
                             type="stop", quantity=0.001, trail_pct=1.0,
                             trail_reference=price))
    with pytest.raises(OrderRejected, match="below the market minimum"):
        broker.prepare(Order(client_id="ce-tiny", symbol="ETH/USDT", side="sell",
                             quantity=0.5))  # no ETH held
    with pytest.raises(OrderNotFound):
        broker.fetch_order("ce-none")


def test_partial_fills_and_lookup_after_restart(fake_candles):
    start = fake_candles["BTC/USDT"]["timestamp"].iloc[20]
    with FakeBinance(fake_candles, balances={"USDT": 1e7}, keys={API_KEY: API_SECRET},
                     start=start, max_volume_share=0.0005) as fake:
        broker = _broker(fake)
        limit = round(float(fake.candle("BTC/USDT")[0]) * 0.9999, 2)
        order = broker.place(Order(client_id="ce-rest", symbol="BTC/USDT", side="buy",
                                   type="limit", quantity=20.0, limit_price=limit))
        seen = []
        for _ in range(40):
            fake.advance()
            seen.append(broker.fetch_order("ce-rest").status)
        assert OrderStatus.PARTIALLY_FILLED in seen
        fills = [f for f in broker.fills() if f.client_id == "ce-rest"]
        assert len(fills) >= 2
        assert sum(f.quantity for f in fills) == pytest.approx(order.filled_quantity)
        # a new broker (after a restart) finds the order by its client id in the universe
        fresh = _broker(fake)
        again = fresh.fetch_order("ce-rest")
        assert again.filled_quantity == pytest.approx(order.filled_quantity)
        assert fresh.cancel("ce-rest").status is OrderStatus.CANCELLED


def test_timed_out_create_raises_unknown_outcome(fake):
    broker = _broker(fake)
    fake.inject("timeout_after", method="POST", path="/api/v3/order")
    with pytest.raises(BrokerUnavailable):
        broker.place(Order(client_id="ce-lost", symbol="ETH/USDT", side="buy",
                           quantity=0.1))
    assert broker.fetch_order("ce-lost").status is OrderStatus.FILLED


def test_candles_are_closed_only(fake):
    broker = _broker(fake)
    frame = broker.candles("BTC/USDT", "5m", limit=5)
    now = Clock(fake).now()
    assert len(frame) == 5 and (frame["timestamp"] + pd.Timedelta("5min") <= now).all()
    assert frame["timestamp"].iloc[-1] == now - pd.Timedelta("5min")


def test_a_stop_already_through_its_level_sells_at_market_under_its_own_id(fake):
    """Binance refuses a stop whose price the market has already passed (-2010 "Stop price
    would trigger immediately"). Left there, the position has no protection; the SimBroker
    fills such a stop at the next open. CCXTBroker sends a market sell of the stop's quantity
    under the stop's own client id (the refused create never existed), so the trader hears
    its stop filled, once."""
    broker = _broker(fake)
    buy = broker.place(broker.prepare(Order(client_id="ce-buy2", symbol="BTC/USDT",
                                            side="buy", quote_quantity=300.0, tag="entry")))
    price = float(fake.candle("BTC/USDT")[0])
    held = broker.balances()["BTC"]
    stop = broker.place(broker.prepare(Order(
        client_id="ce-stop2", symbol="BTC/USDT", side="sell", type="stop",
        quantity=buy.quantity, stop_price=round(price * 1.05, 2), group="ce-buy2",
        tag="stop")))
    assert stop.status is OrderStatus.FILLED and stop.reason == "stop_through_when_placed"
    assert stop.filled_quantity == pytest.approx(stop.quantity) and stop.quantity <= held
    assert broker.balances().get("BTC", 0.0) < 1e-5
    sells = [o for o in fake.orders if o.client_id == "ce-stop2"]
    assert len(sells) == 1 and sells[0].type == "MARKET"
    assert {f.client_id for f in broker.fills() if f.side == "sell"} == {"ce-stop2"}
    assert broker.fetch_order("ce-stop2").status is OrderStatus.FILLED
    # the mirror: a stop buy whose level the market is already above buys at market
    buy_stop = broker.place(broker.prepare(Order(
        client_id="ce-stopbuy", symbol="BTC/USDT", side="buy", type="stop", quantity=0.001,
        stop_price=round(price * 0.95, 2))))
    assert buy_stop.status is OrderStatus.FILLED
    assert buy_stop.reason == "stop_through_when_placed"
