"""W4 and W5 of BENCHMARKS.md: the walk-forward backtest end to end from an in-memory panel.

* W4 — every 2h, rank the universe by 24-candle momentum (data <= t only), top 3, hold 4h,
  net return after 10 bps per side and max drawdown in the window.
* W5 — the full walk-forward: baseline MACD/RSI confluence (its ATR/price gate) plus a
  MaxATRPct gate, top 3, stop-loss / take-profit / trailing stop, 4h window, 2h shift.
  The baseline declares ``row_local = True`` (its score at row i reads row i only, verified
  by ``check_strategy``), so the engine scores the decision rows only. W5-all is the same
  job with that switched off (every row scored), to show what it saves.

Data: seeded synthetic 5m OHLCV (geometric random walk, wicks, lognormal volume), generated
inline: 100 symbols × 105,120 candles (one year) by default.

Ours: ``walk_forward`` (features + scores + gates + allocation + numba simulation + metrics),
first call reported separately (includes JIT compilation or numba cache loading), then best
of 3. Peer, timed in the same run: the same job written the way a pandas user would — a loop
over decision times that recomputes the indicators with pandas on a lookback slice of the
wide frames, ranks, and walks each pick's window candle by candle. The peer is timed on
``--pandas-decisions`` evenly spaced decision times and extrapolated linearly to all of them
(printed as such). Peak memory: ``tracemalloc`` over one warm call, against the panel's raw
size (five float64 arrays).

    python benchmarks/bench_backtest.py [--symbols 100] [--candles 105120]
                                        [--pandas-decisions 150] [--lookback 300]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import pandas as pd

from core_engine.backtest import walk_forward
from core_engine.data.panel import Panel
from core_engine.features import Momentum
from core_engine.features.cache import compute_features
from core_engine.risk import ExitRules, MaxATRPct, apply_gates
from core_engine.strategies import MacdRsiConfluence
from core_engine.strategies.base import Strategy

WINDOW, SHIFT, FEE = 48, 24, 10 / 1e4  # candles, candles, per side
EXITS = ExitRules(stop_loss_pct=2.0, take_profit_pct=3.0, trailing_pct=1.5)


class PureMomentum(Strategy):
    """W4: score = return over the last ``length`` candles (every symbol is a candidate)."""

    name = "bench_pure_momentum"

    def __init__(self, length=24):
        self.length = length

    def features(self):
        return [Momentum(length=self.length)]

    def score(self, features, panel):
        return features[Momentum(length=self.length).columns[0]]


def synthetic_panel(n_symbols: int, n_candles: int, seed: int = 7) -> Panel:
    rng = np.random.default_rng(seed)
    vol = rng.uniform(0.001, 0.004, n_symbols)
    close = np.empty((n_candles, n_symbols), order="F")
    for j in range(n_symbols):  # column by column keeps the temporaries small
        close[:, j] = 100.0 * np.exp(np.cumsum(rng.standard_normal(n_candles) * vol[j]))
    open_ = np.empty_like(close)
    open_[0] = 100.0
    open_[1:] = close[:-1]
    high = np.maximum(open_, close) * (1 + np.abs(rng.standard_normal(close.shape)) * vol * 0.6)
    low = np.minimum(open_, close) * (1 - np.abs(rng.standard_normal(close.shape)) * vol * 0.6)
    volume = rng.lognormal(10.0, 0.6, close.shape)
    index = pd.date_range("2022-01-01", periods=n_candles, freq="5min", tz="UTC")
    return Panel(index=index, symbols=tuple(f"S{j:03d}/USDT" for j in range(n_symbols)),
                 timeframe="5m", open=open_, high=high, low=low, close=close, volume=volume)


def timed(fn, repeats=3):
    start = time.perf_counter()
    out = fn()
    first = time.perf_counter() - start
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, first, best


def peak_memory(fn) -> int:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


# ---------------------------------------------------------------------- pandas-style peers
def decision_rows(n_candles: int, lookback: int) -> np.ndarray:
    """Rows i whose candle closes on the 2h grid, after warm-up, with a full window after."""
    rows = np.arange(SHIFT - 1, n_candles, SHIFT)
    return rows[(rows >= lookback) & (rows + WINDOW + 1 < n_candles)]


def simulate_pandas(o, h, lo, c, i, j, exits: ExitRules | None):
    """One pick, candle by candle with Python scalars (what a hand-written loop does)."""
    entry = o[i + 1, j]
    stop = entry * (1 - exits.stop_loss_pct / 100) if exits else None
    target = entry * (1 + exits.take_profit_pct / 100) if exits else None
    best, lowest = entry, entry
    for k in range(i + 1, i + WINDOW + 1):
        level = stop
        if exits:
            level = max(stop, best * (1 - exits.trailing_pct / 100))
            if lo[k, j] <= level:
                px = min(o[k, j], level)
                return px * (1 - FEE) / (entry * (1 + FEE)) - 1, 1 - min(lowest, px) / entry
            if h[k, j] >= target:
                px = max(o[k, j], target)
                return px * (1 - FEE) / (entry * (1 + FEE)) - 1, 1 - min(lowest, lo[k, j]) / entry
        lowest = min(lowest, lo[k, j])
        best = max(best, h[k, j])
    px = o[i + WINDOW + 1, j]
    return px * (1 - FEE) / (entry * (1 + FEE)) - 1, 1 - min(lowest, px) / entry


def pandas_w4(frames: dict, rows: np.ndarray) -> list:
    close, o, h, lo, c = (frames[k] for k in ("close", "open", "high", "low", "close"))
    arrays = [f.to_numpy() for f in (o, h, lo, c)]
    out = []
    for i in rows:
        window = close.iloc[i - 24:i + 1]
        momentum = window.iloc[-1] / window.iloc[0] - 1.0
        for sym in momentum.nlargest(3).index:
            out.append(simulate_pandas(*arrays, i, close.columns.get_loc(sym), None))
    return out


def pandas_w5(frames: dict, rows: np.ndarray, lookback: int) -> list:
    o, h, lo, c, v = (frames[k] for k in ("open", "high", "low", "close", "volume"))
    arrays = [f.to_numpy() for f in (o, h, lo, c)]
    out = []
    for i in rows:
        sl = slice(i - lookback + 1, i + 1)
        close, high, low, volume = c.iloc[sl], h.iloc[sl], lo.iloc[sl], v.iloc[sl]
        delta = close.diff()
        gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
        loss = (-delta).clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
        rsi = 100 - 100 / (1 + gain / loss)
        line = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
        hist = line - line.ewm(span=9, adjust=False).mean()
        prev_close = close.shift(1)
        tr = pd.concat([high - low, (high - prev_close).abs(), (low - prev_close).abs()]).groupby(level=0).max()
        atr_pct = tr.ewm(alpha=1 / 14, adjust=False).mean().iloc[-1] / close.iloc[-1] * 100
        momentum = close.iloc[-1] / close.iloc[-25] - 1
        vz = (volume - volume.rolling(20).mean()) / volume.rolling(20).std()
        slope = hist.iloc[-1] - hist.iloc[-2]
        r = rsi.iloc[-1]
        cand = (atr_pct <= 1.5) & (atr_pct <= 1.2) & (slope > 0) & (r >= 40) & (r <= 65)
        if cand.sum() == 0:
            continue
        m, z = momentum[cand], vz.iloc[-1][cand]
        score = 0.5 * (m - m.mean()) / m.std(ddof=0) + 0.5 * (z - z.mean()) / z.std(ddof=0)
        for sym in score.fillna(0.0).nlargest(3).index:
            out.append(simulate_pandas(*arrays, i, c.columns.get_loc(sym), EXITS))
    return out


def stages(panel: Panel, name: str) -> str:
    """Best-of-3 time of each stage of one run, measured on its own."""
    from core_engine.backtest import engine

    strategy = PureMomentum(length=24) if name == "W4" else MacdRsiConfluence()
    gates = [] if name == "W4" else [MaxATRPct(max_atr_pct=1.2)]
    exits = None if name == "W4" else EXITS
    computers = strategy.features() + [c for g in gates for c in g.features()]
    unique = list({repr(c): c for c in computers}.values())
    t_feat = min(_once(lambda: compute_features(unique, panel)) for _ in range(3))
    features = compute_features(unique, panel)
    t_score = min(_once(lambda: strategy.score_panel(panel, features=features)) for _ in range(3))
    t_gates = min(_once(lambda: apply_gates(gates, features, panel)) for _ in range(3))
    cfg = engine._validate("4h", "2h", None, None, 10, 0, 3, None, gates, exits, "slices", 0)
    inputs = engine.compute_inputs(panel, strategy, gates=cfg["gates"],
                                   allocator=cfg["allocator"], exits=exits)

    def engine_only():  # schedule, allocation, simulation, trades/equity/metrics
        sched = engine.decision_schedule(panel.index.asi8, panel.step_ns,
                                         window_ns=cfg["window_ns"], shift_ns=cfg["shift_ns"],
                                         lookback=inputs["lookback"], entry_open=panel.open)
        picks = engine.allocate_at(inputs, sched.rows, cfg["allocator"], panel.symbols)
        records = engine.simulate_picks(panel, picks, window_candles=sched.window_candles,
                                        fee_bps=10, exits=exits, atr=inputs["atr"])
        run = {"inputs": inputs, "schedule": sched, "picks": picks, "records": records}
        return engine._assemble(panel, strategy, cfg, run, "slices")

    t_engine = min(_once(engine_only) for _ in range(3))
    each = ", ".join(f"{c!r} {min(_once(lambda c=c: compute_features([c], panel)) for _ in range(3)):.3f} s"
                     for c in unique)
    return (f"features {t_feat:.3f} s, strategy score (all rows) {t_score:.3f} s, "
            f"gates {t_gates:.3f} s, engine (schedule, allocation, simulation, trades, "
            f"equity, metrics) {t_engine:.3f} s\n    each feature alone: {each}")


def _once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--candles", type=int, default=105_120)
    parser.add_argument("--pandas-decisions", type=int, default=150)
    parser.add_argument("--lookback", type=int, default=300,
                        help="candles of history the pandas peer recomputes at each decision")
    args = parser.parse_args()

    t0 = time.perf_counter()
    panel = synthetic_panel(args.symbols, args.candles)
    print(f"panel: {panel!r}, raw size {panel.nbytes / 1e6:,.0f} MB "
          f"(built in {time.perf_counter() - t0:.1f} s)")

    every_row = MacdRsiConfluence()
    every_row.row_local = False  # score all 105,120 rows, not only the decision rows
    jobs = {
        "W4": lambda: walk_forward(panel, PureMomentum(length=24), window="4h", shift="2h",
                                   fee_bps=10, max_positions=3),
        "W5": lambda: walk_forward(panel, MacdRsiConfluence(), window="4h", shift="2h",
                                   fee_bps=10, max_positions=3, exits=EXITS,
                                   gates=[MaxATRPct(max_atr_pct=1.2)]),
        "W5-all": lambda: walk_forward(panel, every_row, window="4h", shift="2h",
                                      fee_bps=10, max_positions=3, exits=EXITS,
                                      gates=[MaxATRPct(max_atr_pct=1.2)]),
    }
    frames = {k: pd.DataFrame(getattr(panel, k), columns=list(panel.symbols))
              for k in ("open", "high", "low", "close", "volume")}
    rows = {"W4": decision_rows(panel.n_times, 24),
            "W5": decision_rows(panel.n_times, args.lookback)}
    rows["W5-all"] = rows["W5"]
    peers = {"W4": lambda r: pandas_w4(frames, r),
             "W5": lambda r: pandas_w5(frames, r, args.lookback)}

    table = []
    stage_lines = []
    for name, job in jobs.items():
        result, first, best = timed(job)
        peak = peak_memory(job)
        all_rows = rows[name]
        subset = all_rows[np.linspace(0, all_rows.size - 1,
                                      min(args.pandas_decisions, all_rows.size)).astype(int)]
        if name == "W5-all":  # the same peer job as W5: reuse its time
            peer_time = table[-1][3]
        else:
            start = time.perf_counter()
            peers[name](subset)
            peer_time = (time.perf_counter() - start) * all_rows.size / subset.size
        m = result.metrics
        print(f"\n{name}: {m['trades']:,} trades over {m['decisions']:,} decision times; "
              f"avg return {m['avg_return_pct']:+.4f} %, exits {m['exit_reasons']}")
        print(f"{name} pandas peer timed on {subset.size} of {all_rows.size:,} decision times, "
              f"extrapolated x{all_rows.size / subset.size:.1f}")
        table.append((name, first, best, peer_time, peer_time / best, peak / 1e6,
                      peak / panel.nbytes))
        if name != "W5-all":
            stage_lines.append(f"{name}: " + stages(panel, name))

    print(f"\n{'workload':<9}{'first call s':>13}{'warm best s':>13}{'pandas s':>11}"
          f"{'ratio':>9}{'peak MB':>10}{'peak/panel':>12}")
    for name, first, best, peer, ratio, peak_mb, rel in table:
        print(f"{name:<9}{first:>13.3f}{best:>13.3f}{peer:>11.1f}{ratio:>8.0f}x"
              f"{peak_mb:>10.0f}{rel:>11.2f}x")
    print("W5-all = W5 with row-local scoring switched off (the strategy scores every row);"
          " identical trades.")
    print("\nwhere the warm time goes (each stage timed on its own, best of 3):")
    for line in stage_lines:
        print("  " + line)


if __name__ == "__main__":
    main()
