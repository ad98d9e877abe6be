"""Every indicator TA-Lib has, against TA-Lib on real data: 1e-9 relative after the warm-up,
and the warm-up (the NaN prefix) of exactly the same length."""

from __future__ import annotations

import numpy as np
import pytest
import talib

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
    RollingHighLow,
    TrendSlope,
)

RTOL = 1e-9


def assert_matches(ours, reference, *, rtol=RTOL, scale=None):
    """Same NaN prefix and values within ``rtol`` (relative to ``scale`` when given)."""
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference),
                                  err_msg="warm-up/NaN pattern differs from TA-Lib")
    ok = ~np.isnan(reference)
    assert ok.any()
    if scale is None:
        np.testing.assert_allclose(ours[ok], reference[ok], rtol=rtol, atol=0)
    else:
        assert np.max(np.abs(ours[ok] - reference[ok])) <= rtol * scale


@pytest.fixture(params=["btc_20k", "nkn_5m"])
def candles(request):
    return request.getfixturevalue(request.param)


def arrays(candles):
    return [candles[c].to_numpy() for c in ("open", "high", "low", "close", "volume")]


@pytest.mark.parametrize("length", [2, 20, 200])
def test_sma_equals_talib(candles, length):
    _, _, _, close, _ = arrays(candles)
    out = SMA(length).compute(candles)
    assert_matches(out[f"sma_{length}"], talib.SMA(close, length))
    assert SMA(length).lookback == talib.SMA(close, length).tolist().index(
        next(v for v in talib.SMA(close, length) if not np.isnan(v)))


@pytest.mark.parametrize("length", [2, 12, 26, 100])
def test_ema_equals_talib(candles, length):
    close = candles["close"].to_numpy()
    out = EMA(length).compute(candles)
    assert_matches(out[f"ema_{length}"], talib.EMA(close, length))
    assert int(np.isnan(talib.EMA(close, length)).sum()) == EMA(length).lookback


@pytest.mark.parametrize("length", [2, 7, 14, 30])
def test_rsi_equals_talib(candles, length):
    close = candles["close"].to_numpy()
    reference = talib.RSI(close, length)
    out = RSI(length).compute(candles)[f"rsi_{length}"]
    assert_matches(out, reference)
    assert int(np.isnan(reference).sum()) == RSI(length).lookback


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 16)])
def test_macd_equals_talib_including_its_warm_up(candles, fast, slow, signal):
    close = candles["close"].to_numpy()
    line, sig, hist = talib.MACD(close, fast, slow, signal)
    feature = MACD(fast=fast, slow=slow, signal=signal)
    out = feature.compute(candles)
    s = f"{fast}_{slow}_{signal}"
    # line and signal: 1e-9 of the price scale (the line itself crosses zero)
    price = float(np.nanmax(np.abs(close)))
    assert_matches(out[f"macd_{s}"], line, scale=price * 1e-3)
    assert_matches(out[f"macd_signal_{s}"], sig, scale=price * 1e-3)
    assert_matches(out[f"macd_hist_{s}"], hist, scale=price * 1e-3)
    slope = np.r_[np.nan, np.diff(hist)]
    assert_matches(out[f"macd_hist_slope_{s}"], slope, scale=price * 1e-3)
    assert int(np.isnan(line).sum()) == feature.lookback == slow + signal - 2


def test_macd_line_relative_accuracy_where_it_is_not_near_zero(btc_20k):
    close = btc_20k["close"].to_numpy()
    line, sig, hist = talib.MACD(close, 12, 26, 9)
    out = MACD().compute(btc_20k)
    big = np.abs(line) > 1.0  # BTC price units; below this, relative error is meaningless
    np.testing.assert_allclose(out["macd_12_26_9"].to_numpy()[big], line[big], rtol=RTOL)


@pytest.mark.parametrize("length", [1, 14, 50])
def test_atr_equals_talib(candles, length):
    _, high, low, close, _ = arrays(candles)
    reference = talib.ATR(high, low, close, length)
    out = ATR(length).compute(candles)
    assert_matches(out[f"atr_{length}"], reference)
    assert_matches(out[f"atr_pct_{length}"], 100.0 * reference / close)
    assert int(np.isnan(reference).sum()) == ATR(length).lookback


