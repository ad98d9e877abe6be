"""One corrupt file breaks store-wide commands (issue 9): the store and the CLI name the broken
file, say how to remove or re-ingest it, and keep serving the others."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core_engine.cli import main
from core_engine.data import Panel
from core_engine.data.store import ParquetStore
from core_engine.errors import StoreError


@pytest.fixture
def damaged(tmp_path):
    """A store of the real sample (BTC, ETH; 2021-03-01 .. 03-04) plus two broken files:
    garbage bytes where SOL/USDT lives, and ADA/USDT with a NaN close in a valid footer."""
    store = ParquetStore(tmp_path / "store")
    assert main(["ingest", "--provider", "sample", "--store", str(store.root), "--symbols",
                 "BTC/USDT,ETH/USDT,ADA/USDT", "--start", "2021-03-01", "--end", "2021-03-04"]) == 0
    garbage = store.path("SOL/USDT", "5m")
    garbage.write_bytes(b"PAR1 this is not a parquet file")
    ada = store.path("ADA/USDT", "5m")
    table = pq.read_table(ada)
    close = table.column("close").to_numpy().copy()
    close[100] = np.nan
    table = table.set_column(4, "close", pa.array(close))
    pq.write_table(table, ada)
    return store, garbage, ada


def test_corrupt_file_breaks_store_commands_no_more_in_the_library(damaged, make_candles):
    store, garbage, ada = damaged
    with pytest.warns(UserWarning, match=f"{garbage}.*cannot be read as Parquet.*re-ingest") as caught:
        assert store.symbols("5m") == ["ADA/USDT", "BTC/USDT", "ETH/USDT"]  # ADA: footer fine
    assert type(caught[0].message).__name__ == "StoreWarning"
    with pytest.warns(UserWarning) as caught:
        coverage = store.coverage("5m")
    assert _named(caught, garbage) and _named(caught, ada)
    status = dict(zip(coverage["symbol"], coverage["status"], strict=True))
    assert status["BTC/USDT"] == status["ETH/USDT"] == "ok"
    assert status["ADA/USDT"].startswith("broken:") and "has close nan" in status["ADA/USDT"]
    assert status[garbage.name].startswith("broken:")
    assert coverage.set_index("symbol").loc["BTC/USDT", "candles"] == 3 * 288
    with pytest.warns(UserWarning) as caught:
        panel = Panel.from_store(store)
    assert _named(caught, garbage) and _named(caught, ada)
    assert panel.symbols == ("BTC/USDT", "ETH/USDT")
    for asked in ("ADA/USDT", "SOL/USDT"):
        with pytest.raises(StoreError, match="re-ingest"):
            store.read_panel([asked, "BTC/USDT"])
        with pytest.raises(StoreError, match="re-ingest"):
            store.read_one(asked)
    provider = _FrameProvider(make_candles(600, start="2021-03-01"))
    with pytest.warns(UserWarning, match=str(ada)):
        report = store.ingest(provider, ["ADA/USDT", "XRP/USDT"], "5m", "2021-03-01", "2021-03-02")
    assert "ADA/USDT" in report.skipped and str(ada) in report.skipped["ADA/USDT"]
    assert report.fetched["XRP/USDT"][0][2] == 288 and "skipped" in str(report)
    assert store.delete("ADA/USDT", "5m") and store.delete("SOL/USDT", "5m")  # the way out
    assert store.broken() == [] and len(Panel.from_store(store).symbols) == 3


def _named(caught, path) -> bool:
    return any(str(path) in str(w.message) and "re-ingest" in str(w.message) for w in caught)


class _FrameProvider:
    def __init__(self, frame):
        self.frame = frame

    def fetch_ohlcv(self, symbol, timeframe, start, end):
        ts = self.frame["timestamp"]
        return self.frame[(ts >= start) & (ts < end)].reset_index(drop=True)


def test_corrupt_file_breaks_store_commands_no_more_in_the_cli(damaged, capsys):
    store, garbage, ada = damaged
    root = str(store.root)
    assert main(["data", "info", "--store", root]) == 0
    out, err = capsys.readouterr()
    assert "BTC/USDT" in out and "ETH/USDT" in out and "broken" in out
    assert f"core-engine: warning: Store file {garbage}" in err and "Traceback" not in err
    assert main(["ingest", "--provider", "sample", "--store", root, "--symbols",
                 "ADA/USDT,XRP/USDT", "--start", "2021-03-01", "--end", "2021-03-02"]) == 0
    out, err = capsys.readouterr()
    assert "XRP/USDT: 2021-03-01 00:00 .. 2021-03-02 00:00 -> 288 candles" in out
    assert "ADA/USDT: skipped" in out and str(ada) in err and "Traceback" not in err
    code = main(["backtest", "--store", root, "--strategy", "momentum_rank", "--param",
                 "length=6", "--out", "-"])
    out, err = capsys.readouterr()
    assert code == 0 and "momentum_rank" in out and str(garbage) in err
    code = main(["backtest", "--store", root, "--symbols", "ADA/USDT,BTC/USDT", "--out", "-"])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("core-engine: error: Store file")
    assert str(ada) in lines[0] and "re-ingest" in lines[0]


def test_corrupt_file_breaks_store_commands_no_more_when_every_file_is_broken(tmp_path):
    store = ParquetStore(tmp_path)
    path = store.path("X/USDT", "5m")
    path.parent.mkdir(parents=True)
    pd.DataFrame({"a": [1.0]}).to_parquet(path)
    with pytest.warns(UserWarning, match=str(path)), pytest.raises(StoreError, match="No symbols"):
        store.read_panel()
    with pytest.warns(UserWarning):
        assert store.coverage()["status"].str.startswith("broken").all()
    (tmp_path / "notes").mkdir()  # a folder that is not a timeframe is ignored
    assert store.timeframes() == ["5m"]
