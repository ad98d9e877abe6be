"""Helpers of the feature tests (importable; fixtures live in conftest.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from core_engine.features import (
    ATR,
    EMA,
    MACD,
    RSI,
    SMA,
    BollingerBands,
    EMADistance,
    Momentum,
    QuoteVolume,
    ReturnVolatility,
    RollingHighLow,
    TrendSlope,
    VolumeTrend,
    VolumeZScore,
)


def builtin_kernel_features():
    """One instance of every kernel feature, some with non-default parameters."""
    return [
        SMA(20), SMA(length=3), EMA(12), EMA(length=26), RSI(14), RSI(length=2),
        MACD(), MACD(fast=5, slow=13, signal=4), ATR(14), ATR(length=1),
        BollingerBands(), BollingerBands(length=10, std=1.5), ReturnVolatility(20),
        VolumeZScore(20), VolumeTrend(5, 20), TrendSlope(20), Momentum(24), Momentum(1),
        RollingHighLow(20), EMADistance(12, 26), QuoteVolume(288), QuoteVolume(length=7),
    ]


def synthetic_candles(n: int, seed: int, *, flat_share: float = 0.1, holes: int = 0,
                      price: float = 100.0) -> pd.DataFrame:
    """A valid frame from a seeded random walk with flat zero-volume candles and gaps."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.01, n) * (rng.random(n) >= flat_share)
    close = price * np.exp(np.cumsum(steps))
    open_ = np.r_[price, close[:-1]]
    wick = np.abs(rng.normal(0.0, 0.004, (2, n))) * (steps != 0)
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = rng.lognormal(3.0, 1.0, n) * (steps != 0)
    ts = pd.date_range("2021-03-01", periods=n + holes, freq="5min", tz="UTC").as_unit("ns")
    if holes:
        keep = np.sort(rng.choice(np.arange(n + holes), size=n, replace=False))
        ts = ts[keep]
    return pd.DataFrame({"timestamp": ts, "open": open_, "high": high, "low": low,
                         "close": close, "volume": volume})


@st.composite
def candle_frames(draw, min_rows: int = 1, max_rows: int = 150):
    """Hypothesis strategy: random-walk candle frames, sometimes with gaps and flat runs."""
    n = draw(st.integers(min_rows, max_rows))
    seed = draw(st.integers(0, 2**32 - 1))
    holes = draw(st.sampled_from([0, 0, 3, 20]))
    flat = draw(st.sampled_from([0.0, 0.1, 0.6]))
    price = draw(st.sampled_from([100.0, 3e-5, 45_000.0]))
    return synthetic_candles(n, seed, flat_share=flat, holes=holes, price=price)
