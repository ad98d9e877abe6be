"""Fast kernels equal their one-row-at-a-time references bit for bit (issue 9 §4).

A fast path that changed even the last bit of a feature could flip a tie in a ranking and
change the golden numbers, so these compare with ``array_equal``, not a tolerance.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.features import _kernels as k


@st.composite
def volumes(draw):
    n = draw(st.integers(0, 700))  # across several blocks of _ZBLOCK rows and a tail
    kind = draw(st.sampled_from(["lognormal", "ties", "zeros", "huge"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "lognormal":
        v = rng.lognormal(10.0, 1.5, n)
    elif kind == "ties":  # few distinct values: constant windows, std exactly 0
        v = rng.integers(0, 3, n).astype(np.float64) * 7.25
    elif kind == "zeros":
        v = np.where(rng.random(n) < 0.8, 0.0, rng.lognormal(3.0, 1.0, n))
    else:
        v = rng.lognormal(0.0, 8.0, n) * 1e12
    return v


@settings(max_examples=150, deadline=None)
@given(volume=volumes(), length=st.integers(2, 300))
def test_volume_zscore_dense_is_bit_identical_to_the_row_reference(volume, length):
    fast = np.full(volume.shape, 123.0)  # stale values must all be overwritten
    reference = np.full(volume.shape, -5.0)
    k.volume_zscore_dense(volume, length, fast, np.empty((3, k._ZBLOCK)))
    k.volume_zscore_rows(volume, length, reference)
    assert np.array_equal(fast, reference, equal_nan=True)


def test_volume_zscore_dense_on_a_read_only_column_view():
    rng = np.random.default_rng(3)
    panel = np.asfortranarray(rng.lognormal(10.0, 0.6, (1_000, 3)))
    column = panel[:, 1]
    column.flags.writeable = False
    fast, reference = np.empty(1_000), np.empty(1_000)
    k.volume_zscore_dense(column, 20, fast, np.empty((3, k._ZBLOCK)))
    k.volume_zscore_rows(column, 20, reference)
    assert np.array_equal(fast, reference, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), holes=st.sampled_from(["none", "close", "volume",
                                                                  "high", "edges"]))
def test_features_run_together_equal_each_run_alone(seed, holes):
    """The runner remembers each symbol's present rows per mask of fields read; features
    reading different fields, run together, equal each run alone (raw arrays whose fields
    are missing at different rows, which a Panel would refuse)."""
    from core_engine.features import ATR, RSI, VolumeZScore
    from core_engine.features._runner import run_kernel_features

    rng = np.random.default_rng(seed)
    n, m = 300, 3
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, m)), axis=0))
    high, low = close * 1.01, close * 0.99
    volume = rng.lognormal(5.0, 1.0, (n, m))
    rows = rng.choice(n, 30, replace=False)
    if holes == "close":
        close[rows, 1] = np.nan
    elif holes == "volume":
        volume[rows, 0] = np.nan
    elif holes == "high":
        high[rows, 2] = np.nan
    elif holes == "edges":
        close[:40, 0] = np.nan
        volume[-25:, 2] = np.nan
    features = [RSI(14), ATR(5), VolumeZScore(7)]
    together = run_kernel_features(features, high, low, close, volume)
    for feature, outputs in zip(features, together, strict=True):
        (alone,) = run_kernel_features([feature], high, low, close, volume)
        for a, b in zip(outputs, alone, strict=True):
            assert np.array_equal(a, b, equal_nan=True)


def _rsi_with_builtin_max(close, length):
    """RSI as rsi_dense computes it, written with Python's builtin ``max``."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    if n <= length:
        return out
    gain = loss = 0.0
    prev = float(close[0])
    for i in range(1, length + 1):
        diff = float(close[i]) - prev
        prev = float(close[i])
        loss += max(-diff, 0.0)
        gain += max(diff, 0.0)
    loss /= length
    gain /= length
    total = gain + loss
    out[length] = 100.0 * (gain / total) if total != 0.0 else 0.0
    keep, share = (length - 1) / length, 1.0 / length
    for i in range(length + 1, n):
        diff = float(close[i]) - prev
        prev = float(close[i])
        loss = loss * keep + max(-diff, 0.0) * share
        gain = gain * keep + max(diff, 0.0) * share
        total = gain + loss
        out[i] = 100.0 * (gain / total) if total != 0.0 else 0.0
    return out


def _atr_with_builtin_max(high, low, close, length):
    n = close.shape[0]
    atr = np.full(n, np.nan)
    if n <= length:
        return atr

    def true_range(i):
        prev = float(close[i - 1])
        return max(float(high[i]) - float(low[i]), abs(prev - float(high[i])),
                   abs(prev - float(low[i])))

    total = 0.0
    for i in range(1, length + 1):
        total += true_range(i)
    prev_atr = total / length
    atr[length] = prev_atr
    keep, share = (length - 1) / length, 1.0 / length
    for i in range(length + 1, n):
        prev_atr = prev_atr * keep + true_range(i) * share
        atr[i] = prev_atr
    return atr


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 120), length=st.integers(1, 30),
       flat=st.booleans())
def test_rsi_and_atr_equal_their_builtin_max_definitions_bit_for_bit(seed, n, length, flat):
    """The kernels spell max() as a conditional expression (cold start); same numbers."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    if flat:  # repeated closes: zero moves, ties in the true range
        close = np.round(close, 0)
    high = np.maximum(close, np.roll(close, 1)) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(close, np.roll(close, 1)) * (1 - rng.uniform(0, 0.01, n))
    rsi, atr, atr_pct = np.empty(n), np.empty(n), np.empty(n)
    k.rsi_dense(close, length, rsi)
    k.atr_dense(high, low, close, length, atr, atr_pct)
    assert np.array_equal(rsi, _rsi_with_builtin_max(close, length), equal_nan=True)
    assert np.array_equal(atr, _atr_with_builtin_max(high, low, close, length), equal_nan=True)
