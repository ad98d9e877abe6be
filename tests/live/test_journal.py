"""The SQLite journal: intents before calls, fills once, state machines, survives SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from core_engine.errors import OrderStateError
from core_engine.live.journal import SCHEMA_VERSION, Journal, JournalError
from core_engine.live.keys import Secret
from core_engine.live.state import RunnerState, StateTransitionError
from core_engine.trading.orders import OrderStatus

T = pd.Timestamp("2021-03-01 10:00", tz="UTC")
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def journal(tmp_path):
    with Journal(tmp_path / "live" / "journal.sqlite") as j:
        yield j


def _intent(journal, cid="ce1", **kw):
    args = {"client_id": cid, "bar_time": T, "symbol": "BTC/USDT", "side": "buy",
            "type": "market", "quantity": 0.5, "leg": "entry", **kw}
    return journal.record_intent(**args)


def test_file_is_wal_with_full_sync_and_versioned(journal):
    conn = sqlite3.connect(journal.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert journal.schema_version == SCHEMA_VERSION
    assert journal.state()[0] is RunnerState.RUNNING


def test_intent_is_unique_and_walks_the_state_machine(journal):
    decision = journal.record_decision(T, "macd", "fp123", {"BTC/USDT": 0.7}, ["rsi 52"])
    row = _intent(journal, decision_id=decision)
    assert row.status is OrderStatus.NEW and row.decision_id == decision
    with pytest.raises(JournalError, match="never sent twice"):
        _intent(journal)
    journal.update_order("ce1", "unknown", event="create_timeout")
    assert journal.record_miss("ce1") == 1
    journal.update_order("ce1", "partially_filled", event="found", filled_quantity=0.2,
                         exchange_order_id="123")
    done = journal.update_order("ce1", "filled", filled_quantity=0.5, average_price=100.0)
    assert (done.filled_quantity, done.exchange_order_id, done.misses) == (0.5, "123", 1)
    with pytest.raises(OrderStateError, match="cannot go from 'filled' to 'cancelled'"):
        journal.update_order("ce1", "cancelled")
    assert journal.order_events("ce1") == [("intent", "new"), ("create_timeout", "unknown"),
                                           ("miss", "unknown"), ("found", "partially_filled"),
                                           ("status", "filled")]
    assert journal.decisions()[0]["notes"] == ["rsi 52"]
    assert [o.client_id for o in journal.orders(final=False)] == []
    with pytest.raises(JournalError, match="not in the journal"):
        journal.update_order("nope", "filled")


def test_fills_apply_once_and_positions_follow(journal):
    journal.set_opening_balances({"USDT": 1000.0})
    _intent(journal)
    fill = {"symbol": "BTC/USDT", "trade_id": "7", "side": "buy", "time": T, "price": 100.0,
            "quantity": 0.5, "fee": 0.0005, "fee_asset": "BTC", "client_id": "ce1"}
    assert journal.record_fill(**fill) is True
    assert journal.record_fill(**fill) is False  # the same trade reported again
    eth = {**fill, "symbol": "ETH/USDT", "fee": 0.0, "fee_asset": "ETH"}
    assert journal.record_fill(**eth) is True  # trade ids are per symbol
    journal.record_fill(symbol="BTC/USDT", trade_id="8", side="sell", time=T, price=110.0,
                        quantity=0.2, fee=0.022, fee_asset="USDT")
    held = journal.positions()
    assert held["BTC"] == pytest.approx(0.5 - 0.0005 - 0.2)
    assert held["USDT"] == pytest.approx(1000 - 50 - 50 + 22 - 0.022)
    assert held["ETH"] == pytest.approx(0.5)
    assert len(journal.fills(since=T)) == 3
    with pytest.raises(JournalError, match="already has opening balances"):
        journal.set_opening_balances({"USDT": 5.0})
    journal.set_opening_balances({"USDT": 1000.0})  # same: fine


def test_runner_state_machine_and_breakers(journal):
    assert journal.set_state("halted", "operator", time=T) is True
    assert journal.set_state("halted", "again") is False
    journal.set_state("flatten", "drawdown breaker")
    with pytest.raises(StateTransitionError):
        journal.set_state("stopped", "x")
    journal.record_breaker("max_drawdown", "flatten", {"drawdown": 0.21, "limit": 0.2}, time=T)
    assert journal.breaker_events()[0]["rule"] == "max_drawdown"
    assert journal.state_changes() == [("running", "halted", "operator"),
                                       ("halted", "flatten", "drawdown breaker")]


def test_secrets_are_scrubbed_from_every_text_column(journal):
    secret = Secret("journal-secret-value-42")
    journal.record_error("broker", "AuthenticationError", f"bad key {secret.reveal()}")
    journal.record_decision(T, "t", "fp", {}, {"note": secret.reveal()})
    journal.record_breaker("r", "halt", f"x {secret.reveal()}")
    dump = "\n".join(sqlite3.connect(journal.path).iterdump())
    assert secret.reveal() not in dump and "****" in dump


def test_todays_pnl_from_equity_marks(journal):
    journal.record_equity(pd.Timestamp("2021-03-01 23:00", tz="UTC"), 1000.0, 1000.0, {})
    journal.record_equity(pd.Timestamp("2021-03-02 00:00", tz="UTC"), 1010.0, 500.0, {})
    journal.record_equity(pd.Timestamp("2021-03-02 05:00", tz="UTC"), 990.0, 500.0, {})
    assert journal.todays_pnl() == pytest.approx(-20.0)
    assert journal.todays_pnl(pd.Timestamp("2021-03-01 23:30", tz="UTC")) == 0.0


def test_refuses_foreign_and_newer_files(tmp_path):
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE x (a)")
    with pytest.raises(JournalError, match="no schema version"):
        Journal(other, readonly=True)
    newer = tmp_path / "newer.sqlite"
    Journal(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    with pytest.raises(JournalError, match="newer than this core_engine"):
        Journal(newer)
    with pytest.raises(JournalError, match="No journal at"):
        Journal(tmp_path / "missing.sqlite", readonly=True)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalError, match="not a usable journal"):
        Journal(tmp_path / "junk.sqlite")


def test_journal_reused_for_another_trader_is_refused(journal):
    journal.set_meta("trader_id", "macd")
    journal.set_meta("trader_id", "macd")
    with pytest.raises(JournalError, match="cannot be reused"):
        journal.set_meta("trader_id", "breakout")


_WRITER = textwrap.dedent("""
    import sys, pandas as pd
    from core_engine.live.journal import Journal
    j = Journal(sys.argv[1])
    j.set_opening_balances({"USDT": 1e9})
    start = len(j.orders())
    t = pd.Timestamp("2021-01-01", tz="UTC")
    for i in range(start, start + 100000):
        cid = f"ce{i}"
        j.record_intent(client_id=cid, bar_time=t, symbol="BTC/USDT", side="buy",
                        type="market", quantity=1.0, leg="entry")
        j.update_order(cid, "filled", event="ack", filled_quantity=1.0, average_price=10.0)
        j.record_fill(symbol="BTC/USDT", trade_id=str(i), side="buy", time=t, price=10.0,
                      quantity=1.0, fee=0.0, fee_asset="USDT", client_id=cid)
        print(i, flush=True)
