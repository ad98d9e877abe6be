"""W1 and W2 of BENCHMARKS.md: the core indicator set on one long series and on a panel.

* W1 — one series of 1,000,000 5m candles: RSI(14), EMA(12), EMA(26), MACD(12,26,9)
  histogram, ATR(14), Bollinger bandwidth(20, 2).
* W2 — the same set for 100 symbols × 105,120 candles (one year of 5m).

Data: seeded synthetic geometric random walk OHLCV (wicks, lognormal volume), generated
inline. Ours: :func:`core_engine.features.compute_features` (all six features fused into one
threaded pass over symbols × features; ``numba.get_num_threads()`` threads), first call
reported separately (JIT compilation or numba cache load), then best of ``--repeat``; also
with the previous call's arrays passed back as ``out=`` (buffer reuse: no page faults for
fresh allocations, which matter most on W2's 84 MB outputs). Peers, timed in the same run, best of ``--repeat`` after one warm-up call:
TA-Lib (a loop over symbols for W2), pandas-ta-classic (as a user calls it, its defaults),
plain pandas (``ewm``/``rolling``; on the wide frame for W2). Each peer computes the same
outputs (the bandwidth from the bands).

    python benchmarks/bench_features.py [--w1-candles 1000000] [--symbols 100]
                                        [--candles 105120] [--repeat 3] [--skip-slow]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numba
import numpy as np
import pandas as pd
import talib

from core_engine.data.panel import Panel
from core_engine.features import ATR, EMA, MACD, RSI, BollingerBands, compute_features
from core_engine.features.pandas_ta import import_pandas_ta

W1_SET = [RSI(14), EMA(12), EMA(26), MACD(12, 26, 9), ATR(14), BollingerBands(20, 2.0)]


def synthetic_ohlcv(n_candles: int, n_symbols: int, seed: int = 42) -> dict[str, np.ndarray]:
    """(T, N) Fortran OHLCV arrays: geometric random walk, realistic wicks and volume."""
    rng = np.random.default_rng(seed)
    shape = (n_candles, n_symbols)
    log_returns = rng.normal(0.0, 0.002, shape)
    close = 100.0 * np.exp(np.cumsum(log_returns, axis=0))
    open_ = np.vstack([np.full((1, n_symbols), 100.0), close[:-1]])
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.001, shape)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.001, shape)))
    volume = rng.lognormal(3.0, 1.0, shape)
    return {k: np.asfortranarray(v) for k, v in
            dict(open=open_, high=high, low=low, close=close, volume=volume).items()}


def as_panel(arrays: dict[str, np.ndarray]) -> Panel:
    n_times, n_symbols = arrays["close"].shape
    index = pd.date_range("2020-01-01", periods=n_times, freq="5min", tz="UTC")
    return Panel(index, tuple(f"S{j:03d}" for j in range(n_symbols)), "5m", **arrays)


def best_of(function, repeat: int, warm: bool = True) -> tuple[float, float]:
    """(first call seconds, best of ``repeat`` seconds)."""
    start = time.perf_counter()
    function()
    first = time.perf_counter() - start
    best = first if not warm else float("inf")
    for _ in range(repeat if warm else 0):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return first, best


# ---------------------------------------------------------------------- peers (one series)
def talib_series(high, low, close):
    rsi = talib.RSI(close, 14)
    ema12 = talib.EMA(close, 12)
    ema26 = talib.EMA(close, 26)
    _, _, hist = talib.MACD(close, 12, 26, 9)
    atr = talib.ATR(high, low, close, 14)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0)
    return rsi, ema12, ema26, hist, atr, (upper - lower) / middle


def pandas_ta_series(ta, frame: pd.DataFrame):
    close, high, low = frame["close"], frame["high"], frame["low"]
    return (ta.rsi(close, length=14), ta.ema(close, length=12), ta.ema(close, length=26),
            ta.macd(close, 12, 26, 9), ta.atr(high, low, close, length=14),
            ta.bbands(close, length=20, std=2.0))


def pandas_plain(high: pd.DataFrame, low: pd.DataFrame, close: pd.DataFrame):
    """The set with pandas ewm/rolling (works on a Series or a wide frame)."""
    diff = close.diff()
    gain = diff.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-diff).clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    rsi = 100 * gain / (gain + loss)
    ema12 = close.ewm(span=12, adjust=False).mean()
    ema26 = close.ewm(span=26, adjust=False).mean()
    line = ema12 - ema26
    hist = line - line.ewm(span=9, adjust=False).mean()
    previous = close.shift(1)
    true_range = np.maximum(high - low, np.maximum((high - previous).abs(), (low - previous).abs()))
    atr = true_range.ewm(alpha=1 / 14, adjust=False).mean()
    mean = close.rolling(20).mean()
    std = close.rolling(20).std(ddof=0)
    bandwidth = 4 * std / mean
    return rsi, ema12, ema26, hist, atr, bandwidth


# ---------------------------------------------------------------------- workloads
def run_w1(n_candles: int, repeat: int, skip_slow: bool) -> list[tuple[str, float, float]]:
    arrays = synthetic_ohlcv(n_candles, 1)
    panel = as_panel(arrays)
    high, low, close = (arrays[k][:, 0].copy() for k in ("high", "low", "close"))
    rows = []
    first, best = best_of(lambda: compute_features(W1_SET, panel), repeat)
    rows.append(("core_engine", first, best))
    buffers = compute_features(W1_SET, panel)
    first, best = best_of(lambda: compute_features(W1_SET, panel, out=buffers), repeat)
    rows.append(("core_engine, reused out buffers", first, best))
    rows.append(("TA-Lib", *best_of(lambda: talib_series(high, low, close), repeat)))
    frame = pd.DataFrame({"high": high, "low": low, "close": close})
    if not skip_slow:
        ta = import_pandas_ta()
        rows.append(("pandas-ta-classic", *best_of(lambda: pandas_ta_series(ta, frame), repeat)))
    rows.append(("pandas ewm/rolling", *best_of(
        lambda: pandas_plain(frame["high"], frame["low"], frame["close"]), repeat)))
    return rows


def run_w2(n_candles: int, n_symbols: int, repeat: int, skip_slow: bool):
    arrays = synthetic_ohlcv(n_candles, n_symbols, seed=7)
    panel = as_panel(arrays)
    rows = []
    rows.append(("core_engine", *best_of(lambda: compute_features(W1_SET, panel), repeat)))
    buffers = compute_features(W1_SET, panel)
    rows.append(("core_engine, reused out buffers",
                 *best_of(lambda: compute_features(W1_SET, panel, out=buffers), repeat)))
    columns = [tuple(np.ascontiguousarray(arrays[f][:, j]) for f in ("high", "low", "close"))
               for j in range(n_symbols)]

    def talib_loop():
        return [talib_series(*c) for c in columns]

    rows.append(("TA-Lib loop", *best_of(talib_loop, repeat)))
    if not skip_slow:
        ta = import_pandas_ta()
        frames = [pd.DataFrame({"high": h, "low": lo, "close": c}) for h, lo, c in columns]
        # one timed call: it takes ~10 s (the warm-up is the W1 run)
        rows.append(("pandas-ta-classic loop (1 call)",
                     *best_of(lambda: [pandas_ta_series(ta, f) for f in frames], 0, warm=False)))
    wide = {f: pd.DataFrame(arrays[f]) for f in ("high", "low", "close")}
    rows.append(("pandas on the wide frame",
                 *best_of(lambda: pandas_plain(wide["high"], wide["low"], wide["close"]), repeat)))
    return rows


def print_table(title: str, rows) -> None:
    ours = rows[0][2]
    print(f"\n{title}")
    print(f"{'implementation':34s} {'first call s':>13s} {'best s':>10s} {'× ours':>9s}")
    for name, first, best in rows:
        print(f"{name:34s} {first:13.4f} {best:10.4f} {best / ours:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--w1-candles", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--candles", type=int, default=105_120)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-slow", action="store_true", help="skip pandas-ta-classic")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # pandas-ta-classic's pandas deprecation warnings
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"numba threads: {numba.get_num_threads()}; TA-Lib {talib.__ta_version__.decode()}; "
          f"load average before: {load} (ours uses every core: other load slows it first)")
    print_table(f"W1: one series × {args.w1_candles:,} candles (ratio: time / core_engine)",
                run_w1(args.w1_candles, args.repeat, args.skip_slow))
    print_table(f"W2: {args.symbols} symbols × {args.candles:,} candles",
                run_w2(args.candles, args.symbols, args.repeat, args.skip_slow))


if __name__ == "__main__":
    main()
