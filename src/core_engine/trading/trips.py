"""A replay's trades: its fills grouped per symbol into flat-to-flat round trips.

A trip runs from the first buy of a flat position to the sell that makes it flat again.
Its cost basis ``(quantity, buy value, buy fees, weight)`` is the position's when it is
flat again: every buy, also those made after it began to close. A sell of an order tagged
``rebalance`` that leaves part of the position is a trip of its own (portfolio mode's
partial trade, at average cost: the basis's value, fees and weight shrink by its share of
the basis's quantity). The weight is the sum of the
``weight`` its buy orders noted in their ``meta`` (entry or rebalancing value / equity),
each in the share of its order the fill filled. A trip still open at the end is not a
trade: the position counts in the equity.

:class:`FillTable` holds every fill as columns (those of replay's declared-orders path read
from its own columns, never all made objects); :func:`~core_engine.trading._kernels.
round_trips` groups them in one numba pass; :func:`trades_frame` makes one row per trip
(``core_engine.trading.results`` documents the columns).
"""

from __future__ import annotations

import bisect
import functools
import math
from typing import Any

import numpy as np
import pandas as pd

from core_engine.backtest._kernels import EXIT_REASON_NAMES
from core_engine.data.panel import Panel
from core_engine.trading._kernels import round_trips
from core_engine.trading.orders import Fill, Order, OrderSide
from core_engine.trading.sim import SimBroker

__all__ = ["FillTable", "trades_frame"]

TRADE_COLUMNS = ["symbol", "decision_time", "entry_time", "exit_time", "entry_price",
                 "exit_price", "direction", "weight", "return_pct", "best_return_pct",
                 "max_drawdown", "exit_reason", "rank", "score", "ambiguous", "gaps_in_window",
                 "exit_at_last_close", "quantity", "entry_value", "fees", "pnl"]


class FillTable:
    """Every fill of a replay in the order made, as arrays: ``buy``, ``quantity``,
    ``price``, ``fee``, ``col`` (the symbol's panel column), ``time`` (epoch ns),
    ``weight`` (its share of the weight its order noted, NaN without one) and
    ``rebalance`` (its order is tagged ``rebalance``); the :class:`Fill` (and its candle
    row) of one fill when a trade row needs it (:meth:`info`, :meth:`candle`)."""

    buy: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    fee: np.ndarray
    col: np.ndarray
    time: np.ndarray
    weight: np.ndarray
    rebalance: np.ndarray

    def __init__(self, broker: SimBroker, orders: dict[str, Order]) -> None:
        self.broker = broker
        self._parts: list[tuple[int, Any]] = []  # (first index, list of Fill or Segment)
        chunks: dict[str, list] = {}
        listed = broker._fills
        done = 0
        n = 0
        for segment in broker._segments:
            n = self._add(listed[done:segment.fills_at], n, chunks, orders)
            self._parts.append((n, segment))
            columns = segment.fill_columns(orders)
            for key, column in columns.items():
                chunks.setdefault(key, []).append(column)
            n += len(columns["buy"])
            done = segment.fills_at
        n = self._add(listed[done:], n, chunks, orders)
        self.n = n
        self._starts = [start for start, _ in self._parts]
        kinds = {"buy": np.bool_, "rebalance": np.bool_, "col": np.int64, "time": np.int64}
        for key in ("buy", "quantity", "price", "fee", "col", "time", "weight", "rebalance"):
            kind = kinds.get(key, np.float64)
            parts = chunks.get(key)
            setattr(self, key, np.concatenate([np.asarray(p, dtype=kind) for p in parts])
                    if parts else np.empty(0, dtype=kind))

    def _add(self, fills: list[Fill], n: int, chunks: dict[str, list],
             orders: dict[str, Order]) -> int:
        if not fills:
            return n
        self._parts.append((n, fills))
        buy = OrderSide.BUY
        cols = self.broker._cols  # the panel's columns by symbol
        lights = [_light(orders, f.client_id) for f in fills]
        columns = {
            "buy": [f.side is buy for f in fills], "quantity": [f.quantity for f in fills],
            "price": [f.price for f in fills], "fee": [f.fee for f in fills],
            "col": [cols[f.symbol] for f in fills],
            "time": [f.time.value for f in fills],
            "weight": [_weight(meta, f.quantity, filled)
                       for f, (meta, filled, _) in zip(fills, lights, strict=True)],
            "rebalance": [tag == "rebalance" for _, _, tag in lights],
        }
        for key, column in columns.items():
            chunks.setdefault(key, []).append(column)
        return n + len(fills)

    def __len__(self) -> int:
        return self.n

    def _part(self, i: int) -> tuple[int, Any]:
        start, part = self._parts[bisect.bisect_right(self._starts, i) - 1]
        return i - start, part

    def info(self, i: int) -> tuple[str, str, int, float, str, bool]:
        """``(client_id, symbol, time_ns, price, reason, ambiguous)`` of fill ``i``."""
        k, part = self._part(i)
        if isinstance(part, list):
            f = part[k]
            return f.client_id, f.symbol, f.time.value, f.price, f.reason, f.ambiguous
        return part.fill_info(k)

    def candle(self, i: int) -> tuple[int, bool]:
        """The row of the fill's candle and whether it filled at the open."""
        k, part = self._part(i)
        if isinstance(part, list):
            return self.broker._fill_rows[part[k].trade_id]
        return int(part.fill_rows[k]), bool(part.fill_open[k])


