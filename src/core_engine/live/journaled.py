"""JournaledBroker: every order goes through the journal — written down, then acted on.

The runner hands this wrapper, not the real broker, to the trader's context. For each order:

1. the **intent** is journaled (status ``new``) — before any network call;
2. the wrapped broker's ``place`` is called;
3. its answer is journaled: the acknowledged status, or ``rejected`` (with the reason), or
   ``unknown`` when the call timed out or lost its connection
   (:class:`~core_engine.errors.BrokerUnavailable`): the order is then resolved by its client
   id at the next tick (:meth:`JournaledBroker.resolve`), never sent again.

An order whose client id is already journaled (the same decision replayed after a restart)
is **not sent**: the journaled order is returned, refreshed from the broker. Cancels are
journaled the same way.

**An exit and its stop** (brokers with ``exit_cancels_group``, :class:`CCXTBroker`): on a
spot exchange a resting stop holds the position's base balance, so a market exit cannot be
sent while the stop rests (it would be refused, or cut to the free balance). The stop is
therefore cancelled first (event ``cancel_for_exit`` naming the exit), then the exit sent.
When the exit is refused (insufficient funds, a rate limit, a filter) the cancelled stop is
placed again at once (:meth:`JournaledBroker.restore_protection`), before ``place`` returns:
same symbol, type, prices, group and tag, for what it had not filled, under a client id
derived from (stop, exit, attempt) and journaled like any order, so a replay never sends it
twice. So is it when the exit's outcome is unknown (a timeout) while the base is still held
(a Binance market order that executed has emptied it; one that did not arrive holds nothing;
one arriving after the restore is refused, the stop holding the balance, and is found never
placed). The runner calls the same method at every tick, which covers an exit found never
placed or expired unfilled later, a failed balance read, and a process killed between the
cancel and the restore. Not restored: while another sell of the symbol is open or in doubt
(it holds the balance), when nothing of the base is held, and after three refused attempts
(journaled as an error). The window without a stop is one exit's round trip. The wrapper keeps the :class:`~core_engine.trading.orders.Order`
objects the trader placed (with their ``meta``), so ``fetch_order`` returns the trader's own
order, its status refreshed from the broker.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from core_engine._config import keyword_checked
from core_engine.errors import (
    BrokerUnavailable,
    ExchangeError,
    OrderNotFound,
    OrderRejected,
    RateLimited,
)
from core_engine.live.journal import FillRow, Journal, OrderRow
from core_engine.live.keys import SCRUBBER
from core_engine.trading.orders import (
    Fill,
    FollowUp,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    client_order_id,
)

__all__ = ["JournaledBroker", "order_from_row"]

_log = logging.getLogger(__name__)


def _spec(order: Order) -> dict[str, Any]:
    """What rebuilds the order after a restart (JSON)."""
    record = order.to_record()
    keep = ("quote_quantity", "lot_step", "min_value", "trail_pct", "trail_offset",
            "trail_reference", "time_in_force", "group", "tag")
    out = {k: getattr(order, k) for k in keep}
    out["meta"] = order.meta
    out["type"] = record["type"]
    if order.then is not None:
        out["then"] = order.then.to_record()
    return json.loads(json.dumps(out, default=str))


def order_from_row(row: OrderRow, spec: dict[str, Any]) -> Order:
    """Rebuild an :class:`Order` from its journal row (status and fills included)."""
    quantity = row.quantity if row.quantity and not spec.get("quote_quantity") else None
    order = Order(
        client_id=row.client_id, symbol=row.symbol, side=OrderSide(row.side),
        type=OrderType(spec["type"]),
        quantity=quantity, quote_quantity=spec.get("quote_quantity"),
        lot_step=spec.get("lot_step"), min_value=spec.get("min_value"),
        limit_price=row.limit_price, stop_price=row.stop_price,
        trail_pct=spec.get("trail_pct"), trail_offset=spec.get("trail_offset"),
        trail_reference=spec.get("trail_reference"),
        time_in_force=spec.get("time_in_force") or "gtc", group=spec.get("group"),
        tag=spec.get("tag") or "", meta=dict(spec.get("meta") or {}),
        then=FollowUp.from_record(spec.get("then")))
    order.status = row.status
    order.filled_quantity = row.filled_quantity
    if row.average_price is not None:
        order.average_price = row.average_price
    order.exchange_id = row.exchange_order_id
    return order


_RESTORE_ATTEMPTS = 3


def _restore_id(sell_cid: str, exit_cid: str, attempt: int) -> str:
    """The client id of attempt ``attempt`` at placing again ``sell_cid`` after the exit
    ``exit_cid`` did not fill (deterministic: a replay finds it journaled)."""
    return client_order_id(f"restore:{sell_cid}", 0, "", f"{exit_cid}:{attempt}")


def _holds_base(row: OrderRow, symbol: str) -> bool:
    """Whether an open order may hold ``symbol``'s base balance: a sell of it, except a
    market exit whose outcome is unknown (executed, it emptied the balance; not, it holds
    nothing)."""
    return row.symbol == symbol and row.side == "sell" and not (
        row.status is OrderStatus.UNKNOWN and row.type == OrderType.MARKET.value)


def _journaled_fees(fills: list[FillRow], symbol: str) -> float:
    """An order's fees in the quote currency from its journaled fills (a fee paid in the
    base asset valued at the fill price; one in a third asset, such as BNB, is not counted)."""
    base, _, quote = symbol.partition("/")
    total = 0.0
    for f in fills:
        if f.fee_asset == quote.split(":")[0]:
            total += f.fee
        elif f.fee_asset == base:
            total += f.fee * f.price
    return total


@keyword_checked
class JournaledBroker:
    """A broker seen through the journal (see the module docstring).

    Parameters
    ----------
    broker : Broker
        The real broker (paper or exchange).
    journal : Journal
    now : callable
        The decision time of the runner's current tick (``ctx.now``).
    decision_id : callable, optional
        The id of the decision being taken (orders refer to it).
    """

    def __init__(self, broker: Any, journal: Journal, now: Callable[[], pd.Timestamp],
                 decision_id: Callable[[], int | None] = lambda: None) -> None:
        self.broker = broker
        self.journal = journal
        self._now = now
        self._decision_id = decision_id
        self._orders: dict[str, Order] = {}
        self.writes = 0  # creates and cancels sent (the runner re-reads fills after some)

    # -- what the context reads -------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:  # quote, taker_fee, tradable, ...
        return getattr(self.broker, name)

    def now(self) -> pd.Timestamp:
        return self._now()

    def balances(self) -> dict[str, float]:
        return self.broker.balances()

    def candles(self, symbol: str, timeframe: str, since: Any = None,
                limit: int | None = None) -> pd.DataFrame:
        return self.broker.candles(symbol, timeframe, since, limit)

    def fills(self, since: Any = None) -> list[Fill]:
        return self.broker.fills(since)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        out = []
        for theirs in self.broker.open_orders(symbol):
            out.append(self._merge(theirs))
        return out

    def known(self, client_id: str) -> Order | None:
        """The order object kept for ``client_id`` (rebuilt from the journal if needed)."""
        order = self._orders.get(client_id)
        if order is None:
            row = self.journal.order(client_id)
            if row is None:
                return None
            order = order_from_row(row, self.journal.order_spec(client_id))
            order.fees = _journaled_fees(self.journal.fills_of(client_id), row.symbol)
            self._orders[client_id] = order
            track = getattr(self.broker, "track", None)
            if track is not None:
                track(order)
        return order

    def _merge(self, theirs: Order) -> Order:
        """Copy the broker's view of an order onto ours and journal any change of status."""
        ours = self.known(theirs.client_id)
        if ours is None:
            return theirs
        if ours is not theirs:
            ours.status = theirs.status
            ours.filled_quantity = theirs.filled_quantity
            ours.average_price = theirs.average_price
            ours.fees = theirs.fees
            ours.exchange_id = theirs.exchange_id or ours.exchange_id
            if theirs.quantity is not None:
                ours.quantity = theirs.quantity
        self._journal_status(ours, "status")
        return ours

    def _journal_status(self, order: Order, event: str, detail: Any = None) -> None:
        row = self.journal.order(order.client_id)
        if row is None:
            return
        price = order.average_price if math.isfinite(order.average_price) else None
        if (row.status is order.status and row.filled_quantity == order.filled_quantity
                and detail is None):
            return
        self.journal.update_order(order.client_id, order.status, event=event,
                                  filled_quantity=order.filled_quantity, average_price=price,
                                  exchange_order_id=order.exchange_id, detail=detail,
                                  time=self._now())

    # -- acting -----------------------------------------------------------------------------

    def place(self, order: Order) -> Order:
        """Journal the intent, place, journal the outcome (never sends a journaled id twice);
        an exit refused after its stop was cancelled restores the stop (module docstring)."""
        existing = self.known(order.client_id)
        if existing is not None:
            _log.info("order %s is already journaled (%s); not sent again",
                      order.client_id, existing.status.value)
            return self.fetch_order(order.client_id)
        cancelled = False
        if (getattr(self.broker, "exit_cancels_group", False) and order.group
                and order.side is OrderSide.SELL and order.type is OrderType.MARKET):
            cancelled = self._cancel_group(order)
        try:
            sent = self._send(order)
        except OrderRejected:
            if cancelled:
                self._restore_now()
            raise
        if cancelled and sent.status is OrderStatus.UNKNOWN:
            self._restore_now()  # the exit may not have reached the exchange
        return sent

    def _restore_now(self) -> None:
        try:
            self.restore_protection()
        except ExchangeError as exc:  # the runner tries again at its next tick
            self.journal.record_error("restore", type(exc).__name__,
                                      SCRUBBER.scrub(str(exc)), time=self._now())

    def _send(self, order: Order) -> Order:
        asked = order  # the caller's object: a refusal is written on it too (prepare copies)
        prepare = getattr(self.broker, "prepare", None)
        if prepare is not None:
            try:
                order = prepare(order)
            except OrderRejected as exc:  # refused before sending: journaled all the same
                self.journal.record_order(order, bar_time=self._now(),
                                          decision_id=self._decision_id(), spec=_spec(order),
                                          time=self._now())
                self._orders[order.client_id] = order
                self._mark(order, OrderStatus.REJECTED, "refused", exc)
                raise
        self.journal.record_order(order, bar_time=self._now(), decision_id=self._decision_id(),
                                  spec=_spec(order), time=self._now())
        self._orders[order.client_id] = order
        self.writes += 1
        try:
            placed = self.broker.place(order)
        except OrderRejected as exc:
            self._mark(order, OrderStatus.REJECTED, "rejected", exc)
            asked.status, asked.reason = order.status, order.reason
            raise
        except RateLimited as exc:  # refused by the exchange, not executed
            self._mark(order, OrderStatus.REJECTED, "rate_limited", exc)
            asked.status, asked.reason = order.status, order.reason
            raise OrderRejected(SCRUBBER.scrub(f"order {order.client_id}: {exc}")) from None
        except BrokerUnavailable as exc:
            self._mark(order, OrderStatus.UNKNOWN, "create_unknown", exc)
            return order
        return self._merge(placed) if placed is not order else self._ack(order)

    def _cancel_group(self, order: Order) -> bool:
        """Cancel the open sells of ``order``'s group (its stop) before the exit itself;
        returns whether any cancel was sent."""
        sent = False
        for row in self.journal.orders(final=False):
            if row.parent_client_id == order.group and row.side == "sell" \
                    and row.status is not OrderStatus.UNKNOWN:
                self.journal.record_event(row.client_id, "cancel_for_exit",
                                          detail=order.client_id, time=self._now())
                self.cancel(row.client_id)
                sent = True
        return sent

    def restore_protection(self) -> list[Order]:
        """Place again every sell cancelled for an exit that did not fill (refused, found
        never placed, expired, or never journaled: a crash); returns the orders placed.
        See the module docstring for what is not restored."""
        placed: list[Order] = []
        for sell_cid, exit_cid in self.journal.cancelled_for_exits():
            attempt = self._restore_attempt(sell_cid, exit_cid)
            sell = self.known(sell_cid)
            if attempt is None or sell is None:
                continue
            left = float(sell.quantity or 0.0) - float(sell.filled_quantity)
            base = sell.symbol.partition("/")[0]
            if left <= 0 or any(_holds_base(r, sell.symbol)
                                for r in self.journal.orders(final=False)):
                continue
            if float(self.broker.balances().get(base, 0.0)) <= 0:
                continue  # the exit executed after all (its outcome was unknown)
            restore = Order(
                client_id=_restore_id(sell_cid, exit_cid, attempt), symbol=sell.symbol,
                side=OrderSide.SELL, type=sell.type, quantity=left,
                limit_price=sell.limit_price, stop_price=sell.stop_price,
                trail_pct=sell.trail_pct, trail_offset=sell.trail_offset,
                trail_reference=sell.trail_reference, time_in_force=sell.time_in_force,
                group=sell.group, tag=sell.tag,
                meta={**sell.meta, "restores": sell_cid, "after_exit": exit_cid})
            try:
                placed.append(self.place(restore))
            except OrderRejected as exc:
                if attempt + 1 >= _RESTORE_ATTEMPTS:
                    self.journal.record_error(
                        "restore", type(exc).__name__, SCRUBBER.scrub(
                            f"gave up placing again {sell_cid} (cancelled for the exit "
                            f"{exit_cid}, which did not fill) after {attempt + 1} refusals: "
                            f"{exc}"), time=self._now())
        return placed

    def _restore_attempt(self, sell_cid: str, exit_cid: str) -> int | None:
        """The next attempt at restoring ``sell_cid``; None when one was placed (or is in
        doubt) or every attempt was refused."""
        for attempt in range(_RESTORE_ATTEMPTS):
            row = self.journal.order(_restore_id(sell_cid, exit_cid, attempt))
            if row is None:
                return attempt
            if row.status is not OrderStatus.REJECTED:
                return None
        return None

    def _ack(self, order: Order) -> Order:
        self._journal_status(order, "ack")
        return order

    def _mark(self, order: Order, status: OrderStatus, event: str, exc: Exception) -> None:
        reason = SCRUBBER.scrub(f"{type(exc).__name__}: {exc}")
        if order.status is not status:
            order.status = status
        order.reason = reason
        self.journal.update_order(order.client_id, status, event=event, detail=reason,
                                  time=self._now())
        self.journal.record_error("broker", type(exc).__name__, reason, time=self._now())

    def cancel(self, client_id: str) -> Order:
        """Journal the cancel request, cancel, journal the answer (unknown on a timeout)."""
        ours = self.known(client_id)
        if ours is None:
            raise OrderNotFound(f"Order {client_id!r} is not in the journal; cancel refused.")
        if ours.is_final:
            return ours
        self.journal.record_event(client_id, "cancel_intent", time=self._now())
        self.writes += 1
        try:
            theirs = self.broker.cancel(client_id)
        except BrokerUnavailable as exc:  # the cancel may or may not have happened
            self.journal.record_event(client_id, "cancel_unknown",
                                      detail=SCRUBBER.scrub(str(exc)), time=self._now())
            return ours
        except ExchangeError as exc:  # refused (rate limit) or not found right now
            self.journal.record_event(client_id, "cancel_failed",
                                      detail=SCRUBBER.scrub(f"{type(exc).__name__}: {exc}"),
                                      time=self._now())
            return ours
        return self._merge(theirs)

    def refresh(self, client_id: str, *, strict: bool = True) -> Order:
        """The order as the broker knows it now (journaled); unknown stays unknown.

        ``strict=False`` returns the journaled order when the broker cannot be reached or
        does not find it (a lagging exchange); the runner's resolution uses ``strict=True``
        to count the misses.
        """
        ours = self.known(client_id)
        try:
            theirs = self.broker.fetch_order(client_id)
        except BrokerUnavailable:
            if ours is None:
                raise
            return ours
        except OrderNotFound:
            if strict or ours is None:
                raise
            return ours
        return self._merge(theirs)

    def fetch_order(self, client_id: str) -> Order:
        ours = self.known(client_id)
        if ours is not None and ours.is_final:
            return ours
        return self.refresh(client_id, strict=False)
