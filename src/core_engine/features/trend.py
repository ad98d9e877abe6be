"""Trend features: moving averages, EMA distance, linear trend slope, rolling high/low."""

from __future__ import annotations

from typing import ClassVar

from core_engine.features import _kernels
from core_engine.features.base import FastSlowFeature, LengthFeature

__all__ = ["EMA", "SMA", "EMADistance", "RollingHighLow", "TrendSlope"]


class SMA(LengthFeature):
    """Simple moving average of close; equals TA-Lib ``SMA``.

    Column ``sma_{length}``; warm-up ``length - 1`` rows; missing candles skipped.
    """

    name = "sma"
    _defaults: ClassVar[dict] = {"length": 20}
    _kind = _kernels.SMA
    _prefix = "sma"


class EMA(LengthFeature):
    """Exponential moving average of close, ``k = 2 / (length + 1)``; equals TA-Lib ``EMA``.

    Seeded with the mean of the first ``length`` closes (TA-Lib convention). Column
    ``ema_{length}``; warm-up ``length - 1`` rows; missing candles skipped.
    """

    name = "ema"
    _defaults: ClassVar[dict] = {"length": 12}
    _kind = _kernels.EMA
    _prefix = "ema"


class TrendSlope(LengthFeature):
    """Least-squares slope of close over ``length`` candles divided by their mean close.

    The fractional change per candle (``0.001`` = +0.1 % per candle); equals TA-Lib
    ``LINEARREG_SLOPE / SMA`` (within TA-Lib's own rounding, see the kernel). Column
    ``trend_slope_{length}``; warm-up ``length - 1`` rows; ``length >= 2``.
    """

    name = "trend_slope"
    _defaults: ClassVar[dict] = {"length": 20}
    _kind = _kernels.TREND_SLOPE
    _prefix = "trend_slope"
    _min_length = 2


class RollingHighLow(LengthFeature):
    """Highest high and lowest low of the last ``length`` candles, current included.

    Equal TA-Lib ``MAX(high)`` and ``MIN(low)``. Columns ``highest_high_{length}``,
    ``lowest_low_{length}``; warm-up ``length - 1`` rows. For a breakout test compare the
    close of row ``i`` with row ``i - 1`` of these columns.
    """

    name = "rolling_high_low"
    _defaults: ClassVar[dict] = {"length": 20}
    _kind = _kernels.HIGH_LOW
    length: int  # parameter, set by FeatureComputer.__init__

    @property
    def columns(self) -> tuple[str, ...]:
        return (f"highest_high_{self.length}", f"lowest_low_{self.length}")

    def _kernel_params(self):
        return (self.length,), ()


class EMADistance(FastSlowFeature):
    """``(EMA(fast) - EMA(slow)) / EMA(slow)``, each a TA-Lib EMA of close.

    Column ``ema_distance_{fast}_{slow}``; warm-up ``slow - 1`` rows.
    """

    name = "ema_distance"
    _defaults: ClassVar[dict] = {"fast": 12, "slow": 26}
    _kind = _kernels.EMA_DISTANCE

