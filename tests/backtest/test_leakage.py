"""Leakage: poisoning everything after t changes no decision at t, for every built-in strategy;
the audit catches deliberately leaky negative controls and names the culprit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_engine.backtest import audit_lookahead, walk_forward
from core_engine.backtest.audit import poisoned_panels
from core_engine.backtest.inputs import allocate_at, compute_inputs
from core_engine.errors import LookaheadError
from core_engine.features.base import FeatureComputer
from core_engine.risk import ExitRules, MaxATRPct, TopNEqual
from core_engine.strategies import get_strategy
from core_engine.strategies.base import Strategy
from core_engine.strategies.registry import list_strategies

BUILT_IN = [name for name in list_strategies() if not name.startswith("test_")]


class LeakyNextReturn(FeatureComputer):
    """NEGATIVE CONTROL: the return of the *next* candle (reads row i + 1)."""

    name = "leaky_next_return"
    _defaults = {}

    @property
    def lookback(self) -> int:
        return 0

    @property
    def columns(self) -> tuple[str, ...]:
        return ("leaky_next_return",)

    def compute_panel(self, panel):
        close = panel.close
        out = np.full(close.shape, np.nan, order="F")
        out[:-1] = close[1:] / close[:-1] - 1.0
        return {"leaky_next_return": out}


class LeakyFeatureStrategy(Strategy):
    """NEGATIVE CONTROL: ranks by a feature that peeks at the next candle."""

    name = "test_leaky_feature"

    def features(self):
        return [LeakyNextReturn()]

    def score(self, features, panel):
        return features["leaky_next_return"]


class LeakyScoreStrategy(Strategy):
    """NEGATIVE CONTROL: no feature, the score itself reads the maximum close of the future."""

    name = "test_leaky_score"

    def score(self, features, panel):
        future_max = np.fmax.accumulate(panel.close[::-1], axis=0)[::-1]
        return future_max / panel.close - 1.0


def _cut_rows(panel, n=3):
    """Decision rows (candle closing on the 2h grid) spread over the panel's second half."""
    rows = np.arange(23, panel.n_times - 49, 24)
    return rows[np.linspace(rows.size // 2, rows.size - 1, n).astype(int)]


@pytest.mark.parametrize("name", BUILT_IN)
def test_poisoning_the_future_changes_no_decision(real_may, name):
    strategy = get_strategy(name)
    gates, exits, alloc = (MaxATRPct(max_atr_pct=2.0),), ExitRules(stop_loss_atr=2.0), TopNEqual(n=2)
    full = compute_inputs(real_may, strategy, gates=gates, allocator=alloc, exits=exits)
    decisions = np.arange(23, real_may.n_times - 1, 24)
    decisions = decisions[decisions >= full["lookback"]]
    n_picks = 0
    for cut in _cut_rows(real_may):
        before = decisions[decisions <= cut]
        ref = allocate_at(full, before, alloc, real_may.symbols)
        n_picks += len(ref)
        for label, variant in poisoned_panels(real_may, int(cut), seed=int(cut)).items():
            if label == "truncated":
                continue
            other = compute_inputs(variant, strategy, gates=gates, allocator=alloc, exits=exits)
            got = allocate_at(other, before, alloc, real_may.symbols)
            np.testing.assert_array_equal(got.rows, ref.rows, err_msg=label)
            np.testing.assert_array_equal(got.cols, ref.cols, err_msg=label)
            np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-12, err_msg=label)
            np.testing.assert_allclose(got.weights, ref.weights, rtol=1e-12, err_msg=label)
            np.testing.assert_allclose(other["atr"][: cut + 1], full["atr"][: cut + 1],
                                       rtol=1e-12, err_msg=label)
    assert n_picks > 0, f"{name} made no pick on the real data: the test would prove nothing"


@pytest.mark.parametrize("name", BUILT_IN)
def test_trades_decided_before_t_are_unchanged_by_a_poisoned_future(real_may, name):
    strategy = get_strategy(name)
    cut = int(_cut_rows(real_may, 1)[0])
    t = real_may.index[cut] + pd.Timedelta("5min")
    variant = poisoned_panels(real_may, cut)["future huge"]
    full = walk_forward(real_may, strategy, exits=ExitRules(stop_loss_pct=1.0)).trades
    poisoned = walk_forward(variant, strategy, exits=ExitRules(stop_loss_pct=1.0)).trades
    keep = ["symbol", "decision_time", "rank", "score", "weight"]
    decided = full[full["decision_time"] <= t][keep].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        poisoned[poisoned["decision_time"] <= t][keep].reset_index(drop=True), decided)
    closed = full[full["exit_time"] < t].reset_index(drop=True)
    pd.testing.assert_frame_equal(poisoned[poisoned["exit_time"] < t].reset_index(drop=True),
                                  closed)
    assert len(closed) > 0


@pytest.mark.parametrize("name", BUILT_IN)
def test_audit_passes_every_built_in_strategy(real_may, name):
    result = walk_forward(real_may, get_strategy(name), audit=3,
                          exits=ExitRules(take_profit_atr=3.0), gates=[MaxATRPct(max_atr_pct=2.0)])
    assert result.config["audit"] == 3


def test_audit_catches_a_leaky_feature_and_names_it(real_may):
    with pytest.raises(LookaheadError) as info:
        walk_forward(real_may, LeakyFeatureStrategy(), audit=2)
    message = str(info.value)
    assert "LeakyFeatureStrategy" in message and "leaky_next_return" in message


def test_audit_catches_a_leaky_score_and_says_no_feature_changed(real_may):
    with pytest.raises(LookaheadError) as info:
        walk_forward(real_may, LeakyScoreStrategy(), audit=1)
    message = str(info.value)
    assert "LeakyScoreStrategy" in message and "score() itself" in message


def test_audit_is_reproducible_and_samples_evaluated_rows(real_may):
    strategy = get_strategy(BUILT_IN[0])
    rows = np.arange(400, 2000, 24)
    a = audit_lookahead(real_may, strategy, rows, k=3, seed=5)
    b = audit_lookahead(real_may, strategy, rows, k=3, seed=5)
    assert a == b and len(a) == 3 and set(a) <= set(rows.tolist())
