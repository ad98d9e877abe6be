"""Causal resampling: exact aggregation, whole buckets only, and the naive join's leak."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.data import Panel, align_to_base, resample
from core_engine.errors import ConfigError


def test_5m_to_1h_reproduces_binance_1h(btc_5m, data_files):
    """PROVENANCE: aggregating BTC 5m to 1h reproduces the exchange's 1h OHLC exactly."""
    hourly = resample(btc_5m, "1h", base_timeframe="5m")
    exchange = pd.read_parquet(data_files / "BTC_USDT-1h.parquet")
    merged = hourly.merge(exchange, on="timestamp", suffixes=("", "_x"))
    assert len(merged) == len(exchange) == 5_482
    for column in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(merged[column], merged[f"{column}_x"])


def test_hand_computed_buckets():
    ts = pd.date_range("2021-01-01 00:05", periods=7, freq="5min", tz="UTC").as_unit("ns")
    frame = pd.DataFrame({
        "timestamp": ts,
        "open": [10.0, 11, 12, 13, 14, 15, 16],
        "high": [11.0, 12, 15, 14, 15, 16, 17],
        "low": [9.0, 10, 11, 12, 13, 14, 15],
        "close": [11.0, 12, 13, 14, 15, 16, 17],
        "volume": [1.0, 2, 3, 4, 5, 6, 7],
    }).drop(index=4).reset_index(drop=True)  # 00:25 missing
    out = resample(frame, "15m", base_timeframe="5m", complete_only=False)
    # buckets 00:00 [., 00:05, 00:10], 00:15 [00:15, 00:20, (00:25 missing)], 00:30 [00:30, 00:35]
    assert list(out["timestamp"].dt.strftime("%H:%M")) == ["00:00", "00:15", "00:30"]
    np.testing.assert_array_equal(out["open"], [10, 12, 15])
    np.testing.assert_array_equal(out["high"], [12, 15, 17])
    np.testing.assert_array_equal(out["low"], [9, 11, 14])
    np.testing.assert_array_equal(out["close"], [12, 14, 17])
    np.testing.assert_array_equal(out["volume"], [3, 7, 13])
    # whole buckets only: 00:00 lacks its first candle, 00:30 its last
    complete = resample(frame, "15m", base_timeframe="5m")
    assert list(complete["timestamp"].dt.strftime("%H:%M")) == ["00:15"]


def test_bad_target_timeframe(make_candles):
    panel = Panel.from_frames({"A": make_candles(20)}, "5m")
    with pytest.raises(ConfigError, match="whole multiple of 5m"):
        resample(panel, "7m")
    with pytest.raises(ConfigError, match="whole multiple"):
        resample(panel, "1m")


def _naive_join(frame: pd.DataFrame) -> pd.Series:
    """What a pandas user often writes: 1h close joined onto 5m rows at the hour's start."""
    hourly = frame.set_index("timestamp")["close"].resample("1h").last()
    return hourly.reindex(frame["timestamp"], method="ffill")


def test_naive_join_leaks_and_ours_does_not(make_candles):
    frame = make_candles(24 * 12 * 2, seed=5)
    cut = 24 * 12 + 3 * 12 + 4  # a row in the middle of an hour (03:20 on day 2)
    naive_full = _naive_join(frame).to_numpy()
    naive_cut = _naive_join(frame.iloc[: cut + 1]).to_numpy()
    assert naive_full[cut] != naive_cut[cut], "the naive join must see the rest of the hour"
    assert naive_full[cut] == frame["close"].iloc[cut + 7]  # the close of 03:55: the future

    def ours(data):
        base = Panel.from_frames({"A": data}, "5m")
        hourly = resample(base, "1h")
        return align_to_base(hourly.close, hourly, base)[:, 0]

    full, truncated = ours(frame), ours(frame.iloc[: cut + 1])
    np.testing.assert_array_equal(full[: cut + 1], truncated)
    assert full[cut] == frame["close"].iloc[cut - 5]  # the close of 02:55, the last closed hour


@settings(max_examples=30, deadline=None)
@given(n=st.integers(30, 200), cut=st.integers(0, 199), seed=st.integers(0, 1000),
       target=st.sampled_from(["15m", "1h", "4h"]))
def test_aligned_values_are_truncation_invariant(make_candles, n, cut, seed, target):
    cut = min(cut, n - 1)
    frame = make_candles(n, seed=seed, start="2021-01-01 00:35")
    base = Panel.from_frames({"A": frame}, "5m")
    higher = resample(base, target)
    full = align_to_base(higher.high, higher, base)[:, 0]
    short_base = base.slice_rows(0, cut + 1)
    short_higher = resample(short_base, target)
    short = align_to_base(short_higher.high, short_higher, short_base)[:, 0]
    np.testing.assert_array_equal(full[: cut + 1], short)


def _panels(make_candles):
    base = Panel.from_frames({"A": make_candles(48, seed=1), "B": make_candles(48, seed=2)}, "5m")
    return base, resample(base, "1h")


@pytest.mark.parametrize("wrong", [None, "yesterday", 3.0, [], {"x": 1}])
def test_align_to_base_panels_are_checked_by_name(make_candles, wrong):
    base, higher = _panels(make_candles)
    with pytest.raises(ConfigError, match="'higher' parameter of align_to_base must be a Panel"):
        align_to_base(higher.close, wrong, base)
    with pytest.raises(ConfigError, match="'base' parameter of align_to_base must be a Panel"):
        align_to_base(higher.close, higher, wrong)


@pytest.mark.parametrize("values", [None, "yesterday", {"x": 1}, object(), 3.0, [[1, 2]]])
def test_align_to_base_values_are_checked_by_name(make_candles, values):
    base, higher = _panels(make_candles)
    with pytest.raises(ConfigError, match="'values' parameter of align_to_base"):
        align_to_base(values, higher, base)


def test_align_to_base_needs_panels_of_the_same_symbols(make_candles):
    base, higher = _panels(make_candles)
    other = Panel.from_frames({"A": make_candles(48, seed=1)}, "5m")
    with pytest.raises(ConfigError, match="'higher' and 'base' parameters of align_to_base"):
        align_to_base(higher.close, higher, other)
