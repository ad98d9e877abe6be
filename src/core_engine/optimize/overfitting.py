"""How likely is the winner of a sweep overfit: PBO by CSCV, probabilistic and deflated Sharpe.

* **Probability of backtest overfitting** (Bailey, Borwein, López de Prado and Zhu, "The
  Probability of Backtest Overfitting", *Journal of Computational Finance* 20(4), 2017):
  the ``T × N`` matrix of per-period returns of ``N`` trials is cut into ``S`` contiguous
  blocks of rows (combinatorially symmetric cross-validation, CSCV). For each of the
  ``C(S, S/2)`` ways to pick half of the blocks as in-sample (the rest out-of-sample), the
  trial ``n*`` with the best in-sample Sharpe ratio is found, its out-of-sample rank
  ``r`` among the ``N`` trials is taken (1 = worst, ties averaged), ``ω = r / (N + 1)`` and
  the logit ``λ = ln(ω / (1 − ω))``. PBO is the share of combinations with ``λ <= 0``: how
  often the in-sample winner is at or below the out-of-sample median. Reading it: a search
  whose in-sample ranking carries no information scores about 0.5 (the null); a selection
  that reliably finds a real edge scores near 0; PBO near 1 means the in-sample winner is
  systematically among the worst out of sample (trials whose full-sample performance is
  the same, so in-sample luck is paid back out of sample).
* **Probabilistic Sharpe ratio** (Bailey and López de Prado, "The Sharpe Ratio Efficient
  Frontier", *Journal of Risk* 15(2), 2012): the probability that the true Sharpe ratio
  exceeds a benchmark ``SR*``, given ``T`` observations, their skewness ``γ3`` and
  kurtosis ``γ4`` (3 for a normal distribution)::

      PSR(SR*) = Φ( (SR − SR*) · √(T − 1) / √(1 − γ3·SR + (γ4 − 1)/4 · SR²) )

* **Deflated Sharpe ratio** (Bailey and López de Prado, "The Deflated Sharpe Ratio:
  Correcting for Selection Bias, Backtest Overfitting and Non-Normality", *Journal of
  Portfolio Management* 40(5), 2014): ``DSR = PSR(SR0)`` with the Sharpe ratio expected
  from the best of ``N`` skill-less trials whose Sharpe ratios have variance ``V``::

      SR0 = √V · ((1 − γ) · Φ⁻¹(1 − 1/N) + γ · Φ⁻¹(1 − 1/(N·e))),   γ = 0.5772… (Euler)

All Sharpe ratios here are per period (not annualised), as the formulas require; ``N`` is
the true number of trials, every configuration evaluated. Written by hand: no well-kept
library implements CSCV, PSR and DSR (scipy has the normal distribution, which the standard
library's :class:`statistics.NormalDist` gives as well).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import check_real
from core_engine.errors import ConfigError

__all__ = [
    "EULER_GAMMA",
    "OverfittingReport",
    "PBOResult",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "overfitting_report",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "sharpe_moments",
]

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()
_COMBINATIONS_PER_CHUNK = 2048


# ---------------------------------------------------------------------------- Sharpe
def _floats(values: Any, name: str, where: str) -> np.ndarray:
    """``values`` (a list, array, Series or DataFrame of numbers) as a float64 array, or a
    ConfigError naming the parameter (never NumPy's TypeError/ValueError)."""
    if values is None or isinstance(values, (str, bytes, Mapping)):
        raise ConfigError(f"The {name!r} parameter of {where} must be numbers (a list, array, "
                          f"Series or DataFrame). Got {type(values).__name__} {values!r:.60}.")
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"The {name!r} parameter of {where} must be numbers (a list, array, "
                          f"Series or DataFrame). Got {type(values).__name__} {values!r:.60}."
                          ) from exc


