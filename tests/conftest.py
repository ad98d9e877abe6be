"""Fixtures shared by the whole suite: real data paths, small synthetic candles, no network."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DATA_FILES = Path(__file__).parent / "data_files"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail any test that tries to reach a host other than this machine."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (
            host.startswith("127.") or host in ("localhost", "::1") or sock.family == socket.AF_UNIX
        ):
            raise RuntimeError(f"Tests must not use the network; tried to connect to {address!r}.")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def data_files() -> Path:
    return DATA_FILES


@pytest.fixture(scope="session")
def btc_5m() -> pd.DataFrame:
    """Real Binance BTC/USDT 5m candles, 2020-12-01 .. 2021-07-17 (65,741 candles, 6 gaps)."""
    return pd.read_parquet(DATA_FILES / "BTC_USDT-5m.parquet")


def _make_candles(n: int, seed: int = 0, start: str = "2021-01-01", timeframe: str = "5m",
                 price: float = 100.0) -> pd.DataFrame:
    """A small valid candle frame from a seeded geometric random walk (test helper)."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    open_ = np.concatenate([[price], close[:-1]])
    wick = np.abs(rng.normal(0, 0.002, (2, n)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = rng.lognormal(3, 1, n)
    ts = pd.date_range(start, periods=n, freq=pd.Timedelta(timeframe.replace("m", "min")), tz="UTC")
    return pd.DataFrame({"timestamp": ts.as_unit("ns"), "open": open_, "high": high, "low": low,
                         "close": close, "volume": volume})


@pytest.fixture(scope="session")
def make_candles():
    """The factory ``make_candles(n, seed=0, start=..., timeframe="5m", price=100.0)``."""
    return _make_candles
