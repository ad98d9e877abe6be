"""Synthetic panels of the ml tests: a planted, predictable 4-hour return and a pure random
walk made by the same generator (hourly candles, blocks aligned on the epoch's 4h grid)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core_engine.data import Panel

BLOCK = 4  # candles per 4h block (1h candles)


def planted_panel(n_symbols: int = 4, n_days: int = 90, phi: float = 0.5,
                  block_vol: float = 0.02, seed: int = 3) -> Panel:
    """Each symbol's 4-hour block returns follow ``R_b = phi × R_{b−1} + noise`` (an AR(1)
    of block log-returns with stationary volatility ``block_vol``): the return of the last
    4 hours (``Momentum(4)`` at a decision time) predicts the next 4 hours' with
    correlation ``phi``. ``phi = 0`` gives a pure random walk. The hourly candles split a
    block's return evenly plus small noise; open = previous close (no gaps)."""
    rng = np.random.default_rng(seed)
    n_blocks = n_days * 24 // BLOCK
    noise = rng.standard_normal((n_blocks, n_symbols)) * block_vol * np.sqrt(1 - phi**2)
    blocks = np.empty((n_blocks, n_symbols))
    blocks[0] = rng.standard_normal(n_symbols) * block_vol
    for b in range(1, n_blocks):
        blocks[b] = phi * blocks[b - 1] + noise[b]
    intra = rng.standard_normal((n_blocks, BLOCK, n_symbols)) * block_vol * 0.05
    steps = blocks[:, None, :] / BLOCK + intra - intra.mean(axis=1, keepdims=True)
    log_returns = steps.reshape(-1, n_symbols)
    close = 100.0 * np.exp(np.cumsum(log_returns, axis=0))
    open_ = np.vstack([np.full((1, n_symbols), 100.0), close[:-1]])
    wick = np.abs(rng.standard_normal(close.shape)) * block_vol * 0.05
    high = np.maximum(open_, close) * (1 + wick)
    low = np.minimum(open_, close) * (1 - wick)
    volume = rng.lognormal(8.0, 0.3, close.shape)
    index = pd.date_range("2022-01-01", periods=len(close), freq="1h", tz="UTC")
    return Panel(index=index, symbols=tuple(f"P{j}/USDT" for j in range(n_symbols)),
                 timeframe="1h", open=open_, high=high, low=low, close=close, volume=volume)


def hand_panel(opens, highs, lows, closes, start="2022-01-01") -> Panel:
    """One symbol ``X/USDT`` on a 1h grid from explicit prices (NaN = missing candle)."""
    index = pd.date_range(start, periods=len(opens), freq="1h", tz="UTC")
    arrays = [np.asarray(v, dtype=np.float64).reshape(-1, 1) for v in (opens, highs, lows, closes)]
    volume = np.where(np.isnan(arrays[0]), np.nan, 1.0)
    return Panel(index=index, symbols=("X/USDT",), timeframe="1h", open=arrays[0],
                 high=arrays[1], low=arrays[2], close=arrays[3], volume=volume)
