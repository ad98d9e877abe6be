"""Small synthetic panels and test strategies of the optimize tests (importable by worker
processes: module-level classes pickle by reference)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core_engine.data import Panel
from core_engine.strategies.base import Strategy


def random_walk_panel(n_symbols: int = 5, n_candles: int = 288 * 12, seed: int = 11,
                      start: str = "2022-01-01") -> Panel:
    """A seeded geometric random walk, 5m candles, with wicks and lognormal volume."""
    rng = np.random.default_rng(seed)
    vol = rng.uniform(0.002, 0.005, n_symbols)
    close = 100.0 * np.exp(np.cumsum(rng.standard_normal((n_candles, n_symbols)) * vol, axis=0))
    open_ = np.vstack([np.full((1, n_symbols), 100.0), close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.standard_normal(close.shape)) * vol * 0.6)
    low = np.minimum(open_, close) * (1 - np.abs(rng.standard_normal(close.shape)) * vol * 0.6)
    volume = rng.lognormal(10.0, 0.6, close.shape)
    index = pd.date_range(start, periods=n_candles, freq="5min", tz="UTC")
    return Panel(index=index, symbols=tuple(f"S{j}/USDT" for j in range(n_symbols)),
                 timeframe="5m", open=open_, high=high, low=low, close=close, volume=volume)


def block_panel(n_symbols: int = 8, n_blocks: int = 160, block: int = 12, seed: int = 5,
                planted: int | None = None, drift: float = 0.001) -> Panel:
    """Every symbol's 1-hour blocks are the same blocks in another order, so every symbol has
    the same multiset of hourly returns (no symbol has an edge over the whole sample), unless
    ``planted``: that symbol's candles drift up by ``drift`` in log price each.

    Block 0 is a flat warm-up hour shared by all; decisions at every hour from 01:00 trade
    one whole block each (1h window and shift, entry at the block's first open, exit at the
    next block's first open = this block's last close).
    """
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 0.004, (n_blocks, block))
    log_returns = np.empty((block * (n_blocks + 1), n_symbols))
    for j in range(n_symbols):
        order = rng.permutation(n_blocks)
        steps = base[order] + (drift if j == planted else 0.0)
        log_returns[:, j] = np.concatenate([np.zeros(block), steps.ravel()])
    close = 100.0 * np.exp(np.cumsum(log_returns, axis=0))
    open_ = np.vstack([np.full((1, n_symbols), 100.0), close[:-1]])
    high = np.maximum(open_, close) * 1.0005
    low = np.minimum(open_, close) * 0.9995
    volume = np.full(close.shape, 1_000.0)
    index = pd.date_range("2021-01-01", periods=len(close), freq="5min", tz="UTC")
    return Panel(index=index, symbols=tuple(f"C{j}/USDT" for j in range(n_symbols)),
                 timeframe="5m", open=open_, high=high, low=low, close=close, volume=volume)


class PickColumn(Strategy):
    """Always picks the symbol in ``column``: a strategy with no information at all."""

    name = "test_pick_column"
    row_local = True

    def __init__(self, column=0):
        self.column = column

    def _validate_params(self):
        self._check_int("column", 0)

    def score(self, features, panel):
        scores = np.full((panel.n_times, panel.n_symbols), np.nan)
        scores[:, self.column] = 1.0
        return scores


def regime_panel(n_symbols: int = 6, n_blocks: int = 120, first: int = 1, second: int = 4,
                 switch: int = 60, drift: float = 0.0015, seed: int = 8) -> Panel:
    """Hourly blocks of independent noise; symbol ``first`` drifts up before block ``switch``
    and symbol ``second`` from it on (decisions as in :func:`block_panel`)."""
    rng = np.random.default_rng(seed)
    block = 12
    steps = rng.normal(0.0, 0.003, (n_blocks, block, n_symbols))
    steps[:switch, :, first] += drift
    steps[switch:, :, second] += drift
    log_returns = np.vstack([np.zeros((block, n_symbols)), steps.reshape(-1, n_symbols)])
    close = 100.0 * np.exp(np.cumsum(log_returns, axis=0))
    open_ = np.vstack([np.full((1, n_symbols), 100.0), close[:-1]])
    index = pd.date_range("2021-01-01", periods=len(close), freq="5min", tz="UTC")
    return Panel(index=index, symbols=tuple(f"R{j}/USDT" for j in range(n_symbols)),
                 timeframe="5m", open=open_, high=np.maximum(open_, close) * 1.0005,
                 low=np.minimum(open_, close) * 0.9995, close=close,
                 volume=np.full(close.shape, 1_000.0))
