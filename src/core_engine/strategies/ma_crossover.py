"""Moving-average crossover: trend following on a fast and a slow EMA or SMA."""

from __future__ import annotations

import numpy as np

from core_engine.features import EMA, SMA
from core_engine.strategies._ops import nan_where, previous_present, recent_any
from core_engine.strategies.base import Strategy as _Base
from core_engine.strategies.registry import register

__all__ = ["MovingAverageCrossover", "Strategy"]


@register("ma_crossover")
class MovingAverageCrossover(_Base):
    """Long while the fast average is above the slow one; score = their relative gap.

    Parameters
    ----------
    kind : {"ema", "sma"}
        Moving average type (TA-Lib EMA seeded with the SMA, or SMA). Default "ema".
    fast, slow : int
        Periods, ``fast < slow``. Default 12 and 26.
    fresh_within : int or None
        When set, a candidate also needs a cross up (fast from ``<=`` to ``>`` slow, between
        the symbol's previous candle and this one) within the last ``fresh_within`` candles.
        Default None: any candle with fast above slow.

    Notes
    -----
    Score = ``(fast_ma - slow_ma) / slow_ma`` (> 0 for every candidate). Warm-up:
    ``slow - 1`` candles (the slow average), plus one when ``fresh_within`` is set. NaN before and at missing candles.
    """

    name = "ma_crossover"

    def __init__(self, kind="ema", fast=12, slow=26, fresh_within=None):
        self.kind = kind
        self.fast = fast
        self.slow = slow
        self.fresh_within = fresh_within

    def _validate_params(self) -> None:
        self._check_choice("kind", ["ema", "sma"])
        self._check_int("fast")
        self._check_int("slow")
        self._check_less("fast", "slow")
        if self.fresh_within is not None:
            self._check_int("fresh_within")

    @property
    def extra_lookback(self) -> int:  # type: ignore[override]
        # a cross compares with the previous candle: one more row of warm-up
        return 0 if self.fresh_within is None else 1

    def _computers(self):
        average = EMA if self.kind == "ema" else SMA
        return average(length=self.fast), average(length=self.slow)

    def features(self) -> list:
        return list(self._computers())

    def score(self, features, panel) -> np.ndarray:
        fast, slow = (features[c.columns[0]] for c in self._computers())
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = (fast - slow) / slow
            candidate = gap > 0
            if self.fresh_within is not None:
                crossed = candidate & (previous_present(gap) <= 0)
                candidate &= recent_any(crossed, int(self.fresh_within))
        return nan_where(candidate, gap)


Strategy = MovingAverageCrossover
