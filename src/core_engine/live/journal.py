"""The live journal: one SQLite file that records everything before the next step acts on it.

Tables (schema version :data:`SCHEMA_VERSION`):

* ``decisions`` — time, trader, fingerprint of the inputs, scores and notes of each decision;
* ``orders`` — one row per client order id, written as an *intent* before the network call
  (status ``new``), then updated by acknowledgements and lookups through the order state
  machine (:mod:`core_engine.live.state`); ``order_events`` keeps every step;
* ``fills`` — keyed by ``(symbol, trade_id)``: a fill is applied once, whatever path reports it;
* ``errors``, ``breaker_events``, ``state_changes`` and the one-row ``runner_state``;
* ``opening_balances`` and ``equity`` — so positions are derived from fills alone
  (:meth:`Journal.positions`) and today's P&L from the equity marks.

The file is opened in WAL mode with ``synchronous=FULL``: a committed row survives a killed
process or a power cut, and a process killed mid-transaction leaves no half-written row.
Every public write is one transaction. Text written is scrubbed of registered secrets.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import check_path
from core_engine.errors import CoreEngineError
from core_engine.live.keys import SCRUBBER
from core_engine.live.state import RunnerState, check_runner_transition
from core_engine.trading.orders import (
    FINAL_STATUSES,
    TRANSITIONS,
    OrderStatus,
    check_transition,
)

__all__ = ["SCHEMA_VERSION", "FillRow", "Journal", "JournalError", "OrderRow"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, trader_id TEXT NOT NULL,
    inputs_fingerprint TEXT NOT NULL, scores TEXT NOT NULL, notes TEXT NOT NULL,
    recorded_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY, decision_id INTEGER REFERENCES decisions(id),
    bar_time TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL CHECK (side IN ('buy','sell')),
    type TEXT NOT NULL, quantity REAL CHECK (quantity IS NULL OR quantity > 0),
    quote_quantity REAL, limit_price REAL, stop_price REAL, leg TEXT NOT NULL,
    parent_client_id TEXT, spec TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL,
    exchange_order_id TEXT, filled_quantity REAL NOT NULL DEFAULT 0, average_price REAL,
    misses INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_status ON orders(status);
CREATE INDEX IF NOT EXISTS orders_exchange ON orders(symbol, exchange_order_id);
CREATE TABLE IF NOT EXISTS order_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL REFERENCES orders(client_id),
    time TEXT NOT NULL, event TEXT NOT NULL, status TEXT NOT NULL, detail TEXT);
CREATE INDEX IF NOT EXISTS order_events_event ON order_events(event);
CREATE TABLE IF NOT EXISTS fills (
    symbol TEXT NOT NULL, trade_id TEXT NOT NULL, client_id TEXT, side TEXT NOT NULL,
    time TEXT NOT NULL, price REAL NOT NULL, quantity REAL NOT NULL CHECK (quantity > 0),
    fee REAL NOT NULL, fee_asset TEXT NOT NULL, liquidity TEXT, recorded_at TEXT NOT NULL,
    PRIMARY KEY (symbol, trade_id));
CREATE TABLE IF NOT EXISTS errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, source TEXT NOT NULL,
    kind TEXT NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS breaker_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, rule TEXT NOT NULL,
    action TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runner_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, reason TEXT NOT NULL,
    since TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, old TEXT NOT NULL,
    new TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS opening_balances (asset TEXT PRIMARY KEY, amount REAL NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, trader_state TEXT NOT NULL,
    last_fill INTEGER NOT NULL, wakes TEXT NOT NULL, recorded_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS equity (
    time TEXT PRIMARY KEY, equity REAL NOT NULL, cash REAL NOT NULL, marks TEXT NOT NULL);
"""


class JournalError(CoreEngineError, RuntimeError):
    """The journal cannot be opened, or a write would break one of its rules."""


