"""W6 of BENCHMARKS.md: load 100 symbols × 105,120 5m candles from the Parquet store into a Panel.

Peer, timed in the same run: pandas ``read_parquet`` of every file, ``concat`` into a long
frame and ``pivot`` to wide time × symbol arrays (what a pandas user writes).

    python benchmarks/bench_store.py [--symbols 100] [--candles 105120]

First call reported separately, then best of 3 (time.perf_counter).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core_engine.data import Panel
from core_engine.data.providers import SyntheticProvider
from core_engine.data.store import ParquetStore


def _timed(fn, repeats=3):
    start = time.perf_counter()
    out = fn()
    first = time.perf_counter() - start
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return out, first, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--candles", type=int, default=105_120)
    args = parser.parse_args()

    provider = SyntheticProvider(seed=42)
    start = pd.Timestamp("2022-01-01", tz="UTC")
    end = start + pd.Timedelta(minutes=5) * args.candles
    symbols = [f"S{i:03d}/USDT" for i in range(args.symbols)]
    with tempfile.TemporaryDirectory() as root:
        store = ParquetStore(root)
        t0 = time.perf_counter()
        for symbol in symbols:
            store.write(symbol, "5m", provider.fetch_ohlcv(symbol, "5m", start, end))
        build = time.perf_counter() - t0

        panel, ours_first, ours_best = _timed(lambda: Panel.from_store(store, symbols, "5m"))

        files = [store.path(s, "5m") for s in symbols]

        def pandas_way():
            long = pd.concat(
                [pd.read_parquet(f).assign(symbol=s) for s, f in zip(symbols, files, strict=True)],
                ignore_index=True,
            )
            wide = long.pivot(index="timestamp", columns="symbol")
            return {c: wide[c][symbols].to_numpy() for c in ("open", "high", "low", "close", "volume")}

        wide, pandas_first, pandas_best = _timed(pandas_way)
        np.testing.assert_array_equal(wide["close"], panel.close)  # same result, or the timing is moot

        size_mb = sum(Path(f).stat().st_size for f in files) / 1e6
    print(f"W6: {args.symbols} symbols × {args.candles:,} 5m candles "
          f"({panel.nbytes / 1e6:,.0f} MB in memory, {size_mb:,.0f} MB of Parquet; store built in {build:.1f} s)")
    print(f"{'implementation':<38}{'first call s':>14}{'best of 3 s':>14}{'ratio':>10}")
    print(f"{'core_engine Panel.from_store':<38}{ours_first:>14.3f}{ours_best:>14.3f}{1.0:>10.1f}")
    print(f"{'pandas read_parquet + concat + pivot':<38}{pandas_first:>14.3f}{pandas_best:>14.3f}"
          f"{pandas_best / ours_best:>10.1f}")


if __name__ == "__main__":
    main()
