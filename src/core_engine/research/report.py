"""HTML views of a backtest run: notebook tables and a self-contained report file.

* :func:`metrics_html` — the metrics dict as a two-column table (the notebook view of
  ``result.metrics``);
* :func:`result_html` — a compact block for ``BacktestResult._repr_html_``: run header,
  headline metrics and data quality side by side;
* :func:`write_report` — one HTML file with everything inlined (figures as base64 PNG,
  metrics, data quality, exit reasons, config, data fingerprint, library version) that a
  person can open offline or send.

Every value is HTML-escaped; every metric cell carries ``data-key="<metric key>"`` so that
tools (and our tests) can read values back without scraping labels.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import core_engine
from core_engine.backtest.results import SUMMARY_ROWS
from core_engine.errors import ConfigError

__all__ = ["METRIC_ROWS", "factor_html", "format_metric", "metrics_html", "result_html",
           "write_report"]

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
)
_HEADLINE = ("trades", "coverage", "win_rate", "avg_return_pct", "profit_factor",
             "total_return_pct", "equity_max_drawdown_pct", "sharpe", "exposure")
_QUALITY_ROWS = (
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
    ("trades_with_gaps", "Trades with missing candles"),
    ("trades_exit_at_last_close", "Exits at the last close (exit candle missing)"),
    ("trades_exit_delayed", "Exits held past the window (outage)"),
    ("exit_delay_candles_max", "Longest exit delay (candles)"),
    ("trades_exit_delay_capped", "Exits at the last close before an outage (max_exit_delay)"),
    ("first_decision_time", "First decision time"),
    ("last_decision_time", "Last decision time"),
    ("missing_candles_by_symbol", "Missing candles by symbol"),
    ("gap_candles_by_symbol", "Gap candles by symbol"),
    ("symbols", "Symbols"),
)
_STYLE = """
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


def _table(caption: str, rows: Iterable[tuple[str, str, str]], css: str) -> str:
    return (f'<table class="{css}"><caption>{html.escape(caption)}</caption>'
            f"<tbody>{_rows_html(rows)}</tbody></table>")


