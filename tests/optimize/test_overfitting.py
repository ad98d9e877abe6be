"""Overfitting statistics against worked examples: the deflated Sharpe ratio of Bailey and
López de Prado (2014), the probabilistic Sharpe ratio, and PBO by CSCV on matrices and on
real sweeps of strategies with and without an edge."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from core_engine.errors import ConfigError
from core_engine.optimize import (
    LocalExecutor,
    Sweep,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    overfitting_report,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)

from .helpers import PickColumn, block_panel


# ---------------------------------------------------------------------------- Sharpe tests
def test_deflated_sharpe_of_the_papers_numerical_example():
    """Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", J. Portfolio Management
    40(5): an annualised Sharpe ratio of 2.5 over 5 years of daily returns (T = 1250, 250 a
    year), after N = 100 trials whose annualised Sharpe ratios have variance 1/2, with
    skewness −3 and kurtosis 10, deflates to DSR ≈ 0.9004.

    By hand, per period (daily):
      SR  = 2.5 / √250                                   = 0.1581139
      V   = 0.5 / 250                                    = 0.002
      Φ⁻¹(1 − 1/100)                                     = 2.3263479
      Φ⁻¹(1 − 1/(100 e))  (1 − 0.0036788 = 0.9963212)    = 2.6802104
      SR0 = √0.002 · (0.4227843 · 2.3263479 + 0.5772157 · 2.6802104) = 0.1131720
      z   = (0.1581139 − 0.1131720) · √1249
            / √(1 + 3 · 0.1581139 + 9/4 · 0.1581139²)    = 1.5882997 / 1.2371708 = 1.2838160
      DSR = Φ(1.2838160)                                 = 0.9003968
    """
    sr = 2.5 / math.sqrt(250)
    assert sr == pytest.approx(0.1581139, abs=1e-7)
    assert expected_max_sharpe(100, 0.5 / 250) == pytest.approx(0.1131720, abs=1e-7)
    dsr = deflated_sharpe_ratio(n_trials=100, sharpe_variance=0.5 / 250, sharpe=sr, n_obs=1250,
                                skew=-3.0, kurtosis=10.0)
    assert dsr == pytest.approx(0.9003968, abs=1e-6)
    assert round(dsr, 4) == 0.9004  # the value printed in the paper


def test_expected_max_sharpe_against_scipy_and_edge_cases():
    from scipy.stats import norm

    gamma = 0.5772156649015329
    for n in (2, 10, 1000):
        z = (1 - gamma) * norm.ppf(1 - 1 / n) + gamma * norm.ppf(1 - 1 / (n * math.e))
        assert expected_max_sharpe(n, 0.04) == pytest.approx(0.2 * z, rel=1e-12)
    assert expected_max_sharpe(1, 0.04) == 0.0
    assert expected_max_sharpe(10, 0.0) == 0.0
    with pytest.raises(ConfigError, match="'n_trials' argument"):
        expected_max_sharpe(0, 1.0)


def test_probabilistic_sharpe_from_returns_uses_their_moments():
    from scipy.stats import kurtosis, norm, skew

    rng = np.random.default_rng(2)
    returns = rng.standard_t(5, 500) * 0.01 + 0.001
    sr = returns.mean() / returns.std(ddof=1)
    g3, g4 = skew(returns), kurtosis(returns, fisher=False)
    expected = norm.cdf((sr - 0.02) * math.sqrt(499) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))
    assert probabilistic_sharpe_ratio(returns, benchmark=0.02) == pytest.approx(expected, rel=1e-10)
    # normal, SR 0.1, T 101: z = 0.1·10/√1.005
    assert probabilistic_sharpe_ratio(sharpe=0.1, n_obs=101, skew=0, kurtosis=3) == \
        pytest.approx(norm.cdf(1 / math.sqrt(1.005)), rel=1e-12)
    # DSR with trial Sharpe ratios = PSR against their expected maximum
    trials = rng.normal(0.0, 0.05, 30)
    v = trials.var(ddof=1)
    assert deflated_sharpe_ratio(returns, n_trials=30, trial_sharpes=trials) == pytest.approx(
        probabilistic_sharpe_ratio(returns, benchmark=expected_max_sharpe(30, v)))


def test_sharpe_tests_reject_bad_input():
    with pytest.raises(ConfigError, match="at least 3 returns"):
        probabilistic_sharpe_ratio([0.1, 0.2])
    with pytest.raises(ConfigError, match="constant returns"):
        probabilistic_sharpe_ratio([0.1] * 10)
    with pytest.raises(ConfigError, match="exactly one of"):
        deflated_sharpe_ratio([0.1, 0.2, 0.0], n_trials=3)


# ---------------------------------------------------------------------------- PBO on matrices
def brute_force_logits(matrix: np.ndarray, n_blocks: int) -> np.ndarray:
    """CSCV written out directly (no shared code): per combination, concatenate the rows."""
    blocks = np.array_split(np.arange(len(matrix)), n_blocks)
    n = matrix.shape[1]
    out = []
    for combo in combinations(range(n_blocks), n_blocks // 2):
        is_rows = np.concatenate([blocks[b] for b in combo])
        oos_rows = np.concatenate([blocks[b] for b in range(n_blocks) if b not in combo])
        is_perf = matrix[is_rows].mean(0) / matrix[is_rows].std(0, ddof=1)
        oos_perf = matrix[oos_rows].mean(0) / matrix[oos_rows].std(0, ddof=1)
        best = int(np.argmax(is_perf))
        rank = 1 + sum(oos_perf[k] < oos_perf[best] for k in range(n))
        omega = rank / (n + 1)
        out.append(math.log(omega / (1 - omega)))
    return np.array(out)


def test_cscv_matches_a_brute_force_computation():
    rng = np.random.default_rng(4)
    matrix = rng.normal(0.0005, 0.01, (120, 7))
    result = probability_of_backtest_overfitting(matrix, n_blocks=6)
    expected = brute_force_logits(matrix, 6)
    np.testing.assert_allclose(result.logits, expected, rtol=1e-9)
    assert result.pbo == pytest.approx(np.mean(expected <= 0))
    assert result.logits.size == math.comb(6, 3) and result.n_trials == 7


def test_pbo_is_one_when_every_trial_has_the_same_full_sample_edge():
    """Trials whose full-sample mean is identical (noise, demeaned): whatever wins in sample
    has lost exactly that much out of sample (Bailey et al. 2017's fully overfit case)."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.01, (640, 40))
    assert probability_of_backtest_overfitting(noise - noise.mean(axis=0)).pbo == 1.0


def test_pbo_of_independent_noise_is_a_coin_flip_on_average():
    """Independent zero-edge trials: the in-sample winner lands anywhere out of sample, so
    PBO scatters around 0.5 (the null), per data set between about 0.2 and 0.8."""
    values = [probability_of_backtest_overfitting(
        np.random.default_rng(seed).normal(0.0, 0.01, (320, 20)), n_blocks=8).pbo
        for seed in range(24)]
    assert 0.4 < np.mean(values) < 0.6


def test_pbo_is_zero_when_one_trial_truly_dominates():
    rng = np.random.default_rng(1)
    matrix = rng.normal(0.0, 0.01, (640, 40))
    matrix[:, 17] += 0.004
    result = probability_of_backtest_overfitting(matrix)
    assert result.pbo == 0.0
    assert (result.winners == 17).all() and result.probability_of_loss == 0.0


def test_pbo_input_checks():
    with pytest.raises(ConfigError, match="even integer"):
        probability_of_backtest_overfitting(np.zeros((100, 3)), n_blocks=5)
    with pytest.raises(ConfigError, match="at least 2 trials"):
        probability_of_backtest_overfitting(np.zeros((100, 1)))
    with pytest.raises(ConfigError, match="needs at least 32 periods"):
        probability_of_backtest_overfitting(np.ones((31, 3)))
    # rows where a trial has no value yet (a longer warm-up) are dropped
    matrix = np.random.default_rng(0).normal(size=(40, 3))
    matrix[:5, 0] = np.nan
    assert probability_of_backtest_overfitting(matrix, n_blocks=4).n_periods == 35


# ---------------------------------------------------------------------------- real sweeps
def test_pbo_of_a_sweep_of_pure_noise_strategies_is_near_one():
    """Eight strategies that each always hold one symbol, on symbols whose hourly returns are
    the same returns in another order: no strategy has an edge over the whole sample, each
    looks good only where its symbol happened to do well — which the other half pays back."""
    panel = block_panel(n_symbols=8, n_blocks=160)
    sweep = Sweep(PickColumn, {"column": list(range(8))}, panel, window="1h", shift="1h",
                  max_positions=1)
    result = sweep.run(executor=LocalExecutor(1), progress=False)
    assert result.n_trials == 8 and result.returns.shape == (160, 8)
    assert result.table["sharpe"].std() < 1e-9 * result.table["sharpe"].abs().max()
    report = result.overfitting_report()
    assert report.pbo.pbo >= 0.95
    assert report.pbo.degradation[0] < 0  # the better in sample, the worse out of sample
    assert report.dsr < 0.5


def test_pbo_of_a_sweep_with_a_planted_edge_is_near_zero():
    panel = block_panel(n_symbols=8, n_blocks=160, planted=3, drift=0.001)
    sweep = Sweep(PickColumn, {"column": list(range(8))}, panel, window="1h", shift="1h",
                  max_positions=1)
    result = sweep.run(executor=LocalExecutor(1), progress=False)
    assert result.best_params == {"column": 3}
    report = result.overfitting_report()
    assert report.pbo.pbo <= 0.05
    assert report.selected == result.best_config_id
    assert report.n_trials == 8 and report.psr > 0.99
    text = report.summary()
    assert "PBO (CSCV, S=16, 12,870 combinations, 8 trials, 160 periods)" in text
    for kind in ("logits", "is_oos"):
        fig = report.plot(kind)
        assert fig.axes[0].get_title()
    with pytest.raises(ConfigError, match="kind must be"):
        report.plot("pie")


def test_report_needs_a_frame_and_a_known_column():
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(64, 3)), columns=list("abc"))
    with pytest.raises(ConfigError, match="not a column"):
        overfitting_report(frame, selected="z")
    with pytest.raises(ConfigError, match="needs a DataFrame"):
        overfitting_report(frame.to_numpy())
    report = overfitting_report(frame, n_blocks=4, overlap=2.0)
    assert report.n_obs == 32.0 and report.n_trials == 3
