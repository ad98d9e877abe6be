"""Metrics and the aggregated equity curve of a slices-mode run; account metrics of a
portfolio-mode run (:func:`account_metrics`).

**Equity (sleeves).** With a 4h window and a 2h shift, two decisions hold capital at once.
Summing their returns on one pot of capital would count the same money twice, so capital is
split into ``S = ceil(window / shift)`` equal sleeves. The decision at ``t`` (the ``k``-th
multiple of ``shift`` since the epoch) uses sleeve ``k mod S``; its period return is
``Σ weight × return`` of the trades decided at ``t`` (weights sum to ≤ 1, the rest stays in
cash at 0 %), that sleeve compounds by it, and the equity is the mean of the sleeves. The
value at ``t`` includes the outcome of the trades decided at ``t`` (realised by
``t + window``). A decision time with no trade has a period return of 0.

**Annualisation.** Markets trade 24/7. Each per-decision period return is the return of a
position held for one *window*, so it is annualised as a window-length return:
``periods_per_year = 365 × 24 h / max(window, shift)``;
``sharpe = mean / std (ddof 1) × sqrt(periods_per_year)`` and
``sortino = mean / sqrt(mean(min(r, 0)²)) × sqrt(periods_per_year)`` of the per-decision
period returns (risk-free rate 0). NaN when undefined (fewer than 2 periods, zero deviation).
Annualising by the shift instead would treat overlapping 4h returns taken every 2h as
independent 2h returns and inflate both ratios by ``sqrt(window / shift)`` (√2 at 4h/2h):
a buy-and-hold position then shows a Sharpe √2 above its own daily-equity Sharpe.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from core_engine._validate import MAX_DURATION_YEARS, YEAR_NS, check_frame, check_integer
from core_engine.errors import ConfigError

__all__ = ["account_metrics", "compute_metrics", "daily_returns", "equity_curve"]

#: The trade and equity columns the two functions read (``worst_case_*`` are optional).
_CURVE_TRADE_COLUMNS = ("decision_time", "weight", "return_pct", "best_return_pct")
_METRIC_TRADE_COLUMNS = ("weight", "return_pct", "best_return_pct", "entry_time", "exit_time",
                         "max_drawdown", "exit_reason", "ambiguous", "gaps_in_window")
_METRIC_EQUITY_COLUMNS = ("n_trades", "period_return_pct", "equity", "best_case_equity",
                          "drawdown_pct")


def _check_spans(window_ns: object, shift_ns: object, where: str) -> tuple[int, int]:
    """The window and shift in nanoseconds (positive, at most MAX_DURATION_YEARS)."""
    high = MAX_DURATION_YEARS * YEAR_NS
    return (check_integer(window_ns, "window_ns", where, low=1, high=high),
            check_integer(shift_ns, "shift_ns", where, low=1, high=high))


def equity_curve(trades: pd.DataFrame, decision_times: pd.DatetimeIndex, *, window_ns: int,
                 shift_ns: int) -> pd.DataFrame:
    """Aggregate trades into one row per evaluated decision time (see module docstring).

    Returns
    -------
    pandas.DataFrame
        Columns ``decision_time``, ``n_trades``, ``period_return_pct``,
        ``best_case_period_return_pct`` (ambiguous candles resolved in favour of the target),
        ``worst_case_period_return_pct`` (stops inside a candle filled at its low),
        ``equity`` (starts at 1.0 before the first decision), ``best_case_equity``,
        ``worst_case_equity``, ``drawdown_pct`` (of ``equity`` from its running peak, ≥ 0).
        Trades without a ``worst_case_return_pct`` column count their ``return_pct``.

    Raises
    ------
    ConfigError
        If ``trades`` is not a trades frame (``decision_time``, ``weight``, ``return_pct``,
        ``best_return_pct``), ``decision_times`` are not times or miss a trade's decision
        time, or ``window_ns`` / ``shift_ns`` are not positive integers (nanoseconds).
    """
    check_frame(trades, "trades", "equity_curve", columns=_CURVE_TRADE_COLUMNS,
                expected="a pandas DataFrame of trades (BacktestResult.trades)",
                error=ConfigError)
    try:
        times = pd.DatetimeIndex(decision_times)
        times_ns = times.as_unit("ns").asi8  # the sleeves count nanoseconds, whatever the unit
    except (TypeError, ValueError, OverflowError) as exc:  # a scalar, text, a time past 2262
        raise ConfigError("The 'decision_times' parameter of equity_curve must be times (a "
                          "DatetimeIndex of the evaluated decision times). "
                          f"Got {type(decision_times).__name__} {decision_times!r:.80}.") from exc
    window_ns, shift_ns = _check_spans(window_ns, shift_ns, "equity_curve")
    n = len(times)
    weighted = trades["weight"].to_numpy() * trades["return_pct"].to_numpy()
    weighted_best = trades["weight"].to_numpy() * trades["best_return_pct"].to_numpy()
    weighted_worst = trades["weight"].to_numpy() * _worst_case(trades)
    pos = times.get_indexer(pd.DatetimeIndex(trades["decision_time"]))
    if (pos < 0).any():
        t = trades["decision_time"].iloc[int(np.argmax(pos < 0))]
        raise ConfigError(f"The 'trades' parameter of equity_curve holds a trade decided at {t}, "
                          "which is not one of the 'decision_times'.")
    period = np.bincount(pos, weights=weighted, minlength=n) if len(pos) else np.zeros(n)
    period_best = np.bincount(pos, weights=weighted_best, minlength=n) if len(pos) else np.zeros(n)
    period_worst = np.bincount(pos, weights=weighted_worst, minlength=n) if len(pos) else np.zeros(n)
    counts = np.bincount(pos, minlength=n) if len(pos) else np.zeros(n, dtype=np.int64)
    sleeves = max(1, -(-window_ns // shift_ns))
    sleeve_of = (times_ns // shift_ns) % sleeves
    equity = _sleeve_equity(period / 100.0, sleeve_of, sleeves)
    best_equity = _sleeve_equity(period_best / 100.0, sleeve_of, sleeves)
    worst_equity = _sleeve_equity(period_worst / 100.0, sleeve_of, sleeves)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    return pd.DataFrame({
        "decision_time": times,
        "n_trades": counts.astype(np.int64),
        "period_return_pct": period,
        "best_case_period_return_pct": period_best,
        "worst_case_period_return_pct": period_worst,
        "equity": equity,
        "best_case_equity": best_equity,
        "worst_case_equity": worst_equity,
        "drawdown_pct": (1.0 - equity / peak) * 100.0,
    })


def _worst_case(trades: pd.DataFrame) -> np.ndarray:
    column = "worst_case_return_pct" if "worst_case_return_pct" in trades else "return_pct"
    return trades[column].to_numpy(dtype=np.float64)


def _sleeve_equity(returns: np.ndarray, sleeve_of: np.ndarray, sleeves: int) -> np.ndarray:
    """Mean over sleeves of each sleeve's compounded value after every decision."""
    n = returns.shape[0]
    total = np.zeros(n)
    # A sleeve no decision uses stays at 1.0. With more sleeves than decisions (a long window
    # over a short shift, up to 10**13 sleeves for a 4h window and a 1 ns shift) only the
    # sleeves in use are walked, so the loop is bounded by the decisions.
    used = range(sleeves) if sleeves <= n else np.unique(sleeve_of)
    if sleeves > n:
        total += sleeves - len(used)
    for s in used:
        mine = sleeve_of == s
        value = np.cumprod(1.0 + returns[mine])
        # the sleeve's value at decision d is its value after its last decision <= d
        count = np.cumsum(mine)
        seen = count > 0
        filled = np.ones(n)
        filled[seen] = value[count[seen] - 1]
        total += filled
    return total / sleeves