@dataclass(frozen=True)
class OrderRow:
    """One order as the journal knows it."""

    client_id: str
    decision_id: int | None
    bar_time: pd.Timestamp
    symbol: str
    side: str
    type: str
    quantity: float | None
    limit_price: float | None
    stop_price: float | None
    leg: str
    parent_client_id: str | None
    status: OrderStatus
    exchange_order_id: str | None
    filled_quantity: float
    average_price: float | None
    misses: int

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class FillRow:
    """One fill (one exchange trade) as the journal knows it."""

    symbol: str
    trade_id: str
    client_id: str | None
    side: str
    time: pd.Timestamp
    price: float
    quantity: float
    fee: float
    fee_asset: str
    liquidity: str | None


def _ts(value: object) -> str:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise JournalError(f"Journal times must be timezone-aware (UTC). Got naive {stamp}.")
    return stamp.tz_convert("UTC").isoformat()


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").isoformat()


def _json_default(value: object) -> object:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _text(value: object) -> str:
    return SCRUBBER.scrub(value if isinstance(value, str) else json.dumps(value, default=str))


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"BTC/USDT"`` -> ``("BTC", "USDT")``."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise JournalError(f"A symbol must look like BASE/QUOTE, e.g. BTC/USDT. Got {symbol!r}.")
    return base, quote.split(":")[0]


