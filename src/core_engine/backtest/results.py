"""BacktestResult: the immutable outcome of a walk-forward run, and its persistence.

A saved run is one directory: ``trades.parquet``, ``equity.parquet`` and ``run.json``
(config, metrics, data-quality section, library version, data fingerprint), so a run can be
reloaded, reproduced and compared.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import check_items
from core_engine.backtest.formatting import (
    SUMMARY_ROWS,
    format_metric,
    metrics_html,
    result_html,
    summary_rows,
)
from core_engine.backtest.persistence import read_blocked, read_run, write_run
from core_engine.backtest.views import call_view
from core_engine.errors import ConfigError

__all__ = ["SUMMARY_ROWS", "BacktestResult", "Metrics", "compare", "empty_blocked"]


def empty_blocked() -> pd.DataFrame:
    """The ``blocked`` table of a run without blocked picks (slices mode)."""
    return pd.DataFrame({"decision_time": pd.DatetimeIndex([], tz="UTC"),
                         "symbol": pd.Series([], dtype=object),
                         "rank": pd.Series([], dtype="int64"),
                         "score": pd.Series([], dtype="float64"),
                         "reason": pd.Series([], dtype=object)})


class Metrics(dict):
    """The metrics of a run: a plain dict (JSON-ready, equal to a dict) that a notebook shows
    as a table."""

    def _repr_html_(self) -> str:
        return metrics_html(self)


@keyword_checked
class BacktestResult:
    """The trades, equity curve, metrics, config and data-quality section of one run.

    Immutable: attributes cannot be set, and ``trades``/``equity``/``metrics``/``config``/
    ``data_quality`` return copies, so changing what you get back never changes the result.

    Attributes
    ----------
    trades : pandas.DataFrame
        One row per trade: ``symbol, decision_time, entry_time, exit_time, entry_price,
        exit_price, direction, weight, return_pct, best_return_pct, worst_case_return_pct,
        max_drawdown, exit_reason, rank, score, ambiguous, gaps_in_window,
        exit_at_last_close, exit_delayed_by, exit_delay_capped``
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
        picks without an entry candle, trades held past their window by an outage
        (``trades_exit_delayed``, ``exit_delay_candles_max``) or cut by ``max_exit_delay``
        (``trades_exit_delay_capped``), price discontinuities of the panel beyond
        ``discontinuity_factor`` (``price_discontinuities``, by symbol in
        ``price_discontinuities_by_symbol``) and the trades held across one
        (``trades_across_discontinuity``: their return holds the jump; see
        :mod:`core_engine.backtest.data_quality`).
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
            blocked = empty_blocked()
        for name, value, kind in (("trades", trades, pd.DataFrame),
                                  ("equity", equity, pd.DataFrame),
                                  ("metrics", metrics, Mapping), ("config", config, Mapping),
                                  ("data_quality", data_quality, Mapping),
                                  ("blocked", blocked, pd.DataFrame)):
            if not isinstance(value, kind):
                raise ConfigError(
                    f"The '{name}' argument of BacktestResult must be a "
                    f"{'DataFrame' if kind is pd.DataFrame else 'dict'}. "
                    f"Got {type(value).__name__}."
                )
        for name, value in (("_trades", trades.copy()), ("_equity", equity.copy()),
                            ("_metrics", copy.deepcopy(dict(metrics))),
                            ("_config", copy.deepcopy(dict(config))),
                            ("_data_quality", copy.deepcopy(dict(data_quality))),
                            ("_panel", panel), ("_blocked", blocked.copy())):
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
            return (f"BacktestResult({_strategy(self._config).get('name', '?')}, portfolio, "
                    f"{_n(m.get('trades', 0))} trades, equity "
                    f"{format_metric(m.get('initial_cash'), '{:,.2f}')} -> "
                    f"{format_metric(m.get('final_equity'), '{:,.2f}')})")
        return (f"BacktestResult({_strategy(self._config).get('name', '?')}, "
                f"{_n(m.get('trades', 0))} trades over {_n(m.get('decisions', 0))} decision "
                f"times, avg {format_metric(m.get('avg_return_pct', math.nan), '{:+.3f}')} %)")

    # ------------------------------------------------------------------ text
    def summary(self) -> str:
        """A plain-text table of the run's headline metrics and data quality."""
        cfg, dq = self._config, self._data_quality
        strategy = _strategy(cfg)
        lines = [
            f"Walk-forward backtest: {strategy.get('name', '?')} {strategy.get('params', {})}",
            f"  window {cfg.get('window')}, shift {cfg.get('shift')}, fee {cfg.get('fee_bps')} bps,"
            f" slippage {cfg.get('slippage_bps')} bps, mode {cfg.get('mode')}",
            f"  data: {_n(dq.get('n_symbols', 0))} symbols × {_n(dq.get('candles', 0))} "
            f"{dq.get('timeframe', '')} candles, {_time(dq.get('start'))} .. "
            f"{_time(dq.get('end'))}, {_n(dq.get('missing_candles', 0))} missing "
            f"({_n(dq.get('gap_candles', 0))} in gaps, the rest before listing or after the end)",
            "",
        ]
        rows = summary_rows(cfg)
        width = max(len(label) for _, label, _ in rows)
        for key, label, fmt in rows:
            lines.append(f"  {label:<{width}}  {format_metric(self._metrics.get(key), fmt)}")
        if self.mode == "portfolio":
            lines.insert(2, f"  account: {_account_text(cfg)}")
            blocked = self._metrics.get("blocked_reasons", {})
            lines.append(f"  {'Blocked picks by reason':<{width}}  "
                         f"{format_metric(blocked) if blocked else 'none'}")
        reasons = self._metrics.get("exit_reasons", {})
        lines.append(f"  {'Exit reasons':<{width}}  {format_metric(reasons)}")
        skipped = dq.get("skipped_decision_times", {})
        lines.append(f"  {'Skipped decision times':<{width}}  {format_metric(skipped)}")
        lines.append(f"  {'Picks without entry candle':<{width}}  "
                     f"{_n(dq.get('picks_without_entry_candle', 0))}")
        delayed = dq.get("trades_exit_delayed", 0)
        held = _n(delayed)
        if delayed:
            held += f" (up to {_n(dq.get('exit_delay_candles_max', 0))} candles late)"
        capped = dq.get("trades_exit_delay_capped", 0)
        if capped or cfg.get("max_exit_delay") is not None:
            held += (f"; {_n(capped)} exited at the last close before an outage "
                     f"(max_exit_delay {cfg.get('max_exit_delay')} candles)")
        lines.append(f"  {'Exits held past the window':<{width}}  {held}")
        if dq.get("price_discontinuities"):
            lines.append(f"  {'Price discontinuities':<{width}}  {_discontinuity_text(dq)}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A Markdown report: config, metrics, data quality and the exit-reason breakdown."""
        cfg, m, dq = self._config, self._metrics, self._data_quality
        strategy = _strategy(cfg)
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
            lines.append(f"| {label} | {format_metric(m.get(key), fmt)} |")
        for prefix, name in (("exits by", "exit_reasons"), ("picks blocked by", "blocked_reasons")):
            counts = m.get(name, {})
            for reason, count in (counts.items() if isinstance(counts, Mapping) else ()):
                lines.append(f"| {prefix} {reason} | {_n(count)} |")
        lines += ["", "## Data quality", "", "| item | value |", "|---|---|"]
        for key, value in dq.items():
            if not key.endswith("_by_symbol") and key != "symbols":
                lines.append(f"| {key} | {value} |")
        return "\n".join(lines) + "\n"

    def report(self, path: str | Path, **kwargs) -> Path:
        """Write one self-contained HTML report (figures, metrics, data quality, config).

        See :func:`core_engine.research.report.write_report` for the options (the function
        is found through :mod:`core_engine.backtest.views`).
        """
        return call_view("report", self, path, **kwargs)

    def plot(self, kind: str = "equity", **kwargs):
        """Return a matplotlib ``Figure``: ``kind`` is ``"equity"`` (with drawdown),
        ``"trades"`` (needs ``symbol=``), ``"returns"``, ``"breakdown"`` or ``"comparison"``.

        See :func:`core_engine.research.plots.plot_result` (found through
        :mod:`core_engine.backtest.views`).
        """
        return call_view("plot", self, kind=kind, **kwargs)

    def _repr_html_(self) -> str:
        return result_html(self)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the run to directory ``path`` (created if needed); return the path.

        ``run.json`` is strict JSON (see :mod:`core_engine.backtest.persistence`).

        Raises
        ------
        ConfigError
            If ``path`` already holds a saved run and ``overwrite`` is False, is a file, or
            cannot be written.
        """
        self.fingerprint  # noqa: B018 - computed and cached into the config before writing
        return write_run(path, self._trades, self._equity,
                         {"config": self._config, "metrics": self._metrics,
                          "data_quality": self._data_quality}, overwrite=overwrite,
                         blocked=self._blocked if self.mode == "portfolio" else None)

    @classmethod
    def load(cls, path: str | Path) -> BacktestResult:
        """Read a run written by :meth:`save`.

        Raises
        ------
        ConfigError
            If ``path`` is not a saved run directory or one of its files is damaged (the
            message names the file and the key).
        """
        trades, equity, payload = read_run(path)
        return cls(trades=trades, equity=equity, metrics=payload["metrics"],
                   config=payload["config"], data_quality=payload["data_quality"],
                   blocked=read_blocked(path))

    @staticmethod
    def compare(results: Sequence[BacktestResult], names: Iterable[str] | None = None
                ) -> pd.DataFrame:
        """See :func:`compare`."""
        return compare(results, names)


def _time(value) -> str:
    if value is None:
        return "-"
    try:
        return f"{pd.Timestamp(value):%Y-%m-%d %H:%M} UTC"
    except (ValueError, TypeError):  # a hand-made or edited result: show what is there
        return str(value)


def _n(value: Any) -> str:
    return format_metric(value, "{:,}")


def _plural(count: Any, word: str) -> str:
    return f"{_n(count)} {word if count == 1 else word + 's'}"


def _discontinuity_text(quality: Mapping) -> str:
    """``3 beyond ×5 in 2 symbols; 1 trade spans one — consider split_at_discontinuities``."""
    by_symbol = quality.get("price_discontinuities_by_symbol", {})
    symbols = sum(1 for n in by_symbol.values() if n) if isinstance(by_symbol, Mapping) else 0
    across = quality.get("trades_across_discontinuity", 0)
    spans = f"{_plural(across, 'trade')} span{'s' if across == 1 else ''} one" if across \
        else "no trade spans one"
    return (f"{_n(quality.get('price_discontinuities'))} beyond "
            f"×{format_metric(quality.get('discontinuity_factor'))} in "
            f"{_plural(symbols, 'symbol')}; {spans} — consider split_at_discontinuities")


def _account_text(config: Mapping) -> str:
    book = config.get("portfolio", {})
    book = book if isinstance(book, Mapping) else {}
    sizing = dict(book.get("sizing", {}) or {})
    rules = {k: v for k, v in (book.get("rules", {}) or {}).items()
             if v not in (None, False) and (k, v) != ("min_order_value", 0.0)
             and k != "correlation_lookback"}
    return (f"initial cash {format_metric(book.get('initial_cash'), '{:,.2f}')}, sizing "
            f"{sizing.pop('sizing', '?')} {sizing}, rules {rules or 'none'}, hold "
            f"{book.get('hold')}, rebalance {book.get('rebalance')}")


def _strategy(config: Mapping) -> Mapping:
    strategy = config.get("strategy", {})
    return strategy if isinstance(strategy, Mapping) else {"name": str(strategy)}


def compare(results: Sequence[BacktestResult], names: Iterable[str] | None = None
            ) -> pd.DataFrame:
    """Side-by-side metrics of several runs: one row per metric, one column per run.

    Columns are ``names`` when given, else the strategy names (numbered when repeated).
    """
    results = check_items(results, "results", "compare", kinds=BacktestResult, non_empty=True,
                          expected="a non-empty list of BacktestResult objects")
    if names is None:
        base = [r.config.get("strategy", {}).get("name", "run") for r in results]
        names = [f"{b} #{i + 1}" if base.count(b) > 1 else b for i, b in enumerate(base)]
    names = check_items(names, "names", "compare", kinds=(str, int), expected="a list of run names")
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
