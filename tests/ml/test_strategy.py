"""SklearnStrategy: a planted edge is found out of sample and none is invented on a random
walk; decisions at t do not change on data truncated or poisoned after t (check_strategy,
walk_forward's audit), while a variant that does not purge by label end is caught; fitted
models are reused across sweeps of exits; the tuned threshold; replay and live parity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core_engine.backtest import poisoned_panels, walk_forward
from core_engine.errors import ConfigError, LookaheadError
from core_engine.features import RSI, Momentum
from core_engine.ml import MODEL_CACHE, ForwardReturn, SklearnStrategy, make_dataset
from core_engine.risk import ExitRules
from core_engine.testing import check_strategy
from core_engine.trading import RankingTrader, SimBroker, replay
from tests.ml.helpers import planted_panel

OOS_START = "2022-01-31"  # after the first retrain time: every decision is out of sample


def logistic(**kw):
    params = {"estimator": make_pipeline(StandardScaler(), LogisticRegression()),
              "features": [Momentum(4)], "retrain_every": "10d", "train_window": "30d",
              "threshold": 0.5, "label": ForwardReturn(window="4h", fee_bps=10, hurdle_pct=0.0),
              **kw}
    return SklearnStrategy(**params)


@pytest.fixture(scope="module")
def planted():
    return planted_panel(phi=0.3, block_vol=0.015, seed=3)


@pytest.mark.parametrize("phi, seed", [(0.3, 3), (0.3, 5), (0.0, 3), (0.0, 5)])
def test_a_planted_edge_is_found_and_none_is_invented(phi, seed):
    """Block returns with autocorrelation 0.3 (the last 4 hours predict the next 4 with a
    correlation of 0.3): out of sample, after 10 bp fees per side, the logistic model
    earns clearly; on the same generator with no autocorrelation it loses (costs)."""
    panel = planted_panel(phi=phi, block_vol=0.015, seed=seed)
    result = walk_forward(panel, logistic(), window="4h", shift="4h", fee_bps=10,
                          max_positions=1, start=OOS_START)
    m = result.metrics
    if phi:
        assert m["trades"] > 150
        assert m["avg_return_pct"] > 0.25 and m["total_return_pct"] > 50
    else:
        assert m["total_return_pct"] < 2.0 and m["avg_return_pct"] < 0.05


def test_decisions_do_not_change_on_truncated_or_poisoned_data(planted):
    strategy = logistic()
    checked = check_strategy(strategy, planted, n_times=3, seed=2)
    assert len(checked) == 3
    result = walk_forward(planted, strategy, window="4h", shift="4h", max_positions=1,
                          audit=3)
    assert result.metrics["trades"] > 100


class _NoPurge(SklearnStrategy):
    """A negative control: labels treated as ending at their decision time, so training
    rows whose trade is still open at the retrain time are used."""

    def _samples(self, panel, values, plan):
        X, y, ret, times, ends = super()._samples(panel, values, plan)
        return X, y, ret, times, times.copy()


def test_training_on_labels_that_end_after_the_retrain_time_is_caught(planted):
    leaky = _NoPurge(make_pipeline(StandardScaler(), LogisticRegression()), [Momentum(4)],
                     retrain_every="10d", train_window="30d",
                     label=ForwardReturn(window="4h", hurdle_pct=0.0))
    # the decisions around the retrain time 2022-02-17 00:00 (a multiple of 10 days since
    # the epoch): at 00:00 the sample of 20:00 the day before is still open until 01:00
    around = {"start": "2022-02-16 20:00", "end": "2022-02-17 12:00"}
    honest = logistic(threshold=None)
    walk_forward(planted, honest, window="4h", shift="4h", max_positions=1, audit=4, **around)
    with pytest.raises(LookaheadError, match="looks ahead"):
        walk_forward(planted, leaky, window="4h", shift="4h", max_positions=1, audit=4,
                     **around)


def test_dataset_rows_at_t_ignore_everything_after_t(planted):
    features = [Momentum(4), RSI(14)]
    label = ForwardReturn(window="4h", fee_bps=10, slippage_bps=5, hurdle_pct=0.0)
    full = make_dataset(planted, features, label, dropna=False, ranks=True)
    times = full.X.index.get_level_values(0).unique()
    for t in times[[30, 200, 400]]:
        row = planted.index.get_indexer([t - pd.Timedelta("1h")])[0]
        variants = {"known": planted.known_at(t), **poisoned_panels(planted, row, seed=1)}
        for name, variant in variants.items():
            part = make_dataset(variant, features, label, decision_times=[t], dropna=False,
                                ranks=True)
            pd.testing.assert_frame_equal(part.X, full.X.loc[[t]], check_exact=True, obj=name)
    assert full.label_end.min() > full.X.index.get_level_values(0).min()
    assert (full.groups[:-1] <= full.groups[1:]).all() and full.X.shape[1] == 4


def test_models_are_reused_when_only_the_exits_change(planted):
    strategy = logistic(estimator=make_pipeline(StandardScaler(), LogisticRegression(C=0.3)))
    walk_forward(planted, strategy, window="4h", shift="4h", max_positions=1)
    fits = MODEL_CACHE.misses
    assert len(strategy.models_) == 6
    for stop in (1.0, 2.0, 3.0):
        walk_forward(planted, strategy, window="4h", shift="4h", max_positions=1,
                     exits=ExitRules(stop_loss_pct=stop))
    assert MODEL_CACHE.misses == fits  # three more runs, no new fit
    other = logistic(estimator=make_pipeline(StandardScaler(), LogisticRegression(C=0.31)))
    walk_forward(planted, other, window="4h", shift="4h", max_positions=1)
    assert MODEL_CACHE.misses == fits + 6  # another estimator parameter: refit
    importances = strategy.feature_importances()
    assert list(importances.columns) == ["return_4"] and len(importances) == 6


def test_tuned_threshold_and_regressor_scores(planted):
    tuned = logistic(threshold="tune")
    result = walk_forward(planted, tuned, window="4h", shift="4h", max_positions=1,
                          start=OOS_START)
    thresholds = [m.threshold for m in tuned.models_]
    assert len(thresholds) == 6 and all(0.0 < t < 1.0 for t in thresholds)
    assert (result.trades["score"] >= min(thresholds)).all()
    assert result.metrics["total_return_pct"] > 20
    ridge = SklearnStrategy(make_pipeline(StandardScaler(), Ridge()), [Momentum(4)],
                            retrain_every="10d", train_window="30d",
                            label=ForwardReturn(window="4h"), threshold=0.1)
    r = walk_forward(planted, ridge, window="4h", shift="4h", max_positions=1, start=OOS_START)
    assert len(r.trades) > 50 and (r.trades["score"] >= 0.1).all()
    assert r.metrics["avg_return_pct"] > 0.1


def test_parameters_clone_and_errors():
    s = logistic()
    assert s.clone() == s and s.clone() is not s and s.lookback == 4
    assert s != logistic(threshold=0.6)
    with pytest.raises(ConfigError, match="Did you mean 'train_window'"):
        SklearnStrategy(LogisticRegression(), [RSI(14)], trian_window="30d")
    with pytest.raises(ConfigError, match="'estimator' parameter"):
        SklearnStrategy("logistic", [RSI(14)])
    with pytest.raises(ConfigError, match="non-empty list of FeatureComputer"):
        SklearnStrategy(LogisticRegression(), [])
    with pytest.raises(ConfigError, match="longer than the label's window"):
        SklearnStrategy(LogisticRegression(), [RSI(14)], train_window="4h")
    with pytest.raises(ConfigError, match="needs a classifier and a binary label"):
        SklearnStrategy(Ridge(), [RSI(14)], threshold="tune")
    with pytest.raises(ConfigError, match="'ranks' parameter names"):
        SklearnStrategy(LogisticRegression(), [RSI(14)], ranks=["rsi_15"])


def test_replay_trades_like_walk_forward(planted):
    strategy = logistic()
    end = pd.Timestamp("2022-02-20", tz="UTC")
    panel = planted.loc_time(None, end)
    wf = walk_forward(panel, strategy, window="4h", shift="4h", max_positions=1,
                      mode="portfolio", fee_bps=10)
    rep = replay(RankingTrader(strategy, window="4h", shift="4h", max_positions=1), panel,
                 SimBroker(fee_bps=10))
    assert len(wf.trades) > 30
    cols = ["symbol", "entry_time", "exit_time"]
    pd.testing.assert_frame_equal(rep.trades[cols].reset_index(drop=True),
                                  wf.trades[cols].reset_index(drop=True))
    np.testing.assert_allclose(rep.trades["pnl"], wf.trades["pnl"], rtol=1e-9)


def test_live_paper_runner_decides_like_replay(planted, tmp_path):
    from core_engine.live.paper import PaperBroker
    from core_engine.live.runner import Runner, SimulatedClock

    panel = planted.loc_time(None, "2022-02-12")
    start, end = pd.Timestamp("2022-02-09", tz="UTC"), panel.index[-1] + pd.Timedelta("1h")
    trader = RankingTrader(logistic(), window="4h", shift="4h", max_positions=1)
    runner = Runner(trader, PaperBroker(panel, fee_bps=10), tmp_path / "j.sqlite",
                    clock=SimulatedClock(start), symbols=list(panel.symbols), timeframe="1h",
                    history=None, end=end, status_page=False)
    runner.run(until=end)
    live = [(f.symbol, f.side, f.time, round(f.price, 9)) for f in runner.journal.fills()]
    rep = replay(RankingTrader(logistic(), window="4h", shift="4h", max_positions=1), panel,
                 SimBroker(fee_bps=10), start=start, end=end)
    fills = rep.fills[rep.fills["reason"] != "last_close"]
    assert len(live) >= 6
    assert live == [(f.symbol, str(f.side), f.time, round(f.price, 9))
                    for f in fills.itertuples()]


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    """scikit-learn is the ``ml`` extra: without it SklearnStrategy and the scorer say how to
    install it instead of raising an ImportError."""
    import sys

    from core_engine.ml import trading_scorer

    estimator = LogisticRegression()
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.base", None)
    with pytest.raises(ConfigError, match=r"SklearnStrategy needs scikit-learn.*core-engine\[ml\]"):
        SklearnStrategy(estimator=estimator, features=[RSI(14)])
    with pytest.raises(ConfigError, match=r"trading_scorer needs scikit-learn"):
        trading_scorer()
