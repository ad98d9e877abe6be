"""Matplotlib figures of a backtest run and of a factor evaluation.

Every function builds a new :class:`matplotlib.figure.Figure` with the object API and returns
it: no pyplot state, no ``plt.show()``. In a notebook run ``%matplotlib inline`` once and the
returned figure displays itself; elsewhere call ``fig.savefig("equity.png")``.

Result plots take a :class:`~core_engine.backtest.BacktestResult` (or anything with its
``trades``/``equity``/``metrics``/``config`` attributes, e.g. a reloaded run).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from core_engine._config import did_you_mean
from core_engine._validate import check_instance, check_integer, check_items, check_real
from core_engine._validate import check_result as check_run
from core_engine.backtest.views import register_view
from core_engine.data.timeframes import to_utc_timestamp
from core_engine.errors import ConfigError

__all__ = [
    "EXIT_MARKERS",
    "PLOT_KINDS",
    "plot_breakdown",
    "plot_comparison",
    "plot_equity",
    "plot_factor",
    "plot_result",
    "plot_return_distribution",
    "plot_trades",
]

#: Marker style of each exit reason on :func:`plot_trades`: (marker, colour).
EXIT_MARKERS = {
    "window_end": ("o", "tab:gray"),
    "stop_loss": ("X", "tab:red"),
    "take_profit": ("*", "tab:green"),
    "trailing_stop": ("D", "tab:orange"),
}
_ENTRY_MARKER = ("^", "tab:blue")
_TIME_LABEL = "Decision time (UTC)"


def _figure(figsize: tuple[float, float]) -> Figure:
    return Figure(figsize=check_figsize(figsize), layout="constrained")


def check_figsize(figsize: Any) -> tuple[float, float]:
    """``figsize`` as (width, height) inches, each in (0, 100], or a ConfigError."""
    ok = isinstance(figsize, (tuple, list)) and len(figsize) == 2
    if ok:
        try:
            width, height = (check_real(v, "figsize", "the plot", low=0, high=100) for v in figsize)
        except ConfigError:
            ok = False
        ok = ok and width > 0 and height > 0
    if not ok:
        raise ConfigError("The 'figsize' parameter of a plot must be (width, height) in inches, "
                          f"each above 0 and at most 100, such as (10, 6). Got {figsize!r:.80}.")
    return (width, height)


def check_result(result: Any, where: str) -> Any:
    """``result`` if it is a BacktestResult (a ReplayResult is one), else a ConfigError."""
    return check_run(result, "result", where)


def _strategy_label(result: Any) -> str:
    cfg = result.config
    name = cfg.get("strategy", {}).get("name", "run")
    return f"{name} — window {cfg.get('window', '?')}, shift {cfg.get('shift', '?')}"


# ---------------------------------------------------------------------------- equity
def _is_portfolio(result: Any) -> bool:
    return result.config.get("mode") == "portfolio"


def _equity_times(eq: pd.DataFrame) -> pd.DatetimeIndex:
    """Times of an equity table: candle closes (portfolio) or decision times (slices)."""
    return pd.DatetimeIndex(eq["time"] if "time" in eq else eq["decision_time"])


def _plot_account(result: Any, ax_eq: Any) -> None:
    """Portfolio mode: the account's equity and cash in the quote currency."""
    eq = result.equity
    times = _equity_times(eq)
    ax_eq.plot(times, eq["equity"].to_numpy(), color="tab:blue", lw=1.2, label="equity")
    ax_eq.plot(times, eq["cash"].to_numpy(), color="tab:gray", lw=0.7, ls="--", label="cash")
    ax_eq.axhline(float(result.metrics.get("initial_cash", 0.0)), color="black", lw=0.6,
                  alpha=0.5)
    ax_eq.set_ylabel("Account value (quote currency)")


