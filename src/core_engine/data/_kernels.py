"""Numba kernels of the data layer (arrays in, arrays out; validation is the caller's job)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def resample_ohlcv_1d(open_, high, low, close, volume, offset, ratio, n_out):
    """Aggregate one series of base candles into buckets of ``ratio`` candles.

    Row ``i`` of the input belongs to bucket ``(i + offset) // ratio``. A bucket's open is its
    first present open, high/low the max/min over present candles, close the last present
    close, volume the sum; a bucket with no present candle is NaN everywhere. The last
    output column counts the present candles of each bucket.
    """
    out = np.full((n_out, 6), np.nan)
    for b in range(n_out):
        out[b, 5] = 0.0
    for i in range(open_.shape[0]):
        if np.isnan(close[i]):
            continue
        b = (i + offset) // ratio
        if b < 0 or b >= n_out:
            continue
        if out[b, 5] == 0.0:
            out[b, 0] = open_[i]
            out[b, 1] = high[i]
            out[b, 2] = low[i]
            out[b, 4] = volume[i]
        else:
            if high[i] > out[b, 1]:
                out[b, 1] = high[i]
            if low[i] < out[b, 2]:
                out[b, 2] = low[i]
            out[b, 4] += volume[i]
        out[b, 3] = close[i]
        out[b, 5] += 1.0
    return out


@njit(cache=True, parallel=True)
def resample_ohlcv_2d(open_, high, low, close, volume, offset, ratio, n_out):
    """:func:`resample_ohlcv_1d` over every column; returns six ``(n_out, n_cols)`` arrays."""
    n_cols = open_.shape[1]
    result = np.empty((6, n_out, n_cols))
    for j in prange(n_cols):
        one = resample_ohlcv_1d(open_[:, j], high[:, j], low[:, j], close[:, j], volume[:, j],
                                offset, ratio, n_out)
        for k in range(6):
            for b in range(n_out):
                result[k, b, j] = one[b, k]
    return result
