"""Ambiguous input read silently (issue 9, data part): times, timeframes, panels built by hand,
stray candles, UTC aliases and NumPy scalars."""

from __future__ import annotations

import datetime
import zoneinfo

import dateutil.tz
import numpy as np
import pandas as pd
import pytest
import pytz

from core_engine.data import Panel, validate_candles
from core_engine.data.providers import SyntheticProvider
from core_engine.data.store import ParquetStore
from core_engine.data.timeframes import timeframe_ns, to_utc_timestamp
from core_engine.errors import ConfigError, DataValidationError

JAN_1_MS = 1_609_459_200_000  # 2021-01-01 00:00 UTC


@pytest.mark.parametrize("value, words", [
    (1_609_459_200, r"looks like epoch seconds \(2021-01-01 00:00 UTC\); pass 1609459200000"),
    (np.int64(1_609_459_200), "looks like epoch seconds"),
    (JAN_1_MS * 1000, "looks like epoch microseconds; pass 1609459200000"),
    (JAN_1_MS * 1_000_000, "looks like epoch nanoseconds; pass 1609459200000"),
    (0, "at or before 1970"),
    (1_609_459_200.0, "float.*ambiguous"),
    (np.float64(JAN_1_MS), "float.*ambiguous"),
    (True, "must be a time"),
])
def test_ambiguous_input_times_are_refused_with_the_fix(value, words):
    with pytest.raises(ConfigError, match=f"'start' parameter.*{words}"):
        to_utc_timestamp(value, name="start")


@pytest.mark.parametrize("value", [
    JAN_1_MS, np.int64(JAN_1_MS), np.datetime64("2021-01-01T00:00"), "2021-01-01",
    "2021-01-01 01:00+01:00", datetime.datetime(2021, 1, 1), pd.Timestamp("2021-01-01", tz="UTC"),
    datetime.datetime(2021, 1, 1, tzinfo=dateutil.tz.tzutc()),
])
def test_ambiguous_input_times_that_say_what_they_mean_are_read(value):
    assert to_utc_timestamp(value) == pd.Timestamp("2021-01-01", tz="UTC")


def test_ambiguous_input_seconds_refused_wherever_the_data_layer_takes_a_time(tmp_path,
                                                                             make_candles):
    frame = make_candles(50, start="2021-01-01")
    store = ParquetStore(tmp_path)
    store.write("A/B", "5m", frame)
    panel = Panel.from_frames({"A/B": frame}, "5m")
    provider = SyntheticProvider(seed=1)
    for call in (lambda: store.read_one("A/B", "5m", start=1_609_459_200),
                 lambda: Panel.from_frames({"A/B": frame}, "5m", start=1_609_459_200),
                 lambda: panel.known_at(1_609_459_200),
                 lambda: provider.fetch_ohlcv("A/B", "5m", 1_609_459_200, "2021-01-02")):
        with pytest.raises(ConfigError, match="looks like epoch seconds"):
            call()
    # NumPy scalars are times like any other
    got = store.read_one("A/B", "5m", start=np.datetime64("2021-01-01T01:00"),
                         end=np.int64(JAN_1_MS + 2 * 3_600_000))
    assert len(got) == 12
    assert panel.known_at(np.datetime64("2021-01-01T00:10")).n_times == 2


def test_ambiguous_input_one_month_is_not_one_minute():
    assert timeframe_ns("1m") == 60 * 10**9 and timeframe_ns("5MIN") == 300 * 10**9
    assert timeframe_ns("1H") == timeframe_ns("1h")
    for text in ("1M", "3M", "1mo"):
        with pytest.raises(ConfigError, match="months.*CCXT spells one month '1M'"):
            timeframe_ns(text)


def _arrays(n=6, m=2):
    close = np.linspace(10, 11, n * m).reshape(n, m)
    return {"open": close.copy(), "high": close * 1.01, "low": close * 0.99, "close": close.copy(),
            "volume": np.ones((n, m))}


def _panel(**fields):
    index = pd.date_range("2021-01-01", periods=6, freq="5min", tz="UTC")
    return Panel(index, ("A/USDT", "B/USDT"), "5m", **fields)


@pytest.mark.parametrize("field, value, words", [
    ("low", -1.0, "has non-positive low -1"),
    ("high", np.inf, "has high inf"),
    ("high", 5.0, "has high 5 below"),
    ("volume", -2.0, "has negative volume -2"),
    ("close", np.nan, "is partly missing: close NaN but open, high, low, volume not"),
])
def test_ambiguous_input_panel_built_by_hand_is_checked(field, value, words):
    fields = _arrays()
    fields[field][3, 1] = value
    with pytest.raises(DataValidationError,
                       match=f"Panel candle of B/USDT at row 3 \\(2021-01-01 00:15 UTC\\) {words}"):
        _panel(**fields)
    fields = _arrays()
    for values in fields.values():
        values[3, 1] = np.nan  # a missing candle: NaN in all five fields
    assert _panel(**fields).present.sum() == 11


