"""The store trusts files it did not write (issue 9): a file with the wrong timestamp unit,
dtypes, order or candles is refused on read, naming the file and how to fix it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core_engine.data.store import ParquetStore
from core_engine.errors import StoreError

SYMBOL = "BTC/USDT"


def _write_foreign(store, frame, *, ts_type=None, value_type=None, symbol=SYMBOL,
                   metadata=True, nullable_close=False):
    """Write ``frame`` where the store keeps ``symbol``, the way another tool might."""
    ts_type = ts_type or pa.timestamp("ns", tz="UTC")
    value_type = value_type or pa.float64()
    ts = frame["timestamp"]
    if ts_type.tz is None:
        ts = ts.dt.tz_localize(None)
    columns = [pa.array(ts.to_numpy(dtype=f"datetime64[{ts_type.unit}]"), type=ts_type)]
    for name in ("open", "high", "low", "close", "volume"):
        values = frame[name].to_numpy()
        mask = np.isnan(values) if (nullable_close and name == "close") else None
        columns.append(pa.array(values, mask=mask).cast(value_type))
    table = pa.Table.from_arrays(columns, names=["timestamp", "open", "high", "low", "close",
                                                 "volume"])
    if metadata:
        table = table.replace_schema_metadata({b"core_engine.symbol": symbol.encode(),
                                               b"core_engine.timeframe": b"5m"})
    path = store.path(symbol, "5m")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=16)
    return path


def _set(frame, row, column, value):
    out = frame.copy()
    out.loc[row, column] = value
    return out


CASES = {
    "microseconds": (dict(ts_type=pa.timestamp("us", tz="UTC")), lambda f: f, "timestamps in us"),
    "naive": (dict(ts_type=pa.timestamp("ns")), lambda f: f, "timezone none"),
    "float32": (dict(value_type=pa.float32()), lambda f: f, "'open' column of type float"),
    "unsorted": ({}, lambda f: f.iloc[::-1].reset_index(drop=True), "timestamps must increase"),
    "duplicated": ({}, lambda f: pd.concat([f.iloc[:5], f.iloc[4:]], ignore_index=True),
                   "duplicate timestamp|timestamps must increase"),
    "negative price": ({}, lambda f: _set(f, 7, "low", -1.0), "non-positive low"),
    "nan close": ({}, lambda f: _set(f, 9, "close", np.nan), "has close nan"),
    "high below low": ({}, lambda f: _set(f, 3, "high", f["low"].iloc[3] * 0.5), "has high"),
    "null close": (dict(nullable_close=True), lambda f: _set(f, 2, "close", np.nan), "null"),
    "off grid": ({}, lambda f: _set(f, 4, "timestamp", f["timestamp"].iloc[4] + pd.Timedelta("1min")),
                 "off the 5m grid"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_store_trusts_foreign_files_no_more(tmp_path, make_candles, case):
    options, corrupt, words = CASES[case]
    store = ParquetStore(tmp_path)
    path = _write_foreign(store, corrupt(make_candles(40)), **options)
    for read in (lambda: store.read_one(SYMBOL, "5m"),
                 lambda: store.read_panel([SYMBOL], "5m"),
                 lambda: store.write(SYMBOL, "5m", make_candles(3, start="2021-02-01"))):
        with pytest.raises(StoreError) as info:
            read()
        message = str(info.value)
        assert str(path) in message and "re-ingest" in message, message
        assert any(w in message for w in words.split("|")), message


def test_store_trusts_foreign_files_no_more_pandas_default_parquet(tmp_path, make_candles):
    """What a user writes with pandas: microsecond timestamps, no core_engine metadata."""
    store = ParquetStore(tmp_path)
    frame = make_candles(20)
    frame["timestamp"] = frame["timestamp"].astype("datetime64[us, UTC]")
    path = store.path(SYMBOL, "5m")
    path.parent.mkdir(parents=True)
    frame.to_parquet(path)
    with pytest.warns(UserWarning, match=str(path)):
        assert store.symbols("5m") == []
    with pytest.raises(StoreError, match=f"{path}.*not written by ParquetStore"):
        store.read_one(SYMBOL, "5m")


def test_store_trusts_foreign_files_no_more_but_reads_its_own_bit_identical(tmp_path, btc_5m):
    store = ParquetStore(tmp_path)
    store.write(SYMBOL, "5m", btc_5m)
    pd.testing.assert_frame_equal(store.read_one(SYMBOL, "5m"), btc_5m, check_exact=True)
    from core_engine.data import Panel

    whole = store.read_panel([SYMBOL], "5m")  # three row groups, six outages: both fill paths
    assert whole.fingerprint() == Panel.from_frames({SYMBOL: btc_5m}, "5m").fingerprint()
    week = store.read_panel([SYMBOL], "5m", start="2021-03-01", end="2021-03-08")
    assert week.n_times == 7 * 288 and int(np.isnan(week.close).sum()) == 18


FOOTER_CASES = ["microseconds", "float32", "unsorted", "negative price", "null close"]


@pytest.mark.parametrize("case", FOOTER_CASES)
def test_store_trusts_foreign_files_no_more_footer_first(tmp_path, make_candles, monkeypatch,
                                                        case):
    """"Cheaply: footer statistics first": what the footer (schema and row-group statistics)
    already shows is refused without decoding a data page: reading any row here fails."""
    options, corrupt, words = CASES[case]
    store = ParquetStore(tmp_path)
    path = _write_foreign(store, corrupt(make_candles(40)), **options)

    def no_data(*args, **kwargs):
        raise AssertionError("a data page was read before the footer was checked")

    for name in ("read", "read_row_groups", "read_row_group", "iter_batches"):
        monkeypatch.setattr(pq.ParquetFile, name, no_data)
    monkeypatch.setattr(pq, "read_table", no_data)
    for read in (lambda: store.read_one(SYMBOL, "5m"),
                 lambda: store.read_panel([SYMBOL], "5m"),
                 lambda: store.read_one(SYMBOL, "5m", start="2021-01-01 01:00")):
        with pytest.raises(StoreError) as info:
            read()
        message = str(info.value)
        assert str(path) in message
        assert any(w in message for w in words.split("|")), message