def _weight(meta: dict, quantity: float, filled: float) -> float:
    """The share of its order's noted weight a fill of ``quantity`` carries."""
    if meta.get("weight") is None or not filled:
        return math.nan
    return float(meta["weight"]) * quantity / float(filled)


class _Orders(dict):
    """Client id -> order; ``get`` also finds the orders replay's declared-orders path
    kept as columns (made objects when asked)."""

    def __init__(self, broker: SimBroker) -> None:
        super().__init__()
        self.broker = broker

    def get(self, client_id: Any, default: Any = None) -> Any:
        order = dict.get(self, client_id)
        if order is None and self.broker._segments:
            order = self.broker._segment_order(client_id)
        return default if order is None else order


def _order_info(orders: dict[str, Order], client_id: str
                ) -> tuple[dict, str, str | None, str, pd.Timestamp | None] | None:
    """``(meta, tag, group, type, created_at)`` of an order (None for an unknown one),
    without making an object of an order the declared-orders path kept as columns (a
    plain limit order there, with its chain's meta and tag)."""
    order = _placed(orders, client_id)
    if order is None and isinstance(orders, _Orders):
        index = orders.broker._segment_of
        found = index.get(client_id) if index else None
        if found is not None:
            segment, k = found
            made = segment.objects.get(k)
            if made is None:
                meta, _, tag = segment.light(k)
                return meta, tag, None, "limit", None
            order = made
    if order is None:
        order = dict.get(orders, client_id)
    if order is None:
        return None
    return order.meta, order.tag, order.group, order.type.value, order.created_at


def _light(orders: dict[str, Order], client_id: str) -> tuple[dict, float, str]:
    """``(meta, filled_quantity, tag)`` of an order (empty for an unknown one), without
    making an object of an order the declared-orders path kept as columns."""
    order = _placed(orders, client_id)
    if order is not None:
        return order.meta, order.filled_quantity, order.tag
    if isinstance(orders, _Orders):
        index = orders.broker._segment_of
        found = index.get(client_id) if index else None
        if found is not None:
            return found[0].light(found[1])
    order = dict.get(orders, client_id)
    if order is not None:
        return order.meta, order.filled_quantity, order.tag
    return {}, 0.0, ""


def _placed(orders: dict[str, Order], client_id: str) -> Order | None:
    """The order the broker took under ``client_id`` (the one its fills filled: ``orders``
    lists under it the last order the trader sent with it, which may be one refused for
    reusing it), None when the broker has no object of it."""
    if isinstance(orders, _Orders):
        return orders.broker._orders.get(client_id)
    return dict.get(orders, client_id)


def trades_frame(fills: FillTable, orders: dict[str, Order], broker: SimBroker,
                 panel: Panel) -> pd.DataFrame:
    """One row per round trip, in the order of their entry time, symbol and exit time."""
    first, last, basis, sold = round_trips(fills.col, fills.buy, fills.quantity, fills.price,
                                           fills.fee, fills.weight, fills.rebalance,
                                           fills.time, panel.n_symbols)
    if not len(first):
        return _no_trades().copy()
    rank = np.argsort(np.argsort(np.asarray(panel.symbols, dtype=object)))
    order = np.lexsort((fills.time[last], rank[fills.col[first]], fills.time[first]))
    rows = [_trade_row(f, e, b, s, fills, orders, broker, panel)
            for f, e, b, s in zip(first[order].tolist(), last[order].tolist(),
                                  basis[order].tolist(), sold[order].tolist(), strict=True)]
    columns: dict[str, Any] = dict(zip(TRADE_COLUMNS, map(list, zip(*rows, strict=True)),
                                       strict=True))
    for key in ("entry_time", "exit_time"):
        columns[key] = pd.DatetimeIndex(np.array(columns[key], dtype=np.int64), tz="UTC")
    return pd.DataFrame(columns)