""")


def test_survives_sigkill_mid_write(tmp_path):
    path = tmp_path / "killed.sqlite"
    env = {**os.environ, "PYTHONPATH": SRC}
    last_done = -1
    for round_ in range(3):
        child = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], env=env,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        lines = 0
        while lines < 20 + 13 * round_:  # let it run, then kill at a varying moment
            assert child.stdout.readline(), "the writer died on its own"
            lines += 1
        time.sleep(0.003 * round_)
        os.kill(child.pid, signal.SIGKILL)
        printed = [int(x) for x in child.stdout.read().split()]
        child.wait()
        child.stdout.close()
        done = max(printed, default=last_done + lines)
        last_done = max(last_done, done)
        with Journal(path) as j:
            assert j._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            orders = j.orders()
            # everything reported committed is there; at most one more intent may follow
            assert len(orders) >= last_done + 1
            fills = j.fills()
            assert len(fills) in (len(orders), len(orders) - 1)
            for order in orders[:-1]:
                assert order.status is OrderStatus.FILLED
                assert j.order_events(order.client_id) in (
                    [("intent", "new"), ("ack", "filled")],
                    [("intent", "new"), ("reconciled", "filled")])
            assert j.positions()["BTC"] == pytest.approx(len(fills))
            if orders[-1].status is OrderStatus.NEW:  # killed between intent and ack:
                j.update_order(orders[-1].client_id, "filled", event="reconciled")
                j.record_fill(symbol="BTC/USDT", trade_id=str(len(orders) - 1), side="buy",
                              time=T, price=10.0, quantity=1.0, fee=0.0, fee_asset="USDT")
            elif len(fills) < len(orders):
                j.record_fill(symbol="BTC/USDT", trade_id=str(len(orders) - 1), side="buy",
                              time=T, price=10.0, quantity=1.0, fee=0.0, fee_asset="USDT")
            last_done = len(orders) - 1
