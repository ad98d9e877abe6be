"""W6 and W6b of BENCHMARKS.md: 100 symbols × 105,120 5m candles into a Panel.

W6: Parquet store → Panel (every file's footer and rows checked on the way). Peer, timed in
the same run: pandas ``read_parquet`` of every file, ``concat`` into a long frame and
``pivot`` to wide time × symbol arrays (what a pandas user writes).

W6b: ``Panel.from_frames`` of 100 candle frames, validation included. Peer: pandas ``concat``
of the frames and ``pivot`` (no validation at all).

Also timed: the Panel constructor's candle check of the same arrays and
``Panel.discontinuities()`` (the data-quality scan the backtest report calls).

    python benchmarks/bench_store.py [--symbols 100] [--candles 105120]

First call reported separately (it includes loading the numba kernels), then best of 3
(time.perf_counter). The machine's load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core_engine.data import FIELDS, Panel
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


def _pivot(long: pd.DataFrame, symbols: list[str]) -> dict[str, np.ndarray]:
    wide = long.pivot(index="timestamp", columns="symbol")
    return {c: wide[c][symbols].to_numpy() for c in FIELDS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--candles", type=int, default=105_120)
    args = parser.parse_args()

    provider = SyntheticProvider(seed=42)
    start = pd.Timestamp("2022-01-01", tz="UTC")
    end = start + pd.Timedelta(minutes=5) * args.candles
    symbols = [f"S{i:03d}/USDT" for i in range(args.symbols)]
    frames = {symbol: provider.fetch_ohlcv(symbol, "5m", start, end) for symbol in symbols}
    rows = []
    with tempfile.TemporaryDirectory() as root:
        store = ParquetStore(root)
        t0 = time.perf_counter()
        for symbol, frame in frames.items():
            store.write(symbol, "5m", frame)
        build = time.perf_counter() - t0

        panel, *times = _timed(lambda: Panel.from_store(store, symbols, "5m"))
        rows.append(("W6 core_engine Panel.from_store", *times))
        files = [store.path(s, "5m") for s in symbols]

        def pandas_read():
            return _pivot(pd.concat([pd.read_parquet(f).assign(symbol=s)
                                     for s, f in zip(symbols, files, strict=True)],
                                    ignore_index=True), symbols)

        wide, *times = _timed(pandas_read)
        rows.append(("W6 pandas read_parquet + concat + pivot", *times))
        np.testing.assert_array_equal(wide["close"], panel.close)  # same result, or moot
        size_mb = sum(Path(f).stat().st_size for f in files) / 1e6

    built, *times = _timed(lambda: Panel.from_frames(frames, "5m"))
    rows.append(("W6b core_engine Panel.from_frames", *times))

    def pandas_frames():
        return _pivot(pd.concat([f.assign(symbol=s) for s, f in frames.items()],
                                ignore_index=True), symbols)

    wide, *times = _timed(pandas_frames)
    rows.append(("W6b pandas concat + pivot (no checks)", *times))
    np.testing.assert_array_equal(wide["close"], built.close)
    arrays = {name: np.array(getattr(built, name), order="F") for name in FIELDS}
    _, *times = _timed(lambda: Panel(built.index, built.symbols, "5m", **arrays))
    rows.append(("Panel(...) constructor check", *times))
    _, *times = _timed(built.discontinuities)
    rows.append(("Panel.discontinuities()", *times))

    print(f"W6/W6b: {args.symbols} symbols × {args.candles:,} 5m candles "
          f"({panel.nbytes / 1e6:,.0f} MB in memory, {size_mb:,.0f} MB of Parquet; store built "
          f"in {build:.1f} s); load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'implementation':<44}{'first call s':>14}{'best of 3 s':>14}{'ratio':>10}")
    for k, (label, first, best) in enumerate(rows):
        ours = rows[k - 1][2] if label.startswith(("W6 pandas", "W6b pandas")) else best
        print(f"{label:<44}{first:>14.3f}{best:>14.3f}{best / ours:>10.1f}")


if __name__ == "__main__":
    main()
