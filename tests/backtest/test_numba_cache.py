"""A second process must not recompile the backtest kernels: numba's on-disk cache serves them."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import numpy as np, pandas as pd
from core_engine.backtest import walk_forward
from core_engine.data import Panel
from core_engine.risk import ExitRules
from core_engine.strategies.base import Strategy

class Flat(Strategy):
    name = "test_flat"
    def score(self, features, panel):
        return np.where(np.isnan(panel.close), np.nan, 1.0)

n = 400
rng = np.random.default_rng(0)
close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 2)), axis=0))
idx = pd.date_range("2021-01-01", periods=n, freq="5min", tz="UTC")
panel = Panel(index=idx, symbols=("A", "B"), timeframe="5m", open=close, high=close * 1.01,
              low=close * 0.99, close=close, volume=np.ones((n, 2)))
walk_forward(panel, Flat(), exits=ExitRules(stop_loss_pct=1.0, trailing_pct=0.5))
"""


def _run(debug: bool) -> str:
    env = dict(os.environ)
    if debug:
        env["NUMBA_DEBUG_CACHE"] = "1"
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_second_process_loads_the_kernels_from_the_cache():
    _run(debug=False)  # first process: compiles (or loads) and saves
    log = _run(debug=True)
    lines = [ln for ln in log.splitlines() if "backtest" in ln and "[cache]" in ln]
    assert any("data loaded" in ln and "simulate_picks_serial" in ln for ln in lines), log[-2000:]
    assert not any("data saved" in ln for ln in lines), "\n".join(lines)
