"""Liquidity features: volume z-score, volume trend, rolling quote volume."""

from __future__ import annotations

from typing import ClassVar

from core_engine.features import _kernels
from core_engine.features.base import FastSlowFeature, LengthFeature

__all__ = ["QuoteVolume", "VolumeTrend", "VolumeZScore"]


class VolumeZScore(LengthFeature):
    """``(volume - mean) / std`` over the last ``length`` volumes, current included (ddof=0).

    Column ``volume_zscore_{length}``; warm-up ``length - 1`` rows; ``length >= 2``. NaN
    where the window's volumes are all equal (0/0), e.g. a run of zero-volume candles.
    """

    name = "volume_zscore"
    _defaults: ClassVar[dict] = {"length": 20}
    _kind = _kernels.VOLUME_ZSCORE
    _prefix = "volume_zscore"
    _min_length = 2


class VolumeTrend(FastSlowFeature):
    """``SMA(volume, fast) / SMA(volume, slow) - 1``: recent volume against its base level.

    Column ``volume_trend_{fast}_{slow}``; warm-up ``slow - 1`` rows. NaN where the slow
    mean is 0 (no trades in the whole slow window).
    """

    name = "volume_trend"
    _defaults: ClassVar[dict] = {"fast": 5, "slow": 20}
    _kind = _kernels.VOLUME_TREND



class QuoteVolume(LengthFeature):
    """Rolling sum of ``close * volume`` (traded value in the quote currency).

    Column ``quote_volume_{length}`` (default 288 = one day of 5m candles); warm-up
    ``length - 1`` rows. Equals TA-Lib ``SUM(close * volume)`` up to rounding; exactly 0
    over a window without trades.
    """

    name = "quote_volume"
    _defaults: ClassVar[dict] = {"length": 288}
    _kind = _kernels.QUOTE_VOLUME
    _prefix = "quote_volume"
