"""Volatility features: ATR and ATR/price, Bollinger Bands and bandwidth, return volatility."""

from __future__ import annotations

from typing import ClassVar

from core_engine.features import _kernels
from core_engine.features.base import KernelFeature, LengthFeature

__all__ = ["ATR", "BollingerBands", "ReturnVolatility"]


class ATR(LengthFeature):
    """Average True Range (Wilder) and ATR as a percent of close; ATR equals TA-Lib ``ATR``.

    Parameters
    ----------
    length : int, default 14
        Smoothing period (>= 1).

    Notes
    -----
    Columns ``atr_{length}`` (price units) and ``atr_pct_{length}`` (``100 * ATR / close``,
    percent). The true range needs the previous close, so, as TA-Lib, the first ATR is the
    mean of true ranges 1..``length``: warm-up ``length`` rows.
    """

    name = "atr"
    _defaults: ClassVar[dict] = {"length": 14}
    _kind = _kernels.ATR
    _warm_up_offset = 0
    length: int  # parameter, set by FeatureComputer.__init__

    @property
    def columns(self) -> tuple[str, ...]:
        return (f"atr_{self.length}", f"atr_pct_{self.length}")

    def _kernel_params(self):
        return (self.length,), ()


class BollingerBands(KernelFeature):
    """Bollinger Bands; equal TA-Lib ``BBANDS`` (SMA middle, population std, ddof=0).

    Parameters
    ----------
    length : int, default 20
        Window (>= 2).
    std : float, default 2.0
        Band width in standard deviations (> 0).

    Notes
    -----
    Columns ``bb_upper_{length}_{std:g}``, ``bb_middle_…``, ``bb_lower_…`` and
    ``bb_bandwidth_…`` = ``(upper - lower) / middle``. Warm-up ``length - 1`` rows.
    """

    name = "bollinger_bands"
    _defaults: ClassVar[dict] = {"length": 20, "std": 2.0}
    _kind = _kernels.BBANDS
    length: int  # parameters, set by FeatureComputer.__init__
    std: float

    def _check_params(self) -> None:
        self._require_int("length", 2)
        self._require_float("std")

    @property
    def lookback(self) -> int:
        return int(self.length) - 1

    @property
    def columns(self) -> tuple[str, ...]:
        s = f"{self.length}_{self.std:g}"
        return (f"bb_upper_{s}", f"bb_middle_{s}", f"bb_lower_{s}", f"bb_bandwidth_{s}")

    def _kernel_params(self):
        return (self.length,), (float(self.std),)


class ReturnVolatility(LengthFeature):
    """Rolling sample std (ddof=1) of log close-to-close returns, not annualised.

    Column ``volatility_{length}`` over the last ``length`` returns; warm-up ``length`` rows
    (the first return needs a previous close); ``length >= 2``. Computed per window in two
    passes, so a flat window gives exactly 0.
    """

    name = "volatility"
    _defaults: ClassVar[dict] = {"length": 20}
    _kind = _kernels.VOLATILITY
    _prefix = "volatility"
    _min_length = 2
    _warm_up_offset = 0
