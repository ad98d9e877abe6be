"""PaperBroker: live (or recorded) candles, the SimBroker's fill rules, its own journal.

The paper broker is a :class:`~core_engine.trading.sim.SimBroker` — the one fill and cost
model of every simulation — whose candles arrive as time passes:

* **recorded** candles (a Panel or a dict of candle frames): the runner's clock decides what
  is known; this is how the runner is proven equal to ``replay``/``walk_forward``;
* a **live source**: a callable ``fetch(symbol, timeframe, since) -> candle frame`` (for
  example :func:`ccxt_candle_source`, public market data through ccxt). Closed candles are
  appended as they close; a market order placed at ``t`` fills at the open of the candle
  starting at ``t`` as soon as that candle is known (the SimBroker rule for a missing open).

The runner calls :meth:`PaperBroker.sync` at each tick: every candle that closed since the
last tick is matched (resting orders, stops, targets), and the clock moves to the open of the
candle starting at ``t``. After the end of a bounded run, :meth:`PaperBroker.open_next`
fills the market orders still waiting at the next opens, as ``replay`` does. With
``journal_path``, the simulated account (cash, holdings, orders,
fills) is saved after every sync in its own SQLite file and restored at start, so a paper run
can stop and resume for days.

Implementation note: ``SimBroker`` has no public way to extend its candles without resetting
the account, so :meth:`_extend` carries the account across ``bind`` (a request for a public
``extend`` is in the report of issue 12).
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core_engine._validate import check_path
from core_engine.data.panel import Panel
from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError
from core_engine.trading.sim import SimBroker

__all__ = ["PaperBroker", "ccxt_candle_source"]

_ACCOUNT = ("cash", "holdings", "_orders", "_live", "_highest", "_placed_row", "_fills",
            "_fill_rows", "_used", "_row", "_phase", "_seq", "mark_equity", "_fill_steps")
_SINCE = {"_fill_steps": dict}  # (an account saved before it was kept: its default)


class PaperBroker(SimBroker):
    """A SimBroker fed as time passes, with a saved account (see the module docstring).

    Parameters
    ----------
    candles : Panel or dict of candle frames, optional
        Recorded candles (all known in advance; the clock reveals them).
    source : callable, optional
        ``source(symbol, timeframe, since)`` returning candles from ``since`` (inclusive);
        with ``symbols`` and ``timeframe``. Give ``candles`` or ``source``.
    symbols : list of str, optional
    timeframe : str, optional
    history : int, default 500
        Candles fetched before the first tick (warm-up of the features).
    journal_path : str or Path, optional
        The paper account's own SQLite file.
    **sim : SimBroker parameters (``initial_cash``, ``fee_bps``, ``slippage_bps``, ...).
    """

    def __init__(self, candles: Any = None, *, source: Callable[..., pd.DataFrame] | None = None,
                 symbols: list[str] | None = None, timeframe: str | None = None,
                 history: int = 500, journal_path: str | Path | None = None,
                 **sim: Any) -> None:
        if (candles is None) == (source is None):
            raise ConfigError("PaperBroker needs recorded 'candles' or a live 'source', "
                              "exactly one.")
        super().__init__(None, **sim)
        self.source = source
        self.history = int(history)
        self.journal_path = (None if journal_path is None else
                             check_path(journal_path, "journal_path", "PaperBroker", kind="file"))
        self.synced_to: pd.Timestamp | None = None
        if source is not None:
            if not symbols or not timeframe:
                raise ConfigError("PaperBroker with a live 'source' needs 'symbols' and "
                                  "'timeframe'.")
            self._symbols, self._timeframe = list(symbols), timeframe
            self._frames: dict[str, pd.DataFrame] = {}
        else:
            self.bind(candles)
            self._row = 0
        self._restore()

    # -- persistence ------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        assert self.journal_path is not None
        self.journal_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.journal_path)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS paper_account (id INTEGER PRIMARY KEY "
                     "AUTOINCREMENT, time TEXT NOT NULL, account BLOB NOT NULL)")
        return conn

    def _save(self) -> None:
        if self.journal_path is None:
            return
        state = {name: getattr(self, name, None) for name in _ACCOUNT}
        state["synced_to"] = self.synced_to
        state["frames"] = getattr(self, "_frames", None)
        with self._db() as conn:
            conn.execute("INSERT INTO paper_account (time, account) VALUES (?, ?)",
                         (str(self.synced_to), pickle.dumps(state)))
            conn.execute("DELETE FROM paper_account WHERE id < (SELECT MAX(id) - 10 FROM "
                         "paper_account)")
        conn.close()

    def _restore(self) -> None:
        if self.journal_path is None or not self.journal_path.exists():
            return
        conn = self._db()
        row = conn.execute("SELECT account FROM paper_account ORDER BY id DESC LIMIT 1").fetchone()
        conn.close()
        if row is None:
            return
        state = pickle.loads(row[0])  # our own file, written by _save
        if state.get("frames") is not None:
            self._frames = state["frames"]
            self._rebind()
        for name in _ACCOUNT:
            setattr(self, name, state[name] if name in state else _SINCE[name]())
        self.synced_to = state["synced_to"]

    # -- candles ----------------------------------------------------------------------------

    def _rebind(self) -> None:
        panel = Panel.from_frames(self._frames, self._timeframe)
        saved = {name: getattr(self, name) for name in _ACCOUNT if hasattr(self, name)}
        self.bind(panel)
        if saved.get("holdings") is not None and len(saved["holdings"]) == panel.n_symbols:
            for name, value in saved.items():
                setattr(self, name, value)

    def _fetch(self, t: pd.Timestamp) -> None:
        assert self.source is not None
        step = pd.Timedelta(timeframe_ns(self._timeframe), unit="ns")
        changed = False
        for symbol in self._symbols:
            old = self._frames.get(symbol)
            since = (t - step * self.history if old is None or old.empty
                     else old["timestamp"].iloc[-1])
            new = self.source(symbol, self._timeframe, since)
            new = new[new["timestamp"] <= t]  # closed candles and the one opening at t
            merged = new if old is None else pd.concat(
                [old[old["timestamp"] < since], new]).drop_duplicates("timestamp", keep="last")
            self._frames[symbol] = merged.sort_values("timestamp").reset_index(drop=True)
            changed = True
        if changed:
            self._rebind()

    def known_panel(self) -> Panel:
        """The candles closed by now (what a trader may read)."""
        return self._require().slice_rows(0, self._row)

    # -- the clock --------------------------------------------------------------------------

    def sync(self, t: Any, on_step: Callable[[], None] | None = None) -> None:
        """Match every candle that closed by ``t`` and move to the open at ``t``.

        ``on_step`` is called after each phase (so the runner can dispatch fills in order).
        """
        t = pd.Timestamp(t)
        if self.synced_to is not None and t <= self.synced_to:
            return
        self._syncing = True
        try:
            self._sync(t, on_step)
        finally:
            self._syncing = False

    def _sync(self, t: pd.Timestamp, on_step: Callable[[], None] | None) -> None:
        if self.source is not None:
            self._fetch(t)
        panel = self._require()
        index = panel.index.asi8
        target = int(np.searchsorted(index, t.value, "left"))
        row = self._row
        if self.synced_to is not None and row < len(index) and self._phase == "open":
            self.match_row(row)
            if on_step:
                on_step()
            row += 1
        while row < target:
            self.begin_row(row)
            if on_step:
                on_step()
            self.match_row(row)
            if on_step:
                on_step()
            row += 1
        self.begin_row(target) if target < len(index) else setattr(self, "_row", target)
        if on_step:
            on_step()
        self.synced_to = t
        self._save()

    def open_next(self, on_step: Callable[[], None] | None = None) -> bool:
        """Move to the open of the next candle and fill there the market orders still
        waiting (a remainder cut by ``max_volume_share``, an outage's), as ``replay`` does
        after its end: resting orders are not matched. False, nothing moved, when there is
        no next candle (the data's end; with a live source: not published yet)."""
        if self.source is not None:
            self._fetch(self._now_at(self._row) + pd.Timedelta(self._step, unit="ns"))
        row = self._row + 1
        if row >= self._require().n_times:
            return False
        self._syncing = True
        try:
            self.begin_row(row, resting=False)
            if on_step:
                on_step()
        finally:
            self._syncing = False
        self.synced_to = self._now_at(row)
        self._save()
        return True

    def place(self, order: Any) -> Any:
        """SimBroker's ``place``; the account is saved before the answer is returned."""
        try:
            return super().place(order)
        finally:
            self._save()

    def cancel(self, client_id: str) -> Any:
        try:
            return super().cancel(client_id)
        finally:
            self._save()

    def now(self) -> pd.Timestamp:
        if self.synced_to is not None and not getattr(self, "_syncing", False):
            return self.synced_to
        return super().now()


def ccxt_candle_source(session: Any) -> Callable[[str, str, Any], pd.DataFrame]:
    """A live candle source over a :class:`~core_engine.live.ccxt_session.CCXTSession`
    (public market data; the forming candle is dropped: only closed candles and the open of
    the current one are used by the paper broker)."""

    def fetch(symbol: str, timeframe: str, since: Any) -> pd.DataFrame:
        ms = int(pd.Timestamp(since).value // 1_000_000)
        rows = session.call("fetch_ohlcv", session.exchange.fetch_ohlcv, symbol, timeframe,
                            ms, 1000)
        frame = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close",
                                            "volume"])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
        return frame.astype({c: float for c in ("open", "high", "low", "close", "volume")})

    return fetch
