"""Momentum features: RSI, MACD (line, signal, histogram and its slope), n-candle return."""

from __future__ import annotations

from typing import ClassVar

from core_engine.features import _kernels
from core_engine.features.base import KernelFeature, LengthFeature

__all__ = ["MACD", "RSI", "Momentum"]


class RSI(LengthFeature):
    """Relative Strength Index with Wilder smoothing; equals TA-Lib ``RSI``.

    Parameters
    ----------
    length : int, default 14
        Smoothing period (>= 2).

    Notes
    -----
    Column ``rsi_{length}``, in [0, 100]. Warm-up ``length`` rows (the first value averages
    the first ``length`` close-to-close changes). 0 while the average gain and loss are both
    exactly zero (a flat market), as TA-Lib. Missing candles are skipped.

    Examples
    --------
    >>> RSI(length=14)
    RSI(length=14)
    >>> RSI(14).columns, RSI(14).lookback
    (('rsi_14',), 14)
    """

    name = "rsi"
    _defaults: ClassVar[dict] = {"length": 14}
    _kind = _kernels.RSI
    _prefix = "rsi"
    _min_length = 2
    _warm_up_offset = 0


class MACD(KernelFeature):
    """MACD line, signal, histogram and histogram slope; equals TA-Lib ``MACD``.

    Parameters
    ----------
    fast, slow, signal : int, default 12, 26, 9
        EMA periods (each >= 2, ``fast < slow``).

    Notes
    -----
    Columns ``macd_{f}_{s}_{g}``, ``macd_signal_…``, ``macd_hist_…`` and
    ``macd_hist_slope_…`` (``hist[i] - hist[i-1]``). As in TA-Lib, the fast EMA starts at the
    slow EMA's first row ``slow - 1`` seeded with the mean of the ``fast`` closes ending there
    (not the first ``fast`` closes), the signal EMA is seeded with the mean of the first
    ``signal`` MACD values, and line, signal and histogram are reported from row
    ``slow + signal - 2``, which is :attr:`lookback` (TA-Lib's lookback, the first row with
    a value). The slope needs two histogram values and starts one row later.
    """

    name = "macd"
    _defaults: ClassVar[dict] = {"fast": 12, "slow": 26, "signal": 9}
    _kind = _kernels.MACD
    fast: int  # parameters, set by FeatureComputer.__init__
    slow: int
    signal: int

    def _check_params(self) -> None:
        self._require_fast_below_slow(minimum=2)
        self._require_int("signal", 2)

    @property
    def suffix(self) -> str:
        return f"{self.fast}_{self.slow}_{self.signal}"

    @property
    def lookback(self) -> int:
        return int(self.slow + self.signal - 2)

    @property
    def columns(self) -> tuple[str, ...]:
        s = self.suffix
        return (f"macd_{s}", f"macd_signal_{s}", f"macd_hist_{s}", f"macd_hist_slope_{s}")

    def _kernel_params(self):
        return (self.fast, self.slow, self.signal), ()


class Momentum(LengthFeature):
    """Return over ``length`` candles: ``close[i] / close[i - length] - 1``.

    Equals TA-Lib ``ROCP`` (``ROC / 100``). Counted in present candles: on a panel with
    missing candles, ``i - length`` is the ``length``-th present candle before ``i``.

    Parameters
    ----------
    length : int, default 24
        Candles back (>= 1). Column ``return_{length}``, warm-up ``length`` rows.
    """

    name = "momentum"
    _defaults: ClassVar[dict] = {"length": 24}
    _kind = _kernels.MOMENTUM
    _prefix = "return"
    _warm_up_offset = 0
