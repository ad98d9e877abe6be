"""Users' own features, the way the design card shows them (issue 9 §3): subclass
FeatureComputer, write ``compute(self, candles) -> DataFrame``, and everything else follows.

Every test here failed before issue 9 (compute raised an empty NotImplementedError; the real
hooks were the private ``_compute_frame`` plus ``columns``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_engine.backtest import walk_forward
from core_engine.data.panel import Panel
from core_engine.data.store import ParquetStore
from core_engine.errors import ConfigError, FeatureError, LookaheadError
from core_engine.features import FeatureCache, FeatureComputer, PandasTA, compute_features
from core_engine.strategies import Strategy
from core_engine.testing import check_feature, check_strategy

from .helpers import synthetic_candles


class RangePct(FeatureComputer):
    """The design card's shape: compute only; columns and lookback inferred."""

    name = "range_pct"

    def compute(self, candles):
        spread = candles["high"] - candles["low"]
        return pd.DataFrame({"range_pct": 100 * spread / candles["close"]})


class CloseVsMean(FeatureComputer):
    """A parameter and a warm-up, both left to be inferred; numpy output (positional)."""

    name = "close_vs_mean"
    defaults = {"length": 5}

    def compute(self, candles):
        close = candles["close"].to_numpy()
        mean = pd.Series(close).rolling(self.length).mean().to_numpy()
        return pd.DataFrame({f"close_vs_mean_{self.length}": close / mean - 1})


@pytest.fixture(scope="module")
def frames():
    return {"AAA": synthetic_candles(400, seed=1, holes=25),
            "BBB": synthetic_candles(400, seed=2, flat_share=0.3),
            "CCC": synthetic_candles(300, seed=3, holes=60)}


@pytest.fixture(scope="module")
def panel(frames):
    return Panel.from_frames(frames, "5m")


def test_users_own_features_compute_alone_is_enough(frames, panel):
    feature = CloseVsMean(length=4)
    assert feature.columns == ("close_vs_mean_4",) and feature.lookback == 3  # inferred
    assert RangePct().columns == ("range_pct",) and RangePct().lookback == 0
    candles = frames["AAA"]
    out = feature.compute(candles)
    assert list(out.columns) == ["close_vs_mean_4"] and out.index.name == "timestamp"
    assert (out.index == pd.DatetimeIndex(candles["timestamp"])).all()
    close = candles["close"].to_numpy()
    expected = close / pd.Series(close).rolling(4).mean().to_numpy() - 1
    np.testing.assert_array_equal(out["close_vs_mean_4"].to_numpy(), expected)
    # compute_panel is derived: a missing candle is a skipped NaN row, and at every present
    # candle the panel value equals compute on the frame without missing rows
    values = feature.compute_panel(panel)["close_vs_mean_4"]
    assert values.shape == (panel.n_times, 3) and values.flags.f_contiguous
    for j, symbol in enumerate(panel.symbols):
        present = panel.present[:, j]
        own = feature.compute(frames[symbol])["close_vs_mean_4"].to_numpy()
        np.testing.assert_array_equal(values[present, j], own)
        assert np.isnan(values[~present, j]).all()
    for data in (candles, frames, panel):
        check_feature(feature, data, n_times=3)


def test_users_own_features_parameters_and_declarations():
    assert CloseVsMean(3).get_params() == {"length": 3}
    assert repr(CloseVsMean(length=3)) == "CloseVsMean(length=3)"
    assert CloseVsMean(3) == CloseVsMean(length=3) != CloseVsMean(4)
    with pytest.raises(ConfigError, match=r"no parameter 'lenght'.*Did you mean 'length'"):
        CloseVsMean(lenght=3)
    with pytest.raises(ConfigError, match=r"'columns' of Bad must be a non-empty tuple.*"
                                          r"Did you mean \('x',\)"):
        class Bad(FeatureComputer):
            columns = "x"
    with pytest.raises(ConfigError, match=r"'lookback' of Worse must be an integer >= 0"):
        class Worse(FeatureComputer):
            lookback = -1
    with pytest.raises(ConfigError, match=r"'defaults' of Odd must be a dict"):
        class Odd(FeatureComputer):
            defaults = ["length"]


class Declared(FeatureComputer):
    """Declares columns and lookback; ``mode`` selects a way of breaking the contract."""

    defaults = {"mode": "ok"}
    columns = ("spread", "body")
    lookback = 2

    def compute(self, candles):
        spread = (candles["high"] - candles["low"]).rolling(3).mean()
        body = (candles["close"] - candles["open"]).rolling(3).mean()
        mode = self.mode
        if mode == "ok":
            return pd.DataFrame({"body": body, "spread": spread})  # any column order
        if mode == "other_columns":
            return pd.DataFrame({"spread": spread, "wick": body})
        if mode == "short":
            return pd.DataFrame({"spread": spread, "body": body}).iloc[1:]
        if mode == "shifted_index":
            return pd.DataFrame({"spread": spread.to_numpy(), "body": body.to_numpy()},
                                index=np.arange(len(candles)) + 7)
        if mode == "text":
            return pd.DataFrame({"spread": spread, "body": np.where(body > 0, "up", "down")})
        if mode == "array":
            return np.c_[spread, body]
        if mode == "early":
            return pd.DataFrame({"spread": candles["high"] - candles["low"], "body": body})
        raise KeyError("no such mode")


