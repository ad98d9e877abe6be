"""Runner: the live loop — reconcile, then at each bar close act, journaling everything first.

``Runner(trader, broker, journal, clock=...)`` drives any :class:`~core_engine.trading.Trader`
through any :class:`~core_engine.trading.broker.Broker` (:class:`PaperBroker`,
:class:`CCXTBroker`). The broker is wrapped in a :class:`JournaledBroker`, so every order
intent is journaled before its network call. A tick at time ``t`` (a bar close of the
trader's cadence or a time it asked for, plus ``settle`` seconds on a wall clock):

1. the kill switch: the journal's runner state (``core-engine live halt|flatten|resume``
   writes it) and the files ``<journal>.halt`` / ``<journal>.flatten`` (consumed when read);
2. the broker's clock moves to ``t`` (a paper broker matches the candles that closed);
3. every order not final in the journal is looked up by client id; an ``unknown`` or ``new``
   one not found ``max_misses`` times over at least ``min_miss_age`` is marked ``rejected``
   ("not placed");
4. fills are imported by trade id (applied once) and ``on_fill`` is called for each new one;
   a stop cancelled for an exit that did not fill is placed again (except in ``flatten``;
   :meth:`JournaledBroker.restore_protection`);
5. ``running``: the decision is journaled and ``on_bar`` called when due; ``halted``:
   nothing new; ``flatten``: every open order cancelled and every position sold;
6. the account is marked (journal), the breakers (drawdown, daily loss) checked, a
   checkpoint (the trader's state, the fill cursor, pending wake-ups) written and the HTML
   status page rewritten.

On start the runner **reconciles** before it trades: it resolves every non-final order,
imports the fills missed while it was down, restores the trader from its checkpoint and
compares the broker's balances with the journal's positions; beyond ``tolerance`` it raises
:class:`ReconciliationError` and sends nothing. A restarted runner reconciles when it comes
up (at the last candle open), not at its next tick: what happened while it was down is
handed then, and from then on each fill is handed at its own step, as without the stop. A transient exchange failure while it
reconciles (unavailable, rate limited) is journaled and the start tried again after a
back-off, a bounded number of times (then one clear error, :class:`BrokerUnavailable`).
"""

from __future__ import annotations

import heapq
import logging
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core_engine._config import keyword_checked
from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import (
    BrokerUnavailable,
    ConfigError,
    CoreEngineError,
    ExchangeError,
    OrderNotFound,
    OrderRejected,
    RateLimited,
)
from core_engine.live.clock import SimulatedClock, WallClock
from core_engine.live.journal import Journal, note_scores
from core_engine.live.journaled import JournaledBroker
from core_engine.live.keys import SCRUBBER, protect_logging
from core_engine.live.notify import Notification, Notifier, notify_all
from core_engine.live.state import RunnerState
from core_engine.live.status import write_status_page
from core_engine.live.view import LiveView
from core_engine.trading.orders import Fill, Order, OrderSide, OrderStatus, client_order_id
from core_engine.trading.trader import Context, Records, Trader

__all__ = ["Breakers", "LiveView", "ReconciliationError", "Runner", "SimulatedClock",
           "WallClock"]

_log = logging.getLogger(__name__)


class ReconciliationError(CoreEngineError, RuntimeError):
    """The broker and the journal disagree beyond the tolerance: the runner will not trade."""


@keyword_checked
@dataclass(frozen=True)
class Breakers:
    """Drawdown and daily-loss breakers (the fields of ``PortfolioRules``)."""

    max_drawdown_pct: float | None = None
    liquidate_on_drawdown: bool = False
    drawdown_halt_for: str | None = None
    daily_loss_limit_pct: float | None = None
    liquidate_on_daily_loss: bool = False

    @classmethod
    def from_rules(cls, rules: Any) -> Breakers:
        """Read the breaker fields of a ``PortfolioRules`` (or any object having them)."""
        if rules is None or isinstance(rules, Breakers):
            return rules or cls()
        values: dict[str, Any] = {name: getattr(rules, name) for name in
                                  cls.__dataclass_fields__ if hasattr(rules, name)}
        return cls(**values)


