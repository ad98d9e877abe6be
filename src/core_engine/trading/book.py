"""The resting book of a SimBroker: its open orders as records the numba kernels read.

Each open order has one :data:`~core_engine.trading.orders.RESTING_DTYPE` record, in
placement order (the order the broker matches them in). The book is kept up to date as
orders come and go — a placed order appends a record, a filled or cancelled one frees its
slot (``kind = -1``) — so neither the skipping search nor the matching of a candle rebuilds
a table per event. Free slots are compacted away when they outnumber the used ones, only
while an order is added (never during the matching of a candle, which reads the slots).

A stop sell's ``target`` is the limit price of its OCO sibling (a sell limit of the same
``group``), refreshed when an order of that group comes or goes. ``highest`` is the
trail's reference, copied from and back to the broker's own record of it around a search.
"""

from __future__ import annotations

import math

import numpy as np

from core_engine.trading.orders import (
    RESTING_DTYPE,
    SIDE_CODE,
    TYPE_CODE,
    Order,
    OrderSide,
    OrderType,
)

__all__ = ["RestingBook"]

_FREE = -1


class RestingBook:
    """Records of the open orders (see the module docstring)."""

    def __init__(self, cols: dict[str, int], orders: list[Order] | None = None) -> None:
        self.cols = cols
        self.records = np.zeros(16, dtype=RESTING_DTYPE)
        self.n = 0                              # slots used (live or free)
        self.orders: list[Order | None] = []    # the order of each slot (None: free)
        self.slots: dict[str, int] = {}         # client id -> slot
        for order in orders or ():
            self.add(order)

    def __len__(self) -> int:
        return len(self.slots)

    def add(self, order: Order) -> None:
        """Append an open order (placement order)."""
        if self.n - len(self.slots) > max(64, 2 * len(self.slots)):
            self._compact()
        if self.n == len(self.records):
            grown = np.zeros(2 * len(self.records), dtype=RESTING_DTYPE)
            grown[: self.n] = self.records[: self.n]
            self.records = grown
        k = self.n
        level = order.limit_price if order.type is OrderType.LIMIT else order.stop_price
        nan = math.nan
        # one assignment of the whole record (field by field costs several times more)
        self.records[k] = (self.cols[order.symbol], SIDE_CODE[order.side],
                           TYPE_CODE[order.type], nan if level is None else level, nan,
                           nan if order.trail_pct is None else order.trail_pct / 100.0,
                           nan if order.trail_offset is None else order.trail_offset, nan)
        self.orders.append(order)
        self.slots[order.client_id] = k
        self.n += 1
        if order.group is not None:
            self._refresh_group(order.group)

    def remove(self, order: Order) -> None:
        """Free the slot of an order that is no longer open (no-op if it has none)."""
        k = self.slots.pop(order.client_id, None)
        if k is None:
            return
        self.records[k]["kind"] = _FREE
        self.orders[k] = None
        if order.group is not None:
            self._refresh_group(order.group)

    def _refresh_group(self, group: str) -> None:
        """The ``target`` of the group's stop sells: its first open sell limit's price."""
        members = [(k, o) for k, o in enumerate(self.orders) if o is not None and o.group == group]
        target = math.nan
        for _, o in members:
            if o.type is OrderType.LIMIT and o.side is OrderSide.SELL:
                target = float(o.limit_price)  # type: ignore[arg-type]
                break
        for k, o in members:
            if o.type is OrderType.STOP and o.side is OrderSide.SELL:
                self.records[k]["target"] = target

    def _compact(self) -> None:
        live = [o for o in self.orders if o is not None]
        old = self.records
        keep = [self.slots[o.client_id] for o in live]
        self.records = np.zeros(max(16, 2 * len(live)), dtype=RESTING_DTYPE)
        self.records[: len(keep)] = old[keep]
        self.orders = list(live)
        self.slots = {o.client_id: k for k, o in enumerate(live)}
        self.n = len(live)

    def load_highs(self, highest: dict[str, float]) -> None:
        """Copy the trails' ``highest`` into their records."""
        slots = self.slots
        for cid, value in highest.items():
            k = slots.get(cid)
            if k is not None:
                self.records[k]["highest"] = value

    def raise_highs(self, highest: dict[str, float]) -> None:
        """Write back the trails' ``highest`` raised by a search."""
        slots = self.slots
        for cid, value in highest.items():
            k = slots.get(cid)
            if k is not None:
                h = float(self.records[k]["highest"])
                if h > value:
                    highest[cid] = h
