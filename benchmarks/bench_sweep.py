"""W7 of BENCHMARKS.md: a sweep of 200 configurations of the baseline on 100 × 105,120 candles.

The space: RSI band (``rsi_low`` 35..55, ``rsi_high`` 65) × ATR cap (``max_atr_pct``) ×
stop-loss (``exits.stop_loss_pct``), 5 × 5 × 8 = 200 configurations of the MACD/RSI
confluence baseline, 4h window, 2h shift, 10 bps per side, with a 3 % take-profit.

Ours: ``Sweep(...).run()`` on the default ``LocalExecutor`` (a process per core; the time
includes starting the workers and writing the panel to shared memory), and on one process
(``LocalExecutor(1)``). The 25 (RSI band, ATR cap) groups share features; each group's 8 stops
share scores and picks and are simulated together. First run reported separately (JIT cache
loading), then best of ``--repeats``.

Peers, timed in the same run:

* the naive loop — independent ``walk_forward`` calls, one per configuration, nothing
  shared; timed on ``--loop-configs`` configurations and extrapolated linearly to 200
  (printed as such);
* the same loop with one shared ``FeatureCache`` (features computed once, everything else
  per configuration), extrapolated the same way;
* with vectorbt importable (``pip install 'core-engine[bench]'``), a vectorbt parameter sweep
  of the W3 SMA crossover (``--vbt-configs`` (fast, slow) pairs with
  ``Portfolio.from_signals``), as configurations per second; otherwise "not installed".

With ``--portfolio`` (off by default, not part of W7): a portfolio-mode sweep of 20
configurations (cooldown × fixed-fraction size × stop, one account each) on the default
executor, beside the loop of independent ``walk_forward(mode="portfolio")`` calls. Portfolio
configurations are not batched (each is its own account simulation); they share features
and scores within a worker.

    python benchmarks/bench_sweep.py [--symbols 100] [--candles 105120] [--loop-configs 10]
                                     [--repeats 3] [--vbt-configs 10] [--portfolio]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from bench_backtest import synthetic_panel

from core_engine.backtest import walk_forward
from core_engine.features.cache import FeatureCache
from core_engine.optimize import LocalExecutor, Sweep
from core_engine.risk import ExitRules, FixedFraction
from core_engine.strategies import MacdRsiConfluence

SPACE = {"rsi_low": [35, 40, 45, 50, 55], "max_atr_pct": [0.5, 0.75, 1.0, 1.5, 2.0],
         "exits.stop_loss_pct": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0]}
BACKTEST = {"window": "4h", "shift": "2h", "fee_bps": 10, "exits": ExitRules(take_profit_pct=3.0)}


def timed_runs(fn, repeats: int) -> tuple[object, float, float]:
    start = time.perf_counter()
    out = fn()
    first = time.perf_counter() - start
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, first, best


def naive_loop(sweep: Sweep, points: list[dict], cache: FeatureCache | None) -> float:
    start = time.perf_counter()
    for point in points:
        spec = sweep.build(point)
        walk_forward(sweep.panel, spec.strategy, **spec.backtest, cache=cache)
    return time.perf_counter() - start


def portfolio_rows(panel, loop_configs: int, repeats: int) -> list[tuple]:
    """The optional portfolio-mode sweep and its naive loop (see the module docstring)."""
    space = {"rules.cooldown": ["2h", "8h"], "sizing.pct": [10.0, 20.0, 30.0, 40.0, 50.0],
             "exits.stop_loss_pct": [1.0, 3.0]}
    sweep = Sweep(MacdRsiConfluence, space, panel, mode="portfolio",
                  sizing=FixedFraction(pct=10.0), **BACKTEST)
    points = sweep.points()
    sweep.fingerprint  # noqa: B018 - hashed once, outside the timings
    result, first, best = timed_runs(
        lambda: sweep.run(executor=LocalExecutor(), progress=False), repeats)
    assert result.n_trials == len(points), result.table["error"].dropna().head()
    subset = points[:: max(1, len(points) // loop_configs)][:loop_configs]
    naive_loop(sweep, subset[:1], None)
    loop = naive_loop(sweep, subset, None) / len(subset) * len(points)
    return [(f"portfolio sweep ({len(points)}), LocalExecutor", best, len(points), loop,
             f"first {first:.1f} s"),
            ("loop of independent portfolio walk_forward", loop, len(points), loop,
             f"extrapolated from {len(subset)} configurations")]


def vectorbt_sweep(panel, n_configs: int) -> str:
    try:
        import pandas as pd
        import vectorbt as vbt
    except ImportError:
        return "not installed"
    close = pd.DataFrame(panel.close, index=panel.index, columns=list(panel.symbols))
    pairs = [(f, s) for f in (5, 10, 15, 20, 25) for s in (40, 50, 60, 80, 100)][:n_configs]
    start = time.perf_counter()
    fast = vbt.MA.run(close, window=[p[0] for p in pairs], short_name="fast")
    slow = vbt.MA.run(close, window=[p[1] for p in pairs], short_name="slow")
    entries, exits = fast.ma_crossed_above(slow), fast.ma_crossed_below(slow)
    portfolio = vbt.Portfolio.from_signals(close, entries, exits, fees=0.001)
    portfolio.total_return()
    elapsed = time.perf_counter() - start
    return f"{len(pairs) / elapsed:,.2f} configs/s ({len(pairs)} SMA crossovers, {elapsed:.1f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--candles", type=int, default=105_120)
    parser.add_argument("--loop-configs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vbt-configs", type=int, default=10)
    parser.add_argument("--portfolio", action="store_true",
                        help="also time a portfolio-mode sweep of 20 configurations")
    args = parser.parse_args()

    panel = synthetic_panel(args.symbols, args.candles)
    sweep = Sweep(MacdRsiConfluence, SPACE, panel, **BACKTEST)
    points = sweep.points()
    n = len(points)
    sweep.fingerprint  # noqa: B018 - hashed once, outside the timings (a sweep hashes the data once)
    workers = LocalExecutor().n_workers
    print(f"W7: {n} configurations of macd_rsi_confluence (RSI band × ATR cap × stop) on "
          f"{args.symbols} × {args.candles:,} candles, {workers} cores")

    result, first_pool, best_pool = timed_runs(
        lambda: sweep.run(executor=LocalExecutor(), progress=False), args.repeats)
    assert result.n_trials == n, result.table["error"].dropna().head()
    _, first_one, best_one = timed_runs(
        lambda: sweep.run(executor=LocalExecutor(1), progress=False), args.repeats)
    subset = points[:: max(1, n // args.loop_configs)][: args.loop_configs]
    naive_loop(sweep, subset[:1], None)  # JIT warm-up of the loop's path
    loop = naive_loop(sweep, subset, None) / len(subset) * n
    cached = naive_loop(sweep, subset, FeatureCache()) / len(subset) * n

    rows = [
        (f"sweep, LocalExecutor ({workers} processes)", best_pool, f"first {first_pool:.1f} s"),
        ("sweep, one process", best_one, f"first {first_one:.1f} s"),
        ("loop of independent walk_forward calls", loop,
         f"extrapolated from {len(subset)} configurations"),
        ("the loop with one shared FeatureCache", cached,
         f"extrapolated from {len(subset)} configurations"),
    ]
    print(f"\n{'':44s} {'seconds':>9s} {'configs/s':>10s} {'vs loop':>8s}")
    for label, seconds, note in rows:
        print(f"{label:44s} {seconds:9.2f} {n / seconds:10.2f} {loop / seconds:7.1f}x  ({note})")
    if args.portfolio:
        print("\nportfolio mode (not W7):")
        for label, seconds, count, naive, note in portfolio_rows(panel, args.loop_configs,
                                                                 args.repeats):
            print(f"{label:44s} {seconds:9.2f} {count / seconds:10.2f} "
                  f"{naive / seconds:7.1f}x  ({note})")
    print(f"\nvectorbt W3 crossover parameter sweep: {vectorbt_sweep(panel, args.vbt_configs)}")
    print(f"load average: {' '.join(open('/proc/loadavg').read().split()[:3])}"
          if os.path.exists("/proc/loadavg") else "")
    print(f"target: >= 10x the naive loop; measured {loop / best_pool:.1f}x")


if __name__ == "__main__":
    main()
