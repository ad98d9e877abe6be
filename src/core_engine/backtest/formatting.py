"""Text and HTML views of a run's metrics and data quality (no plotting, no file writing).

* :data:`SUMMARY_ROWS` — the headline metrics with labels and formats, shared by
  ``BacktestResult.summary()``, ``to_markdown()`` and the HTML views;
* :func:`format_metric` — one value as text (NaN, inf, None, dicts);
* :func:`metrics_html` — the metrics dict as a two-column table (the notebook view of
  ``result.metrics``);
* :func:`result_html` — a compact block for ``BacktestResult._repr_html_``: run header,
  headline metrics and data quality side by side.

They live in ``backtest`` so that a result shows itself without the ``research`` package
(which builds the figures and the report file on top of them). Every value is
HTML-escaped; every metric cell carries ``data-key="<metric key>"`` so that tools (and our
tests) can read values back without scraping labels.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from core_engine._validate import check_result
from core_engine.errors import ConfigError

__all__ = ["METRIC_ROWS", "PORTFOLIO_SUMMARY_ROWS", "QUALITY_ROWS", "STYLE", "SUMMARY_ROWS",
           "format_metric", "html_table", "metric_rows", "metrics_html", "quality_rows",
           "result_html", "run_header", "summary_rows"]

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


def summary_rows(config: Mapping[str, Any]) -> tuple:
    """The headline (key, label, format) rows for a run's mode."""
    return PORTFOLIO_SUMMARY_ROWS if config.get("mode") == "portfolio" else SUMMARY_ROWS


#: (key, label, format) of the metrics shown, in order; other keys follow with a plain format.
#: Every metric the report shows: the headline rows of ``BacktestResult.summary()`` and a few
#: more.
METRIC_ROWS = (
    *SUMMARY_ROWS,
    ("decisions_with_trades", "Decision times with trades", "{:,}"),
    ("periods_per_year", "Periods per year (annualisation)", "{:,.0f}"),
    ("best_case_avg_return_pct", "Average return if target first", "{:+.3f} %"),
    ("worst_case_avg_return_pct", "Average return if stops fill at the low", "{:+.3f} %"),
    ("exit_reasons", "Exit reasons", None),
    *[row for row in PORTFOLIO_SUMMARY_ROWS if row[0] not in {k for k, _, _ in SUMMARY_ROWS}],
    ("pnl", "Profit and loss", "{:+,.2f}"),
    ("blocked_reasons", "Picks blocked by reason", None),
)
_HEADLINE = ("trades", "coverage", "win_rate", "avg_return_pct", "profit_factor",
             "total_return_pct", "equity_max_drawdown_pct", "sharpe", "exposure")
_PORTFOLIO_HEADLINE = ("final_equity", "total_return_pct", "cagr_pct", "sharpe",
                       "equity_max_drawdown_pct", "exposure", "fees_paid", "trades",
                       "win_rate", "blocked_picks")
QUALITY_ROWS = (
    ("n_symbols", "Number of symbols"),
    ("timeframe", "Timeframe"),
    ("candles", "Candles per symbol"),
    ("start", "First candle"),
    ("end", "Last candle"),
    ("missing_candles", "Missing candles"),
    ("gap_candles", "Missing candles inside the data (gaps)"),
    ("warm_up_candles", "Warm-up candles"),
    ("decision_times_scheduled", "Decision times scheduled"),
    ("decision_times_evaluated", "Decision times evaluated"),
    ("skipped_decision_times", "Skipped decision times"),
    ("picks", "Picks"),
    ("picks_without_entry_candle", "Picks without entry candle"),
    ("picks_blocked", "Picks blocked (portfolio rules, cash, no entry candle)"),
    ("trades_with_gaps", "Trades with missing candles"),
    ("trades_exit_at_last_close", "Exits at the last close (exit candle missing)"),
    ("trades_exit_delayed", "Exits held past the window (outage)"),
    ("exit_delay_candles_max", "Longest exit delay (candles)"),
    ("trades_exit_delay_capped", "Exits at the last close before an outage (max_exit_delay)"),
    ("price_discontinuities", "Price discontinuities (close jumps beyond the factor)"),
    ("discontinuity_factor", "Discontinuity factor"),
    ("trades_across_discontinuity", "Trades held across a price discontinuity"),
    ("first_decision_time", "First decision time"),
    ("last_decision_time", "Last decision time"),
    ("missing_candles_by_symbol", "Missing candles by symbol"),
    ("gap_candles_by_symbol", "Gap candles by symbol"),
    ("price_discontinuities_by_symbol", "Price discontinuities by symbol"),
    ("symbols", "Symbols"),
)
STYLE = """
.ce-run{font-family:system-ui,-apple-system,Segoe UI,sans-serif;font-size:13px}
.ce-run table{border-collapse:collapse;margin:4px 16px 8px 0;vertical-align:top}
.ce-run th,.ce-run td{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}
.ce-run td{text-align:right;font-variant-numeric:tabular-nums}
.ce-run caption{font-weight:600;text-align:left;padding:2px 0}
.ce-run .ce-side{display:flex;flex-wrap:wrap;align-items:flex-start}
.ce-run img{max-width:100%;margin:8px 0}
.ce-run pre{background:#f6f6f6;padding:8px;overflow:auto}
"""


