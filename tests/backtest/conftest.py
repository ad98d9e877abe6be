"""Fixtures of the backtest tests: small real Binance 5m slices (tests/data_files, see its README)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core_engine.data.panel import Panel

DATA = Path(__file__).parents[1] / "data_files"
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "NKN/USDT")


def load_real_panel(period: str) -> Panel:
    """BTC, ETH, SOL, NKN 5m; period 'feb' (2021-02-06..16, one 15-bar outage) or 'may'
    (2021-05-15..23, the 19 May crash)."""
    frames = {}
    for symbol in SYMBOLS:
        name = symbol.replace("/", "_")
        frames[symbol] = pd.read_parquet(DATA / f"{name}-5m-2021{period}.parquet")
    return Panel.from_frames(frames, "5m")


@pytest.fixture(scope="session")
def real_feb() -> Panel:
    return load_real_panel("feb")


@pytest.fixture(scope="session")
def real_may() -> Panel:
    return load_real_panel("may")
