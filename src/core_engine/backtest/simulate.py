"""Simulate picks over their holding windows: the broker model of slices mode.

Semantics (one long position per pick, each independent of the others):

* **Entry** at the open of row ``i + 1`` (the candle that starts at the decision time ``t``),
  ``entry_price = open × (1 + slippage)``. If that candle is missing there is no trade
  (status ``no_entry_candle``); prices are never forward-filled into a fill.
* **Exit levels** are fixed at entry from the entry price (after slippage):
  ``stop = entry × (1 − stop_loss_pct/100)`` or ``entry − stop_loss_atr × ATR``,
  ``target = entry × (1 + take_profit_pct/100)`` or ``entry + take_profit_atr × ATR``, where
  ATR is the value at the decision row ``i`` (known at ``t``). The trailing level is
  ``highest × (1 − trailing_pct/100)`` or ``highest − trailing_atr × ATR`` where ``highest``
  starts at the entry price and is raised by each candle's high **after** that candle has
  been checked: the trail used on candle ``k`` only knows highs up to ``k − 1``, because
  inside one candle we cannot tell whether the high came before the low. The entry
  candle's own high therefore moves the trail from the next candle on, like any candle.
* **Candle by candle**, ``k = i+1 .. i+W`` (``W = window / step``): a missing candle is
  skipped and counted in ``gaps_in_window``. The stop in force is the higher of the fixed
  stop and the trail (reason ``stop_loss`` or ``trailing_stop`` accordingly; a tie
  counts as ``stop_loss``). In order:
  open at or below the stop → exit at the open (a gap through the stop fills worse than
  the level); open at or above the target → exit at the open (a gap through the target
  fills better); low at or below the stop → exit at the stop fill (``ExitRules.stop_fill``:
  the level by default, else the candle's low or ``level − k × (high − low)`` floored at
  the low; ``worst_case_return_pct`` is the return had it filled at the low), and if the
  same candle's
  high also reached the target the stop is assumed first, the trade is flagged
  ``ambiguous`` and ``best_return_pct`` holds the return had the target filled instead;
  high at or above the target → exit at the target level. (When the open is already beyond
  a level the order is known, so such a candle is never ambiguous.)
* **Window end**: otherwise exit at the open of row ``i + W + 1`` (the candle starting at
  ``t + window``). If that candle is missing (an exchange outage), the position is still
  held and exits at the open of the first candle after it that exists; when that open is
  already beyond the stop or the target, the exit is named ``stop_loss``/``trailing_stop``/
  ``take_profit`` accordingly; ``exit_delayed_by`` counts the candles it was held past its
  window. ``max_exit_delay`` (candles, default unlimited) caps that wait: when no open
  exists within ``max_exit_delay`` candles after the due one, the position exits at the
  close of the last present candle before the gap, flagged ``exit_delay_capped`` and
  ``exit_at_last_close`` (a choice the user makes knowing it peeks at the outage: a live
  position could not have left then). When no later candle exists at all (end of data,
  delisting) it exits at that same last close, flagged ``exit_at_last_close``.
* **Costs**: ``exit_price = raw_exit × (1 − slippage)``;
  ``return = exit_price × (1 − fee) / (entry_price × (1 + fee)) − 1``; ``return_pct`` is in
  percent (1.0 = 1 %).
* **Max drawdown** (percent, ≥ 0): ``(1 − lowest / entry_price) × 100`` where
  ``entry_price`` is the fill after slippage and ``lowest`` the lowest *raw* price the
  position was exposed to (no fees): lows of every candle held before the exit candle, and
  on the exit candle its low for a target exit inside the candle (order unknown, so
  conservative), the stop level for a stop inside the candle, the open for exits at the
  open; the raw exit price is included too.
* **Exit time**: the candle's open time for exits at an open; the candle's close time
  (``open + step``) for exits at a level inside the candle or at the last close.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine.backtest._kernels import (
    EXIT_REASON_NAMES,
    STATUS_NAMES,
    STOP_FILL_NAMES,
    TRADE_DTYPE,
    simulate_picks_2d,
    simulate_picks_serial,
)
from core_engine.data.panel import Panel
from core_engine.errors import ConfigError
from core_engine.risk.exits import ExitRules

__all__ = ["DISTANCE_KEYS", "EXIT_REASON_NAMES", "STATUS_NAMES", "TRADE_DTYPE", "Picks",
           "records_to_frame", "resolve_exit_distances", "simulate_picks"]

#: The per-pick exit distances :func:`resolve_exit_distances` returns and
#: ``simulate_picks(..., distances=)`` takes.
DISTANCE_KEYS = ("stop_frac", "stop_dist", "target_frac", "target_dist", "trail_frac",
                 "trail_dist")

#: Candle steps (picks × window) above which the parallel kernel pays for waking threads.
PARALLEL_MIN_STEPS = 2_000_000


@keyword_checked
@dataclass(frozen=True, kw_only=True)
class Picks:
    """Flat arrays, one entry per pick (a symbol chosen at a decision time).

    Attributes
    ----------
    rows : numpy.ndarray
        int64 decision row ``i`` (the candle closing at the decision time).
    cols : numpy.ndarray
        int64 symbol column in the panel.
    weights, scores : numpy.ndarray
        float64 capital weight and the strategy's score.
    ranks : numpy.ndarray
        int64 rank of the pick at its decision time (1 = best).
    """

    rows: np.ndarray
    cols: np.ndarray
    weights: np.ndarray
    ranks: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        size = np.asarray(self.rows).shape[0]
        for name in ("rows", "cols", "weights", "ranks", "scores"):
            dtype = np.float64 if name in ("weights", "scores") else np.int64
            values = np.ascontiguousarray(getattr(self, name), dtype=dtype)
            if values.ndim != 1 or values.shape[0] != size:
                raise ConfigError(
                    f"Picks.{name} must be a 1-D array of length {size} like 'rows'. "
                    f"Got shape {values.shape}."
                )
            object.__setattr__(self, name, values)

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @classmethod
    def empty(cls) -> Picks:
        z = np.empty(0)
        return cls(rows=z, cols=z, weights=z, ranks=z, scores=z)


def resolve_exit_distances(exits: ExitRules | None, picks: Picks,
                           atr: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Turn exit rules into per-pick fractions and absolute price distances.

    Returns a dict with ``stop_frac, stop_dist, target_frac, target_dist, trail_frac,
    trail_dist`` (float64, one per pick, NaN = rule absent). ATR rules use ``atr[row, col]``
    at the decision row; a NaN ATR there raises (the engine makes such symbols ineligible).
    """
    n = len(picks)
    out = {key: np.full(n, np.nan) for key in DISTANCE_KEYS}
    if exits is None:
        return out
    names = {"stop": "stop_loss", "target": "take_profit", "trail": "trailing"}
    atr_at = None
    if exits.uses_atr:
        if atr is None:
            raise ConfigError("Exit rules in ATR multiples need the ATR array; got atr=None.")
        atr_at = atr[picks.rows, picks.cols] if n else np.empty(0)
        bad = ~np.isfinite(atr_at)
        if bad.any():
            p = int(np.flatnonzero(bad)[0])
            raise ConfigError(
                f"ATR is NaN at decision row {int(picks.rows[p])}, column {int(picks.cols[p])}; "
                "ATR-based exits need a finite ATR at every pick."
            )
    for short, rule in names.items():
        pct = getattr(exits, f"{rule}_pct")
        mult = getattr(exits, f"{rule}_atr")
        if pct is not None:
            out[f"{short}_frac"][:] = float(pct) / 100.0
        if mult is not None:
            assert atr_at is not None  # an ATR multiple makes exits.uses_atr True (set above)
            out[f"{short}_dist"][:] = float(mult) * atr_at
    return out


