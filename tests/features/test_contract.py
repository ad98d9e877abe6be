"""The FeatureComputer contract: parameters, names, errors."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from core_engine.data.panel import Panel
from core_engine.errors import ConfigError, DataValidationError, FeatureError
from core_engine.features import (
    ATR,
    EMA,
    MACD,
    RSI,
    SMA,
    BollingerBands,
    EMADistance,
    Momentum,
    QuoteVolume,
    ReturnVolatility,
    RollingHighLow,
    TrendSlope,
    VolumeTrend,
    VolumeZScore,
)

from .helpers import builtin_kernel_features, synthetic_candles

EXPECTED_COLUMNS = [
    (SMA(), ("sma_20",), 19),
    (EMA(), ("ema_12",), 11),
    (RSI(), ("rsi_14",), 14),
    (MACD(), ("macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9",
              "macd_hist_slope_12_26_9"), 33),
    (ATR(), ("atr_14", "atr_pct_14"), 14),
    (BollingerBands(), ("bb_upper_20_2", "bb_middle_20_2", "bb_lower_20_2",
                        "bb_bandwidth_20_2"), 19),
    (BollingerBands(length=10, std=1.5), ("bb_upper_10_1.5", "bb_middle_10_1.5",
                                          "bb_lower_10_1.5", "bb_bandwidth_10_1.5"), 9),
    (ReturnVolatility(), ("volatility_20",), 20),
    (VolumeZScore(), ("volume_zscore_20",), 19),
    (VolumeTrend(), ("volume_trend_5_20",), 19),
    (TrendSlope(), ("trend_slope_20",), 19),
    (Momentum(), ("return_24",), 24),
    (RollingHighLow(), ("highest_high_20", "lowest_low_20"), 19),
    (EMADistance(), ("ema_distance_12_26",), 25),
    (QuoteVolume(), ("quote_volume_288",), 287),
]


@pytest.mark.parametrize(("feature", "columns", "lookback"), EXPECTED_COLUMNS, ids=repr)
def test_names_and_lookback(feature, columns, lookback):
    assert feature.columns == columns
    assert feature.lookback == lookback
    candles = synthetic_candles(lookback + 30, seed=3, flat_share=0.0)
    out = feature.compute(candles)
    first_values = [int(np.argmax(out[c].notna().to_numpy())) for c in columns]
    assert min(first_values) == lookback  # the first row with a value, on gap-free data


def test_parameters_are_stored_unchanged_and_repr_round_trips():
    rsi = RSI(length=14)
    assert repr(rsi) == "RSI(length=14)"
    assert rsi.get_params() == {"length": 14}
    assert rsi.length == 14
    assert RSI(14) == rsi and hash(RSI(14)) == hash(rsi)
    assert RSI(15) != rsi
    assert repr(MACD()) == "MACD(fast=12, slow=26, signal=9)"
    assert repr(BollingerBands(std=2)) == "BollingerBands(length=20, std=2)"
    assert eval(repr(MACD(5, 13, 4))) == MACD(fast=5, slow=13, signal=4)
    assert MACD().clone(signal=5) == MACD(signal=5)
    params = rsi.get_params()
    params["length"] = 99
    assert rsi.length == 14  # get_params returns a copy
    assert str(inspect.signature(MACD)) == "(fast=12, slow=26, signal=9)"


def test_unknown_parameter_has_a_did_you_mean():
    with pytest.raises(ConfigError, match=r"RSI has no parameter 'lenght'.*Did you mean 'length'"):
        RSI(lenght=14)
    with pytest.raises(ConfigError, match=r"MACD has no parameter 'signl'.*'signal'"):
        MACD(signl=9)
    with pytest.raises(ConfigError, match="at most 1 positional"):
        RSI(14, 15)
    with pytest.raises(ConfigError, match="twice"):
        RSI(14, length=14)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: RSI(length=1), "'length' parameter of RSI must be an integer >= 2. Got 1"),
    (lambda: RSI(length=14.0), "Got 14.0"),
    (lambda: RSI(length=True), "Got True"),
    (lambda: SMA(length=0), "'length' parameter of SMA"),
    (lambda: MACD(fast=26, slow=12), "'fast' parameter of MACD must be smaller"),
    (lambda: BollingerBands(std=-1), "'std' parameter of BollingerBands must be a finite positive"),
    (lambda: BollingerBands(std=float("nan")), "'std' parameter"),
    (lambda: VolumeTrend(fast=20, slow=5), "'fast' parameter of VolumeTrend"),
    (lambda: EMADistance(fast=26, slow=26), "'fast' parameter of EMADistance"),
    (lambda: ReturnVolatility(length=1), ">= 2"),
])
def test_bad_parameter_values_raise_config_error(make, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


@pytest.mark.parametrize("feature", builtin_kernel_features(), ids=repr)
def test_documented_errors(feature):
    candles = synthetic_candles(60, seed=1)
    with pytest.raises(FeatureError, match="empty candle frame"):
        feature.compute(candles.iloc[:0])
    broken = candles.copy()
    broken.loc[30, "close"] = np.nan
    with pytest.raises(DataValidationError, match="Candle 30"):
        feature.compute(broken)
    short = feature.compute(candles.iloc[: max(1, min(feature.lookback, 60))])
    if feature.lookback >= 1:
        assert short.isna().all().all()
    with pytest.raises(FeatureError, match="Panel"):
        feature.compute_panel(candles)
    empty = Panel.from_frames({"A": candles}, "5m").slice_rows(0, 0)
    with pytest.raises(FeatureError, match="no rows"):
        feature.compute_panel(empty)


def test_output_frame_shape(btc_20k):
    frame = btc_20k.iloc[:500]
    out = MACD().compute(frame)
    assert isinstance(out, pd.DataFrame)
    assert out.index.name == "timestamp"
    assert (out.index == pd.DatetimeIndex(frame["timestamp"])).all()
    assert (out.dtypes == np.float64).all()
    assert list(out.columns) == list(MACD().columns)


def test_the_inputs_are_not_mutated(btc_20k):
    frame = btc_20k.iloc[:800].copy()
    before = frame.copy(deep=True)
    panel = Panel.from_frames({"A": frame}, "5m")
    close = panel.close.copy()
    for feature in builtin_kernel_features():
        feature.compute(frame)
        feature.compute_panel(panel)
    pd.testing.assert_frame_equal(frame, before)
    np.testing.assert_array_equal(panel.close, close)


def test_a_parameter_may_not_shadow_the_contract():
    from typing import ClassVar

    from core_engine.features import FeatureComputer

    with pytest.raises(TypeError, match=r"\['columns'\] clash"):
        class Bad(FeatureComputer):
            _defaults: ClassVar[dict] = {"columns": 3}
