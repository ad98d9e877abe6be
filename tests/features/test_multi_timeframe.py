"""MultiTimeframe: causal higher-timeframe features; the naive resample-join leaks."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import talib

from core_engine.data.panel import Panel
from core_engine.data.resample import resample
from core_engine.errors import ConfigError, LookaheadError
from core_engine.features import ATR, MACD, RSI, FeatureComputer, MultiTimeframe
from core_engine.testing.features import check_feature


class NaiveResampleJoin(FeatureComputer):
    """The classic leak: 1h RSI labelled at the hour's open, joined onto 5m rows, ffilled."""

    name = "naive_rsi_1h"
    _defaults: ClassVar[dict] = {}
    lookback = 0
    columns = ("rsi_14_1h",)

    def _compute_frame(self, candles):
        close = candles.set_index("timestamp")["close"]
        hourly = close.resample("1h").last().dropna()
        rsi = pd.Series(talib.RSI(hourly.to_numpy(), 14), index=hourly.index)
        joined = rsi.reindex(close.index, method="ffill")
        return pd.DataFrame({"rsi_14_1h": joined.to_numpy()})


@pytest.fixture(scope="module")
def btc(btc_20k):
    return btc_20k.iloc[:6000].reset_index(drop=True)


def test_values_equal_talib_on_the_resampled_candles_placed_at_their_close(btc):
    out = MultiTimeframe(RSI(14), "1h").compute(btc)["rsi_14_1h"]
    hourly = resample(btc, "1h", base_timeframe="5m")
    reference = pd.Series(talib.RSI(hourly["close"].to_numpy(), 14),
                          index=hourly["timestamp"] + pd.Timedelta("1h"))  # known at close
    # the 5m candle closing at T + 1h is the one opening at T + 55min
    at_close = out.copy()
    at_close.index = at_close.index + pd.Timedelta("5min")
    common = reference.dropna().index.intersection(at_close.index)
    assert len(common) > 400
    np.testing.assert_allclose(at_close.loc[common].to_numpy(), reference.loc[common].to_numpy(),
                               rtol=1e-12)


def test_value_at_t_from_full_data_equals_value_from_data_cut_at_t(btc):
    feature = MultiTimeframe(MACD(), "4h")
    full = feature.compute(btc)
    rng = np.random.default_rng(0)
    for stop in rng.integers(feature.lookback, len(btc) - 1, size=15):
        part = feature.compute(btc.iloc[: stop + 1])
        np.testing.assert_array_equal(part.to_numpy(), full.iloc[: stop + 1].to_numpy())


def test_ours_passes_check_feature_and_the_naive_join_leaks(btc):
    check_feature(MultiTimeframe(RSI(14), "1h"), btc, n_times=15)
    with pytest.raises(LookaheadError, match="uses future candles"):
        check_feature(NaiveResampleJoin(), btc, n_times=15)


def test_the_value_changes_only_when_a_higher_candle_closes(btc):
    out = MultiTimeframe(ATR(14), "1h").compute(btc)["atr_14_1h"]
    changed = out.index[1:][np.diff(out.to_numpy()) != 0]
    changed = changed[~np.isnan(out.loc[changed].to_numpy())]
    assert len(changed) > 100
    assert ((changed + pd.Timedelta("5min")).minute == 0).all()  # last 5m candle of the hour


def test_lookback_on_aligned_data_and_columns(btc):
    feature = MultiTimeframe(RSI(14), "1h")
    assert feature.columns == ("rsi_14_1h",)
    assert feature.lookback == 15 * 12 - 1
    aligned = btc.iloc[: 2000].reset_index(drop=True)
    assert aligned["timestamp"].iloc[0].minute == 0
    out = feature.compute(aligned)["rsi_14_1h"].to_numpy()
    assert int(np.argmax(~np.isnan(out))) == feature.lookback
    started_late = btc.iloc[5:2000].reset_index(drop=True)  # starts mid-hour
    late = feature.compute(started_late)["rsi_14_1h"].to_numpy()
    assert feature.lookback <= int(np.argmax(~np.isnan(late))) <= feature.lookback + 11


def test_symbol_listed_late_matches_its_own_frame(btc):
    early = btc.iloc[:3000]
    late = btc.iloc[1007:3000].reset_index(drop=True)  # starts at :35 past an hour
    panel = Panel.from_frames({"EARLY": early, "LATE": late}, "5m")
    feature = MultiTimeframe(RSI(6), "1h")
    values = feature.compute_panel(panel)["rsi_6_1h"]
    own = feature.compute(late)["rsi_6_1h"].to_numpy()
    np.testing.assert_array_equal(values[panel.present[:, 1], 1], own)


def test_parameter_errors():
    with pytest.raises(ConfigError, match="must be a FeatureComputer"):
        MultiTimeframe("rsi", "1h")
    with pytest.raises(ConfigError, match="whole multiple"):
        MultiTimeframe(RSI(14), "7m")
    with pytest.raises(ConfigError, match="whole multiple"):
        MultiTimeframe(RSI(14), "1m")
    with pytest.raises(ConfigError):
        MultiTimeframe(RSI(14), "soon")


def test_shorter_than_one_higher_candle_is_all_nan(btc):
    out = MultiTimeframe(RSI(14), "4h").compute(btc.iloc[:30])
    assert out.isna().all().all() and len(out) == 30
