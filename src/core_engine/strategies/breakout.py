"""Breakout: the close breaks the previous rolling high, with confirmations."""

from __future__ import annotations

import numpy as np

from core_engine.errors import ConfigError
from core_engine.features import EMA, RSI, RollingHighLow, VolumeZScore
from core_engine.strategies._ops import nan_where, previous_present
from core_engine.strategies.base import Strategy as _Base
from core_engine.strategies.registry import register

__all__ = ["Breakout", "Strategy"]


@register("breakout")
class Breakout(_Base):
    """Close above the highest high of the previous ``length`` candles, confirmed.

    The breakout at row ``i``: ``close[i] > prev_high[i]``, where ``prev_high[i]`` is the
    rolling ``length``-candle high of the symbol's previous candle (row ``i - 1``, or the last
    candle before a gap), so the current candle's own high never counts against it.

    Confirmations (each 0 or 1):

    * trend: ``EMA(ema_fast) > EMA(ema_slow)``;
    * not overbought: ``RSI(rsi_length) < rsi_overbought``;
    * volume spike: volume z-score over ``volume_length`` candles ``> volume_spike``.

    A symbol is a candidate when it breaks out with at least ``min_confirmations``
    confirmations. :meth:`confidence` is the number of confirmations (0–3) of each candidate
    (NaN elsewhere), for :class:`~core_engine.risk.ConfidenceWeighted`. The score is the
    breakout strength ``close / prev_high - 1`` (> 0), times the confidence when
    ``scale_by_confidence``.

    Notes
    -----
    Warm-up (:attr:`lookback`): the rolling high's lookback plus one candle (the previous
    high), or the EMAs' and RSI's if longer; no candidate before, nor at missing candles. A NaN volume z-score
    (constant volume) counts as no spike.
    """

    name = "breakout"

    def __init__(self, length=20, ema_fast=12, ema_slow=26, rsi_length=14, rsi_overbought=70.0,
                 volume_length=20, volume_spike=2.0, min_confirmations=2,
                 scale_by_confidence=False):
        self.length = length
        self.ema_fast = ema_fast
        self.ema_slow = ema_slow
        self.rsi_length = rsi_length
        self.rsi_overbought = rsi_overbought
        self.volume_length = volume_length
        self.volume_spike = volume_spike
        self.min_confirmations = min_confirmations
        self.scale_by_confidence = scale_by_confidence

    def _validate_params(self) -> None:
        self._check_int("length")
        self._check_int("ema_fast")
        self._check_int("ema_slow")
        self._check_less("ema_fast", "ema_slow")
        self._check_int("rsi_length")
        self._check_number("rsi_overbought", low=0.0, high=100.0)
        self._check_int("volume_length", 2)
        self._check_number("volume_spike")
        self._check_int("min_confirmations", 0)
        self._check_choice("min_confirmations", [0, 1, 2, 3])
        if not isinstance(self.scale_by_confidence, (bool, np.bool_)):
            raise ConfigError(
                "The 'scale_by_confidence' parameter of Breakout must be True or False. "
                f"Got {self.scale_by_confidence!r}."
            )

    def _computers(self):
        return (RollingHighLow(length=self.length), EMA(length=self.ema_fast),
                EMA(length=self.ema_slow), RSI(length=self.rsi_length),
                VolumeZScore(length=self.volume_length))

    def features(self) -> list:
        return list(self._computers())

    @property
    def lookback(self) -> int:
        """First row that can score: the previous candle's rolling high (its lookback + 1)
        and the warmed-up EMAs and RSI."""
        high_low, *others = self._computers()
        return max([int(high_low.lookback) + 1] + [int(c.lookback) for c in others])

    def _parts(self, features, panel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        high_low, fast, slow, rsi, volume = (features[c.columns[0]] for c in self._computers())
        prev_high = previous_present(high_low)
        close = panel.close
        with np.errstate(invalid="ignore", divide="ignore"):
            # the trend and RSI confirmations must be warmed up; a NaN volume z-score
            # (constant volume) is simply "no spike"
            breakout = close > prev_high
            breakout &= np.isfinite(fast) & np.isfinite(slow) & np.isfinite(rsi)
            confirmations = ((fast > slow).astype(np.int64) + (rsi < self.rsi_overbought)
                             + (volume > self.volume_spike))
            strength = close / prev_high - 1.0
        candidate = breakout & (confirmations >= self.min_confirmations)
        return candidate, confirmations, strength

    def confidence(self, features, panel) -> np.ndarray:
        candidate, confirmations, _ = self._parts(features, panel)
        return nan_where(candidate, confirmations)

    def score(self, features, panel) -> np.ndarray:
        candidate, confirmations, strength = self._parts(features, panel)
        if self.scale_by_confidence:
            strength = strength * confirmations
        return nan_where(candidate, strength)


Strategy = Breakout
