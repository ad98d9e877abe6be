"""PortfolioRules: a frozen keyword-only config; bad values and names fail clearly."""

from __future__ import annotations

import dataclasses

import pytest

from core_engine.errors import ConfigError
from core_engine.risk import RULE_NAMES, PortfolioRules


def test_all_rules_off_by_default():
    rules = PortfolioRules()
    assert rules.active == ()
    assert rules.duration_ns("cooldown") == -1


def test_active_rules_and_durations():
    rules = PortfolioRules(cooldown="2h", max_correlation=0.8, min_order_value=10,
                           max_drawdown_pct=20, drawdown_halt_for="1D")
    assert rules.active == ("cooldown", "max_drawdown_pct", "max_correlation",
                            "min_order_value")
    assert rules.duration_ns("cooldown") == 2 * 3600 * 10**9
    assert rules.duration_ns("drawdown_halt_for") == 86_400 * 10**9
    assert set(rules.active) <= set(RULE_NAMES)
    assert rules.to_dict()["cooldown"] == "2h"


def test_frozen_and_hashable():
    rules = PortfolioRules(cooldown="1h")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.cooldown = "2h"  # type: ignore[misc]
    assert rules == PortfolioRules(cooldown="1h") and hash(rules) == hash(PortfolioRules(cooldown="1h"))


def test_unknown_parameter_suggests_the_name():
    with pytest.raises(ConfigError, match="Did you mean 'cooldown'"):
        PortfolioRules(cooldwn="1h")
    with pytest.raises(ConfigError, match="keyword arguments only"):
        PortfolioRules("1h")  # type: ignore[misc]


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"cooldown": "soon"}, "cooldown"),
    ({"cooldown": "-1h"}, "cooldown"),
    ({"max_entries_per_day": 0}, "max_entries_per_day"),
    ({"max_entries_per_day": 2.5}, "max_entries_per_day"),
    ({"daily_loss_limit_pct": 0}, "daily_loss_limit_pct"),
    ({"daily_loss_limit_pct": 100}, "daily_loss_limit_pct"),
    ({"max_drawdown_pct": float("nan")}, "max_drawdown_pct"),
    ({"max_exposure_pct": 120}, "max_exposure_pct"),
    ({"max_gross_exposure_pct": 0}, "max_gross_exposure_pct"),
    ({"max_correlation": 1.5}, "max_correlation"),
    ({"correlation_lookback": 1}, "correlation_lookback"),
    ({"min_order_value": -1}, "min_order_value"),
    ({"liquidate_on_daily_loss": "yes", "daily_loss_limit_pct": 2}, "liquidate_on_daily_loss"),
    ({"liquidate_on_daily_loss": True}, "daily_loss_limit_pct"),
    ({"drawdown_halt_for": "1h"}, "max_drawdown_pct"),
])
def test_bad_values_name_the_parameter(kwargs, name):
    with pytest.raises(ConfigError, match=f"'{name}'"):
        PortfolioRules(**kwargs)
