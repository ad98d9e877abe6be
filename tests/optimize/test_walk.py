"""walk_forward_optimize: choice on training folds only, fold metrics equal fold backtests,
stitched out-of-sample results, every trial's returns kept, CPCV paths."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core_engine.backtest import compute_metrics, equity_curve, walk_forward
from core_engine.errors import ConfigError
from core_engine.optimize import (
    CombinatorialPurgedCV,
    IntUniform,
    LocalExecutor,
    PurgedKFold,
    Sweep,
    WalkForward,
    walk_forward_optimize,
)
from core_engine.strategies import MacdRsiConfluence

from .helpers import PickColumn, random_walk_panel, regime_panel

INLINE = LocalExecutor(1)
HOUR = pd.Timedelta("1h")


@pytest.fixture(scope="module")
def regimes():
    panel = regime_panel()
    sweep = Sweep(PickColumn, {"column": list(range(6))}, panel, window="1h", shift="1h",
                  max_positions=1)
    return sweep, walk_forward_optimize(sweep, WalkForward(train="30h", test="15h"),
                                        executor=INLINE, progress=False)


def test_each_fold_chooses_on_its_training_decisions_only(regimes):
    sweep, wfo = regimes
    folds = wfo.folds
    assert len(folds) == 6  # decisions 01:00 .. 120:00; tests from 31:00, every 15 h
    chosen = [json.loads(p)["column"] for p in folds["params"]]
    switch = pd.Timestamp("2021-01-01", tz="UTC") + 61 * HOUR  # first decision of block 60
    for (_, fold), column in zip(folds.iterrows(), chosen, strict=True):
        if fold["train_end"] < switch:
            assert column == 1
        elif fold["train_start"] >= switch:
            assert column == 4
    # the training value of the choice is the best training Sharpe, fold by fold, each
    # measured by a backtest of the training decisions alone
    for k, fold in folds.iterrows():
        values = {}
        for column in range(6):
            run = walk_forward(sweep.panel, PickColumn(column=column), window="1h", shift="1h",
                               max_positions=1, start=fold["train_start"],
                               end=fold["train_end"] + HOUR)
            values[column] = run.metrics["sharpe"]
        assert fold["in_sample"] == max(values.values())
        assert values[chosen[k]] == fold["in_sample"]


def test_stitched_result_is_the_fold_backtests_of_the_chosen_configurations(regimes):
    sweep, wfo = regimes
    trades, times = [], []
    for _, fold in wfo.folds.iterrows():
        run = walk_forward(sweep.panel, PickColumn(**json.loads(fold["params"])), window="1h",
                           shift="1h", max_positions=1, start=fold["test_start"],
                           end=fold["test_end"] + HOUR)
        assert run.metrics["sharpe"] == fold["out_of_sample"]
        trades.append(run.trades)
        times.append(pd.DatetimeIndex(run.equity["decision_time"]))
    trades = pd.concat(trades, ignore_index=True)
    pd.testing.assert_frame_equal(wfo.result.trades, trades)
    all_times = times[0].append(times[1:])
    equity = equity_curve(trades, all_times, window_ns=3_600 * 10**9, shift_ns=3_600 * 10**9)
    assert wfo.result.metrics == compute_metrics(trades, equity, window_ns=3_600 * 10**9,
                                                 shift_ns=3_600 * 10**9)
    config = wfo.result.config
    assert config["optimization"]["splitter"] == "WalkForward(train='30h', test='15h')"
    assert len(config["optimization"]["folds"]) == 6
    assert wfo.result.data_quality["decision_times_evaluated"] == len(all_times) == 90


def test_every_trial_keeps_its_per_period_returns(regimes):
    _, wfo = regimes
    assert wfo.n_trials == 6 and wfo.returns.shape == (120, 6)
    grid = wfo.fold_metrics()
    assert grid.shape == (6, 12)
    for k, fold in wfo.folds.iterrows():
        assert grid.loc[fold["config_id"], (k, "train")] == fold["in_sample"]
    report = wfo.overfitting_report(n_blocks=8)
    assert report.selected == "walk-forward out-of-sample"
    assert len(report.fold_is_oos) == 6
    fig = report.plot("is_oos")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("walk-forward folds") for label in labels)


def test_purged_kfold_and_cpcv_paths_on_the_baseline():
    panel = random_walk_panel(n_symbols=4, n_candles=288 * 10, seed=4)
    sweep = Sweep(MacdRsiConfluence(max_atr_pct=2.0), {"rsi_low": [35, 45],
                                                       "exits.stop_loss_pct": [1.0, 2.0]},
                  panel)
    times = sweep.decision_times()
    kfold = walk_forward_optimize(sweep, PurgedKFold(3, embargo="4h"), executor=INLINE,
                                  progress=False)
    assert len(kfold.paths) == 1 and len(kfold.folds) == 3
    assert list(kfold.result.equity["decision_time"]) == list(times)
    cpcv = walk_forward_optimize(sweep, CombinatorialPurgedCV(4, 2), executor=INLINE,
                                 progress=False)
    assert len(cpcv.folds) == 6 and len(cpcv.paths) == 3
    for path in cpcv.paths:
        assert list(path.equity["decision_time"]) == list(times)
    # the trials were evaluated once for both splitters' scopes (fold metrics differ)
    assert cpcv.n_trials == kfold.n_trials == 4


def test_optuna_search_per_fold():
    panel = regime_panel(n_blocks=80, switch=40)
    sweep = Sweep(PickColumn, {"column": IntUniform(0, 5)}, panel, window="1h", shift="1h",
                  max_positions=1, search="optuna", n_trials=4, seed=2)
    wfo = walk_forward_optimize(sweep, WalkForward(train="30h", test="20h"), executor=INLINE,
                                progress=False)
    assert len(wfo.folds) == 3 and (wfo.folds["candidates"] >= 1).all()
    assert 1 <= wfo.n_trials <= 6


def test_bad_calls(regimes):
    sweep, _ = regimes
    with pytest.raises(ConfigError, match="leaves no fold"):
        walk_forward_optimize(sweep, WalkForward(train="300h", test="10h"), executor=INLINE)
    with pytest.raises(ConfigError, match="needs a WalkForward"):
        walk_forward_optimize(sweep, object())
    with pytest.raises(ConfigError, match="'select'"):
        walk_forward_optimize(sweep, WalkForward(train="30h", test="15h"), select="sharp",
                              executor=INLINE, progress=False)
    assert np.isfinite(sweep.window_ns)