def test_ambiguous_input_poisoned_and_derived_panels_keep_working(monkeypatch):
    panel = _panel(**_arrays())
    future_nan = {name: np.where(np.arange(6)[:, None] > 2, np.nan, getattr(panel, name))
                  for name in ("open", "high", "low", "close", "volume")}
    assert panel.with_fields(**future_nan).present.sum() == 6
    nudged = panel.with_fields(close=panel.close * 1.5)  # perturbations are the caller's business
    assert (nudged.close > nudged.high).any()
    with pytest.raises(DataValidationError, match="has high .* below close"):
        panel.with_fields(close=panel.close * 1.5, validate=True)

    import core_engine.data.panel as panel_module

    def refuse(*args):
        raise AssertionError("a panel derived from a checked panel was checked again")

    monkeypatch.setattr(panel_module, "all_candles_ok", refuse)
    assert panel.slice_rows(1, 4).n_times == 3
    assert panel.select(["B/USDT"]).symbols == ("B/USDT",)
    assert panel.known_at("2021-01-01 00:20").n_times == 4
    assert panel.loc_time("2021-01-01 00:10").n_times == 4


def test_ambiguous_input_a_stray_candle_at_epoch_zero_does_not_build_millions_of_rows(
        tmp_path, make_candles):
    frame = make_candles(2021, start="2021-03-01")
    stray = pd.concat([frame.iloc[:1], frame], ignore_index=True)
    stray.loc[0, "timestamp"] = pd.Timestamp("1970-01-01", tz="UTC")
    words = (r"5m grid of 5,3\d\d,\d\d\d rows.*1970-01-01 00:00 UTC and 2021-03-01 00:00 UTC.*"
             r"before that stretch look stray: STRAY/USDT \(1 candle, 1970-01-01 00:00 UTC")
    with pytest.raises(DataValidationError, match=words):
        Panel.from_frames({"OK/USDT": frame, "STRAY/USDT": stray}, "5m")
    store = ParquetStore(tmp_path)
    store.write("STRAY/USDT", "5m", stray)
    with pytest.raises(DataValidationError, match="STRAY/USDT"):
        store.read_panel(["STRAY/USDT"])
    assert Panel.from_frames({"STRAY/USDT": stray}, "5m", start="2021-01-01").n_times == 2021
    # sparse but honest data (thin coins trade rarely) is not refused
    thin = make_candles(120_000, start="2020-01-01").iloc[::40].reset_index(drop=True)
    assert Panel.from_frames({"THIN": thin}, "5m").n_times == 119_961


@pytest.mark.parametrize("tz", [
    "Etc/UTC", zoneinfo.ZoneInfo("Etc/UTC"), dateutil.tz.tzutc(), dateutil.tz.gettz("UTC"),
    datetime.UTC, pytz.utc, pytz.timezone("Etc/UTC"), "Zulu",
])
def test_ambiguous_input_utc_aliases_are_utc(tmp_path, make_candles, tz):
    frame = make_candles(20)
    aliased = frame.assign(timestamp=frame["timestamp"].dt.tz_convert(tz))
    assert validate_candles(aliased, "5m") is aliased
    assert Panel.from_frames({"A": aliased}, "5m").fingerprint() == \
        Panel.from_frames({"A": frame}, "5m").fingerprint()
    store = ParquetStore(tmp_path)
    store.write("A/B", "5m", aliased)
    pd.testing.assert_frame_equal(store.read_one("A/B", "5m"), frame)
    with pytest.raises(DataValidationError, match="must be in UTC. Got timezone Europe/Paris"):
        validate_candles(frame.assign(timestamp=frame["timestamp"].dt.tz_convert("Europe/Paris")))


def test_ambiguous_input_repeated_column_is_a_clear_error(make_candles):
    frame = make_candles(5)
    doubled = pd.concat([frame, frame[["close"]]], axis=1)
    with pytest.raises(DataValidationError, match=r"column\(s\) \['close'\] more than once"):
        validate_candles(doubled)


def test_ambiguous_input_numpy_scalars_are_numbers():
    provider = SyntheticProvider(seed=np.int64(3), n_symbols=np.int64(4), volatility=np.float64(0.5))
    assert len(provider.symbols()) == 4 and provider.seed == 3
    with pytest.raises(ConfigError, match="'n_symbols' parameter must be a positive integer"):
        SyntheticProvider(n_symbols=np.float64(4.0))
    with pytest.raises(ConfigError, match="'volatility' parameter must be a non-negative number"):
        SyntheticProvider(volatility="high")
