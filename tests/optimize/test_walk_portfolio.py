"""walk_forward_optimize in portfolio mode: fold values are accounts traded on the fold's
decisions alone (cash carried across a purged gap), and the out-of-sample run is one
account trading the test folds in turn, its cash carried from fold to fold, flat at every
switch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core_engine.backtest import BacktestResult, walk_forward
from core_engine.optimize import (
    CombinatorialPurgedCV,
    LocalExecutor,
    PurgedKFold,
    Sweep,
    WalkForward,
    walk_forward_optimize,
)
from core_engine.optimize.account import account_segments

from .helpers import PickColumn, regime_panel

INLINE = LocalExecutor(1)
HOUR = pd.Timedelta("1h")
CASH = 7_500.0


def portfolio_sweep(panel, window="1h", columns=(0, 1, 4)):
    return Sweep(PickColumn, {"column": list(columns)}, panel, window=window, shift="1h",
                 max_positions=1, mode="portfolio", initial_cash=CASH,
                 metric="total_return_pct")


def account(panel, legs, window):
    """The reference: plain walk_forward calls of ``(column, start, end)`` legs, each
    starting with the cash the previous one ended with."""
    cash, runs = CASH, []
    for column, start, end in legs:
        run = walk_forward(panel, PickColumn(column=column), window=window, shift="1h",
                           max_positions=1, mode="portfolio", start=start, end=end,
                           initial_cash=cash)
        runs.append(run)
        cash = run.metrics["final_equity"]
    return runs


@pytest.fixture(scope="module")
def walk():
    panel = regime_panel()
    sweep = portfolio_sweep(panel)
    return sweep, walk_forward_optimize(sweep, WalkForward(train="30h", test="30h"),
                                        executor=INLINE, progress=False)


def test_each_fold_chooses_the_best_training_account(walk):
    sweep, wfo = walk
    folds = wfo.folds
    assert len(folds) == 3 and folds["config_id"].notna().all()
    chosen = [json.loads(p)["column"] for p in folds["params"]]
    switch = pd.Timestamp("2021-01-01", tz="UTC") + 61 * HOUR
    before = [c for c, (_, f) in zip(chosen, folds.iterrows(), strict=True)
              if f["train_end"] < switch]
    after = [c for c, (_, f) in zip(chosen, folds.iterrows(), strict=True)
             if f["train_start"] >= switch]
    assert before == [1] * len(before) and after == [4] * len(after)
    assert before == [1, 1] and after == [4]  # the account follows the regime
    for k, fold in folds.iterrows():
        values = {}
        for column in (0, 1, 4):  # a training fold is one block: one fresh account
            run = walk_forward(sweep.panel, PickColumn(column=column), window="1h",
                               shift="1h", max_positions=1, mode="portfolio",
                               initial_cash=CASH, start=fold["train_start"],
                               end=fold["train_end"] + HOUR)
            values[column] = run.metrics["total_return_pct"]
        assert fold["in_sample"] == max(values.values()) == values[chosen[k]]
        test = walk_forward(sweep.panel, PickColumn(column=chosen[k]), window="1h",
                            shift="1h", max_positions=1, mode="portfolio", initial_cash=CASH,
                            start=fold["test_start"], end=fold["test_end"] + HOUR)
        assert fold["out_of_sample"] == test.metrics["total_return_pct"]


def test_the_out_of_sample_run_is_one_account_carried_from_fold_to_fold(walk, tmp_path):
    sweep, wfo = walk
    result, folds = wfo.result, wfo.folds
    legs = [(json.loads(f["params"])["column"], f["test_start"], f["test_end"] + HOUR)
            for _, f in folds.iterrows()]  # window == shift: adjacent folds lose nothing
    runs = account(sweep.panel, legs, "1h")
    pd.testing.assert_frame_equal(result.trades,
                                  pd.concat([r.trades for r in runs], ignore_index=True))
    assert result.metrics["initial_cash"] == CASH
    assert result.metrics["final_equity"] == runs[-1].metrics["final_equity"]
    assert result.metrics["final_equity"] == pytest.approx(CASH + result.trades["pnl"].sum(),
                                                           rel=1e-12)
    growth = np.prod([r.metrics["final_equity"] / r.metrics["initial_cash"] for r in runs])
    assert result.metrics["total_return_pct"] == pytest.approx((growth - 1) * 100, rel=1e-12)
    equity = result.equity
    assert equity["time"].is_monotonic_increasing and equity["time"].is_unique
    assert equity["equity"].iloc[0] == CASH
    peak = equity["equity"].cummax()
    np.testing.assert_allclose(equity["drawdown_pct"], (1 - equity["equity"] / peak) * 100)
    # at each switch the account shows the cash the next fold starts with
    for run in runs[1:]:
        first = run.equity["time"].iloc[0]
        assert equity.loc[equity["time"] == first, "equity"].item() == \
            run.metrics["initial_cash"]
    assert result.config["mode"] == "portfolio" and result.blocked is not None
    assert "(walk-forward optimised)" in result.summary()
    loaded = BacktestResult.load(result.save(tmp_path / "oos"))
    pd.testing.assert_frame_equal(loaded.trades, result.trades)
    assert loaded.metrics == result.metrics
    assert result.data_quality["decision_times_evaluated"] == 90
    report = wfo.overfitting_report(n_blocks=2)
    days = (pd.DatetimeIndex(equity["time"][1:]) - pd.Timedelta(1, "ns")).floor("D")
    assert report.periods_per_year == 365.0 and report.n_obs == days.nunique()  # daily


def test_longer_window_flat_at_every_switch_and_purged_training_blocks():
    panel = regime_panel(n_blocks=72, switch=36)
    sweep = portfolio_sweep(panel, window="2h", columns=(1, 4))
    times = sweep.decision_times()
    splitter = PurgedKFold(3)
    wfo = walk_forward_optimize(sweep, splitter, executor=INLINE, progress=False)
    splits = list(splitter.split(times, label_end=times + 2 * HOUR))
    window_ns = 2 * 3_600 * 10**9
    for k, (train, _) in enumerate(splits):
        segments = account_segments([train], times, window_ns)
        assert 1 <= len(segments) <= 2  # the training decisions around the test fold
        column = json.loads(wfo.folds.at[k, "params"])["column"]
        legs = [(column, pd.Timestamp(s, tz="UTC"), pd.Timestamp(e, tz="UTC"))
                for _, s, e in segments]
        runs = account(panel, legs, "2h")
        assert wfo.folds.at[k, "in_sample"] == pytest.approx(
            (runs[-1].metrics["final_equity"] / CASH - 1) * 100, rel=1e-12)
        if len(segments) == 2:  # the purge: the first block ends a window after its last
            assert segments[0][2] - segments[0][1] >= window_ns
            assert segments[1][1] - segments[0][2] >= 0
    # the out-of-sample account: each fold ends at the next fold's first decision, so its
    # last decision (whose 2h window would cross the switch) is not traded
    result = wfo.result
    tests = [test for _, test in splits]
    for k in range(len(tests) - 1):
        last, following = times[tests[k][-1]], times[tests[k + 1][0]]
        decided = pd.DatetimeIndex(result.trades["decision_time"])
        assert last not in decided
        held = result.trades.loc[(decided >= times[tests[k][0]]) & (decided <= last)]
        assert (pd.DatetimeIndex(held["exit_time"]) <= following).all()
    legs = [(json.loads(wfo.folds.at[k, "params"])["column"], times[test[0]],
             times[tests[k + 1][0]] if k + 1 < len(tests) else times[test[-1]] + 2 * HOUR)
            for k, test in enumerate(tests)]
    runs = account(panel, legs, "2h")
    pd.testing.assert_frame_equal(result.trades,
                                  pd.concat([r.trades for r in runs], ignore_index=True))
    assert result.metrics["final_equity"] == runs[-1].metrics["final_equity"]
    assert result.data_quality["decision_times_evaluated"] == len(times) - 2


def test_cpcv_paths_are_accounts_too():
    panel = regime_panel(n_blocks=48, switch=24)
    sweep = Sweep(PickColumn, {"column": [1, 4]}, panel, window="1h", shift="1h",
                  max_positions=1, mode="portfolio")
    cpcv = walk_forward_optimize(sweep, CombinatorialPurgedCV(4, 2), executor=INLINE,
                                 progress=False)
    assert len(cpcv.paths) == 3
    for path in cpcv.paths:
        assert path.metrics["initial_cash"] == 10_000.0
        assert path.metrics["final_equity"] == pytest.approx(
            10_000.0 + path.trades["pnl"].sum(), rel=1e-12)
        assert path.equity["time"].is_unique