@keyword_checked
class Journal:
    """The SQLite journal of one live or paper trader.

    Parameters
    ----------
    path : str or Path
        The journal file; created with its directory if missing.
    readonly : bool, default False
        Open an existing journal for reading only (the ``status`` command).

    Raises
    ------
    JournalError
        The file is not a journal, or was written by a newer schema.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = check_path(path, "path", "Journal", kind="file", error=JournalError)
        if readonly and not self.path.exists():
            raise JournalError(f"No journal at {self.path}: expected an existing journal file.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"file:{self.path}?mode=ro" if readonly else str(self.path)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(uri, uri=readonly, isolation_level=None,
                                         check_same_thread=False, timeout=30.0)
            self._conn.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                self._create()
            self._check_version()
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path} is not a usable journal: {exc}.") from exc

    # -- plumbing ---------------------------------------------------------------------------

    def _create(self) -> None:
        with self._tx() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('created_at', ?)", (_now(),))
            conn.execute("INSERT OR IGNORE INTO runner_state VALUES (1, ?, 'journal created', ?)",
                         (RunnerState.RUNNING.value, _now()))

    def _check_version(self) -> None:
        if not self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                  "name = 'meta'").fetchone():
            raise JournalError(f"{self.path} has no schema version: it is not a journal.")
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise JournalError(f"{self.path} has no schema version: it is not a journal.")
        if int(row[0]) > SCHEMA_VERSION:
            raise JournalError(
                f"{self.path} has journal schema {row[0]}, newer than this core_engine "
                f"understands ({SCHEMA_VERSION}). Upgrade core_engine.")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def close(self) -> None:
        """Close the file (every write is already committed)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @property
    def schema_version(self) -> int:
        return int(self._query("SELECT value FROM meta WHERE key = 'schema_version'")[0][0])

    def meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting of the run (trader id, exchange, ...); existing values are kept
        only if equal, so a journal is never silently reused for another trader."""
        with self._tx() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] != value:
                raise JournalError(f"Journal {self.path} belongs to {key}={row[0]!r}; "
                                   f"it cannot be reused for {key}={value!r}.")
            conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))

    # -- decisions --------------------------------------------------------------------------

    def record_decision(self, time: object, trader_id: str, inputs_fingerprint: str,
                        scores: Mapping[str, float] | None = None,
                        notes: object = None) -> int:
        """Journal one decision; returns its id (orders refer to it)."""
        with self._tx() as conn:
            cursor = conn.execute(
                "INSERT INTO decisions (time, trader_id, inputs_fingerprint, scores, notes, "
                "recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
                (_ts(time), trader_id, inputs_fingerprint, _text(dict(scores or {})),
                 _text(notes if notes is not None else []), _now()))
            return int(cursor.lastrowid)  # type: ignore[arg-type]

    def annotate_decision(self, decision_id: int, *, notes: object,
                          scores: Mapping[str, float]) -> None:
        """Add what the trader noted while deciding (written after ``on_bar`` returns)."""
        with self._tx() as conn:
            conn.execute("UPDATE decisions SET notes = ?, scores = ? WHERE id = ?",
                         (_text(notes), _text(dict(scores)), decision_id))

    def decisions(self, limit: int = 20) -> list[dict[str, Any]]:
        """The last ``limit`` decisions, newest first."""
        rows = self._query("SELECT id, time, trader_id, inputs_fingerprint, scores, notes FROM "
                           "decisions ORDER BY id DESC LIMIT ?", (limit,))
        return [{"id": r[0], "time": pd.Timestamp(r[1]), "trader_id": r[2],
                 "inputs_fingerprint": r[3], "scores": json.loads(r[4]),
                 "notes": json.loads(r[5])} for r in rows]

    # -- orders -----------------------------------------------------------------------------

    def record_intent(self, *, client_id: str, bar_time: object, symbol: str, side: str,
                      type: str, quantity: float | None, leg: str,
                      limit_price: float | None = None, stop_price: float | None = None,
                      decision_id: int | None = None, parent_client_id: str | None = None,
                      quote_quantity: float | None = None, spec: Mapping[str, Any] | None = None,
                      time: object = None) -> OrderRow:
        """Write an order intent (status ``new``) BEFORE its network call.

        Raises
        ------
        JournalError
            The client id is already journaled: the order was decided before, so it must be
            resolved by lookup, never sent again.
        """
        when = _ts(time) if time is not None else _now()
        split_symbol(symbol)
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM orders WHERE client_id = ?", (client_id,)).fetchone():
                raise JournalError(
                    f"Order {client_id} ({leg} {side} {symbol}) is already journaled; an "
                    "order is never sent twice. Resolve it by its client id instead.")
            conn.execute(
                "INSERT INTO orders (client_id, decision_id, bar_time, symbol, side, type, "
                "quantity, quote_quantity, limit_price, stop_price, leg, parent_client_id, spec, "
                "status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (client_id, decision_id, _ts(bar_time), symbol, side, type,
                 None if quantity is None else float(quantity), quote_quantity, limit_price,
                 stop_price, leg, parent_client_id, _text(dict(spec or {})),
                 OrderStatus.NEW.value, when, when))
            conn.execute("INSERT INTO order_events (client_id, time, event, status, detail) "
                         "VALUES (?, ?, 'intent', 'new', NULL)", (client_id, when))
        return self.order(client_id)  # type: ignore[return-value]

    def record_order(self, order: Any, *, bar_time: object, decision_id: int | None = None,
                     spec: Mapping[str, Any] | None = None, time: object = None) -> OrderRow:
        """:meth:`record_intent` for a :class:`~core_engine.trading.orders.Order`."""
        return self.record_intent(
            client_id=order.client_id, bar_time=bar_time, symbol=order.symbol,
            side=getattr(order.side, "value", order.side),
            type=getattr(order.type, "value", order.type), quantity=order.quantity,
            quote_quantity=order.quote_quantity, leg=order.tag or "",
            limit_price=order.limit_price, stop_price=order.stop_price,
            decision_id=decision_id, parent_client_id=order.group, spec=spec, time=time)

    def order_spec(self, client_id: str) -> dict[str, Any]:
        """The JSON spec journaled with an order (what rebuilds it after a restart)."""
        rows = self._query("SELECT spec FROM orders WHERE client_id = ?", (client_id,))
        if not rows:
            raise JournalError(f"Order {client_id} is not in the journal {self.path}.")
        return json.loads(rows[0][0])

    def record_event(self, client_id: str, event: str, detail: object = None,
                     time: object = None) -> None:
        """Journal an event of an order that does not change its status (a cancel request)."""
        when = _ts(time) if time is not None else _now()
        with self._tx() as conn:
            conn.execute("INSERT INTO order_events (client_id, time, event, status, detail) "
                         "SELECT client_id, ?, ?, status, ? FROM orders WHERE client_id = ?",
                         (when, event, None if detail is None else _text(detail), client_id))

    def update_order(self, client_id: str, status: str | OrderStatus, *, event: str = "status",
                     filled_quantity: float | None = None, average_price: float | None = None,
                     exchange_order_id: str | None = None, detail: object = None,
                     time: object = None) -> OrderRow:
        """Move an order to ``status`` through the order state machine of the trading layer
        and journal the event (``ack``, ``status``, ``unknown``, ``cancel``, ``not_placed``,
        ...). From ``new``, a status that implies submission (``filled``, ``cancelled``,
        ``partially_filled``) passes through ``submitted``.

        Raises
        ------
        OrderStateError
            The change is not in the transition table (a final status never changes).
        """
        when = _ts(time) if time is not None else _now()
        with self._tx() as conn:
            row = conn.execute("SELECT status FROM orders WHERE client_id = ?",
                               (client_id,)).fetchone()
            if row is None:
                raise JournalError(f"Order {client_id} is not in the journal {self.path}.")
            old, new = OrderStatus(row[0]), OrderStatus(status)
            steps = [new]
            if old is OrderStatus.NEW and new not in TRANSITIONS[old]:
                # an acknowledgement that reports fills or a cancel implies the submission
                steps = [OrderStatus.SUBMITTED, new]
            for step in steps:
                check_transition(old, step, client_id)
                old = step
            conn.execute(
                "UPDATE orders SET status = ?, filled_quantity = COALESCE(?, filled_quantity), "
                "average_price = COALESCE(?, average_price), exchange_order_id = "
                "COALESCE(?, exchange_order_id), updated_at = ? WHERE client_id = ?",
                (new.value, filled_quantity, average_price, exchange_order_id, when, client_id))
            conn.execute("INSERT INTO order_events (client_id, time, event, status, detail) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (client_id, when, event, new.value,
                          None if detail is None else _text(detail)))
        return self.order(client_id)  # type: ignore[return-value]

    def found_late(self, client_id: str, status: str | OrderStatus, *, filled_quantity: float,
                   average_price: float | None, exchange_order_id: str | None,
                   time: object = None) -> OrderRow:
        """Correct a wrong ``not_placed`` verdict: the order was found on the exchange after
        all (its trades name it). The only change of a final status the journal makes, and
        only from that verdict; journaled as the event ``found_late``.

        Raises
        ------
        JournalError
            The order is not one declared never placed.
        """
        when = _ts(time) if time is not None else _now()
        with self._tx() as conn:
            row = conn.execute("SELECT status FROM orders WHERE client_id = ?",
                               (client_id,)).fetchone()
            last = conn.execute("SELECT event FROM order_events WHERE client_id = ? ORDER BY "
                                "id DESC LIMIT 1", (client_id,)).fetchone()
            if row is None or row[0] != OrderStatus.REJECTED.value or last is None \
                    or last[0] != "not_placed":
                raise JournalError(f"Order {client_id} was not declared never placed; its "
                                   "status changes through the state machine only.")
            new = OrderStatus(status)
            conn.execute(
                "UPDATE orders SET status = ?, filled_quantity = ?, average_price = "
                "COALESCE(?, average_price), exchange_order_id = COALESCE(?, "
                "exchange_order_id), updated_at = ? WHERE client_id = ?",
                (new.value, float(filled_quantity), average_price, exchange_order_id, when,
                 client_id))
            conn.execute("INSERT INTO order_events (client_id, time, event, status, detail) "
                         "VALUES (?, ?, 'found_late', ?, ?)",
                         (client_id, when, new.value, "found on the exchange by the order id "
                          "of its trades after it was declared never placed"))
        return self.order(client_id)  # type: ignore[return-value]

    def record_miss(self, client_id: str, time: object = None) -> int:
        """Count one lookup of an ``unknown`` order that did not find it; returns the count."""
        when = _ts(time) if time is not None else _now()
        with self._tx() as conn:
            conn.execute("UPDATE orders SET misses = misses + 1, updated_at = ? "
                         "WHERE client_id = ?", (when, client_id))
            conn.execute("INSERT INTO order_events (client_id, time, event, status, detail) "
                         "SELECT client_id, ?, 'miss', status, NULL FROM orders "
                         "WHERE client_id = ?", (when, client_id))
            row = conn.execute("SELECT misses FROM orders WHERE client_id = ?",
                               (client_id,)).fetchone()
        if row is None:
            raise JournalError(f"Order {client_id} is not in the journal {self.path}.")
        return int(row[0])

    def client_id_of(self, symbol: str, exchange_order_id: str) -> str | None:
        """Our client id of the order the exchange calls ``exchange_order_id`` (or None)."""
        rows = self._query("SELECT client_id FROM orders WHERE symbol = ? AND "
                           "exchange_order_id = ?", (symbol, str(exchange_order_id)))
        return rows[0][0] if rows else None

    def order(self, client_id: str) -> OrderRow | None:
        rows = self._query(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE client_id = ?",
                           (client_id,))
        return _order_row(rows[0]) if rows else None

    def orders(self, *, final: bool | None = None, symbol: str | None = None,
               group: str | None = None) -> list[OrderRow]:
        """Orders in creation order; ``final=False`` gives those not yet final."""
        clauses: list[str] = []
        args: list[Any] = []
        finals = tuple(s.value for s in FINAL_STATUSES)
        if final is not None:
            clauses.append(f"status {'IN' if final else 'NOT IN'} ({','.join('?' * len(finals))})")
            args += finals
        if symbol is not None:
            clauses.append("symbol = ?")
            args.append(symbol)
        if group is not None:
            clauses.append("parent_client_id = ?")
            args.append(group)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return [_order_row(r) for r in self._query(
            f"SELECT {_ORDER_COLUMNS} FROM orders{where} ORDER BY created_at, rowid",
            tuple(args))]

    def order_events(self, client_id: str) -> list[tuple[str, str]]:
        """``(event, status)`` pairs of one order, oldest first."""
        return [(r[0], r[1]) for r in self._query(
            "SELECT event, status FROM order_events WHERE client_id = ? ORDER BY id",
            (client_id,))]

    def cancelled_for_exits(self) -> list[tuple[str, str]]:
        """``(sell, exit)`` pairs: a resting sell (a stop) cancelled to free the balance for
        the exit ``exit`` (event ``cancel_for_exit``) while that exit is not journaled, is
        ``unknown`` or ended without filling completely (refused, never placed, expired)."""
        return [(r[0], r[1]) for r in self._query(
            "SELECT e.client_id, e.detail FROM order_events e "
            "JOIN orders s ON s.client_id = e.client_id "
            "LEFT JOIN orders x ON x.client_id = e.detail "
            "WHERE e.event = 'cancel_for_exit' AND s.status = 'cancelled' "
            "AND (x.client_id IS NULL OR x.status IN ('rejected', 'cancelled', 'unknown')) "
            "ORDER BY e.id")]

    # -- fills and positions ----------------------------------------------------------------

    def record_fill(self, *, symbol: str, trade_id: str, side: str, time: object, price: float,
                    quantity: float, fee: float, fee_asset: str, client_id: str | None = None,
                    liquidity: str | None = None) -> bool:
        """Apply a fill once: returns True if new, False if this trade id was already journaled."""
        split_symbol(symbol)
        with self._tx() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO fills (symbol, trade_id, client_id, side, time, price, "
                "quantity, fee, fee_asset, liquidity, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (symbol, str(trade_id), client_id, side, _ts(time), float(price),
                 float(quantity), float(fee), fee_asset, liquidity, _now()))
            if cursor.rowcount == 1:
                return True
            if client_id is not None:  # a trade first seen before its order was known: now
                # attributed, it moves to the end of the dispatch order, so the runner's
                # cursor (already past it) hands it to the trader's on_fill
                conn.execute("UPDATE fills SET client_id = ?, rowid = (SELECT MAX(rowid) + 1 "
                             "FROM fills) WHERE symbol = ? AND trade_id = ? AND client_id IS "
                             "NULL", (client_id, symbol, str(trade_id)))
            return False

    def fills(self, since: object = None, symbol: str | None = None) -> list[FillRow]:
        """Fills in time order (``since`` inclusive)."""
        sql, args = "SELECT * FROM fills", []
        clauses = []
        if since is not None:
            clauses.append("time >= ?")
            args.append(_ts(since))
        if symbol is not None:
            clauses.append("symbol = ?")
            args.append(symbol)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        rows = self._query(sql + " ORDER BY time, rowid", tuple(args))
        return [FillRow(r[0], r[1], r[2], r[3], pd.Timestamp(r[4]), r[5], r[6], r[7], r[8], r[9])
                for r in rows]

    def fills_of(self, client_id: str) -> list[FillRow]:
        """The fills of one order, in time order."""
        rows = self._query("SELECT * FROM fills WHERE client_id = ? ORDER BY time, rowid",
                           (client_id,))
        return [FillRow(r[0], r[1], r[2], r[3], pd.Timestamp(r[4]), r[5], r[6], r[7], r[8], r[9])
                for r in rows]

    def last_fill_time(self) -> pd.Timestamp | None:
        """The time of the latest journaled fill (None before the first)."""
        row = self._query("SELECT MAX(time) FROM fills")[0][0]
        return None if row is None else pd.Timestamp(row)

    def set_opening_balances(self, balances: Mapping[str, float], at: object = None) -> None:
        """Record the account before the first fill (once; later calls must not differ);
        ``at``, the time they were read, is kept as the meta ``opened_at``: trades before
        it are in these balances, not fills of the journal."""
        with self._tx() as conn:
            if at is not None:
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('opened_at', ?)", (_ts(at),))
            existing = dict(conn.execute("SELECT asset, amount FROM opening_balances").fetchall())
            if existing:
                if existing != {k: float(v) for k, v in balances.items()}:
                    raise JournalError(f"Journal {self.path} already has opening balances "
                                       f"{existing}; got {dict(balances)}.")
                return
            conn.executemany("INSERT INTO opening_balances VALUES (?, ?)",
                             [(k, float(v)) for k, v in balances.items()])

    def opening_balances(self) -> dict[str, float]:
        return dict(self._query("SELECT asset, amount FROM opening_balances"))

    def positions(self) -> dict[str, float]:
        """Holdings per asset derived from the opening balances and the fills alone."""
        held = self.opening_balances()
        for symbol, side, price, quantity, fee, fee_asset in self._query(
                "SELECT symbol, side, price, quantity, fee, fee_asset FROM fills ORDER BY rowid"):
            base, quote = split_symbol(symbol)
            sign = 1.0 if side == "buy" else -1.0
            held[base] = held.get(base, 0.0) + sign * quantity
            held[quote] = held.get(quote, 0.0) - sign * quantity * price
            held[fee_asset] = held.get(fee_asset, 0.0) - fee
        return held

    # -- errors, breakers, runner state, equity ---------------------------------------------

    def record_error(self, source: str, kind: str, message: object, time: object = None) -> None:
        """Journal an error (scrubbed of secrets)."""
        with self._tx() as conn:
            conn.execute("INSERT INTO errors (time, source, kind, message) VALUES (?, ?, ?, ?)",
                         (_ts(time) if time is not None else _now(), source, kind,
                          _text(str(message))))

    def errors(self, limit: int = 50) -> list[dict[str, Any]]:
        return [{"time": pd.Timestamp(r[0]), "source": r[1], "kind": r[2], "message": r[3]}
                for r in self._query("SELECT time, source, kind, message FROM errors "
                                     "ORDER BY id DESC LIMIT ?", (limit,))]

    def record_breaker(self, rule: str, action: str, detail: object, time: object = None) -> None:
        """Journal a breaker trip (which rule, what it did, why)."""
        with self._tx() as conn:
            conn.execute("INSERT INTO breaker_events (time, rule, action, detail) "
                         "VALUES (?, ?, ?, ?)",
                         (_ts(time) if time is not None else _now(), rule, action, _text(detail)))

    def breaker_events(self) -> list[dict[str, Any]]:
        return [{"time": pd.Timestamp(r[0]), "rule": r[1], "action": r[2], "detail": r[3]}
                for r in self._query("SELECT time, rule, action, detail FROM breaker_events "
                                     "ORDER BY id")]

    def state(self) -> tuple[RunnerState, str, pd.Timestamp]:
        """``(state, reason, since)`` of the runner."""
        state, reason, since = self._query("SELECT state, reason, since FROM runner_state")[0]
        return RunnerState(state), reason, pd.Timestamp(since)

    def set_state(self, state: str | RunnerState, reason: str, time: object = None) -> bool:
        """Move the runner state machine; returns False when already in ``state``."""
        when = _ts(time) if time is not None else _now()
        with self._tx() as conn:
            old = conn.execute("SELECT state FROM runner_state").fetchone()[0]
            if old == getattr(state, "value", state):
                return False
            new = check_runner_transition(old, state)
            conn.execute("UPDATE runner_state SET state = ?, reason = ?, since = ?",
                         (new.value, _text(reason), when))
            conn.execute("INSERT INTO state_changes (time, old, new, reason) VALUES (?,?,?,?)",
                         (when, old, new.value, _text(reason)))
        return True

    def state_changes(self) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in self._query(
            "SELECT old, new, reason FROM state_changes ORDER BY id")]

    def record_checkpoint(self, time: object, trader_state: Mapping[str, Any], last_fill: int,
                          wakes: list[int]) -> None:
        """The end of a tick: the trader's state, the last fill dispatched, pending wakes."""
        with self._tx() as conn:
            conn.execute("INSERT INTO checkpoints (time, trader_state, last_fill, wakes, "
                         "recorded_at) VALUES (?, ?, ?, ?, ?)",
                         (_ts(time), json.dumps(dict(trader_state), default=_json_default),
                          int(last_fill), json.dumps(list(wakes)), _now()))

    def last_checkpoint(self) -> dict[str, Any] | None:
        rows = self._query("SELECT time, trader_state, last_fill, wakes FROM checkpoints "
                           "ORDER BY id DESC LIMIT 1")
        if not rows:
            return None
        time, state, last_fill, wakes = rows[0]
        return {"time": pd.Timestamp(time), "trader_state": json.loads(state),
                "last_fill": int(last_fill), "wakes": json.loads(wakes)}

    def fills_after(self, rowid: int) -> list[tuple[int, FillRow]]:
        """Fills journaled after ``rowid`` (the dispatch cursor), with their row ids."""
        rows = self._query("SELECT rowid, * FROM fills WHERE rowid > ? ORDER BY rowid", (rowid,))
        return [(r[0], FillRow(r[1], r[2], r[3], r[4], pd.Timestamp(r[5]), r[6], r[7], r[8],
                               r[9], r[10])) for r in rows]

    def fill_rowid(self, symbol: str, trade_id: str) -> int:
        rows = self._query("SELECT rowid FROM fills WHERE symbol = ? AND trade_id = ?",
                           (symbol, str(trade_id)))
        return int(rows[0][0]) if rows else 0

    def record_equity(self, time: object, equity: float, cash: float,
                      marks: Mapping[str, float]) -> None:
        """Mark the account at ``time`` (upsert: one row per time)."""
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO equity VALUES (?, ?, ?, ?)",
                         (_ts(time), float(equity), float(cash), json.dumps(dict(marks))))

    def equity(self) -> pd.Series:
        rows = self._query("SELECT time, equity FROM equity ORDER BY time")
        return pd.Series([r[1] for r in rows], index=pd.DatetimeIndex([r[0] for r in rows]),
                         name="equity", dtype=float)

    def todays_pnl(self, now: object = None) -> float:
        """Equity now minus equity at the start of the current UTC day (0.0 without marks)."""
        curve = self.equity()
        if curve.empty:
            return 0.0
        stamp = pd.Timestamp(now) if now is not None else curve.index[-1]
        day_start = stamp.floor("D")
        before = curve[curve.index <= day_start]
        start_value = before.iloc[-1] if len(before) else curve.iloc[0]
        return float(curve[curve.index <= stamp].iloc[-1] - start_value)


_ORDER_COLUMNS = ("client_id, decision_id, bar_time, symbol, side, type, quantity, limit_price, "
                  "stop_price, leg, parent_client_id, status, exchange_order_id, "
                  "filled_quantity, average_price, misses")


def _order_row(r: tuple) -> OrderRow:
    return OrderRow(r[0], r[1], pd.Timestamp(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                    r[10], OrderStatus(r[11]), r[12], r[13], r[14], r[15])


def note_scores(notes: list[dict]) -> dict[str, float]:
    """The score of each pick a decision's notes list (``values["picks"]``: (symbol, rank,
    score, ...)), as :meth:`Journal.record_decision` journals them."""
    out: dict[str, float] = {}
    for note in notes:
        for pick in note["values"].get("picks", []) or []:
            if isinstance(pick, list | tuple) and len(pick) >= 3:
                out[str(pick[0])] = float(pick[2])
    return out
