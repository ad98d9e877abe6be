"""HTML views of a backtest run: notebook tables and a self-contained report file.

* :func:`metrics_html`, :func:`result_html`, :func:`format_metric` — the notebook tables,
  defined in :mod:`core_engine.backtest.formatting` (a result shows itself without this
  package) and re-exported here;
* :func:`factor_html` — a factor evaluation as HTML;
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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import core_engine
from core_engine._validate import check_instance, check_integer, check_items, check_path
from core_engine.backtest.formatting import (
    METRIC_ROWS,
    STYLE,
    format_metric,
    html_table,
    metric_rows,
    metrics_html,
    quality_rows,
    result_html,
    run_header,
)
from core_engine.backtest.views import register_view
from core_engine.errors import ConfigError

__all__ = ["METRIC_ROWS", "factor_html", "format_metric", "metrics_html", "result_html",
           "write_report"]


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
    from core_engine.data.panel import Panel
    from core_engine.research.plots import check_result

    check_result(result, "write_report")
    target = check_path(path, "path", "write_report")
    check_instance(panel, Panel, "panel", "write_report", optional=True)
    if trade_symbols is not None:
        trade_symbols = check_items(trade_symbols, "trade_symbols", "write_report", kinds=str,
                                    expected="a list of symbols such as ['BTC/USDT']")
    max_trades = check_integer(max_trades, "max_trades", "write_report", low=0, high=100_000)
    dpi = check_integer(dpi, "dpi", "write_report", low=10, high=600)
    if target.is_dir():
        target = target / "report.html"
    elif not target.suffix:
        target = target.with_suffix(".html")
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
        f"<h1>Backtest report: {html.escape(str(name))}</h1><p>{run_header(result)}</p>"
        f"{html_table('Provenance', provenance, 'ce-provenance')}"
        f'<div class="ce-side">{html_table("Metrics", metric_rows(result.metrics), "ce-metrics")}'
        f"{html_table('Data quality', quality_rows(result.data_quality), 'ce-quality')}</div>"
        f"<h2>Figures</h2>{images}"
        f"<h2>Trades</h2>{_trades_html(result, max_trades)}"
        f'<h2>Config</h2><pre class="ce-config">'
        f"{html.escape(json.dumps(cfg, indent=2, default=str))}</pre>"
    )
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Backtest report: {html.escape(str(name))}</title><style>{STYLE}</style>"
        f'</head><body><div class="ce-run">{body}</div></body></html>\n'
    )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(document, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"write_report could not write '{target}': "
                          f"{type(exc).__name__}: {exc}") from exc
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
    return (f'<div class="ce-run"><style>{STYLE}</style>'
            f"<div><b>Factor {html.escape(report.name)}</b> — window {report.window}, shift "
            f"{report.shift}, top {report.top_n}, {report.quantiles} quantiles</div>"
            f'<div class="ce-side">{html_table("Headline", rows, "ce-factor")}'
            f"<div><b>IC decay</b>{decay}</div><div><b>Quantile returns</b>{quant}</div>"
            "</div></div>")


register_view("report", write_report)
