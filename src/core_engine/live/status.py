"""What an operator looks at: a text summary and a self-contained HTML page, from the journal.

The runner rewrites the page after every tick (atomically: temporary file, then rename), next
to the journal (``journal.sqlite`` → ``journal.html``). Everything shown comes from the
journal, is HTML-escaped, and is scrubbed of registered secrets.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import pandas as pd

from core_engine._validate import check_path
from core_engine.data.timeframes import to_utc_timestamp
from core_engine.errors import ConfigError
from core_engine.live.journal import Journal
from core_engine.live.keys import SCRUBBER

__all__ = ["render_status_page", "status_page_path", "status_summary", "status_text",
           "write_status_page"]


def _check_arguments(journal: Any, now: Any, where: str) -> pd.Timestamp | None:
    """The journal and the optional ``now`` of the status functions, checked."""
    if not isinstance(journal, Journal):
        raise ConfigError(f"The 'journal' parameter of {where} must be a Journal. "
                          f"Got {type(journal).__name__} {journal!r}.")
    return None if now is None else to_utc_timestamp(now, name="now")


def status_page_path(journal_path: str | Path) -> Path:
    """The HTML page beside a journal: same name, ``.html``."""
    return Path(journal_path).with_suffix(".html")


def status_summary(journal: Journal, now: Any = None, decisions: int = 10) -> dict[str, Any]:
    """State, positions, open orders, today's P&L, recent decisions, errors and breaker trips."""
    now = _check_arguments(journal, now, "status_summary")
    state, reason, since = journal.state()
    opening = journal.opening_balances()
    return {
        "journal": str(journal.path), "state": state.value, "reason": reason, "since": since,
        "trader_id": journal.meta("trader_id"), "broker": journal.meta("broker"),
        "positions": {a: q for a, q in sorted(journal.positions().items())
                      if abs(q) > 1e-12 or a in opening},
        "open_orders": journal.orders(final=False),
        "todays_pnl": journal.todays_pnl(now),
        "equity": (float(journal.equity().iloc[-1]) if len(journal.equity()) else None),
        "decisions": journal.decisions(decisions),
        "errors": journal.errors(10),
        "breakers": journal.breaker_events()[-10:],
        "fills": len(journal.fills()),
    }


def status_text(journal: Journal, now: Any = None) -> str:
    """The ``core-engine live status`` report."""
    now = _check_arguments(journal, now, "status_text")
    s = status_summary(journal, now)
    lines = [f"journal   {s['journal']}", f"trader    {s['trader_id']}  broker {s['broker']}",
             f"state     {s['state']} since {s['since']} ({s['reason']})",
             f"equity    {s['equity']}", f"today P&L {s['todays_pnl']:+.2f}",
             f"fills     {s['fills']}", "", "positions:"]
    lines += [f"  {asset:<8} {qty:.8f}" for asset, qty in s["positions"].items()] or ["  (none)"]
    lines += ["", "open orders:"]
    lines += [f"  {o.client_id} {o.leg} {o.side} {o.quantity} {o.symbol} {o.type} "
              f"{o.status.value} filled {o.filled_quantity}" for o in s["open_orders"]] or [
        "  (none)"]
    lines += ["", "last decisions:"]
    for d in s["decisions"]:
        lines.append(f"  {d['time']} {d['trader_id']} scores {d['scores']} notes {d['notes']}")
    if s["breakers"]:
        lines += ["", "breaker trips:"]
        lines += [f"  {b['time']} {b['rule']} -> {b['action']}: {b['detail']}"
                  for b in s["breakers"]]
    if s["errors"]:
        lines += ["", "recent errors:"]
        lines += [f"  {e['time']} {e['source']} {e['kind']}: {e['message']}" for e in s["errors"]]
    return SCRUBBER.scrub("\n".join(lines))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p class='none'>none</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;margin-bottom:1.5em}"
        "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.9em}"
        ".running{color:#070}.halted{color:#a60}.flatten{color:#b00}.none{color:#888}")


def render_status_page(journal: Journal, now: Any = None) -> str:
    """The status page as one HTML string (no external resources)."""
    now = _check_arguments(journal, now, "render_status_page")
    s = status_summary(journal, now)
    stamp = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>core_engine live: {html.escape(str(s['trader_id']))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(str(s['trader_id']))} on {html.escape(str(s['broker']))}</h1>",
        f"<p>State: <b class='{s['state']}'>{s['state']}</b> since {s['since']} — "
        f"{html.escape(s['reason'])}. Page written {stamp}.</p>",
        f"<p>Equity {s['equity']} · today's P&amp;L {s['todays_pnl']:+.2f} · "
        f"fills {s['fills']}</p>",
        "<h2>Positions</h2>",
        _table(["asset", "quantity"], [[a, f"{q:.8f}"] for a, q in s["positions"].items()]),
        "<h2>Open orders</h2>",
        _table(["client id", "leg", "side", "quantity", "symbol", "type", "status", "filled"],
               [[o.client_id, o.leg, o.side, o.quantity, o.symbol, o.type, o.status.value,
                 o.filled_quantity] for o in s["open_orders"]]),
        "<h2>Last decisions</h2>",
        _table(["time", "trader", "scores", "notes"],
               [[d["time"], d["trader_id"], d["scores"], d["notes"]] for d in s["decisions"]]),
        "<h2>Breaker trips</h2>",
        _table(["time", "rule", "action", "detail"],
               [[b["time"], b["rule"], b["action"], b["detail"]] for b in s["breakers"]]),
        "<h2>Recent errors</h2>",
        _table(["time", "source", "kind", "message"],
               [[e["time"], e["source"], e["kind"], e["message"]] for e in s["errors"]]),
        "</body></html>"]
    return SCRUBBER.scrub("\n".join(parts))


def write_status_page(journal: Journal, now: Any = None, path: str | Path | None = None) -> Path:
    """Rewrite the status page atomically; returns its path."""
    now = _check_arguments(journal, now, "write_status_page")
    target = (check_path(path, "path", "write_status_page", kind="file") if path is not None
              else status_page_path(journal.path))
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(render_status_page(journal, now), encoding="utf-8")
    os.replace(temporary, target)
    return target
