"""core_engine.features: the "analyst agents" (DESIGN.md §3).

Every feature follows :class:`FeatureComputer`: keyword parameters, ``lookback``,
``columns``, ``compute(candles)`` for one symbol and ``compute_panel(panel)`` for all.
The value at row ``i`` uses rows ``<= i`` only; missing candles are skipped.
"""

from core_engine.features.base import FeatureComputer, KernelFeature, run_kernel_features
from core_engine.features.liquidity import QuoteVolume, VolumeTrend, VolumeZScore
from core_engine.features.momentum import MACD, RSI, Momentum
from core_engine.features.trend import EMA, SMA, EMADistance, RollingHighLow, TrendSlope
from core_engine.features.volatility import ATR, BollingerBands, ReturnVolatility

__all__ = [
    "ATR",
    "EMA",
    "MACD",
    "RSI",
    "SMA",
    "BollingerBands",
    "EMADistance",
    "FeatureComputer",
    "KernelFeature",
    "Momentum",
    "QuoteVolume",
    "ReturnVolatility",
    "RollingHighLow",
    "TrendSlope",
    "VolumeTrend",
    "VolumeZScore",
    "run_kernel_features",
]
