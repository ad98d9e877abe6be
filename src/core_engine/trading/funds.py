"""What a SimBroker's open orders hold of the cash and the base currencies, and the funds
check of a new order (the rules in :mod:`core_engine.trading.sim`'s docstring)."""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from core_engine.errors import InsufficientFunds
from core_engine.trading.book import RestingBook
from core_engine.trading.orders import Order, OrderSide, OrderType

__all__ = ["Funds"]

_TOL = 1e-9


class Funds:
    """The funds bookkeeping of :class:`~core_engine.trading.sim.SimBroker` (a mixin: it
    reads the broker's open orders, prices and balances)."""

    _cols: dict[str, int]
    _live: dict[str, Order]
    _live_seen: dict[str, Order]
    _open_buys: dict[str, float | None]
    _open_sells: dict[str, None]
    _sell_holds: dict[int, dict[str, tuple[float, str | None]]]
    _open_markets: dict[str, None]
    _open_ioc: dict[str, None]
    _book: RestingBook
    _open: np.ndarray
    _index: np.ndarray
    _row: int
    _phase: str
    cash: float
    holdings: np.ndarray
    slippage: float
    maker_fee: float
    taker_fee: float
    quote: str | None
    last_prices: Callable[[], np.ndarray]
    _reject: Callable[[Order, str, Exception], None]

    def _col(self, symbol: str, *, error: type[Exception] | None) -> Any:
        col = self._cols.get(symbol)
        if col is None and error is not None:
            raise error(f"Symbol {symbol!r} is not in this SimBroker's candles; it has "
                        f"{list(self._cols)}.")
        return col

    def _reference_price(self, order: Order, col: int) -> float:
        if order.type is OrderType.LIMIT:
            return float(order.limit_price)  # type: ignore[arg-type]
        if order.type is OrderType.STOP and order.stop_price is not None:
            return float(order.stop_price)
        if self._phase == "open" and self._row < len(self._index) \
                and not np.isnan(self._open[self._row, col]):
            return float(self._open[self._row, col]) * (1.0 + self.slippage)
        prices = self.last_prices()
        return float(prices[col]) if np.isfinite(prices[col]) else math.nan

    def _cost(self, order: Order, col: int) -> float:
        if order.quote_quantity is not None and order.filled_quantity == 0:
            return order.quote_quantity * (1.0 + self.taker_fee)
        rate = self.maker_fee if order.type is OrderType.LIMIT else self.taker_fee
        price = self._reference_price(order, col)
        return order.remaining * price * (1.0 + rate) if math.isfinite(price) else 0.0

    def _track(self, order: Order) -> None:
        cid = order.client_id
        if order.side is OrderSide.BUY:
            self._open_buys[cid] = self._held_cost(order)
        else:
            self._open_sells[cid] = None
            col = self._cols[order.symbol]
            self._sell_holds.setdefault(col, {})[cid] = (order.remaining, order.group)
        if order.type is OrderType.MARKET:
            self._open_markets[cid] = None
        if order.time_in_force == "ioc":
            self._open_ioc[cid] = None

    def _held_cost(self, order: Order) -> float | None:
        """The cash an open buy holds (:meth:`_cost`) when it does not move with the clock
        (a limit or stop buy: its price is its own), else None (a market buy)."""
        if order.type is OrderType.MARKET or order.stop_price is None \
                and order.type is OrderType.STOP:
            return None
        return self._cost(order, self._cols[order.symbol])

    def _refresh_holds(self, order: Order) -> None:
        """After a partial fill: what the still open ``order`` holds."""
        cid = order.client_id
        if cid in self._open_buys:
            self._open_buys[cid] = self._held_cost(order)
        elif cid in self._open_sells:
            holds = self._sell_holds[self._cols[order.symbol]]
            holds[cid] = (order.remaining, order.group)

    def _untrack(self, order: Order) -> None:
        cid = order.client_id
        self._open_buys.pop(cid, None)
        if cid in self._open_sells:
            del self._open_sells[cid]
            self._sell_holds[self._cols[order.symbol]].pop(cid, None)
        self._open_markets.pop(cid, None)
        self._open_ioc.pop(cid, None)

    def _live_of(self, name: str) -> list[Order]:
        """The open orders of the index ``name`` (``"_open_markets"``, ``"_open_ioc"``), in
        placement order; the index is read after :meth:`_check_live` (which replaces it
        when the open orders were: an index passed in would be the stale one)."""
        self._check_live()
        index = getattr(self, name)
        if not index:
            return []
        live = self._live
        return [live[cid] for cid in list(index) if cid in live]

    def _check_live(self) -> None:
        """The caches of the open orders follow ``_live``; when the dict itself was replaced
        (an account restored from a save), rebuild them."""
        # the dict itself is kept (not its id: a dict made after the old one was freed can
        # have its address, and the replacement would go unseen)
        if self._live_seen is not self._live:
            self._live_seen = self._live
            self._open_buys, self._open_markets, self._open_ioc = {}, {}, {}
            self._open_sells, self._sell_holds = {}, {}
            for order in self._live.values():
                self._track(order)
            self._book = RestingBook(self._cols, [o for o in self._live.values() if o.is_open])

    def _reserved_cash(self, exclude: str | None) -> float:
        """The cash the open buys hold (but ``exclude``): the sum of their :meth:`_cost`, in
        placement order, read from ``_open_buys`` where it does not move with the clock."""
        self._check_live()
        buys = self._open_buys
        # added one by one (as replay's declared-orders kernel adds them): Python 3.12's
        # sum() of floats compensates, which would round the total differently
        if exclude not in buys and None not in buys.values():
            return functools.reduce(operator.add, buys.values(), 0.0)
        live, cols = self._live, self._cols
        return functools.reduce(operator.add, (
            self._cost(live[cid], cols[live[cid].symbol]) if cost is None else cost
            for cid, cost in buys.items() if cid != exclude and cid in live), 0.0)

    def _reserved_base(self, col: int, extra: Order | None) -> float:
        """The base the open sells of ``col`` (and ``extra``) hold: their remaining
        quantities, the largest once per OCO group, in placement order."""
        groups: dict[str, float] = {}
        total = 0.0
        self._check_live()
        holds = list(self._sell_holds.get(col, {}).values())
        if extra is not None:
            holds.append((extra.remaining, extra.group))
        for remaining, group in holds:
            if group is None:
                total += remaining
            else:
                groups[group] = max(groups.get(group, 0.0), remaining)
        return total + sum(groups.values())

    def _check_funds(self, order: Order, col: int) -> None:
        if order.side is OrderSide.BUY:
            need = self._cost(order, col)
            free = self.cash - self._reserved_cash(exclude=order.client_id)
            if need > free * (1 + _TOL) + 1e-9:
                self._reject(order, "insufficient_funds", InsufficientFunds(
                    f"Order {order.client_id!r} ({order.side.value} {order.symbol}) needs "
                    f"{need:,.8g} {self.quote}; {free:,.8g} is free."))
            return
        need = self._reserved_base(col, order)
        held = float(self.holdings[col])
        if need > held * (1 + _TOL) + 1e-12:
            self._reject(order, "insufficient_funds", InsufficientFunds(
                f"Order {order.client_id!r} sells {order.quantity:,.8g} {order.symbol}; open "
                f"sells would need {need:,.8g} and {held:,.8g} is held."))
