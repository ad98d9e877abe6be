"""ScheduledWeights: a strategy that replays a table of target weights.

The trading environment records the weights it executed at each decision time
(:meth:`core_engine.ml.TradingEnv.episode_weights`); this strategy turns such a table back
into scores (score = weight, NaN = not held), so ``walk_forward(mode="portfolio")`` with
``hold="until_dropped"``, ``ConfidenceSizing(full_confidence=1, slots=1)`` and
``TopNEqual(n=n_symbols)`` trades exactly those weights — the check that the environment
and the engine keep the same account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from core_engine.data.panel import Panel
from core_engine.errors import ConfigError
from core_engine.strategies.base import Strategy

__all__ = ["ScheduledWeights"]


class ScheduledWeights(Strategy):
    """Scores read from ``weights``: rows = decision times (UTC), columns = symbols, values
    = target weights in ``[0, 1]`` (0 or NaN = not held). Times not in the table score NaN.

    Examples
    --------
    >>> w = pd.DataFrame({"BTC/USDT": [1.0]}, index=pd.DatetimeIndex(["2021-01-01 04:00"],
    ...                  tz="UTC"))
    >>> ScheduledWeights(w).lookback
    0
    """

    name = "scheduled_weights"

    def __init__(self, weights: Any = None) -> None:
        self.weights = weights

    def _validate_params(self) -> None:
        w = self.weights
        if not isinstance(w, pd.DataFrame) or not isinstance(w.index, pd.DatetimeIndex):
            raise ConfigError("The 'weights' parameter of ScheduledWeights must be a DataFrame "
                              "indexed by decision time with one column per symbol. Got "
                              f"{type(w).__name__}.")
        values = w.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.any(values[np.isfinite(values)] < 0) or np.any(np.isinf(values)):
            raise ConfigError("The weights of ScheduledWeights must be finite and >= 0.")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return bool(self.weights.equals(other.weights))

    def __hash__(self) -> int:
        return hash((type(self).__qualname__, self.weights.shape))

    def __repr__(self) -> str:
        w = self.weights
        return f"ScheduledWeights({len(w)} decision times × {w.shape[1]} symbols)"

    def score(self, features: Mapping[str, np.ndarray], panel: Panel) -> np.ndarray:
        out = np.full((panel.n_times, panel.n_symbols), np.nan)
        if not panel.n_times:
            return out
        w = self.weights
        index = w.index.tz_convert("UTC") if w.index.tz is not None else w.index.tz_localize("UTC")
        rows = (index.as_unit("ns").asi8 - panel.step_ns - int(panel.index.asi8[0])) \
            // panel.step_ns
        inside = (rows >= 0) & (rows < panel.n_times)
        for symbol in w.columns:
            if symbol not in panel.symbols:
                continue
            values = w[symbol].to_numpy(dtype=np.float64, na_value=np.nan)
            held = inside & (values > 0)
            out[rows[held], panel.symbols.index(symbol)] = values[held]
        return out

    def confidence(self, features: Mapping[str, np.ndarray], panel: Panel) -> np.ndarray:
        return np.nan_to_num(self.score(features, panel), nan=0.0)
