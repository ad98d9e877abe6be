"""ccxt's real ``binance`` client against the local fake: every endpoint, every fault.

These prove the fake is faithful enough for the soak: the ccxt code path we run in production
(request signing, parsing, error mapping) is the one exercised here.
"""

from __future__ import annotations

import ccxt
import pandas as pd
import pytest

from .conftest import API_KEY, make_client
from .fake_binance import FakeBinance


def test_markets_come_from_exchange_info(client):
    market = client.market("BTC/USDT")
    assert market["spot"] and market["active"] and market["id"] == "BTCUSDT"
    assert market["precision"]["amount"] == pytest.approx(1e-5)
    assert market["limits"]["cost"]["min"] == pytest.approx(1.0)
    assert set(client.markets) == {"BTC/USDT", "ETH/USDT"}


def test_klines_end_with_the_forming_candle_open_only(client, fake, fake_candles):
    rows = client.fetch_ohlcv("BTC/USDT", "5m", limit=5)
    frame = fake_candles["BTC/USDT"]
    now = pd.Timestamp(fake.now_ms, unit="ms", tz="UTC")
    assert pd.Timestamp(rows[-1][0], unit="ms", tz="UTC") == now
    assert rows[-1][1] == rows[-1][2] == rows[-1][3] == rows[-1][4] and rows[-1][5] == 0
    closed = frame[frame["timestamp"] < now].tail(4)
    assert [r[0] for r in rows[:-1]] == list(closed["timestamp"].astype("int64") // 1_000_000)
    assert [r[4] for r in rows[:-1]] == pytest.approx(closed["close"].to_list(), rel=1e-9)
    since = int(frame["timestamp"].iloc[3].value // 1_000_000)
    assert client.fetch_ohlcv("BTC/USDT", "5m", since=since, limit=2)[0][0] == since


def test_market_buy_fills_at_the_open_with_fee_in_base(client, fake):
    open_price = float(fake.candle("BTC/USDT")[0])
    order = client.create_order("BTC/USDT", "market", "buy", 0.1, None,
                                {"newClientOrderId": "ce-buy-1"})
    assert order["status"] == "closed" and order["filled"] == pytest.approx(0.1)
    assert order["clientOrderId"] == "ce-buy-1"
    assert order["average"] == pytest.approx(open_price, rel=1e-9)
    trades = client.fetch_my_trades("BTC/USDT")
    assert sum(t["amount"] for t in trades) == pytest.approx(0.1)
    assert all(t["fee"]["currency"] == "BTC" for t in trades)
    total = client.fetch_balance()["total"]
    assert total["BTC"] == pytest.approx(0.1 * 0.999)
    assert total["USDT"] == pytest.approx(10000 - 0.1 * open_price, abs=1e-6)


def test_limit_buy_rests_then_fills_on_a_later_candle(client, fake, fake_candles):
    open_price = float(fake.candle("BTC/USDT")[0])
    limit = round(open_price * 0.995, 2)
    order = client.create_order("BTC/USDT", "limit", "buy", 0.05, limit,
                                {"newClientOrderId": "ce-limit"})
    assert order["status"] == "open"
    assert client.fetch_balance()["used"]["USDT"] == pytest.approx(0.05 * limit, rel=1e-9)
    assert [o["clientOrderId"] for o in client.fetch_open_orders()] == ["ce-limit"]
    for _ in range(80):
        bar = fake.candle("BTC/USDT")
        fake.advance()
        found = client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "ce-limit"})
        if found["status"] == "closed":
            assert bar[2] <= limit
            assert found["average"] == pytest.approx(min(bar[0], limit), rel=1e-9)
            break
    else:
        pytest.fail("the limit order never filled")
    assert client.fetch_open_orders() == []
    assert client.fetch_balance()["used"].get("USDT", 0) == 0


