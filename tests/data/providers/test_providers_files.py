"""FileProvider on the bundled real parquet files and on real rows written as CSV/JSON/Feather."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.data.providers import (
    FileProvider,
    SampleProvider,
    read_candle_file,
    sample_data_dir,
)
from core_engine.errors import ConfigError, DataValidationError

FILES = Path(__file__).parent / "recordings" / "files"
SAMPLE_DIR = sample_data_dir()
DAY = ("2021-05-19", "2021-05-20")


@pytest.fixture(scope="module")
def eth_day() -> pd.DataFrame:
    return SampleProvider().fetch_ohlcv("ETH/USDT", "5m", *DAY)


def assert_bit_identical(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    assert got["timestamp"].dtype == pd.DatetimeTZDtype("ns", "UTC")
    assert np.array_equal(got["timestamp"].to_numpy(), want["timestamp"].to_numpy())
    for column in ("open", "high", "low", "close", "volume"):
        assert got[column].dtype == np.float64
        assert np.array_equal(got[column].to_numpy().view(np.int64),
                              want[column].to_numpy().view(np.int64)), column


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLE_DIR.glob("*.parquet")))
def test_reads_each_bundled_parquet_bit_identical(name):
    provider = FileProvider(SAMPLE_DIR)
    base, rest = name.split("_")
    symbol = f"{base}/{rest.split('-')[0]}"
    got = provider.fetch_ohlcv(symbol, "5m")
    raw = pq.read_table(SAMPLE_DIR / name).to_pandas()
    assert str(pq.read_schema(SAMPLE_DIR / name).field("timestamp").type) == "timestamp[ns, tz=UTC]"
    assert_bit_identical(got, raw)


def test_lists_symbols_by_timeframe(tmp_path):
    assert FileProvider(SAMPLE_DIR).symbols("5m") == SampleProvider().symbols()
    assert FileProvider(SAMPLE_DIR).symbols("1h") == []
    (tmp_path / "BTC_USDT-1h.csv").write_text("x")
    (tmp_path / "ETH_BTC-5m.json").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "SOL_USDT-5m.xlsx").write_text("x")
    assert FileProvider(tmp_path).symbols() == ["BTC/USDT", "ETH/BTC"]
    assert FileProvider(tmp_path).symbols("1h") == ["BTC/USDT"]


def test_freqtrade_json(eth_day):
    got = FileProvider(FILES).fetch_ohlcv("ETH/USDT", "5m")
    # parquet is preferred over csv over json when several exist: force the JSON file
    only_json = read_candle_file(FILES / "ETH_USDT-5m.json", "5m")
    assert_bit_identical(only_json, eth_day)
    assert_bit_identical(got, eth_day)


def test_csv_epoch_milliseconds(eth_day):
    assert_bit_identical(read_candle_file(FILES / "ETH_USDT-5m.csv", "5m"), eth_day)
    assert_bit_identical(read_candle_file(FILES / "ETH_USDT-5m.csv", "5m", timestamp_unit="ms"), eth_day)


def test_csv_epoch_seconds(eth_day):
    provider = FileProvider(FILES / "seconds")
    assert_bit_identical(provider.fetch_ohlcv("ETH/USDT", "5m"), eth_day)
    explicit = FileProvider(FILES / "seconds", timestamp_unit="s")
    assert_bit_identical(explicit.fetch_ohlcv("ETH/USDT", "5m"), eth_day)


def test_csv_iso_text_with_column_mapping(eth_day):
    mapping = {"Volume BTC": "volume"}  # Date/Open/High/... are recognised by name
    provider = FileProvider(FILES / "iso", columns=mapping)
    assert_bit_identical(provider.fetch_ohlcv("ETH/USDT", "5m"), eth_day)
    explicit = FileProvider(FILES / "iso", timestamp_unit="iso",
                            columns={"Date": "timestamp", "Open": "open", "High": "high",
                                     "Low": "low", "Close": "close", "Volume BTC": "volume"})
    assert_bit_identical(explicit.fetch_ohlcv("ETH/USDT", "5m"), eth_day)
    with pytest.raises(DataValidationError, match=r"missing the column\(s\) \['volume'\]"):
        FileProvider(FILES / "iso").fetch_ohlcv("ETH/USDT", "5m")


def test_unit_mismatch_is_an_error():
    with pytest.raises(DataValidationError, match=r"timestamp_unit='iso' needs text"):
        read_candle_file(FILES / "ETH_USDT-5m.csv", timestamp_unit="iso")
    with pytest.raises(DataValidationError, match="needs numeric epoch"):
        read_candle_file(FILES / "iso" / "ETH_USDT-5m.csv", timestamp_unit="ms",
                         columns={"Volume BTC": "volume"})
    # Seconds read as milliseconds land in January 1970: off the data, but on the 5m grid?
    # No: 1621382400 ms is 1970-01-19 18:23:02.400, off the 5m grid.
    with pytest.raises(DataValidationError, match="off the 5m grid"):
        read_candle_file(FILES / "seconds" / "ETH_USDT-5m.csv", "5m", timestamp_unit="ms")


@pytest.mark.parametrize("unit,scale", [("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)])
def test_auto_detects_epoch_units(tmp_path, eth_day, unit, scale):
    frame = eth_day.assign(timestamp=eth_day["timestamp"].astype("int64") // scale)
    frame.to_parquet(tmp_path / "ETH_USDT-5m.parquet")
    assert_bit_identical(FileProvider(tmp_path).fetch_ohlcv("ETH/USDT", "5m"), eth_day)


def test_feather_with_freqtrade_date_column_and_naive_parquet(tmp_path, eth_day):
    eth_day.rename(columns={"timestamp": "date"}).to_feather(tmp_path / "ETH_USDT-5m.feather")
    assert_bit_identical(FileProvider(tmp_path).fetch_ohlcv("ETH/USDT", "5m"), eth_day)
    naive = eth_day.assign(timestamp=eth_day["timestamp"].dt.tz_localize(None))
    naive.to_parquet(tmp_path / "naive.parquet")  # naive times are read as UTC
    assert_bit_identical(FileProvider(tmp_path / "naive.parquet").fetch_ohlcv("X/Y", "5m"), eth_day)
    other_zone = eth_day.assign(timestamp=eth_day["timestamp"].dt.tz_convert("Asia/Tehran"))
    other_zone.to_parquet(tmp_path / "tehran.parquet")  # same instants, converted to UTC
    assert_bit_identical(read_candle_file(tmp_path / "tehran.parquet", "5m"), eth_day)


def test_records_json_and_extra_columns(tmp_path, eth_day):
    records = eth_day.assign(timestamp=eth_day["timestamp"].astype("int64") // 10**6,
                             trades=7).to_dict(orient="records")
    (tmp_path / "r.json").write_text(json.dumps(records))
    assert_bit_identical(read_candle_file(tmp_path / "r.json", "5m"), eth_day)


@settings(max_examples=25, deadline=None)
@given(first=st.integers(0, 287), length=st.integers(1, 300))
def test_filters_half_open_range(eth_day, first, length):
    provider = FileProvider(FILES)
    lo = eth_day["timestamp"].iloc[0] + pd.Timedelta(minutes=5 * first)
    hi = lo + pd.Timedelta(minutes=5 * length)
    got = provider.fetch_ohlcv("ETH/USDT", "5m", lo, hi)
    want = eth_day[(eth_day.timestamp >= lo) & (eth_day.timestamp < hi)].reset_index(drop=True)
    assert_bit_identical(got, want)


def test_bad_row_is_named_with_file_and_row(tmp_path, eth_day):
    bad = eth_day.assign(timestamp=eth_day["timestamp"].astype("int64") // 10**6)
    bad.loc[5, "high"] = bad.loc[5, "low"] - 1.0
    path = tmp_path / "ETH_USDT-5m.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(DataValidationError) as info:
        FileProvider(tmp_path).fetch_ohlcv("ETH/USDT", "5m")
    message = str(info.value)
    assert str(path) in message and "Candle 5 of ETH/USDT (2021-05-19 00:25 UTC)" in message
    assert "high" in message


def test_unsorted_or_duplicate_file_is_rejected_not_repaired(tmp_path, eth_day):
    swapped = eth_day.iloc[[0, 2, 1, 3]].reset_index(drop=True)
    swapped.to_parquet(tmp_path / "A_B-5m.parquet")
    with pytest.raises(DataValidationError, match=r"A_B-5m.parquet.*Candle 2 .*timestamps must increase"):
        FileProvider(tmp_path).fetch_ohlcv("A/B", "5m")


def test_text_in_a_number_column_is_named(tmp_path):
    (tmp_path / "A_B-5m.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "1621382400000,1,2,0.5,1.5,10\n"
        "1621382700000,1.5,2,oops,1.5,10\n"
    )
    with pytest.raises(DataValidationError, match=r"A_B-5m.csv, row 1: low 'oops' is not a number"):
        FileProvider(tmp_path).fetch_ohlcv("A/B", "5m")


def test_bad_iso_text_is_named(tmp_path):
    (tmp_path / "A_B-5m.csv").write_text(
        "date,open,high,low,close,volume\n"
        "2021-05-19 00:00:00,1,2,0.5,1.5,10\n"
        "yesterday,1.5,2,1,1.5,10\n"
    )
    with pytest.raises(DataValidationError, match=r"A_B-5m.csv, row 1: timestamp 'yesterday'"):
        FileProvider(tmp_path).fetch_ohlcv("A/B", "5m")


def test_missing_file_and_bad_options(tmp_path):
    provider = FileProvider(SAMPLE_DIR)
    with pytest.raises(ConfigError, match=r"No candle file for BTC/USD 5m.*Did you mean 'BTC/USDT'"):
        provider.fetch_ohlcv("BTC/USD", "5m")
    with pytest.raises(ConfigError, match="does not exist"):
        FileProvider(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"'timestamp_unit'.*Got 'msec'"):
        FileProvider(tmp_path, timestamp_unit="msec")
    with pytest.raises(ConfigError, match=r"'columns' mapping names \['Datum'\]"):
        FileProvider(FILES, columns={"Datum": "timestamp"}).fetch_ohlcv("ETH/USDT", "5m")
    with pytest.raises(ConfigError, match="must contain"):
        FileProvider(tmp_path, pattern="{quote}.csv")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(ConfigError, match="unsupported extension"):
        read_candle_file(tmp_path / "x.txt")


def test_custom_pattern(tmp_path, eth_day):
    eth_day.to_parquet(tmp_path / "binance-ETHUSDT-5m.parquet")
    provider = FileProvider(tmp_path, pattern="binance-{base}{quote}-{timeframe}.{ext}")
    assert_bit_identical(provider.fetch_ohlcv("ETH/USDT", "5m"), eth_day)
