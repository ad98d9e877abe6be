"""Momentum rank: the universe ranked by recent return, volume-confirmed."""

from __future__ import annotations

import numpy as np

from core_engine.features import Momentum, VolumeTrend
from core_engine.strategies._ops import nan_where
from core_engine.strategies.base import Strategy as _Base
from core_engine.strategies.registry import register

__all__ = ["MomentumRank", "Strategy"]


@register("momentum_rank")
class MomentumRank(_Base):
    """Rank by the ``length``-candle return; candidates need rising volume and a minimum return.

    Score = the return ``close[i] / close[i - length] - 1`` (so it is positive for every
    candidate when ``min_return >= 0`` and works with :class:`~core_engine.risk.ScoreProportional`).
    A symbol is a candidate when its return is above ``min_return`` and its volume trend
    ``mean(volume, volume_fast) / mean(volume, volume_slow) - 1`` is above
    ``min_volume_trend``.

    Parameters
    ----------
    length : int
        Return horizon in candles. Default 24.
    volume_fast, volume_slow : int
        Volume trend windows. Default 5 and 20.
    min_volume_trend : float
        Default 0.0: recent volume above its slower average.
    min_return : float
        Default 0.0: only rising symbols.

    Notes
    -----
    Warm-up: ``max(length, volume_slow - 1)`` candles (the features' lookback); NaN before,
    and at missing candles.
    """

    name = "momentum_rank"
    row_local = True  # thresholds and cross-sectional z-scores of row i only

    def __init__(self, length=24, volume_fast=5, volume_slow=20, min_volume_trend=0.0,
                 min_return=0.0):
        self.length = length
        self.volume_fast = volume_fast
        self.volume_slow = volume_slow
        self.min_volume_trend = min_volume_trend
        self.min_return = min_return

    def _validate_params(self) -> None:
        self._check_int("length")
        self._check_int("volume_fast")
        self._check_int("volume_slow")
        self._check_less("volume_fast", "volume_slow")
        self._check_number("min_volume_trend", low=-1.0)
        self._check_number("min_return", low=-1.0)

    def _computers(self):
        return Momentum(length=self.length), VolumeTrend(fast=self.volume_fast, slow=self.volume_slow)

    def features(self) -> list:
        return list(self._computers())

    def score(self, features, panel) -> np.ndarray:
        momentum, trend = self._computers()
        ret = features[momentum.columns[0]]
        with np.errstate(invalid="ignore"):
            candidate = (ret > self.min_return) & (features[trend.columns[0]] > self.min_volume_trend)
        return nan_where(candidate, ret)


Strategy = MomentumRank