def _ratio(num: float, den: float) -> float:
    if den == 0 or not math.isfinite(den):
        return math.nan
    return num / den


def compute_metrics(trades: pd.DataFrame, equity: pd.DataFrame, *, window_ns: int,
                    shift_ns: int) -> dict:
    """Return the metrics dict of a run (all values plain Python numbers or dicts).

    Keys: ``trades, decisions, decisions_with_trades, coverage, win_rate, avg_return_pct,
    median_return_pct, profit_factor, avg_trade_max_drawdown_pct, max_trade_drawdown_pct,
    total_return_pct, equity_max_drawdown_pct, sharpe, sortino, periods_per_year, exposure,
    avg_holding_minutes, turnover_per_year, ambiguous_trades, ambiguous_spread_pct,
    best_case_avg_return_pct, best_case_total_return_pct, stop_fill_spread_pct,
    worst_case_avg_return_pct, worst_case_total_return_pct, trades_with_gaps,
    exit_reasons``.

    ``coverage`` is the share of evaluated decision times with at least one trade;
    ``exposure`` the average share of capital in the market,
    ``Σ weight × holding time / (S × shift × decisions)`` with ``S`` sleeves;
    ``turnover_per_year`` the capital traded in and out per year, ``2 × Σ weight / S`` per
    year of decisions; ``ambiguous_spread_pct`` the best-case minus the stop-first average
    trade return (0 when no candle touched both levels); ``stop_fill_spread_pct`` the
    average trade return minus its worst case (stops inside a candle filled at the
    candle's low; 0 without such stops or with ``stop_fill="low"``). Trade-level averages
    are unweighted.

    Raises
    ------
    ConfigError
        If ``trades`` or ``equity`` is not a frame with the columns read (those of
        ``BacktestResult.trades`` and of :func:`equity_curve`), or ``window_ns`` /
        ``shift_ns`` are not positive integers (nanoseconds).
    """
    check_frame(trades, "trades", "compute_metrics", columns=_METRIC_TRADE_COLUMNS,
                expected="a pandas DataFrame of trades (BacktestResult.trades)",
                error=ConfigError)
    check_frame(equity, "equity", "compute_metrics", columns=_METRIC_EQUITY_COLUMNS,
                expected="a pandas DataFrame of equity (from equity_curve)", error=ConfigError)
    window_ns, shift_ns = _check_spans(window_ns, shift_ns, "compute_metrics")
    returns = trades["return_pct"].to_numpy(dtype=np.float64)
    weights = trades["weight"].to_numpy(dtype=np.float64)
    n_trades = int(returns.size)
    n_dec = int(len(equity))
    sleeves = max(1, -(-window_ns // shift_ns))
    periods_per_year = YEAR_NS / max(window_ns, shift_ns)
    period = equity["period_return_pct"].to_numpy() / 100.0
    gains, losses = returns[returns > 0].sum(), -returns[returns < 0].sum()
    holding_ns = (trades["exit_time"] - trades["entry_time"]).to_numpy().astype("timedelta64[ns]")
    holding_ns = holding_ns.astype(np.int64).astype(np.float64)
    years = n_dec * shift_ns / YEAR_NS
    downside = math.sqrt(float(np.mean(np.minimum(period, 0.0) ** 2))) if n_dec else math.nan
    best = trades["best_return_pct"].to_numpy(dtype=np.float64)
    eq = equity["equity"].to_numpy()
    best_eq = equity["best_case_equity"].to_numpy()
    worst = _worst_case(trades)
    worst_eq = equity["worst_case_equity"].to_numpy() if "worst_case_equity" in equity else eq
    reasons = trades["exit_reason"].value_counts()
    metrics = {
        "trades": n_trades,
        "decisions": n_dec,
        "decisions_with_trades": int((equity["n_trades"] > 0).sum()),
        "coverage": _ratio(float((equity["n_trades"] > 0).sum()), n_dec),
        "win_rate": _ratio(float((returns > 0).sum()), n_trades),
        "avg_return_pct": float(returns.mean()) if n_trades else math.nan,
        "median_return_pct": float(np.median(returns)) if n_trades else math.nan,
        "profit_factor": (math.inf if gains > 0 else math.nan) if losses == 0
        else float(gains / losses),
        "avg_trade_max_drawdown_pct": float(trades["max_drawdown"].mean()) if n_trades else math.nan,
        "max_trade_drawdown_pct": float(trades["max_drawdown"].max()) if n_trades else math.nan,
        "total_return_pct": float((eq[-1] - 1.0) * 100.0) if n_dec else 0.0,
        "equity_max_drawdown_pct": float(equity["drawdown_pct"].max()) if n_dec else 0.0,
        "sharpe": _ratio(float(period.mean()), float(period.std(ddof=1)))
        * math.sqrt(periods_per_year) if n_dec > 1 else math.nan,
        "sortino": _ratio(float(period.mean()), downside) * math.sqrt(periods_per_year)
        if n_dec > 1 else math.nan,
        "periods_per_year": periods_per_year,
        "exposure": _ratio(float((weights * holding_ns).sum()), sleeves * shift_ns * n_dec),
        "avg_holding_minutes": float(holding_ns.mean() / 60e9) if n_trades else math.nan,
        "turnover_per_year": _ratio(2.0 * float(weights.sum()) / sleeves, years),
        "ambiguous_trades": int(trades["ambiguous"].sum()),
        "ambiguous_spread_pct": float((best - returns).mean()) if n_trades else 0.0,
        "best_case_avg_return_pct": float(best.mean()) if n_trades else math.nan,
        "best_case_total_return_pct": float((best_eq[-1] - 1.0) * 100.0) if n_dec else 0.0,
        "stop_fill_spread_pct": float((returns - worst).mean()) if n_trades else 0.0,
        "worst_case_avg_return_pct": float(worst.mean()) if n_trades else math.nan,
        "worst_case_total_return_pct": float((worst_eq[-1] - 1.0) * 100.0) if n_dec else 0.0,
        "trades_with_gaps": int((trades["gaps_in_window"] > 0).sum()),
        "exit_reasons": {str(k): int(reasons.get(k, 0)) for k in
                         ("window_end", "stop_loss", "take_profit", "trailing_stop")},
    }
    return metrics


_DAY_NS = 86_400 * 10**9
#: Exit reasons counted in a portfolio run's metrics (slices reasons first).
ACCOUNT_EXIT_REASONS = ("window_end", "stop_loss", "take_profit", "trailing_stop", "dropped",
                        "rebalance", "daily_loss_limit_pct", "max_drawdown_pct")


def daily_returns(equity: pd.DataFrame) -> np.ndarray:
    """Daily returns of a portfolio equity curve (marks at candle closes).

    A UTC day's value is its last mark at or before the next midnight (the mark at
    00:00 closes the day before); the first day's return is from the first mark (the
    initial cash).
    """
    values = equity["equity"].to_numpy(dtype=np.float64)
    if values.size < 2:
        return np.empty(0)
    times = pd.DatetimeIndex(equity["time"]).as_unit("ns").asi8
    day = (times[1:] - 1) // _DAY_NS
    last = np.flatnonzero(np.append(day[1:] != day[:-1], True)) + 1
    closes = values[last]
    prev = np.concatenate([values[:1], closes[:-1]])
    return closes / prev - 1.0


def _drawdown_duration_days(equity: pd.DataFrame) -> float:
    """Longest time from a peak mark (a value at or above every earlier one) to a later
    mark still below it, in days."""
    values = equity["equity"].to_numpy(dtype=np.float64)
    if values.size == 0:
        return 0.0
    times = pd.DatetimeIndex(equity["time"]).as_unit("ns").asi8
    at_peak = values >= np.maximum.accumulate(values)
    last_peak = np.maximum.accumulate(np.where(at_peak, np.arange(values.size), 0))
    return float((times - times[last_peak]).max()) / _DAY_NS


def _trade_statistics(trades: pd.DataFrame) -> dict:
    """The slices trade statistics that also describe a portfolio's trades."""
    returns = trades["return_pct"].to_numpy(dtype=np.float64)
    n_trades = int(returns.size)
    gains, losses = returns[returns > 0].sum(), -returns[returns < 0].sum()
    holding = (trades["exit_time"] - trades["entry_time"]).to_numpy().astype("timedelta64[ns]")
    holding_ns = holding.astype(np.int64).astype(np.float64)
    best = trades["best_return_pct"].to_numpy(dtype=np.float64)
    worst = trades["worst_case_return_pct"].to_numpy(dtype=np.float64)
    return {
        "trades": n_trades,
        "win_rate": _ratio(float((returns > 0).sum()), n_trades),
        "avg_return_pct": float(returns.mean()) if n_trades else math.nan,
        "median_return_pct": float(np.median(returns)) if n_trades else math.nan,
        "profit_factor": (math.inf if gains > 0 else math.nan) if losses == 0
        else float(gains / losses),
        "avg_trade_max_drawdown_pct": float(trades["max_drawdown"].mean()) if n_trades
        else math.nan,
        "max_trade_drawdown_pct": float(trades["max_drawdown"].max()) if n_trades else math.nan,
        "avg_holding_minutes": float(holding_ns.mean() / 60e9) if n_trades else math.nan,
        "ambiguous_trades": int(trades["ambiguous"].sum()),
        "ambiguous_spread_pct": float((best - returns).mean()) if n_trades else 0.0,
        "best_case_avg_return_pct": float(best.mean()) if n_trades else math.nan,
        "stop_fill_spread_pct": float((returns - worst).mean()) if n_trades else 0.0,
        "worst_case_avg_return_pct": float(worst.mean()) if n_trades else math.nan,
        "trades_with_gaps": int((trades["gaps_in_window"] > 0).sum()),
    }


def account_metrics(trades: pd.DataFrame, equity: pd.DataFrame, blocked: pd.DataFrame, *,
                    decisions: int, initial_cash: float) -> dict:
    """The metrics of a portfolio-mode run, computed on the account.

    Account: ``initial_cash, final_equity, pnl, total_return_pct`` (final / initial − 1),
    ``cagr_pct`` (compounded over the marks' span, 365-day years), ``sharpe`` and
    ``sortino`` of the daily returns (:func:`daily_returns`, ``× sqrt(365)``, risk-free 0;
    NaN with fewer than 2 days), ``equity_max_drawdown_pct`` (from the running peak of the
    marks), ``max_drawdown_duration_days`` (longest time below a previous peak),
    ``calmar`` (CAGR / max drawdown), ``exposure`` (mean of exposure / equity over the
    marks), ``turnover_per_year`` (entry plus exit values traded, over the mean equity,
    per year), ``fees_paid`` (Σ trade fees). Trades and picks: the slices trade statistics
    (``trades, win_rate, avg_return_pct, ...``), ``decisions``, ``decisions_with_trades``
    (decision times that opened a position), ``coverage``, ``exit_reasons``,
    ``blocked_picks`` and ``blocked_reasons``.
    """
    values = equity["equity"].to_numpy(dtype=np.float64)
    final = float(values[-1]) if values.size else float(initial_cash)
    times = pd.DatetimeIndex(equity["time"]).as_unit("ns").asi8
    years = float(times[-1] - times[0]) / YEAR_NS if values.size > 1 else 0.0
    daily = daily_returns(equity)
    downside = math.sqrt(float(np.mean(np.minimum(daily, 0.0) ** 2))) if daily.size else math.nan
    max_dd = float(equity["drawdown_pct"].max()) if values.size else 0.0
    growth = final / initial_cash
    cagr = (growth ** (1.0 / years) - 1.0) * 100.0 if years > 0 and growth > 0 else math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        exposure_share = equity["exposure"].to_numpy() / values
    traded_value = float(trades["entry_value"].sum()
                         + (trades["quantity"] * trades["exit_price"]).sum())
    opened = trades.loc[trades["exit_reason"] != "rebalance", "decision_time"]
    with_trades = int(pd.DatetimeIndex(opened).nunique())
    reasons = trades["exit_reason"].value_counts()
    blocked_counts = blocked["reason"].value_counts()
    metrics = {
        "initial_cash": float(initial_cash),
        "final_equity": final,
        "pnl": float(trades["pnl"].sum()),
        "total_return_pct": (growth - 1.0) * 100.0,
        "cagr_pct": cagr,
        "sharpe": _ratio(float(daily.mean()), float(daily.std(ddof=1))) * math.sqrt(365.0)
        if daily.size > 1 else math.nan,
        "sortino": _ratio(float(daily.mean()), downside) * math.sqrt(365.0)
        if daily.size > 1 else math.nan,
        "equity_max_drawdown_pct": max_dd,
        "max_drawdown_duration_days": _drawdown_duration_days(equity),
        "calmar": _ratio(cagr, max_dd) if not math.isnan(cagr) else math.nan,
        "exposure": float(np.nanmean(exposure_share)) if values.size else math.nan,
        "turnover_per_year": float(_ratio(traded_value / float(np.mean(values)), years))
        if values.size else math.nan,
        "fees_paid": float(trades["fees"].sum()),
        "decisions": int(decisions),
        "decisions_with_trades": with_trades,
        "coverage": _ratio(float(with_trades), decisions),
        **_trade_statistics(trades),
        "exit_reasons": {str(k): int(reasons.get(k, 0)) for k in ACCOUNT_EXIT_REASONS},
        "blocked_picks": int(len(blocked)),
        "blocked_reasons": {str(k): int(v) for k, v in blocked_counts.items()},
    }
    return metrics
