"""Hostile input to TradingEnv, make_dataset and the label functions' decision_times: a
ConfigError naming the parameter (issue 9 §2)."""

from __future__ import annotations

import pytest

from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.errors import ConfigError
from core_engine.features import RSI
from core_engine.ml import (
    ForwardReturn,
    TradingEnv,
    decision_rows,
    forward_return_label,
    make_dataset,
    triple_barrier_label,
)
from core_engine.risk import ExitRules


@pytest.fixture(scope="module")
def panel():
    return Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT"], "2021-01-01", "2021-01-03"),
                             "5m")


@pytest.mark.parametrize("kwargs, name", [
    ({"features": 3}, "features"), ({"features": [object()]}, "features"),
    ({"features": []}, "features"), ({"fee_bps": "10"}, "fee_bps"),
    ({"slippage_bps": float("nan")}, "slippage_bps"), ({"gates": 3}, "gates"),
    ({"drawdown_penalty": -1.0}, "drawdown_penalty"), ({"turnover_penalty": None}, "turnover_penalty"),
    ({"ruin_pct": 150.0}, "ruin_pct"), ({"min_weight": "x"}, "min_weight"),
])
def test_trading_env_names_the_bad_parameter(panel, kwargs, name):
    with pytest.raises(ConfigError, match=repr(name)):
        TradingEnv(panel, **{"features": [RSI(14)], "shift": "1h", **kwargs})


@pytest.mark.parametrize("kwargs, name", [
    ({"features": 3}, "features"), ({"features": [None]}, "features"),
    ({"cache": 3}, "cache"), ({"dropna": "yes"}, "dropna"), ({"ranks": 1.5}, "ranks"),
    ({"decision_times": 5}, "decision_times"), ({"decision_times": [object()]}, "decision_times"),
])
def test_make_dataset_names_the_bad_parameter(panel, kwargs, name):
    args = {"features": [RSI(14)], "label": ForwardReturn(window="1h"), **kwargs}
    with pytest.raises(ConfigError, match=name):
        make_dataset(panel, **args)


@pytest.mark.parametrize("times", [5, float("nan"), "yesterday", object(), ["2300-01-01"]])
def test_label_functions_refuse_what_are_not_decision_times(panel, times):
    with pytest.raises(ConfigError, match="decision"):
        forward_return_label(panel, "1h", decision_times=times)
    with pytest.raises(ConfigError, match="decision"):
        triple_barrier_label(panel, "1h", ExitRules(stop_loss_pct=2.0), decision_times=times)


@pytest.mark.parametrize("kwargs, name", [
    ({"panel": None}, "panel"), ({"panel": "yesterday"}, "panel"), ({"panel": {"x": 1}}, "panel"),
    ({"lookback": "yesterday"}, "lookback"), ({"lookback": float("nan")}, "lookback"),
    ({"lookback": 1.5}, "lookback"), ({"lookback": -1}, "lookback"),
    ({"lookback": 10**18}, "lookback"), ({"lookback": object()}, "lookback"),
])
def test_decision_rows_names_the_bad_parameter(panel, kwargs, name):
    args = {"panel": panel, "every": "1h", **kwargs}
    with pytest.raises(ConfigError, match=f"'{name}' parameter of decision_rows"):
        decision_rows(**args)
