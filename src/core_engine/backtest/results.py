"""BacktestResult: the immutable outcome of a walk-forward run, and its persistence.

A saved run is one directory: ``trades.parquet``, ``equity.parquet`` and ``run.json``
(config, metrics, data-quality section, library version, data fingerprint), so a run can be
reloaded, reproduced and compared.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from core_engine.errors import ConfigError

__all__ = ["PORTFOLIO_SUMMARY_ROWS", "SUMMARY_ROWS", "BacktestResult", "compare", "summary_rows"]

_FORMAT_VERSION = 1
#: (metric key, label, format) of the headline metrics, shared by summary() and the reports.
SUMMARY_ROWS = (
    ("trades", "Trades", "{:,}"),
    ("decisions", "Decision times", "{:,}"),
    ("coverage", "Coverage", "{:.1%}"),
    ("win_rate", "Win rate", "{:.1%}"),
    ("avg_return_pct", "Average return", "{:+.3f} %"),
    ("median_return_pct", "Median return", "{:+.3f} %"),
    ("profit_factor", "Profit factor", "{:.3f}"),
    ("total_return_pct", "Total return (equity)", "{:+.2f} %"),
    ("equity_max_drawdown_pct", "Max drawdown (equity)", "{:.2f} %"),
    ("max_trade_drawdown_pct", "Max drawdown (one trade)", "{:.2f} %"),
    ("avg_trade_max_drawdown_pct", "Avg drawdown per trade", "{:.3f} %"),
    ("sharpe", "Sharpe (annualised)", "{:.3f}"),
    ("sortino", "Sortino (annualised)", "{:.3f}"),
    ("exposure", "Exposure", "{:.1%}"),
    ("avg_holding_minutes", "Avg holding", "{:.1f} min"),
    ("turnover_per_year", "Turnover per year", "{:.1f}x"),
    ("ambiguous_trades", "Candles touching stop and target", "{:,}"),
    ("ambiguous_spread_pct", "Best-case minus worst-case avg", "{:.4f} %"),
    ("best_case_total_return_pct", "Total return if target first", "{:+.2f} %"),
    ("stop_fill_spread_pct", "Stop fill minus fill at the low, avg", "{:.4f} %"),
    ("worst_case_total_return_pct", "Total return if stops fill at the low", "{:+.2f} %"),
    ("trades_with_gaps", "Trades with missing candles", "{:,}"),
)

#: The headline metrics of a portfolio-mode run (account metrics first).
PORTFOLIO_SUMMARY_ROWS = (
    ("initial_cash", "Initial cash", "{:,.2f}"),
    ("final_equity", "Final equity", "{:,.2f}"),
    ("total_return_pct", "Total return", "{:+.2f} %"),
    ("cagr_pct", "CAGR", "{:+.2f} %"),
    ("sharpe", "Sharpe (daily, annualised)", "{:.3f}"),
    ("sortino", "Sortino (daily, annualised)", "{:.3f}"),
    ("calmar", "Calmar", "{:.3f}"),
    ("equity_max_drawdown_pct", "Max drawdown", "{:.2f} %"),
    ("max_drawdown_duration_days", "Max drawdown duration", "{:.1f} days"),
    ("exposure", "Exposure", "{:.1%}"),
    ("turnover_per_year", "Turnover per year", "{:.1f}x"),
    ("fees_paid", "Fees paid", "{:,.2f}"),
    ("trades", "Trades", "{:,}"),
    ("decisions", "Decision times", "{:,}"),
    ("coverage", "Decisions that opened a position", "{:.1%}"),
    ("win_rate", "Win rate", "{:.1%}"),
    ("avg_return_pct", "Average return per trade", "{:+.3f} %"),
    ("profit_factor", "Profit factor", "{:.3f}"),
    ("max_trade_drawdown_pct", "Max drawdown (one trade)", "{:.2f} %"),
    ("avg_holding_minutes", "Avg holding", "{:.1f} min"),
    ("ambiguous_trades", "Candles touching stop and target", "{:,}"),
    ("stop_fill_spread_pct", "Stop fill minus fill at the low, avg", "{:.4f} %"),
    ("trades_with_gaps", "Trades with missing candles", "{:,}"),
    ("blocked_picks", "Picks blocked", "{:,}"),
)


def summary_rows(config: dict) -> tuple:
    """The headline (key, label, format) rows for a run's mode."""
    return PORTFOLIO_SUMMARY_ROWS if config.get("mode") == "portfolio" else SUMMARY_ROWS


