"""MACD/RSI confluence: the mandatory baseline strategy (DESIGN.md §4).

A symbol is a candidate at row ``i`` when, on the candle closing at the decision time,

* its volatility is tame: ``ATR(atr_length) / close <= max_atr_pct`` (percent),
* momentum is building: the MACD histogram rose on that candle (``macd_hist_slope > 0``),
* RSI is in a healthy long band: ``rsi_low <= RSI(rsi_length) <= rsi_high``.

Candidates are ranked by a combined score: ``momentum_weight`` × the cross-sectional
z-score of the ``momentum_length``-candle return, plus ``1 - momentum_weight`` × the
cross-sectional z-score of the volume z-score, both taken over the candidates of that row
only. A lone candidate (or a row where a term has no spread) gets 0 for that term.
"""

from __future__ import annotations

import numpy as np

from core_engine.features import ATR, MACD, RSI, Momentum, VolumeZScore
from core_engine.features.cross_section import cross_sectional_zscore
from core_engine.strategies._ops import nan_where
from core_engine.strategies.base import Strategy as _Base
from core_engine.strategies.registry import register

__all__ = ["MacdRsiConfluence", "Strategy"]


def _candidate_zscore(values: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Z-score across the candidates of each row; 0 where it is undefined (< 2 or no spread)."""
    z = np.asarray(cross_sectional_zscore(nan_where(candidate, values)), dtype=np.float64)
    return np.where(candidate & np.isnan(z), 0.0, z)


@register("macd_rsi_confluence")
class MacdRsiConfluence(_Base):
    """MACD-histogram slope and RSI band confluence, gated by ATR/price, ranked by
    momentum and volume.

    Parameters
    ----------
    rsi_length : int
        RSI period (Wilder, as TA-Lib). Default 14.
    rsi_low, rsi_high : float
        The healthy RSI band, inclusive. Default 40–65.
    macd_fast, macd_slow, macd_signal : int
        MACD periods (TA-Lib). Default 12/26/9.
    atr_length : int
        ATR period. Default 14.
    max_atr_pct : float
        Largest ATR/close, in percent, for a candidate. Default 1.5: on Binance 5m candles
        2020-12..2021-07 the median ATR(14)/close is 0.37 % (BTC) to 0.88 % (AR), and 1.5 %
        excludes 0.9 % (BTC) to 14 % (AR) of the candles — the stressed ones — while 3.0
        would exclude at most 2 %, i.e. gate nothing.
    momentum_length : int
        Candles of the return used for ranking. Default 24 (2 h of 5m candles).
    volume_length : int
        Window of the volume z-score. Default 20.
    momentum_weight : float
        Weight of momentum in the ranking score, in ``[0, 1]``; volume gets the rest.

    Notes
    -----
    Warm-up: :attr:`lookback` = the longest feature warm-up (MACD: ``macd_slow +
    macd_signal - 1`` candles, plus one for its slope). Before it, and at missing candles,
    scores are NaN. Candidacy depends only on the symbol's own candles, not on the universe.
    """

    name = "macd_rsi_confluence"
    row_local = True  # thresholds and cross-sectional z-scores of row i only

    def __init__(self, rsi_length=14, rsi_low=40.0, rsi_high=65.0, macd_fast=12, macd_slow=26,
                 macd_signal=9, atr_length=14, max_atr_pct=1.5, momentum_length=24,
                 volume_length=20, momentum_weight=0.5):
        self.rsi_length = rsi_length
        self.rsi_low = rsi_low
        self.rsi_high = rsi_high
        self.macd_fast = macd_fast
        self.macd_slow = macd_slow
        self.macd_signal = macd_signal
        self.atr_length = atr_length
        self.max_atr_pct = max_atr_pct
        self.momentum_length = momentum_length
        self.volume_length = volume_length
        self.momentum_weight = momentum_weight

    def _validate_params(self) -> None:
        for key in ("rsi_length", "macd_fast", "macd_slow", "macd_signal", "atr_length",
                    "momentum_length"):
            self._check_int(key, 1)
        self._check_int("volume_length", 2)
        self._check_number("rsi_low", low=0.0, high=100.0)
        self._check_number("rsi_high", low=0.0, high=100.0)
        self._check_less("rsi_low", "rsi_high")
        self._check_less("macd_fast", "macd_slow")
        self._check_number("max_atr_pct", low=0.0, strict_low=True)
        self._check_number("momentum_weight", low=0.0, high=1.0)

    def _computers(self):
        return (
            RSI(length=self.rsi_length),
            MACD(fast=self.macd_fast, slow=self.macd_slow, signal=self.macd_signal),
            ATR(length=self.atr_length),
            Momentum(length=self.momentum_length),
            VolumeZScore(length=self.volume_length),
        )

    def features(self) -> list:
        return list(self._computers())

    def columns(self) -> dict[str, str]:
        """The feature columns read: role -> column name."""
        rsi, macd, atr, momentum, volume = self._computers()
        slope = [c for c in macd.columns if c.startswith("macd_hist_slope")][0]
        atr_pct = [c for c in atr.columns if c.startswith("atr_pct")][0]
        return {"rsi": rsi.columns[0], "macd_hist_slope": slope, "atr_pct": atr_pct,
                "momentum": momentum.columns[0], "volume_zscore": volume.columns[0]}

    def candidates(self, features, panel) -> np.ndarray:
        """The boolean ``(T, N)`` candidate mask (all three conditions, finite ranking inputs)."""
        cols = self.columns()
        rsi = features[cols["rsi"]]
        with np.errstate(invalid="ignore"):
            return ((features[cols["atr_pct"]] <= self.max_atr_pct)
                    & (features[cols["macd_hist_slope"]] > 0)
                    & (rsi >= self.rsi_low) & (rsi <= self.rsi_high)
                    & np.isfinite(features[cols["momentum"]])
                    & np.isfinite(features[cols["volume_zscore"]]))

    def score(self, features, panel) -> np.ndarray:
        cols = self.columns()
        candidate = self.candidates(features, panel)
        z_momentum = _candidate_zscore(features[cols["momentum"]], candidate)
        z_volume = _candidate_zscore(features[cols["volume_zscore"]], candidate)
        w = float(self.momentum_weight)
        return nan_where(candidate, w * z_momentum + (1.0 - w) * z_volume)


Strategy = MacdRsiConfluence