def simulate_picks(panel: Panel, picks: Picks, *, window_candles: int, fee_bps: float = 10.0,
                   slippage_bps: float = 0.0, exits: ExitRules | None = None,
                   atr: np.ndarray | None = None, max_exit_delay: int | None = None,
                   distances: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """Simulate every pick over its window; return one :data:`TRADE_DTYPE` record per pick.

    Parameters
    ----------
    panel : Panel
        The candles (only open/high/low/close are read).
    picks : Picks
        Decision rows and columns (plus weights/ranks/scores, carried by the caller).
    window_candles : int
        ``W``, candles in the holding window (≥ 1).
    fee_bps, slippage_bps : float
        Fee per side and adverse slippage per side, in basis points.
    exits : ExitRules, optional
        Stop/target/trailing rules; ``None`` exits at the window end only.
    atr : numpy.ndarray, optional
        ``(n_times, n_symbols)`` ATR, required when ``exits`` uses ATR multiples.
    max_exit_delay : int, optional
        Candles a time exit may wait for a price after an outage; ``None`` = unlimited.
    distances : dict of numpy.ndarray, optional
        Per-pick exit levels instead of those of ``exits``: the six arrays of
        :func:`resolve_exit_distances` (:data:`DISTANCE_KEYS`, one float per pick, NaN = no
        such rule; fractions of the entry fill and absolute price distances). Picks that
        differ only in their exit rules then run as one kernel call (a sweep stacks the same
        picks once per rule). With ``distances``, ``exits`` may only carry the stop-fill
        model (``stop_fill``, ``stop_fill_range``; no level) and ``atr`` is not given.

    Returns
    -------
    numpy.ndarray
        Structured array (dtype :data:`TRADE_DTYPE`), record ``p`` for pick ``p``. Picks
        without an entry candle have ``status == 1`` and NaN prices.

    Raises
    ------
    ConfigError
        If ``window_candles`` is not a positive integer, ``max_exit_delay`` not None or an
        integer >= 0, a pick row/column is off the panel, ATR exits lack a finite ATR, or
        ``distances`` is malformed (a key missing or unknown, a length other than the
        picks', a value not NaN nor >= 0) or given with exit levels or ``atr``.
    """
    if isinstance(window_candles, bool) or not isinstance(window_candles, (int, np.integer)) \
            or window_candles < 1:
        raise ConfigError(
            f"The 'window_candles' parameter of simulate_picks must be a positive integer. "
            f"Got {window_candles!r}."
        )
    if max_exit_delay is not None and (
            isinstance(max_exit_delay, bool) or not isinstance(max_exit_delay, (int, np.integer))
            or max_exit_delay < 0):
        raise ConfigError(
            "The 'max_exit_delay' parameter of simulate_picks must be None (unlimited) or a "
            f"number of candles >= 0. Got {max_exit_delay!r}."
        )
    n_times, n_symbols = panel.n_times, panel.n_symbols
    if len(picks):
        if picks.rows.min() < 0 or picks.rows.max() >= n_times:
            raise ConfigError(f"Pick rows must lie in [0, {n_times - 1}]. Got "
                              f"{int(picks.rows.min())}..{int(picks.rows.max())}.")
        if picks.rows.max() + window_candles >= n_times:
            raise ConfigError(
                f"A pick at row {int(picks.rows.max())} with a {window_candles}-candle window "
                f"runs past the last row {n_times - 1} of the panel."
            )
        if picks.cols.min() < 0 or picks.cols.max() >= n_symbols:
            raise ConfigError(f"Pick columns must lie in [0, {n_symbols - 1}]. Got "
                              f"{int(picks.cols.min())}..{int(picks.cols.max())}.")
    if distances is None:
        dist = resolve_exit_distances(exits, picks, atr)
    else:
        dist = _check_distances(distances, len(picks), exits, atr)
    stop_fill = STOP_FILL_NAMES.index(exits.stop_fill) if exits is not None else 0
    stop_fill_frac = float(exits.stop_fill_range or 0.0) if exits is not None else 0.0
    out = np.zeros(len(picks), dtype=TRADE_DTYPE)
    if not len(picks):
        return out
    index0 = int(panel.index.asi8[0])
    kernel = simulate_picks_2d if len(picks) * window_candles > PARALLEL_MIN_STEPS \
        else simulate_picks_serial
    kernel(panel.open, panel.high, panel.low, panel.close, picks.rows, picks.cols,
           int(window_candles), float(fee_bps) / 1e4, float(slippage_bps) / 1e4,
           dist["stop_frac"], dist["stop_dist"], dist["target_frac"], dist["target_dist"],
           dist["trail_frac"], dist["trail_dist"], index0, int(panel.step_ns),
           -1 if max_exit_delay is None else int(max_exit_delay), stop_fill, stop_fill_frac,
           out)
    return out


def _check_distances(distances: Any, n_picks: int, exits: ExitRules | None,
                     atr: np.ndarray | None) -> dict[str, np.ndarray]:
    """The validated ``distances`` of :func:`simulate_picks`, as contiguous float64 arrays."""
    if exits is not None and exits.active:
        raise ConfigError(
            "simulate_picks takes exit levels from 'exits' or from 'distances', not both. Got "
            f"distances with exits={exits!r}; keep only stop_fill/stop_fill_range in exits."
        )
    if atr is not None:
        raise ConfigError("simulate_picks does not read 'atr' when 'distances' are given (ATR "
                          "multiples are already prices there). Got an atr array too.")
    if not isinstance(distances, Mapping):
        raise ConfigError(f"The 'distances' parameter of simulate_picks must be a dict with "
                          f"the keys {list(DISTANCE_KEYS)}. Got {type(distances).__name__}.")
    unknown = sorted(set(map(str, distances)) - set(DISTANCE_KEYS))
    missing = [k for k in DISTANCE_KEYS if k not in distances]
    if unknown or missing:
        raise ConfigError(f"The 'distances' of simulate_picks must have exactly the keys "
                          f"{list(DISTANCE_KEYS)}. Missing {missing}, unknown {unknown}.")
    out = {}
    for key in DISTANCE_KEYS:
        values = np.ascontiguousarray(distances[key], dtype=np.float64)
        if values.ndim != 1 or values.shape[0] != n_picks:
            raise ConfigError(f"distances[{key!r}] of simulate_picks must be a 1-D array of "
                              f"{n_picks} values, one per pick. Got shape {values.shape}.")
        bad = ~(np.isnan(values) | (np.isfinite(values) & (values >= 0)))
        if bad.any():
            p = int(np.flatnonzero(bad)[0])
            raise ConfigError(f"distances[{key!r}] of simulate_picks must be NaN (no such rule) "
                              f"or a number >= 0. Got {float(values[p])!r} for pick {p}.")
        out[key] = values
    return out


def records_to_frame(records: np.ndarray, picks: Picks, panel: Panel) -> pd.DataFrame:
    """The trades DataFrame from simulated records (traded picks only), in pick order."""
    traded = records["status"] == 0
    rec = records[traded]
    symbols = np.asarray(panel.symbols, dtype=object)
    rows = picks.rows[traded]
    step = panel.step_ns
    index0 = int(panel.index.asi8[0]) if panel.n_times else 0
    frame = pd.DataFrame({
        "symbol": symbols[picks.cols[traded]],
        "decision_time": pd.DatetimeIndex(index0 + (rows + 1) * step, tz="UTC"),
        "entry_time": pd.DatetimeIndex(rec["entry_time"], tz="UTC"),
        "exit_time": pd.DatetimeIndex(rec["exit_time"], tz="UTC"),
        "entry_price": rec["entry_price"],
        "exit_price": rec["exit_price"],
        "direction": "long",
        "weight": picks.weights[traded],
        "return_pct": rec["return_pct"],
        "best_return_pct": rec["best_return_pct"],
        "worst_case_return_pct": rec["worst_case_return_pct"],
        "max_drawdown": rec["max_drawdown"],
        "exit_reason": np.asarray(EXIT_REASON_NAMES, dtype=object)[
            rec["exit_reason"].astype(np.int64)],
        "rank": picks.ranks[traded],
        "score": picks.scores[traded],
        "ambiguous": rec["ambiguous"].astype(bool),
        "gaps_in_window": rec["gaps_in_window"].astype(np.int64),
        "exit_at_last_close": rec["exit_at_last_close"].astype(bool),
        "exit_delayed_by": rec["exit_delayed_by"].astype(np.int64),
        "exit_delay_capped": rec["exit_delay_capped"].astype(bool),
    })
    return frame
