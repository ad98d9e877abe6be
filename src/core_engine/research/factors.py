"""Factor evaluation at the decision cadence: IC, rank IC, decay, quantile returns, turnover.

What alphalens did for daily equities, for a 24/7 crypto universe decided every ``shift``
(2h by default) and held ``window`` (4h). A *factor* is any ``(T, N)`` array aligned with a
:class:`~core_engine.data.Panel`: a feature column, a cross-sectional score, a strategy's
``score_panel`` output. NaN means "no value" (warm-up, missing candle, not a candidate).

Conventions, identical to the backtester (DESIGN.md §1):

* decision times ``t`` are the multiples of ``shift`` since the epoch, scheduled as the
  backtester does (:func:`decision_rows`: times whose window runs past the data, or with no
  entry candle at all, are left out; no warm-up cut, NaN factor values drop out instead);
* the factor is read on row ``i`` whose candle closes at ``t`` (known at ``t``);
* the forward return over a horizon ``h`` is ``open[i + 1 + h/step] / open[i + 1] − 1``:
  entry at the open of the candle starting at ``t``, exit at the open of the candle starting
  at ``t + h``. It is gross (no fees, no slippage) and NaN when either candle is missing or
  beyond the data: prices are never forward-filled. (The backtester, when the exit candle is
  missing, exits at the last close inside the window; here such a pair is simply dropped.)

Per decision time, over the symbols where both factor and forward return are finite (at
least ``min_symbols`` of them, else NaN): the IC is Pearson's correlation, the rank IC
Spearman's (Pearson of average ranks). Their mean, standard deviation (ddof 1), count and
t-statistic ``mean / std × sqrt(n)`` summarise each horizon.

Overlapping windows (a 4h window every 2h) make consecutive ICs correlated, so the t-stat
overstates significance; read it as a ranking device, not a p-value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import (
    MAX_DURATION_YEARS,
    YEAR_NS,
    check_instance,
    check_integer,
    check_items,
    check_rows,
)
from core_engine.data.panel import Panel
from core_engine.data.timeframes import format_timeframe, timeframe_ns, to_utc_timestamp
from core_engine.errors import ConfigError
from core_engine.features.cross_section import cross_sectional_rank
from core_engine.progress import progress_bar

__all__ = [
    "DEFAULT_HORIZONS",
    "FactorReport",
    "evaluate_factor",
    "evaluate_factors",
    "factor_table",
    "forward_returns",
    "decision_rows",
    "quantile_buckets",
    "row_pearson",
    "row_spearman",
    "series_stats",
    "top_n_sets",
]

DEFAULT_HORIZONS = ("1h", "2h", "4h", "8h", "24h")


# ---------------------------------------------------------------------------- the report
@keyword_checked
@dataclass(frozen=True, kw_only=True)
class FactorReport:
    """The evaluation of one factor (see the module docstring for the conventions).

    Attributes
    ----------
    name : str
        The factor's label.
    window, shift : str
        The main horizon and the decision cadence.
    quantiles, top_n, min_symbols : int
        Parameters of the evaluation.
    ic : pandas.DataFrame
        Indexed by ``decision_time``; columns ``ic``, ``rank_ic`` (NaN where fewer than
        ``min_symbols`` pairs or a constant cross-section) and ``n_symbols`` (pairs used),
        for the main ``window``.
    decay : pandas.DataFrame
        Indexed by ``horizon`` (``"1h"``, ...; the main window included); columns
        ``ic_mean, ic_std, ic_t, rank_ic_mean, rank_ic_std, rank_ic_t, n_times``.
    quantile_returns : pandas.DataFrame
        Indexed by ``quantile`` (1 = lowest factor values .. ``quantiles``); columns
        ``mean_return_pct`` (mean over decision times of the bucket's mean forward return,
        percent), ``std_return_pct``, ``t_stat``, ``n_times``, ``avg_symbols``.
    quantile_by_time : pandas.DataFrame
        Decision time × quantile: each bucket's mean forward return (percent).
    turnover : pandas.DataFrame
        Indexed by ``decision_time``; columns ``top_symbols`` (the ``top_n`` highest finite
        factor values, ties by symbol name, comma-joined), ``turnover`` (share of the set
        not in the previous decision's set; NaN at the first time or an empty set),
        ``top_return_pct`` (equal-weight forward return of the set) and
        ``universe_return_pct`` (equal-weight forward return of every symbol with one).
    """

    name: str
    window: str
    shift: str
    quantiles: int
    top_n: int
    min_symbols: int
    ic: pd.DataFrame
    decay: pd.DataFrame
    quantile_returns: pd.DataFrame
    quantile_by_time: pd.DataFrame
    turnover: pd.DataFrame

    # ------------------------------------------------------------------ headline figures
    def to_frame(self) -> pd.DataFrame:
        """One row (index = name) of headline figures for the main window.

        Columns: ``ic_mean, ic_std, ic_t, rank_ic_mean, rank_ic_std, rank_ic_t,
        rank_ic_hit_rate`` (share of decision times with a positive rank IC), ``n_times``,
        ``top_minus_bottom_pct`` (mean per-time spread of the top over the bottom quantile),
        ``top_minus_bottom_t``, ``top_n_return_pct``, ``universe_return_pct``,
        ``top_n_turnover``.
        """
        main = self.decay.loc[self.window]
        rank_ic = self.ic["rank_ic"].to_numpy()
        finite = np.isfinite(rank_ic)
        spread = (self.quantile_by_time[self.quantiles] - self.quantile_by_time[1]).to_numpy()
        spread_stats = series_stats(spread)
        row = {
            "ic_mean": main["ic_mean"], "ic_std": main["ic_std"], "ic_t": main["ic_t"],
            "rank_ic_mean": main["rank_ic_mean"], "rank_ic_std": main["rank_ic_std"],
            "rank_ic_t": main["rank_ic_t"],
            "rank_ic_hit_rate": float((rank_ic[finite] > 0).mean()) if finite.any() else math.nan,
            "n_times": int(main["n_times"]),
            "top_minus_bottom_pct": spread_stats["mean"],
            "top_minus_bottom_t": spread_stats["t"],
            "top_n_return_pct": _nanmean(self.turnover["top_return_pct"].to_numpy()),
            "universe_return_pct": _nanmean(self.turnover["universe_return_pct"].to_numpy()),
            "top_n_turnover": _nanmean(self.turnover["turnover"].to_numpy()),
        }
        return pd.DataFrame([row], index=pd.Index([self.name], name="factor"))

    def summary(self) -> str:
        """A plain-text summary: headline figures, IC decay and quantile returns."""
        head = self.to_frame().iloc[0]
        lines = [
            f"Factor {self.name}: window {self.window}, shift {self.shift}, "
            f"{int(head['n_times']):,} decision times with an IC",
            f"  IC       mean {head['ic_mean']:+.4f}  std {head['ic_std']:.4f}  "
            f"t {head['ic_t']:+.2f}",
            f"  rank IC  mean {head['rank_ic_mean']:+.4f}  std {head['rank_ic_std']:.4f}  "
            f"t {head['rank_ic_t']:+.2f}  positive {head['rank_ic_hit_rate']:.1%}",
            f"  top-minus-bottom quantile {head['top_minus_bottom_pct']:+.4f} % "
            f"(t {head['top_minus_bottom_t']:+.2f})",
            f"  top {self.top_n}: return {head['top_n_return_pct']:+.4f} % vs universe "
            f"{head['universe_return_pct']:+.4f} %, turnover {head['top_n_turnover']:.1%}",
            "",
            "  IC decay (rank IC mean / t by horizon):",
        ]
        for horizon, row in self.decay.iterrows():
            lines.append(f"    {horizon:>5}  {row['rank_ic_mean']:+.4f}  t {row['rank_ic_t']:+.2f}"
                         f"  (n {int(row['n_times']):,})")
        lines.append("  Quantile mean forward return (%):")
        for q, row in self.quantile_returns.iterrows():
            lines.append(f"    Q{q}  {row['mean_return_pct']:+.4f}  "
                         f"({row['avg_symbols']:.1f} symbols on average)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from core_engine.research.report import factor_html

        return factor_html(self)

    def __repr__(self) -> str:
        head = self.to_frame().iloc[0]
        return (f"FactorReport({self.name!r}, window={self.window}, shift={self.shift}, "
                f"rank IC {head['rank_ic_mean']:+.4f} (t {head['rank_ic_t']:+.2f}), "
                f"{int(head['n_times']):,} times)")


# ---------------------------------------------------------------------------- statistics
def series_stats(values: np.ndarray) -> dict[str, float]:
    """Mean, std (ddof 1), count and t-stat ``mean / std × sqrt(n)`` of the finite values.

    ``std`` and ``t`` are NaN with fewer than two values; ``t`` is NaN when ``std`` is 0.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    t = mean / std * math.sqrt(n) if n > 1 and std > 0 else math.nan
    return {"mean": mean, "std": std, "n": n, "t": t}


def _nanmean(values: np.ndarray) -> float:
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def row_pearson(x: np.ndarray, y: np.ndarray, min_count: int = 2) -> np.ndarray:
    """Pearson correlation of ``x`` and ``y`` in each row, over the columns where both are finite.

    Parameters
    ----------
    x, y : numpy.ndarray
        ``(D, N)`` arrays.
    min_count : int
        Rows with fewer finite pairs give NaN.

    Returns
    -------
    numpy.ndarray
        ``(D,)``; NaN for too few pairs or a constant ``x`` or ``y`` in the row.
        Equals ``scipy.stats.pearsonr`` on the finite pairs.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    valid = np.isfinite(x) & np.isfinite(y)
    n = valid.sum(axis=1)
    safe_n = np.maximum(n, 1)
    mx = np.where(valid, x, 0.0).sum(axis=1) / safe_n
    my = np.where(valid, y, 0.0).sum(axis=1) / safe_n
    dx = np.where(valid, x - mx[:, None], 0.0)
    dy = np.where(valid, y - my[:, None], 0.0)
    sxx = (dx * dx).sum(axis=1)
    syy = (dy * dy).sum(axis=1)
    sxy = (dx * dy).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sxy / (np.sqrt(sxx) * np.sqrt(syy))
    r = np.clip(r, -1.0, 1.0)
    r[(n < max(int(min_count), 2)) | (sxx == 0) | (syy == 0)] = np.nan
    return r


def row_spearman(x: np.ndarray, y: np.ndarray, min_count: int = 2) -> np.ndarray:
    """Spearman rank correlation per row: Pearson of the average ranks of the finite pairs.

    Equals ``scipy.stats.spearmanr`` on the finite pairs of each row (ties get average ranks).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    valid = np.isfinite(x) & np.isfinite(y)
    rx = cross_sectional_rank(np.where(valid, x, np.nan), pct=False)
    ry = cross_sectional_rank(np.where(valid, y, np.nan), pct=False)
    return row_pearson(rx, ry, min_count)


# ---------------------------------------------------------------------------- inputs
def forward_returns(panel: Panel, rows: np.ndarray, horizon_candles: int) -> np.ndarray:
    """Gross forward returns (fractions) of every symbol for decisions read on ``rows``.

    ``open[exit] / open[rows + 1] − 1``: entry at the open of the candle starting at the
    decision time, exit at the open of the candle starting ``horizon`` later — or, when that
    candle is missing (an exchange outage), at the first open after it, exactly as the
    backtester exits. NaN when the entry candle is missing or no exit candle exists.

    Returns
    -------
    numpy.ndarray
        ``(len(rows), n_symbols)`` float64.

    Raises
    ------
    ConfigError
        If ``panel`` is not a Panel, ``rows`` not a 1-D array of its rows, or
        ``horizon_candles`` not a positive integer (at most MAX_DURATION_YEARS of candles).
    """
    check_instance(panel, Panel, "panel", "forward_returns")
    rows = check_rows(rows, "rows", "forward_returns", n_rows=panel.n_times)
    horizon_candles = check_integer(horizon_candles, "horizon_candles", "forward_returns",
                                    low=1, high=MAX_DURATION_YEARS * YEAR_NS // panel.step_ns)
    n_times = panel.n_times
    out = np.full((rows.size, panel.n_symbols), np.nan)
    entry = rows + 1
    target = entry + horizon_candles
    ok = (entry >= 0) & (target <= n_times - 1)
    if not ok.any():
        return out
    # next_present[r, j]: the first row >= r where symbol j has an open (n_times if none)
    present_rows = np.where(np.isnan(panel.open), n_times, np.arange(n_times)[:, None])
    next_present = np.minimum.accumulate(present_rows[::-1], axis=0)[::-1]
    exit_rows = next_present[target[ok]]
    found = exit_rows < n_times
    exit_open = np.take_along_axis(panel.open, np.where(found, exit_rows, 0), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[ok] = np.where(found, exit_open, np.nan) / panel.open[entry[ok]] - 1.0
    return out


def _factor_array(factor: Any, panel: Panel, name: str) -> np.ndarray:
    if isinstance(factor, pd.DataFrame):
        missing = [s for s in panel.symbols if s not in factor.columns]
        if missing:
            raise ConfigError(
                f"The factor {name!r} is a DataFrame without the panel's symbols {missing}; "
                "expected one column per symbol."
            )
        factor = factor[list(panel.symbols)].to_numpy(dtype=np.float64)
    try:
        values = np.asarray(factor, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"The factor {name!r} must be a numeric (T, N) array. Got {exc}.") from None
    expected = (panel.n_times, panel.n_symbols)
    if values.shape != expected:
        raise ConfigError(
            f"The factor {name!r} has shape {values.shape}; expected {expected} "
            "(the panel's times × symbols)."
        )
    if np.isinf(values).any():
        i, j = np.argwhere(np.isinf(values))[0]
        raise ConfigError(
            f"The factor {name!r} is infinite for {panel.symbols[j]} at row {i} "
            f"({panel.index[i]:%Y-%m-%d %H:%M} UTC); use NaN for 'no value'."
        )
    return values


def _int_param(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(
            f"The '{name}' parameter of evaluate_factor must be an integer >= {minimum}. "
            f"Got {value!r}."
        )
    return int(value)


def _candles(value: Any, name: str, step: int) -> int:
    try:
        ns = timeframe_ns(value, name=name)
    except ConfigError:
        raise ConfigError(
            f"The '{name}' parameter of evaluate_factor must be a positive duration such as "
            f"'4h'. Got {value!r}."
        ) from None
    if ns % step:
        raise ConfigError(
            f"The '{name}' parameter of evaluate_factor must be a multiple of the panel's "
            f"{format_timeframe(step)} timeframe. Got {value!r}."
        )
    return ns


# ---------------------------------------------------------------------------- evaluation
def decision_rows(panel: Panel, *, window_ns: int, shift_ns: int, start: pd.Timestamp | None = None,
                  end: pd.Timestamp | None = None) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Decision rows and times of ``panel``, as the backtester schedules them (no warm-up).

    Times ``t`` are the multiples of ``shift_ns`` since the epoch with
    ``start <= t <= end − window`` (defaults: the first candle's open, the last candle's
    close); row ``i`` is the candle closing at ``t``. A time is left out when its row is
    before the panel, when the window's last candle ``i + window/step`` is beyond the panel,
    or when no symbol has an entry candle (row ``i + 1``).
    """
    step = panel.step_ns
    empty = (np.empty(0, np.int64), pd.DatetimeIndex([], tz="UTC").as_unit("ns"))
    if panel.n_times == 0:
        return empty
    first = int(panel.index.asi8[0])
    lo = first if start is None else int(start.value)
    hi = (int(panel.index.asi8[-1]) + step if end is None else int(end.value)) - window_ns
    k0, k1 = -(-lo // shift_ns), hi // shift_ns
    if k1 < k0:
        return empty
    times = np.arange(k0, k1 + 1, dtype=np.int64) * shift_ns
    rows = (times - step - first) // step
    keep = (rows >= 0) & (rows + window_ns // step <= panel.n_times - 1)
    entry_ok = np.zeros(rows.shape, dtype=bool)
    entry_ok[keep] = ~np.isnan(panel.open[rows[keep] + 1]).all(axis=1)
    keep &= entry_ok
    return rows[keep], pd.DatetimeIndex(times[keep], tz="UTC").as_unit("ns")


def evaluate_factor(factor: Any, panel: Panel, *, window: str = "4h", shift: str = "2h",
                    horizons: Sequence[str] = DEFAULT_HORIZONS, quantiles: int = 5,
                    top_n: int = 3, min_symbols: int = 3, start: Any = None, end: Any = None,
                    name: str = "factor") -> FactorReport:
    """Evaluate ``factor`` against forward returns at every decision time of ``panel``.

    Parameters
    ----------
    factor : numpy.ndarray or pandas.DataFrame
        ``(T, N)`` values aligned with ``panel`` (a DataFrame must have the panel's symbols as
        columns). Row ``i`` must use candles ``<= i`` only, as every core_engine feature and
        strategy score does. NaN = no value; infinite values are rejected.
    panel : Panel
        The candles; forward returns use its opens.
    window : str
        The main horizon (IC series, quantiles, top-N returns). Default ``"4h"``.
    shift : str
        The decision cadence. Default ``"2h"``.
    horizons : sequence of str
        Horizons of the IC decay table (the main window is always included).
    quantiles : int
        Number of buckets (>= 2); see :func:`quantile_buckets` (lowest value in bucket 1,
        highest in bucket ``quantiles``).
    top_n : int
        Size of the top set whose turnover and return are reported.
    min_symbols : int
        Fewest valid (factor, forward return) pairs for an IC or a quantile split (>= 2).
    start, end : time, optional
        Decision times satisfy ``start <= t <= end − window``.
    name : str
        Label of the report.

    Returns
    -------
    FactorReport

    Raises
    ------
    ConfigError
        Invalid parameter, a factor of the wrong shape or with infinite values, or no
        decision time in range.

    Examples
    --------
    >>> from core_engine.data import Panel, load_sample
    >>> from core_engine.features import Momentum
    >>> panel = Panel.from_frames(load_sample(start="2021-03-01", end="2021-03-15"), "5m")
    >>> momentum = Momentum(length=24).compute_panel(panel)["return_24"]
    >>> report = evaluate_factor(momentum, panel, name="return_24")
    >>> report.decay.index.tolist()
    ['1h', '2h', '4h', '8h', '1d']
    """
    if not isinstance(panel, Panel):
        raise ConfigError(f"evaluate_factor needs a Panel as 'panel'. Got {type(panel).__name__}.")
    step = panel.step_ns
    window_ns = _candles(window, "window", step)
    shift_ns = _candles(shift, "shift", step)
    if isinstance(horizons, str):
        horizons = (horizons,)
    horizons = check_items(horizons, "horizons", "evaluate_factor", non_empty=True,
                           expected="a list of durations such as ['1h', '4h']")
    horizon_ns = sorted({_candles(h, "horizons", step) for h in horizons} | {window_ns})
    quantiles = _int_param(quantiles, "quantiles", 2)
    top_n = _int_param(top_n, "top_n", 1)
    min_symbols = _int_param(min_symbols, "min_symbols", 2)
    values = _factor_array(factor, panel, name)
    rows, times = decision_rows(
        panel, window_ns=window_ns, shift_ns=shift_ns,
        start=None if start is None else to_utc_timestamp(start, name="start"),
        end=None if end is None else to_utc_timestamp(end, name="end"))
    if len(rows) == 0:
        raise ConfigError(
            f"evaluate_factor found no decision time: the panel {panel!r} is shorter than one "
            f"{format_timeframe(window_ns)} window after the first {format_timeframe(shift_ns)} "
            "multiple in the requested range."
        )
    at_t = values[rows]
    decay = {}
    main_fwd = None
    for ns in horizon_ns:
        fwd = forward_returns(panel, rows, ns // step)
        ic = row_pearson(at_t, fwd, min_symbols)
        rank_ic = row_spearman(at_t, fwd, min_symbols)
        s_ic, s_rank = series_stats(ic), series_stats(rank_ic)
        decay[format_timeframe(ns)] = {
            "ic_mean": s_ic["mean"], "ic_std": s_ic["std"], "ic_t": s_ic["t"],
            "rank_ic_mean": s_rank["mean"], "rank_ic_std": s_rank["std"], "rank_ic_t": s_rank["t"],
            "n_times": s_rank["n"],
        }
        if ns == window_ns:
            main_fwd = fwd
            valid = np.isfinite(at_t) & np.isfinite(fwd)
            ic_frame = pd.DataFrame({"ic": ic, "rank_ic": rank_ic,
                                     "n_symbols": valid.sum(axis=1).astype(np.int64)},
                                    index=pd.Index(times, name="decision_time"))
    assert main_fwd is not None  # window_ns is one of horizon_ns, so the loop set it
    decay_frame = pd.DataFrame.from_dict(decay, orient="index")
    decay_frame.index.name = "horizon"
    decay_frame["n_times"] = decay_frame["n_times"].astype(np.int64)
    by_time, q_frame = _quantile_returns(at_t, main_fwd, times, quantiles, min_symbols)
    turnover = _top_n_turnover(at_t, main_fwd, times, panel.symbols, top_n)
    return FactorReport(name=str(name), window=format_timeframe(window_ns),
                        shift=format_timeframe(shift_ns), quantiles=quantiles, top_n=top_n,
                        min_symbols=min_symbols, ic=ic_frame, decay=decay_frame,
                        quantile_returns=q_frame, quantile_by_time=by_time, turnover=turnover)


def quantile_buckets(at_t: np.ndarray, fwd: np.ndarray, quantiles: int,
                     min_symbols: int) -> np.ndarray:
    """Bucket ``1..quantiles`` of each valid (factor, forward return) pair, 0 elsewhere.

    Valid pairs are those with both values finite in rows with at least ``min_symbols`` of
    them; with ``r`` the average rank (1 = lowest) among the ``m`` valid values, the bucket is
    ``min(quantiles, floor((r − 1) × quantiles / (m − 1)) + 1)``: the lowest value is always
    in bucket 1 and the highest in bucket ``quantiles``, also when ``m < quantiles``.
    """
    valid = np.isfinite(at_t) & np.isfinite(fwd)
    m = valid.sum(axis=1)
    valid &= (m >= min_symbols)[:, None]
    ranks = cross_sectional_rank(np.where(valid, at_t, np.nan), pct=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        bucket = np.floor((ranks - 1.0) * quantiles / (m[:, None] - 1.0)) + 1.0
    bucket = np.minimum(bucket, quantiles)
    return np.where(valid, bucket, 0).astype(np.int64)


def _quantile_returns(at_t: np.ndarray, fwd: np.ndarray, times: pd.DatetimeIndex,
                      quantiles: int, min_symbols: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    bucket = quantile_buckets(at_t, fwd, quantiles, min_symbols)
    fwd_pct = np.where(bucket > 0, fwd * 100.0, 0.0)
    means = np.full((len(times), quantiles), np.nan)
    counts = np.zeros((len(times), quantiles), dtype=np.int64)
    for q in range(1, quantiles + 1):
        member = bucket == q
        counts[:, q - 1] = member.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[:, q - 1] = np.where(member, fwd_pct, 0.0).sum(axis=1) / counts[:, q - 1]
    by_time = pd.DataFrame(means, index=pd.Index(times, name="decision_time"),
                           columns=pd.Index(range(1, quantiles + 1), name="quantile"))
    rows = []
    for q in range(quantiles):
        stats = series_stats(means[:, q])
        used = counts[:, q][counts[:, q] > 0]
        rows.append({"mean_return_pct": stats["mean"], "std_return_pct": stats["std"],
                     "t_stat": stats["t"], "n_times": stats["n"],
                     "avg_symbols": float(used.mean()) if used.size else 0.0})
    q_frame = pd.DataFrame(rows, index=pd.Index(range(1, quantiles + 1), name="quantile"))
    return by_time, q_frame


def top_n_sets(at_t: np.ndarray, symbols: Sequence[str], top_n: int) -> np.ndarray:
    """Boolean ``(D, N)`` membership of the ``top_n`` highest finite values of each row.

    Ties are broken by symbol name ascending, as :func:`core_engine.strategies.rank_candidates`.
    """
    order = _best_first(at_t, symbols)
    member = np.zeros(at_t.shape, dtype=bool)
    np.put_along_axis(member, order[:, :top_n], True, axis=1)
    return member & np.isfinite(at_t)


def _best_first(at_t: np.ndarray, symbols: Sequence[str]) -> np.ndarray:
    """Column order of each row: highest finite value first, ties by symbol name, NaN last."""
    name_order = np.argsort(np.argsort(np.asarray(symbols, dtype=object)))
    tie_key = np.broadcast_to(name_order, at_t.shape)
    primary = np.where(np.isfinite(at_t), -at_t, np.inf)
    return np.lexsort((tie_key, primary), axis=-1)


def _top_n_turnover(at_t: np.ndarray, fwd: np.ndarray, times: pd.DatetimeIndex,
                    symbols: Sequence[str], top_n: int) -> pd.DataFrame:
    member = top_n_sets(at_t, symbols, top_n)
    size = member.sum(axis=1)
    kept = np.zeros(len(times))
    kept[1:] = (member[1:] & member[:-1]).sum(axis=1)
    turnover = np.full(len(times), np.nan)
    ok = size > 0
    ok[0] = False
    ok[1:] &= size[:-1] > 0
    turnover[ok] = 1.0 - kept[ok] / size[ok]
    top_fwd = np.where(member & np.isfinite(fwd), fwd, np.nan)
    with np.errstate(invalid="ignore"):
        top_ret = _row_nanmean(top_fwd) * 100.0
        universe = _row_nanmean(fwd) * 100.0
    names = np.asarray(symbols, dtype=object)
    order = _best_first(at_t, symbols)
    labels = [", ".join(names[order[d, : size[d]]]) for d in range(len(times))]
    return pd.DataFrame({"top_symbols": labels, "turnover": turnover,
                         "top_return_pct": top_ret, "universe_return_pct": universe},
                        index=pd.Index(times, name="decision_time"))


def _row_nanmean(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    count = finite.sum(axis=1)
    total = np.where(finite, values, 0.0).sum(axis=1)
    out = np.full(values.shape[0], np.nan)
    out[count > 0] = total[count > 0] / count[count > 0]
    return out


# ---------------------------------------------------------------------------- many factors
def evaluate_factors(factors: Mapping[str, Any], panel: Panel, *, progress: bool | None = None,
                     **kwargs: Any) -> dict[str, FactorReport]:
    """Evaluate several factors on the same panel: ``{name: FactorReport}``.

    ``kwargs`` are those of :func:`evaluate_factor` (except ``name``, taken from the keys);
    ``progress`` is the ``enabled`` argument of
    :func:`~core_engine.progress.progress_bar`.
    """
    if "name" in kwargs:
        raise ConfigError("evaluate_factors takes the names from the keys of 'factors'; "
                          "do not pass 'name'.")
    check_instance(factors, Mapping, "factors", "evaluate_factors",
                   expected="a dict of name -> factor (a feature, column or array)")
    check_instance(panel, Panel, "panel", "evaluate_factors")
    if progress is not None and not isinstance(progress, bool):
        raise ConfigError("The 'progress' parameter of evaluate_factors must be True, False or "
                          f"None. Got {progress!r}.")
    reports = {}
    for key in progress_bar(list(factors), desc="factors", enabled=progress):
        reports[key] = evaluate_factor(factors[key], panel, name=key, **kwargs)
    return reports


def factor_table(reports: Iterable[FactorReport] | Mapping[str, FactorReport]) -> pd.DataFrame:
    """Stack the :meth:`FactorReport.to_frame` rows of several reports (one row per factor)."""
    if isinstance(reports, Mapping):
        reports = reports.values()
    reports = check_items(reports, "reports", "factor_table", kinds=FactorReport,
                          expected="a list or dict of FactorReport (from evaluate_factor)")
    frames = [r.to_frame() for r in reports]
    if not frames:
        raise ConfigError("factor_table needs at least one FactorReport.")
    return pd.concat(frames)
