"""Recorded-request tests of our order parameters, the way ccxt's own static tests do it:
a fixed call goes through ccxt's real request builder and signer, and the URL, body and
signature it would send are compared with the expected ones (nothing is sent)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl

import ccxt
import pytest

from core_engine.errors import ConfigError
from core_engine.live.client_ids import client_order_id, kraken_userref
from core_engine.live.exchange_params import create_call, lookup_params

KRAKEN_SECRET = base64.b64encode(b"kraken-secret-bytes-for-tests").decode()
NONCE = 1700000000000
KRAKEN_PAIRS = {"error": [], "result": {"XXBTZUSD": {
    "altname": "XBTUSD", "wsname": "XBT/USD", "aclass_base": "currency", "base": "XXBT",
    "aclass_quote": "currency", "quote": "ZUSD", "lot": "unit", "cost_decimals": 5,
    "pair_decimals": 1, "lot_decimals": 8, "lot_multiplier": 1, "leverage_buy": [],
    "leverage_sell": [], "fees": [[0, 0.4]], "fees_maker": [[0, 0.25]],
    "fee_volume_currency": "ZUSD", "margin_call": 80, "margin_stop": 40, "ordermin": "0.0001",
    "costmin": "0.5", "tick_size": "0.1", "status": "online"}}}


def _recording_kraken():
    sent = []
    exchange = ccxt.kraken({"apiKey": "kraken-key-for-tests", "secret": KRAKEN_SECRET,
                            "enableRateLimit": False})

    def fetch(url, method="GET", headers=None, body=None):
        sent.append({"method": method, "url": url, "headers": headers, "body": body})
        if url.endswith("/public/AssetPairs"):
            return KRAKEN_PAIRS
        if url.endswith("/public/Assets"):
            return {"error": [], "result": {}}
        if url.endswith("/private/CancelOrder"):
            return {"error": [], "result": {"count": 1}}
        return {"error": [], "result": {"descr": {"order": "buy 0.01000000 XBTUSD @ market"},
                                        "txid": ["OABCDE-FGHIJ-KLMNOP"]}}

    exchange.fetch = fetch
    exchange.incrementing_nonce = lambda: NONCE
    exchange.load_markets()
    sent.clear()
    return exchange, sent


def _kraken_signature(path: str, body: str) -> str:
    """Kraken's documented scheme, written independently of ccxt:
    HMAC-SHA512(base64-decoded secret, path + SHA256(nonce + POST data)), base64."""
    digest = hashlib.sha256((str(NONCE) + body).encode()).digest()
    mac = hmac.new(base64.b64decode(KRAKEN_SECRET), path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def test_kraken_market_order_carries_cl_ord_id_and_userref():
    exchange, sent = _recording_kraken()
    cid = client_order_id("macd-1", "2021-03-01T10:00Z", "BTC/USD", "entry", exchange="kraken")
    call = create_call("kraken", client_id=cid, symbol="BTC/USD", side="buy",
                       order_type="market", quantity=0.01)
    exchange.create_order(**call.kwargs())
    request = sent[-1]
    assert request["method"] == "POST"
    assert request["url"] == "https://api.kraken.com/0/private/AddOrder"
    assert request["body"] == (f"nonce={NONCE}&pair=XXBTZUSD&type=buy&ordertype=market&"
                               f"volume=0.01&cl_ord_id={cid}&userref={kraken_userref(cid)}")
    assert len(cid) == 18
    assert request["headers"]["API-Sign"] == _kraken_signature("/0/private/AddOrder",
                                                               request["body"])


def test_kraken_stop_loss_is_a_stop_loss_order_at_the_trigger_price():
    exchange, sent = _recording_kraken()
    call = create_call("kraken", client_id="ceabcdefghijklmnop", symbol="BTC/USD", side="sell",
                       order_type="stop", quantity=0.5, stop_price=25000.0)
    exchange.create_order(**call.kwargs())
    body = dict(parse_qsl(sent[-1]["body"]))
    assert body == {"nonce": str(NONCE), "pair": "XXBTZUSD", "type": "sell",
                    "ordertype": "stop-loss", "volume": "0.5", "price": "25000",
                    "cl_ord_id": "ceabcdefghijklmnop",
                    "userref": str(kraken_userref("ceabcdefghijklmnop"))}
    take = create_call("kraken", client_id="ceabcdefghijklmnoq", symbol="BTC/USD", side="sell",
                       order_type="take_profit", quantity=0.5, stop_price=40000.0)
    exchange.create_order(**take.kwargs())
    assert dict(parse_qsl(sent[-1]["body"]))["ordertype"] == "take-profit"


def test_kraken_takes_the_trading_layers_ids_as_uuids():
    from core_engine.trading.orders import client_order_id as trading_id

    exchange, sent = _recording_kraken()
    cid = trading_id("ranking-1", "2021-03-01T10:00Z", "BTC/USD", "entry")
    exchange.create_order(**create_call("kraken", client_id=cid, symbol="BTC/USD", side="buy",
                                        order_type="market", quantity=0.01).kwargs())
    body = dict(parse_qsl(sent[-1]["body"]))
    assert body["cl_ord_id"] == f"{cid[:8]}-{cid[8:12]}-{cid[12:16]}-{cid[16:20]}-{cid[20:]}"


def test_kraken_cancel_by_client_id():
    exchange, sent = _recording_kraken()
    exchange.cancel_order(None, "BTC/USD", lookup_params("kraken", "ceabcdefghijklmnop"))
    assert sent[-1]["url"] == "https://api.kraken.com/0/private/CancelOrder"
    assert sent[-1]["body"] == f"nonce={NONCE}&cl_ord_id=ceabcdefghijklmnop"


def test_binance_stop_loss_and_client_id_requests(fake):
    """The same check for Binance, on the fake (which records what it received)."""
    from .conftest import make_client

    client = make_client(fake)
    client.load_markets()
    client.create_order(**create_call("binance", client_id="ce-entry", symbol="BTC/USDT",
                                      side="buy", order_type="market", quantity=0.01).kwargs())
    stop = round(float(fake.candle("BTC/USDT")[0]) * 0.9, 2)
    client.create_order(**create_call("binance", client_id="ce-stop", symbol="BTC/USDT",
                                      side="sell", order_type="stop", quantity=0.00999,
                                      stop_price=stop).kwargs())
    placed = fake.orders[-1]
    assert (placed.client_id, placed.type, placed.side) == ("ce-stop", "STOP_LOSS", "SELL")
    assert float(placed.stop_price) == pytest.approx(stop)
    found = client.fetch_order(None, "BTC/USDT", lookup_params("binance", "ce-stop"))
    assert found["clientOrderId"] == "ce-stop" and found["status"] == "open"


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"order_type": "stop"}, "stop_price"),
    ({"order_type": "limit"}, "limit_price"),
    ({"order_type": "iceberg"}, "type must be one of"),
    ({"side": "short"}, "side must be one of"),
    ({"quantity": 0.0}, "quantity must be a positive"),
    ({"quantity": float("nan")}, "quantity must be a positive"),
])
def test_bad_orders_are_refused_with_the_parameter_named(kwargs, fragment):
    base = {"client_id": "ce1", "symbol": "BTC/USDT", "side": "buy", "order_type": "market",
            "quantity": 1.0}
    with pytest.raises(ConfigError, match=fragment):
        create_call("binance", **{**base, **kwargs})


def test_unsupported_exchange_is_named():
    with pytest.raises(ConfigError, match="'bitfinex' is not supported"):
        create_call("bitfinex", client_id="c", symbol="BTC/USD", side="buy",
                    order_type="market", quantity=1.0)
    with pytest.raises(ConfigError, match="'bitfinex' is not supported"):
        lookup_params("bitfinex", "c")
