"""Fixtures of the live tests: a started fake Binance and ccxt clients pointed at it."""

from __future__ import annotations

import pytest

from .fake_binance import FakeBinance

API_KEY = "fake-api-key-0123456789abcdef"
API_SECRET = "fake-api-secret-fedcba9876543210-do-not-leak"


@pytest.fixture
def fake_candles(make_candles):
    return {"BTC/USDT": make_candles(120, seed=1, price=30000.0),
            "ETH/USDT": make_candles(120, seed=2, price=2000.0)}


@pytest.fixture
def fake(fake_candles):
    start = fake_candles["BTC/USDT"]["timestamp"].iloc[20]
    with FakeBinance(fake_candles, balances={"USDT": 10000.0}, keys={API_KEY: API_SECRET},
                     start=start, timeout_sleep=0.3) as server:
        yield server


def make_client(fake, key: str = API_KEY, secret: str = API_SECRET, timeout_ms: int = 150):
    import ccxt

    exchange = ccxt.binance({"apiKey": key, "secret": secret, "timeout": timeout_ms,
                             "enableRateLimit": False})
    return fake.configure(exchange)


@pytest.fixture
def client(fake):
    exchange = make_client(fake)
    exchange.load_markets()
    return exchange