@pytest.mark.parametrize(("mode", "error", "message"), [
    ("other_columns", FeatureError,
     r"returned columns \['spread', 'wick'\]; its 'columns' declare \['spread', 'body'\] "
     r"\(missing \['body'\], unexpected \['wick'\]\)"),
    ("short", FeatureError, r"returned 49 rows for 50 candles"),
    ("shifted_index", FeatureError, r"returned rows indexed Index 7 .. 56; expected one row"),
    ("text", FeatureError, r"returned column 'body' of dtype (object|str); expected numbers"),
    ("array", FeatureError, r"must return a pandas DataFrame .* Got ndarray"),
    ("early", FeatureError, r"declares lookback = 2, but on 50 gap-free candles its column "
                            r"'spread' has a value at row 0 .* Declare lookback = 0"),
    ("crash", FeatureError, r"Declared\(mode='crash'\)\.compute failed on 50 candles: KeyError"),
])
def test_users_own_features_contract_breaks_are_clear_errors(mode, error, message):
    candles = synthetic_candles(50, seed=4, flat_share=0.0)
    with pytest.raises(error, match=message):
        Declared(mode=mode).compute(candles)
    ok = Declared().compute(candles)
    assert list(ok.columns) == ["spread", "body"] and (ok.dtypes == np.float64).all()


class Body(FeatureComputer):
    def compute(self, candles):
        return pd.DataFrame({"body_pct": 100 * (candles["close"] / candles["open"] - 1)})


class BigBody(Strategy):
    """Candidates: a candle body above ``threshold`` percent; ranked by body."""

    name = "test_big_body"
    row_local = True

    def __init__(self, threshold=0.2):
        self.threshold = threshold

    def features(self):
        return [Body()]

    def score(self, features, panel):
        body = features["body_pct"]
        with np.errstate(invalid="ignore"):
            return np.where(body > self.threshold, body, np.nan)


def test_users_own_features_work_in_strategies_walk_forward_and_checks(frames, panel, tmp_path):
    from_dict = walk_forward(frames, BigBody(), window="1h", shift="30m")
    from_panel = walk_forward(panel, BigBody(), window="1h", shift="30m", audit=3)
    assert from_dict.metrics["trades"] > 10
    pd.testing.assert_frame_equal(from_dict.trades, from_panel.trades)
    store = ParquetStore(tmp_path / "store")
    for symbol, frame in frames.items():
        store.write(symbol, "5m", frame)
    stored = (store, sorted(frames), "5m")  # the third data form of walk_forward
    from_store = walk_forward(stored, BigBody(), window="1h", shift="30m")
    pd.testing.assert_frame_equal(from_store.trades, from_panel.trades)
    for data in (frames, panel, stored):
        assert len(check_strategy(BigBody(), data, n_times=3)) == 3
        check_feature(RangePct(), data, n_times=3)
    with pytest.raises(ConfigError, match=r"check_strategy must be a Panel, a dict .* "
                                          r"\{'BTC/USDT': frame\}"):
        check_strategy(BigBody(), frames["AAA"])


def test_users_own_features_cache_never_serves_an_older_definition(panel):
    cache = FeatureCache()

    class Scaled(FeatureComputer):
        def compute(self, candles):
            return pd.DataFrame({"scaled": candles["close"] * 2})

    first = compute_features([Scaled()], panel, cache)["scaled"]

    class Scaled(FeatureComputer):  # noqa: F811 - the notebook cell re-run with another body
        def compute(self, candles):
            return pd.DataFrame({"scaled": candles["close"] * 3})

    second = compute_features([Scaled()], panel, cache)["scaled"]
    np.testing.assert_array_equal(first, panel.close * 2)
    np.testing.assert_array_equal(second, panel.close * 3)
    assert compute_features([Scaled()], panel, cache)["scaled"] is second  # still a cache

    def halved(self, candles):
        return pd.DataFrame({"scaled": candles["close"] / 2})

    Scaled.compute = halved  # a method replaced on the same class object
    np.testing.assert_array_equal(compute_features([Scaled()], panel, cache)["scaled"],
                                  panel.close / 2)

    class Negated(FeatureComputer):  # the compute_panel form (it worked before issue 9)
        columns, lookback = ("negated",), 0

        def compute_panel(self, panel):
            return {"negated": np.asfortranarray(-panel.close)}

    compute_features([Negated()], panel, cache)

    class Negated(FeatureComputer):  # noqa: F811
        columns, lookback = ("negated",), 0

        def compute_panel(self, panel):
            return {"negated": np.asfortranarray(-2 * panel.close)}

    np.testing.assert_array_equal(compute_features([Negated()], panel, cache)["negated"],
                                  -2 * panel.close)


def test_users_own_features_pandas_ta_ichimoku_is_a_clear_error_or_works():
    with pytest.raises(ConfigError, match=r"returns 2 objects \(a tuple\).*as_dataframe=True.*"
                                          r"include_chikou=False"):
        PandasTA("ichimoku")
    candles = synthetic_candles(200, seed=5, flat_share=0.0)
    spans = PandasTA("ichimoku", as_dataframe=True, include_chikou=False)
    assert spans.columns == ("isa_9", "isb_26", "its_9", "iks_26")
    check_feature(spans, candles, n_times=4)
    with pytest.raises(LookaheadError, match="ics_26"):  # the Chikou span reads the future
        check_feature(PandasTA("ichimoku", as_dataframe=True), candles, n_times=4)
    with pytest.raises(FeatureError, match=r"returned 626 rows for 600 candles"):
        PandasTA("ichimoku", as_dataframe=True, append_span=True)  # rows after the data
    with pytest.raises(LookaheadError):  # shifted back: reads the future
        check_feature(PandasTA("sma", length=5, offset=-2), candles, n_times=4)
    check_feature(PandasTA("sma", length=5, offset=2), candles, n_times=4)