def plot_equity(result: Any, *, figsize: tuple[float, float] = (10, 6)) -> Figure:
    """Equity curve (top) with its drawdown from the running peak underneath.

    Top axis: one line ``equity`` (starts at 1.0), plus a dashed ``best case`` line when some
    candle touched both stop and target (ambiguous exits resolved in favour of the target)
    and a dotted ``worst case`` line when some stop filled inside a candle above its low
    (those stops filled at the low instead).
    Bottom axis: one line at ``-drawdown_pct`` with the area to 0 filled.

    A portfolio-mode run shows the account instead: ``equity`` and ``cash`` (dashed) in the
    quote currency at every candle close, a line at the initial cash.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes, ``fig.axes[0]`` equity, ``fig.axes[1]`` drawdown, sharing the time axis.
    """
    check_result(result, "plot_equity")
    eq = result.equity
    fig = _figure(figsize)
    ax_eq, ax_dd = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    times = _equity_times(eq)
    if _is_portfolio(result):
        _plot_account(result, ax_eq)
    else:
        _plot_slices_equity(result, ax_eq)
    ax_eq.set_title(f"Equity — {_strategy_label(result)}")
    ax_eq.legend(loc="upper left")
    ax_eq.grid(alpha=0.3)
    dd = -eq["drawdown_pct"].to_numpy()
    ax_dd.plot(times, dd, color="tab:red", lw=1.0, label="drawdown")
    if len(times):
        ax_dd.fill_between(times, dd, 0.0, color="tab:red", alpha=0.25)
    else:  # matplotlib cannot fill an empty time axis
        ax_eq.text(0.5, 0.5, "no decision time evaluated", transform=ax_eq.transAxes,
                   ha="center", va="center")
    ax_dd.set_ylabel("Drawdown (%)")
    ax_dd.set_xlabel(_TIME_LABEL)
    ax_dd.grid(alpha=0.3)
    return fig


def _plot_slices_equity(result: Any, ax_eq: Any) -> None:
    eq = result.equity
    times = _equity_times(eq)
    ax_eq.plot(times, eq["equity"].to_numpy(), color="tab:blue", lw=1.2, label="equity")
    if result.metrics.get("ambiguous_trades", 0):
        ax_eq.plot(times, eq["best_case_equity"].to_numpy(), color="tab:green", lw=0.8,
                   ls="--", label="best case (target first)")
    if result.metrics.get("stop_fill_spread_pct", 0) and "worst_case_equity" in eq:
        ax_eq.plot(times, eq["worst_case_equity"].to_numpy(), color="tab:red", lw=0.8,
                   ls=":", label="worst case (stops fill at the candle's low)")
    ax_eq.axhline(1.0, color="black", lw=0.6, alpha=0.5)
    ax_eq.set_ylabel("Equity (start = 1)")


# ---------------------------------------------------------------------------- trades
def _panel_of(result: Any, panel: Any) -> Any:
    if panel is not None:
        from core_engine.data.panel import Panel

        return check_instance(panel, Panel, "panel", "plot_trades")
    found = getattr(result, "panel", None)
    if found is None:
        found = getattr(result, "_panel", None)
    if found is None:
        raise ConfigError(
            "plot_trades needs the candles: pass panel= (the Panel the run was made on); a "
            "result loaded from disk does not keep them."
        )
    return found