def _metric_rows(metrics: Mapping[str, Any], keys: Iterable[str] | None = None
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
    return (f'<div class="ce-run"><style>{_STYLE}</style>'
            f"{_table('Metrics', _metric_rows(metrics), 'ce-metrics')}</div>")


def _quality_rows(quality: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Known data-quality keys first with their labels, any other key after them."""
    known = dict(_QUALITY_ROWS)
    rows = [(key, label, format_metric(quality[key])) for key, label in _QUALITY_ROWS
            if key in quality]
    rows += [(key, key.replace("_", " ").capitalize(), format_metric(value))
             for key, value in quality.items() if key not in known]
    return rows


def _header(result: Any) -> str:
    cfg = result.config
    strategy = cfg.get("strategy", {})
    exits = cfg.get("exits") or {}
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
    metrics = result.metrics
    quality = result.data_quality
    return (f'<div class="ce-run"><style>{_STYLE}</style><div>{_header(result)}</div>'
            '<div class="ce-side">'
            f"{_table('Headline metrics', _metric_rows(metrics, _HEADLINE), 'ce-headline')}"
            f"{_table('Data quality', _quality_rows(quality), 'ce-quality')}"
            "</div></div>")


# ---------------------------------------------------------------------------- report file
def _png(fig: Any, dpi: int) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figures(result: Any, panel: Any, trade_symbols: Iterable[str] | None, dpi: int
             ) -> list[tuple[str, str]]:
    from core_engine.research import plots

    figures = [("Equity and drawdown", plots.plot_equity(result))]
    trades = result.trades
    if len(trades):
        figures += [("Distribution of trade returns", plots.plot_return_distribution(result)),
                    ("Per symbol", plots.plot_breakdown(result, by="symbol")),
                    ("Per hour of day", plots.plot_breakdown(result, by="hour"))]
    if panel is None:
        panel = getattr(result, "panel", None)
        if panel is None:
            panel = getattr(result, "_panel", None)
    if panel is not None and len(trades):
        if trade_symbols is None:
            trade_symbols = list(trades["symbol"].value_counts().index[:3])
        for symbol in trade_symbols:
            figures.append((f"Trades of {symbol}", plots.plot_trades(result, symbol, panel)))
    return [(title, _png(fig, dpi)) for title, fig in figures]


def _trades_html(result: Any, limit: int) -> str:
    trades = result.trades
    if not len(trades):
        return "<p>No trades.</p>"
    shown = trades.head(limit)
    return (f"<p>First {len(shown):,} of {len(trades):,} trades.</p>"
            + shown.to_html(classes="ce-trades", index=False, float_format=lambda v: f"{v:.6g}",
                            border=0))


def write_report(result: Any, path: str | Path, *, panel: Any = None,
                 trade_symbols: Iterable[str] | None = None, max_trades: int = 50,
                 dpi: int = 90) -> Path:
    """Write one self-contained HTML report of ``result`` and return its path.

    Contents: run header; figures as inline base64 PNG (equity and drawdown, return
    distribution, per-symbol and per-hour breakdowns, and the trades of the three most traded
    symbols when the candles are available); the full metrics table (``ce-metrics``); the
    data-quality table (``ce-quality``); the first ``max_trades`` trades; the config as JSON;
    the data fingerprint and the library versions (of the run and of the report).

    Parameters
    ----------
    result : BacktestResult
    path : str or Path
        A file name (``.html`` added when there is no suffix) or an existing directory
        (the report is then ``report.html`` inside it). Parent folders are created.
    panel : Panel, optional
        The run's candles for the trade charts; defaults to the panel the result keeps.
    trade_symbols : iterable of str, optional
        Symbols to chart (default: the three most traded).
    max_trades : int
        Rows of the trades table.
    dpi : int
        Resolution of the embedded figures.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    target = Path(path)
    if target.is_dir():
        target = target / "report.html"
    elif not target.suffix:
        target = target.with_suffix(".html")
    target.parent.mkdir(parents=True, exist_ok=True)
    cfg = result.config
    fingerprint = getattr(result, "fingerprint", "") or cfg.get("data_fingerprint", "")
    name = cfg.get("strategy", {}).get("name", "run")
    images = "".join(
        f'<figure><figcaption>{html.escape(title)}</figcaption>'
        f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}"></figure>'
        for title, data in _figures(result, panel, trade_symbols, dpi))
    provenance = [
        ("data_fingerprint", "Data fingerprint (SHA-256)", fingerprint or "not available"),
        ("library_version", "core_engine version of the run", str(cfg.get("library_version", "?"))),
        ("report_version", "core_engine version of the report", core_engine.__version__),
        ("generated", "Report written",
         _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")),
    ]
    body = (
        f"<h1>Backtest report: {html.escape(str(name))}</h1><p>{_header(result)}</p>"
        f"{_table('Provenance', provenance, 'ce-provenance')}"
        f'<div class="ce-side">{_table("Metrics", _metric_rows(result.metrics), "ce-metrics")}'
        f"{_table('Data quality', _quality_rows(result.data_quality), 'ce-quality')}</div>"
        f"<h2>Figures</h2>{images}"
        f"<h2>Trades</h2>{_trades_html(result, max_trades)}"
        f'<h2>Config</h2><pre class="ce-config">'
        f"{html.escape(json.dumps(cfg, indent=2, default=str))}</pre>"
    )
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Backtest report: {html.escape(str(name))}</title><style>{_STYLE}</style>"
        f'</head><body><div class="ce-run">{body}</div></body></html>\n'
    )
    target.write_text(document, encoding="utf-8")
    return target


# ---------------------------------------------------------------------------- factors
def factor_html(report: Any) -> str:
    """HTML of a :class:`~core_engine.research.factors.FactorReport`: headline, decay, quantiles."""
    head = report.to_frame().iloc[0]
    rows = [(key, key.replace("_", " "), format_metric(head[key],
                                                       "{:,}" if key == "n_times" else "{:+.4f}"))
            for key in head.index]
    decay = report.decay.to_html(classes="ce-decay", float_format=lambda v: f"{v:+.4f}", border=0)
    quant = report.quantile_returns.to_html(classes="ce-quantiles",
                                            float_format=lambda v: f"{v:+.4f}", border=0)
    return (f'<div class="ce-run"><style>{_STYLE}</style>'
            f"<div><b>Factor {html.escape(report.name)}</b> — window {report.window}, shift "
            f"{report.shift}, top {report.top_n}, {report.quantiles} quantiles</div>"
            f'<div class="ce-side">{_table("Headline", rows, "ce-factor")}'
            f"<div><b>IC decay</b>{decay}</div><div><b>Quantile returns</b>{quant}</div>"
            "</div></div>")