def test_stop_loss_rests_and_fills_when_the_low_reaches_it(client, fake):
    client.create_order("BTC/USDT", "market", "buy", 0.1, None, {"newClientOrderId": "ce-e"})
    stop = round(float(fake.candle("BTC/USDT")[0]) * 0.997, 2)
    order = client.create_order("BTC/USDT", "market", "sell", 0.0999, None,
                                {"newClientOrderId": "ce-stop", "stopLossPrice": stop})
    assert order["status"] == "open" and order["triggerPrice"] == pytest.approx(stop)
    assert fake.orders[-1].type == "STOP_LOSS"
    for _ in range(90):
        bar = fake.candle("BTC/USDT")
        fake.advance()
        found = client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "ce-stop"})
        if found["status"] == "closed":
            assert bar[2] <= stop
            assert found["average"] == pytest.approx(min(bar[0], stop), rel=1e-9)
            return
    pytest.fail("the stop never triggered")


def test_partial_fills_by_volume_share(fake_candles):
    start = fake_candles["BTC/USDT"]["timestamp"].iloc[20]
    with FakeBinance(fake_candles, balances={"USDT": 1e9}, keys={API_KEY: "s" * 20},
                     start=start, max_volume_share=0.001) as fake:
        client = make_client(fake, secret="s" * 20)
        big = 50.0  # far more than 0.1 % of a candle's volume
        limit = round(float(fake.candle("BTC/USDT")[0]) * 0.9999, 2)
        resting = client.create_order("BTC/USDT", "limit", "buy", big, limit,
                                      {"newClientOrderId": "ce-rest"})
        statuses = []
        for _ in range(60):
            fake.advance()
            found = client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "ce-rest"})
            statuses.append((found["status"], found["filled"]))
        fills = client.fetch_my_trades("BTC/USDT")
        assert {t["order"] for t in fills} == {resting["id"]} and len(fills) >= 2
        assert sum(t["amount"] for t in fills) == pytest.approx(found["filled"])
        assert ("open", fills[0]["amount"]) in statuses  # open while partially filled
        assert 0 < fills[0]["amount"] < big


def test_cancel_by_client_id_unlocks_the_balance(client):
    client.create_order("BTC/USDT", "limit", "buy", 0.01, 1000.0, {"newClientOrderId": "ce-c"})
    assert client.fetch_balance()["used"]["USDT"] == pytest.approx(10.0)
    cancelled = client.cancel_order(None, "BTC/USDT", {"origClientOrderId": "ce-c"})
    assert cancelled["status"] == "canceled"
    balance = client.fetch_balance()
    assert balance["used"].get("USDT", 0) == 0 and balance["free"]["USDT"] == 10000


def test_open_orders_and_trades_filter_by_symbol_and_time(client, fake):
    client.create_order("ETH/USDT", "limit", "buy", 0.1, 100.0, {"newClientOrderId": "ce-eth"})
    client.create_order("BTC/USDT", "market", "buy", 0.01, None, {"newClientOrderId": "ce-b1"})
    fake.advance(3)
    client.create_order("BTC/USDT", "market", "buy", 0.01, None, {"newClientOrderId": "ce-b2"})
    assert [o["symbol"] for o in client.fetch_open_orders("ETH/USDT")] == ["ETH/USDT"]
    assert client.fetch_open_orders("BTC/USDT") == []
    later = client.fetch_my_trades("BTC/USDT", since=fake.now_ms)
    assert {t["clientOrderId"] if t.get("clientOrderId") else t["order"] for t in later} == {
        client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "ce-b2"})["id"]}


def test_signature_and_keys_are_checked(fake):
    with pytest.raises(ccxt.AuthenticationError):
        make_client(fake, secret="wrong-secret-wrong-secret").fetch_balance()
    with pytest.raises(ccxt.AuthenticationError):
        make_client(fake, key="unknown-key-123456").fetch_balance()


def _order(client, cid="ce-f", amount=0.01, params=None):
    return client.create_order("BTC/USDT", "market", "buy", amount, None,
                               {"newClientOrderId": cid, **(params or {})})