def plot_trades(result: Any, symbol: str, panel: Any = None, *, start: Any = None,
                end: Any = None, show_levels: bool = True,
                figsize: tuple[float, float] = (12, 5)) -> Figure:
    """Price of one symbol with every trade's entry and exit marked.

    The close is drawn at each candle's close time (open time + timeframe), so an entry at
    the open of the candle starting at ``t`` sits on the price line at ``t``.

    Markers (``ax.lines`` entries with no line): one ``entry`` series (blue ``^`` at
    ``entry_time, entry_price``) and one series per exit reason present
    (:data:`EXIT_MARKERS`: window end grey ``o``, stop-loss red ``X``, take-profit green
    ``*``, trailing stop orange ``D``) at ``exit_time, exit_price``. With
    ``show_levels`` and percentage stop/target rules in the run's config, the stop and
    target levels of each trade are drawn as short horizontal segments from entry to exit
    (two :class:`~matplotlib.collections.LineCollection` in ``ax.collections``, labelled
    ``stop level`` and ``target level``).

    Parameters
    ----------
    result : BacktestResult
    symbol : str
        One of the run's symbols.
    panel : Panel, optional
        The candles of the run; defaults to the panel kept by the result (not kept after
        ``BacktestResult.load``).
    start, end : time, optional
        Show candles and trades with entry in ``[start, end)`` only.

    Raises
    ------
    ConfigError
        If the symbol is not in the panel, or no panel is available.
    """
    check_result(result, "plot_trades")
    panel = _panel_of(result, panel)
    j = panel.column(symbol)
    step = pd.Timedelta(panel.step_ns, unit="ns")
    times = panel.index + step
    close = panel.close[:, j]
    lo = panel.index[0] if start is None else to_utc_timestamp(start, name="start")
    hi = times[-1] + step if end is None else to_utc_timestamp(end, name="end")
    keep = (times >= lo) & (times < hi)
    trades = result.trades
    trades = trades[(trades["symbol"] == symbol) & (trades["entry_time"] >= lo)
                    & (trades["entry_time"] < hi)]
    fig = _figure(figsize)
    ax = fig.subplots()
    ax.plot(times[keep], close[keep], color="black", lw=0.8, label=f"{symbol} close")
    marker, colour = _ENTRY_MARKER
    ax.plot(trades["entry_time"], trades["entry_price"], ls="none", marker=marker, color=colour,
            markersize=7, label=f"entry ({len(trades)})")
    for reason, (marker, colour) in EXIT_MARKERS.items():
        part = trades[trades["exit_reason"] == reason]
        if len(part):
            ax.plot(part["exit_time"], part["exit_price"], ls="none", marker=marker,
                    color=colour, markersize=7, label=f"exit: {reason.replace('_', ' ')} ({len(part)})")
    if show_levels:
        _draw_levels(ax, trades, result.config.get("exits") or {})
    ax.set_title(f"{symbol} — {len(trades)} trades — {_strategy_label(result)}")
    ax.set_xlabel("Time (UTC)")
    ax.set_ylabel(f"Price ({symbol.split('/')[-1] if '/' in symbol else 'quote'})")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def _draw_levels(ax: Any, trades: pd.DataFrame, exits: dict) -> None:
    if not len(trades):
        return
    x0 = _to_num(trades["entry_time"])
    x1 = _to_num(trades["exit_time"])
    entry = trades["entry_price"].to_numpy()
    for key, sign, colour, label in (("stop_loss_pct", -1.0, "tab:red", "stop level"),
                                     ("take_profit_pct", 1.0, "tab:green", "target level")):
        pct = exits.get(key)
        if pct is None:
            continue
        level = entry * (1.0 + sign * float(pct) / 100.0)
        segments = np.stack([np.column_stack([x0, level]), np.column_stack([x1, level])], axis=1)
        ax.add_collection(LineCollection(list(segments), colors=colour, linewidths=1.0,
                                         linestyles="dotted", label=label))


def _to_num(times: pd.Series) -> np.ndarray:
    import matplotlib.dates as mdates

    return mdates.date2num(pd.DatetimeIndex(times).tz_convert("UTC").tz_localize(None).to_pydatetime())


