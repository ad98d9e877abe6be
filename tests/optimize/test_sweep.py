"""Sweeps: batched simulation equals independent walk_forward calls, feature sharing,
resume, searches, the space's names, and the local process pool."""

from __future__ import annotations

import glob
import json
import math
import os
import subprocess
import sys
from collections import deque

import numpy as np
import pandas as pd
import pytest

import core_engine.optimize.evaluate as evaluate
from core_engine.backtest import walk_forward
from core_engine.errors import ConfigError
from core_engine.optimize import Choice, IntUniform, LocalExecutor, ResultStore, Sweep, Uniform
from core_engine.optimize.evaluate import SharedData, Task, Unit, run_task
from core_engine.optimize.executors import Executor
from core_engine.risk import ExitRules, FixedFraction, MaxATRPct, TopNEqual
from core_engine.strategies import MacdRsiConfluence, MomentumRank

from .helpers import random_walk_panel

INLINE = LocalExecutor(1)


@pytest.fixture(scope="module")
def panel():
    return random_walk_panel(n_symbols=5, n_candles=288 * 12)


def flat_metrics(metrics: dict) -> dict:
    out = {k: v for k, v in metrics.items() if k != "exit_reasons"}
    out.update({f"exit_{k}": v for k, v in metrics["exit_reasons"].items()})
    return out


def assert_same_number(a, b, what):
    if isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), what
    else:
        assert a == b, what


# ---------------------------------------------------------------------------- exactness
def test_batched_sweep_equals_independent_walk_forward_calls(panel, monkeypatch):
    calls = {"walk_forward": 0, "simulate": 0}
    real_wf, real_sim = evaluate.walk_forward, evaluate.simulate_picks

    def counting_wf(*args, **kwargs):
        calls["walk_forward"] += 1
        return real_wf(*args, **kwargs)

    def counting_sim(*args, **kwargs):
        calls["simulate"] += 1
        return real_sim(*args, **kwargs)

    monkeypatch.setattr(evaluate, "walk_forward", counting_wf)
    monkeypatch.setattr(evaluate, "simulate_picks", counting_sim)
    space = {"rsi_low": [35, 45], "max_atr_pct": [0.5, 1.5],
             "exits.stop_loss_pct": [1.0, 2.0, None], "exits.trailing_pct": [None, 0.8]}
    sweep = Sweep(MacdRsiConfluence, space, panel, exits=ExitRules(take_profit_pct=2.5),
                  gates=[MaxATRPct(max_atr_pct=2.0)], fee_bps=7.5, slippage_bps=2)
    result = sweep.run(executor=INLINE, progress=False)
    assert len(result.table) == 24 and result.n_trials == 24
    # 4 groups share scores and picks; each runs walk_forward once, then ONE simulation of
    # its picks under all 6 exit rules (per-pick distances)
    assert calls["walk_forward"] == 4
    assert calls["simulate"] == 4
    for cid, row in result.table.iterrows():
        spec = sweep.build({k: (None if isinstance(v, float) and math.isnan(v) else v)
                            for k, v in row[list(space)].items()})
        assert spec.config_id == cid
        expected = real_wf(panel, spec.strategy, **spec.backtest)
        for key, value in flat_metrics(expected.metrics).items():
            assert_same_number(value, row[key], (cid, key))
        np.testing.assert_array_equal(result.returns[cid].dropna().to_numpy(),
                                      expected.equity["period_return_pct"].to_numpy() / 100.0)


def test_batched_trades_equal_walk_forward_trades_with_atr_exits(panel):
    sweep = Sweep(MacdRsiConfluence(max_atr_pct=2.0), {"exits.stop_loss_atr": [1.0, 2.5],
                                                      "exits.take_profit_atr": [2.0, 4.0]},
                  panel, exits=ExitRules(atr_length=10))
    specs = tuple(sweep.build(p) for p in sweep.points())
    out = run_task(SharedData(panel, sweep.fingerprint),
                   Task((Unit(specs, batched=True),), keep_trades=True))
    for spec in specs:
        expected = walk_forward(panel, spec.strategy, **spec.backtest)
        assert len(expected.trades) > 20
        pd.testing.assert_frame_equal(out["trades"][spec.config_id], expected.trades)


