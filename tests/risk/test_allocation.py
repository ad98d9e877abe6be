"""Allocators: hand-built rows with obvious picks, reference weights, hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.errors import ConfigError
from core_engine.risk import (
    ConfidenceWeighted,
    InverseVolatility,
    ScoreProportional,
    TopNEqual,
    symbol_name_rank,
)
from core_engine.risk._kernels import top_n_select_1d
from core_engine.risk.allocation import allocation_extra

SYMBOLS = ["ADA/USDT", "BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
NAN = np.nan


def test_top_n_equal_picks_the_best_three_with_a_third_each():
    scores = np.array([[0.1, 0.9, NAN, 0.5, 0.7]])
    alloc = TopNEqual().allocate(scores, None, SYMBOLS)
    assert alloc.picks.tolist() == [[1, 4, 3]]
    np.testing.assert_allclose(alloc.weights, [[1 / 3, 1 / 3, 1 / 3]], rtol=0, atol=1e-15)
    assert alloc.ranks.tolist() == [[1, 2, 3]]


def test_fewer_candidates_than_slots_leave_cash_and_empty_slots():
    scores = np.array([[NAN, 2.0, NAN, NAN, NAN], [NAN] * 5])
    alloc = TopNEqual(n=3).allocate(scores, None, SYMBOLS)
    assert alloc.picks.tolist() == [[1, -1, -1], [-1, -1, -1]]
    np.testing.assert_allclose(alloc.weights, [[1 / 3, 0, 0], [0, 0, 0]], rtol=0, atol=1e-15)
    assert alloc.ranks.tolist() == [[1, 0, 0], [0, 0, 0]]


def test_gated_symbol_is_never_picked_even_with_the_best_score():
    scores = np.array([[5.0, 1.0, 2.0, 3.0, 4.0]])
    eligible = np.array([[False, True, True, True, True]])
    alloc = TopNEqual(n=2).allocate(scores, eligible, SYMBOLS)
    assert alloc.picks.tolist() == [[4, 3]]


def test_ties_are_broken_by_symbol_name_whatever_the_column_order():
    symbols = ["XRP/USDT", "ADA/USDT", "ETH/USDT"]
    scores = np.array([[1.0, 1.0, 1.0]])
    alloc = TopNEqual(n=2).allocate(scores, None, symbols)
    assert [symbols[c] for c in alloc.picks[0]] == ["ADA/USDT", "ETH/USDT"]


def test_score_proportional_weights_and_skips_non_positive_scores():
    scores = np.array([[3.0, 1.0, -2.0, 0.0, NAN]])
    alloc = ScoreProportional(n=3).allocate(scores, None, SYMBOLS)
    assert alloc.picks.tolist() == [[0, 1, -1]]
    # two picks of three slots invest 2/3, split 3:1
    np.testing.assert_allclose(alloc.weights, [[0.5, 1 / 6, 0.0]], rtol=1e-14)


def test_inverse_volatility_weights_and_skips_missing_volatility():
    scores = np.array([[4.0, 3.0, 2.0, 1.0, 0.5]])
    vol = np.array([[0.01, 0.02, NAN, 0.04, 0.0]])
    alloc = InverseVolatility(n=3).allocate(scores, None, SYMBOLS, {"volatility_20": vol})
    assert alloc.picks.tolist() == [[0, 1, 3]]
    inv = np.array([100.0, 50.0, 25.0])
    np.testing.assert_allclose(alloc.weights[0], inv / inv.sum(), rtol=1e-14)


def test_confidence_weighted_uses_confidence_and_skips_zero():
    scores = np.array([[4.0, 3.0, 2.0, 1.0, 0.5]])
    conf = np.array([[3.0, 0.0, 1.0, 2.0, 3.0]])
    alloc = ConfidenceWeighted(n=3).allocate(scores, None, SYMBOLS, {"confidence": conf})
    assert alloc.picks.tolist() == [[0, 2, 3]]
    np.testing.assert_allclose(alloc.weights[0], [0.5, 1 / 6, 1 / 3], rtol=1e-14)


def test_allocate_row_returns_symbol_weights_best_first():
    out = TopNEqual(n=2).allocate_row(np.array([0.2, 0.1, 0.3, NAN, NAN]), None, SYMBOLS)
    assert list(out.items()) == [("ETH/USDT", 0.5), ("ADA/USDT", 0.5)]


def test_allocation_extra_takes_decision_rows():
    feats = {"volatility_20": np.arange(10.0).reshape(5, 2)}
    extra = allocation_extra(InverseVolatility(), feats, None, np.array([1, 3]))
    assert extra["volatility_20"].tolist() == [[2.0, 3.0], [6.0, 7.0]]
    with pytest.raises(ConfigError, match="confidence"):
        allocation_extra(ConfidenceWeighted(), feats, None, np.array([1]))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_invalid_n_names_the_parameter(bad):
    with pytest.raises(ConfigError, match="'n' parameter of TopNEqual"):
        TopNEqual(n=bad)


def test_input_errors_are_clear():
    alloc = TopNEqual()
    with pytest.raises(ConfigError, match="symbols"):
        alloc.allocate(np.zeros((1, 3)), None, ["A", "B"])
    with pytest.raises(ConfigError, match="boolean"):
        alloc.allocate(np.zeros((1, 2)), np.ones((1, 2)), ["A", "B"])
    with pytest.raises(ConfigError, match="unique"):
        alloc.allocate(np.zeros((1, 2)), None, ["A", "A"])
    with pytest.raises(ConfigError, match="volatility_20"):
        InverseVolatility().allocate(np.zeros((1, 2)), None, ["A", "B"])
    with pytest.raises(ConfigError, match="2-D"):
        alloc.allocate(np.zeros(3), None, ["A", "B", "C"])


def test_name_rank():
    assert symbol_name_rank(["b", "c", "a"]).tolist() == [1, 2, 0]


# ---------------------------------------------------------------------- properties
def _reference(scores, eligible, symbols, n):
    cols = [j for j in range(len(symbols)) if eligible[j] and np.isfinite(scores[j])]
    cols.sort(key=lambda j: (-scores[j], symbols[j]))
    return cols[:n]


score_values = st.one_of(st.just(np.nan), st.sampled_from([0.0, 1.0, -1.0]),
                         st.floats(-5, 5, allow_nan=False))


@st.composite
def allocation_cases(draw):
    n_sym = draw(st.integers(1, 7))
    n_rows = draw(st.integers(1, 4))
    scores = np.array(draw(st.lists(score_values, min_size=n_sym * n_rows, max_size=n_sym * n_rows)))
    eligible = np.array(draw(st.lists(st.booleans(), min_size=n_sym * n_rows, max_size=n_sym * n_rows)))
    extra = np.array(draw(st.lists(st.one_of(st.just(np.nan), st.just(0.0), st.floats(1e-9, 3)),
                                   min_size=n_sym * n_rows, max_size=n_sym * n_rows)))
    perm = draw(st.permutations(range(n_sym)))
    n = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["equal", "prop", "invvol", "conf"]))
    return (scores.reshape(n_rows, n_sym), eligible.reshape(n_rows, n_sym),
            extra.reshape(n_rows, n_sym), np.array(perm), n, kind)


def _make(kind, n):
    return {"equal": TopNEqual(n=n), "prop": ScoreProportional(n=n),
            "invvol": InverseVolatility(n=n), "conf": ConfidenceWeighted(n=n)}[kind]


def _extra(kind, values):
    return {"invvol": {"volatility_20": values}, "conf": {"confidence": values}}.get(kind)


@settings(max_examples=50, deadline=None)
@given(allocation_cases())
def test_allocation_properties(case):
    scores, eligible, extra, perm, n, kind = case
    symbols = [f"S{j}" for j in range(scores.shape[1])]
    allocator = _make(kind, n)
    alloc = allocator.allocate(scores, eligible, symbols, _extra(kind, extra))
    slots = min(n, scores.shape[1])  # one slot per symbol at most (issue 9: n = 10**12)
    assert alloc.picks.shape == alloc.weights.shape == alloc.ranks.shape == (scores.shape[0], slots)
    assert np.all(alloc.weights >= 0)
    assert np.all(alloc.weights.sum(axis=1) <= 1 + 1e-12)
    for i in range(scores.shape[0]):
        picked = [c for c in alloc.picks[i] if c >= 0]
        assert len(picked) <= n and len(set(picked)) == len(picked)
        assert np.all(alloc.picks[i][len(picked):] == -1)
        for c in picked:
            assert eligible[i, c] and np.isfinite(scores[i, c])
        ok = eligible[i].copy()
        if kind == "prop":
            ok &= scores[i] > 0
        if kind in ("invvol", "conf"):
            ok &= np.nan_to_num(extra[i], nan=0.0) > 0
        assert picked == _reference(scores[i], ok, symbols, n)
        assert np.all(alloc.weights[i, : len(picked)] > 0)
    # the same allocation whatever the column order
    permuted = [symbols[j] for j in perm]
    other = allocator.allocate(scores[:, perm], eligible[:, perm], permuted, _extra(kind, extra[:, perm]))
    for i in range(scores.shape[0]):
        mine = {symbols[c]: w for c, w in zip(alloc.picks[i], alloc.weights[i], strict=True) if c >= 0}
        theirs = {permuted[c]: w for c, w in zip(other.picks[i], other.weights[i], strict=True) if c >= 0}
        assert mine.keys() == theirs.keys()
        for key in mine:
            assert mine[key] == pytest.approx(theirs[key], rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(score_values, min_size=1, max_size=9), st.integers(1, 5))
def test_top_n_kernel_matches_sorting(values, n):
    scores = np.array(values)
    rank = np.arange(scores.size, dtype=np.int64)
    picks = top_n_select_1d(scores, np.ones(scores.size, dtype=np.bool_), rank, n)
    expected = _reference(scores, np.ones(scores.size, bool), [f"{j:02d}" for j in range(scores.size)], n)
    assert [int(p) for p in picks if p >= 0] == expected


def test_extreme_volatilities_give_finite_weights():
    scores = np.array([[2.0, 1.0, 0.5]])
    vol = np.array([[5e-324, 1e300, 2.0]])
    alloc = InverseVolatility(n=3).allocate(scores, None, ["A", "B", "C"], {"volatility_20": vol})
    assert np.isfinite(alloc.weights).all() and alloc.weights.sum() == pytest.approx(1.0)
    assert alloc.weights[0, 0] == pytest.approx(1.0)
    huge = ScoreProportional(n=2).allocate(np.array([[1e308, 1e308]]), None, ["A", "B"])
    np.testing.assert_allclose(huge.weights, [[0.5, 0.5]])


def test_allocation_misspelt_or_missing_fields_get_the_did_you_mean():
    from core_engine.risk import Allocation

    picks, weights, ranks = np.array([[0]]), np.array([[1.0]]), np.array([[1]])
    made = Allocation(picks=picks, weights=weights, ranks=ranks)
    assert made.picks is picks and Allocation(picks, weights, ranks)._fields == made._fields
    with pytest.raises(ConfigError, match=r"Allocation has no parameter 'weight'; valid "
                                          r"parameters are \['picks', 'weights', 'ranks'\]\. "
                                          r"Did you mean 'weights'\?"):
        Allocation(picks=picks, weight=weights, ranks=ranks)
    with pytest.raises(ConfigError, match=r"Allocation needs the parameter\(s\) \['ranks'\]"):
        Allocation(picks, weights)