# ---------------------------------------------------------------------------- distributions
def plot_return_distribution(result: Any, *, bins: int = 50,
                             figsize: tuple[float, float] = (8, 5)) -> Figure:
    """Histogram of the trades' ``return_pct`` with the mean, median and zero marked.

    One axis: ``bins`` bars (``ax.patches``, heights summing to the trade count) and three
    vertical lines in ``ax.lines``: ``mean``, ``median`` and ``zero``.
    """
    check_result(result, "plot_return_distribution")
    check_integer(bins, "bins", "plot_return_distribution", low=1, high=10_000)
    returns = result.trades["return_pct"].to_numpy(dtype=np.float64)
    fig = _figure(figsize)
    ax = fig.subplots()
    if returns.size:
        ax.hist(returns, bins=bins, color="tab:blue", alpha=0.75, edgecolor="white")
        mean, median = float(returns.mean()), float(np.median(returns))
    else:
        mean = median = float("nan")
    ax.axvline(mean, color="tab:red", lw=1.5, label=f"mean {mean:+.3f} %")
    ax.axvline(median, color="tab:orange", lw=1.5, ls="--", label=f"median {median:+.3f} %")
    ax.axvline(0.0, color="black", lw=0.8, label="zero")
    ax.set_xlabel("Trade return after costs (%)")
    ax.set_ylabel("Trades")
    ax.set_title(f"{returns.size:,} trades — {_strategy_label(result)}")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return fig


def breakdown_table(result: Any, by: str = "symbol") -> pd.DataFrame:
    """Trades grouped by ``symbol`` or by ``hour`` (UTC hour of the decision time).

    Returns
    -------
    pandas.DataFrame
        Index = the groups (symbols sorted, or hours 0-23 present); columns ``trades``,
        ``avg_return_pct``, ``win_rate``, ``total_return_pct`` (sum of returns).
    """
    if by not in ("symbol", "hour"):
        raise ConfigError(f"The 'by' parameter of plot_breakdown must be 'symbol' or 'hour'. "
                          f"Got {by!r}.")
    trades = result.trades
    key = trades["symbol"] if by == "symbol" else \
        pd.DatetimeIndex(trades["decision_time"]).hour.to_series(index=trades.index)
    key = key.rename(by)
    grouped = trades["return_pct"].groupby(key)
    table = pd.DataFrame({"trades": grouped.size().astype(np.int64),
                          "avg_return_pct": grouped.mean(),
                          "win_rate": grouped.apply(lambda r: float((r > 0).mean())),
                          "total_return_pct": grouped.sum()})
    return table.sort_index()


def plot_breakdown(result: Any, by: str = "symbol", *,
                   figsize: tuple[float, float] = (10, 6)) -> Figure:
    """Average trade return (top) and trade count (bottom) per symbol or per hour of day.

    Two axes with one bar per group (``ax.patches``), groups as in :func:`breakdown_table`;
    bars of negative average return are red.
    """
    check_result(result, "plot_breakdown")
    table = breakdown_table(result, by)
    labels = [str(v) if by == "symbol" else f"{int(v):02d}h" for v in table.index]
    x = np.arange(len(table))
    fig = _figure(figsize)
    ax_ret, ax_n = fig.subplots(2, 1, sharex=True)
    avg = table["avg_return_pct"].to_numpy()
    ax_ret.bar(x, avg, color=np.where(avg < 0, "tab:red", "tab:green"))
    ax_ret.axhline(0.0, color="black", lw=0.6)
    ax_ret.set_ylabel("Average return (%)")
    what = "symbol" if by == "symbol" else "hour of day (decision time, UTC)"
    ax_ret.set_title(f"Per {what} — {_strategy_label(result)}")
    ax_ret.grid(alpha=0.3, axis="y")
    ax_n.bar(x, table["trades"].to_numpy(), color="tab:blue")
    ax_n.set_ylabel("Trades")
    ax_n.set_xlabel("Symbol" if by == "symbol" else "Hour of day (UTC)")
    ax_n.set_xticks(x, labels, rotation=45 if by == "symbol" else 0)
    ax_n.grid(alpha=0.3, axis="y")
    return fig


