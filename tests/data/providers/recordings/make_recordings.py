"""Regenerate the recorded fixtures in this folder from the bundled real sample.

Run from the repository root: ``python tests/data/providers/recordings/make_recordings.py``.
Every number in the fixtures is a real Binance BTC/USDT or ETH/USDT 5m candle of the bundled
sample (``core_engine/sample_data``), written so it reads back bit-identical (JSON and CSV
floats are written with ``repr``, which round-trips float64 exactly).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from core_engine.data.providers import SampleProvider

HERE = Path(__file__).parent


def rows_ms(frame: pd.DataFrame) -> list[list]:
    ms = (frame["timestamp"].astype("int64") // 1_000_000).tolist()
    values = frame[["open", "high", "low", "close", "volume"]].to_numpy().tolist()
    return [[t, *v] for t, v in zip(ms, values, strict=True)]


def main() -> None:
    sample = SampleProvider()
    # Two days around the 2021-04-20 maintenance gap (01:55 -> 04:30, 30 candles missing).
    btc = sample.fetch_ohlcv("BTC/USDT", "5m", "2021-04-19", "2021-04-21")
    (HERE / "ccxt_binance_BTC_USDT_5m_2021-04-19.json").write_text(json.dumps(rows_ms(btc)))
    # The same candles in the shape of Nobitex's UDF answer (t in epoch seconds).
    secs = (btc["timestamp"].astype("int64") // 1_000_000_000).tolist()
    udf = {"s": "ok", "t": secs}
    for key, column in zip("ohlcv", ("open", "high", "low", "close", "volume"), strict=True):
        udf[key] = btc[column].tolist()
    (HERE / "nobitex_udf_BTCIRT_5_2021-04-19.json").write_text(json.dumps(udf))
    (HERE / "nobitex_udf_no_data.json").write_text(json.dumps({"s": "no_data"}))
    (HERE / "nobitex_udf_error.json").write_text(
        json.dumps({"s": "error", "errmsg": "Invalid symbol: FOOIRT"})
    )

    files = HERE / "files"
    files.mkdir(exist_ok=True)
    day = sample.fetch_ohlcv("ETH/USDT", "5m", "2021-05-19", "2021-05-20")  # the May crash
    # freqtrade JSON: [[ms, o, h, l, c, v], ...]
    (files / "ETH_USDT-5m.json").write_text(json.dumps(rows_ms(day)))
    # CSV with epoch milliseconds and lower-case columns.
    ms = day.assign(timestamp=day["timestamp"].astype("int64") // 1_000_000)
    ms.to_csv(files / "ETH_USDT-5m.csv", index=False, float_format=lambda v: repr(float(v)))
    # CSV with ISO-8601 text and exchange-style capitalised column names (needs a mapping).
    iso = day.assign(timestamp=day["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    iso = iso.rename(columns={"timestamp": "Date", "open": "Open", "high": "High", "low": "Low",
                              "close": "Close", "volume": "Volume BTC"})
    (files / "iso").mkdir(exist_ok=True)
    iso.to_csv(files / "iso" / "ETH_USDT-5m.csv", index=False, float_format=lambda v: repr(float(v)))
    # CSV with epoch seconds.
    secs = day.assign(timestamp=day["timestamp"].astype("int64") // 1_000_000_000)
    (files / "seconds").mkdir(exist_ok=True)
    secs.to_csv(files / "seconds" / "ETH_USDT-5m.csv", index=False, float_format=lambda v: repr(float(v)))
    back = pd.read_csv(files / "ETH_USDT-5m.csv")
    assert np.array_equal(back["close"].to_numpy(), day["close"].to_numpy())


if __name__ == "__main__":
    main()
