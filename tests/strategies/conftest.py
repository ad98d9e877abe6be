"""Fixtures of the strategy tests: seeded synthetic panels and a real 5m Binance slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core_engine.data.panel import Panel

DATA_DIR = Path(__file__).parents[1] / "data_files"


def make_panel(n_times: int = 400, symbols=("AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT"),
               seed: int = 0, missing: float = 0.0, timeframe: str = "5m") -> Panel:
    """A seeded random-walk OHLCV panel; ``missing`` = fraction of candles removed."""
    rng = np.random.default_rng(seed)
    n_sym = len(symbols)
    drift = rng.normal(0, 0.0005, size=n_sym)
    rets = rng.normal(drift, 0.004, size=(n_times, n_sym))
    close = 100.0 * np.exp(np.cumsum(rets, axis=0)) * (1 + np.arange(n_sym))
    open_ = np.vstack([close[:1] * (1 - 0.001), close[:-1]])
    wick = np.abs(rng.normal(0, 0.002, size=(n_times, n_sym)))
    high = np.maximum(open_, close) * (1 + wick)
    low = np.minimum(open_, close) * (1 - wick[::-1])
    volume = rng.lognormal(3, 0.6, size=(n_times, n_sym))
    if missing:
        holes = rng.random((n_times, n_sym)) < missing
        holes[:5] = False
        for arr in (open_, high, low, close, volume):
            arr[holes] = np.nan
    index = pd.date_range("2021-01-01", periods=n_times, freq="5min", tz="UTC")
    return Panel(index, tuple(symbols), timeframe, open_, high, low, close, volume)


@pytest.fixture
def synthetic_panel() -> Panel:
    return make_panel()


@pytest.fixture
def synthetic_panel_with_holes() -> Panel:
    return make_panel(seed=3, missing=0.02)


@pytest.fixture(scope="session")
def real_panel() -> Panel:
    """Six Binance spot USDT pairs, 5m, 2021-05-10 .. 2021-05-24 (tests/data_files/README.md)."""
    frames = {
        path.stem.removesuffix("-5m-2021may-2w").replace("_", "/"): pd.read_parquet(path)
        for path in sorted(DATA_DIR.glob("*_USDT-5m-2021may-2w.parquet"))
    }
    return Panel.from_frames(frames, "5m")


@pytest.fixture(name="make_panel")
def make_panel_fixture():
    """The :func:`make_panel` factory, for tests that need their own panel."""
    return make_panel
