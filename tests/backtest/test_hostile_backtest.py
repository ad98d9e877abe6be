"""Hostile input to the audit and the metrics (audit_lookahead, poisoned_panels,
equity_curve, compute_metrics): a ConfigError naming the parameter (issue 9 §2)."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from core_engine.backtest import audit_lookahead, compute_metrics, equity_curve, poisoned_panels
from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.errors import ConfigError
from core_engine.risk import TopNEqual
from core_engine.strategies import MomentumRank

from .test_results import DECISIONS, H, hand_trades


@pytest.fixture(scope="module")
def panel():
    return Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT"], "2021-01-01", "2021-01-03"),
                             "5m")


@pytest.mark.parametrize("kwargs, name", [
    ({"panel": {"BTC/USDT": 1}}, "panel"),
    ({"rows": 10**12}, "rows"), ({"rows": [10**12]}, "rows"), ({"rows": [-1]}, "rows"),
    ({"rows": "yesterday"}, "rows"), ({"rows": [1.5]}, "rows"), ({"rows": None}, "rows"),
    ({"k": 0}, "k"), ({"k": True}, "k"), ({"k": 10**12 + 0.5}, "k"),
    ({"allocator": 10**12}, "allocator"), ({"allocator": "top3"}, "allocator"),
    ({"exits": 10**12}, "exits"), ({"exits": {"stop_loss_pct": 2}}, "exits"),
    ({"reference": 10**12}, "reference"), ({"reference": {"inputs": {}}}, "reference"),
    ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"seed": "yesterday"}, "seed"),
])
def test_audit_lookahead_names_the_bad_parameter(panel, kwargs, name):
    args = {"panel": panel, "strategy": MomentumRank(length=6), "rows": np.array([100, 200]),
            "k": 1, **kwargs}
    with pytest.raises(ConfigError, match=f"'{name}' parameter of audit_lookahead"):
        audit_lookahead(**args)


def test_audit_lookahead_takes_rows_as_a_list(panel):
    audited = audit_lookahead(panel, MomentumRank(length=6), [100, 200], k=1,
                              allocator=TopNEqual(n=1), seed=3)
    assert len(audited) == 1 and audited[0] in (100, 200)
    assert audit_lookahead(panel, MomentumRank(length=6), [], k=1) == []


@pytest.mark.parametrize("kwargs, name", [
    ({"panel": None}, "panel"), ({"panel": "yesterday"}, "panel"),
    ({"row": -1}, "row"), ({"row": 10**12}, "row"), ({"row": 1.5}, "row"),
    ({"row": None}, "row"), ({"row": np.int64(-3)}, "row"),
    ({"seed": -1}, "seed"), ({"seed": "a\x00b"}, "seed"), ({"seed": float("nan")}, "seed"),
])
def test_poisoned_panels_names_the_bad_parameter(panel, kwargs, name):
    args = {"panel": panel, "row": 10, **kwargs}
    with pytest.raises(ConfigError, match=f"'{name}' parameter of poisoned_panels"):
        poisoned_panels(**args)


def test_poisoned_panels_at_the_last_row_poisons_nothing(panel):
    last = panel.n_times - 1
    variants = poisoned_panels(panel, np.int64(last), seed=np.int64(7))
    assert variants["truncated"].n_times == panel.n_times
    np.testing.assert_array_equal(variants["future NaN"].close, panel.close)
    np.testing.assert_array_equal(variants["future huge"].close, panel.close)


def _curve_args(**kwargs):
    return {"trades": hand_trades(), "decision_times": DECISIONS, "window_ns": 4 * H,
            "shift_ns": 2 * H, **kwargs}


@pytest.mark.parametrize("kwargs, name", [
    ({"trades": None}, "trades"), ({"trades": {"x": 1}}, "trades"),
    ({"trades": hand_trades().drop(columns="weight")}, "trades"),
    ({"decision_times": "yesterday"}, "decision_times"), ({"decision_times": 3}, "decision_times"),
    ({"decision_times": {"x": 1}}, "decision_times"),
    ({"decision_times": DECISIONS[1:]}, "trades"),  # a trade decided at a time not listed
    ({"window_ns": 0}, "window_ns"), ({"window_ns": "4h"}, "window_ns"),
    ({"window_ns": 10**30}, "window_ns"), ({"shift_ns": 1.5}, "shift_ns"),
    ({"shift_ns": None}, "shift_ns"), ({"shift_ns": -1}, "shift_ns"),
])
def test_equity_curve_names_the_bad_parameter(kwargs, name):
    with pytest.raises(ConfigError, match=f"'{name}' parameter of equity_curve"):
        equity_curve(**_curve_args(**kwargs))


def _timed_out(signum, frame):
    raise TimeoutError("equity_curve walked every sleeve")


def test_equity_curve_walks_only_the_sleeves_in_use():
    """A long window over a short shift gives more sleeves than decisions; the unused ones
    stay at 1.0. A 1 ns shift (10**13 sleeves) must not loop over them (it hung)."""
    trades = hand_trades()  # period returns 0.5 %, 0 %, -1 % at 0h, 2h, 4h
    equity = equity_curve(trades, DECISIONS, window_ns=24 * H, shift_ns=2 * H)  # 12 sleeves
    np.testing.assert_allclose(equity["equity"], [(1.005 + 11) / 12, (1.005 + 1 + 10) / 12,
                                                  (1.005 + 1 + 0.99 + 9) / 12], rtol=1e-12)
    previous = signal.signal(signal.SIGALRM, _timed_out)
    signal.alarm(10)
    try:
        equity = equity_curve(trades, DECISIONS, window_ns=4 * H, shift_ns=1)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert equity["n_trades"].tolist() == [2, 0, 1]
    assert (equity["equity"] > 0.999).all()


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_equity_curve_sleeves_do_not_depend_on_the_time_unit(unit):
    """Sleeves are counted in nanoseconds: decision times in another unit (pandas gives
    microseconds to parsed timestamps) once all landed in one sleeve."""
    trades = hand_trades()
    expected = equity_curve(trades, DECISIONS.as_unit("ns"), window_ns=24 * H, shift_ns=2 * H)
    got = equity_curve(trades, DECISIONS.as_unit(unit), window_ns=24 * H, shift_ns=2 * H)
    np.testing.assert_array_equal(got["equity"], expected["equity"])


def test_equity_curve_names_the_missing_trade_columns():
    with pytest.raises(ConfigError, match=r"lacks the column\(s\) \['best_return_pct'\]"):
        equity_curve(**_curve_args(trades=hand_trades().drop(columns="best_return_pct")))


@pytest.mark.parametrize("kwargs, name", [
    ({"trades": []}, "trades"), ({"trades": hand_trades().drop(columns="exit_time")}, "trades"),
    ({"equity": {"x": 1}}, "equity"), ({"equity": np.float64("nan")}, "equity"),
    ({"equity": "drop:equity"}, "equity"),
    ({"window_ns": None}, "window_ns"), ({"window_ns": True}, "window_ns"),
    ({"shift_ns": -1}, "shift_ns"), ({"shift_ns": np.int64(-3)}, "shift_ns"),
])
def test_compute_metrics_names_the_bad_parameter(kwargs, name):
    args = _curve_args()
    equity = equity_curve(**args)
    if kwargs.get("equity") == "drop:equity":
        kwargs = {"equity": equity.drop(columns="equity")}
    args = {"trades": args["trades"], "equity": equity, "window_ns": args["window_ns"],
            "shift_ns": args["shift_ns"], **kwargs}
    with pytest.raises(ConfigError, match=f"'{name}' parameter of compute_metrics"):
        compute_metrics(**args)


def test_compute_metrics_takes_numpy_integer_spans():
    args = _curve_args()
    equity = equity_curve(**args)
    metrics = compute_metrics(args["trades"], equity, window_ns=np.int64(4 * H),
                              shift_ns=np.int64(2 * H))
    assert metrics == compute_metrics(args["trades"], equity, window_ns=4 * H, shift_ns=2 * H)