# ---------------------------------------------------------------------------- comparison
def _run_names(results: Sequence[Any], names: Iterable[str] | None) -> list[str]:
    if names is None:
        base = [r.config.get("strategy", {}).get("name", "run") for r in results]
        return [f"{b} #{i + 1}" if base.count(b) > 1 else b for i, b in enumerate(base)]
    names = [str(n) for n in check_items(names, "names", "plot_comparison", kinds=(str, int),
                                         expected="a list of run names")]
    if len(names) != len(results):
        raise ConfigError(f"plot_comparison got {len(names)} names for {len(results)} results.")
    return names


def plot_comparison(results: Sequence[Any], names: Iterable[str] | None = None, *,
                    figsize: tuple[float, float] = (10, 6)) -> Figure:
    """Several runs' equity curves on one axis (top) and their drawdowns (bottom).

    One line per run on each axis, labelled with ``names`` (default: the strategy names,
    numbered when repeated) and the run's total return. Portfolio runs are drawn as a
    multiple of their initial cash, so both modes share the axis.
    """
    results = check_items(results, "results", "plot_comparison", non_empty=True,
                          expected="a non-empty list of BacktestResult objects")
    for result in results:
        check_run(result, "results", "plot_comparison")
    labels = _run_names(results, names)
    fig = _figure(figsize)
    ax_eq, ax_dd = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    for label, result in zip(labels, results, strict=True):
        eq = result.equity
        times = _equity_times(eq)
        total = result.metrics.get("total_return_pct", float("nan"))
        value = eq["equity"].to_numpy()
        if _is_portfolio(result):  # the account, as a multiple of its initial cash
            value = value / float(result.metrics.get("initial_cash", 1.0))
        line, = ax_eq.plot(times, value, lw=1.2, label=f"{label} ({total:+.2f} %)")
        ax_dd.plot(times, -eq["drawdown_pct"].to_numpy(), lw=1.0, color=line.get_color(),
                   label=label)
    ax_eq.axhline(1.0, color="black", lw=0.6, alpha=0.5)
    ax_eq.set_ylabel("Equity (start = 1)")
    ax_eq.set_title(f"{len(results)} runs compared")
    ax_eq.legend(loc="upper left")
    ax_eq.grid(alpha=0.3)
    ax_dd.set_ylabel("Drawdown (%)")
    ax_dd.set_xlabel(_TIME_LABEL)
    ax_dd.grid(alpha=0.3)
    return fig


# ---------------------------------------------------------------------------- factors
def plot_factor(report: Any, *, figsize: tuple[float, float] = (12, 8)) -> Figure:
    """Three panels of a :class:`~core_engine.research.factors.FactorReport`.

    ``fig.axes[0]``: rank IC per decision time (thin line) and its 1-day rolling mean;
    ``fig.axes[1]``: IC decay, mean IC and mean rank IC by horizon (bars);
    ``fig.axes[2]``: mean forward return per quantile (bars).
    """
    if isinstance(report, type) or not all(
            hasattr(report, part) for part in ("ic", "decay", "quantile_returns")):
        raise ConfigError("The 'report' parameter of plot_factor must be a FactorReport (from "
                          f"evaluate_factor). Got {type(report).__name__} {report!r:.80}.")
    fig = _figure(figsize)
    ax_ic, ax_decay, ax_q = fig.subplot_mosaic([["ic", "ic"], ["decay", "q"]]).values()
    ic = report.ic["rank_ic"]
    per_day = max(1, int(pd.Timedelta("1D") / pd.Timedelta(report.shift)))
    ax_ic.plot(ic.index, ic.to_numpy(), lw=0.5, color="tab:gray", label="rank IC")
    ax_ic.plot(ic.index, ic.rolling(per_day, min_periods=1).mean().to_numpy(), lw=1.5,
               color="tab:blue", label="1-day mean")
    ax_ic.axhline(0.0, color="black", lw=0.6)
    ax_ic.set_ylabel(f"Rank IC ({report.window} forward)")
    ax_ic.set_xlabel(_TIME_LABEL)
    ax_ic.set_title(f"Factor {report.name}")
    ax_ic.legend(loc="upper left")
    decay = report.decay
    x = np.arange(len(decay))
    ax_decay.bar(x - 0.2, decay["ic_mean"].to_numpy(), width=0.4, label="IC")
    ax_decay.bar(x + 0.2, decay["rank_ic_mean"].to_numpy(), width=0.4, label="rank IC")
    ax_decay.set_xticks(x, list(decay.index))
    ax_decay.axhline(0.0, color="black", lw=0.6)
    ax_decay.set_xlabel("Horizon")
    ax_decay.set_ylabel("Mean IC")
    ax_decay.legend()
    q = report.quantile_returns
    ax_q.bar([f"Q{k}" for k in q.index], q["mean_return_pct"].to_numpy(), color="tab:purple")
    ax_q.axhline(0.0, color="black", lw=0.6)
    ax_q.set_xlabel(f"Quantile (1 = lowest {report.name})")
    ax_q.set_ylabel(f"Mean {report.window} forward return (%)")
    return fig


