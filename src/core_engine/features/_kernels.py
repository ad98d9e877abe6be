"""Numba kernels of the built-in features.

Layout, from the bottom up:

* ``*_dense`` kernels: one series without missing candles in, preallocated 1-D outputs out.
  They write every output element (NaN during the warm-up), so callers may pass
  uninitialised buffers. Each follows its reference's definition (TA-Lib where TA-Lib has
  the indicator: same seeds, same warm-up, same running totals for SMA); where a cheaper
  but equivalent form pays (Wilder smoothing as two multiplications instead of a division
  on the loop-carried chain, O(1) rolling variance with exact re-anchoring) results agree
  with TA-Lib to ~1e-15 relative, far inside the 1e-9 the tests demand.
* :func:`scan_present`, :func:`gather_present`, :func:`scatter_present`: a series with
  missing candles (NaN rows) is gathered into a compact buffer, computed dense and
  scattered back with NaN at the missing rows: state carries over a missing candle and the
  values at present candles are exactly those of the symbol's own frame without the gaps.
  There is no numba driver: :mod:`core_engine.features._runner` calls the dense kernels of
  the features a run uses, on worker threads, so only those compile.
* Cross-sectional kernels (rank, z-score across the columns of each row).

Every kernel is ``@njit(cache=True)`` (the dense ones release the GIL); nothing here
validates input beyond shapes. Kernels write ``b if b > a else a`` rather than the builtin
``max(a, b)`` (the same result: it is how numba's ``max`` reduces, NaN and signed zeros
included): numba compiles its ``max`` and ``min`` for each signature, a few tenths of a
second of a cold start.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Feature kinds (int constants, indexing the tables below and features._runner's).
SMA = 0
EMA = 1
RSI = 2
MACD = 3
ATR = 4
BBANDS = 5
VOLATILITY = 6
VOLUME_ZSCORE = 7
VOLUME_TREND = 8
TREND_SLOPE = 9
MOMENTUM = 10
HIGH_LOW = 11
EMA_DISTANCE = 12
QUOTE_VOLUME = 13

# outputs per kind, indexed by kind
N_OUTPUTS = np.array([1, 1, 1, 4, 2, 4, 1, 1, 1, 1, 1, 2, 1, 1], dtype=np.int64)


# --------------------------------------------------------------------------- dense 1-D
@njit(cache=True)
def _fill_nan(out, stop):
    n = out.shape[0]
    for i in range(n if n < stop else stop):  # min(stop, n)
        out[i] = np.nan


@njit(cache=True, nogil=True)
def sma_dense(x, length, out):
    """Simple moving average; running total as TA-Lib SMA. Warm-up ``length - 1``."""
    n = x.shape[0]
    _fill_nan(out, length - 1)
    if n < length:
        return
    total = 0.0
    for i in range(length - 1):
        total += x[i]
    for i in range(length - 1, n):
        total += x[i]
        out[i] = total / length
        total -= x[i - length + 1]


@njit(cache=True, nogil=True)
def ema_dense(x, length, start, out):
    """EMA with ``k = 2 / (length + 1)`` seeded by the mean of ``x[start - length + 1 .. start]``.

    The first value is at ``start`` (``start = length - 1`` is TA-Lib EMA; MACD starts its
    fast EMA later, at the slow EMA's first row). Rows before ``start`` are NaN.
    """
    n = x.shape[0]
    _fill_nan(out, start)
    if n <= start:
        return
    k = 2.0 / (length + 1)
    total = 0.0
    for i in range(start - length + 1, start + 1):
        total += x[i]
    prev = total / length
    out[start] = prev
    for i in range(start + 1, n):
        prev = (x[i] - prev) * k + prev
        out[i] = prev


@njit(cache=True, nogil=True)
def rsi_dense(close, length, out):
    """Wilder RSI, equals TA-Lib RSI (0 when average gain and loss are both zero). Warm-up ``length``."""
    n = close.shape[0]
    _fill_nan(out, length)
    if n <= length:
        return
    gain = 0.0
    loss = 0.0
    prev = close[0]
    for i in range(1, length + 1):
        diff = close[i] - prev
        prev = close[i]
        down = -diff
        loss += 0.0 if 0.0 > down else down  # max(-diff, 0): the same sums as TA-Lib's if/else
        gain += 0.0 if 0.0 > diff else diff
    loss /= length
    gain /= length
    total = gain + loss
    out[length] = 100.0 * (gain / total) if total != 0.0 else 0.0
    # Wilder: avg = (avg * (n-1) + x) / n, written with two multiplications so no division
    # sits on the loop-carried chain (~3x faster; differs from TA-Lib by ~1e-16 relative)
    keep = (length - 1) / length
    share = 1.0 / length
    for i in range(length + 1, n):
        diff = close[i] - prev
        prev = close[i]
        down = -diff
        loss = loss * keep + (0.0 if 0.0 > down else down) * share
        gain = gain * keep + (0.0 if 0.0 > diff else diff) * share
        total = gain + loss
        out[i] = 100.0 * (gain / total) if total != 0.0 else 0.0


@njit(cache=True, nogil=True)
def macd_dense(close, fast, slow, signal, line, sig, hist, slope):
    """MACD line, signal, histogram and histogram slope, as TA-Lib MACD.

    TA-Lib starts the fast EMA at the slow EMA's first row (seeded with the mean of the
    ``fast`` closes ending there) and reports all three outputs from row
    ``slow + signal - 2``; the slope (``hist[i] - hist[i-1]``) starts one row later.
    """
    n = close.shape[0]
    if fast > slow:
        fast, slow = slow, fast
    first = slow + signal - 2
    _fill_nan(line, first)
    _fill_nan(sig, first)
    _fill_nan(hist, first)
    _fill_nan(slope, first + 1)
    if n <= first:
        return
    start = slow - 1
    kf = 2.0 / (fast + 1)
    ks = 2.0 / (slow + 1)
    kg = 2.0 / (signal + 1)
    total_f = 0.0
    for i in range(start - fast + 1, start + 1):
        total_f += close[i]
    total_s = 0.0
    for i in range(0, start + 1):
        total_s += close[i]
    ema_f = total_f / fast
    ema_s = total_s / slow
    # the signal EMA is seeded with the mean of the first `signal` MACD values
    total_g = ema_f - ema_s
    for i in range(start + 1, first + 1):
        ema_f = (close[i] - ema_f) * kf + ema_f
        ema_s = (close[i] - ema_s) * ks + ema_s
        total_g += ema_f - ema_s
    ema_g = total_g / signal
    value = ema_f - ema_s
    line[first] = value
    sig[first] = ema_g
    prev_hist = value - ema_g
    hist[first] = prev_hist
    for i in range(first + 1, n):
        ema_f = (close[i] - ema_f) * kf + ema_f
        ema_s = (close[i] - ema_s) * ks + ema_s
        value = ema_f - ema_s
        ema_g = (value - ema_g) * kg + ema_g
        h = value - ema_g
        line[i] = value
        sig[i] = ema_g
        hist[i] = h
        slope[i] = h - prev_hist
        prev_hist = h


@njit(cache=True)
def _true_range(high, low, close, i):
    prev = close[i - 1]
    best = high[i] - low[i]  # max(h - l, |prev - h|, |prev - l|), as Python's max reduces
    up = abs(prev - high[i])
    best = up if up > best else best
    down = abs(prev - low[i])
    return down if down > best else best


@njit(cache=True, nogil=True)
def atr_dense(high, low, close, length, atr, atr_pct):
    """Wilder ATR as TA-Lib ATR (seed: mean of true ranges 1..length) and ``100 * ATR / close``.

    Warm-up ``length``.
    """
    n = close.shape[0]
    _fill_nan(atr, length)
    _fill_nan(atr_pct, length)
    if n <= length:
        return
    total = 0.0
    for i in range(1, length + 1):
        total += _true_range(high, low, close, i)
    prev = total / length
    atr[length] = prev
    atr_pct[length] = 100.0 * prev / close[length]
    keep = (length - 1) / length  # Wilder smoothing without a division on the chain
    share = 1.0 / length
    for i in range(length + 1, n):
        prev = prev * keep + _true_range(high, low, close, i) * share
        atr[i] = prev
        atr_pct[i] = 100.0 * prev / close[i]


@njit(cache=True)
def _window_mean_m2(x, stop, length):
    total = 0.0
    for k in range(stop - length, stop):
        total += x[k]
    mean = total / length
    m2 = 0.0
    for k in range(stop - length, stop):
        d = x[k] - mean
        m2 += d * d
    return mean, m2


@njit(cache=True, nogil=True)
def bbands_dense(close, length, width, upper, middle, lower, bandwidth):
    """Bollinger Bands as TA-Lib BBANDS (SMA middle, population std) and bandwidth.

    The middle band is TA-Lib's running-total SMA (bit for bit). The window variance is
    updated in O(1) per row and recomputed exactly (two passes) every ``length`` rows and
    whenever the window is constant, which keeps it within a few ulps of the exact value
    TA-Lib reports. Warm-up ``length - 1``.
    """
    n = close.shape[0]
    _fill_nan(middle, length - 1)
    _fill_nan(upper, length - 1)
    _fill_nan(lower, length - 1)
    _fill_nan(bandwidth, length - 1)
    if n < length:
        return
    total = 0.0
    run = 1
    for i in range(length - 1):
        total += close[i]
        if i > 0:
            run = run + 1 if close[i] == close[i - 1] else 1
    mean = 0.0
    m2 = 0.0
    until_exact = 0  # rows left before the next exact recomputation
    inv_length = 1.0 / length
    for i in range(length - 1, n):
        x_in = close[i]
        total += x_in
        mid = total / length
        total -= close[i - length + 1]
        if i > 0:
            run = run + 1 if x_in == close[i - 1] else 1
        if until_exact == 0:
            mean, m2 = _window_mean_m2(close, i + 1, length)
            until_exact = length
        else:
            x_out = close[i - length]
            new_mean = mean + (x_in - x_out) * inv_length
            m2 += (x_in - x_out) * (x_in - new_mean + x_out - mean)
            mean = new_mean
        until_exact -= 1
        if run >= length or m2 < 0.0:
            m2 = 0.0
        dev = np.sqrt(m2 * inv_length) * width
        up = mid + dev
        down = mid - dev
        middle[i] = mid
        upper[i] = up
        lower[i] = down
        bandwidth[i] = (up - down) / mid


@njit(cache=True, nogil=True)
def volatility_dense(close, length, out):
    """Rolling sample std (ddof=1) of log returns over ``length`` returns. Warm-up ``length``."""
    n = close.shape[0]
    _fill_nan(out, length)
    if n <= length:
        return
    returns = np.empty(n)
    returns[0] = np.nan
    for i in range(1, n):
        returns[i] = np.log(close[i] / close[i - 1])
    for i in range(length, n):
        mean, m2 = _window_mean_m2(returns, i + 1, length)
        out[i] = np.sqrt(m2 / (length - 1))


@njit(cache=True, nogil=True)
def volume_zscore_rows(volume, length, out):
    """Reference of :func:`volume_zscore_dense`: one row at a time, two passes per window
    (its mean, then the sum of squared deviations), each summed from the oldest value."""
    n = volume.shape[0]
    _fill_nan(out, length - 1)
    for i in range(length - 1, n):
        mean, m2 = _window_mean_m2(volume, i + 1, length)
        std = np.sqrt(m2 / length)
        out[i] = (volume[i] - mean) / std if std > 0.0 else np.nan


_ZBLOCK = 256  # rows of one block of volume_zscore_dense (3 scratch arrays of it: L1-sized)


@njit(cache=True, nogil=True)
def volume_zscore_dense(volume, length, out, scratch):
    """``(v - mean) / std`` over the last ``length`` volumes (ddof=0); NaN when std is 0.

    Warm-up ``length - 1``. Bit for bit :func:`volume_zscore_rows` (each window's two
    sums in the same order, oldest value first), but ``_ZBLOCK`` consecutive rows at a
    time: the inner loops run across the rows of a block, whose sums are independent, so
    they vectorise (SIMD lanes are rows; no reassociation), where one row at a time waits
    on each previous addition of its chain. No running total: an O(1) update would
    change the last bits, and with them ties in the rankings built on the z-scores.
    ``scratch``: a ``(3, _ZBLOCK)`` float64 array (allocated by the caller: an allocation
    inside the kernel costs compile time on a cold start).
    """
    n = volume.shape[0]
    _fill_nan(out, length - 1)
    total = scratch[0]
    mean = scratch[1]
    m2 = scratch[2]
    i0 = length - 1
    while i0 + _ZBLOCK <= n:
        base = i0 - length + 1
        for b in range(_ZBLOCK):
            total[b] = 0.0
            m2[b] = 0.0
        for q in range(length):
            window = volume[base + q:base + q + _ZBLOCK]
            for b in range(_ZBLOCK):
                total[b] += window[b]
        for b in range(_ZBLOCK):
            mean[b] = total[b] / length
        for q in range(length):
            window = volume[base + q:base + q + _ZBLOCK]
            for b in range(_ZBLOCK):
                d = window[b] - mean[b]
                m2[b] += d * d
        rows = volume[i0:i0 + _ZBLOCK]
        dest = out[i0:i0 + _ZBLOCK]
        for b in range(_ZBLOCK):
            dest[b] = _zscore(rows[b], mean[b], m2[b], length)
        i0 += _ZBLOCK
    for i in range(i0, n):  # the last rows, fewer than a block
        mu, s2 = _window_mean_m2(volume, i + 1, length)
        out[i] = _zscore(volume[i], mu, s2, length)


@njit(cache=True, inline="always")
def _zscore(x, mean, m2, length):
    std = np.sqrt(m2 / length)
    return (x - mean) / std if std > 0.0 else np.nan


@njit(cache=True, nogil=True)
def rolling_sum_dense(x, length, out):
    """Rolling sum of ``length`` values of a non-negative series. Warm-up ``length - 1``.

    Running total recomputed exactly every ``length`` rows (bounded drift), and exactly 0
    when the window holds only zeros.
    """
    n = x.shape[0]
    _fill_nan(out, length - 1)
    if n < length:
        return
    zeros = 0
    for i in range(length - 1):
        if x[i] == 0.0:
            zeros += 1
    total = 0.0
    for i in range(length - 1, n):
        if x[i] == 0.0:
            zeros += 1
        if i >= length and x[i - length] == 0.0:
            zeros -= 1
        if (i - length + 1) % length == 0:
            total = 0.0
            for k in range(i - length + 1, i + 1):
                total += x[k]
        else:
            total += x[i] - x[i - length]
        out[i] = 0.0 if zeros == length else total


@njit(cache=True, nogil=True)
def volume_trend_dense(volume, fast, slow, out):
    """``mean(volume, fast) / mean(volume, slow) - 1``; NaN when the slow mean is 0.

    Warm-up ``max(fast, slow) - 1``.
    """
    n = volume.shape[0]
    sum_fast = np.empty(n)
    sum_slow = np.empty(n)
    rolling_sum_dense(volume, fast, sum_fast)
    rolling_sum_dense(volume, slow, sum_slow)
    first = (slow if slow > fast else fast) - 1
    _fill_nan(out, first)
    for i in range(first, n):
        denominator = sum_slow[i] / slow
        out[i] = (sum_fast[i] / fast) / denominator - 1.0 if denominator > 0.0 else np.nan


@njit(cache=True, nogil=True)
def trend_slope_dense(close, length, out):
    """Least-squares slope over ``length`` closes divided by their mean: the fractional
    change per candle (TA-Lib LINEARREG_SLOPE / SMA). Warm-up ``length - 1``.

    Uses centred abscissae, ``sum((k - (length-1)/2) * y_k) / sum((k - (length-1)/2)^2)``,
    which avoids the cancellation of TA-Lib's ``n*SumXY - SumX*SumY`` when the slope is
    near zero (there TA-Lib is off by up to ~1e-8 relative; this stays within ~1e-12).
    """
    n = close.shape[0]
    _fill_nan(out, length - 1)
    centre = 0.5 * (length - 1)
    sum_xx = length * (length * length - 1.0) / 12.0
    for i in range(length - 1, n):
        sum_xy = 0.0
        sum_y = 0.0
        for k in range(length):
            y = close[i - length + 1 + k]
            sum_y += y
            sum_xy += (k - centre) * y
        out[i] = (sum_xy / sum_xx) / (sum_y / length)


@njit(cache=True, nogil=True)
def momentum_dense(close, length, out):
    """``(close[i] - close[i-length]) / close[i-length]`` as TA-Lib ROCP. Warm-up ``length``."""
    n = close.shape[0]
    _fill_nan(out, length)
    for i in range(length, n):
        prev = close[i - length]
        out[i] = (close[i] - prev) / prev


@njit(cache=True, nogil=True)
def rolling_max_dense(x, length, out):
    """Highest value of rows ``i-length+1 .. i`` (TA-Lib MAX). Warm-up ``length - 1``."""
    n = x.shape[0]
    _fill_nan(out, length - 1)
    best_at = -1
    best = 0.0
    for i in range(length - 1, n):
        trailing = i - length + 1
        if best_at < trailing:
            best_at = trailing
            best = x[trailing]
            for k in range(trailing + 1, i + 1):
                if x[k] > best:
                    best_at = k
                    best = x[k]
        elif x[i] >= best:
            best_at = i
            best = x[i]
        out[i] = best


@njit(cache=True, nogil=True)
def rolling_min_dense(x, length, out):
    """Lowest value of rows ``i-length+1 .. i`` (TA-Lib MIN). Warm-up ``length - 1``."""
    n = x.shape[0]
    _fill_nan(out, length - 1)
    best_at = -1
    best = 0.0
    for i in range(length - 1, n):
        trailing = i - length + 1
        if best_at < trailing:
            best_at = trailing
            best = x[trailing]
            for k in range(trailing + 1, i + 1):
                if x[k] < best:
                    best_at = k
                    best = x[k]
        elif x[i] <= best:
            best_at = i
            best = x[i]
        out[i] = best


@njit(cache=True, nogil=True)
def ema_distance_dense(close, fast, slow, out):
    """``(EMA(fast) - EMA(slow)) / EMA(slow)``, each TA-Lib EMA. Warm-up ``max(fast, slow) - 1``."""
    n = close.shape[0]
    ema_fast = np.empty(n)
    ema_slow = np.empty(n)
    ema_dense(close, fast, fast - 1, ema_fast)
    ema_dense(close, slow, slow - 1, ema_slow)
    first = (slow if slow > fast else fast) - 1
    _fill_nan(out, first)
    for i in range(first, n):
        out[i] = (ema_fast[i] - ema_slow[i]) / ema_slow[i]


@njit(cache=True, nogil=True)
def quote_volume_dense(close, volume, length, out):
    """Rolling sum of ``close * volume`` over ``length`` rows. Warm-up ``length - 1``."""
    n = close.shape[0]
    traded = np.empty(n)
    for i in range(n):
        traded[i] = close[i] * volume[i]
    rolling_sum_dense(traded, length, out)


# --------------------------------------------------------------------------- missing candles
# The caller (``features._runner``) calls the dense kernel of each (feature, symbol) task
# itself, on the symbol's own rows when no candle is missing, else on the present candles
# gathered by :func:`gather_present` and put back by :func:`scatter_present`. There is no
# numba driver: a driver branching on the kind compiled every kernel (twice) on each cold
# start (~19 s), and one driver per kind compiled each kernel's code a second time.

READS_RANGE = 1  # the kind reads high and low
READS_VOLUME = 2  # the kind reads volume
# What each kind reads besides close (a bit mask), indexed by kind: a row where any of it is
# NaN is a missing candle for that kind.
READS = np.array([0, 0, 0, 0, 1, 0, 0, 2, 2, 0, 0, 1, 0, 2], dtype=np.int64)


@njit(cache=True, inline="always")
def _is_present(h, lo, c, v, i, reads):
    # Inlined and branch-free: a NaN in any input the feature reads makes the sum NaN.
    # (Short-circuit tests here made the gap-free scan ~3x slower than the ATR itself.)
    x = c[i]
    if reads & READS_RANGE:
        x += h[i] + lo[i]
    if reads & READS_VOLUME:
        x += v[i]
    return not np.isnan(x)


@njit(cache=True, nogil=True)
def scan_present(h, lo, c, v, reads):
    """``(count, first, last)`` of the rows present for a kind reading ``reads``.

    ``first = n, last = -1`` when none is present.
    """
    n = c.shape[0]
    count = 0
    first = n
    last = -1
    for i in range(n):
        if _is_present(h, lo, c, v, i, reads):
            count += 1
            last = i
            if first == n:
                first = i
    return count, first, last


@njit(cache=True, nogil=True)
def gather_present(h, lo, c, v, reads, into):
    """Copy the present rows of ``h, lo, c, v`` to the first columns of rows 0-3 of ``into``."""
    r = 0
    for i in range(c.shape[0]):
        if _is_present(h, lo, c, v, i, reads):
            into[0, r] = h[i]
            into[1, r] = lo[i]
            into[2, r] = c[i]
            into[3, r] = v[i]
            r += 1


@njit(cache=True, nogil=True)
def scatter_present(values, target, h, lo, c, v, reads):
    """Write ``values`` (one per present row, in order) at the present rows of ``target``
    and NaN at the others."""
    r = 0
    for i in range(c.shape[0]):
        if _is_present(h, lo, c, v, i, reads):
            target[i] = values[r]
            r += 1
        else:
            target[i] = np.nan


# --------------------------------------------------------------------------- cross-section
@njit(cache=True, parallel=True)
def cross_sectional_rank_2d(values, pct):
    """Average-tie ranks (1-based) of the non-NaN values of each row; ``/ count`` when pct."""
    n_times, n_cols = values.shape
    out = np.empty((n_cols, n_times)).T
    for t in prange(n_times):
        row = np.empty(n_cols)
        where = np.empty(n_cols, dtype=np.int64)
        m = 0
        for j in range(n_cols):
            out[t, j] = np.nan
            if not np.isnan(values[t, j]):
                row[m] = values[t, j]
                where[m] = j
                m += 1
        if m == 0:
            continue
        order = np.argsort(row[:m], kind="mergesort")
        start = 0
        while start < m:
            stop = start + 1
            while stop < m and row[order[stop]] == row[order[start]]:
                stop += 1
            rank = 0.5 * (start + 1 + stop)  # mean of ranks start+1 .. stop
            if pct:
                rank /= m
            for q in range(start, stop):
                out[t, where[order[q]]] = rank
            start = stop
    return out


@njit(cache=True)
def cross_sectional_zscore_2d(values, out):
    """``(x - mean) / std`` (ddof=0) over the non-NaN values of each row.

    NaN where the value is NaN, where fewer than 2 values are present or std is 0 (all
    values equal: exactly, not through the rounding of their mean).
    """
    # serial: memory-bound, and a prange version costs ~2 s more compilation for nothing;
    # ``out`` (same shape) comes from the caller: no allocation to compile on a cold start
    n_times, n_cols = values.shape
    for t in range(n_times):
        total = 0.0
        m = 0
        first = np.nan
        constant = True
        for j in range(n_cols):
            x = values[t, j]
            if not np.isnan(x):
                total += x
                m += 1
                if m == 1:
                    first = x
                elif x != first:
                    constant = False
        mean = total / m if m > 0 else np.nan
        m2 = 0.0
        for j in range(n_cols):
            x = values[t, j]
            if not np.isnan(x):
                m2 += (x - mean) * (x - mean)
        std = np.sqrt(m2 / m) if m > 1 and not constant else 0.0
        for j in range(n_cols):
            x = values[t, j]
            out[t, j] = (x - mean) / std if (std > 0.0 and not np.isnan(x)) else np.nan
    return out


@njit(cache=True)
def cross_sectional_zscore_cols(values, out, scratch):
    """:func:`cross_sectional_zscore_2d` bit for bit, column by column (for Fortran arrays).

    The row kernel reads a Fortran array's rows with a stride of one column per value;
    here each pass walks the columns in order (contiguous) and keeps every row's running
    sums in ``scratch`` (a ``(5, T)`` float64 array from the caller), so each row's sums
    add the same values in the same order (columns ascending) as the row kernel: equal
    results, ~9x faster on a (4380, 100) Fortran array.
    """
    n_times, n_cols = values.shape
    total = scratch[0]
    count = scratch[1]
    first = scratch[2]
    constant = scratch[3]
    spread = scratch[4]
    for t in range(n_times):
        total[t] = 0.0
        count[t] = 0.0
        first[t] = np.nan
        constant[t] = 1.0
        spread[t] = 0.0
    for j in range(n_cols):
        for t in range(n_times):
            x = values[t, j]
            if not np.isnan(x):
                total[t] += x
                count[t] += 1.0
                if count[t] == 1.0:
                    first[t] = x
                elif x != first[t]:
                    constant[t] = 0.0
    for t in range(n_times):  # total becomes the mean
        total[t] = total[t] / count[t] if count[t] > 0.0 else np.nan
    for j in range(n_cols):
        for t in range(n_times):
            x = values[t, j]
            if not np.isnan(x):
                spread[t] += (x - total[t]) * (x - total[t])
    for t in range(n_times):  # spread becomes the std (0: no z-score on the row)
        ok = count[t] > 1.0 and constant[t] == 0.0
        spread[t] = np.sqrt(spread[t] / count[t]) if ok else 0.0
    for j in range(n_cols):
        for t in range(n_times):
            x = values[t, j]
            std = spread[t]
            out[t, j] = (x - total[t]) / std if (std > 0.0 and not np.isnan(x)) else np.nan
    return out
