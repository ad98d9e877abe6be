"""The status page and ``core-engine live status|halt|flatten|resume`` on a journal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core_engine.cli import main
from core_engine.live.journal import Journal
from core_engine.live.keys import Secret
from core_engine.live.state import RunnerState
from core_engine.live.status import render_status_page, status_page_path, write_status_page

T = pd.Timestamp("2021-03-01 10:00", tz="UTC")
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def journal_path(tmp_path):
    path = tmp_path / "paper.sqlite"
    with Journal(path) as j:
        j.set_meta("trader_id", "macd_rsi_confluence-1")
        j.set_meta("broker", "paper")
        j.set_opening_balances({"USDT": 1000.0})
        d = j.record_decision(T, "macd_rsi_confluence-1", "fp", {"BTC/USDT": 0.8},
                              ["BTC/USDT: rsi 52 <b>in band</b>"])
        j.record_intent(client_id="ce-a", bar_time=T, symbol="BTC/USDT", side="buy",
                        type="market", quantity=0.01, leg="entry", decision_id=d)
        j.update_order("ce-a", "filled", filled_quantity=0.01, average_price=30000.0)
        j.record_fill(symbol="BTC/USDT", trade_id="1", side="buy", time=T, price=30000.0,
                      quantity=0.01, fee=0.00001, fee_asset="BTC", client_id="ce-a")
        j.record_intent(client_id="ce-s", bar_time=T, symbol="BTC/USDT", side="sell",
                        type="stop", quantity=0.00999, stop_price=29000.0, leg="stop")
        j.update_order("ce-s", "submitted")
        j.record_equity(T, 1000.0, 700.0, {"BTC/USDT": 30000.0})
        j.record_equity(T + pd.Timedelta("1h"), 1012.5, 700.0, {"BTC/USDT": 31250.0})
        j.record_error("broker", "RateLimited", "binance fetch_balance: 429")
    return path


def test_status_page_is_self_contained_escaped_and_atomic(journal_path):
    with Journal(journal_path) as j:
        page_path = write_status_page(j, now=T + pd.Timedelta("1h"))
        assert page_path == status_page_path(journal_path) == journal_path.with_suffix(".html")
        page = page_path.read_text()
        assert "<b class='running'>running</b>" in page
        assert "ce-s" in page and "ce-a" not in page.split("Open orders")[1].split("<h2>")[0]
        assert "&lt;b&gt;in band&lt;/b&gt;" in page and "<b>in band</b>" not in page
        assert "+12.50" in page and "RateLimited" in page
        assert "http" not in page.lower().replace("http-equiv", "")  # nothing external
        assert not list(journal_path.parent.glob(".*.tmp"))
        secret = Secret("page-secret-value-77")
        j.record_error("broker", "AuthenticationError", f"key {secret.reveal()} refused")
        assert secret.reveal() not in render_status_page(j)


def test_cli_status_halt_flatten_resume(journal_path, capsys):
    assert main(["live", "status", "--journal", str(journal_path)]) == 0
    out = capsys.readouterr().out
    assert "state     running" in out and "ce-s stop sell" in out
    assert "today P&L +12.50" in out and "rsi 52" in out and "BTC      0.00999000" in out
    assert main(["live", "halt", "--journal", str(journal_path), "--reason", "news"]) == 0
    assert "halted" in capsys.readouterr().out
    assert main(["live", "flatten", "--journal", str(journal_path)]) == 0
    assert main(["live", "resume", "--journal", str(journal_path)]) == 0
    with Journal(journal_path) as j:
        assert j.state()[0] is RunnerState.RUNNING
        assert [c[1] for c in j.state_changes()] == ["halted", "flatten", "running"]
        assert j.state_changes()[0][2] == "news"


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["live", "status", "--journal", str(tmp_path / "none.sqlite")]) == 2
    assert "No journal at" in capsys.readouterr().err
    assert main(["live", "halt", "--journal", str(tmp_path / "new.sqlite")]) == 2
    assert "Check the --journal path" in capsys.readouterr().err


def test_console_script_runs_in_a_subprocess(journal_path):
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-m", "core_engine.cli", "live", "halt", "--journal",
                           str(journal_path)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    with Journal(journal_path, readonly=True) as j:
        assert j.state()[0] is RunnerState.HALTED