@pytest.mark.parametrize(("length", "width"), [(20, 2.0), (5, 1.0), (50, 2.5)])
def test_bollinger_bands_equal_talib(candles, length, width):
    close = candles["close"].to_numpy()
    upper, middle, lower = talib.BBANDS(close, length, width, width)
    feature = BollingerBands(length=length, std=width)
    out = feature.compute(candles)
    s = f"{length}_{width:g}"
    assert_matches(out[f"bb_upper_{s}"], upper)
    assert_matches(out[f"bb_middle_{s}"], middle)
    assert_matches(out[f"bb_lower_{s}"], lower)
    # bandwidth is 0 on flat windows (NKN): compare on the band-width scale
    reference = (upper - lower) / middle
    assert_matches(out[f"bb_bandwidth_{s}"], reference, scale=float(np.nanmax(reference)))
    wide = reference > 1e-4
    np.testing.assert_allclose(out[f"bb_bandwidth_{s}"].to_numpy()[wide], reference[wide],
                               rtol=RTOL)
    assert int(np.isnan(middle).sum()) == feature.lookback


@pytest.mark.parametrize("length", [2, 20, 96])
def test_trend_slope_equals_talib_linearreg_slope_over_sma(candles, length):
    close = candles["close"].to_numpy()
    reference = talib.LINEARREG_SLOPE(close, length) / talib.SMA(close, length)
    out = TrendSlope(length).compute(candles)[f"trend_slope_{length}"]
    # TA-Lib's n*SumXY - SumX*SumY loses digits when the slope is ~0, so compare on the
    # scale of the series; against an exact (centred, two-pass) reference it is 1e-9 relative
    assert_matches(out, reference, scale=float(np.nanmax(np.abs(reference))))
    windows = np.lib.stride_tricks.sliding_window_view(close, length)
    x = np.arange(length) - (length - 1) / 2
    exact = (windows @ x) / (x @ x) / windows.mean(axis=1)
    big = np.abs(exact) > 1e-6 * np.max(np.abs(exact))
    np.testing.assert_allclose(out.to_numpy()[length - 1:][big], exact[big], rtol=RTOL)


@pytest.mark.parametrize("length", [1, 24, 288])
def test_momentum_equals_talib_rocp(candles, length):
    close = candles["close"].to_numpy()
    reference = talib.ROCP(close, length)
    out = Momentum(length).compute(candles)[f"return_{length}"]
    assert_matches(out, reference, scale=1e-3)  # returns: absolute 1e-12
    np.testing.assert_allclose(out.to_numpy()[length:], talib.ROC(close, length)[length:] / 100,
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("length", [2, 20, 100])
def test_rolling_high_low_equal_talib_max_min(candles, length):
    _, high, low, _, _ = arrays(candles)
    out = RollingHighLow(length).compute(candles)
    assert_matches(out[f"highest_high_{length}"], talib.MAX(high, length), rtol=0)
    assert_matches(out[f"lowest_low_{length}"], talib.MIN(low, length), rtol=0)


def test_ema_distance_equals_talib_emas(candles):
    close = candles["close"].to_numpy()
    fast, slow = talib.EMA(close, 12), talib.EMA(close, 26)
    reference = (fast - slow) / slow
    out = EMADistance(12, 26).compute(candles)["ema_distance_12_26"]
    assert_matches(out, reference)


@pytest.mark.parametrize("length", [7, 288])
def test_quote_volume_equals_talib_sum(candles, length):
    traded = (candles["close"] * candles["volume"]).to_numpy()
    reference = talib.SUM(traded, length)
    out = QuoteVolume(length).compute(candles)[f"quote_volume_{length}"].to_numpy()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(reference))
    windows = np.lib.stride_tricks.sliding_window_view(traded, length).sum(axis=1)
    np.testing.assert_allclose(out[length - 1:], windows, rtol=RTOL,
                               atol=RTOL * float(windows.max()))
    np.testing.assert_allclose(out[length - 1:], reference[length - 1:], rtol=RTOL,
                               atol=RTOL * float(windows.max()))


def test_rsi_is_zero_on_a_flat_market_as_talib(nkn_5m):
    close = np.full(40, 0.025)
    frame = nkn_5m.iloc[:40].copy()
    frame[["open", "high", "low", "close"]] = 0.025
    out = RSI(14).compute(frame)["rsi_14"].to_numpy()
    np.testing.assert_array_equal(out[14:], talib.RSI(close, 14)[14:])
    assert (out[14:] == 0).all()


def test_tiny_prices_keep_full_precision(data_files):
    """BTC-quoted altcoins (prices ~1e-5): no absolute epsilon anywhere in the kernels."""
    import pandas as pd

    frame = pd.read_parquet(data_files / "XLM_BTC-5m.parquet")
    close = frame["close"].to_numpy()
    assert close.max() < 1e-3
    assert_matches(RSI(14).compute(frame)["rsi_14"], talib.RSI(close, 14))
    upper, middle, lower = talib.BBANDS(close, 20, 2, 2)
    assert_matches(BollingerBands().compute(frame)["bb_upper_20_2"], upper)
    high, low = frame["high"].to_numpy(), frame["low"].to_numpy()
    assert_matches(ATR(14).compute(frame)["atr_14"], talib.ATR(high, low, close, 14))