class Metrics(dict):
    """The metrics of a run: a plain dict (JSON-ready, equal to a dict) that a notebook shows
    as a table."""

    def _repr_html_(self) -> str:
        from core_engine.research.report import metrics_html

        return metrics_html(self)


class BacktestResult:
    """The trades, equity curve, metrics, config and data-quality section of one run.

    Immutable: attributes cannot be set, and ``trades``/``equity``/``metrics``/``config``/
    ``data_quality`` return copies, so changing what you get back never changes the result.

    Attributes
    ----------
    trades : pandas.DataFrame
        One row per trade: ``symbol, decision_time, entry_time, exit_time, entry_price,
        exit_price, direction, weight, return_pct, best_return_pct, max_drawdown,
        exit_reason, rank, score, ambiguous, gaps_in_window, exit_at_last_close``
        (see :mod:`core_engine.backtest.simulate` for the semantics).
    equity : pandas.DataFrame
        One row per evaluated decision time (see :func:`~core_engine.backtest.metrics.equity_curve`).
    metrics : dict
        See :func:`~core_engine.backtest.metrics.compute_metrics`.
    config : dict
        The run's parameters, strategy name and parameters, library version and (once
        :attr:`fingerprint` or :meth:`save` ran) the data fingerprint.
    data_quality : dict
        Symbols, candles, missing candles, decision times evaluated and skipped (by reason),
        picks without an entry candle.
    blocked : pandas.DataFrame
        Portfolio mode: every pick that did not become a position (``decision_time,
        symbol, rank, score, reason``); empty in slices mode.

    In portfolio mode (``config["mode"] == "portfolio"``, see
    :mod:`core_engine.backtest.portfolio`) the trades also hold ``quantity, entry_value,
    fees, pnl`` in the quote currency, the equity is the account's value at every candle
    close (``time, equity, cash, exposure, positions, drawdown_pct``) and the metrics are
    the account's (:func:`~core_engine.backtest.metrics.account_metrics`).
    """

    __slots__ = ("_trades", "_equity", "_metrics", "_config", "_data_quality", "_panel",
                 "_blocked")
    # Set once, through object.__setattr__, in __init__.
    _trades: pd.DataFrame
    _equity: pd.DataFrame
    _metrics: dict[str, Any]
    _config: dict[str, Any]
    _data_quality: dict[str, Any]
    _panel: Any
    _blocked: pd.DataFrame

    def __init__(self, *, trades: pd.DataFrame, equity: pd.DataFrame, metrics: dict,
                 config: dict, data_quality: dict, panel: Any = None,
                 blocked: pd.DataFrame | None = None) -> None:
        if blocked is None:
            blocked = pd.DataFrame({"decision_time": pd.DatetimeIndex([], tz="UTC"),
                                    "symbol": pd.Series([], dtype=object),
                                    "rank": pd.Series([], dtype="int64"),
                                    "score": pd.Series([], dtype="float64"),
                                    "reason": pd.Series([], dtype=object)})
        for name, value in (("_trades", trades.copy()), ("_equity", equity.copy()),
                            ("_blocked", blocked.copy()),
                            ("_metrics", copy.deepcopy(metrics)),
                            ("_config", copy.deepcopy(config)),
                            ("_data_quality", copy.deepcopy(data_quality)),
                            ("_panel", panel)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"BacktestResult is immutable; cannot set {name!r}.")

    def __delattr__(self, name):
        raise AttributeError(f"BacktestResult is immutable; cannot delete {name!r}.")

    @property
    def trades(self) -> pd.DataFrame:
        return self._trades.copy()

    @property
    def equity(self) -> pd.DataFrame:
        return self._equity.copy()

    @property
    def blocked(self) -> pd.DataFrame:
        return self._blocked.copy()

    @property
    def mode(self) -> str:
        """``"slices"`` or ``"portfolio"``."""
        return str(self._config.get("mode", "slices"))

    @property
    def metrics(self) -> Metrics:
        return Metrics(copy.deepcopy(self._metrics))

    @property
    def panel(self):
        """The input :class:`~core_engine.data.Panel` (None for a run read by :meth:`load`)."""
        return self._panel

    @property
    def config(self) -> dict:
        return copy.deepcopy(self._config)

    @property
    def data_quality(self) -> dict:
        return copy.deepcopy(self._data_quality)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the input panel (``Panel.fingerprint()``).

        Hashing a large panel takes time (about a second per GB), so it is computed on first
        use (or by :meth:`save`) and cached, not during :func:`walk_forward`.
        """
        if "data_fingerprint" not in self._config and self._panel is not None:
            self._config["data_fingerprint"] = self._panel.fingerprint()
        return str(self._config.get("data_fingerprint", ""))

    @property
    def version(self) -> str:
        """The core_engine version that produced the run."""
        return str(self._config.get("library_version", ""))

    def __repr__(self) -> str:
        m = self._metrics
        if self.mode == "portfolio":
            return (f"BacktestResult({self._config.get('strategy', {}).get('name', '?')}, "
                    f"portfolio, {m.get('trades', 0):,} trades, equity "
                    f"{m.get('initial_cash', math.nan):,.2f} -> "
                    f"{m.get('final_equity', math.nan):,.2f})")
        return (f"BacktestResult({self._config.get('strategy', {}).get('name', '?')}, "
                f"{m.get('trades', 0):,} trades over {m.get('decisions', 0):,} decision times, "
                f"avg {m.get('avg_return_pct', math.nan):+.3f} %)")

    # ------------------------------------------------------------------ text
    def summary(self) -> str:
        """A plain-text table of the run's headline metrics and data quality."""
        cfg, dq = self._config, self._data_quality
        strategy = cfg.get("strategy", {})
        lines = [
            f"Walk-forward backtest: {strategy.get('name', '?')} {strategy.get('params', {})}",
            f"  window {cfg.get('window')}, shift {cfg.get('shift')}, fee {cfg.get('fee_bps')} bps,"
            f" slippage {cfg.get('slippage_bps')} bps, mode {cfg.get('mode')}",
            f"  data: {dq.get('n_symbols', 0)} symbols × {dq.get('candles', 0):,} "
            f"{dq.get('timeframe', '')} candles, {_time(dq.get('start'))} .. "
            f"{_time(dq.get('end'))}, {dq.get('missing_candles', 0):,} missing "
            f"({dq.get('gap_candles', 0):,} in gaps, the rest before listing or after the end)",
            "",
        ]
        rows = summary_rows(cfg)
        width = max(len(label) for _, label, _ in rows)
        for key, label, fmt in rows:
            lines.append(f"  {label:<{width}}  {_fmt(self._metrics.get(key), fmt)}")
        if self.mode == "portfolio":
            book = cfg.get("portfolio", {})
            sizing = dict(book.get("sizing", {}))
            rules = {k: v for k, v in book.get("rules", {}).items()
                     if v not in (None, False) and not (k == "min_order_value" and v == 0)
                     and k != "correlation_lookback"}
            lines.insert(2, f"  account: {sizing.pop('sizing', '?')} {sizing}, rules {rules}, "
                            f"hold {book.get('hold')}, rebalance {book.get('rebalance')}")
            blocked = self._metrics.get("blocked_reasons", {})
            lines.append(f"  {'Blocked picks by reason':<{width}}  " + (", ".join(
                f"{k} {v:,}" for k, v in blocked.items()) or "none"))
        reasons = self._metrics.get("exit_reasons", {})
        lines.append(f"  {'Exit reasons':<{width}}  " +
                     ", ".join(f"{k} {v:,}" for k, v in reasons.items()))
        skipped = dq.get("skipped_decision_times", {})
        lines.append(f"  {'Skipped decision times':<{width}}  " +
                     ", ".join(f"{k} {v:,}" for k, v in skipped.items()))
        lines.append(f"  {'Picks without entry candle':<{width}}  "
                     f"{dq.get('picks_without_entry_candle', 0):,}")
        delayed = dq.get("trades_exit_delayed", 0)
        held = f"{delayed:,}"
        if delayed:
            held += f" (up to {dq.get('exit_delay_candles_max', 0):,} candles late)"
        capped = dq.get("trades_exit_delay_capped", 0)
        if capped or cfg.get("max_exit_delay") is not None:
            held += (f"; {capped:,} exited at the last close before an outage "
                     f"(max_exit_delay {cfg.get('max_exit_delay')} candles)")
        lines.append(f"  {'Exits held past the window':<{width}}  {held}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A Markdown report: config, metrics, data quality and the exit-reason breakdown."""
        cfg, m, dq = self._config, self._metrics, self._data_quality
        strategy = cfg.get("strategy", {})
        lines = [f"# Walk-forward backtest: {strategy.get('repr', strategy.get('name', '?'))}", "",
                 "## Configuration", "", "| parameter | value |", "|---|---|"]
        for key in ("window", "shift", "start", "end", "fee_bps", "slippage_bps",
                    "max_positions", "allocator", "gates", "exits", "mode", "portfolio",
                    "audit",
                    "library_version", "data_fingerprint"):
            if key in cfg:
                lines.append(f"| {key} | {cfg[key]} |")
        lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
        for key, label, fmt in summary_rows(cfg):
            lines.append(f"| {label} | {_fmt(m.get(key), fmt)} |")
        for reason, count in m.get("exit_reasons", {}).items():
            lines.append(f"| exits by {reason} | {count:,} |")
        for reason, count in m.get("blocked_reasons", {}).items():
            lines.append(f"| picks blocked by {reason} | {count:,} |")
        lines += ["", "## Data quality", "", "| item | value |", "|---|---|"]
        for key, value in dq.items():
            if not key.endswith("_by_symbol") and key != "symbols":
                lines.append(f"| {key} | {value} |")
        return "\n".join(lines) + "\n"

    def report(self, path: str | Path, **kwargs) -> Path:
        """Write one self-contained HTML report (figures, metrics, data quality, config).

        See :func:`core_engine.research.report.write_report` for the options.
        """
        from core_engine.research.report import write_report

        return write_report(self, path, **kwargs)

    def plot(self, kind: str = "equity", **kwargs):
        """Return a matplotlib ``Figure``: ``kind`` is ``"equity"`` (with drawdown),
        ``"trades"`` (needs ``symbol=``), ``"returns"``, ``"breakdown"`` or ``"comparison"``.

        See :func:`core_engine.research.plots.plot_result`.
        """
        from core_engine.research.plots import plot_result

        return plot_result(self, kind=kind, **kwargs)

    def _repr_html_(self) -> str:
        from core_engine.research.report import result_html

        return result_html(self)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the run to directory ``path`` (created if needed); return the path."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.fingerprint  # noqa: B018 - computed and cached into the config before writing
        self._trades.to_parquet(folder / "trades.parquet", index=False)
        self._equity.to_parquet(folder / "equity.parquet", index=False)
        if self.mode == "portfolio":
            self._blocked.to_parquet(folder / "blocked.parquet", index=False)
        payload = {"format_version": _FORMAT_VERSION, "config": self._config,
                   "metrics": self._metrics, "data_quality": self._data_quality}
        (folder / "run.json").write_text(json.dumps(payload, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> BacktestResult:
        """Read a run written by :meth:`save`.

        Raises
        ------
        ConfigError
            If ``path`` is not a saved run directory.
        """
        folder = Path(path)
        missing = [n for n in ("trades.parquet", "equity.parquet", "run.json")
                   if not (folder / n).is_file()]
        if missing:
            raise ConfigError(
                f"'{folder}' is not a saved backtest run: missing {missing}; expected a "
                "directory written by BacktestResult.save()."
            )
        payload = json.loads((folder / "run.json").read_text())
        blocked = folder / "blocked.parquet"
        return cls(trades=pd.read_parquet(folder / "trades.parquet"),
                   equity=pd.read_parquet(folder / "equity.parquet"),
                   metrics=payload["metrics"], config=payload["config"],
                   data_quality=payload["data_quality"],
                   blocked=pd.read_parquet(blocked) if blocked.is_file() else None)

    @staticmethod
    def compare(results: Sequence[BacktestResult], names: Iterable[str] | None = None
                ) -> pd.DataFrame:
        """See :func:`compare`."""
        return compare(results, names)


def _time(value) -> str:
    if value is None:
        return "-"
    return f"{pd.Timestamp(value):%Y-%m-%d %H:%M} UTC"


def _fmt(value, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return fmt.format(value)


def compare(results: Sequence[BacktestResult], names: Iterable[str] | None = None
            ) -> pd.DataFrame:
    """Side-by-side metrics of several runs: one row per metric, one column per run.

    Columns are ``names`` when given, else the strategy names (numbered when repeated).
    """
    results = list(results)
    if not results or not all(isinstance(r, BacktestResult) for r in results):
        raise ConfigError("compare() needs a non-empty list of BacktestResult objects.")
    if names is None:
        base = [r.config.get("strategy", {}).get("name", "run") for r in results]
        names = [f"{b} #{i + 1}" if base.count(b) > 1 else b for i, b in enumerate(base)]
    names = list(names)
    if len(names) != len(results):
        raise ConfigError(f"compare() got {len(names)} names for {len(results)} results.")
    columns = {}
    for name, result in zip(names, results, strict=True):
        m = result.metrics
        reasons = m.pop("exit_reasons", {})
        m.update({f"exit_{k}": v for k, v in reasons.items()})
        m.update({f"blocked_{k}": v for k, v in m.pop("blocked_reasons", {}).items()})
        columns[name] = pd.Series(m, dtype=object)
    return pd.DataFrame(columns)
