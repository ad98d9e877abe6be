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


# ---------------------------------------------------------------- candle contract
# Fault codes of fill_column (0: no fault).
FAULT_CANDLE = 1  # a price/volume rule of the candle contract
FAULT_ORDER = 2  # timestamp not after the previous one (unsorted or duplicate)
FAULT_GRID = 3  # timestamp off the timeframe's epoch grid
FAULT_RANGE = 4  # timestamp outside the panel's rows (a caller bug; never from valid input)


@njit(cache=True)
def candle_ok(o, h, lo, c, v):
    """Whether one candle keeps the price/volume contract of a candle frame.

    Finite positive prices, finite non-negative volume, ``low <= min(open, close)`` and
    ``high >= max(open, close)``. Written as one chain of comparisons: NaN fails every
    comparison, and ``0 < low <= open, close <= high < inf`` bounds all four prices.
    """
    return (0.0 < lo and lo <= o and lo <= c and o <= h and c <= h and h < np.inf
            and 0.0 <= v and v < np.inf)


@njit(cache=True, nogil=True)
def gap_free(ns, step):
    """Whether consecutive timestamps are exactly ``step`` apart (a branch-free count)."""
    breaks = 0
    for i in range(1, ns.shape[0]):
        breaks += ns[i] - ns[i - 1] != step
    return breaks == 0


@njit(cache=True, nogil=True)
def all_candles_ok(o, h, lo, c, v, allow_missing):
    """Whether every candle passes :func:`candle_ok`; with ``allow_missing`` a candle NaN in
    all five fields (a panel's missing candle) passes too.

    Written without short-circuits so that LLVM vectorises it: the check costs about a
    third of copying the arrays. The caller finds the first bad row only when this fails.
    """
    bad = 0
    for i in range(o.shape[0]):
        ok = ((0.0 < lo[i]) & (lo[i] <= o[i]) & (lo[i] <= c[i]) & (o[i] <= h[i])
              & (c[i] <= h[i]) & (h[i] < np.inf) & (0.0 <= v[i]) & (v[i] < np.inf))
        if allow_missing:
            ok = ok | (np.isnan(o[i]) & np.isnan(h[i]) & np.isnan(lo[i]) & np.isnan(c[i])
                       & np.isnan(v[i]))
        bad += not ok
    return bad == 0


@njit(cache=True, nogil=True)
def fill_column(ns, o, h, lo, c, v, out_o, out_h, out_l, out_c, out_v, first, step,
                lo_ns, hi_ns, check, last_row):
    """Write one series into a panel column (five 1-D outputs), NaN on the rows it skips.

    Row of a candle: ``(ns - first) // step``. Candles outside ``[lo_ns, hi_ns)`` are left out.
    Rows must strictly increase (always checked: the NaN fill between written rows relies
    on it); with ``check`` every candle must also pass :func:`candle_ok` and lie on the epoch
    grid of ``step``. ``last_row`` is the last row already written (-1 for none), so a series
    can be written in consecutive chunks.

    Returns ``(fault, position, last_row)``: a fault code (0 for none) with the input
    position where it was found, and the last row written. Rows after ``last_row`` are not
    touched; the caller fills them with NaN when the series is complete.
    """
    n_rows = out_o.shape[0]
    n = ns.shape[0]
    if n and lo_ns <= ns[0] and ns[n - 1] < hi_ns:
        # The common case, a gap-free valid run: check it with branch-free (vectorised)
        # passes, then copy it as five slices; anything else takes the row loop below,
        # which also finds where the fault is.
        row0 = (ns[0] - first) // step
        fits = row0 > last_row and row0 + n <= n_rows and (ns[0] - first) % step == 0
        if fits and gap_free(ns, step) and (not check or (ns[0] % step == 0
                                                          and all_candles_ok(o, h, lo, c, v, False))):
            for r in range(last_row + 1, row0):
                out_o[r] = np.nan
                out_h[r] = np.nan
                out_l[r] = np.nan
                out_c[r] = np.nan
                out_v[r] = np.nan
            # five plain copy loops (LLVM turns each into a memcpy; slice assignment would
            # cost seconds of compile time on a cold start)
            for i in range(n):
                out_o[row0 + i] = o[i]
            for i in range(n):
                out_h[row0 + i] = h[i]
            for i in range(n):
                out_l[row0 + i] = lo[i]
            for i in range(n):
                out_c[row0 + i] = c[i]
            for i in range(n):
                out_v[row0 + i] = v[i]
            return 0, -1, row0 + n - 1
    # the next candle of a gap-free run sits one step after the last: no integer division
    next_t = first + (last_row + 1) * step
    for i in range(n):
        t = ns[i]
        if t < lo_ns or t >= hi_ns:
            continue
        if check and not candle_ok(o[i], h[i], lo[i], c[i], v[i]):
            return FAULT_CANDLE, i, last_row
        if t == next_t and last_row >= 0:
            row = last_row + 1
        else:
            if check and t % step != 0:
                return FAULT_GRID, i, last_row
            row = (t - first) // step
            if row <= last_row:
                return FAULT_ORDER, i, last_row
            for r in range(last_row + 1, min(row, n_rows)):
                out_o[r] = np.nan
                out_h[r] = np.nan
                out_l[r] = np.nan
                out_c[r] = np.nan
                out_v[r] = np.nan
        if row >= n_rows:
            return FAULT_RANGE, i, last_row
        out_o[row] = o[i]
        out_h[row] = h[i]
        out_l[row] = lo[i]
        out_c[row] = c[i]
        out_v[row] = v[i]
        last_row = row
        next_t = t + step
    return 0, -1, last_row


@njit(cache=True)
def close_jumps(close, factor):
    """Price discontinuities of a panel's closes: consecutive present closes whose ratio
    exceeds ``factor`` or falls below ``1 / factor`` (adjacent, or across missing candles).

    Returns an ``(n_jumps, 3)`` int64 array of ``(column, row_before, row_after)``, ordered
    by column then row.
    """
    n_rows, n_cols = close.shape
    counts = np.zeros(n_cols, dtype=np.int64)
    for j in range(n_cols):
        prev = -1
        for i in range(n_rows):
            x = close[i, j]
            if np.isnan(x):
                continue
            if prev >= 0:
                ratio = x / close[prev, j]
                if ratio > factor or ratio * factor < 1.0:
                    counts[j] += 1
            prev = i
    offsets = np.zeros(n_cols + 1, dtype=np.int64)
    for j in range(n_cols):
        offsets[j + 1] = offsets[j] + counts[j]
    out = np.empty((offsets[n_cols], 3), dtype=np.int64)
    for j in range(n_cols):
        k = offsets[j]
        if counts[j] == 0:
            continue
        prev = -1
        for i in range(n_rows):
            x = close[i, j]
            if np.isnan(x):
                continue
            if prev >= 0:
                ratio = x / close[prev, j]
                if ratio > factor or ratio * factor < 1.0:
                    out[k, 0] = j
                    out[k, 1] = prev
                    out[k, 2] = i
                    k += 1
            prev = i
    return out