def sharpe_moments(returns: Any) -> dict[str, float]:
    """Per-period Sharpe ratio, skewness, kurtosis and count of ``returns`` (NaN dropped).

    ``sharpe = mean / std`` (ddof 1); skewness ``m3 / m2^1.5`` and kurtosis ``m4 / m2²``
    from the central sample moments (``m2`` with ddof 0; normal kurtosis = 3), as in
    Bailey and López de Prado (2012).
    """
    values = _floats(returns, "returns", "a Sharpe ratio test").ravel()
    values = values[np.isfinite(values)]
    n = int(values.size)
    if n < 3:
        raise ConfigError(f"A Sharpe ratio test needs at least 3 returns. Got {n}.")
    centred = values - values.mean()
    m2 = float(np.mean(centred ** 2))
    std = float(values.std(ddof=1))
    if m2 == 0.0 or std == 0.0:
        raise ConfigError("A Sharpe ratio test needs returns that vary. Got constant returns.")
    return {"sharpe": float(values.mean()) / std, "skew": float(np.mean(centred ** 3)) / m2 ** 1.5,
            "kurtosis": float(np.mean(centred ** 4)) / m2 ** 2, "n_obs": float(n)}


def probabilistic_sharpe_ratio(returns: Any = None, *, benchmark: float = 0.0,
                               sharpe: float | None = None, n_obs: float | None = None,
                               skew: float | None = None, kurtosis: float | None = None
                               ) -> float:
    """``PSR(benchmark)``: the probability that the true per-period Sharpe ratio exceeds
    ``benchmark`` (Bailey and López de Prado 2012; formula in the module docstring).

    Give ``returns`` (its moments are measured), or ``sharpe``, ``n_obs``, ``skew`` and
    ``kurtosis`` directly; a value given explicitly overrides the measured one (e.g.
    ``n_obs`` = independent observations when returns overlap).

    Examples
    --------
    >>> round(probabilistic_sharpe_ratio(sharpe=0.1, n_obs=101, skew=0.0, kurtosis=3.0), 4)
    0.8407
    """
    stats = sharpe_moments(returns) if returns is not None else {}
    values = {"sharpe": sharpe, "n_obs": n_obs, "skew": skew, "kurtosis": kurtosis}
    for key, value in values.items():
        if value is None:
            if key not in stats:
                raise ConfigError(
                    f"probabilistic_sharpe_ratio needs 'returns' or an explicit {key!r}."
                )
            values[key] = stats[key]
    where = "probabilistic_sharpe_ratio"
    sr, t = (check_real(values[k], k, where) for k in ("sharpe", "n_obs"))
    g3, g4 = (check_real(values[k], k, where) for k in ("skew", "kurtosis"))
    benchmark = check_real(benchmark, "benchmark", where)
    if not t > 1:
        raise ConfigError(f"The 'n_obs' argument must be above 1. Got {t!r}.")
    variance = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
    if not variance > 0:
        raise ConfigError(
            f"The Sharpe ratio's variance term 1 − γ3·SR + (γ4 − 1)/4·SR² is {variance:.4g} "
            f"for SR={sr:.4g}, skew={g3:.4g}, kurtosis={g4:.4g}; it must be positive."
        )
    return _NORMAL.cdf((sr - float(benchmark)) * math.sqrt(t - 1.0) / math.sqrt(variance))


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """``SR0``: the expected maximum per-period Sharpe ratio of ``n_trials`` skill-less
    trials whose Sharpe ratios have ``variance`` (0 for a single trial).

    Examples
    --------
    >>> round(expected_max_sharpe(100, 1.0), 4)
    2.5306
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise ConfigError(f"The 'n_trials' argument must be an integer >= 1. Got {n_trials!r}.")
    variance = check_real(variance, "variance", "expected_max_sharpe", low=0)
    if n_trials == 1:
        return 0.0
    n = float(n_trials)
    z = ((1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n)
         + EULER_GAMMA * _NORMAL.inv_cdf(1.0 - 1.0 / (n * math.e)))
    return math.sqrt(variance) * z


def deflated_sharpe_ratio(returns: Any = None, *, n_trials: int,
                          trial_sharpes: Sequence[float] | None = None,
                          sharpe_variance: float | None = None, sharpe: float | None = None,
                          n_obs: float | None = None, skew: float | None = None,
                          kurtosis: float | None = None) -> float:
    """``DSR = PSR(SR0)`` of Bailey and López de Prado (2014), ``SR0`` from
    :func:`expected_max_sharpe` with the true number of trials.

    Parameters
    ----------
    returns : array-like, optional
        Per-period returns of the selected configuration (or give ``sharpe``, ``n_obs``,
        ``skew`` and ``kurtosis``).
    n_trials : int
        Every configuration tried, not only the ones kept.
    trial_sharpes : sequence of float, optional
        Per-period Sharpe ratios of all trials; their variance (ddof 1) is ``V``.
    sharpe_variance : float, optional
        ``V`` directly, instead of ``trial_sharpes``.
    """
    if (trial_sharpes is None) == (sharpe_variance is None):
        raise ConfigError("deflated_sharpe_ratio needs exactly one of 'trial_sharpes' and "
                          "'sharpe_variance'.")
    if trial_sharpes is not None:
        values = _floats(trial_sharpes, "trial_sharpes", "deflated_sharpe_ratio").ravel()
        values = values[np.isfinite(values)]
        if values.size < 2:
            raise ConfigError("deflated_sharpe_ratio needs the Sharpe ratios of at least 2 "
                              f"trials to measure their variance. Got {values.size}.")
        sharpe_variance = float(values.var(ddof=1))
    sharpe_variance = check_real(sharpe_variance, "sharpe_variance", "deflated_sharpe_ratio",
                                 low=0)
    benchmark = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(returns, benchmark=benchmark, sharpe=sharpe, n_obs=n_obs,
                                      skew=skew, kurtosis=kurtosis)


# ---------------------------------------------------------------------------- PBO
@keyword_checked
@dataclass(frozen=True)
class PBOResult:
    """The outcome of CSCV (see the module docstring).

    Attributes
    ----------
    pbo : float
        Share of combinations whose logit is <= 0.
    logits : numpy.ndarray
        ``λ`` of every combination.
    is_performance, oos_performance : numpy.ndarray
        Per combination, the in-sample winner's Sharpe ratio in and out of sample.
    oos_rank : numpy.ndarray
        Per combination, the winner's out-of-sample rank (1 = worst of ``n_trials``).
    winners : numpy.ndarray
        Per combination, the column of the in-sample winner.
    n_blocks, n_trials, n_periods : int
    """

    pbo: float
    logits: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    oos_rank: np.ndarray
    winners: np.ndarray
    n_blocks: int
    n_trials: int
    n_periods: int

    @property
    def probability_of_loss(self) -> float:
        """Share of combinations where the in-sample winner loses out of sample."""
        return float(np.mean(self.oos_performance < 0))

    @property
    def degradation(self) -> tuple[float, float]:
        """``(slope, intercept)`` of the least-squares line of out-of-sample on in-sample
        performance of the winners (the paper's "performance degradation")."""
        x, y = self.is_performance, self.oos_performance
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 2 or np.ptp(x[ok]) == 0:
            return math.nan, math.nan
        slope, intercept = np.polyfit(x[ok], y[ok], 1)
        return float(slope), float(intercept)


def _block_stats(matrix: np.ndarray, n_blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parts = np.array_split(np.arange(matrix.shape[0]), n_blocks)
    sums = np.stack([matrix[p].sum(axis=0) for p in parts])
    squares = np.stack([(matrix[p] ** 2).sum(axis=0) for p in parts])
    counts = np.array([len(p) for p in parts], dtype=np.float64)
    return sums, squares, counts


def _sharpe_from_sums(sums: np.ndarray, squares: np.ndarray, counts: np.ndarray) -> np.ndarray:
    n = counts[:, None]
    mean = sums / n
    variance = np.maximum(squares - n * mean * mean, 0.0) / (n - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = mean / np.sqrt(variance)
    return np.where(np.isfinite(sharpe), sharpe, -np.inf)


def probability_of_backtest_overfitting(returns: Any, n_blocks: int = 16) -> PBOResult:
    """PBO of a set of trials by combinatorially symmetric cross-validation.

    Parameters
    ----------
    returns : DataFrame or 2-D array, shape (T, N)
        Per-period returns, one column per trial, rows in time order. Rows where any trial
        has no value (NaN, e.g. before a longer warm-up) are dropped.
    n_blocks : int
        ``S``, an even number >= 2 of contiguous row blocks (default 16, the paper's
        choice: C(16, 8) = 12,870 combinations).

    Returns
    -------
    PBOResult

    Raises
    ------
    ConfigError
        With fewer than 2 trials, an odd ``n_blocks``, or fewer than 2 rows per block.
    """
    matrix = _floats(returns, "returns", "probability_of_backtest_overfitting")
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise ConfigError("probability_of_backtest_overfitting needs a (periods × trials) "
                          f"matrix with at least 2 trials. Got shape {matrix.shape}.")
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) \
            or n_blocks < 2 or n_blocks % 2:
        raise ConfigError(f"The 'n_blocks' parameter must be an even integer >= 2. "
                          f"Got {n_blocks!r}.")
    matrix = matrix[np.isfinite(matrix).all(axis=1)]
    n_periods, n_trials = matrix.shape
    if n_periods < 2 * n_blocks:
        raise ConfigError(
            f"CSCV with n_blocks={n_blocks} needs at least {2 * n_blocks} periods where every "
            f"trial has a return. Got {n_periods}; use fewer blocks or a longer sample."
        )
    sums, squares, counts = _block_stats(matrix, int(n_blocks))
    total_sums, total_squares, total_counts = sums.sum(0), squares.sum(0), counts.sum()
    combos = np.array(list(itertools.combinations(range(n_blocks), n_blocks // 2)))
    chosen = np.zeros((len(combos), n_blocks))
    chosen[np.arange(len(combos))[:, None], combos] = 1.0
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("is", "oos", "rank", "winner")}
    for start in range(0, len(chosen), _COMBINATIONS_PER_CHUNK):
        part = chosen[start:start + _COMBINATIONS_PER_CHUNK]
        is_n = part @ counts
        is_sharpe = _sharpe_from_sums(part @ sums, part @ squares, is_n)
        oos_sharpe = _sharpe_from_sums(total_sums - part @ sums, total_squares - part @ squares,
                                       total_counts - is_n)
        winner = np.argmax(is_sharpe, axis=1)
        rows = np.arange(len(part))
        best_oos = oos_sharpe[rows, winner]
        below = (oos_sharpe < best_oos[:, None]).sum(axis=1)
        equal = (oos_sharpe == best_oos[:, None]).sum(axis=1)
        out["rank"].append(below + (equal + 1) / 2.0)
        out["is"].append(is_sharpe[rows, winner])
        out["oos"].append(best_oos)
        out["winner"].append(winner)
    rank = np.concatenate(out["rank"])
    omega = rank / (n_trials + 1.0)
    logits = np.log(omega / (1.0 - omega))
    return PBOResult(pbo=float(np.mean(logits <= 0.0)), logits=logits,
                     is_performance=np.concatenate(out["is"]),
                     oos_performance=np.concatenate(out["oos"]), oos_rank=rank,
                     winners=np.concatenate(out["winner"]), n_blocks=int(n_blocks),
                     n_trials=int(n_trials), n_periods=int(n_periods))


# ---------------------------------------------------------------------------- report
@keyword_checked
@dataclass(frozen=True)
class OverfittingReport:
    """PBO, probabilistic and deflated Sharpe of a sweep's selection, with their figures.

    Build one with :func:`overfitting_report` (or ``SweepResult.overfitting_report()``).

    Attributes
    ----------
    pbo : PBOResult
    selected : str
        The column (configuration id) whose Sharpe ratio is tested.
    sharpe : float
        Its per-period Sharpe ratio; ``sharpe_annualised`` scales it by
        ``√periods_per_year``.
    psr : float
        ``PSR(0)``: probability that its true Sharpe ratio is positive.
    dsr : float
        ``PSR(SR0)`` with ``SR0`` the expected best Sharpe ratio of ``n_trials`` skill-less
        trials.
    n_trials : int
        The true number of trials.
    n_obs : float
        Independent observations used by PSR/DSR.
    sharpe_variance, expected_max_sharpe : float
        ``V`` across trials and ``SR0`` (per period).
    fold_is_oos : pandas.DataFrame or None
        For a walk-forward optimisation, per fold the selected configuration's in-sample and
        out-of-sample value of the selection metric.
    """

    pbo: PBOResult
    selected: str
    sharpe: float
    psr: float
    dsr: float
    n_trials: int
    n_obs: float
    sharpe_variance: float
    expected_max_sharpe: float
    periods_per_year: float = math.nan
    fold_is_oos: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def sharpe_annualised(self) -> float:
        return self.sharpe * math.sqrt(self.periods_per_year)

    def to_dict(self) -> dict[str, float | int | str]:
        """The headline numbers as a plain dict."""
        slope, _ = self.pbo.degradation
        return {"pbo": self.pbo.pbo, "n_blocks": self.pbo.n_blocks,
                "combinations": int(self.pbo.logits.size), "n_trials": self.n_trials,
                "n_periods": self.pbo.n_periods, "probability_of_loss": self.pbo.probability_of_loss,
                "degradation_slope": slope, "selected": self.selected,
                "sharpe_per_period": self.sharpe, "sharpe_annualised": self.sharpe_annualised,
                "psr": self.psr, "dsr": self.dsr, "n_obs": self.n_obs,
                "sharpe_variance": self.sharpe_variance,
                "expected_max_sharpe": self.expected_max_sharpe}

    def summary(self) -> str:
        """A plain-text account of the numbers and how to read them."""
        d = self.to_dict()
        return "\n".join([
            "Overfitting report",
            f"  PBO (CSCV, S={d['n_blocks']}, {d['combinations']:,} combinations, "
            f"{d['n_trials']} trials, {d['n_periods']:,} periods): {d['pbo']:.3f}  "
            "(0.5 = in-sample ranking tells nothing; near 0 = it finds a real edge)",
            f"  In-sample winner loses out of sample in {d['probability_of_loss']:.1%} of the "
            f"combinations; out-of-sample on in-sample slope {d['degradation_slope']:+.3f}",
            f"  Selected {self.selected}: Sharpe {self.sharpe:.4f} per period "
            f"({self.sharpe_annualised:.2f} annualised) over {self.n_obs:,.0f} independent "
            "observations",
            f"  Probabilistic Sharpe PSR(0) = {self.psr:.3f}",
            f"  Deflated Sharpe DSR = {self.dsr:.3f}  (SR0 = {self.expected_max_sharpe:.4f} per "
            f"period: the best of {self.n_trials} skill-less trials, Sharpe variance "
            f"{self.sharpe_variance:.3g})",
        ])

    def __str__(self) -> str:
        return self.summary()

    def plot(self, kind: str = "logits", *, figsize: tuple[float, float] = (7, 4)):
        """A matplotlib ``Figure``: ``"logits"`` (histogram of the CSCV logits, PBO shaded)
        or ``"is_oos"`` (the in-sample winners' Sharpe in versus out of sample, with the
        walk-forward folds when known)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, layout="constrained")
        ax = fig.subplots()
        if kind == "logits":
            logits = self.pbo.logits[np.isfinite(self.pbo.logits)]
            low = min(float(logits.min()), -1.0) if logits.size else -1.0
            high = max(float(logits.max()), 1.0) if logits.size else 1.0
            edges = np.linspace(low, high, 31)
            ax.hist(logits[logits > 0], bins=list(edges), color="tab:blue", edgecolor="white",
                    label="winner above the median")
            ax.hist(logits[logits <= 0], bins=list(edges), color="tab:red", edgecolor="white",
                    label="winner at or below the median (overfit)")
            ax.legend(loc="best", fontsize="small")
            ax.axvline(0.0, color="black", linewidth=1)
            ax.set_xlabel("logit of the in-sample winner's out-of-sample rank")
            ax.set_ylabel("combinations")
            ax.set_title(f"CSCV logits — PBO {self.pbo.pbo:.2f}")
        elif kind == "is_oos":
            scale = math.sqrt(self.periods_per_year) if math.isfinite(self.periods_per_year) \
                else 1.0
            x, y = self.pbo.is_performance * scale, self.pbo.oos_performance * scale
            ax.scatter(x, y, s=6, alpha=0.4, color="tab:blue", label="CSCV combinations")
            slope, intercept = self.pbo.degradation
            if math.isfinite(slope):
                grid = np.linspace(np.nanmin(x), np.nanmax(x), 2)
                ax.plot(grid, slope * grid + intercept * scale, color="tab:red",
                        label=f"fit, slope {slope:+.2f}")
            if self.fold_is_oos is not None and len(self.fold_is_oos):
                ax.scatter(self.fold_is_oos["in_sample"], self.fold_is_oos["out_of_sample"],
                           s=30, marker="D", color="tab:orange",
                           label=f"walk-forward folds ({self.fold_is_oos.attrs.get('metric', '')})")
            ax.axhline(0.0, color="black", linewidth=0.8)
            ax.set_xlabel("in-sample Sharpe" + (" (annualised)" if scale != 1.0 else ""))
            ax.set_ylabel("out-of-sample Sharpe" + (" (annualised)" if scale != 1.0 else ""))
            ax.set_title("In-sample versus out-of-sample")
            ax.legend(loc="best", fontsize="small")
        else:
            raise ConfigError(f"OverfittingReport.plot: kind must be 'logits' or 'is_oos'. "
                              f"Got {kind!r}.")
        return fig


def overfitting_report(returns: pd.DataFrame, *, selected: str | None = None,
                       n_trials: int | None = None, n_blocks: int = 16,
                       overlap: float = 1.0, periods_per_year: float = math.nan,
                       selected_returns: Any = None,
                       fold_is_oos: pd.DataFrame | None = None) -> OverfittingReport:
    """Build an :class:`OverfittingReport` from the per-period returns of every trial.

    Parameters
    ----------
    returns : pandas.DataFrame
        Rows = periods in time order, columns = trials (configuration ids).
    selected : str, optional
        The column whose Sharpe ratio is tested (default: the best full-sample Sharpe); with
        ``selected_returns``, only the label of those returns.
    n_trials : int, optional
        The true number of trials (default: the number of columns).
    n_blocks : int
        ``S`` of CSCV.
    overlap : float
        Periods per independent observation (``ceil(window / shift)`` for overlapping
        holding windows): PSR/DSR use ``n_periods / overlap`` observations.
    periods_per_year : float
        To annualise the Sharpe ratios shown.
    selected_returns : array-like, optional
        Returns to test instead of the selected column's (e.g. the stitched out-of-sample
        returns of a walk-forward optimisation).
    fold_is_oos : pandas.DataFrame, optional
        Columns ``in_sample``, ``out_of_sample``: drawn on the ``"is_oos"`` figure.
    """
    if not isinstance(returns, pd.DataFrame):
        raise ConfigError(f"overfitting_report needs a DataFrame of returns (periods × trials). "
                          f"Got {type(returns).__name__}.")
    pbo = probability_of_backtest_overfitting(returns, n_blocks=n_blocks)
    trial_sharpes = {c: _safe_sharpe(returns[c]) for c in returns.columns}
    if selected_returns is not None:
        selected = "selected returns" if selected is None else selected
        tested = selected_returns
    else:
        if selected is None:
            selected = str(max(trial_sharpes, key=lambda c: -np.inf
                               if math.isnan(trial_sharpes[c]) else trial_sharpes[c]))
        elif selected not in returns.columns:
            raise ConfigError(f"overfitting_report: 'selected' {selected!r} is not a column of "
                              "the returns.")
        tested = returns[selected]
    moments = sharpe_moments(tested)
    n_obs = moments["n_obs"] / max(float(overlap), 1.0)
    n_trials = int(returns.shape[1] if n_trials is None else n_trials)
    finite = np.array([v for v in trial_sharpes.values() if math.isfinite(v)])
    variance = float(finite.var(ddof=1)) if finite.size > 1 else 0.0
    sr0 = expected_max_sharpe(n_trials, variance)
    kwargs = {"sharpe": moments["sharpe"], "n_obs": n_obs, "skew": moments["skew"],
              "kurtosis": moments["kurtosis"]}
    return OverfittingReport(
        pbo=pbo, selected=str(selected), sharpe=moments["sharpe"],
        psr=probabilistic_sharpe_ratio(**kwargs),
        dsr=probabilistic_sharpe_ratio(benchmark=sr0, **kwargs), n_trials=n_trials,
        n_obs=n_obs, sharpe_variance=variance, expected_max_sharpe=sr0,
        periods_per_year=float(periods_per_year), fold_is_oos=fold_is_oos)


def _safe_sharpe(values: pd.Series) -> float:
    v = values.to_numpy(dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2 or v.std(ddof=1) == 0:
        return math.nan
    return float(v.mean() / v.std(ddof=1))
