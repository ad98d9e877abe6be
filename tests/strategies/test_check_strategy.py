"""check_strategy catches leaks (negative controls) and contract breaks; causal toys pass."""

from __future__ import annotations

import numpy as np
import pytest

from core_engine.errors import ConfigError, LookaheadError
from core_engine.strategies.base import Strategy
from core_engine.testing.strategies import check_strategy


class CausalReturn(Strategy):
    name = "toy_causal_return"

    def __init__(self, length=2):
        self.length = length

    def _validate_params(self):
        self._check_int("length")

    def score(self, features, panel):
        out = np.full(panel.close.shape, np.nan)
        out[self.length:] = panel.close[self.length:] / panel.close[: -self.length] - 1
        return out


class NextBarReturn(Strategy):
    """NEGATIVE CONTROL: scores row i with the return of the NEXT candle (a leak)."""

    name = "toy_leaky_next_bar"

    def score(self, features, panel):
        out = np.full(panel.close.shape, np.nan)
        out[:-1] = panel.close[1:] / panel.close[:-1] - 1
        return out


class FullSampleNormalised(Strategy):
    """NEGATIVE CONTROL: divides by the whole-sample maximum close (a subtle leak)."""

    name = "toy_leaky_full_sample"

    def score(self, features, panel):
        return panel.close / np.nanmax(panel.close, axis=0)


class CentredMean(Strategy):
    """NEGATIVE CONTROL: a centred moving average (uses 2 future candles)."""

    name = "toy_leaky_centred"

    def score(self, features, panel):
        c = panel.close
        out = np.full(c.shape, np.nan)
        out[2:-2] = (c[:-4] + c[1:-3] + c[2:-2] + c[3:-1] + c[4:]) / 5 - c[2:-2]
        return out


class LeakyConfidence(CausalReturn):
    """NEGATIVE CONTROL: causal score, but confidence looks one candle ahead."""

    name = "toy_leaky_confidence"

    def confidence(self, features, panel):
        out = np.zeros(panel.close.shape)
        out[:-1] = np.abs(panel.close[1:] - panel.close[:-1])
        return out


class NotStored(Strategy):
    """Stores a transformed parameter, so clone() cannot round-trip."""

    name = "toy_not_stored"

    def __init__(self, threshold_pct=1.0):
        self.threshold_pct = threshold_pct / 100  # converted, not stored unchanged

    def score(self, features, panel):
        return np.zeros(panel.close.shape)


def test_causal_strategy_passes_on_clean_and_gappy_data(synthetic_panel, synthetic_panel_with_holes):
    times = check_strategy(CausalReturn(length=3), synthetic_panel, n_times=8, seed=1)
    assert len(times) == 8 and times == sorted(times)
    check_strategy(CausalReturn(), synthetic_panel_with_holes, n_times=8)


@pytest.mark.parametrize("leaky", [NextBarReturn(), FullSampleNormalised(), CentredMean(), LeakyConfidence()])
def test_negative_controls_are_caught(leaky, synthetic_panel):
    with pytest.raises(LookaheadError, match=type(leaky).__name__):
        check_strategy(leaky, synthetic_panel, n_times=5)


def test_leak_message_names_symbol_time_and_poison(synthetic_panel):
    with pytest.raises(LookaheadError, match=r"NextBarReturn\(\): score changed when the candles after row \d+ \(2021-01-01 \d\d:\d\d UTC\) were replaced by 'nan' garbage"):
        check_strategy(NextBarReturn(), synthetic_panel, n_times=3)


def test_parameter_round_trip_is_checked(synthetic_panel):
    with pytest.raises(AssertionError, match="NotStored"):
        check_strategy(NotStored(threshold_pct=2.0), synthetic_panel, n_times=2)


def test_bad_arguments(synthetic_panel):
    with pytest.raises(ConfigError, match="n_times"):
        check_strategy(CausalReturn(), synthetic_panel, n_times=0)
    with pytest.raises(ConfigError, match="at least 2 rows"):
        check_strategy(CausalReturn(), synthetic_panel.slice_rows(0, 1))
    with pytest.raises(ConfigError, match="Panel"):
        check_strategy(CausalReturn(), {"a": 1})


class MutatesFeatures(Strategy):
    """Writes into its input feature array (forbidden: features are shared with gates)."""

    name = "toy_mutates_features"

    def features(self):
        from core_engine.features import SMA

        return [SMA(length=3)]

    def score(self, features, panel):
        sma = features["sma_3"]
        sma[np.isnan(sma)] = 0.0
        return sma - panel.close


def test_input_mutation_is_caught(synthetic_panel):
    with pytest.raises(AssertionError, match="MutatesFeatures.*mutated its input feature 'sma_3'"):
        check_strategy(MutatesFeatures(), synthetic_panel, n_times=2)


class UsesSampleLength(CausalReturn):
    """NEGATIVE CONTROL: depends on how many rows exist in total (the poisons keep the
    length, so only the one-off comparison on data truncated at t can see it)."""

    name = "toy_leaky_sample_length"

    def score(self, features, panel):
        return super().score(features, panel) * panel.n_times


class OverriddenSelect(CausalReturn):
    """Breaks the contract: select_symbols no longer follows the scores."""

    name = "toy_overridden_select"

    def select_symbols(self, features_by_symbol, current_time, top_n=None, *, timeframe=None):
        return sorted(super().select_symbols(features_by_symbol, current_time, top_n, timeframe=timeframe))[::-1]


def test_dependence_on_sample_length_is_caught_by_the_one_off_check(synthetic_panel):
    with pytest.raises(LookaheadError, match="scores_at.*disagrees with the vectorised scores"):
        check_strategy(UsesSampleLength(), synthetic_panel, n_times=3)


def test_select_symbols_must_follow_the_scores(synthetic_panel):
    with pytest.raises(AssertionError, match="select_symbols at .* returned"):
        check_strategy(OverriddenSelect(), synthetic_panel, n_times=4)
