"""One test per class of hostile input fixed at the public entry points (issue 9 §2).

The broad sweep is tests/test_hostile_inputs.py; these pin each class's message shape
(what was given, where, what was expected) on the entry points users reach first.
"""

from __future__ import annotations

import logging

import pytest

from core_engine.errors import ConfigError, CoreEngineError, StoreError

# -- paths: None, "", NUL, a file where a folder is expected, a folder where a file is --------

@pytest.mark.parametrize("root", [None, "", "a\x00b", 3.5])
def test_paths_class_store_root_refused(root):
    from core_engine.data import ParquetStore

    with pytest.raises(StoreError, match="'root' parameter of ParquetStore"):
        ParquetStore(root)


def test_paths_class_a_file_is_not_a_store(tmp_path):
    from core_engine.data import ParquetStore

    a_file = tmp_path / "prices.csv"
    a_file.write_text("x")
    with pytest.raises(StoreError, match="which is a file"):
        ParquetStore(a_file)


def test_paths_class_no_folder_named_none(tmp_path, monkeypatch):
    """``ParquetStore(None)`` used to write into a folder named 'None'."""
    from core_engine.data import ParquetStore

    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError):
        ParquetStore(None)
    assert not (tmp_path / "None").exists()


@pytest.mark.parametrize("path", [None, "", "a\x00b"])
def test_paths_class_result_save_and_load(path, tmp_path):
    from core_engine.backtest import BacktestResult, walk_forward
    from core_engine.data import Panel, SyntheticProvider
    from core_engine.strategies import MomentumRank

    provider = SyntheticProvider(seed=1, n_symbols=2)
    frames = {s: provider.fetch_ohlcv(s, "5m", "2021-01-01", "2021-01-03")
              for s in provider.symbols()}
    result = walk_forward(Panel.from_frames(frames, "5m"), MomentumRank(length=6),
                          window="1h", shift="1h")
    with pytest.raises(ConfigError, match="'path' parameter of BacktestResult.save"):
        result.save(path)
    with pytest.raises(ConfigError, match="'path' parameter of BacktestResult.load"):
        BacktestResult.load(path)


