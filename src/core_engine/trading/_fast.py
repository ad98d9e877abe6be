"""Declared orders run in numba: the fast path of :func:`~core_engine.trading.events.replay`.

A trader whose orders only rest and follow up (limit orders with or without a limit
:class:`~core_engine.trading.orders.FollowUp`, no ``on_fill`` of its own) needs no Python
between its wake-ups: what happens at a fill is declared. While that holds,
:class:`DeclaredPath` hands the stretch up to the next wake-up to :func:`run_declared`,
which does what the Python path does at each candle where an order can fill, in the same
order and with the same arithmetic — the SimBroker's matching at the open and inside the
candle, its funds checks, fees and slippage, the context placing each follow-up before the
next fill is handed over — and marks the account at each such candle. The orders and fills
it makes are kept as columns (:class:`Segment`); the result tables read them as they are,
and an order or fill becomes an object only when asked for (``fetch_order``, ``fills``).

Anything else ends the stretch before the candle it happens on, which the Python path then
plays: a fill the cash or the position cannot cover in full (a rejection, a partial sell),
a wake-up, the end. ``tests/trading/test_follow_up.py`` proves both paths equal (every
candle, skipping, and a ladder written in ``on_fill``), ``test_declared_review.py`` the
broker's state after them too, for traders that cancel, read and change the orders made
here, and a random trader.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from core_engine.trading.orders import (
    Fill,
    FollowUp,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    new_fill,
)

__all__ = ["DeclaredPath", "Segment", "run_declared"]

OPEN, FILLED, REJECTED = 0, 1, 2
_TOL = 1e-9          # as SimBroker's
_CAPACITY = 1 << 14  # orders (and fills) one kernel call may add before it hands back


@njit(cache=True)
def _bounds(o_col, o_side, o_level, live, n_live, ncols, buy_max, sell_min):
    for c in range(ncols):
        buy_max[c] = -np.inf
        sell_min[c] = np.inf
    for q in range(n_live):
        i = live[q]
        if i < 0:
            continue
        c = o_col[i]
        if o_side[i] == 0:
            buy_max[c] = max(buy_max[c], o_level[i])
        else:
            sell_min[c] = min(sell_min[c], o_level[i])


@njit(cache=True)
def _fill(i, raw, at_open, row, cash, hold, o_col, o_side, o_qty, slip, rate, o_status,
          f_order, f_row, f_open, f_price, f_fee, n_fills):
    """One limit order filled in full at raw price ``raw`` (SimBroker._execute); returns
    ``(ok, cash)`` — not ok when the cash or the position cannot cover it all."""
    c = o_col[i]
    q = o_qty[i]
    if o_side[i] == 0:
        price = raw * (1.0 + slip)
        if q * price * (1.0 + rate) > cash * (1 + _TOL) + 1e-12:
            return False, cash
        value = q * price
        cost = min(value * (1.0 + rate), cash)
        fee = cost - value
        cash -= cost
        hold[c] += q
    else:
        price = raw * (1.0 - slip)
        held = hold[c]
        if held <= 1e-12 or held < q:
            return False, cash
        value = q * price
        fee = value * rate
        cash += value - fee
        hold[c] = max(hold[c] - q, 0.0)
    o_status[i] = FILLED
    f_order[n_fills] = i
    f_row[n_fills] = row
    f_open[n_fills] = at_open
    f_price[n_fills] = price
    f_fee[n_fills] = fee
    return True, cash


@njit(cache=True)
def _follow(i, row, cash, hold, rate, o_col, o_side, o_level, o_qty, o_cost, o_then,
            o_repeat, o_status, o_row, o_parent, n_orders, live, n_live, o_inside, inside):
    """Place the follow-up of filled order ``i`` as order ``n_orders`` (Context._follow and
    SimBroker.place's funds check); returns the new ``n_live``."""
    j = n_orders
    c = o_col[i]
    side = 1 - o_side[i]
    q = o_qty[i]
    level = o_then[i]
    o_col[j] = c
    o_side[j] = side
    o_level[j] = level
    o_qty[j] = q
    o_then[j] = o_level[i] if o_repeat[i] else np.nan
    o_repeat[j] = o_repeat[i]
    o_row[j] = row
    o_parent[j] = i
    o_inside[j] = inside
    o_cost[j] = 0.0
    if side == 0:
        need = q * level * (1.0 + rate)
        reserved = 0.0
        for p in range(n_live):
            k = live[p]
            if k >= 0 and o_side[k] == 0:
                reserved += o_cost[k]
        ok = not need > (cash - reserved) * (1 + _TOL) + 1e-9
        o_cost[j] = need
    else:
        need = 0.0
        for p in range(n_live):
            k = live[p]
            if k >= 0 and o_side[k] == 1 and o_col[k] == c:
                need += o_qty[k]
        need += q
        ok = not need > hold[c] * (1 + _TOL) + 1e-12
    if ok:
        o_status[j] = OPEN
        live[n_live] = j
        return n_live + 1
    o_status[j] = REJECTED
    return n_live


@njit(cache=True)
def _follow_fills(first, n_fills, f_order, row, cash, hold, rate, o_col, o_side, o_level,
                  o_qty, o_cost, o_then, o_repeat, o_status, o_row, o_parent, n_orders, live,
                  n_live, o_inside, inside):
    """The context handing fills ``first..n_fills`` over: the follow-up of each, in order
    (``inside``: fills inside the candle, not at its open); returns ``(n_live, n_orders)``."""
    for k in range(first, n_fills):
        i = f_order[k]
        if not np.isnan(o_then[i]):
            n_live = _follow(i, row, cash, hold, rate, o_col, o_side, o_level, o_qty, o_cost,
                             o_then, o_repeat, o_status, o_row, o_parent, n_orders, live,
                             n_live, o_inside, inside)
            n_orders += 1
    return n_live, n_orders


@njit(cache=True)
def run_declared(open_, high, low, start, stop, slip, rate, cash, hold, o_col, o_side,
                 o_level, o_qty, o_cost, o_then, o_repeat, o_status, o_row, o_parent,
                 n_orders, live, n_live, f_order, f_row, f_open, f_price, f_fee, s_row,
                 s_cash, s_hold, o_inside):
    """Play rows ``[start, stop)`` for the open orders ``live[:n_live]`` (indexes into the
    order columns ``o_*``, placement order, ``-1`` for a closed one); see the module
    docstring. Returns ``(row, cash, n_orders, n_live, n_fills, n_snaps, done)``: ``row``
    is the first row not played (``stop`` when ``done``), the state is the account after
    the row before it."""
    ncols = open_.shape[1]
    buy_max = np.empty(ncols)
    sell_min = np.empty(ncols)
    _bounds(o_col, o_side, o_level, live, n_live, ncols, buy_max, sell_min)
    cols = np.empty(ncols, dtype=np.int64)
    n_cols = 0
    saved_live = np.empty(live.shape[0], dtype=np.int64)
    saved_hold = np.empty(ncols)
    n_fills = 0
    n_snaps = 0
    room = o_col.shape[0]
    r = start
    while r < stop:
        if n_cols == 0 or r == start:
            n_cols = 0
            for c in range(ncols):
                if buy_max[c] > -np.inf or sell_min[c] < np.inf:
                    cols[n_cols] = c
                    n_cols += 1
            if n_cols == 0:
                return stop, cash, n_orders, n_live, n_fills, n_snaps, True
        hit = False
        for p in range(n_cols):
            c = cols[p]
            o = open_[r, c]
            # next_event_row's test (a limit buy the open crosses fills without a low)
            if not np.isnan(o) and (o <= buy_max[c] or low[r, c] <= buy_max[c]
                                    or high[r, c] >= sell_min[c] or o >= sell_min[c]):
                hit = True
                break
        if not hit:
            r += 1
            continue
        # room for every order and fill this row could add (each open order fills once
        # and places one follow-up, which may fill and place one more)
        if n_orders + 4 * n_live + 4 > room or n_fills + 2 * n_live + 2 > f_order.shape[0] \
                or 2 * n_live + 2 > live.shape[0]:
            return r, cash, n_orders, n_live, n_fills, n_snaps, False
        saved_cash = cash
        saved_hold[:] = hold
        saved_live[:n_live] = live[:n_live]
        saved_n_live, saved_n_orders, saved_n_fills = n_live, n_orders, n_fills
        ok = True
        # 1. at the open: orders placed before this row that the open crosses;
        # 2. inside the candle: every open order its range reaches. Each followed by the
        # follow-ups of its fills (the context hands them over after the broker's step)
        for phase in range(2):
            first = n_fills
            for p in range(n_live):
                i = live[p]
                if i < 0:
                    continue
                c = o_col[i]
                o = open_[r, c]
                if np.isnan(o):
                    continue
                level = o_level[i]
                buy = o_side[i] == 0
                if phase == 0:
                    if o_row[i] >= r or not (o <= level if buy else o >= level):
                        continue
                    at_open = True
                elif buy:  # limit_buy_on_candle: the open first, then the low
                    at_open = o <= level
                    if not at_open and not low[r, c] <= level:
                        continue
                else:
                    if not high[r, c] >= level:
                        continue
                    at_open = o >= level
                ok, cash = _fill(i, o if at_open else level, at_open, r, cash, hold, o_col,
                                 o_side, o_qty, slip, rate, o_status, f_order, f_row, f_open,
                                 f_price, f_fee, n_fills)
                if not ok:
                    break
                n_fills += 1
                live[p] = -1
            if not ok:
                break
            n_live, n_orders = _follow_fills(first, n_fills, f_order, r, cash, hold, rate,
                                             o_col, o_side, o_level, o_qty, o_cost, o_then,
                                             o_repeat, o_status, o_row, o_parent, n_orders,
                                             live, n_live, o_inside, phase == 1)
        if not ok:  # the Python path plays this row: undo it
            cash = saved_cash
            hold[:] = saved_hold
            for k in range(saved_n_fills, n_fills):
                o_status[f_order[k]] = OPEN
            live[:saved_n_live] = saved_live[:saved_n_live]
            return r, cash, saved_n_orders, saved_n_live, saved_n_fills, n_snaps, False
        # compact the open orders (placement order kept) and mark the account
        m = 0
        for p in range(n_live):
            if live[p] >= 0:
                live[m] = live[p]
                m += 1
        n_live = m
        s_row[n_snaps] = r
        s_cash[n_snaps] = cash
        s_hold[n_snaps, :] = hold
        n_snaps += 1
        _bounds(o_col, o_side, o_level, live, n_live, ncols, buy_max, sell_min)
        n_cols = 0
        r += 1
    return stop, cash, n_orders, n_live, n_fills, n_snaps, True


def _digester(trader_id: str, symbol: str) -> Any:
    """``parent_id -> client_order_id(trader_id, _EPOCH, symbol, "then:" + parent_id)``
    (Context._follow) without its argument checks, the common prefix hashed once (one id
    per order of a segment); equality is tested."""
    head = hashlib.sha256("\x1f".join((trader_id, "0", symbol, "then:")).encode())

    def digest(parent_id: str) -> str:
        h = head.copy()
        h.update(parent_id.encode())
        return "ce" + h.hexdigest()[:30]

    return digest


class _Root:
    """What the follow-ups of a chain copy from the order at its start (Context._follow),
    kept when they were placed."""

    __slots__ = ("lot_step", "meta", "min_value", "tag")

    def __init__(self, order: Order) -> None:
        self.meta = dict(order.meta)
        self.tag = order.tag
        self.lot_step = order.lot_step
        self.min_value = order.min_value


class Segment:
    """The orders and fills one kernel call made, as columns (see the module docstring).

    ``roots[k]`` is what new order ``k`` inherits from the order at the start of its chain
    (its meta, tag and lot step, :class:`_Root`), ``parents[k]`` the client id of
    the order it follows. Fills name their order by ``fill_order`` (an index into
    ``pre`` — the orders open when the call began — for values below ``len(pre)``, else
    into the new orders)."""

    def __init__(self, broker: Any, pre: list[Order], ids: list[str], parents: list[str],
                 roots: list[_Root], cols: np.ndarray, sides: np.ndarray, levels: np.ndarray,
                 qty: np.ndarray, rows: np.ndarray, status: np.ndarray, repeat: np.ndarray,
                 fill_order: np.ndarray, fill_rows: np.ndarray, fill_open: np.ndarray,
                 fill_price: np.ndarray, fill_fee: np.ndarray, seq0: int, fills_at: int,
                 orders_at: int) -> None:
        self.broker = broker
        self.pre = pre
        self.ids, self.parents, self.roots = ids, parents, roots
        self.cols, self.sides, self.levels, self.qty = cols, sides, levels, qty
        self.rows, self.status, self.repeat = rows, status, repeat
        self.fill_order, self.fill_rows, self.fill_open = fill_order, fill_rows, fill_open
        self.fill_price, self.fill_fee = fill_price, fill_fee
        self.seq0 = seq0
        self.fills_at = fills_at
        self.orders_at = orders_at
        self.index = {cid: k for k, cid in enumerate(ids)}
        self.objects: dict[int, Order] = {}   # new orders made objects (open at the end)
        self._fills: list[Fill] | None = None
        self._fill_made: dict[int, Fill] = {}
        self._records: dict[str, Any] | None = None
        self._backs: dict[float, FollowUp] = {}  # one (frozen) follow-up per price
        self._times: tuple[np.ndarray, np.ndarray] | None = None
        # the fill of each filled new order (its row in the fill columns)
        m = len(pre)
        self.fill_of = np.full(len(ids), -1, dtype=np.int64)
        new = fill_order >= m
        self.fill_of[fill_order[new] - m] = np.flatnonzero(new)

    # ------------------------------------------------------------------ objects
    def order(self, k: int) -> Order:
        """New order ``k`` as an :class:`Order` (made once; the open ones already are)."""
        made = self.objects.get(k)
        if made is not None:
            return made
        order = self._make(k)
        self.objects[k] = order
        return order

    def light(self, k: int) -> tuple[dict, float, str]:
        """``(meta, filled_quantity, tag)`` of new order ``k`` for the result's trades: the
        meta of its chain's root (a follow-up's adds only ``after``), without an object."""
        made = self.objects.get(k)
        if made is not None:
            return made.meta, made.filled_quantity, made.tag
        root = self.roots[k]
        return root.meta, float(self.qty[k]) if self.status[k] == FILLED else 0.0, root.tag

    def _make(self, k: int) -> Order:
        broker = self.broker
        root = self.roots[k]
        sym = broker.panel.symbols[int(self.cols[k])]
        side = OrderSide.BUY if self.sides[k] == 0 else OrderSide.SELL
        level = float(self.levels[k])
        back = None
        if self.repeat[k]:
            price = self.back_price(k)
            back = self._backs.get(price)
            if back is None:
                back = self._backs[price] = FollowUp(price=price, repeat=True)
        now = broker._now_at(int(self.rows[k]))
        # the fields of a follow-up Context._follow would have built (checked there: all
        # come from the root order or the kernel), set without the constructor's checks
        order = object.__new__(Order)
        order.__dict__.update(
            client_id=self.ids[k], symbol=sym, side=side, type=OrderType.LIMIT,
            quantity=float(self.qty[k]), quote_quantity=None, lot_step=root.lot_step,
            min_value=root.min_value, limit_price=level, stop_price=None, trail_pct=None,
            trail_offset=None, trail_reference=None, time_in_force="gtc",
            group=None, tag=root.tag, meta={**root.meta, "after": self.parents[k]},
            status=OrderStatus.SUBMITTED, filled_quantity=0.0, average_price=math.nan,
            fees=0.0, created_at=now, updated_at=None, reason=None, exchange_id=None,
            then=back)
        status = int(self.status[k])
        if status == REJECTED:
            order.status = OrderStatus.REJECTED
            order.updated_at = now
            order.reason = "insufficient_funds"
        elif status == FILLED:
            f = int(self.fill_of[k])
            self._apply(order, f)
        else:
            order.updated_at = now
        return order

    def back_price(self, k: int) -> float:
        """The price of the follow-up of new order ``k`` with ``repeat`` (its parent's)."""
        parent = self.index.get(self.parents[k])
        if parent is not None:
            return float(self.levels[parent])
        for order in self.pre:
            if order.client_id == self.parents[k]:
                return float(order.limit_price)  # type: ignore[arg-type]
        raise AssertionError("a new order's parent is in its segment")

    def _apply(self, order: Order, f: int) -> None:
        """Order state after its one fill ``f`` (Order.apply_fill on a fresh order)."""
        q = float(order.quantity)  # type: ignore[arg-type]
        price = float(self.fill_price[f])
        order.average_price = (0.0 + price * q) / q
        order.filled_quantity = q
        order.fees = 0.0 + float(self.fill_fee[f])
        order.status = OrderStatus.FILLED
        order.updated_at = self.fill_time(f)
        if order.side is OrderSide.SELL and order.reason is None:
            order.reason = "take_profit"

    def fill_time(self, f: int) -> pd.Timestamp:
        return pd.Timestamp(int(self.times_ns()[1][f]), tz="UTC")

    def times_ns(self) -> tuple[np.ndarray, np.ndarray]:
        """The times the new orders were placed at and the fills' times, in epoch
        nanoseconds (made once)."""
        if self._times is None:
            broker = self.broker
            index = broker._index
            self._times = (index[self.rows],
                           index[self.fill_rows] + np.where(self.fill_open, 0, broker._step))
        return self._times

    def fill_columns(self, orders: dict[str, Order]) -> dict[str, Any]:
        """The fills as the columns of the result's trades (``trips.FillTable``): ``buy``,
        ``quantity``, ``price``, ``fee``, ``col``, ``time``, ``weight`` and ``rebalance``,
        read per order — those open before from their objects (as found in ``orders``),
        the new ones from their chain's root (or their object, when one was made)."""
        from core_engine.trading.trips import _light

        broker = self.broker
        m = len(self.pre)
        n = len(self.ids)
        cols = np.concatenate([np.array([broker._cols[o.symbol] for o in self.pre],
                                        dtype=np.int64), self.cols])
        buys = np.concatenate([np.array([o.side is OrderSide.BUY for o in self.pre],
                                        dtype=np.bool_), self.sides == 0])
        qty = np.concatenate([np.array([float(o.quantity) for o in self.pre],  # type: ignore[arg-type]
                                       dtype=np.float64), self.qty])
        # per order: the weight its meta notes (NaN: none), its filled quantity, its tag
        noted = np.full(m + n, math.nan)
        filled = np.concatenate([np.zeros(m), np.where(self.status == FILLED, self.qty, 0.0)])
        rebalance = np.zeros(m + n, dtype=np.bool_)
        by_root: dict[int, tuple[float, bool]] = {}
        for k, root in enumerate(self.roots):
            if k in self.objects:
                continue
            known = by_root.get(id(root))
            if known is None:
                weight = root.meta.get("weight")
                known = by_root[id(root)] = (math.nan if weight is None else float(weight),
                                             root.tag == "rebalance")
            noted[m + k], rebalance[m + k] = known
        # those open before (as the result's orders find them) and those made objects
        special = [(i, _light(orders, self.pre[i].client_id)) for i in range(m)] + [
            (m + k, self.light(k)) for k in self.objects]
        for i, (meta, done, tag) in special:
            weight = meta.get("weight")
            noted[i] = math.nan if weight is None else float(weight)
            filled[i] = float(done)
            rebalance[i] = tag == "rebalance"
        at = self.fill_order
        w, d, q = noted[at], filled[at], qty[at]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(np.isnan(w) | (d == 0), math.nan, w * q / d)
        return {"buy": buys[at], "quantity": qty[at], "price": self.fill_price,
                "fee": self.fill_fee, "col": cols[at], "time": self.times_ns()[1],
                "weight": share, "rebalance": rebalance[at]}

    def fill_info(self, f: int) -> tuple[str, str, int, float, str, bool]:
        """``(client_id, symbol, time_ns, price, reason, ambiguous)`` of fill ``f``, read
        from the columns (a result's trade row; no object made)."""
        records = self.fill_records()
        return (records["client_id"][f], records["symbol"][f], int(records["time"][f]),
                float(records["price"][f]), records["reason"][f], False)

    def fill_object(self, f: int) -> Fill:
        """Fill ``f`` as a :class:`Fill` (all of them are made only by :meth:`fills`)."""
        if self._fills is not None:
            return self._fills[f]
        made = self._fill_made.get(f)
        if made is None:
            made = self._fill_made[f] = self._make_fill(f)
        return made

    def fills(self) -> list[Fill]:
        """The fills as :class:`Fill` objects (made when first asked; the result's trades
        read them), each also entered in the broker's fill rows."""
        if self._fills is None:
            self._fills = self._make_fills()
        return self._fills

    def _make_fills(self) -> list[Fill]:
        return [self.fill_object(f) for f in range(len(self.fill_order))]

    def _make_fill(self, f: int) -> Fill:
        records = self.fill_records()
        trade_id = records["trade_id"][f]
        self.broker._fill_rows[trade_id] = (int(self.fill_rows[f]), bool(self.fill_open[f]))
        side = OrderSide.BUY if records["side"][f] == "buy" else OrderSide.SELL
        return new_fill(trade_id, records["client_id"][f], records["symbol"][f], side,
                        self.fill_time(f), float(records["price"][f]),
                        float(records["quantity"][f]), float(records["fee"][f]), "maker",
                        records["reason"][f], False)

    # ------------------------------------------------------------------ tables
    def fill_records(self) -> dict[str, Any]:
        """The fills as the columns of ``Fill.to_record`` (the result's fills; times as
        epoch nanoseconds, floats as arrays), made once."""
        if self._records is None:
            self._records = self._fill_records()
        return self._records

    def _fill_records(self) -> dict[str, Any]:
        n = len(self.fill_order)
        symbols = self.broker.panel.symbols
        # per order (those open before, then the new ones), read at each fill's order
        ids = np.array([o.client_id for o in self.pre] + self.ids, dtype=object)
        syms = np.array([o.symbol for o in self.pre]
                        + [symbols[c] for c in self.cols.tolist()], dtype=object)
        buys = np.concatenate([[o.side is OrderSide.BUY for o in self.pre],
                               self.sides == 0]).astype(bool)
        qty = np.concatenate([[float(o.quantity) for o in self.pre],  # type: ignore[arg-type]
                              self.qty]).astype(np.float64)
        at = self.fill_order
        buy = buys[at]
        side = np.where(buy, "buy", "sell").astype(object).tolist()
        return {
            "trade_id": [f"sim-{self.seq0 + f + 1}" for f in range(n)],
            "client_id": ids[at].tolist(), "symbol": syms[at].tolist(), "side": side,
            "time": self.times_ns()[1], "price": self.fill_price, "quantity": qty[at],
            "fee": self.fill_fee, "liquidity": ["maker"] * n,
            "reason": np.where(buy, "limit", "take_profit").astype(object).tolist(),
            "ambiguous": [False] * n,
        }


    def order_records(self) -> dict[str, Any]:
        """The new orders as the columns of ``Order.to_record`` (the result's orders; times
        as epoch nanoseconds, floats as arrays)."""
        broker = self.broker
        n = len(self.ids)
        nan = np.full(n, math.nan)
        symbols = np.asarray(broker.panel.symbols, dtype=object)[self.cols]
        status_names = np.array(["submitted", "filled", "rejected"], dtype=object)
        created_ns, fill_ns = self.times_ns()
        filled = self.status == FILLED
        f = np.where(filled, self.fill_of, 0)
        price = self.fill_price[f] if len(self.fill_price) else np.zeros(n)
        fee = self.fill_fee[f] if len(self.fill_fee) else np.zeros(n)
        q = self.qty
        updated = np.where(filled, fill_ns[f] if len(fill_ns) else 0, created_ns)
        reason = np.full(n, None, dtype=object)
        reason[filled & (self.sides == 1)] = "take_profit"
        reason[self.status == REJECTED] = "insufficient_funds"
        with np.errstate(invalid="ignore", divide="ignore"):
            average = np.where(filled, (0.0 + price * q) / q, math.nan)
        out: dict[str, Any] = {
            "client_id": list(self.ids), "symbol": symbols.tolist(),
            "side": np.where(self.sides == 0, "buy", "sell").astype(object).tolist(),
            "type": ["limit"] * n, "quantity": q.copy(), "quote_quantity": nan,
            "limit_price": self.levels.copy(), "stop_price": nan, "trail_pct": nan,
            "trail_offset": nan, "time_in_force": ["gtc"] * n,
            "group": [None] * n, "tag": [r.tag for r in self.roots],
            "status": status_names[self.status].tolist(),
            "filled_quantity": np.where(filled, q, 0.0), "average_price": average,
            "fees": np.where(filled, 0.0 + fee, 0.0), "created_at": created_ns.copy(),
            "updated_at": updated, "reason": reason.tolist(),
        }
        # the orders made objects: those open at the end moved on after the segment, and
        # the trader may have changed any it was handed (fetch_order)
        for k, made in self.objects.items():
            record = made.to_record()
            for key, column in out.items():
                value = record[key]
                if key in ("created_at", "updated_at"):
                    value = np.iinfo(np.int64).min if value is None else value.value
                column[k] = value
        return out


class DeclaredPath:
    """Runs the stretches a replay can leave to :func:`run_declared` (module docstring)."""

    def __init__(self, broker: Any, trader: Any, records: Any, snapshots: list) -> None:
        from core_engine.trading.trader import Trader

        self.broker = broker
        self.records = records
        self.snapshots = snapshots
        self.trader_id = trader.trader_id
        self.usable = type(trader).on_fill is Trader.on_fill \
            and broker.max_volume_share is None

    def ready(self) -> bool:
        """Whether every open order is a declared one and the broker keeps nothing the
        kernel does not (a deadline, a trail, an IOC or market order, a partial fill)."""
        broker = self.broker
        if not self.usable or broker._deadlines or broker._highest or broker._open_markets \
                or broker._open_ioc or not broker._live:
            return False
        for order in broker._live.values():
            then = order.then
            if order.type is not OrderType.LIMIT or order.group is not None \
                    or order.time_in_force != "gtc" or order.filled_quantity \
                    or (then is not None and then.type != "limit"):
                return False
        return True

    def run(self, row: int, stop: int) -> int:
        """Play ``[row, stop)`` in the kernel; returns the first row it did not play."""
        broker = self.broker
        # the skipping search first: most stretches between wake-ups have no fill at all
        # (the kernel's test of a row is the search's), and its buffers cost more than that
        row = broker.next_event_row(row, stop)
        if row >= stop:
            return stop
        pre = [o for o in broker._live.values() if o.is_open]
        m = len(pre)
        cap = m + _CAPACITY
        o_col = np.empty(cap, dtype=np.int64)
        o_side = np.empty(cap, dtype=np.int64)
        o_level = np.empty(cap)
        o_qty = np.empty(cap)
        o_cost = np.zeros(cap)
        o_then = np.empty(cap)
        o_repeat = np.zeros(cap, dtype=np.bool_)
        o_status = np.zeros(cap, dtype=np.int64)
        o_row = np.empty(cap, dtype=np.int64)
        o_parent = np.full(cap, -1, dtype=np.int64)
        o_inside = np.zeros(cap, dtype=np.bool_)
        cols = broker._cols
        for i, order in enumerate(pre):
            o_col[i] = cols[order.symbol]
            o_side[i] = 0 if order.side is OrderSide.BUY else 1
            o_level[i] = order.limit_price
            o_qty[i] = order.quantity
            if order.side is OrderSide.BUY:
                o_cost[i] = broker._open_buys[order.client_id]
            o_then[i] = math.nan if order.then is None else order.then.price
            o_repeat[i] = order.then is not None and order.then.repeat
            o_row[i] = broker._placed_row[order.client_id]
        live = np.full(cap, -1, dtype=np.int64)
        live[:m] = np.arange(m)
        f_order = np.empty(_CAPACITY, dtype=np.int64)
        f_row = np.empty(_CAPACITY, dtype=np.int64)
        f_open = np.empty(_CAPACITY, dtype=np.bool_)
        f_price = np.empty(_CAPACITY)
        f_fee = np.empty(_CAPACITY)
        s_row = np.empty(_CAPACITY, dtype=np.int64)
        s_cash = np.empty(_CAPACITY)
        s_hold = np.empty((_CAPACITY, len(cols)))
        hold = broker.holdings.copy()
        cash0, hold0 = float(broker.cash), broker.holdings.copy()
        rate = broker.maker_fee
        end, cash, n_orders, n_live, n_fills, n_snaps, _ = run_declared(
            broker._open, broker._high, broker._low, row, stop, broker.slippage, rate,
            float(broker.cash), hold, o_col, o_side, o_level, o_qty, o_cost, o_then, o_repeat,
            o_status, o_row, o_parent, m, live, m, f_order, f_row, f_open, f_price, f_fee,
            s_row, s_cash, s_hold, o_inside)
        if n_snaps == 0 and n_orders == m:
            return end
        self._apply(pre, end, cash, hold, o_col[:n_orders], o_side[:n_orders],
                    o_level[:n_orders], o_qty[:n_orders], o_row[:n_orders],
                    o_status[:n_orders], o_repeat[:n_orders], o_parent[:n_orders],
                    live[:n_live], f_order[:n_fills], f_row[:n_fills], f_open[:n_fills],
                    f_price[:n_fills], f_fee[:n_fills], s_row[:n_snaps], s_cash[:n_snaps],
                    s_hold[:n_snaps], cash0, hold0)
        # the follow-ups of fills inside a candle (Records.inside, the orders table's
        # inside_candle)
        ids = broker._segments[-1].ids
        self.records.inside.update(
            ids[k] for k in np.flatnonzero(o_inside[m:n_orders]).tolist())
        return end

    def _apply(self, pre, end, cash, hold, o_col, o_side, o_level, o_qty, o_row, o_status,
               o_repeat, o_parent, live, f_order, f_row, f_open, f_price, f_fee, s_row,
               s_cash, s_hold, cash0, hold0) -> None:
        broker = self.broker
        m = len(pre)
        symbols = broker.panel.symbols
        # client ids and chain roots of the new orders, parents first
        ids: list[str] = []
        parents: list[str] = []
        roots: list[Any] = []
        # what a follow-up copies from its chain's root, as it is now (when the kernel's
        # follow-ups were placed): the trader may change the root's meta or tag later
        kept: dict[int, _Root] = {}
        digests = [_digester(self.trader_id, symbol) for symbol in symbols]
        for p, c in zip(o_parent[m:].tolist(), o_col[m:].tolist(), strict=True):
            if p < m:
                parent_id = pre[p].client_id
                root = kept.get(p)
                if root is None:
                    root = kept[p] = _Root(pre[p])
            else:
                parent_id, root = ids[p - m], roots[p - m]
            parents.append(parent_id)
            roots.append(root)
            ids.append(digests[c](parent_id))
        segment = Segment(broker, pre, ids, parents, roots, o_col[m:].copy(), o_side[m:].copy(),
                          o_level[m:].copy(), o_qty[m:].copy(), o_row[m:].copy(),
                          o_status[m:].copy(), o_repeat[m:].copy(), f_order.copy(),
                          f_row.copy(), f_open.copy(), f_price.copy(), f_fee.copy(),
                          broker._seq, len(broker._fills), len(self.records.orders))
        # the orders open before that filled: their objects leave the open orders
        for f in np.flatnonzero(f_order < m).tolist():
            order = pre[int(f_order[f])]
            segment._apply(order, f)
            broker._forget(order)
        # the new orders still open become objects in the broker's book
        for i in live.tolist():
            if i >= m:
                order = segment.order(i - m)  # found by fetch_order through the segment
                cid = order.client_id
                broker._live[cid] = order
                broker._track(order)
                broker._book.add(order)
                broker._placed_row[cid] = int(o_row[i])
        broker.cash = float(cash)
        broker.holdings[:] = hold
        broker._seq += len(f_order)
        broker._segments = (*broker._segments, segment)
        index = broker._segment_of
        if index is None:
            index = broker._segment_of = {}
        for k, cid in enumerate(ids):
            index.setdefault(cid, (segment, k))
        if len(s_row):
            broker._row = int(s_row[-1])
            broker._phase = "intrabar"
            # begin_row's mark of the last row played: the account after the row before it
            if len(s_row) > 1:
                broker._mark = (float(s_cash[-2]), s_hold[-2].copy(), broker._row)
            else:
                broker._mark = (cash0, hold0, broker._row)
        # (a copy: rows of s_hold would keep the kernel's whole buffer alive to the end)
        self.snapshots.extend(zip(s_row.tolist(), s_cash.tolist(), s_hold.copy(), strict=True))
