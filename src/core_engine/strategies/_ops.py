"""Small causal array operations shared by the built-in strategies (rows = time)."""

from __future__ import annotations

import numpy as np


def previous_present(values: np.ndarray) -> np.ndarray:
    """Value of each column at its previous non-NaN row (strictly before row ``i``).

    Row ``i`` uses rows ``< i`` only. Used for "the previous candle's rolling high": with a
    missing candle in between, the previous candle is the last one that exists.
    """
    values = np.asarray(values, dtype=np.float64)
    n_rows = values.shape[0]
    out = np.full(values.shape, np.nan)
    if n_rows < 2:
        return out
    rows = np.where(~np.isnan(values), np.arange(n_rows)[:, None], -1)
    last = np.maximum.accumulate(rows, axis=0)  # last non-NaN row at or before i
    prev = last[:-1]
    cols = np.broadcast_to(np.arange(values.shape[1]), prev.shape)
    found = prev >= 0
    out[1:][found] = values[prev[found], cols[found]]
    return out


def recent_any(mask: np.ndarray, length: int) -> np.ndarray:
    """Whether ``mask`` was True on any of the last ``length`` rows (``i-length+1 .. i``)."""
    counts = np.cumsum(np.asarray(mask, dtype=np.int64), axis=0)
    window = counts.copy()
    window[length:] -= counts[:-length]
    return window > 0


def nan_where(condition: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` where ``condition`` holds, NaN elsewhere (float64)."""
    return np.where(condition, np.asarray(values, dtype=np.float64), np.nan)