@keyword_checked
class Runner:
    """Run ``trader`` on ``broker``, journaling to ``journal`` (see the module docstring).

    Parameters
    ----------
    trader : Trader
    broker : Broker
        A :class:`~core_engine.live.paper.PaperBroker`, a
        :class:`~core_engine.live.ccxt_broker.CCXTBroker` or any Broker.
    journal : Journal or str or Path
    clock : SimulatedClock or WallClock, optional
        Default: the wall clock.
    symbols : list of str
        The universe the trader sees.
    timeframe : str, default "5m"
        The candles' timeframe.
    poll : str, optional
        How often the runner wakes between the trader's decisions (default: its cadence).
    settle : str, default "2s"
        Wait after a bar close before acting (the exchange finishes the candle).
    history : int, optional
        Closed candles read per tick (default 500; None: all the broker has).
    rules : PortfolioRules or Breakers, optional
        Drawdown / daily-loss breakers; they move the runner to ``halted`` (``flatten`` when
        the rule liquidates), journaled and notified.
    notifiers : iterable of Notifier
    tolerance : float, default 1e-6
        Balance agreement needed at start: ``|broker - journal| <= tolerance * max(1, |x|)``.
    max_misses : int, default 3
        Lookups that must fail (spread over ``min_miss_age``) before an order whose create
        timed out is declared never placed; also the ticks at which a fill is handed to
        ``on_fill`` while an exchange failure interrupts it, before giving up (journaled).
    min_miss_age : str, default "0s"
    end : time, optional
        The last time of a bounded run (a replay); the trader sees it as ``ctx.end``;
        :meth:`run` to ``end`` ticks last at ``end`` (at the open of the candle it falls
        in, as replay's call at the end time), unless the run started after it. After that
        tick, while market orders still wait (an exit cut by the volume cap, an outage),
        the paper account moves on candle by candle and each fill is handed to ``on_fill``
        at its step, as replay finishes (no ``on_bar``, no resting order matched), until
        they fill or the data end (a live source: at most ``exit_wait_candles``).
    status_page : bool, default True
        Rewrite ``<journal>.html`` after every tick.
    """

    def __init__(self, trader: Trader, broker: Any, journal: Journal | str | Path, *,
                 clock: Any = None, symbols: Iterable[str], timeframe: str = "5m",
                 poll: str | None = None, settle: str = "2s", history: int | None = 500,
                 rules: Any = None, notifiers: Iterable[Notifier] = (),
                 tolerance: float = 1e-6, max_misses: int = 3, min_miss_age: str = "0s",
                 end: Any = None, status_page: bool = True) -> None:
        if not isinstance(trader, Trader):
            raise ConfigError(f"Runner needs a Trader. Got {type(trader).__name__}.")
        self.trader = trader
        self.journal = journal if isinstance(journal, Journal) else Journal(journal)
        self.clock = clock if clock is not None else WallClock()
        self.timeframe = timeframe
        self.step_ns = timeframe_ns(timeframe, name="timeframe")
        every = trader.every_ns
        self.poll_ns = timeframe_ns(poll, name="poll") if poll else (every or self.step_ns)
        self.every_ns = every or self.step_ns
        self.settle = pd.Timedelta(settle)
        self.breakers = Breakers.from_rules(rules)
        self.notifiers = list(notifiers)
        self.tolerance = float(tolerance)
        self.max_misses = int(max_misses)
        self.min_miss_age = pd.Timedelta(min_miss_age)
        self.status_page = status_page
        self.now: pd.Timestamp = pd.Timestamp(self.clock.now())
        self._decision: int | None = None
        self.broker = JournaledBroker(broker, self.journal, lambda: self.now,
                                      lambda: self._decision)
        self.view = LiveView(self.broker, symbols, timeframe, history, end)
        self.records = Records()
        self.ctx = Context(self.broker, self.view, trader, self.records)
        self.fill_cursor = 0
        self._notified = 0  # the last fill notified (a fill handed again is not re-notified)
        self._fill_tries: dict[int, tuple[int, int]] = {}  # fill rowid: (failures, tick)
        self._foreign: set[tuple[str, str]] = set()  # exchange orders that are not ours
        self._in_sync = False
        self.fill_every = 12
        self.fill_margin = pd.Timedelta(timeframe_ns(timeframe), unit="ns") * 12
        self._fills_since: pd.Timestamp | None = None
        self.last_tick: pd.Timestamp | None = None
        self.started = False
        self.ticks = 0

    # -- start and reconciliation -----------------------------------------------------------

    def start(self) -> None:
        """Reconcile with the broker, restore the trader, call ``on_start`` on a first run.

        Raises
        ------
        ReconciliationError
            Balances and journal positions disagree beyond the tolerance (nothing is sent).
        """
        protect_logging()
        journal = self.journal
        journal.set_meta("trader_id", self.trader.trader_id)
        journal.set_meta("broker", type(self.broker.broker).__name__)
        sync = getattr(self.broker.broker, "sync", None)
        if sync is not None:
            sync(self.now, on_step=None)
        first_run = journal.last_checkpoint() is None and not journal.orders()
        if not journal.opening_balances():
            clock = getattr(self.broker.broker, "now", None)
            journal.set_opening_balances(self.broker.balances(),
                                         at=clock() if clock is not None else self.now)
        checkpoint = journal.last_checkpoint()
        if checkpoint is not None:
            self.trader.set_state(checkpoint["trader_state"])
            self.fill_cursor = self._notified = checkpoint["last_fill"]
            self.view.wakes = list(checkpoint["wakes"])
            heapq.heapify(self.view.wakes)
            self.last_tick = checkpoint["time"]
        for order in journal.orders(final=False):  # crashed between intent and answer
            if order.status is OrderStatus.NEW:
                journal.update_order(order.client_id, OrderStatus.UNKNOWN, event="restart",
                                     detail="the runner stopped between intent and answer",
                                     time=self.now)
        self._resolve_orders()
        self._import_fills(dispatch=False)  # the trader hears of them once reconciled:
        self._check_balances()              # a refusal sends nothing
        self._dispatch()
        self.view.begin_tick(self.now)
        if first_run:
            self.ctx._call("on_start", lambda: self.trader.on_start(self.ctx))
            self._import_fills()
        self.started = True

    #: Tries of ``start`` after a transient exchange failure, and the first back-off (s).
    start_retries = 5
    start_backoff = 2.0

    def _start_retrying(self) -> None:
        """:meth:`start`, tried again after a transient exchange failure (unavailable, rate
        limited) with a jittered back-off doubling from ``start_backoff`` seconds (at most
        60 s, ``start_retries`` times, each failure journaled); then
        :class:`~core_engine.errors.BrokerUnavailable` with one line saying so. A retry is
        safe: a failure before the trader hears of fills left nothing sent (the checkpoint
        is read again), and a first run whose ``on_start`` placed orders is no longer one."""
        for attempt in range(self.start_retries + 1):
            try:
                self.start()
                return
            except (BrokerUnavailable, RateLimited) as exc:
                self._error("start", exc)
                if attempt == self.start_retries:
                    raise BrokerUnavailable(
                        f"The runner could not start: the exchange failed {attempt + 1} times "
                        f"while it reconciled (the last: {SCRUBBER.scrub(str(exc))}). Try again "
                        "later (each failure is in the journal's errors).") from None
            delay = min(60.0, self.start_backoff * 2 ** attempt) * (0.5 + random.random() / 2)
            self.clock.sleep_until(pd.Timestamp(self.clock.now()) + pd.Timedelta(seconds=delay))

    def _check_balances(self) -> None:
        held = self.broker.balances()
        journal = self.journal.positions()
        bad = []
        for asset in sorted(set(held) | set(journal)):
            a, b = float(held.get(asset, 0.0)), float(journal.get(asset, 0.0))
            if abs(a - b) > self.tolerance * max(1.0, abs(a), abs(b)):
                bad.append(f"{asset}: broker {a:.10g}, journal {b:.10g}")
        if bad:
            message = ("Reconciliation failed: the broker's balances differ from the journal's "
                       "positions beyond the tolerance " f"{self.tolerance:g} (" + "; ".join(bad)
                       + "). Nothing was sent. Find the cause (a manual trade, a deposit, a "
                       "journal of another account) before trading again.")
            self.journal.record_error("reconcile", "ReconciliationError", message, time=self.now)
            notify_all(self.notifiers, Notification("error", "reconciliation failed", self.now,
                                                    {"differences": bad}), self.journal)
            raise ReconciliationError(message)

    def _resolve_orders(self) -> bool:
        """Bring every non-final order up to date; returns whether any of them changed.

        One ``open_orders`` call covers the resting orders (an ``unknown`` one listed there
        exists: it is never declared not placed); the others are looked up by client id,
        with bounded misses for those whose create timed out.
        """
        rows = self.journal.orders(final=False)
        if not rows:
            return False
        try:
            listed = {o.client_id: o for o in self.broker.broker.open_orders()}
        except ExchangeError as exc:
            self._error("resolve", exc)
            return True
        changed = False
        for row in rows:
            theirs = listed.get(row.client_id)
            if theirs is not None:  # open on the exchange: it exists, whatever its lookup says
                if theirs.filled_quantity != row.filled_quantity or theirs.status != row.status:
                    changed = True
                    self.broker._merge(theirs)
                continue
            changed = True
            try:
                self.broker.refresh(row.client_id)
            except OrderNotFound:
                if row.status not in (OrderStatus.UNKNOWN, OrderStatus.NEW) or \
                        self.journal.fills_of(row.client_id):  # it traded: it exists
                    continue
                misses = self.journal.record_miss(row.client_id, time=self.now)
                age = self.now - pd.Timestamp(row.bar_time)
                if misses >= self.max_misses and age >= self.min_miss_age:
                    self.journal.update_order(
                        row.client_id, OrderStatus.REJECTED, event="not_placed",
                        detail=f"not found by client id in {misses} lookups", time=self.now)
                    order = self.broker.known(row.client_id)
                    if order is not None:
                        order.status, order.reason = OrderStatus.REJECTED, "not_placed"
            except ExchangeError as exc:
                self._error("resolve", exc)
        return changed

    # -- fills ------------------------------------------------------------------------------

    def _import_fills(self, dispatch: bool = True) -> None:
        if self._fills_since is None:
            last = self.journal.last_fill_time()
            self._fills_since = last - self.fill_margin if last is not None else None
            opened = self.journal.meta("opened_at")  # older trades: in the opening balances
            if opened is not None and (self._fills_since is None
                                       or self._fills_since < pd.Timestamp(opened)):
                self._fills_since = pd.Timestamp(opened)
        for fill in self.broker.fills(self._fills_since):
            base, quote = fill.symbol.split("/")
            cid = fill.client_id or None
            order_id = getattr(fill, "order_id", None)
            if cid is None and order_id:  # an order the broker did not know (a restart)
                cid = self.journal.client_id_of(fill.symbol, order_id) or \
                    self._owner(fill.symbol, str(order_id))
            self.journal.record_fill(
                symbol=fill.symbol, trade_id=fill.trade_id, side=OrderSide(fill.side).value,
                time=fill.time, price=fill.price, quantity=fill.quantity, fee=fill.fee,
                fee_asset=getattr(fill, "fee_asset", None) or quote.split(":")[0],
                client_id=cid, liquidity=fill.liquidity)
            # re-read a margin back: an exchange may report a trade late
            since = fill.time - self.fill_margin
            if self._fills_since is None or since > self._fills_since:
                self._fills_since = since
        if dispatch:
            self._dispatch()

    def _owner(self, symbol: str, order_id: str) -> str | None:
        """Our client id of the order of a trade the journal cannot attribute, asked of the
        exchange once per order; an order declared never placed that traded is corrected
        (journaled as an error: the verdict was wrong)."""
        if (symbol, order_id) in self._foreign:
            return None
        lookup = getattr(self.broker.broker, "order_by_exchange_id", None)
        try:
            theirs = lookup(symbol, order_id) if lookup is not None else None
        except ExchangeError as exc:  # asked again at the next read of the trades
            self._error("resolve", exc)
            return None
        row = self.journal.order(theirs.client_id) if theirs is not None else None
        if theirs is None:
            return None  # not found now: asked again at the next read
        if row is None:
            self._foreign.add((symbol, order_id))  # a manual trade: asked once
            return None
        if row.is_final and row.status is not theirs.status and \
                self.journal.order_events(row.client_id)[-1][0] == "not_placed":
            price = theirs.average_price if math.isfinite(theirs.average_price) else None
            self.journal.found_late(row.client_id, theirs.status,
                                    filled_quantity=theirs.filled_quantity,
                                    average_price=price, exchange_order_id=theirs.exchange_id,
                                    time=self.now)
            ours = self.broker.known(row.client_id)
            if ours is not None:
                ours.status, ours.reason = theirs.status, ""
                ours.filled_quantity, ours.average_price = (theirs.filled_quantity,
                                                            theirs.average_price)
                ours.exchange_id = theirs.exchange_id
            self._error("resolve", CoreEngineError(
                f"order {row.client_id} was declared never placed but it traded on the "
                f"exchange (order {order_id}); now {theirs.status.value}"))
        return row.client_id

    def _dispatch(self) -> None:
        """Call ``on_fill`` for every journaled fill after the cursor, in journal order.

        Outside a paper sync, ``ctx.now`` is the fill's time while ``on_fill`` runs (a paper
        broker's: the time of the sync step that made it, the ``ctx.now`` of the sync), so
        the orders it places (a stop after an entry) get the same client ids when a restart
        dispatches the fill again.
        """
        tick = self.now
        for rowid, row in self.journal.fills_after(self.fill_cursor):
            cid = row.client_id
            order = self.broker.known(cid) if cid else None
            if cid is None or order is None:
                self.fill_cursor = rowid
                continue  # not one of this trader's orders (a manual trade)
            if not order.is_final:
                self.broker.refresh(cid, strict=False)
            fill = Fill(trade_id=row.trade_id, client_id=cid, symbol=row.symbol,
                        side=OrderSide(row.side), time=row.time, price=row.price,
                        quantity=row.quantity, fee=row.fee, liquidity=row.liquidity or "taker")
            if rowid > self._notified:
                self._notified = rowid
                notify_all(self.notifiers, Notification(
                    "fill", f"{row.side} {row.quantity:g} {row.symbol} at {row.price:g}",
                    row.time, {"client_id": row.client_id, "trade_id": row.trade_id,
                               "fee": row.fee, "fee_asset": row.fee_asset}), self.journal)
            tries, last = self._fill_tries.get(rowid, (0, -1))
            if last == self.ticks:
                return  # it failed in this tick already: the next tick tries again
            if not self._in_sync:  # a paper fill: the time of the sync step that made it
                step = getattr(self.broker.broker, "fill_step_time", None)
                at = step(row.trade_id) if step is not None else None
                self.now = row.time if at is None else at
            legs = dict(self.ctx._legs)
            try:
                handled = self._on_fill(fill)
            finally:
                self.now = tick
            if not handled:  # an exchange failure: this fill (and those after) next tick,
                tries += 1   # its orders under the same client ids; max_misses times
                if tries < self.max_misses:
                    self.ctx._legs = legs
                    self._fill_tries[rowid] = (tries, self.ticks)
                    return
                self._error("on_fill", CoreEngineError(
                    f"gave up handing trade {row.trade_id} of {cid} to on_fill after {tries} "
                    "exchange failures; the fills after it are handed on"))
            self._fill_tries.pop(rowid, None)
            self.fill_cursor = rowid

    def _on_fill(self, fill: Fill | None, late: Iterable[str] = ()) -> bool:
        """Run ``on_fill`` (``fill`` None: the follow-ups of the orders ``late``, see
        ``Context._follow_late``); False when an exchange failure interrupted it."""
        act = (lambda: self.ctx._hand_fill(fill)) if fill is not None else \
            (lambda: self.ctx._follow_late([self.broker.known(cid) for cid in late]))
        try:
            self.ctx._call("on_fill", act)
        except CoreEngineError as exc:
            self._trader_failed("on_fill", exc)
            return not _exchange_failure(exc)
        return True

    def _trader_failed(self, hook: str, exc: CoreEngineError) -> None:
        """An exchange failure inside a hook is journaled and the hook runs again at the next
        tick; any other failure of the trader halts the runner."""
        self._error("trader", exc)
        if _exchange_failure(exc):
            self.view.wake_at(self.now + pd.Timedelta(self.poll_ns, unit="ns"))
            return
        self._set_state(RunnerState.HALTED, f"trader failed in {hook}: {type(exc).__name__}")

    def _on_broker_step(self) -> None:
        """During a paper sync: fills at the time of the candle that produced them, handed
        with the market view of that time (as ``replay``: the candles closed by that step,
        not those of the first fill of the tick; the view is renewed when the clock moved)."""
        self._in_sync = True
        try:
            self.now = self.broker.broker.now()
            if self.view._now != self.now:
                self.view.begin_tick(self.now)
            self._import_fills()
        finally:
            self._in_sync = False

    # -- one tick ---------------------------------------------------------------------------

    def kill_switch_path(self, action: str) -> Path:
        """``<journal>.halt`` or ``<journal>.flatten``: create the file to pull the switch."""
        return self.journal.path.with_name(self.journal.path.name + f".{action}")

    def _read_kill_switch(self) -> RunnerState:
        for action, state in (("flatten", RunnerState.FLATTEN), ("halt", RunnerState.HALTED)):
            path = self.kill_switch_path(action)
            if path.exists():
                reason = path.read_text(encoding="utf-8", errors="replace").strip() or \
                    f"kill switch file {path.name}"
                self._set_state(state, reason[:500])
                path.unlink(missing_ok=True)
                break
        return self.journal.state()[0]

    def _set_state(self, state: RunnerState, reason: str) -> None:
        if self.journal.set_state(state, reason, time=self.now):
            notify_all(self.notifiers, Notification("state", f"runner {state.value}", self.now,
                                                    {"reason": reason}), self.journal)

    def _due(self, t: pd.Timestamp) -> bool:
        due = t.value % self.every_ns == 0
        wakes = self.view.wakes
        while wakes and wakes[0] <= t.value:
            heapq.heappop(wakes)
            due = True
        return due

    def tick(self, t: Any) -> None:
        """Run one tick at decision time ``t`` (see the module docstring)."""
        t = pd.Timestamp(t)
        if not self.started:
            self.now = t
            self._start_retrying()
        self.now = t
        self.view.begin_tick(t)
        invalidate = getattr(self.broker.broker, "invalidate", None)
        if invalidate is not None:
            invalidate()
        try:
            state = self._read_kill_switch()
            sync = getattr(self.broker.broker, "sync", None)
            if sync is not None:
                sync(t, on_step=self._on_broker_step)
                self.now = t
                self.view.begin_tick(t)
            pending = [row.client_id for row in self.journal.orders(final=False)]
            moved = self._resolve_orders()
            if moved or self.ticks % self.fill_every == 0 or sync is not None:
                self._import_fills()  # something executed (or the periodic safety read)
            else:
                self._dispatch()  # fills whose on_fill an exchange failure interrupted
            self._on_fill(None, pending)  # follow-ups of orders 'filled' after their fills
            self._cancel_orphans()
            if state is not RunnerState.FLATTEN:  # a stop cancelled for an exit that failed
                self.broker.restore_protection()
            self._auto_resume(state)
            self._mark_and_check_breakers()  # on the account at t, before any new entry
            state = self.journal.state()[0]
            due = self._due(t)
            writes = self.broker.writes
            if state is RunnerState.RUNNING and due and self.view.panel().n_times > 0:
                self._decide(t)  # (no closed candle yet: nothing to decide on)
            elif state is RunnerState.FLATTEN:
                self._flatten()
            if self.broker.writes != writes:  # orders went out: read their fills now
                self._import_fills()
        except (BrokerUnavailable, ExchangeError) as exc:
            self._error("tick", exc)
        self.journal.record_checkpoint(t, self.trader.get_state(), self.fill_cursor,
                                       sorted(self.view.wakes))
        self.last_tick = t
        self.ticks += 1
        if self.status_page:
            write_status_page(self.journal, now=t)

    def _decide(self, t: pd.Timestamp) -> None:
        notes_before = len(self.records.notes)
        self._decision = self.journal.record_decision(t, self.trader.trader_id,
                                                      self.view.fingerprint())
        try:
            self.ctx._call("on_bar", lambda: self.trader.on_bar(self.ctx))
        except CoreEngineError as exc:
            self._trader_failed("on_bar", exc)
        finally:
            notes = self.records.notes[notes_before:]
            self.journal.annotate_decision(self._decision, notes=[
                {"text": n["text"], "values": n["values"], "orders": n["orders"]}
                for n in notes], scores=note_scores(notes))
            self._decision = None

    def _cancel_orphans(self) -> None:
        """Emulate one-cancels-the-other where the broker does not: once an order of a group
        is filled (the position closed or protected), cancel the group's other open orders."""
        if getattr(self.broker.broker, "handles_groups", False):
            return
        open_rows = self.journal.orders(final=False)
        groups = {r.parent_client_id for r in open_rows if r.parent_client_id}
        for group in groups:
            members = self.journal.orders(group=group)
            if any(m.status is OrderStatus.FILLED and m.side == "sell" for m in members):
                for m in members:
                    if not m.is_final and m.status is not OrderStatus.UNKNOWN:
                        self.broker.cancel(m.client_id)

    def _flatten(self) -> None:
        """Cancel every open order, sell every position of the universe."""
        for row in self.journal.orders(final=False):
            if row.status is not OrderStatus.UNKNOWN:
                self.broker.cancel(row.client_id)
        balances = self.broker.balances()
        for symbol in self.view.symbols:
            base = symbol.partition("/")[0]
            qty = float(balances.get(base, 0.0))
            if qty <= 0:
                continue
            cid = client_order_id(self.trader.trader_id, self.now, symbol, "flatten")
            if self.journal.order(cid) is not None:
                continue
            try:
                self.broker.place(Order(client_id=cid, symbol=symbol, side=OrderSide.SELL,
                                        quantity=qty, tag="flatten"))
            except OrderRejected as exc:  # e.g. below the exchange minimum: dust stays
                self._error("flatten", exc)

    def _auto_resume(self, state: RunnerState) -> None:
        """End a breaker's halt (or its flatten, once it liquidated) when its rule says so:
        the daily loss limit at the next UTC day, the drawdown after ``drawdown_halt_for``
        (as ``PortfolioRules`` halts entries). A halt or flatten of the operator stays."""
        if state not in (RunnerState.HALTED, RunnerState.FLATTEN):
            return
        _, reason, since = self.journal.state()
        if reason.startswith("breaker daily_loss_limit_pct") and \
                self.now.floor("D") > pd.Timestamp(since).floor("D"):
            self._set_state(RunnerState.RUNNING, "daily loss limit reset: a new UTC day")
        halt_for = self.breakers.drawdown_halt_for
        if reason.startswith("breaker max_drawdown_pct") and halt_for is not None and \
                self.now >= pd.Timestamp(since) + pd.Timedelta(halt_for):
            self._set_state(RunnerState.RUNNING, f"drawdown halt of {halt_for} over")

    def equity(self) -> tuple[float, float, dict[str, float]]:
        """(equity, cash, marks): balances marked at the last closed candles."""
        balances = self.broker.balances()
        quote = str(getattr(self.broker.broker, "quote", None) or
                    self.view.symbols[0].split("/")[1])
        prices = self.view.last_prices()
        marks = {s: float(p) for s, p in zip(self.view.symbols, prices, strict=True)
                 if math.isfinite(p)}
        value = float(balances.get(quote, 0.0))
        for symbol, price in marks.items():
            value += float(balances.get(symbol.partition("/")[0], 0.0)) * price
        return value, float(balances.get(quote, 0.0)), marks

    def _mark_and_check_breakers(self) -> None:
        value, cash, marks = self.equity()
        self.journal.record_equity(self.now, value, cash, marks)
        if self.journal.state()[0] is not RunnerState.RUNNING:
            return
        curve = self.journal.equity()
        b = self.breakers
        if b.max_drawdown_pct is not None and len(curve):
            # as in PortfolioRules, the peak restarts at the equity of the last trip
            trips = [e["time"] for e in self.journal.breaker_events()
                     if e["rule"] == "max_drawdown_pct"]
            peak = float(curve[curve.index >= trips[-1]].max() if trips else curve.max())
            drawdown = (peak - value) / peak * 100 if peak > 0 else 0.0
            if drawdown >= b.max_drawdown_pct:
                self._trip("max_drawdown_pct", b.liquidate_on_drawdown,
                           {"drawdown_pct": round(drawdown, 4), "limit_pct": b.max_drawdown_pct,
                            "peak": peak, "equity": value})
                return
        if b.daily_loss_limit_pct is not None and len(curve):
            before = curve[curve.index <= self.now.floor("D")]
            start = float(before.iloc[-1]) if len(before) else float(curve.iloc[0])
            loss = (start - value) / start * 100 if start > 0 else 0.0
            if loss >= b.daily_loss_limit_pct:
                self._trip("daily_loss_limit_pct", b.liquidate_on_daily_loss,
                           {"loss_pct": round(loss, 4), "limit_pct": b.daily_loss_limit_pct,
                            "day_start_equity": start, "equity": value})

    def _trip(self, rule: str, liquidate: bool, detail: dict[str, Any]) -> None:
        state = RunnerState.FLATTEN if liquidate else RunnerState.HALTED
        self.journal.record_breaker(rule, state.value, detail, time=self.now)
        self._set_state(state, f"breaker {rule} tripped: {detail}")
        notify_all(self.notifiers, Notification("breaker", f"{rule} breaker tripped", self.now,
                                                {"action": state.value, **detail}),
                   self.journal)
        if liquidate:
            self._flatten()

    def _error(self, source: str, exc: BaseException) -> None:
        message = SCRUBBER.scrub(f"{type(exc).__name__}: {exc}")
        _log.warning("%s: %s", source, message)
        self.journal.record_error(source, type(exc).__name__, message, time=self.now)
        notify_all(self.notifiers, Notification("error", f"{source} failed", self.now,
                                                {"error": message}), self.journal)

    # -- the loop ---------------------------------------------------------------------------

    def next_tick(self) -> pd.Timestamp:
        """The next bar close of the poll cadence, or an earlier requested wake-up."""
        after = self.last_tick.value if self.last_tick is not None else self.clock.now().value - 1
        nxt = (after // self.poll_ns + 1) * self.poll_ns
        if self.view.wakes:
            nxt = min(nxt, max(self.view.wakes[0], after + 1))
        return pd.Timestamp(nxt, tz="UTC")

    def run(self, until: Any = None, max_ticks: int | None = None) -> int:
        """Tick until ``until`` (a time) or ``max_ticks``; returns the number of ticks.
        A run to (or past) the runner's ``end`` has a last tick at ``end``."""
        stop = None if until is None else pd.Timestamp(until)
        end = self.view.end
        if end is not None:
            # the end tick is at the open of the candle ``end`` falls in (replay's call at
            # the end time): a sync to a time inside a candle would match that candle,
            # which closes after ``end``, before it closed
            end = pd.Timestamp(end.value // self.step_ns * self.step_ns, tz="UTC")
        checkpoint = None if self.started else self.journal.last_checkpoint()
        if checkpoint is not None:
            # a restart: the first tick is the first tick time after the journal's last
            # complete tick (or a wake-up it asked for), but never earlier than the last bar
            # close before now. So a tick whose checkpoint was saved is not run again, the
            # tick a kill cut short is (its orders deduplicated by client id; its entries'
            # exits are placed now rather than a bar later), and after a long stop the runner
            # acts on the latest closed bar instead of replaying stale decisions.
            latest = self.clock.now().value // self.poll_ns * self.poll_ns
            last = self.last_tick = max(pd.Timestamp(checkpoint["time"]),
                                        pd.Timestamp(latest - 1, tz="UTC"))
            self.view.wakes = list(checkpoint["wakes"])
            heapq.heapify(self.view.wakes)
            # ``start`` reconciles when the process comes up, at the last candle open (what
            # happened while it was down is learned now, and its orders go out now), unless
            # the first tick is that time or earlier (it then runs there, at a tick time).
            # A paper account so caught up moves on in the ticks' syncs, each fill handed at
            # its step, as if the runner had not stopped (test_paper_sync_view.py)
            up = pd.Timestamp(self.clock.now().value // self.step_ns * self.step_ns, tz="UTC")
            first = self._next_in_run(stop, end)
            if max_ticks != 0 and first is not None and \
                    pd.Timestamp(checkpoint["time"]) <= up < first:
                self.now = up
                self._start_retrying()
                self.last_tick = last  # (start read the checkpoint's)
        done = 0
        while max_ticks is None or done < max_ticks:
            t = self._next_in_run(stop, end)
            if t is None:
                break
            self.clock.sleep_until(t + self.settle)
            latest = self._skip_missed(t, stop, end)
            if latest is None:
                break
            if latest != t:  # woke after later ticks were due (the process stalled)
                t = latest
                self.clock.sleep_until(t + self.settle)
            self.tick(t)
            done += 1
        over = end is not None and self.last_tick is not None and self.last_tick >= end
        if over and (done or checkpoint is not None):
            # (a restart after the end tick: a kill while the exits waited)
            self._finish_market_orders()
        return done

    def _skip_missed(self, t: pd.Timestamp, stop: pd.Timestamp | None,
                     end: pd.Timestamp | None) -> pd.Timestamp | None:
        """``t``, or the latest tick due when the process stalled past later ones (as a
        restart acts on the latest closed bar); the skipped ticks are journaled."""
        latest = pd.Timestamp(self.clock.now().value // self.poll_ns * self.poll_ns, tz="UTC")
        if latest <= t:
            return t
        skipped = (latest.value - t.value) // self.poll_ns
        self.journal.record_error(
            "clock", "missed_ticks", f"the process stalled: {skipped} ticks from {t} to "
            f"{latest - pd.Timedelta(self.poll_ns, unit='ns')} were not run; acting on the "
            f"latest closed bar ({latest})", time=self.clock.now())
        self.last_tick = latest - pd.Timedelta(1, unit="ns")
        return self._next_in_run(stop, end)

    def _next_in_run(self, stop: pd.Timestamp | None,
                     end: pd.Timestamp | None) -> pd.Timestamp | None:
        """The next tick of a run to ``stop`` (None: the run is over); ``end`` the end tick.

        A bounded run is read to its end: a last tick there when the cadence does not fall
        on it journals the fills after the last tick (a remainder filling at later opens), as
        replay matches every candle to the end. A run that never reached ``end`` (its first
        tick, or the clock at start, after it) has none: that tick would start a trader at a
        past time (on_start, a decision on the candles of then, sent at today's prices).
        """
        t = self.next_tick()
        if stop is None or t <= stop:
            return t
        last = self.last_tick
        if last is None:
            last = pd.Timestamp(self.clock.now()) - pd.Timedelta(1, unit="ns")
        if end is None or self.view.end > stop or last >= end:
            return None
        return end

    #: Candles a bounded run with a live candle source waits after its end for market orders
    #: still waiting (recorded candles: until they end).
    exit_wait_candles = 288

    def _finish_market_orders(self) -> None:
        """After the end tick: while market orders wait (an exit cut by the volume cap), move
        the paper account on candle by candle and hand each fill at its step, as ``replay``
        finishes (no decision, no resting order matched); bounded by the data's end or
        :attr:`exit_wait_candles`. The account is marked at each step, checkpointed at the
        last (a later run to ``end`` has nothing to do). A run restarted after its end tick
        (killed while the exits waited) goes on from where the paper account stopped."""
        paper = self.broker.broker
        if not hasattr(paper, "open_next") or not paper.market_orders_waiting():
            return
        if not self.started:  # restarted after its end tick: reconcile, restore the trader
            self.now = paper.now()
            self._start_retrying()
        steps = 0
        limit = None if paper.source is None else self.exit_wait_candles
        while paper.market_orders_waiting() and (limit is None or steps < limit):
            at = paper.now() + pd.Timedelta(self.step_ns, unit="ns")
            self.clock.sleep_until(at + self.settle)
            if not paper.open_next(self._on_broker_step):
                break
            steps += 1
            self.now = paper.now()
            self._resolve_orders()  # the journal's statuses (the exit filled)
            self.journal.record_equity(self.now, *self.equity())
        if steps:
            self.journal.record_checkpoint(self.now, self.trader.get_state(), self.fill_cursor,
                                           sorted(self.view.wakes))
            if self.status_page:
                write_status_page(self.journal, now=self.now)


def _exchange_failure(exc: BaseException) -> bool:
    return isinstance(exc, ExchangeError) or isinstance(exc.__cause__, ExchangeError)