def _trade_row(entry: int, exit_: int, basis: list[float], sold: list[float],
               fills: FillTable, orders: dict[str, Order], broker: SimBroker,
               panel: Panel) -> tuple:
    qty, buy_value, buy_fees, weight = basis
    sell_qty, sell_value, sell_fees = sold
    entry_price, exit_price = buy_value / qty, sell_value / sell_qty
    first_id, symbol, entry_ns, _, _, _ = fills.info(entry)
    last_id, _, exit_ns, last_price, last_reason, ambiguous = fills.info(exit_)
    closing = _order_info(orders, last_id)
    entry_order = _order_info(orders, first_id)
    meta = entry_order[0] if entry_order is not None else {}
    reason = last_reason
    if reason not in EXIT_REASON_NAMES:
        tag = closing[1] if closing is not None else ""
        reason = tag if tag else ("window_end" if reason == "last_close" else reason)
    ret = ((sell_value - sell_fees) / (buy_value + buy_fees) - 1.0) * 100.0
    best = ret
    if ambiguous and closing is not None and closing[2] is not None:
        group = closing[2]
        target = next((o for o in orders.values() if o.group == group
                       and o.limit_price is not None and o.side is OrderSide.SELL), None)
        if target is not None and target.limit_price is not None:
            fee = broker.maker_fee
            best = ((target.limit_price * (1 - broker.slippage)) * (1 - fee)
                    / (entry_price * (1 + broker.taker_fee)) - 1.0) * 100.0
    entry_row, _ = fills.candle(entry)
    exit_row, exit_at_open = fills.candle(exit_)
    j = int(fills.col[entry])
    raw_exit = last_price / (1.0 - broker.slippage)
    lows = panel.low[entry_row:exit_row, j]
    worst = min(float(np.nanmin(lows)) if np.isfinite(lows).any() else math.inf, entry_price,
                raw_exit)
    if not exit_at_open and (reason == "take_profit" or last_reason == "last_close"):
        # held through the exit candle: a take-profit inside it, or its close (an exit
        # capped by max_exit_delay, the end of the data)
        worst = min(worst, float(panel.low[exit_row, j]))
    due_row = exit_row
    if closing is not None and closing[3] == "market" and closing[4] is not None:
        # the gaps of the window up to the due time (also when a capped exit left earlier,
        # at the last close before them)
        due_row = int(np.searchsorted(panel.index.asi8, closing[4].value))
    gaps = int(np.isnan(panel.open[entry_row:due_row, j]).sum())
    entry_time = pd.Timestamp(entry_ns, tz="UTC")
    # the columns of TRADE_COLUMNS, in order
    return (symbol, pd.Timestamp(meta.get("decision_time", entry_time)), entry_ns, exit_ns,
            entry_price, exit_price, "long", weight, ret, best,
            max((1.0 - worst / entry_price) * 100.0, 0.0), reason, int(meta.get("rank", 0)),
            float(meta.get("score", math.nan)), bool(ambiguous), gaps,
            last_reason == "last_close", qty, buy_value, buy_fees + sell_fees,
            sell_value - buy_value - buy_fees - sell_fees)


@functools.cache
def _no_trades() -> pd.DataFrame:
    """The trades frame of a replay without a round trip (its dtypes), made once."""
    frame = pd.DataFrame([], columns=TRADE_COLUMNS)
    frame = frame.astype({"return_pct": float, "best_return_pct": float,
                          "max_drawdown": float, "weight": float, "score": float,
                          "quantity": float, "entry_value": float, "fees": float,
                          "pnl": float, "rank": np.int64, "gaps_in_window": np.int64,
                          "ambiguous": bool, "exit_at_last_close": bool})
    for col in ("decision_time", "entry_time", "exit_time"):
        frame[col] = pd.DatetimeIndex([], tz="UTC")
    return frame
