"""Numba kernels of the risk layer: top-n selection and rolling means for gates.

Kernels take and return NumPy arrays only and validate nothing beyond shapes; the public
wrappers in ``allocation.py`` and ``gates.py`` validate and convert.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def top_n_select_1d(scores, eligible, name_rank, n):
    """Columns of the ``n`` best finite, eligible scores, best first, ``-1`` for empty slots.

    Ties are broken by ``name_rank`` ascending (the rank of the symbol name), so the result
    is the same whatever the column order.
    """
    n_cols = scores.shape[0]
    picks = np.full(n, -1, dtype=np.int64)
    taken = np.zeros(n_cols, dtype=np.bool_)
    for k in range(n):
        best = -1
        best_score = 0.0
        for j in range(n_cols):
            if taken[j] or not eligible[j]:
                continue
            s = scores[j]
            if not np.isfinite(s):
                continue
            if best == -1 or s > best_score or (s == best_score and name_rank[j] < name_rank[best]):
                best = j
                best_score = s
        if best == -1:
            break
        picks[k] = best
        taken[best] = True
    return picks


@njit(cache=True, parallel=True)
def top_n_select_2d(scores, eligible, name_rank, n):
    """Row-wise :func:`top_n_select_1d` over a ``(D, N)`` array; returns ``(D, n)`` int64."""
    n_rows = scores.shape[0]
    picks = np.full((n_rows, n), -1, dtype=np.int64)
    for i in prange(n_rows):
        picks[i, :] = top_n_select_1d(scores[i, :], eligible[i, :], name_rank, n)
    return picks


@njit(cache=True)
def rolling_mean_1d(values, length):
    """Mean of the last ``length`` values at each row; NaN until ``length`` values and while
    the window holds a NaN (equals ``pandas.Series.rolling(length).mean()``)."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    total = 0.0
    n_nan = 0
    for i in range(n):
        v = values[i]
        if np.isnan(v):
            n_nan += 1
        else:
            total += v
        if i >= length:
            old = values[i - length]
            if np.isnan(old):
                n_nan -= 1
            else:
                total -= old
        if i >= length - 1 and n_nan == 0:
            out[i] = total / length
    return out


@njit(cache=True, parallel=True)
def rolling_mean_2d(values, length):
    """Column-wise :func:`rolling_mean_1d` of a ``(T, N)`` array."""
    out = np.empty(values.shape)
    for j in prange(values.shape[1]):
        out[:, j] = rolling_mean_1d(values[:, j], length)
    return out