def test_one_kernel_call_per_stop_fill_model(panel, monkeypatch):
    """Exit rules that differ in their levels share one simulation call (per-pick distances);
    a different stop-fill model (how a stop inside a candle fills) needs its own call."""
    calls = []
    real = evaluate.simulate_picks

    def counting(*args, **kwargs):
        calls.append((len(args[1]), kwargs["exits"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "simulate_picks", counting)
    space = {"exits.stop_loss_pct": [1.0, 2.0], "exits.take_profit_pct": [None, 1.5],
             "exits.stop_fill": ["level", "low"]}
    sweep = Sweep(MacdRsiConfluence(max_atr_pct=2.0), space, panel)
    result = sweep.run(executor=INLINE, progress=False)
    n_picks = int(result.table["trades"].iloc[0])
    assert len(calls) == 2
    assert {repr(c) for c in calls} == {repr((4 * n_picks, None)),
                                        repr((4 * n_picks, ExitRules(stop_fill="low")))}
    for cid, row in result.table.iterrows():
        spec = sweep.build(json.loads(row["params"]))
        expected = walk_forward(panel, spec.strategy, **spec.backtest)
        assert row["trades"] == n_picks == expected.metrics["trades"]  # no outage: all trade
        for key in ("sharpe", "total_return_pct", "stop_fill_spread_pct", "exit_stop_loss"):
            assert_same_number(flat_metrics(expected.metrics)[key], row[key], (cid, key))


def test_configurations_the_batch_path_does_not_model_run_alone(panel):
    sweep = Sweep(MacdRsiConfluence, {"rsi_low": [35, 40]}, panel, audit=2)
    result = sweep.run(executor=INLINE, progress=False)
    for _, row in result.table.iterrows():
        expected = walk_forward(panel, MacdRsiConfluence(rsi_low=int(row["rsi_low"])), audit=2)
        assert row["sharpe"] == expected.metrics["sharpe"]
    assert evaluate.batch_key(MacdRsiConfluence(), {"audit": 2}) is None
    assert evaluate.batch_key(MacdRsiConfluence(), {"mode": "portfolio"}) is None
    assert evaluate.batch_key(MacdRsiConfluence(), {"rules": object()}) is None


# ---------------------------------------------------------------------------- sharing
def test_features_are_computed_once_per_worker_and_data_set(panel):
    evaluate._CACHES.clear()
    sweep = Sweep(MacdRsiConfluence, {"rsi_length": [14, 21], "rsi_low": [35, 40, 45]}, panel)
    sweep.run(executor=INLINE, progress=False)
    cache = evaluate._CACHES[sweep.fingerprint]
    # RSI(14), RSI(21), MACD, ATR(14), Momentum(24), VolumeZScore(20): each computed once
    assert cache.misses == 6
    assert cache.hits >= 6 * 2 - 6
    assert len(cache) == 6 and {k[1] for k in cache._entries} >= {"RSI(length=14)",
                                                                  "RSI(length=21)"}


# ---------------------------------------------------------------------------- resume
def test_resume_skips_done_configurations(panel, tmp_path):
    path = tmp_path / "sweep.parquet"
    small = Sweep(MomentumRank, {"length": [12, 24]}, panel)
    first = small.run(executor=INLINE, results=path, progress=False)
    assert (first.evaluated, first.skipped) == (2, 0)
    assert path.is_file() and not (tmp_path / "sweep.parquet.parts").exists()
    bigger = Sweep(MomentumRank, {"length": [12, 24, 48]}, panel)
    second = bigger.run(executor=INLINE, results=path, progress=False)
    assert (second.evaluated, second.skipped) == (1, 2)
    pd.testing.assert_frame_equal(first.table, second.table.loc[first.table.index])
    stored = pd.read_parquet(path)
    assert sorted(stored["config_id"]) == sorted(second.table.index)
    again = bigger.run(executor=INLINE, results=path, progress=False)
    assert (again.evaluated, again.skipped) == (0, 3)


def test_an_interrupted_sweep_keeps_what_finished(panel, tmp_path):
    path = tmp_path / "run.parquet"
    sweep = Sweep(MomentumRank, {"length": [6, 12, 24, 48]}, panel)

    class Stop(Exception):
        pass

    def stop_after_first(done, total):
        raise Stop

    with pytest.raises(Stop):
        sweep.run(executor=INLINE, results=path, progress=False, callback=stop_after_first)
    kept = pd.read_parquet(path)
    assert 1 <= kept["config_id"].nunique() < 4
    resumed = sweep.run(executor=INLINE, results=path, progress=False)
    assert resumed.skipped == kept["config_id"].nunique()
    assert resumed.evaluated + resumed.skipped == 4
    complete = sweep.run(executor=INLINE, progress=False)
    pd.testing.assert_frame_equal(resumed.table.drop(columns="elapsed_s"),
                                  complete.table.drop(columns="elapsed_s"))


def test_part_files_of_a_killed_run_are_read_back(tmp_path):
    """A run killed before it merged its parts leaves part files; they count as done."""
    path = tmp_path / "killed.parquet"
    store = ResultStore(path)
    store.append([{"config_id": "a", "scope": "all", "sharpe": 1.0}])
    store.append([{"config_id": "b", "scope": "all", "sharpe": 2.0}])
    assert len(glob.glob(str(tmp_path / "killed.parquet.parts" / "part-*.parquet"))) == 2
    reopened = ResultStore(path)  # no finish(): as after a crash
    assert reopened.done() == {("a", "all"), ("b", "all")}
    reopened.append([{"config_id": "a", "scope": "all", "sharpe": 3.0}])
    reopened.finish()
    merged = pd.read_parquet(path).set_index("config_id")
    assert merged["sharpe"].to_dict() == {"a": 3.0, "b": 2.0}
    assert not (tmp_path / "killed.parquet.parts").exists()
    with pytest.raises(ConfigError, match="must end in .parquet"):
        ResultStore(tmp_path / "x.csv")


# ---------------------------------------------------------------------------- searches
def test_invalid_points_are_recorded_not_fatal(panel):
    sweep = Sweep(MacdRsiConfluence, {"rsi_low": [40, 70]}, panel, metric="win_rate")
    result = sweep.run(executor=INLINE, progress=False)
    bad = result.table.loc[result.table["rsi_low"] == 70]
    assert "rsi_low" in bad["error"].iloc[0] and "rsi_high" in bad["error"].iloc[0]
    assert result.n_trials == 1 and list(result.returns.columns) == [result.best_config_id]


def test_random_search_samples_distinct_points_reproducibly(panel):
    space = {"length": [6, 12, 24, 48], "volume_fast": [3, 5, 8]}
    a = Sweep(MomentumRank, space, panel, search="random", n_trials=5, seed=3).points()
    b = Sweep(MomentumRank, space, panel, search="random", n_trials=5, seed=3).points()
    assert a == b and len({tuple(p.values()) for p in a}) == 5
    cont = Sweep(MomentumRank, {"length": IntUniform(6, 48, 6), "min_volume_trend":
                                Uniform(-0.5, 0.5)}, panel, search="random", n_trials=4)
    points = cont.points()
    assert all(p["length"] in range(6, 49, 6) and -0.5 <= p["min_volume_trend"] <= 0.5
               for p in points)
    with pytest.raises(ConfigError, match="continuous range"):
        Sweep(MomentumRank, {"min_volume_trend": Uniform(0, 1)}, panel)


def test_optuna_search_asks_and_tells(panel):
    sweep = Sweep(MomentumRank, {"length": IntUniform(6, 60, 6), "volume_fast": [3, 5]},
                  panel, search="optuna", n_trials=6, seed=1)
    result = sweep.run(executor=INLINE, progress=False)
    again = Sweep(MomentumRank, {"length": IntUniform(6, 60, 6), "volume_fast": [3, 5]},
                  panel, search="optuna", n_trials=6, seed=1).run(executor=INLINE,
                                                                   progress=False)
    assert list(result.table.index) == list(again.table.index)
    assert 1 <= len(result.table) <= 6
    assert result.table.loc[result.best_config_id, "sharpe"] == result.table["sharpe"].max()


# ---------------------------------------------------------------------------- names
def test_space_names_reach_strategy_backtest_and_nested_configs(panel):
    sweep = Sweep(MacdRsiConfluence, {"strategy.rsi_low": [35], "max_atr_pct": [1.0],
                                      "allocator.n": [2], "fee_bps": [5.0],
                                      "exits.stop_loss_pct": [1.5]},
                  panel, allocator=TopNEqual(n=3), exits=ExitRules(take_profit_pct=3.0))
    spec = sweep.build(sweep.points()[0])
    assert spec.strategy == MacdRsiConfluence(rsi_low=35, max_atr_pct=1.0)
    assert spec.backtest["allocator"] == TopNEqual(n=2)
    assert spec.backtest["fee_bps"] == 5.0
    assert spec.backtest["exits"] == ExitRules(stop_loss_pct=1.5, take_profit_pct=3.0)
    result = sweep.run(executor=INLINE, progress=False)
    direct = walk_forward(panel, spec.strategy, **spec.backtest)
    assert result.table["trades"].iloc[0] == direct.metrics["trades"]


@pytest.mark.parametrize("space,kwargs,message", [
    ({"rsi_lwo": [1]}, {}, "Did you mean 'rsi_low'"),
    ({"exits.stop_loss": [1.0]}, {}, "ExitRules has no field 'stop_loss'.*Did you mean"),
    ({"rules.cooldwn": ["1h"]}, {}, "PortfolioRules has no field 'cooldwn'.*Did you mean"),
    ({"allocator.n": [2]}, {}, "which the sweep does not give. Pass a base object"),
    ({"rsi_low": [40]}, {"cache": None}, "a sweep manages"),
    ({"rsi_low": [40]}, {"windwo": "4h"}, "Did you mean 'window'"),
    ({"rsi_low": []}, {}, "at least one value"),
    ({"rsi_low": "50:40:5"}, {}, "start <= stop"),
])
def test_bad_space_names_and_arguments(panel, space, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Sweep(MacdRsiConfluence, space, panel, **kwargs)


def test_space_syntax():
    assert Choice.parse("35:50:5").values == [35, 40, 45, 50]
    assert Choice.parse("0.5:1.5:0.5").values == [0.5, 1.0, 1.5]
    assert Choice.parse("1,1.5,none,true").values == [1, 1.5, None, True]


def test_unknown_metric_fails_after_the_first_task(panel):
    sweep = Sweep(MomentumRank, {"length": [12, 24]}, panel, metric="sharp")
    with pytest.raises(ConfigError, match="Did you mean 'sharpe'"):
        sweep.run(executor=INLINE, progress=False)


def test_missing_extras_are_named(monkeypatch, panel):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ConfigError, match=r"core-engine\[optuna\]"):
        Sweep(MomentumRank, {"length": [12]}, panel, search="optuna", n_trials=2)
    monkeypatch.setitem(sys.modules, "distributed", None)
    from core_engine.optimize import DaskExecutor

    with pytest.raises(ConfigError, match=r"core-engine\[dask\]"):
        DaskExecutor(object())
    code = ("import sys; sys.modules.update(dask=None, distributed=None, optuna=None); "
            "import core_engine.optimize as o; print(len(o.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) > 10


# ---------------------------------------------------------------------------- executors
def test_process_pool_gives_the_inline_results(panel):
    space = {"rsi_low": [35, 45], "exits.stop_loss_pct": [1.0, 2.0]}
    sweeps = [Sweep(MacdRsiConfluence(max_atr_pct=2.0), space, panel),
              Sweep(MacdRsiConfluence(max_atr_pct=2.0), {"rules.cooldown": ["1h", "6h"],
                                                         "sizing.pct": [20.0, 45.0]},
                    panel, mode="portfolio", sizing=FixedFraction(pct=10.0))]
    inline = [sweep.run(executor=INLINE, progress=False) for sweep in sweeps]
    with LocalExecutor(2, target_seconds=0.0) as pool:  # one pool for both sweeps
        pooled = [sweep.run(executor=pool, progress=False) for sweep in sweeps]
        shared = pool._session.path  # this pool's panel file (other test runs have theirs)
        assert os.path.isfile(shared)
    for a, b in zip(inline, pooled, strict=True):
        pd.testing.assert_frame_equal(a.table.drop(columns="elapsed_s"),
                                      b.table.drop(columns="elapsed_s"))
        pd.testing.assert_frame_equal(a.returns, b.returns)
    assert inline[1].returns.index.name == "day" and len(inline[1].table) == 4
    assert not os.path.exists(shared)  # the panel file is gone with the pool


def test_task_sizing_aims_at_the_target_and_shares_the_rest():
    def units(*sizes):
        return deque(Unit(tuple(range(n)), batched=True) for n in sizes)

    ex = Executor()
    ex.n_workers, ex.target_seconds = 2, 0.1
    queue = units(8, 8, 8)
    assert [len(u) for u in ex._take(queue, [])] == [8]  # cost unknown: one unit
    queue = units(8, 8, 8, 8)
    # 10 ms a configuration: 0.1 s is 10 configurations, so whole units up to at least 10
    assert [len(u) for u in ex._take(queue, [0.01])] == [8, 8]
    queue = units(40)
    first = ex._take(queue, [0.0001])  # cheap: capped at an equal share of what is left
    assert [len(u) for u in first] == [20] and [len(u) for u in queue] == [20]
    with pytest.raises(ConfigError, match="positive integer"):
        LocalExecutor(0)


def test_sweep_result_arguments_are_checked_by_name(panel):
    from core_engine.optimize import SweepResult

    sweep = Sweep(MomentumRank, {"length": [12, 24]}, panel)
    done = sweep.run(executor=INLINE, progress=False)
    ids = list(done.table.index)
    again = SweepResult(sweep, done.rows, ids, np.int64(2), 0)
    pd.testing.assert_frame_equal(again.table, done.table)
    good = {"sweep": sweep, "frame": done.rows, "ids": ids, "evaluated": 2, "skipped": 0}
    for name, wrong in [("sweep", None), ("sweep", "yesterday"), ("frame", [1, 2]),
                        ("frame", panel), ("frame", done.rows.drop(columns="config_id")),
                        ("ids", None), ("ids", "abc"), ("ids", [1, 2]), ("evaluated", -1),
                        ("evaluated", math.nan), ("skipped", True)]:
        with pytest.raises(ConfigError, match=f"'{name}' parameter of SweepResult"):
            SweepResult(**{**good, name: wrong})
    with pytest.raises(ConfigError, match="SweepResult has no parameter 'idx'.*Did you mean 'ids'"):
        SweepResult(**{k: v for k, v in good.items() if k != "ids"}, idx=ids)


def test_config_id_checks_backtest_and_fingerprint():
    from core_engine.optimize.results import config_id

    strategy = MomentumRank(length=6)
    cid = config_id(strategy, {"window": "1h"}, "fp-1")
    assert len(cid) == 16 and cid == config_id(strategy, {"window": "1h"}, "fp-1")
    assert cid != config_id(strategy, {"window": "1h"}, "fp-2")
    for backtest in (None, "yesterday", -1, [("window", "1h")], {1: "1h"}):
        with pytest.raises(ConfigError, match="'backtest' parameter of config_id"):
            config_id(strategy, backtest, "fp-1")
    for fingerprint in (None, "", 3, math.nan, ["fp"]):
        with pytest.raises(ConfigError, match="'fingerprint' parameter of config_id"):
            config_id(strategy, {"window": "1h"}, fingerprint)
