"""Small hand-made candle panels for the event-world tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_engine.data import Panel


def make_panel(rows: list[tuple], symbol: str = "AAA/USDT", start: str = "2021-01-01") -> Panel:
    """One symbol from ``(open, high, low, close, volume)`` rows; ``None`` = a missing candle."""
    n = len(rows)
    arr = np.full((n, 5), np.nan)
    for i, row in enumerate(rows):
        if row is not None:
            arr[i] = row
    index = pd.date_range(start, periods=n, freq="5min", tz="UTC")
    return Panel(index=index, symbols=(symbol,), timeframe="5m",
                 **{f: arr[:, k:k + 1] for k, f in enumerate(("open", "high", "low", "close",
                                                              "volume"))})


@pytest.fixture
def panel_of():
    return make_panel
