"""Store names collide (issue 9): one file per exact symbol, safe on case-insensitive disks,
and a file that records another symbol is refused on read, write and delete."""

from __future__ import annotations

import shutil
import string

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.data import Panel
from core_engine.data.store import ParquetStore
from core_engine.errors import StoreError


def test_store_names_collide_no_more_slash_and_underscore_are_two_symbols(tmp_path, make_candles):
    store = ParquetStore(tmp_path)
    slash, underscore = make_candles(30, seed=1), make_candles(30, seed=2, price=7.0)
    store.write("BTC/USDT", "5m", slash)
    store.write("BTC_USDT", "5m", underscore)
    assert store.path("BTC/USDT", "5m") != store.path("BTC_USDT", "5m")
    assert store.symbols("5m") == ["BTC/USDT", "BTC_USDT"]
    pd.testing.assert_frame_equal(store.read_one("BTC/USDT", "5m"), slash)
    pd.testing.assert_frame_equal(store.read_one("BTC_USDT", "5m"), underscore)
    assert store.delete("BTC_USDT", "5m")
    pd.testing.assert_frame_equal(store.read_one("BTC/USDT", "5m"), slash)
    assert store.symbols("5m") == ["BTC/USDT"]


def test_store_names_collide_no_more_on_a_case_insensitive_disk(tmp_path):
    store = ParquetStore(tmp_path)
    names = [store.path(s, "5m").name for s in ("BTC/USDT", "btc/usdt", "Btc/Usdt", "BTC:USDT")]
    assert len({name.casefold() for name in names}) == len(names)
    assert names[0].startswith("BTC_USDT.")  # still readable by a human


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=string.ascii_letters + string.digits + "/_:-. éß", min_size=1,
                        max_size=12), min_size=2, max_size=6, unique=True))
def test_store_names_collide_never_even_ignoring_case(symbols):
    store = ParquetStore("unused")
    names = {store.path(s, "5m").name.casefold() for s in symbols}
    assert len(names) == len(symbols)
    assert all(not name.startswith(".") for name in names)


def test_store_names_collide_a_file_recording_another_symbol_is_refused(tmp_path, make_candles):
    store = ParquetStore(tmp_path)
    store.write("BTC/USDT", "5m", make_candles(20))
    foreign = store.path("ETH/USDT", "5m")
    shutil.copy(store.path("BTC/USDT", "5m"), foreign)  # copied under another symbol's name
    for action in (lambda: store.read_one("ETH/USDT", "5m"),
                   lambda: store.read_panel(["ETH/USDT"], "5m"),
                   lambda: store.write("ETH/USDT", "5m", make_candles(5, seed=3)),
                   lambda: store.delete("ETH/USDT", "5m")):
        with pytest.raises(StoreError, match=f"{foreign}.*records the symbol 'BTC/USDT'"):
            action()
    assert foreign.exists()  # neither merged into nor deleted
    assert pq.read_table(foreign).num_rows == 20


def test_store_names_collide_old_stores_stay_readable_and_move_on_write(tmp_path, make_candles):
    store = ParquetStore(tmp_path)
    frame = make_candles(40)
    store.write("BTC/USDT", "5m", frame)
    legacy = tmp_path / "5m" / "BTC_USDT.parquet"  # the name the previous layout used
    store.path("BTC/USDT", "5m").rename(legacy)
    assert store.symbols("5m") == ["BTC/USDT"]
    pd.testing.assert_frame_equal(store.read_one("BTC/USDT", "5m"), frame)
    assert Panel.from_store(store).symbols == ("BTC/USDT",)
    with pytest.raises(StoreError, match="BTC_USDT is not stored"):
        store.read_one("BTC_USDT", "5m")  # the old file records BTC/USDT: not BTC_USDT's
    more = make_candles(10, start="2021-01-01 03:20")
    assert store.write("BTC/USDT", "5m", more) == 50
    assert not legacy.exists() and store.path("BTC/USDT", "5m").exists()
    assert store.coverage("5m")["candles"].tolist() == [50]