# ---------------------------------------------------------------------------- formatting
def format_metric(value: Any, fmt: str | None = None) -> str:
    """Format one metric value as text: NaN -> ``"n/a"``, inf -> ``"inf"``, None -> ``"-"``.

    Dicts (``exit_reasons``) become ``"key value, ..."``; ``fmt`` applies to numbers.

    Examples
    --------
    >>> format_metric(0.4567, "{:.1%}"), format_metric(float("nan"), "{:.3f}")
    ('45.7%', 'n/a')
    >>> format_metric({"stop_loss": 3, "take_profit": 1})
    'stop_loss 3, take_profit 1'
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {format_metric(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_metric(v) for v in value) or "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    if fmt is not None and isinstance(value, (int, float)):
        try:
            return fmt.format(value)
        except (ValueError, TypeError):
            pass
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _rows_html(rows: Iterable[tuple[str, str, str]]) -> str:
    return "".join(
        f'<tr><th>{html.escape(label)}</th><td data-key="{html.escape(key)}">'
        f"{html.escape(text)}</td></tr>"
        for key, label, text in rows)


def html_table(caption: str, rows: Iterable[tuple[str, str, str]], css: str) -> str:
    return (f'<table class="{css}"><caption>{html.escape(caption)}</caption>'
            f"<tbody>{_rows_html(rows)}</tbody></table>")


def metric_rows(metrics: Mapping[str, Any], keys: Iterable[str] | None = None
                 ) -> list[tuple[str, str, str]]:
    known = {key: (label, fmt) for key, label, fmt in METRIC_ROWS}
    order = list(keys) if keys is not None else \
        [k for k, _, _ in METRIC_ROWS] + [k for k in metrics if k not in known]
    rows = []
    for key in order:
        if key not in metrics:
            continue
        label, fmt = known.get(key, (key.replace("_", " ").capitalize(), None))
        rows.append((key, label, format_metric(metrics[key], fmt)))
    return rows


def metrics_html(metrics: Mapping[str, Any]) -> str:
    """The metrics dict of a run as an HTML table (``<table class="ce-metrics">``).

    Known keys come first in :data:`METRIC_ROWS` order with their labels and formats
    (percentages, signs, thousands separators); unknown keys follow with a generic format.
    Each value cell has ``data-key="<key>"``.

    Raises
    ------
    ConfigError
        If ``metrics`` is not a mapping.
    """
    if not isinstance(metrics, Mapping):
        raise ConfigError(f"metrics_html expects a dict of metrics. Got {type(metrics).__name__}.")
    return (f'<div class="ce-run"><style>{STYLE}</style>'
            f"{html_table('Metrics', metric_rows(metrics), 'ce-metrics')}</div>")


def quality_rows(quality: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Known data-quality keys first with their labels, any other key after them."""
    known = dict(QUALITY_ROWS)
    rows = [(key, label, format_metric(quality[key])) for key, label in QUALITY_ROWS
            if key in quality]
    rows += [(key, key.replace("_", " ").capitalize(), format_metric(value))
             for key, value in quality.items() if key not in known]
    return rows


def run_header(result: Any) -> str:
    """One HTML line: strategy, window, shift, costs, exits and mode of a run."""
    cfg = result.config
    strategy = cfg.get("strategy", {})
    if not isinstance(strategy, Mapping):
        strategy = {"name": strategy}
    exits = cfg.get("exits") or {}
    if not isinstance(exits, Mapping):
        exits = {"rules": exits}
    exit_text = ", ".join(f"{k} {v}" for k, v in exits.items()
                          if v is not None and k != "atr_length"
                          and (k, v) != ("stop_fill", "level")) or "none"
    return (f"<b>{html.escape(str(strategy.get('repr', strategy.get('name', 'run'))))}</b> — "
            f"window {html.escape(str(cfg.get('window')))}, shift "
            f"{html.escape(str(cfg.get('shift')))}, fee {html.escape(format_metric(cfg.get('fee_bps')))}"
            f" bps, slippage {html.escape(format_metric(cfg.get('slippage_bps')))} bps, "
            f"exits: {html.escape(exit_text)}, mode {html.escape(str(cfg.get('mode')))}")


def result_html(result: Any) -> str:
    """Compact HTML of a run for notebooks (the target of ``BacktestResult._repr_html_``).

    A header line (strategy, window, shift, costs, exits) above two tables side by side:
    ``ce-headline`` (trades, coverage, win rate, average return, profit factor, total
    return, max drawdown, Sharpe, exposure) and ``ce-quality`` (the data-quality section).
    """
    check_result(result, "result", "result_html")
    metrics = result.metrics
    quality = result.data_quality
    headline = _PORTFOLIO_HEADLINE if result.config.get("mode") == "portfolio" else _HEADLINE
    return (f'<div class="ce-run"><style>{STYLE}</style><div>{run_header(result)}</div>'
            '<div class="ce-side">'
            f"{html_table('Headline metrics', metric_rows(metrics, headline), 'ce-headline')}"
            f"{html_table('Data quality', quality_rows(quality), 'ce-quality')}"
            "</div></div>")