@pytest.mark.parametrize(("kind", "error", "recorded"), [
    ("timeout_after", ccxt.RequestTimeout, True),
    ("timeout_before", ccxt.RequestTimeout, False),
    ("drop_after", ccxt.NetworkError, True),
    ("drop_before", ccxt.NetworkError, False),
])
def test_timeouts_and_drops_before_or_after_the_order_is_recorded(client, fake, kind, error,
                                                                  recorded):
    fake.inject(kind, method="POST", path="/api/v3/order")
    with pytest.raises(error) as info:
        _order(client)
    if kind.startswith("drop"):
        assert not isinstance(info.value, ccxt.RequestTimeout)
    assert bool(fake.client_id_count["ce-f"]) is recorded
    if recorded:  # the order exists: a lookup by client id finds it
        assert client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "ce-f"})["filled"] > 0
    else:
        with pytest.raises(ccxt.OrderNotFound):
            client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "ce-f"})


@pytest.mark.parametrize("kind", ["http_429", "http_418"])
def test_rate_limits_raise_ddos_protection_with_retry_after(client, fake, kind):
    fake.inject(kind, times=2)
    for _ in range(2):
        with pytest.raises(ccxt.DDoSProtection):
            client.fetch_balance()
    assert client.last_response_headers["Retry-After"] == "1"
    assert client.fetch_balance()["free"]["USDT"] == 10000


def test_503_execution_unknown_is_a_request_timeout(client, fake):
    # Binance's -1007 "execution status unknown" is mapped by ccxt to RequestTimeout
    fake.inject("http_503", method="GET", path="/api/v3/account")
    with pytest.raises(ccxt.RequestTimeout, match="-1007"):
        client.fetch_balance()


def test_not_found_insufficient_funds_and_rejections(client, fake):
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "ce-none"})
    with pytest.raises(ccxt.OrderNotFound):
        client.cancel_order(None, "BTC/USDT", {"origClientOrderId": "ce-none"})
    _order(client, "ce-ok")
    fake.inject("not_found", method="GET", path="/api/v3/order")
    with pytest.raises(ccxt.OrderNotFound):  # a lagging lookup
        client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "ce-ok"})
    with pytest.raises(ccxt.InsufficientFunds):
        _order(client, "ce-big", amount=100.0)
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order("BTC/USDT", "market", "sell", 5.0, None)
    with pytest.raises(ccxt.InvalidOrder, match="lot size"):  # ccxt would round; sent raw
        client.privatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                 "quantity": "0.000001"})
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        client.create_order("BTC/USDT", "market", "sell", 0.001, None,
                            {"stopLossPrice": float(fake.candle("BTC/USDT")[0]) * 1.01})


def test_duplicate_client_id_of_an_open_order_is_rejected(client, fake):
    client.create_order("BTC/USDT", "limit", "buy", 0.01, 1000.0, {"newClientOrderId": "ce-d"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        client.create_order("BTC/USDT", "limit", "buy", 0.01, 1000.0, {"newClientOrderId": "ce-d"})
    assert fake.duplicate_client_ids() == {}
    # as on Binance, a finished order's id may be reused: the fake counts it as a duplicate
    _order(client, "ce-x")
    _order(client, "ce-x")
    assert fake.duplicate_client_ids() == {"ce-x": 2}


def test_random_faults_are_seeded(fake_candles):
    fired = []
    for _ in range(2):
        with FakeBinance(fake_candles, keys={API_KEY: "s" * 20}, seed=7) as fake:
            fake.random_faults({"drop_before": 0.3, "http_429": 0.2})
            client = make_client(fake, secret="s" * 20)
            outcomes = []
            for _ in range(20):
                try:
                    client.fetch_ohlcv("BTC/USDT", "5m", limit=2)
                    outcomes.append("ok")
                except ccxt.DDoSProtection:
                    outcomes.append("429")
                except ccxt.NetworkError:
                    outcomes.append("drop")
            fired.append(outcomes)
    assert fired[0] == fired[1] and {"ok", "429", "drop"} <= set(fired[0])
