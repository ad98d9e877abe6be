"""Fixtures of the risk tests: small hand-built panels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_engine.data.panel import Panel


def build_panel(close, high=None, low=None, volume=None, symbols=None) -> Panel:
    """A 5m panel from (T, N) arrays; open = previous close, high/low = close when omitted."""
    close = np.asarray(close, dtype=np.float64)
    n_times, n_sym = close.shape
    open_ = np.vstack([close[:1], close[:-1]])
    open_ = np.where(np.isnan(open_), close, open_)  # after a missing candle: open at the close
    high = np.maximum(open_, close) if high is None else np.asarray(high, dtype=np.float64)
    low = np.minimum(open_, close) if low is None else np.asarray(low, dtype=np.float64)
    volume = np.ones_like(close) if volume is None else np.asarray(volume, dtype=np.float64)
    gone = np.isnan(close)  # a missing candle is NaN in all five fields (the Panel checks it)
    open_, high, low, volume = (np.where(gone, np.nan, a) for a in (open_, high, low, volume))
    symbols = symbols or tuple(f"S{j}/USDT" for j in range(n_sym))
    index = pd.date_range("2021-03-01", periods=n_times, freq="5min", tz="UTC")
    return Panel(index, tuple(symbols), "5m", open_, high, low, close, volume)


@pytest.fixture(name="build_panel")
def build_panel_fixture():
    return build_panel


@pytest.fixture
def random_panel() -> Panel:
    rng = np.random.default_rng(7)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(600, 4)), axis=0))
    wick = np.abs(rng.normal(0, 0.004, size=close.shape))
    open_ = np.vstack([close[:1], close[:-1]])
    open_ = np.where(np.isnan(open_), close, open_)  # after a missing candle: open at the close
    high = np.maximum(open_, close) * (1 + wick)
    low = np.minimum(open_, close) * (1 - wick)
    volume = rng.lognormal(4, 1.0, size=close.shape)
    close[100:103, 1] = high[100:103, 1] = low[100:103, 1] = volume[100:103, 1] = np.nan
    return build_panel(close, high, low, volume, symbols=("ADA/USDT", "BTC/USDT", "ETH/USDT", "SOL/USDT"))
