"""Position sizing primitives against hand-computed values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.errors import ConfigError
from core_engine.risk import (
    ExitRules,
    cap_by_balance,
    cap_by_exposure,
    position_size,
    risk_per_trade_size,
    stop_price,
)


def test_risk_per_trade_size_hand_computed():
    # risking 1 % of 10,000 = 100 on a 5-unit stop distance -> 20 units
    assert risk_per_trade_size(10_000, 1.0, 100.0, 95.0) == pytest.approx(20.0, rel=1e-15)
    assert risk_per_trade_size(0.0, 1.0, 100.0, 95.0) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(equity=-1.0, risk_pct=1.0, entry=100.0, stop=95.0), "equity"),
        (dict(equity=1e4, risk_pct=0.0, entry=100.0, stop=95.0), "risk_pct"),
        (dict(equity=1e4, risk_pct=101.0, entry=100.0, stop=95.0), "risk_pct"),
        (dict(equity=1e4, risk_pct=1.0, entry=math.nan, stop=95.0), "entry"),
        (dict(equity=1e4, risk_pct=1.0, entry=100.0, stop=100.0), "stop"),
        (dict(equity=1e4, risk_pct=1.0, entry=100.0, stop=-1.0), "stop"),
    ],
)
def test_risk_per_trade_size_rejects_bad_input(kwargs, name):
    with pytest.raises(ConfigError, match=f"'{name}'"):
        risk_per_trade_size(**kwargs)


def test_stop_price_from_exit_rules():
    assert stop_price(200.0, ExitRules(stop_loss_pct=2.5)) == pytest.approx(195.0)
    assert stop_price(200.0, ExitRules(stop_loss_atr=2.0), atr=3.0) == pytest.approx(194.0)
    assert stop_price(200.0, ExitRules(take_profit_pct=5.0)) is None
    with pytest.raises(ConfigError, match="atr"):
        stop_price(200.0, ExitRules(stop_loss_atr=2.0))
    with pytest.raises(ConfigError, match="not a price"):
        stop_price(10.0, ExitRules(stop_loss_atr=5.0), atr=3.0)


def test_cap_by_balance_includes_fees():
    # 1,000 buys 10 units at 100 without fees, 1000 / 100.1 with 10 bps
    assert cap_by_balance(50.0, 100.0, 1_000.0) == pytest.approx(10.0)
    assert cap_by_balance(50.0, 100.0, 1_000.0, fee_bps=10.0) == pytest.approx(1_000.0 / 100.1)
    assert cap_by_balance(3.0, 100.0, 1_000.0) == 3.0


def test_cap_by_exposure():
    # 20 % of 10,000 = 2,000; 500 already held -> room for 15 units at 100
    assert cap_by_exposure(40.0, 100.0, 10_000.0, 20.0, current_exposure=500.0) == pytest.approx(15.0)
    assert cap_by_exposure(40.0, 100.0, 10_000.0, 20.0, current_exposure=5_000.0) == 0.0
    with pytest.raises(ConfigError, match="max_exposure_pct"):
        cap_by_exposure(1.0, 100.0, 10_000.0, 0.0)


def test_position_size_takes_the_smallest_cap():
    assert position_size(10_000, 100.0, 95.0, risk_pct=1.0) == pytest.approx(20.0)
    assert position_size(10_000, 100.0, 95.0, risk_pct=1.0, available_balance=1_500.0) == pytest.approx(15.0)
    assert position_size(10_000, 100.0, 95.0, risk_pct=1.0, max_exposure_pct=10.0) == pytest.approx(10.0)


@settings(max_examples=50, deadline=None)
@given(st.floats(1, 1e7), st.floats(0.01, 100), st.floats(0.01, 1e5), st.floats(0.01, 0.99),
       st.floats(1, 100))
def test_position_size_never_breaks_a_limit(equity, risk_pct, entry, stop_frac, max_exposure_pct):
    stop = entry * stop_frac
    qty = position_size(equity, entry, stop, risk_pct=risk_pct, max_exposure_pct=max_exposure_pct)
    assert qty >= 0
    assert qty * (entry - stop) <= equity * risk_pct / 100 * (1 + 1e-9)
    assert qty * entry <= equity * max_exposure_pct / 100 * (1 + 1e-9)


# ---------------------------------------------------------------------- sizing objects
def test_sizing_objects_give_equity_fractions():
    import numpy as np

    from core_engine.risk import (
        ConfidenceSizing,
        EqualSlots,
        FixedFraction,
        InverseVolatilitySizing,
        RiskPerTrade,
    )

    assert EqualSlots().weights(2, 4).tolist() == [0.25, 0.25]
    assert EqualSlots(slots=5).weights(1, 4).tolist() == [0.2]
    assert FixedFraction(pct=12.5).weights(1, 3).tolist() == [0.125]
    assert np.isnan(RiskPerTrade(risk_pct=1).weights(2, 3)).all()  # needs the fill
    conf = ConfidenceSizing(full_confidence=4).weights(4, 2,
                                                      confidence=np.array([2, 4, 8, np.nan]))
    np.testing.assert_allclose(conf, [0.25, 0.5, 0.5, np.nan])
    vol = InverseVolatilitySizing(target_volatility_pct=0.2).weights(
        3, 3, volatility=np.array([0.01, 0.0, np.nan]))
    np.testing.assert_allclose(vol, [0.2, np.nan, np.nan])
    assert RiskPerTrade(risk_pct=1).describe()["sizing"] == "RiskPerTrade"


@pytest.mark.parametrize(("text", "expected"), [
    ("equal", "EqualSlots(max_position_pct=100.0, lot_step=None, slots=None)"),
    ("equal:5", "EqualSlots(max_position_pct=100.0, lot_step=None, slots=5)"),
    ("fixed:10", "FixedFraction(max_position_pct=100.0, lot_step=None, pct=10.0)"),
    ("risk:1", "RiskPerTrade(max_position_pct=100.0, lot_step=None, risk_pct=1.0)"),
    ("invvol:0.1", "InverseVolatilitySizing(max_position_pct=100.0, lot_step=None, "
                   "target_volatility_pct=0.1, length=20)"),
])
def test_parse_sizing(text, expected):
    from core_engine.risk import parse_sizing

    assert repr(parse_sizing(text)) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("rsk:1", "Did you mean 'risk'"), ("risk:x", "needs a number"),
    ("fixed:0", "'pct'"), ("equal:1.5", "needs a number"),
])
def test_parse_sizing_errors(text, message):
    from core_engine.risk import parse_sizing

    with pytest.raises(ConfigError, match=message):
        parse_sizing(text)


@pytest.mark.parametrize(("cls", "kwargs", "name"), [
    ("EqualSlots", {"slots": 0}, "slots"), ("FixedFraction", {"pct": 150}, "pct"),
    ("RiskPerTrade", {"risk_pct": -1}, "risk_pct"),
    ("EqualSlots", {"max_position_pct": 0}, "max_position_pct"),
    ("EqualSlots", {"lot_step": 0}, "lot_step"),
    ("ConfidenceSizing", {"full_confidence": 0}, "full_confidence"),
    ("InverseVolatilitySizing", {"length": 1}, "length"),
    ("FixedFraction", {"pcnt": 5}, "Did you mean 'pct'"),
])
def test_sizing_objects_reject_bad_values(cls, kwargs, name):
    import core_engine.risk as risk

    with pytest.raises(ConfigError, match=name):
        getattr(risk, cls)(**kwargs)
