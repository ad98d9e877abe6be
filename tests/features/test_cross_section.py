"""Cross-sectional rank and z-score against pandas, and their properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core_engine.errors import ConfigError
from core_engine.features import (
    RSI,
    CrossSectional,
    cross_sectional_rank,
    cross_sectional_zscore,
)

values_2d = arrays(
    np.float64, st.tuples(st.integers(1, 30), st.integers(1, 12)),
    elements=st.one_of(st.sampled_from([np.nan, 1.0, 2.0, -3.0]),
                       st.floats(-1e6, 1e6, allow_nan=False)),
)


def pandas_zscore(values):
    frame = pd.DataFrame(values)
    mean = frame.mean(axis=1)
    std = frame.std(axis=1, ddof=0)
    count = frame.count(axis=1)
    # a row of equal values has std 0 exactly (pandas may return rounding noise, ~1e-11)
    constant = frame.max(axis=1) == frame.min(axis=1)
    out = frame.sub(mean, axis=0).div(std.where((std > 0) & (count > 1) & ~constant), axis=0)
    return out.to_numpy()


@settings(max_examples=50, deadline=None)
@given(values=values_2d)
def test_rank_equals_pandas_rank(values):
    expected = pd.DataFrame(values).rank(axis=1, pct=True).to_numpy()
    np.testing.assert_allclose(cross_sectional_rank(values), expected, rtol=1e-15)
    plain = pd.DataFrame(values).rank(axis=1).to_numpy()
    np.testing.assert_allclose(cross_sectional_rank(values, pct=False), plain, rtol=1e-15)


@settings(max_examples=50, deadline=None)
@given(values=values_2d)
def test_zscore_equals_pandas(values):
    ours = cross_sectional_zscore(values)
    expected = pandas_zscore(values)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-9)


@settings(max_examples=80, deadline=None)
@given(values=values_2d)
def test_zscore_of_a_panel_layout_equals_the_row_kernel_bit_for_bit(values):
    """Fortran arrays (a panel's layout) take the column-by-column kernel; it adds each row's
    values in the same order as the row kernel, so the z-scores (and ranking ties built on
    them) are identical, not merely close."""
    from core_engine.features import _kernels

    fortran = np.asfortranarray(values)
    rows = _kernels.cross_sectional_zscore_2d(np.ascontiguousarray(values),
                                              np.empty(values.shape))
    ours = cross_sectional_zscore(fortran)
    np.testing.assert_array_equal(ours, rows)  # NaN where NaN, every other bit equal
    np.testing.assert_array_equal(cross_sectional_zscore(np.ascontiguousarray(values)), rows)


def test_hand_examples():
    values = np.array([[3.0, np.nan, 1.0, 3.0], [np.nan, np.nan, np.nan, np.nan],
                       [5.0, 5.0, 5.0, np.nan]])
    ranks = cross_sectional_rank(values)
    np.testing.assert_allclose(ranks[0], [2.5 / 3, np.nan, 1 / 3, 2.5 / 3])
    assert np.isnan(ranks[1]).all()
    np.testing.assert_allclose(ranks[2], [2 / 3, 2 / 3, 2 / 3, np.nan])
    z = cross_sectional_zscore(values)
    # row 0: values 3, 1, 3 -> mean 7/3, std sqrt(8/9)
    np.testing.assert_allclose(z[0], [(2 / 3) / np.sqrt(8 / 9), np.nan, (-4 / 3) / np.sqrt(8 / 9),
                                      (2 / 3) / np.sqrt(8 / 9)])
    assert np.isnan(z[2]).all()  # all equal: 0/0
    assert ranks.flags.f_contiguous and z.flags.f_contiguous


def test_rows_are_independent_so_the_time_rule_holds():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 8))
    full = cross_sectional_zscore(values)
    np.testing.assert_array_equal(cross_sectional_zscore(values[:20]), full[:20])
    np.testing.assert_array_equal(cross_sectional_rank(values[:20]), cross_sectional_rank(values)[:20])


def test_bad_shapes_and_parameters():
    with pytest.raises(ConfigError, match="2-D"):
        cross_sectional_rank(np.ones(3))
    with pytest.raises(ConfigError, match="'column' parameter"):
        CrossSectional(RSI(14), "rsi_15")
    with pytest.raises(ConfigError, match="'method' parameter"):
        CrossSectional(RSI(14), "rsi_14", "median")


@pytest.mark.parametrize("values", ["yesterday", "a\x00b", {"x": 1}, object(), [["a", "b"]],
                                    [[1.0, 2.0], [3.0]], [1.0, 2.0], 3.0, None])
def test_cross_sectional_transforms_name_values_when_not_a_matrix_of_numbers(values):
    for transform in (cross_sectional_rank, cross_sectional_zscore):
        with pytest.raises(ConfigError, match=f"'values' parameter of {transform.__name__}"):
            transform(values)


@pytest.mark.parametrize("pct", ["yes", None, 1, np.nan])
def test_cross_sectional_rank_names_pct_when_not_a_bool(pct):
    with pytest.raises(ConfigError, match="'pct' parameter of cross_sectional_rank"):
        cross_sectional_rank(np.array([[1.0, 2.0]]), pct=pct)
    assert cross_sectional_rank(np.array([[1.0, 2.0]]), pct=np.bool_(False)).tolist() == [[1, 2]]
