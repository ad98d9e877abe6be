"""Cold start (issue 9 §4, W10): a run compiles only the kernels of the features it uses,
each once, whatever data form it is given (a frame, a panel with or without missing candles).

Checked in a fresh process, where a dispatcher lists a signature only for what that process
compiled or loaded from numba's cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.numba_compiles import compiled_in_fresh_process

SCRIPT = """
import json
import numpy as np, pandas as pd
from core_engine.data import Panel
from core_engine.features import ATR, RSI, compute_features
from core_engine.features import _kernels

n = 300
rng = np.random.default_rng(0)
close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 3)), axis=0))
close[:40, 1] = np.nan            # listed later: one block of present candles
close[100:110, 2] = np.nan        # an outage inside the series
idx = pd.date_range("2021-01-01", periods=n, freq="5min", tz="UTC")
panel = Panel(index=idx, symbols=("A", "B", "C"), timeframe="5m", open=close,
              high=close * 1.01, low=close * 0.99, close=close,
              volume=np.where(np.isnan(close), np.nan, 1.0))
compute_features([RSI(14), ATR(14)], panel)
RSI(length=np.int32(5)).compute(panel.frame("C"))   # a frame, a numpy integer parameter
ATR(3).compute_panel(panel.slice_rows(200, 300))     # no missing candle
dense = {name: len(getattr(_kernels, name).signatures)
         for name in dir(_kernels) if name.endswith("_dense")}
print(json.dumps(dense))
"""


def test_cold_start_compiles_only_the_kernels_a_run_uses_once_each():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    signatures = json.loads(done.stdout.strip().splitlines()[-1])
    used = {name: n for name, n in signatures.items() if n}
    assert used == {"rsi_dense": 1, "atr_dense": 1}, signatures


BUILTINS_SCRIPT = """
import numpy as np
from core_engine.features import _kernels as k

x = np.linspace(1.0, 2.0, 200)
o = [np.empty(200) for _ in range(4)]
k.rsi_dense(x, 14, o[0])
k.atr_dense(x * 1.01, x * 0.99, x, 14, o[0], o[1])
k.macd_dense(x, 12, 26, 9, *o)
k.ema_distance_dense(x, 12, 26, o[0])
k.volume_trend_dense(x, 5, 20, o[0])
k.volume_zscore_dense(x, 20, o[0], np.empty((3, k._ZBLOCK)))
"""


def test_feature_kernels_compile_no_builtin_max_or_min(tmp_path):
    """numba compiles the builtins ``max``/``min`` once per signature (tenths of a second of
    a cold start); the kernels spell them as conditional expressions."""
    compiled = compiled_in_fresh_process(BUILTINS_SCRIPT, tmp_path)
    assert "core_engine.features._kernels.rsi_dense" in compiled, compiled
    builtins = [name for name in compiled if ".ol_max." in name or ".ol_min." in name]
    assert builtins == []
