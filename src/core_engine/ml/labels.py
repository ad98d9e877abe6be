"""Cost-aware labels on the engine's own fill convention (DESIGN.md §1, §10).

A label of the decision at ``t`` (panel row ``i``, the candle closing at ``t``) is the
outcome of the trade ``walk_forward`` would make there: entry at the open of the candle
starting at ``t`` plus adverse slippage, exit at the open of the candle starting at
``t + window`` (through an outage: the first open after it), fees on both sides — and, for
triple-barrier labels, the stop-loss, take-profit and trailing rules of
:class:`~core_engine.risk.ExitRules` checked candle by candle, stop first when one candle
touches both. The labels are *computed by the engine's simulation*
(:func:`core_engine.backtest.simulate_picks`, which calls the per-candle helpers of
``backtest/_kernels.py``), so a label equals the ``return_pct`` of the trade
``walk_forward`` records for the same pick; nothing is re-derived here.

Every label carries its **end**: the close of the candle in which its exit happens, the
time from which the label is known under the time rule (a window-end exit at the open of
the candle starting at ``e`` is known at ``e + timeframe``: that open is part of a candle
known at its close). Splitters purge training rows by it
(:mod:`core_engine.optimize.splitters`). A label whose exit is not in the data yet (the
window runs past the last candle and no stop or target fired before it, or the entry
candle is missing) is NaN, with its nominal end ``t + window + timeframe``; so a label is
the same on any data that contains its end, and unknown on data that does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import FrozenConfig, check_number, keyword_checked
from core_engine._validate import MAX_DURATION_YEARS, YEAR_NS, check_instance, check_integer
from core_engine.backtest.simulate import EXIT_REASON_NAMES, Picks, simulate_picks
from core_engine.data.panel import FIELDS, Panel
from core_engine.data.timeframes import format_timeframe, timeframe_ns
from core_engine.errors import ConfigError
from core_engine.risk.exits import ExitRules

__all__ = ["ForwardReturn", "Labels", "TripleBarrier", "binary_label", "decision_rows",
           "forward_return_label", "triple_barrier_label"]

_TAKE_PROFIT = EXIT_REASON_NAMES.index("take_profit")
_WINDOW_END = EXIT_REASON_NAMES.index("window_end")


@keyword_checked
@dataclass(frozen=True, eq=False)
class Labels:
    """Labels of a panel at some decision rows (one per symbol).

    Attributes
    ----------
    rows : numpy.ndarray
        int64 decision rows ``i`` (the candle closing at the decision time).
    times : pandas.DatetimeIndex
        Decision times ``t = index[i] + timeframe`` (UTC).
    symbols : tuple of str
    values : numpy.ndarray
        ``(len(rows), n_symbols)`` float label; NaN = unknown (see the module docstring).
    return_pct : numpy.ndarray
        The trade's net return in percent (fees and slippage included), NaN when unknown.
    end : numpy.ndarray
        int64 UTC nanoseconds: when each label is known (the close of its exit candle),
        the nominal ``t + window + timeframe`` when the label is unknown.
    exit_time : numpy.ndarray
        int64 UTC nanoseconds of the trade's exit (as in ``walk_forward``'s trades); the
        nominal end for unknown labels.
    exit_reason : numpy.ndarray
        int8 index into ``EXIT_REASON_NAMES`` (``-1`` unknown).
    name : str
        What the values are (``"return_pct"``, ``"return_pct > 0.2"``, ``"barrier"``).
    window_ns, step_ns : int
    """

    rows: np.ndarray
    times: pd.DatetimeIndex
    symbols: tuple[str, ...]
    values: np.ndarray
    return_pct: np.ndarray
    end: np.ndarray
    exit_time: np.ndarray
    exit_reason: np.ndarray
    name: str
    window_ns: int
    step_ns: int

    @property
    def known(self) -> np.ndarray:
        """``(len(rows), n_symbols)`` bool: the label is known (not NaN)."""
        return np.isfinite(self.values)

    def frame(self) -> pd.DataFrame:
        """One row per (decision time, symbol): ``label, return_pct, end_time, exit_time,
        exit_reason`` (unknown labels included, with NaN)."""
        n_rows, n_sym = self.values.shape
        index = pd.MultiIndex.from_arrays(
            [self.times.repeat(n_sym), np.tile(np.asarray(self.symbols, dtype=object), n_rows)],
            names=["decision_time", "symbol"])
        reasons = np.asarray(("unknown",) + tuple(EXIT_REASON_NAMES), dtype=object)
        return pd.DataFrame({
            "label": self.values.ravel(),
            "return_pct": self.return_pct.ravel(),
            "end_time": pd.DatetimeIndex(self.end.ravel(), tz="UTC"),
            "exit_time": pd.DatetimeIndex(self.exit_time.ravel(), tz="UTC"),
            "exit_reason": reasons[self.exit_reason.ravel().astype(np.int64) + 1],
        }, index=index)

    def __repr__(self) -> str:
        return (f"Labels({self.name}, {len(self.rows):,} decision times × {len(self.symbols)} "
                f"symbols, window {format_timeframe(self.window_ns)}, "
                f"{int(self.known.sum()):,} known)")


# ---------------------------------------------------------------------- decision rows
def decision_rows(panel: Panel, decision_times: Any = None, *, every: Any = None,
                  lookback: int = 0) -> np.ndarray:
    """The panel rows of some decision times (the rows whose candle closes at ``t``).

    Parameters
    ----------
    panel : Panel
    decision_times : DatetimeIndex, array of datetime64, DecisionSchedule, optional
        Times on the panel's grid; each ``t`` maps to the row ``i`` with
        ``index[i] + timeframe == t``.
    every : str, optional
        Instead of ``decision_times``: every multiple of this duration since the Unix
        epoch (the engine's rule for decision times) whose row is ``>= lookback``.
    lookback : int
        Warm-up rows skipped with ``every``.

    Returns
    -------
    numpy.ndarray
        int64 rows, increasing.

    Raises
    ------
    ConfigError
        If ``panel`` is not a Panel, ``lookback`` not an integer >= 0, or a time is off the
        grid or outside the panel.
    """
    check_instance(panel, Panel, "panel", "decision_rows")
    step = panel.step_ns
    lookback = check_integer(lookback, "lookback", "decision_rows", low=0,
                             high=MAX_DURATION_YEARS * YEAR_NS // step)
    index0 = int(panel.index.asi8[0]) if panel.n_times else 0
    if decision_times is None:
        if every is None:
            return np.arange(lookback, panel.n_times, dtype=np.int64)
        every_ns = timeframe_ns(every, name="every")
        if every_ns % step:
            raise ConfigError(f"The decision cadence {every!r} must be a multiple of the "
                              f"panel's {panel.timeframe} timeframe.")
        if not panel.n_times:
            return np.empty(0, dtype=np.int64)
        first = index0 + (lookback + 1) * step
        last = int(panel.index.asi8[-1]) + step
        times = np.arange(-(-first // every_ns), last // every_ns + 1, dtype=np.int64) * every_ns
        return (times - step - index0) // step
    times = getattr(decision_times, "times", decision_times)
    try:
        index = pd.DatetimeIndex(times)
        ns = (index.tz_convert("UTC") if index.tz is not None else index.tz_localize("UTC")
              ).as_unit("ns").asi8
    except (TypeError, ValueError, OverflowError) as exc:  # a scalar, text, a time past 2262
        raise ConfigError("The 'decision_times' must be times (a DatetimeIndex, a list of "
                          "times or a DecisionSchedule) on the panel's grid, before 2262. "
                          f"Got {type(times).__name__} {times!r:.80}.") from exc
    rows = (ns - step - index0) // step
    bad = ((ns - index0) % step != 0) | (rows < 0) | (rows >= panel.n_times)
    if bad.any():
        t = pd.Timestamp(ns[int(np.flatnonzero(bad)[0])], tz="UTC")
        raise ConfigError(
            f"The decision time {t} is not the close of a candle of the panel ({panel!r}); "
            f"decision times are candle closes on the {panel.timeframe} grid inside the data.")
    return np.asarray(rows, dtype=np.int64)


def _padded(panel: Panel, extra: int) -> Panel:
    """``panel`` with ``extra`` missing candles appended (a window may then run past the
    data: the simulation sees an outage, never a price it should not know)."""
    index = pd.date_range(panel.index[0], periods=panel.n_times + extra,
                          freq=pd.Timedelta(panel.step_ns, "ns"), tz="UTC")
    pad = np.full((extra, panel.n_symbols), np.nan)
    fields = {name: np.vstack([getattr(panel, name), pad]) for name in FIELDS}
    return Panel(index=index, symbols=panel.symbols, timeframe=panel.timeframe, **fields)


def _window(panel: Panel, window: Any) -> int:
    window_ns = timeframe_ns(window, name="window")
    if window_ns % panel.step_ns:
        raise ConfigError(f"The 'window' of a label must be a multiple of the panel's "
                          f"{panel.timeframe} timeframe. Got {window!r}.")
    return window_ns


def _simulate(panel: Panel, rows: np.ndarray, window_ns: int, fee_bps: float,
              slippage_bps: float, exits: ExitRules | None) -> dict[str, np.ndarray]:
    n_sym = panel.n_symbols
    step = panel.step_ns
    w = window_ns // step
    shape = (len(rows), n_sym)
    times = panel.index.asi8[0] + (rows + 1) * step if panel.n_times else rows
    nominal = np.repeat((times + window_ns + step)[:, None], n_sym, axis=1)
    out = {"return_pct": np.full(shape, np.nan), "end": nominal.copy(),
           "exit_time": nominal.copy(), "exit_reason": np.full(shape, -1, dtype=np.int8)}
    if not len(rows):
        return out
    pick_rows = np.repeat(rows, n_sym)
    pick_cols = np.tile(np.arange(n_sym, dtype=np.int64), len(rows))
    atr = None
    ok = np.ones(len(pick_rows), dtype=bool)
    if exits is not None and exits.uses_atr:
        from core_engine.features import ATR
        from core_engine.features.cache import compute_features

        computer = ATR(length=exits.atr_length)
        atr = compute_features([computer], panel)[computer.columns[0]]
        ok = np.isfinite(atr[pick_rows, pick_cols])
        atr = np.vstack([atr, np.full((w + 1, n_sym), np.nan)])
    picks = Picks(rows=pick_rows[ok], cols=pick_cols[ok], weights=np.ones(int(ok.sum())),
                  ranks=np.ones(int(ok.sum())), scores=np.zeros(int(ok.sum())))
    rec = simulate_picks(_padded(panel, w + 1), picks, window_candles=w, fee_bps=fee_bps,
                         slippage_bps=slippage_bps, exits=exits, atr=atr)
    known = (rec["status"] == 0) & ~rec["exit_at_last_close"]
    flat = np.flatnonzero(ok)[known]
    rec = rec[known]
    index0 = int(panel.index.asi8[0])
    for name, values in (("return_pct", rec["return_pct"]),
                         ("end", index0 + (rec["exit_row"] + 1) * step),
                         ("exit_time", rec["exit_time"]),
                         ("exit_reason", rec["exit_reason"])):
        out[name].ravel()[flat] = values
    return out


def _labels(panel: Panel, rows: np.ndarray, window_ns: int, sim: dict, values: np.ndarray,
            name: str) -> Labels:
    step = panel.step_ns
    index0 = int(panel.index.asi8[0]) if panel.n_times else 0
    return Labels(rows=rows, times=pd.DatetimeIndex(index0 + (rows + 1) * step, tz="UTC"),
                  symbols=panel.symbols, values=values, return_pct=sim["return_pct"],
                  end=sim["end"], exit_time=sim["exit_time"], exit_reason=sim["exit_reason"],
                  name=name, window_ns=window_ns, step_ns=step)


def _hurdle(values: np.ndarray, return_pct: np.ndarray, hurdle_pct: float | None,
            name: str) -> tuple[np.ndarray, str]:
    if hurdle_pct is None:
        return values, name
    with np.errstate(invalid="ignore"):
        binary = np.where(np.isfinite(return_pct), (return_pct > hurdle_pct).astype(np.float64),
                          np.nan)
    return binary, f"return_pct > {hurdle_pct:g}"


# ---------------------------------------------------------------------- label specs
@dataclass(frozen=True, kw_only=True)
class ForwardReturn(FrozenConfig):
    """The net return of the trade decided at ``t`` and held for ``window``.

    Parameters
    ----------
    window : str
        Holding window, a multiple of the panel's timeframe.
    fee_bps, slippage_bps : float
        Fee per side and adverse slippage per side (the engine's cost model).
    hurdle_pct : float, optional
        Binary label: 1.0 when the net return in percent is above it, else 0.0.

    Examples
    --------
    >>> ForwardReturn(window="4h", fee_bps=10, hurdle_pct=0.0)
    ForwardReturn(window='4h', fee_bps=10.0, slippage_bps=0.0, hurdle_pct=0.0)
    """

    window: str = "4h"
    fee_bps: float = 10.0
    slippage_bps: float = 0.0
    hurdle_pct: float | None = None

    def __post_init__(self) -> None:
        timeframe_ns(self.window, name="window")
        check_number(self, "fee_bps", low=0.0, high=10_000.0, high_open=True)
        check_number(self, "slippage_bps", low=0.0, high=10_000.0, high_open=True)
        check_number(self, "hurdle_pct", optional=True)

    @property
    def window_ns(self) -> int:
        return timeframe_ns(self.window, name="window")

    @property
    def is_binary(self) -> bool:
        return self.hurdle_pct is not None

    def compute(self, panel: Any, decision_times: Any = None) -> Labels:
        """The labels of ``panel`` at ``decision_times`` (every row when omitted)."""
        panel = _panel(panel)
        window_ns = _window(panel, self.window)
        rows = decision_rows(panel, decision_times)
        sim = _simulate(panel, rows, window_ns, self.fee_bps, self.slippage_bps, None)
        values, name = _hurdle(sim["return_pct"], sim["return_pct"], self.hurdle_pct,
                               "return_pct")
        return _labels(panel, rows, window_ns, sim, values, name)


@dataclass(frozen=True, kw_only=True)
class TripleBarrier(FrozenConfig):
    """Triple-barrier labels: the stop, target and trailing rules of ``exits`` inside the
    window (the upper, lower and vertical barriers), exactly as ``walk_forward`` applies
    them.

    Values are ``+1`` when the take-profit ended the trade, ``-1`` for a stop-loss or a
    trailing stop, ``0`` at the window end; ``return_pct`` holds the net return. With
    ``hurdle_pct`` the label is binary on the net return instead (1.0 above the hurdle).

    Examples
    --------
    >>> TripleBarrier(window="4h", exits=ExitRules(stop_loss_pct=1, take_profit_pct=2)).window
    '4h'
    """

    window: str = "4h"
    exits: ExitRules | None = None
    fee_bps: float = 10.0
    slippage_bps: float = 0.0
    hurdle_pct: float | None = None

    def __post_init__(self) -> None:
        timeframe_ns(self.window, name="window")
        if not isinstance(self.exits, ExitRules) or not self.exits.active:
            raise ConfigError("The 'exits' parameter of TripleBarrier must be ExitRules with a "
                              "stop-loss, take-profit or trailing stop, such as "
                              f"ExitRules(stop_loss_pct=1, take_profit_pct=2). Got {self.exits!r}.")
        check_number(self, "fee_bps", low=0.0, high=10_000.0, high_open=True)
        check_number(self, "slippage_bps", low=0.0, high=10_000.0, high_open=True)
        check_number(self, "hurdle_pct", optional=True)

    @property
    def window_ns(self) -> int:
        return timeframe_ns(self.window, name="window")

    @property
    def is_binary(self) -> bool:
        return self.hurdle_pct is not None

    def compute(self, panel: Any, decision_times: Any = None) -> Labels:
        """The labels of ``panel`` at ``decision_times`` (every row when omitted)."""
        panel = _panel(panel)
        window_ns = _window(panel, self.window)
        rows = decision_rows(panel, decision_times)
        sim = _simulate(panel, rows, window_ns, self.fee_bps, self.slippage_bps, self.exits)
        reason = sim["exit_reason"].astype(np.int64)
        barrier = np.where(reason == _TAKE_PROFIT, 1.0,
                           np.where(reason == _WINDOW_END, 0.0, -1.0))
        barrier[reason < 0] = np.nan
        values, name = _hurdle(barrier, sim["return_pct"], self.hurdle_pct, "barrier")
        return _labels(panel, rows, window_ns, sim, values, name)


def _panel(data: Any) -> Panel:
    from core_engine.backtest.engine import load_panel

    return load_panel(data)


# ---------------------------------------------------------------------- functions
def forward_return_label(panel: Any, window: str = "4h", fee_bps: float = 10.0,
                         slippage_bps: float = 0.0, *, hurdle_pct: float | None = None,
                         decision_times: Any = None) -> Labels:
    """Net return after costs of entering at the open after ``t`` and exiting at the open
    of ``t + window`` (see :class:`ForwardReturn` and the module docstring).

    Examples
    --------
    >>> from core_engine.data import Panel
    >>> from core_engine.data.providers import load_sample
    >>> panel = Panel.from_frames(load_sample(["BTC/USDT"], "2021-01-01", "2021-01-02"), "5m")
    >>> labels = forward_return_label(panel, "1h", fee_bps=10, decision_times=panel.index[[0]]
    ...                               + pd.Timedelta("5min"))
    >>> round(float(labels.return_pct[0, 0]), 4), labels.times[0], str(pd.Timestamp(
    ...     labels.end[0, 0], tz="UTC"))
    (0.0803, Timestamp('2021-01-01 00:05:00+0000', tz='UTC'), '2021-01-01 01:10:00+00:00')
    """
    spec = ForwardReturn(window=window, fee_bps=fee_bps, slippage_bps=slippage_bps,
                         hurdle_pct=hurdle_pct)
    return spec.compute(panel, decision_times)


def triple_barrier_label(panel: Any, window: str, exits: ExitRules, fee_bps: float = 10.0,
                         slippage_bps: float = 0.0, *, hurdle_pct: float | None = None,
                         decision_times: Any = None) -> Labels:
    """Triple-barrier labels with the stop/target/trailing rules of ``exits`` (see
    :class:`TripleBarrier`)."""
    spec = TripleBarrier(window=window, exits=exits, fee_bps=fee_bps,
                         slippage_bps=slippage_bps, hurdle_pct=hurdle_pct)
    return spec.compute(panel, decision_times)


def binary_label(labels: Labels, hurdle_pct: float = 0.0) -> Labels:
    """The binary variant of ``labels``: 1.0 when the net return in percent is above
    ``hurdle_pct``, 0.0 otherwise, NaN when unknown (ends and exits unchanged)."""
    if not isinstance(labels, Labels):
        raise ConfigError(f"binary_label expects Labels. Got {type(labels).__name__}.")
    if isinstance(hurdle_pct, bool) or not isinstance(hurdle_pct, (int, float, np.number)) \
            or not np.isfinite(hurdle_pct):
        raise ConfigError(f"The 'hurdle_pct' argument of binary_label must be a finite "
                          f"number (percent). Got {hurdle_pct!r}.")
    values, name = _hurdle(labels.values, labels.return_pct, float(hurdle_pct), labels.name)
    return Labels(rows=labels.rows, times=labels.times, symbols=labels.symbols, values=values,
                  return_pct=labels.return_pct, end=labels.end, exit_time=labels.exit_time,
                  exit_reason=labels.exit_reason, name=name, window_ns=labels.window_ns,
                  step_ns=labels.step_ns)


LABEL_SPECS: Sequence[type] = (ForwardReturn, TripleBarrier)
