"""Features TA-Lib lacks: hand-computed 7-candle fixtures, then exact (two-pass) NumPy
references on real data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core_engine.features import ReturnVolatility, TrendSlope, VolumeTrend, VolumeZScore

nan = np.nan


def seven(close=None, volume=None) -> pd.DataFrame:
    close = np.asarray(close if close is not None else [10.0] * 7, dtype=np.float64)
    volume = np.asarray(volume if volume is not None else [1.0] * 7, dtype=np.float64)
    return pd.DataFrame({
        "timestamp": pd.date_range("2021-01-01", periods=7, freq="5min", tz="UTC").as_unit("ns"),
        "open": close, "high": close, "low": close, "close": close, "volume": volume,
    })


def test_volume_zscore_hand_fixture():
    frame = seven(volume=[1, 2, 3, 3, 3, 0, 6])
    out = VolumeZScore(length=3).compute(frame)["volume_zscore_3"].to_numpy()
    # row 2: [1,2,3] mean 2, std sqrt(2/3)        -> 1/sqrt(2/3)
    # row 3: [2,3,3] mean 8/3, std sqrt(2)/3      -> (1/3)/(sqrt(2)/3) = 1/sqrt(2)
    # row 4: [3,3,3] std 0                        -> NaN (0/0, documented)
    # row 5: [3,3,0] mean 2, std sqrt(2)          -> -2/sqrt(2)
    # row 6: [3,0,6] mean 3, std sqrt(6)          -> 3/sqrt(6)
    expected = [nan, nan, 1 / math.sqrt(2 / 3), 1 / math.sqrt(2), nan, -math.sqrt(2),
                3 / math.sqrt(6)]
    np.testing.assert_allclose(out, expected, rtol=1e-14)


def test_volume_trend_hand_fixture():
    frame = seven(volume=[1, 2, 3, 3, 3, 0, 6])
    out = VolumeTrend(fast=2, slow=4).compute(frame)["volume_trend_2_4"].to_numpy()
    # row 3: mean(3,3)=3 / mean(1,2,3,3)=9/4 - 1 = 1/3;  row 4: 3 / (11/4) - 1 = 1/11
    # row 5: 1.5 / (9/4) - 1 = -1/3;                     row 6: 3 / 3 - 1 = 0
    np.testing.assert_allclose(out, [nan, nan, nan, 1 / 3, 1 / 11, -1 / 3, 0.0],
                               rtol=1e-14, atol=1e-15)


def test_volume_trend_is_nan_without_trades():
    frame = seven(volume=[0, 0, 0, 0, 0, 5, 0])
    out = VolumeTrend(fast=2, slow=4).compute(frame)["volume_trend_2_4"].to_numpy()
    # rows 3, 4: no trade in the slow window -> NaN; row 5: 2.5/1.25-1; row 6: 2.5/1.25-1
    np.testing.assert_allclose(out, [nan, nan, nan, nan, nan, 1.0, 1.0], rtol=1e-14)


def test_return_volatility_hand_fixture():
    frame = seven(close=[100, 110, 99, 99, 108.9, 108.9, 108.9])
    out = ReturnVolatility(length=2).compute(frame)["volatility_2"].to_numpy()
    up, down = math.log(1.1), math.log(0.9)
    # std (ddof=1) of two values a, b is |a - b| / sqrt(2)
    expected = [nan, nan, abs(up - down) / math.sqrt(2), abs(down) / math.sqrt(2),
                abs(up) / math.sqrt(2), abs(up) / math.sqrt(2), 0.0]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=0)
    assert out[6] == 0.0  # a flat window gives exactly 0, not rounding noise


def test_trend_slope_hand_fixture():
    frame = seven(close=[1, 2, 3, 5, 5, 5, 2])
    out = TrendSlope(length=3).compute(frame)["trend_slope_3"].to_numpy()
    # slope over 3 points = (y2 - y0) / 2, divided by the mean
    expected = [nan, nan, 1 / 2, 1.5 / (10 / 3), 1 / (13 / 3), 0.0, -1.5 / 4]
    np.testing.assert_allclose(out, expected, rtol=1e-14, atol=1e-15)


@pytest.fixture(params=["btc_20k", "nkn_5m"])
def candles(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("length", [2, 20, 288])
def test_return_volatility_equals_numpy_two_pass(candles, length):
    close = candles["close"].to_numpy()
    returns = np.diff(np.log(close))
    windows = np.lib.stride_tricks.sliding_window_view(returns, length)
    expected = np.r_[np.full(length, np.nan), windows.std(axis=1, ddof=1)]
    out = ReturnVolatility(length).compute(candles)[f"volatility_{length}"].to_numpy()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("length", [2, 20, 288])
def test_volume_zscore_equals_numpy_two_pass(candles, length):
    volume = candles["volume"].to_numpy()
    windows = np.lib.stride_tricks.sliding_window_view(volume, length)
    mean, std = windows.mean(axis=1), windows.std(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(std > 0, (volume[length - 1:] - mean) / std, np.nan)
    expected = np.r_[np.full(length - 1, np.nan), z]
    out = VolumeZScore(length).compute(candles)[f"volume_zscore_{length}"].to_numpy()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9)


def test_volume_zscore_is_nan_on_real_zero_volume_runs(nkn_5m):
    out = VolumeZScore(5).compute(nkn_5m)["volume_zscore_5"].to_numpy()
    volume = nkn_5m["volume"].to_numpy()
    windows = np.lib.stride_tricks.sliding_window_view(volume, 5)
    constant = np.r_[np.zeros(4, bool), windows.max(axis=1) == windows.min(axis=1)]
    assert constant.sum() > 10  # NKN really has such runs
    assert np.isnan(out[constant]).all()
    assert not np.isnan(out[4:][~constant[4:]]).any()


def test_volume_trend_equals_pandas_rolling_means(candles):
    volume = candles["volume"]
    fast, slow = volume.rolling(5).mean(), volume.rolling(20).mean()
    expected = (fast / slow - 1).where(slow > 1e-12).to_numpy()
    out = VolumeTrend(5, 20).compute(candles)["volume_trend_5_20"].to_numpy()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)
