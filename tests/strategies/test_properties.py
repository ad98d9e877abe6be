"""Hypothesis properties of every built-in strategy: causal for random data and parameters,
inputs untouched, scores follow their symbol when columns are reordered."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core_engine.strategies import Breakout, MacdRsiConfluence, MomentumRank, MovingAverageCrossover
from core_engine.testing.strategies import check_strategy

from_params = st.one_of(
    st.builds(MacdRsiConfluence, rsi_length=st.integers(2, 20), rsi_low=st.floats(20, 45),
              rsi_high=st.floats(55, 80), max_atr_pct=st.floats(0.2, 3.0),
              momentum_length=st.integers(1, 30), momentum_weight=st.floats(0, 1)),
    st.builds(MomentumRank, length=st.integers(1, 40), volume_fast=st.integers(1, 5),
              volume_slow=st.integers(6, 30), min_volume_trend=st.floats(-0.5, 0.5),
              min_return=st.floats(-0.05, 0.02)),
    st.builds(Breakout, length=st.integers(1, 40), ema_fast=st.integers(2, 10),
              ema_slow=st.integers(11, 40), rsi_overbought=st.floats(50, 90),
              volume_spike=st.floats(0, 3), min_confirmations=st.integers(0, 3),
              scale_by_confidence=st.booleans()),
    st.builds(MovingAverageCrossover, kind=st.sampled_from(["ema", "sma"]), fast=st.integers(1, 10),
              slow=st.integers(11, 40), fresh_within=st.one_of(st.none(), st.integers(1, 10))),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(strategy=from_params, seed=st.integers(0, 10_000), missing=st.sampled_from([0.0, 0.03]))
def test_builtins_are_causal_for_random_data_and_params(strategy, seed, missing, make_panel):
    panel = make_panel(n_times=160, seed=seed, missing=missing)
    check_strategy(strategy, panel, n_times=3, seed=seed)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(strategy=from_params, seed=st.integers(0, 10_000), order=st.permutations(range(4)))
def test_scores_follow_their_symbol_under_column_reordering(strategy, seed, order, make_panel):
    panel = make_panel(n_times=160, seed=seed, missing=0.02)
    reordered = panel.select([panel.symbols[j] for j in order])
    a = strategy.score_panel(panel)
    b = strategy.score_panel(reordered)
    np.testing.assert_allclose(b, a[:, list(order)], rtol=1e-10, atol=1e-12, equal_nan=True)
    assert strategy.select_symbols(panel, panel.index[-1]) == strategy.select_symbols(reordered, panel.index[-1])
