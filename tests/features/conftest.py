"""Fixtures of the feature tests: real candles from tests/data_files (NKN/USDT and BTC/USDT)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).parents[1] / "data_files"


@pytest.fixture(scope="session")
def nkn_5m() -> pd.DataFrame:
    """20,000 real NKN/USDT 5m candles (illiquid: zero volumes, flat candles, 2 gaps)."""
    return pd.read_parquet(DATA / "NKN_USDT-5m-20k.parquet")


@pytest.fixture(scope="session")
def btc_20k(btc_5m) -> pd.DataFrame:
    """The first 20,000 real BTC/USDT 5m candles (2 maintenance gaps)."""
    return btc_5m.iloc[:20_000].reset_index(drop=True)
