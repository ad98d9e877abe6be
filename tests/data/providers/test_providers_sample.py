"""SampleProvider and load_sample: the bundled real Binance 5m candles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from core_engine.data.candles import gap_report, validate_candles
from core_engine.data.providers import SampleProvider, load_sample, sample_data_dir
from core_engine.errors import ConfigError

SAMPLE_DIR = sample_data_dir()
MAJORS = ["ADA/USDT", "BTC/USDT", "DOT/USDT", "ETH/USDT", "LINK/USDT", "SOL/USDT", "XRP/USDT"]
# (last candle before, first candle after, missing candles): PROVENANCE.md, 2021-01..06.
MAINTENANCE_GAPS = [
    ("2021-02-11 03:40", "2021-02-11 05:00", 15),
    ("2021-03-06 01:55", "2021-03-06 03:30", 18),
    ("2021-04-20 01:55", "2021-04-20 04:30", 30),
    ("2021-04-25 04:00", "2021-04-25 08:45", 56),
]


@pytest.fixture(scope="module")
def sample() -> dict[str, pd.DataFrame]:
    return load_sample()


def test_symbols():
    assert SampleProvider().symbols() == sorted([*MAJORS, "NKN/USDT", "AR/USDT"])


def test_every_symbol_is_valid_5m_and_in_the_period(sample):
    assert sorted(sample) == SampleProvider().symbols()
    for symbol, frame in sample.items():
        validate_candles(frame, "5m", symbol=symbol)
        assert frame["timestamp"].iloc[-1] == pd.Timestamp("2021-06-30 23:55", tz="UTC")
        first = "2021-05-14 12:00" if symbol == "AR/USDT" else "2021-01-01 00:00"
        assert frame["timestamp"].iloc[0] == pd.Timestamp(first, tz="UTC")


@pytest.mark.parametrize("symbol", [*MAJORS, "NKN/USDT"])
def test_gap_report_matches_the_provenance(sample, symbol):
    report = gap_report(sample[symbol], "5m")
    got = [(a.strftime("%Y-%m-%d %H:%M"), b.strftime("%Y-%m-%d %H:%M"), n) for a, b, n in report.gaps]
    assert got == MAINTENANCE_GAPS
    assert report.missing == 119 and report.candles == 52_009
    assert gap_report(sample["AR/USDT"], "5m").missing == 0


def test_rows_are_the_stored_rows_and_the_known_record_high(sample):
    btc = sample["BTC/USDT"]
    raw = pq.read_table(SAMPLE_DIR / "BTC_USDT-5m.parquet").to_pandas()
    for column in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(btc[column].to_numpy().view(np.int64), raw[column].to_numpy().view(np.int64))
    top = btc.loc[btc["high"].idxmax()]
    assert top["high"] == 64_854.0 and top["timestamp"] == pd.Timestamp("2021-04-14 06:10", tz="UTC")
    # First candle of 2021, as in the shared source file (checked against it when bundling).
    first = btc.iloc[0]
    assert tuple(first[["open", "high", "low", "close", "volume"]]) == (
        28923.63, 29017.5, 28913.12, 28975.65, 182.889878)


def test_zero_volume_bars_are_kept(sample):
    # NKN is illiquid: 1,988 zero-volume 5m bars in 2021-H1 (PROVENANCE.md); BTC has 18.
    assert int((sample["NKN/USDT"]["volume"] == 0).sum()) == 1_988
    assert int((sample["BTC/USDT"]["volume"] == 0).sum()) == 18


def test_load_sample_subset_and_range():
    frames = load_sample(["ETH/USDT", "AR/USDT"], "2021-05-14", "2021-05-15")
    assert list(frames) == ["ETH/USDT", "AR/USDT"]
    assert len(frames["ETH/USDT"]) == 288
    assert len(frames["AR/USDT"]) == 144  # listed at 12:00
    assert load_sample("BTC/USDT", "2021-03-01", "2021-03-01 01:00")["BTC/USDT"].shape == (12, 6)


def test_errors():
    provider = SampleProvider()
    with pytest.raises(ConfigError, match=r"Got 'BTC/USD'\. Did you mean 'BTC/USDT'\?"):
        provider.fetch_ohlcv("BTC/USD", "5m")
    with pytest.raises(ConfigError, match="5m candles only.*resample"):
        provider.fetch_ohlcv("BTC/USDT", "1h")
    with pytest.raises(ConfigError, match="before 'end'"):
        provider.fetch_ohlcv("BTC/USDT", "5m", "2021-03-02", "2021-03-01")


def test_package_data_size_and_provenance():
    files = list(SAMPLE_DIR.iterdir())
    assert sum(f.stat().st_size for f in files) < 10 * 1024 * 1024
    text = SampleProvider().provenance()
    assert "52f08a78f6fd91142f8ea06b991f5a2b5813e7e4" in text
    assert "iterativv/NostalgiaForInfinity" in text
    for before, after, missing in MAINTENANCE_GAPS:
        assert f"({before}, {after[-5:]}) {missing}" in text
    metadata = pq.read_schema(SAMPLE_DIR / "ETH_USDT-5m.parquet").metadata
    assert metadata[b"ohlcv.source_commit"] == b"52f08a78f6fd91142f8ea06b991f5a2b5813e7e4"
    assert metadata[b"ohlcv.symbol"] == b"ETH/USDT"
