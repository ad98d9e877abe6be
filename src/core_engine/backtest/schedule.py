"""Decision times of a walk-forward run and the panel rows they map to.

A decision at time ``t`` reads the row ``i`` whose candle closes at ``t``
(``index[i] + step == t``) and enters at the open of row ``i + 1``, the candle that starts at
``t`` (DESIGN.md §1). Decision times are the multiples of ``shift`` since the Unix epoch
inside ``[start, end - window]``; a time is *skipped*, with its reason recorded, when

* ``warm_up`` — the decision row is before the features' warm-up (``i < lookback``), or no
  candle has closed yet;
* ``window_past_data_end`` — the window ``[t, t + window)`` runs past the last candle of the
  panel;
* ``no_entry_candle`` — no symbol has a candle starting at ``t`` (an exchange outage), so no
  trade can be entered.

A symbol whose own entry candle is missing while others trade is handled per pick by the
simulation (no trade, counted in the data-quality section).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked

__all__ = ["SKIP_REASONS", "DecisionSchedule", "decision_schedule"]

SKIP_REASONS = ("warm_up", "window_past_data_end", "no_entry_candle")


@keyword_checked
@dataclass(frozen=True, kw_only=True)
class DecisionSchedule:
    """The evaluated decision times and the rows they map to.

    Attributes
    ----------
    times : pandas.DatetimeIndex
        Evaluated decision times (UTC), increasing.
    rows : numpy.ndarray
        int64 decision row ``i`` of each time (the candle closing at ``t``); the entry row is
        ``rows + 1``.
    window_candles : int
        Candles in one holding window (``window / step``).
    skipped : pandas.DataFrame
        One row per skipped decision time: ``decision_time``, ``reason`` (see
        :data:`SKIP_REASONS`).
    """

    times: pd.DatetimeIndex
    rows: np.ndarray
    window_candles: int
    skipped: pd.DataFrame

    @property
    def skip_counts(self) -> dict[str, int]:
        """Number of skipped decision times per reason (every reason present, 0 if none)."""
        counts = self.skipped["reason"].value_counts()
        return {reason: int(counts.get(reason, 0)) for reason in SKIP_REASONS}


def decision_schedule(
    index_ns: np.ndarray,
    step_ns: int,
    *,
    window_ns: int,
    shift_ns: int,
    start_ns: int | None = None,
    end_ns: int | None = None,
    lookback: int = 0,
    entry_open: np.ndarray | None = None,
) -> DecisionSchedule:
    """Return the decision times of a run and their panel rows.

    Parameters
    ----------
    index_ns : numpy.ndarray
        int64 candle open times of the panel grid (regular, step ``step_ns``).
    step_ns, window_ns, shift_ns : int
        Candle step, holding window and decision cadence in nanoseconds. ``window_ns`` and
        ``shift_ns`` must be multiples of ``step_ns`` (the caller validates).
    start_ns, end_ns : int, optional
        The run covers decision times ``start <= t <= end - window``. Defaults: the first
        candle's open and the last candle's close.
    lookback : int
        Warm-up candles of the features: a decision row ``i`` needs ``i >= lookback``.
    entry_open : numpy.ndarray, optional
        The ``(n_times, n_symbols)`` open prices. Times whose entry row is NaN for every
        symbol are skipped as ``no_entry_candle`` (only the entry rows are read).

    Returns
    -------
    DecisionSchedule
    """
    n_times = int(index_ns.shape[0])
    window_candles = int(window_ns // step_ns)
    empty_skips = pd.DataFrame({"decision_time": pd.DatetimeIndex([], tz="UTC"),
                                "reason": pd.Series([], dtype=object)})
    if n_times == 0:
        return DecisionSchedule(times=pd.DatetimeIndex([], tz="UTC"), rows=np.empty(0, np.int64),
                                window_candles=window_candles, skipped=empty_skips)
    first, data_end = int(index_ns[0]), int(index_ns[-1]) + step_ns
    lo = first if start_ns is None else int(start_ns)
    hi = (data_end if end_ns is None else int(end_ns)) - window_ns
    k0 = -(-lo // shift_ns)  # ceil division: first multiple of shift >= start
    k1 = hi // shift_ns
    if k1 < k0:
        return DecisionSchedule(times=pd.DatetimeIndex([], tz="UTC"), rows=np.empty(0, np.int64),
                                window_candles=window_candles, skipped=empty_skips)
    times = np.arange(k0, k1 + 1, dtype=np.int64) * shift_ns
    rows = (times - step_ns - first) // step_ns
    reason = np.full(times.shape, -1, dtype=np.int64)
    reason[rows < lookback] = 0
    # the window's last candle is row i + W; it must exist on the grid
    reason[(reason < 0) & (rows + window_candles > n_times - 1)] = 1
    if entry_open is not None:
        ok = reason < 0
        entry_rows = rows[ok] + 1
        missing = np.isnan(entry_open[entry_rows]).all(axis=1)
        idx = np.flatnonzero(ok)[missing]
        reason[idx] = 2
    keep = reason < 0
    skipped = pd.DataFrame({
        "decision_time": pd.DatetimeIndex(times[~keep], tz="UTC"),
        "reason": pd.Series([SKIP_REASONS[r] for r in reason[~keep]], dtype=object),
    })
    return DecisionSchedule(times=pd.DatetimeIndex(times[keep], tz="UTC"), rows=rows[keep],
                            window_candles=window_candles, skipped=skipped)
