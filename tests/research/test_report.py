"""The HTML views, read back with the standard library's html.parser."""

from __future__ import annotations

import base64
import json
import math
import struct
from html.parser import HTMLParser

import pytest

import core_engine
from core_engine.backtest import BacktestResult
from core_engine.errors import ConfigError
from core_engine.research.report import (
    format_metric,
    metrics_html,
    result_html,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Doc(HTMLParser):
    """Collects tables (class -> {data-key: text}), images, <pre> blocks, the title, tag counts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, dict[str, str]] = {}
        self.captions: dict[str, str] = {}
        self.images: list[dict[str, str]] = []
        self.pre: list[str] = []
        self.title = ""
        self.tags: dict[str, int] = {}
        self.external: list[str] = []
        self._table: str | None = None
        self._key: str | None = None
        self._text: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "table":
            self._table = attrs.get("class", "")
            self.tables.setdefault(self._table, {})
        elif tag == "td" and "data-key" in attrs:
            self._key, self._text = attrs["data-key"], []
        elif tag in ("caption", "pre", "title"):
            self._in, self._text = tag, []
        elif tag == "img":
            self.images.append(attrs)
        if tag in ("script", "link") or (tag == "img" and not attrs.get("src", "").startswith("data:")):
            self.external.append(tag)

    def handle_data(self, data):
        if self._key is not None or self._in is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._key is not None:
            self.tables[self._table][self._key] = "".join(self._text)
            self._key = None
        elif tag == self._in:
            text = "".join(self._text)
            if tag == "caption":
                self.captions[self._table] = text
            elif tag == "pre":
                self.pre.append(text)
            else:
                self.title = text
            self._in = None
        elif tag == "table":
            self._table = None


def _parse(text: str) -> _Doc:
    doc = _Doc()
    doc.feed(text)
    doc.close()
    return doc


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_MAGIC)
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_metrics_html_shows_every_metric_formatted(baseline_result):
    m = baseline_result.metrics
    doc = _parse(metrics_html(m))
    table = doc.tables["ce-metrics"]
    assert set(table) == set(m)
    assert table["trades"] == f"{m['trades']:,}"
    assert table["win_rate"] == f"{m['win_rate']:.1%}"
    assert table["avg_return_pct"] == f"{m['avg_return_pct']:+.3f} %"
    assert table["total_return_pct"] == f"{m['total_return_pct']:+.2f} %"
    assert table["sharpe"] == f"{m['sharpe']:.3f}"
    assert table["exit_reasons"] == ", ".join(f"{k} {v:,}" for k, v in m["exit_reasons"].items())
    with pytest.raises(ConfigError, match="dict of metrics"):
        metrics_html([1, 2])


def test_metrics_html_escapes_and_formats_special_values():
    doc = _parse(metrics_html({"sharpe": math.nan, "profit_factor": math.inf,
                               "<odd key>": "<b>&</b>"}))
    table = doc.tables["ce-metrics"]
    assert table == {"sharpe": "n/a", "profit_factor": "inf", "<odd key>": "<b>&</b>"}
    assert format_metric(None) == "-" and format_metric(-math.inf) == "-inf"


def test_result_html_has_headline_and_data_quality(baseline_result):
    doc = _parse(result_html(baseline_result))
    head, quality = doc.tables["ce-headline"], doc.tables["ce-quality"]
    m, dq = baseline_result.metrics, baseline_result.data_quality
    assert list(head) == ["trades", "coverage", "win_rate", "avg_return_pct", "profit_factor",
                          "total_return_pct", "equity_max_drawdown_pct", "sharpe", "exposure"]
    assert head["equity_max_drawdown_pct"] == f"{m['equity_max_drawdown_pct']:.2f} %"
    assert quality["missing_candles"] == f"{dq['missing_candles']:,}"
    assert quality["decision_times_evaluated"] == f"{dq['decision_times_evaluated']:,}"
    assert quality["skipped_decision_times"] == ", ".join(
        f"{k} {v}" for k, v in dq["skipped_decision_times"].items())
    assert set(quality) == set(dq)  # every data-quality entry is shown
    assert quality["symbols"] == ", ".join(dq["symbols"])
    assert doc.captions == {"ce-headline": "Headline metrics", "ce-quality": "Data quality"}


def test_write_report_is_one_self_contained_file(baseline_result, tmp_path):
    path = write_report(baseline_result, tmp_path / "reports" / "baseline")
    assert path == tmp_path / "reports" / "baseline.html" and path.is_file()
    doc = _parse(path.read_text(encoding="utf-8"))
    assert doc.title == "Backtest report: macd_rsi_confluence"
    assert doc.external == []  # no scripts, stylesheets or images outside the file
    m, dq = baseline_result.metrics, baseline_result.data_quality
    metrics = doc.tables["ce-metrics"]
    assert metrics["trades"] == f"{m['trades']:,}"
    assert metrics["profit_factor"] == f"{m['profit_factor']:.3f}"
    assert metrics["equity_max_drawdown_pct"] == f"{m['equity_max_drawdown_pct']:.2f} %"
    assert doc.tables["ce-quality"]["candles"] == f"{dq['candles']:,}"
    provenance = doc.tables["ce-provenance"]
    assert provenance["data_fingerprint"] == baseline_result.fingerprint
    assert len(provenance["data_fingerprint"]) == 64
    assert provenance["library_version"] == baseline_result.version == core_engine.__version__
    # equity, distribution, 2 breakdowns and the trades of the 3 most traded symbols
    assert len(doc.images) == 7
    alts = [img["alt"] for img in doc.images]
    top3 = baseline_result.trades["symbol"].value_counts().index[:3]
    assert alts[:4] == ["Equity and drawdown", "Distribution of trade returns", "Per symbol",
                        "Per hour of day"]
    assert alts[4:] == [f"Trades of {s}" for s in top3]
    for img in doc.images:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        width, height = _png_size(base64.b64decode(img["src"][len(prefix):], validate=True))
        assert width > 300 and height > 200
    (config,) = doc.pre
    assert json.loads(config)["strategy"]["name"] == "macd_rsi_confluence"
    assert json.loads(config)["exits"]["stop_loss_pct"] == 1.2


def test_report_of_a_loaded_run_keeps_its_fingerprint(baseline_result, tmp_path):
    loaded = BacktestResult.load(baseline_result.save(tmp_path / "run"))
    folder = tmp_path / "out"
    folder.mkdir()
    path = write_report(loaded, folder)
    assert path == folder / "report.html"
    doc = _parse(path.read_text(encoding="utf-8"))
    assert doc.tables["ce-provenance"]["data_fingerprint"] == baseline_result.fingerprint
    assert len(doc.images) == 4  # no candles kept after load: no trade charts
    assert doc.tables["ce-metrics"]["trades"] == f"{baseline_result.metrics['trades']:,}"


def test_report_with_explicit_panel_and_symbols(baseline_result, sample_panel, tmp_path):
    loaded = BacktestResult.load(baseline_result.save(tmp_path / "run"))
    path = write_report(loaded, tmp_path / "r.html", panel=sample_panel,
                        trade_symbols=["NKN/USDT"], max_trades=5)
    doc = _parse(path.read_text(encoding="utf-8"))
    assert [img["alt"] for img in doc.images][-1] == "Trades of NKN/USDT"
    assert doc.tags["tr"] >= 6  # header + 5 trade rows
    assert "First 5 of" in path.read_text(encoding="utf-8")


def test_report_of_a_run_without_trades(sample_panel, tmp_path):
    from core_engine.backtest import walk_forward
    from core_engine.strategies import MomentumRank

    empty = walk_forward(sample_panel.loc_time("2021-03-01", "2021-03-04"),
                         MomentumRank(min_return=5.0))
    text = write_report(empty, tmp_path / "empty.html").read_text(encoding="utf-8")
    doc = _parse(text)
    assert [img["alt"] for img in doc.images] == ["Equity and drawdown"]
    assert doc.tables["ce-metrics"]["trades"] == "0"
    assert doc.tables["ce-metrics"]["win_rate"] == "n/a"
    assert "No trades." in text