def test_paths_class_files_and_journals(tmp_path):
    from core_engine.data.providers import FileProvider, read_candle_file
    from core_engine.live import Journal, JournalError
    from core_engine.optimize import ResultStore

    with pytest.raises(ConfigError, match="which is a folder"):
        read_candle_file(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        read_candle_file(tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="'path_or_dir' parameter of FileProvider"):
        FileProvider(None)
    with pytest.raises(JournalError, match="which is a folder"):
        Journal(tmp_path)
    with pytest.raises(JournalError, match="NUL"):
        Journal("a\x00b.sqlite")
    with pytest.raises(ConfigError, match="which is a folder"):
        ResultStore(tmp_path)


def test_paths_class_status_page(tmp_path):
    from core_engine.live import Journal, write_status_page

    with Journal(tmp_path / "j.sqlite") as journal:
        with pytest.raises(ConfigError, match="which is a folder"):
            write_status_page(journal, path=tmp_path)
    with pytest.raises(ConfigError, match="must be a Journal"):
        write_status_page(str(tmp_path / "j.sqlite"))


# -- times ---------------------------------------------------------------------------------

@pytest.mark.parametrize("start", ["yesterday", float("nan"), None, [], "2021-13-45"])
def test_times_class_simulated_clock(start):
    from core_engine.live import SimulatedClock

    with pytest.raises(ConfigError, match="'start' parameter"):
        SimulatedClock(start)


def test_times_class_simulated_clock_is_utc():
    from core_engine.live import SimulatedClock

    assert str(SimulatedClock("2021-03-01 10:00").now().tz) == "UTC"


def test_times_class_status_now(tmp_path):
    from core_engine.live import Journal, status_text

    with Journal(tmp_path / "j.sqlite") as journal:
        with pytest.raises(ConfigError, match="'now' parameter"):
            status_text(journal, now="not a time")


# -- objects that would break the process later ---------------------------------------------

def test_wrong_objects_class_protect_logging_refuses_before_installing():
    from core_engine.live import protect_logging

    factory = logging.getLogRecordFactory()
    with pytest.raises(ConfigError, match="SecretScrubber"):
        protect_logging(None)
    assert logging.getLogRecordFactory() is factory
    logging.getLogger("core_engine.test").warning("logging still works")


def test_every_error_here_is_a_core_engine_error():
    assert issubclass(StoreError, CoreEngineError) and issubclass(ConfigError, CoreEngineError)


# -- keyword typos: the did-you-mean strategies give, for every public class -----------------

@pytest.mark.parametrize("build, hint", [
    (lambda: __import__("core_engine.risk", fromlist=["_"]).InverseVolatility(lenght=3),
     "'length'"),
    (lambda: __import__("core_engine.risk", fromlist=["_"]).MaxATRPct(max_atr_pc=2.0),
     "'max_atr_pct'"),
    (lambda: __import__("core_engine.data", fromlist=["_"]).SyntheticProvider(n_symbol=3),
     "'n_symbols'"),
    (lambda: __import__("core_engine.optimize", fromlist=["_"]).PurgedKFold(n_split=3),
     "'n_splits'"),
    (lambda: __import__("core_engine.live", fromlist=["_"]).Breakers(max_drawdown=5),
     "'max_drawdown_pct'"),
])
def test_kwarg_typos_class_get_a_did_you_mean(build, hint):
    with pytest.raises(ConfigError, match=rf"has no parameter .*Did you mean {hint}\?"):
        build()


def test_kwarg_typos_class_missing_and_extra_arguments():
    from core_engine.optimize import IntUniform
    from core_engine.risk import MaxATRPct

    with pytest.raises(ConfigError, match=r"MaxATRPct needs the parameter\(s\) \['max_atr_pct'\]"):
        MaxATRPct()
    with pytest.raises(ConfigError, match="positional argument"):
        IntUniform(1, 2, 3, 4)


def test_kwarg_typos_class_leaves_errors_inside_init_alone():
    """A TypeError raised by the body of __init__ (the call itself fits) is not rewritten."""
    from core_engine._config import keyword_checked

    @keyword_checked
    class Broken:
        def __init__(self, x: int = 1) -> None:
            raise TypeError("inside")

    with pytest.raises(TypeError, match="inside"):
        Broken(x=2)


# -- candle frames given to the repair functions ----------------------------------------------

@pytest.mark.parametrize("name", ["sort_candles", "drop_duplicate_timestamps",
                                  "drop_invalid_rows", "repair_candles"])
@pytest.mark.parametrize("frame, message", [
    (None, "must be a pandas DataFrame"),
    ({"timestamp": [1]}, "must be a pandas DataFrame"),
    ("frame", "must be a pandas DataFrame"),
])
def test_frames_class_repair_functions_refuse_non_frames(name, frame, message):
    import core_engine.data as data
    from core_engine.errors import DataValidationError

    with pytest.raises(DataValidationError, match=rf"'frame' parameter of {name} {message}"):
        getattr(data, name)(frame)


def test_frames_class_bad_columns():
    import numpy as np
    import pandas as pd

    from core_engine.data import drop_invalid_rows, gap_report, sort_candles
    from core_engine.errors import DataValidationError

    ts = pd.date_range("2021-01-01", periods=3, freq="5min", tz="UTC")
    good = pd.DataFrame({"timestamp": ts, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0,
                         "volume": 0.0})
    with pytest.raises(DataValidationError, match=r"lacks the column\(s\) \['volume'\]"):
        sort_candles(good.drop(columns="volume"))
    twice = pd.concat([good, good[["close"]]], axis=1)
    with pytest.raises(DataValidationError, match=r"repeated column\(s\) \['close'\]"):
        drop_invalid_rows(twice)
    with pytest.raises(DataValidationError, match="'close' column .* must be numeric"):
        drop_invalid_rows(good.assign(close=np.array(["a", "b", "c"], dtype=object)))
    with pytest.raises(DataValidationError, match="must hold datetimes"):
        sort_candles(good.assign(timestamp=[3, 2, 1]))
    with pytest.raises(DataValidationError, match="must be a pandas DataFrame"):
        gap_report([1, 2], "5m")


# -- wrong objects and numbers given to the checking helpers ------------------------------------

@pytest.fixture(scope="module")
def small_panel():
    from core_engine.data import Panel, SyntheticProvider

    provider = SyntheticProvider(seed=2, n_symbols=2)
    frames = {s: provider.fetch_ohlcv(s, "5m", "2021-01-01", "2021-01-03")
              for s in provider.symbols()}
    return Panel.from_frames(frames, "5m")


@pytest.fixture(scope="module")
def small_result(small_panel):
    from core_engine.backtest import walk_forward
    from core_engine.strategies import MomentumRank

    return walk_forward(small_panel, MomentumRank(length=6), window="1h", shift="1h")


@pytest.mark.parametrize("call, message", [
    (lambda p: __import__("core_engine.testing", fromlist=["_"]).check_strategy(None, p),
     "'strategy' parameter of check_strategy must be a Strategy"),
    (lambda p: __import__("core_engine.testing", fromlist=["_"]).check_feature("rsi", p),
     "'computer' parameter of check_feature must be a feature"),
    (lambda p: __import__("core_engine.testing", fromlist=["_"]).check_trader(3, p),
     "'trader' parameter of check_trader must be a Trader"),
    (lambda p: __import__("core_engine.testing", fromlist=["_"]).check_strategy(
        __import__("core_engine.strategies", fromlist=["_"]).MomentumRank(), p, seed=-1),
     "'seed' parameter of check_strategy must be an integer >= 0"),
    (lambda p: __import__("core_engine.testing", fromlist=["_"]).check_strategy(
        __import__("core_engine.strategies", fromlist=["_"]).MomentumRank(), p, rtol="tight"),
     "'rtol' parameter of check_strategy must be a finite number >= 0"),
    (lambda p: __import__("core_engine.testing", fromlist=["_"]).check_feature(
        __import__("core_engine.features", fromlist=["_"]).RSI(14), p, n_times=10**12),
     "'n_times' parameter of check_feature must be an integer >= 1 and <= 100,000"),
])
def test_wrong_objects_class_checking_helpers(call, message, small_panel):
    with pytest.raises(ConfigError, match=message):
        call(small_panel)


def test_wrong_objects_class_results_views(small_result, tmp_path):
    from core_engine.backtest import compare
    from core_engine.research import (
        plot_comparison,
        plot_equity,
        plot_factor,
        plot_return_distribution,
        result_html,
        write_report,
    )

    for call, where in [(lambda: plot_equity(None), "plot_equity"),
                        (lambda: result_html({"metrics": {}}), "result_html"),
                        (lambda: write_report("run", tmp_path / "r.html"), "write_report")]:
        with pytest.raises(ConfigError, match=f"'result' parameter of {where} must be a Backtest"):
            call()
    with pytest.raises(ConfigError, match="'report' parameter of plot_factor"):
        plot_factor(small_result)
    with pytest.raises(ConfigError, match="item 1"):
        compare([small_result, "run"])
    with pytest.raises(ConfigError, match="'results' parameter of plot_comparison"):
        plot_comparison(small_result)
    with pytest.raises(ConfigError, match="'figsize' parameter"):
        plot_equity(small_result, figsize=(10, float("nan")))
    with pytest.raises(ConfigError, match="'bins' parameter of plot_return_distribution"):
        plot_return_distribution(small_result, bins=10**12)  # was a MemoryError
    with pytest.raises(ConfigError, match="'dpi' parameter of write_report"):
        write_report(small_result, tmp_path / "r.html", dpi=True)


# -- absurd sizes: durations, times, sweep ranges and grids, splitters ------------------------

@pytest.mark.parametrize("window", ["1000000d", "73000d", "6000w"])
def test_absurd_sizes_class_durations_over_100_years(window, small_panel):
    """A window of a million days used to hang walk_forward."""
    from core_engine.backtest import walk_forward
    from core_engine.data import timeframe_ns
    from core_engine.strategies import MomentumRank

    with pytest.raises(ConfigError, match="at most 100 years"):
        timeframe_ns(window)
    with pytest.raises(ConfigError, match="'window' parameter of walk_forward"):
        walk_forward(small_panel, MomentumRank(length=6), window=window)


@pytest.mark.parametrize("end", ["2300-01-01", "1500-01-01"])
def test_absurd_sizes_class_times_outside_nanosecond_range(end, small_panel, tmp_path):
    from core_engine.backtest import walk_forward
    from core_engine.data import ParquetStore
    from core_engine.data.providers import load_sample
    from core_engine.live import SimulatedClock
    from core_engine.strategies import MomentumRank

    for call in (lambda: walk_forward(small_panel, MomentumRank(length=6), end=end),
                 lambda: load_sample(["BTC/USDT"], end=end),
                 lambda: ParquetStore(tmp_path).read("BTC/USDT", "5m", end=end),
                 lambda: SimulatedClock(end)):
        with pytest.raises(ConfigError, match="must be a time between 1677 and 2262"):
            call()


def test_absurd_sizes_class_sweep_ranges(small_panel):
    import numpy as np

    from core_engine.optimize import IntUniform, Space, Sweep
    from core_engine.optimize.space import MAX_GRID

    huge = IntUniform(1, 10**12)  # used to build a list of 10**12 ints
    assert huge.size("length") == 10**12 and huge.high == 10**12
    assert 1 <= huge.sample(np.random.default_rng(0)) <= 10**12
    with pytest.raises(ConfigError, match=r"1,000,000,000,000 grid points"):
        Sweep("momentum_rank", {"length": huge}, small_panel)
    with pytest.raises(ConfigError, match=f"at most {MAX_GRID:,}"):
        Space({"length": "1:2000:1", "volume_fast": "1:1000:1"}).grid()
    points = Space({"length": huge}).sample(3, seed=1)  # random search: fine, lazily
    assert len(points) == 3 and all(1 <= p["length"] <= 10**12 for p in points)
    with pytest.raises(ConfigError, match="has 1,000,001 values"):
        Space({"length": "0:1000000:1"}).grid()


def test_absurd_sizes_class_splitters():
    from core_engine.optimize import CombinatorialPurgedCV

    with pytest.raises(ConfigError, match="splits; at most 100,000"):
        CombinatorialPurgedCV(10**12, 2)  # was a MemoryError


def test_names_class_make_bot_and_get_provider():
    from core_engine.data.providers import get_provider
    from core_engine.trading.bots import make_bot

    for name in (None, 3, ["grid"]):
        with pytest.raises(ConfigError, match="'name' parameter of make_bot"):
            make_bot(name)
        with pytest.raises(ConfigError, match="'name' parameter of get_provider"):
            get_provider(name)


# -- providers, store reads and statistics given the wrong kind of value -----------------------

def test_wrong_values_class_providers_and_store(tmp_path):
    from core_engine.data import NobitexProvider, ParquetStore
    from core_engine.data.providers import FileProvider, load_sample

    with pytest.raises(ConfigError, match="'columns' parameter of FileProvider"):
        FileProvider(tmp_path, columns=["open"])
    with pytest.raises(ConfigError, match="'pattern' parameter of FileProvider"):
        FileProvider(tmp_path, pattern=None)
    with pytest.raises(ConfigError, match="'symbols' parameter of load_sample"):
        load_sample(3)
    with pytest.raises(ConfigError, match="'symbols' parameter of ParquetStore.read"):
        ParquetStore(tmp_path).read(None, "5m")
    with pytest.raises(ConfigError, match="'base_url' parameter of NobitexProvider"):
        NobitexProvider(base_url=None)
    with pytest.raises(ConfigError, match="'min_interval' parameter of NobitexProvider"):
        NobitexProvider(min_interval="fast")


@pytest.mark.parametrize("call, message", [
    (lambda o: o.probabilistic_sharpe_ratio("returns"), "'returns' parameter"),
    (lambda o: o.probabilistic_sharpe_ratio(sharpe="high", n_obs=10, skew=0, kurtosis=3),
     "'sharpe' parameter of probabilistic_sharpe_ratio"),
    (lambda o: o.probabilistic_sharpe_ratio(sharpe=float("nan"), n_obs=10, skew=0, kurtosis=3),
     "'sharpe' parameter of probabilistic_sharpe_ratio"),
    (lambda o: o.expected_max_sharpe(10, None), "'variance' parameter of expected_max_sharpe"),
    (lambda o: o.deflated_sharpe_ratio([0.1, 0.2, 0.3], n_trials=5, sharpe_variance="big"),
     "'sharpe_variance' parameter of deflated_sharpe_ratio"),
    (lambda o: o.deflated_sharpe_ratio([0.1, 0.2, 0.3], n_trials=5, trial_sharpes=object()),
     "'trial_sharpes' parameter of deflated_sharpe_ratio"),
    (lambda o: o.probability_of_backtest_overfitting({"a": "b"}),
     "'returns' parameter of probability_of_backtest_overfitting"),
    (lambda o: o.LocalExecutor(target_seconds=None), "'target_seconds' parameter of LocalExecutor"),
])
def test_wrong_values_class_overfitting_statistics(call, message):
    import core_engine.optimize as optimize

    with pytest.raises(ConfigError, match=message):
        call(optimize)


def test_wrong_values_class_strategy_and_risk_helpers(small_panel):
    from core_engine.risk import apply_gates, gate_features, stop_price
    from core_engine.strategies import did_you_mean, rank_candidates

    assert did_you_mean(None, ["rsi_low"]) == ""
    assert did_you_mean("rsi_lo", ("rsi_low",)) == " Did you mean 'rsi_low'?"
    with pytest.raises(ConfigError, match="'valid' parameter of did_you_mean"):
        did_you_mean("x", None)
    with pytest.raises(ConfigError, match="'symbols' parameter of rank_candidates"):
        rank_candidates([1.0], None)
    with pytest.raises(ConfigError, match=r"one number per symbol \(2\)"):
        rank_candidates([1.0], ["A", "B"])
    with pytest.raises(ConfigError, match="'gates' parameter of gate_features"):
        gate_features("max_atr")
    with pytest.raises(ConfigError, match="'panel' parameter of apply_gates"):
        apply_gates([], {}, None)
    with pytest.raises(ConfigError, match="'rules' parameter of stop_price must be an ExitRules"):
        stop_price(100.0, {"stop_loss_pct": 2})


def test_wrong_values_class_features_factors_and_notifiers(small_panel):
    from core_engine.backtest import walk_forward
    from core_engine.features import RSI, compute_features
    from core_engine.live import EmailNotifier, notify_all
    from core_engine.research import evaluate_factor, evaluate_factors
    from core_engine.strategies import MomentumRank

    with pytest.raises(ConfigError, match="'cache' parameter of compute_features"):
        walk_forward(small_panel, MomentumRank(length=6), cache={})  # was an AttributeError
    with pytest.raises(ConfigError, match="'computers' parameter of compute_features"):
        compute_features(RSI(14), small_panel)
    with pytest.raises(ConfigError, match="'horizons' parameter of evaluate_factor"):
        evaluate_factor(RSI(14), small_panel, horizons=4)
    with pytest.raises(ConfigError, match="'factors' parameter of evaluate_factors"):
        evaluate_factors([RSI(14)], small_panel)
    with pytest.raises(ConfigError, match="'port' parameter of EmailNotifier"):
        EmailNotifier("smtp.example.com", float("inf"), "a@b", ["c@d"])
    with pytest.raises(ConfigError, match="'recipients' parameter of EmailNotifier"):
        EmailNotifier("smtp.example.com", 25, "a@b", "c@d")
    with pytest.raises(ConfigError, match="'event' parameter of notify_all"):
        notify_all([], "an event")


def test_wrong_values_class_rows_reports_and_symbols(small_result):
    from core_engine.data.providers import candles_from_rows
    from core_engine.research import factor_table, plot_trades
    from core_engine.risk import symbol_name_rank

    rows = [[1609459200000, 1.0, 2.0, 0.5, 1.5, 3.0]]
    with pytest.raises(ConfigError, match="'time_unit' parameter of candles_from_rows"):
        candles_from_rows(rows, "5m", time_unit=None)
    with pytest.raises(ConfigError, match="'source' parameter of candles_from_rows"):
        candles_from_rows(rows, "5m", source=3)
    with pytest.raises(ConfigError, match="'reports' parameter of factor_table"):
        factor_table([small_result])
    with pytest.raises(ConfigError, match="'panel' parameter of plot_trades"):
        plot_trades(small_result, "BTC/USDT", panel="the panel")
    with pytest.raises(ConfigError, match="'symbols' parameter of symbol_name_rank"):
        symbol_name_rank(None)
