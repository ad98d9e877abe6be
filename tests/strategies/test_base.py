"""The strategy contract: parameters, errors, hooks, one-off path, registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_engine.errors import ConfigError, StrategyError
from core_engine.strategies.base import Strategy, rank_candidates
from core_engine.strategies.registry import (
    get_strategy,
    get_strategy_class,
    list_strategies,
    register,
    register_strategy,
)


class PanelMomentum(Strategy):
    """Causal toy: return over ``length`` candles from the panel's closes."""

    name = "toy_panel_momentum"

    def __init__(self, length=3, threshold=0.0):
        self.length = length
        self.threshold = threshold

    def _validate_params(self):
        self._check_int("length")
        self._check_number("threshold")

    @property
    def lookback(self):
        return self.length

    def score(self, features, panel):
        close = panel.close
        out = np.full(close.shape, np.nan)
        out[self.length:] = close[self.length:] / close[: -self.length] - 1.0
        return np.where(out > self.threshold, out, np.nan)


class Broken(Strategy):
    name = "toy_broken"

    def score(self, features, panel):
        raise ZeroDivisionError("boom")


class WrongShape(Strategy):
    name = "toy_wrong_shape"

    def score(self, features, panel):
        return np.zeros(panel.n_times)


def test_params_are_stored_unchanged_and_round_trip():
    s = PanelMomentum(length=5)
    assert s.get_params() == {"length": 5, "threshold": 0.0}
    assert s.clone() == s and s.clone() is not s
    assert repr(s) == "PanelMomentum(length=5)"
    assert repr(PanelMomentum()) == "PanelMomentum()"
    assert s.set_params(threshold=0.01) is s and s.threshold == 0.01
    assert PanelMomentum(length=5) != PanelMomentum(length=6)
    assert PanelMomentum(4) == PanelMomentum(length=4)
    assert len({PanelMomentum(length=5), PanelMomentum(length=5)}) == 1


def test_unknown_parameter_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"no parameter 'lenght'.*Did you mean 'length'\?"):
        PanelMomentum(lenght=5)
    with pytest.raises(ConfigError, match=r"Did you mean 'threshold'\?"):
        PanelMomentum().set_params(treshold=1.0)


def test_invalid_value_names_the_parameter_and_set_params_is_atomic():
    with pytest.raises(ConfigError, match=r"'length' parameter of PanelMomentum.*Got 0"):
        PanelMomentum(length=0)
    s = PanelMomentum()
    with pytest.raises(ConfigError, match="'threshold'"):
        s.set_params(length=7, threshold=float("nan"))
    assert s.get_params() == {"length": 3, "threshold": 0.0}


def test_star_kwargs_are_refused_at_class_creation():
    with pytest.raises(ConfigError, match="explicitly"):
        class Bad(Strategy):
            def __init__(self, **kwargs):
                pass


def test_hook_errors_become_strategy_errors_naming_strategy_and_time(synthetic_panel):
    with pytest.raises(StrategyError, match=r"Broken\(\) failed in score\(\): ZeroDivisionError: boom"):
        Broken().score_panel(synthetic_panel)
    t = synthetic_panel.index[50]
    with pytest.raises(StrategyError, match="at 2021-01-01 04:10 UTC"):
        Broken().select_symbols(synthetic_panel, t)
    with pytest.raises(StrategyError, match=r"shape \(400,\); expected \(400, 4\)"):
        WrongShape().score_panel(synthetic_panel)


def test_rank_candidates_breaks_ties_by_name():
    assert rank_candidates(np.array([1.0, np.nan, 2.0, 1.0]), ["d", "c", "b", "a"]) == ["b", "a", "d"]


def test_one_off_path_equals_vectorised_path_from_candle_frames(make_panel):
    panel = make_panel(n_times=120, seed=5)
    s = PanelMomentum(length=4, threshold=-1.0)
    scores = s.score_panel(panel)
    frames = panel.to_frames()
    for i in (10, 57, 118):
        t = panel.index[i] + pd.Timedelta("5min")
        expected = rank_candidates(scores[i], list(panel.symbols))
        assert s.select_symbols(frames, t) == expected
        assert s.select_symbols(frames, t, top_n=2) == expected[:2]
        np.testing.assert_array_equal(s.scores_at(frames, t).to_numpy(), scores[i])
        for j, sym in enumerate(panel.symbols):
            expected_signal = "LONG" if np.isfinite(scores[i, j]) else "FLAT"
            assert s.generate_signal(sym, frames[sym], t) == expected_signal
    # before any candle closed: nobody
    assert s.select_symbols(frames, panel.index[0]) == []
    with pytest.raises(ConfigError, match="top_n"):
        s.select_symbols(frames, panel.index[5], top_n=0)


def test_current_time_uses_only_closed_candles(make_panel):
    panel = make_panel(n_times=60, seed=1)
    s = PanelMomentum(length=1, threshold=-1.0)
    scores = s.score_panel(panel)
    # at index[20] + 4 minutes the candle opening at index[20] is still open: row 19 decides
    t = panel.index[20] + pd.Timedelta("4min")
    np.testing.assert_array_equal(s.scores_at(panel, t).to_numpy(), scores[19])


def test_registry_names_paths_and_user_registration():
    assert {"macd_rsi_confluence", "momentum_rank", "breakout", "ma_crossover"} <= set(list_strategies())
    s = get_strategy("core_engine.strategies.macd_rsi_confluence:Strategy", rsi_high=70)
    assert type(s) is get_strategy_class("macd_rsi_confluence") and s.rsi_high == 70
    with pytest.raises(ConfigError, match=r"Unknown strategy 'macd_rsi'.*Did you mean 'macd_rsi_confluence'\?"):
        get_strategy("macd_rsi")
    with pytest.raises(ConfigError, match="no attribute 'Strategie'.*Did you mean 'Strategy'"):
        get_strategy("core_engine.strategies.breakout:Strategie")
    with pytest.raises(ConfigError, match="Cannot import module"):
        get_strategy("no_such_module_xyz:Strategy")
    with pytest.raises(ConfigError, match="not a Strategy subclass"):
        get_strategy("core_engine.errors:ConfigError")

    @register("toy_registered_momentum")
    class Registered(PanelMomentum):
        pass

    assert get_strategy("toy_registered_momentum", length=2).length == 2
    with pytest.raises(ConfigError, match="already registered"):
        register_strategy(PanelMomentum, "toy_registered_momentum")
    register_strategy(PanelMomentum, "toy_registered_momentum", replace=True)
    assert get_strategy_class("toy_registered_momentum") is PanelMomentum
