"""The candle contract: every malformed frame names the right row and rule; repairs report."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.data import (
    drop_duplicate_timestamps,
    drop_invalid_rows,
    gap_report,
    repair_candles,
    sort_candles,
    validate_candles,
)
from core_engine.errors import DataValidationError


def _valid(n=20, seed=0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    ts = pd.date_range("2021-03-01", periods=n, freq="5min", tz="UTC").as_unit("ns")
    return pd.DataFrame({"timestamp": ts, "open": open_, "high": high, "low": low,
                         "close": close, "volume": rng.uniform(1, 10, n)})


def test_valid_frame_passes_and_is_returned():
    frame = _valid()
    assert validate_candles(frame, "5m", symbol="BTC/USDT") is frame


def test_real_btc_passes(btc_5m):
    validate_candles(btc_5m, "5m", symbol="BTC/USDT")


# Each breakage: (mutator on row `row`, expected words in the message)
BREAKAGES = {
    "nan_close": (lambda f, r: f.__setitem__("close", _set(f["close"], r, np.nan)), "has close nan"),
    "inf_high": (lambda f, r: f.__setitem__("high", _set(f["high"], r, np.inf)), "has high inf"),
    "zero_open": (lambda f, r: f.__setitem__("open", _set(f["open"], r, 0.0)), "non-positive open"),
    "negative_volume": (lambda f, r: f.__setitem__("volume", _set(f["volume"], r, -1.0)), "negative volume"),
    "high_below_close": (lambda f, r: f.__setitem__("high", _set(f["high"], r, max(f["open"].iloc[r], f["close"].iloc[r]) * 0.99999)), "has high [0-9.,]+ below (open|close)"),
    "low_above_open": (lambda f, r: f.__setitem__("low", _set(f["low"], r, min(f["open"].iloc[r], f["close"].iloc[r]) * 1.00001)), "has low [0-9.,]+ above (open|close)"),
    "duplicate_ts": (lambda f, r: f.__setitem__("timestamp", _set(f["timestamp"], r, f["timestamp"].iloc[r - 1])), "duplicate timestamp"),
    "unsorted_ts": (lambda f, r: f.__setitem__("timestamp", _set(f["timestamp"], r, f["timestamp"].iloc[r - 1] - pd.Timedelta("5min"))), "timestamps must increase"),
    "off_grid": (lambda f, r: f.__setitem__("timestamp", _set(f["timestamp"], r, f["timestamp"].iloc[r] + pd.Timedelta("1min"))), "off the 5m grid"),
}


def _set(series, row, value):
    values = series.copy()
    values.iloc[row] = value
    return values


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(sorted(BREAKAGES)), row=st.integers(1, 18), seed=st.integers(0, 50))
def test_every_breakage_names_its_row(kind, row, seed):
    frame = _valid(20, seed)
    mutate, words = BREAKAGES[kind]
    mutate(frame, row)
    with pytest.raises(DataValidationError) as info:
        validate_candles(frame, "5m", symbol="ETH/USDT")
    message = str(info.value)
    assert f"Candle {row:,} of ETH/USDT" in message
    assert re.search(words, message), message
    assert frame["timestamp"].iloc[row].strftime("%Y-%m-%d %H:%M") in message


def test_high_below_low_reported():
    frame = _valid()
    frame.loc[3, ["high", "low"]] = [frame.loc[3, "low"] * 0.9, frame.loc[3, "low"]]
    with pytest.raises(DataValidationError, match="Candle 3 .* below low"):
        validate_candles(frame)


def test_naive_and_non_utc_timestamps_rejected():
    frame = _valid()
    naive = frame.assign(timestamp=frame["timestamp"].dt.tz_localize(None))
    with pytest.raises(DataValidationError, match="timezone-aware UTC.*naive"):
        validate_candles(naive)
    tehran = frame.assign(timestamp=frame["timestamp"].dt.tz_convert("Asia/Tehran"))
    with pytest.raises(DataValidationError, match="must be in UTC.*Asia/Tehran"):
        validate_candles(tehran)


def test_missing_column_and_wrong_dtype():
    frame = _valid()
    with pytest.raises(DataValidationError, match=r"missing the column\(s\) \['volume'\]"):
        validate_candles(frame.drop(columns="volume"), symbol="X")
    with pytest.raises(DataValidationError, match="'volume' column of X must be float64. Got int64"):
        validate_candles(frame.assign(volume=1), symbol="X")
    with pytest.raises(DataValidationError, match="must be a pandas DataFrame"):
        validate_candles([1, 2, 3])


def test_first_bad_row_wins_across_rules():
    frame = _valid()
    frame.loc[7, "volume"] = -5.0
    frame.loc[4, "close"] = np.nan
    with pytest.raises(DataValidationError, match="Candle 4 "):
        validate_candles(frame)


def test_validation_does_not_mutate():
    frame = _valid()
    before = frame.copy()
    validate_candles(frame, "5m")
    pd.testing.assert_frame_equal(frame, before)


def test_repairs_report_every_change():
    frame = _valid(10)
    shuffled = pd.concat([frame.iloc[[5]], frame, frame.iloc[[2]]], ignore_index=True)
    shuffled.loc[4, "volume"] = -1.0  # the original row 3
    out, reports = repair_candles(shuffled, "5m")
    validate_candles(out, "5m")
    assert [r.action for r in reports] == ["sort", "dedupe", "drop_invalid"]
    assert reports[1].rows_before - reports[1].rows_after == 2
    assert reports[2].rows_after == 9 and "bad volume" in reports[2].details[0]
    assert str(reports[0]).startswith("sort: 12 -> 12 rows")


def test_dedupe_keeps_newest_by_default():
    frame = _valid(5)
    newer = frame.iloc[[2]].assign(close=frame.loc[2, "close"] * 1.0001, high=frame.loc[2, "high"] * 1.01)
    both, _ = sort_candles(pd.concat([frame, newer], ignore_index=True))
    out, report = drop_duplicate_timestamps(both)
    assert out.loc[2, "close"] == newer["close"].iloc[0]
    assert report.removed_timestamps == (frame.loc[2, "timestamp"],)
    first, _ = drop_duplicate_timestamps(both, keep="first")
    assert first.loc[2, "close"] == frame.loc[2, "close"]


def test_drop_invalid_rows_off_grid():
    frame = _valid(6)
    frame.loc[2, "timestamp"] += pd.Timedelta("1min")
    out, report = drop_invalid_rows(frame, "5m")
    assert len(out) == 5 and "off grid" in report.details[0]


def test_gap_report_matches_provenance(btc_5m):
    """PROVENANCE.md lists six maintenance gaps, 177 missing 5m candles, for BTC/USDT."""
    report = gap_report(btc_5m, "5m")
    assert (report.candles, report.missing, report.count, report.longest) == (65_741, 177, 6, 56)
    listed = [
        ("2020-12-21 14:05", "2020-12-21 18:00", 46),
        ("2020-12-25 01:55", "2020-12-25 03:00", 12),
        ("2021-02-11 03:40", "2021-02-11 05:00", 15),
        ("2021-03-06 01:55", "2021-03-06 03:30", 18),
        ("2021-04-20 01:55", "2021-04-20 04:30", 30),
        ("2021-04-25 04:00", "2021-04-25 08:45", 56),
    ]
    expected = [(pd.Timestamp(a, tz="UTC"), pd.Timestamp(b, tz="UTC"), n) for a, b, n in listed]
    assert list(report.gaps) == expected
    assert report.to_frame()["missing"].sum() == 177