# ---------------------------------------------------------------------------- dispatcher
PLOT_KINDS = ("equity", "trades", "returns", "breakdown", "comparison")
_ALIASES = {"distribution": "returns", "drawdown": "equity", "compare": "comparison"}


def plot_result(result: Any, kind: str = "equity", **kwargs: Any) -> Figure:
    """One plot of ``result`` by name: the target of ``BacktestResult.plot(kind=...)``.

    ``kind``:

    * ``"equity"`` — :func:`plot_equity`;
    * ``"trades"`` — :func:`plot_trades`, needs ``symbol=`` (and ``panel=`` unless the result
      keeps its panel);
    * ``"returns"`` (alias ``"distribution"``) — :func:`plot_return_distribution`;
    * ``"breakdown"`` — :func:`plot_breakdown`, ``by="symbol"`` (default) or ``"hour"``;
    * ``"comparison"`` — :func:`plot_comparison` of ``[result, *others]``, needs
      ``others=[...]``, optional ``names=``.

    Other keyword arguments go to that function.

    Raises
    ------
    ConfigError
        For an unknown ``kind`` (with a suggestion), or ``"comparison"`` without ``others``.

    Examples
    --------
    >>> fig = plot_result(result, kind="breakdown", by="hour")  # doctest: +SKIP
    """
    check_result(result, "plot_result")
    if not isinstance(kind, str):
        raise ConfigError(f"The 'kind' parameter of plot must be one of {list(PLOT_KINDS)}. "
                          f"Got {kind!r}.")
    kind = _ALIASES.get(kind, kind)
    if kind == "comparison":
        others = kwargs.pop("others", None)
        if not others:
            raise ConfigError("plot(kind='comparison') needs others=[result, ...] to compare "
                              "with this run.")
        return _call(plot_comparison, kind, [result, *others], **kwargs)
    functions: dict[str, Callable[..., Figure]] = {"equity": plot_equity, "trades": plot_trades,
                 "returns": plot_return_distribution, "breakdown": plot_breakdown}
    if kind not in functions:
        close = difflib.get_close_matches(str(kind), PLOT_KINDS, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"The 'kind' parameter of plot must be one of {list(PLOT_KINDS)}. "
                          f"Got {kind!r}.{hint}")
    return _call(functions[kind], kind, result, **kwargs)


def _call(function: Callable[..., Figure], kind: str, *args: Any, **kwargs: Any) -> Figure:
    """``function(*args, **kwargs)``, a wrong keyword being a ConfigError that names it."""
    signature = inspect.signature(function)
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        valid = [name for name in list(signature.parameters)[1:]]
        hint = "".join(did_you_mean(key, valid) for key in kwargs if key not in valid)
        raise ConfigError(f"plot(kind={kind!r}) got invalid arguments ({exc}); its keyword "
                          f"arguments are {valid}.{hint}") from None
    return function(*args, **kwargs)


register_view("plot", plot_result)
