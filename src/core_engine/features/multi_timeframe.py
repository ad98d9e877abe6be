"""Multi-timeframe features: a feature computed on higher-timeframe candles, causally.

``MultiTimeframe(RSI(14), "1h")`` on a 5m panel builds 1h candles with
:func:`core_engine.data.resample.resample` (open-time labels, complete buckets only),
computes the RSI on them and places each 1h value on the 5m row of the *last* 5m candle
inside that hour (:func:`core_engine.data.resample.align_to_base`), carried forward. A 5m
row therefore only sees 1h candles that had closed when that 5m candle closed: the value at
row ``i`` from all data equals the value from data cut after row ``i``.

The naive recipe (``df.resample("1h").agg(...)`` then joining on the 1h *open* time) hands
the first 5m rows of each hour that hour's close; the tests show it fails
:func:`core_engine.testing.check_feature` while this passes.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from core_engine.data.candles import validate_candles
from core_engine.data.panel import Panel
from core_engine.data.resample import align_to_base, resample
from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError
from core_engine.features.base import FeatureComputer, _check_panel, _frame_rows

__all__ = ["MultiTimeframe"]


class MultiTimeframe(FeatureComputer):
    """Compute ``computer`` on ``timeframe`` candles and align it back onto the base grid.

    Parameters
    ----------
    computer : FeatureComputer
        The feature to run on the higher timeframe.
    timeframe : str, default "1h"
        The higher timeframe, a whole multiple of the data's timeframe.
    base_timeframe : str, default "5m"
        The timeframe of the data: the grid of a frame given to :meth:`compute` (which must
        lie on it) and the unit of :attr:`lookback`. :meth:`compute_panel` uses the panel's
        own timeframe.

    Notes
    -----
    Columns are the computer's columns suffixed ``_{timeframe}`` (``rsi_14_1h``). Warm-up:
    ``(computer.lookback + 1) * ratio - 1`` base rows when the data start on a
    ``timeframe`` boundary, up to ``ratio - 1`` more otherwise (the first partial bucket is
    dropped). A higher candle with some base candles missing is built from those present; one
    with none is a missing candle for ``computer``. Missing base candles are NaN. A symbol
    whose first candle falls inside a higher candle (listed later than the panel starts)
    has that partial first higher candle dropped, exactly as :meth:`compute` on its own
    frame does, so the panel and frame paths agree.

    Examples
    --------
    >>> from core_engine.features import RSI
    >>> MultiTimeframe(RSI(14), "1h").columns
    ('rsi_14_1h',)
    """

    name = "multi_timeframe"
    _defaults: ClassVar[dict] = {"computer": None, "timeframe": "1h", "base_timeframe": "5m"}
    computer: FeatureComputer  # parameters, set by FeatureComputer.__init__
    timeframe: str
    base_timeframe: str

    def _check_params(self) -> None:
        if not isinstance(self.computer, FeatureComputer):
            raise ConfigError(
                "The 'computer' parameter of MultiTimeframe must be a FeatureComputer such "
                f"as RSI(14). Got {self.computer!r}."
            )
        high = timeframe_ns(self.timeframe, name="timeframe")
        base = timeframe_ns(self.base_timeframe, name="base_timeframe")
        if high < base or high % base:
            raise ConfigError(
                f"The 'timeframe' parameter of MultiTimeframe must be a whole multiple of "
                f"base_timeframe {self.base_timeframe!r}. Got {self.timeframe!r}."
            )

    @property
    def ratio(self) -> int:
        """Base candles per higher-timeframe candle."""
        return timeframe_ns(self.timeframe) // timeframe_ns(self.base_timeframe)

    @property
    def lookback(self) -> int:
        return (self.computer.lookback + 1) * self.ratio - 1

    def _gap_free(self, candles: pd.DataFrame) -> bool:
        # the lookback counts base-timeframe candles: evenly spaced wider is not gap-free
        ns = candles["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        return bool(np.all(np.diff(ns) == timeframe_ns(self.base_timeframe)))

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f"{c}_{self.timeframe}" for c in self.computer.columns)

    def _compute_frame(self, candles: pd.DataFrame) -> pd.DataFrame:
        validate_candles(candles, self.base_timeframe)
        panel = Panel.from_frames({"_": candles}, self.base_timeframe, validate=False)
        values = self.compute_panel(panel)
        rows = _frame_rows(candles, panel)
        return pd.DataFrame({c: values[c][rows, 0] for c in self.columns})

    def compute_panel(self, panel: Panel) -> dict[str, np.ndarray]:
        _check_panel(self, panel)
        higher = _drop_partial_first_buckets(resample(panel, self.timeframe), panel)
        if higher.n_times == 0:
            return {c: np.full((panel.n_times, panel.n_symbols), np.nan, order="F")
                    for c in self.columns}
        values = self.computer.compute_panel(higher)
        missing = ~panel.present
        out = {}
        for inner, name in zip(self.computer.columns, self.columns, strict=True):
            aligned = align_to_base(values[inner], higher, panel)
            aligned[missing] = np.nan  # a missing base candle has no value, as everywhere
            out[name] = aligned
        return out


def _drop_partial_first_buckets(higher: Panel, base: Panel) -> Panel:
    """Mark as missing each symbol's first higher candle when the symbol starts inside it."""
    if higher.n_times == 0:
        return higher
    present = base.present
    has_any = present.any(axis=0)
    first_rows = present.argmax(axis=0)
    step = higher.step_ns
    starts = higher.index.asi8
    hits = []
    for j in np.flatnonzero(has_any):
        t = int(base.index.asi8[first_rows[j]])
        if t % step:
            k = int(np.searchsorted(starts, t // step * step))
            if k < len(starts) and starts[k] == t // step * step:
                hits.append((k, j))
    if not hits:
        return higher
    fields = {}
    for name in ("open", "high", "low", "close", "volume"):
        values = np.array(getattr(higher, name), order="F")
        for k, j in hits:
            values[k, j] = np.nan
        fields[name] = values
    return higher.with_fields(**fields)
