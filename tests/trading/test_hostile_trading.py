"""Hostile input to the trading layer's public entry points: a ConfigError naming the
parameter (issue 9 §2), and the same results as before for valid input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_engine.errors import ConfigError, OrderStateError
from core_engine.trading import (
    Context,
    Fill,
    Order,
    OrderStatus,
    RankingTrader,
    ReplayResult,
    SimBroker,
    check_transition,
    client_order_id,
)
from core_engine.trading.bots import grid_levels


@pytest.mark.parametrize("make, typo, suggestion", [
    (lambda **kw: Order(client_id="a", symbol="BTC/USDT", side="buy", **kw), {"quantiy": 1.0},
     "quantity"),
    (lambda **kw: Fill(trade_id="t", client_id="a", symbol="BTC/USDT", side="buy",
                       time=pd.Timestamp(0, tz="UTC"), price=1.0, quantity=1.0, **kw),
     {"fe": 0.0}, "fee"),
    (lambda **kw: SimBroker(**kw), {"slipage_bps": 1.0}, "slippage_bps"),
    (lambda **kw: Context(None, None, None, None, **kw), {"broker_": 1}, None),
    (lambda **kw: ReplayResult(**kw), {"trade": 1}, None),
])
def test_a_misspelt_keyword_is_a_config_error(make, typo, suggestion):
    with pytest.raises(ConfigError) as info:
        make(**typo)
    if suggestion:
        assert f"Did you mean {suggestion!r}" in str(info.value)


@pytest.mark.parametrize("old, new", [("filed", "filled"), ("new", None), ([], "new")])
def test_check_transition_refuses_what_is_not_a_status(old, new):
    with pytest.raises(ConfigError, match="must be one of"):
        check_transition(old, new)


def test_check_transition_takes_status_values_and_still_refuses_a_bad_move():
    check_transition("new", "submitted")
    check_transition(OrderStatus.SUBMITTED, OrderStatus.FILLED, "a")
    with pytest.raises(OrderStateError):
        check_transition("filled", "new")


@pytest.mark.parametrize("kwargs, name", [
    ({"trader_id": None}, "trader_id"), ({"symbol": 3}, "symbol"), ({"leg": ["x"]}, "leg"),
    ({"prefix": None}, "prefix"), ({"bar_time": "yesterday"}, "bar_time"),
    ({"bar_time": "2300-01-01"}, "bar_time"), ({"bar_time": None}, "bar_time"),
    ({"bar_time": True}, "bar_time"), ({"bar_time": {}}, "bar_time"),
])
def test_client_order_id_names_the_bad_parameter(kwargs, name):
    args = {"trader_id": "t", "bar_time": "2021-01-01", "symbol": "BTC/USDT", "leg": "entry",
            **kwargs}
    with pytest.raises(ConfigError, match=repr(name)):
        client_order_id(**args)


def test_client_order_id_unchanged_for_valid_times():
    ts = pd.Timestamp("2021-01-01 02:00", tz="UTC")
    ids = {client_order_id("t", v, "BTC/USDT", "entry")
           for v in (ts, "2021-01-01 02:00", "2021-01-01T02:00Z", ts.value, ts.tz_localize(None))}
    assert len(ids) == 1 and len(ids.pop()) == 32


@pytest.mark.parametrize("frac", ["0.5", -0.1, float("nan"), None])
def test_simbroker_stop_fill_frac_is_a_number_at_least_zero(frac):
    with pytest.raises(ConfigError, match="stop_fill_frac"):
        SimBroker(stop_fill="range", stop_fill_frac=frac)
    assert SimBroker(stop_fill="range", stop_fill_frac=0.5).stop_fill_frac == 0.5


@pytest.mark.parametrize("gates", [3, float("nan"), object(), [object()]])
def test_ranking_trader_gates_must_be_gates(gates):
    with pytest.raises(ConfigError, match="'gates'"):
        RankingTrader(gates=gates)


@pytest.mark.parametrize("kwargs, name", [
    ({"low": None}, "low"), ({"high": "2"}, "high"), ({"levels": 1}, "levels"),
    ({"levels": 10**12}, "levels"), ({"levels": 3.0}, "levels"), ({"spacing": "geometrc"}, "spacing"),
    ({"low": 0.0, "spacing": "geometric"}, "low"),
])
def test_grid_levels_names_the_bad_parameter(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        grid_levels(**{"low": 100.0, "high": 200.0, "levels": 3, **kwargs})


def test_grid_levels_unchanged_for_valid_input():
    assert grid_levels(100, 200, 3).tolist() == [100.0, 150.0, 200.0]
    assert np.allclose(grid_levels(100, 400, np.int64(3), "geometric"), [100, 200, 400])
