"""core_engine.features: the "analyst agents" (DESIGN.md §3).

Every feature follows :class:`FeatureComputer`: keyword parameters, ``lookback``,
``columns``, ``compute(candles)`` for one symbol and ``compute_panel(panel)`` for all.
The value at row ``i`` uses rows ``<= i`` only; missing candles are skipped.

>>> from core_engine.features import RSI, MACD, compute_features
>>> RSI(14).columns
('rsi_14',)
"""

from core_engine.features.base import FeatureComputer, KernelFeature
from core_engine.features.cache import FeatureCache, compute_features
from core_engine.features.cross_section import (
    CrossSectional,
    cross_sectional_rank,
    cross_sectional_zscore,
)
from core_engine.features.liquidity import QuoteVolume, VolumeTrend, VolumeZScore
from core_engine.features.momentum import MACD, RSI, Momentum
from core_engine.features.multi_timeframe import MultiTimeframe
from core_engine.features.pandas_ta import PandasTA
from core_engine.features.trend import EMA, SMA, EMADistance, RollingHighLow, TrendSlope
from core_engine.features.volatility import ATR, BollingerBands, ReturnVolatility

__all__ = [
    "ATR",
    "EMA",
    "MACD",
    "RSI",
    "SMA",
    "BollingerBands",
    "CrossSectional",
    "EMADistance",
    "FeatureCache",
    "FeatureComputer",
    "KernelFeature",
    "Momentum",
    "MultiTimeframe",
    "PandasTA",
    "QuoteVolume",
    "ReturnVolatility",
    "RollingHighLow",
    "TrendSlope",
    "VolumeTrend",
    "VolumeZScore",
    "compute_features",
    "cross_sectional_rank",
    "cross_sectional_zscore",
]
