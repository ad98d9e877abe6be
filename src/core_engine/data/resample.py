"""Causal resampling to a higher timeframe, and alignment back onto the base grid.

The naive pandas recipe — ``df.resample("4h").agg(...)`` then joining the result onto the
5-minute grid at each 4h candle's *open* time — hands every 5-minute row the high, low and
close of the next four hours: the classic leak. Here a higher-timeframe candle
``[T, T + Δ)`` is known only at its close ``T + Δ`` (DESIGN.md §1):

* :func:`resample` labels each aggregated candle by its open time, like every candle in the
  library, and by default keeps only buckets whose whole span lies inside the data, so a
  half-formed candle at either end never masquerades as a finished one;
* :func:`align_to_base` places each higher-timeframe value on the base row of the *last* base
  candle inside it (the row that closes at ``T + Δ``) and carries it forward until the next
  higher-timeframe candle closes. A decision at ``t`` reading base rows closed by ``t``
  therefore only sees higher-timeframe candles closed by ``t``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core_engine._validate import check_instance
from core_engine.data._kernels import resample_ohlcv_2d
from core_engine.data.candles import validate_candles
from core_engine.data.panel import FIELDS, Panel
from core_engine.data.timeframes import format_timeframe, timeframe_ns
from core_engine.errors import ConfigError

__all__ = ["align_to_base", "resample"]


def _ratio(base_ns: int, target_ns: int, timeframe) -> int:
    if target_ns < base_ns or target_ns % base_ns:
        raise ConfigError(
            f"Cannot resample {format_timeframe(base_ns)} candles to {timeframe!r}: the target "
            f"timeframe must be a whole multiple of {format_timeframe(base_ns)}."
        )
    return target_ns // base_ns


def resample(data: Panel | pd.DataFrame, timeframe: str, *, complete_only: bool = True,
             base_timeframe: str | None = None):
    """Aggregate candles to ``timeframe`` causally (open-time labels, whole buckets only).

    Parameters
    ----------
    data : Panel or candle frame
        The base candles.
    timeframe : str
        The target, a whole multiple of the base timeframe (``"1h"``, ``"4h"``).
    complete_only : bool
        Drop the first and last bucket when the data do not span them entirely (default).
        Buckets with missing candles inside are kept, aggregated from the candles present.
    base_timeframe : str, optional
        The timeframe of a candle frame (inferred when omitted; ignored for a Panel).

    Returns
    -------
    Panel or pandas.DataFrame
        Same kind as ``data``. A bucket with no candle at all is a NaN row on a Panel and
        absent from a frame.
    """
    if isinstance(data, pd.DataFrame):
        validate_candles(data, base_timeframe)
        panel = Panel.from_frames({"_": data}, base_timeframe, validate=False)
        out = resample(panel, timeframe, complete_only=complete_only)
        return out.frame("_")
    if not isinstance(data, Panel):
        raise ConfigError(f"resample expects a Panel or a candle frame. Got {type(data).__name__}.")
    base_ns = data.step_ns
    target_ns = timeframe_ns(timeframe)
    ratio = _ratio(base_ns, target_ns, timeframe)
    if data.n_times == 0:
        return Panel._trusted(data.index, data.symbols, format_timeframe(target_ns),
                              **{f: getattr(data, f) for f in FIELDS})
    first_ns = int(data.index.asi8[0])
    bucket0 = first_ns // target_ns * target_ns
    offset = (first_ns - bucket0) // base_ns
    n_out = (data.n_times + offset + ratio - 1) // ratio
    out = resample_ohlcv_2d(data.open, data.high, data.low, data.close, data.volume,
                            offset, ratio, n_out)
    index = pd.DatetimeIndex(bucket0 + np.arange(n_out, dtype=np.int64) * target_ns, tz="UTC")
    lo, hi = 0, n_out
    if complete_only:
        if offset:
            lo = 1
        if (data.n_times + offset) % ratio:
            hi = n_out - 1
    fields = {name: np.asfortranarray(out[k, lo:hi]) for k, name in enumerate(FIELDS)}
    # aggregated from a panel's candles: valid when they are (a poisoned panel stays poisoned)
    return Panel._trusted(index[lo:hi], data.symbols, format_timeframe(target_ns), **fields)


def align_to_base(values: np.ndarray, higher: Panel, base: Panel) -> np.ndarray:
    """Place higher-timeframe values onto the base grid at the time they become known.

    Parameters
    ----------
    values : numpy.ndarray
        ``(higher.n_times, n_symbols)`` values computed on ``higher`` (row ``k`` uses candles
        up to and including higher candle ``k``).
    higher : Panel
        The resampled panel the values were computed on.
    base : Panel
        The base panel (same symbols).

    Returns
    -------
    numpy.ndarray
        ``(base.n_times, n_symbols)``: base row ``i`` holds the value of the latest higher
        candle whose close ``T + Δ`` is at or before the base candle's close
        ``index[i] + δ``; NaN before the first one.

    Raises
    ------
    ConfigError
        ``higher`` or ``base`` is not a Panel, ``values`` is not numeric or not of shape
        ``(higher.n_times, higher.n_symbols)``, or the panels' symbols differ.
    """
    check_instance(higher, Panel, "higher", "align_to_base",
                   expected="a Panel (the resampled panel the values were computed on)")
    check_instance(base, Panel, "base", "align_to_base", expected="a Panel (the base panel)")
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            "The 'values' parameter of align_to_base must be a numeric array of shape "
            f"{(higher.n_times, higher.n_symbols)}. Got {type(values).__name__} ({exc})."
        ) from None
    if values.shape != (higher.n_times, higher.n_symbols):
        raise ConfigError(
            f"The 'values' parameter of align_to_base has shape {values.shape}; expected "
            f"{(higher.n_times, higher.n_symbols)} (the higher panel's times × symbols)."
        )
    if higher.symbols != base.symbols:
        raise ConfigError("The 'higher' and 'base' parameters of align_to_base must be panels "
                          f"of the same symbols. Got {higher.symbols[:5]} and {base.symbols[:5]}.")
    higher_close = higher.index.asi8 + higher.step_ns
    base_close = base.index.asi8 + base.step_ns
    # position of the latest higher candle closed by each base close
    pos = np.searchsorted(higher_close, base_close, side="right") - 1
    out = np.full((base.n_times, base.n_symbols), np.nan, order="F")
    ok = pos >= 0
    out[ok] = values[pos[ok]]
    return out
