"""A small one-symbol panel of flat 5-minute candles for the paper-runner tests: every
candle opens and closes at 100 with a range of ±0.5, and a test changes only what it needs
(a low that reaches a limit, the volume a volume cap reads)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from core_engine.data import Panel

SYMBOL = "BTC/USDT"


def flat_panel(*, lows: Mapping[int, float] | None = None, volume: np.ndarray | None = None,
               closes: np.ndarray | None = None, rows: int = 24) -> Panel:
    """``rows`` candles from 2021-01-01 00:00 UTC at 100; ``lows`` sets the low of given
    rows, ``volume`` and ``closes`` replace those columns (default 1,000 and 100)."""
    times = pd.date_range("2021-01-01", periods=rows, freq="5min", tz="UTC")
    price = np.full(rows, 100.0)
    low = price - 0.5
    for row, value in (lows or {}).items():
        low[row] = value
    frame = pd.DataFrame({"timestamp": times, "open": price, "high": price + 0.5, "low": low,
                          "close": price if closes is None else closes,
                          "volume": np.full(rows, 1_000.0) if volume is None else volume})
    return Panel.from_frames({SYMBOL: frame}, "5m")
