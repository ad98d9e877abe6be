"""W9 of BENCHMARKS.md for the bots of issue 13: the grid and DCA bots replayed on one year.

* W9-grid — ``GridTrader`` with 20 geometric levels from 50 to 150 on 1 symbol × 105,120
  seeded synthetic 5m candles (one year; the W9 generator of ``bench_replay.py``, seed 11,
  whose price stays inside 51..135): the replay jumps from fill to fill (target < 1 s
  warm), beside the same replay with ``skip=False`` (the bot called and the broker visited
  on every candle).
* W9-dca — ``DCATrader`` buying 10 USDT daily over the same year (target < 0.2 s warm),
  and again with a 2-day (576-candle) moving-average filter and a 10 % take-profit; each
  beside ``skip=False``.

The skipping replays must equal their ``skip=False`` twins (same fills; checked here). First
call reported apart (JIT or numba cache), then best of 3. The machine is shared: the load
average is printed; the lead re-measures on a quiet machine.

    python benchmarks/bench_bots.py [--candles 105120] [--slow-candles 105120]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_replay import synthetic_panel  # noqa: E402  (the W9 candles, one generator)

from core_engine.trading import SimBroker, replay  # noqa: E402
from core_engine.trading.bots import DCATrader, GridTrader  # noqa: E402


def timed(fn, repeats=3):
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    best = first
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return first, best, out


def compare(rows, label, bot, panel, slow_candles, target):
    f, b, fast = timed(lambda: replay(bot.clone(), panel, SimBroker(initial_cash=10_000.0)))
    rows.append((label, "replay, skipping", f, b, len(fast.fills), target))
    slow_panel = panel.slice_rows(0, min(slow_candles, panel.n_times))
    t0 = time.perf_counter()
    slow = replay(bot.clone(), slow_panel, SimBroker(initial_cash=10_000.0), skip=False)
    s = time.perf_counter() - t0
    rows.append((label, f"replay, every candle ({slow_panel.n_times:,})", s, s, len(slow.fills),
                 None))
    if slow_panel.n_times == panel.n_times:
        pd.testing.assert_frame_equal(fast.fills, slow.fills)
    return s / b * (panel.n_times / slow_panel.n_times), fast


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candles", type=int, default=105_120)
    ap.add_argument("--slow-candles", type=int, default=105_120,
                    help="candles of the skip=False runs (the slow reference)")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()}  (2 shared cores: noisy; best of 3)")
    panel = synthetic_panel(1, args.candles, seed=11)
    symbol = panel.symbols[0]
    rows: list = []
    grid = GridTrader(symbol=symbol, low=50, high=150, levels=20, spacing="geometric",
                      amount_per_level=400)
    grid_ratio, result = compare(rows, "W9-grid", grid, panel, args.slow_candles, 1.0)
    dca = DCATrader(symbol=symbol, amount=10, interval="daily")
    dca_ratio, _ = compare(rows, "W9-dca", dca, panel, args.slow_candles, 0.2)
    filtered = DCATrader(symbol=symbol, amount=10, interval="daily", ma_length=576,
                         take_profit_pct=10)
    compare(rows, "W9-dca", filtered, panel, args.slow_candles, None)
    rows[-2] = (rows[-2][0], "  ... below its 2-day average, 10 % TP", *rows[-2][2:])

    print(f"\n{'workload':<8} {'run':<40} {'first s':>8} {'best s':>8} {'fills':>7} {'target':>8}")
    for w, name, first, best, n, target in rows:
        verdict = "" if target is None else (f"<{target:g} " + ("PASS" if best < target
                                                               else "FAIL"))
        print(f"{w:<8} {name:<40} {first:8.3f} {best:8.3f} {n:7,} {verdict:>8}")
    report = grid.clone()
    replay(report, panel, SimBroker(initial_cash=10_000.0))
    r = report.report(float(panel.close[-1, 0]))
    print(f"\nW9-grid: {r['cycles']:,} cycles, grid profit {r['grid_profit']:,.2f}, inventory "
          f"P&L {r['inventory_pnl']:,.2f}; skipping {grid_ratio:.1f}x faster than every candle")
    print(f"W9-dca: skipping {dca_ratio:.1f}x faster than every candle")


if __name__ == "__main__":
    main()
