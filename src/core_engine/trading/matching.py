"""How a SimBroker matches one resting order, or a stop and its OCO target, on a candle (the
rules in :mod:`core_engine.trading.sim`'s docstring; sells with the backtest's own
:func:`~core_engine.backtest._kernels.exit_on_candle`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from core_engine.backtest._kernels import (
    EXIT_REASON_NAMES,
    NO_EXIT,
    STOP_LOSS,
    exit_on_candle,
    stop_in_force,
)
from core_engine.trading._kernels import limit_buy_on_candle, stop_buy_on_candle
from core_engine.trading.orders import Order, OrderSide, OrderType

__all__ = ["Matching"]


def _price(value: float | None) -> float:
    return math.nan if value is None else float(value)


class Matching:
    """The candle matching of :class:`~core_engine.trading.sim.SimBroker` (a mixin: it reads
    the broker's candles and open orders and fills through its ``_execute``)."""

    _open: np.ndarray
    _high: np.ndarray
    _low: np.ndarray
    _live: dict[str, Order]
    _highest: dict[str, float]
    stop_fill: int
    stop_fill_frac: float
    _execute: Callable[..., None]

    def _name_exit_at_open(self, order: Order, o: float) -> str:
        for sib in self._siblings(order):
            if sib.side is OrderSide.SELL and sib.type is OrderType.STOP:
                level, code = self._stop_level(sib)
                if not np.isnan(level) and o <= level:
                    return EXIT_REASON_NAMES[code]
        for sib in self._siblings(order):
            if sib.side is OrderSide.SELL and sib.type is OrderType.LIMIT \
                    and o >= float(sib.limit_price or math.inf):
                return "take_profit"
        return "market"

    def _stop_level(self, order: Order) -> tuple[float, int]:
        frac = np.nan if order.trail_pct is None else order.trail_pct / 100.0
        dist = np.nan if order.trail_offset is None else order.trail_offset
        has_trail = order.trail_pct is not None or order.trail_offset is not None
        stop = np.nan if order.stop_price is None else order.stop_price
        level, code = stop_in_force(stop, self._highest.get(order.client_id, np.nan), frac, dist,
                                    has_trail)
        return float(level), int(code)

    def _candle(self, col: int, row: int) -> tuple[float, float, float]:
        return (float(self._open[row, col]), float(self._high[row, col]),
                float(self._low[row, col]))

    def _match_one(self, order: Order, col: int, row: int, open_only: bool = False) -> None:
        o, h, lo = self._candle(col, row)
        if open_only:
            h = lo = o
        # a cheap pre-check (the helpers below decide): most resting orders are far away
        if order.type is OrderType.LIMIT:
            limit = _price(order.limit_price)
            if (lo > limit) if order.side is OrderSide.BUY else (h < limit):
                return
        elif order.side is OrderSide.BUY and h < _price(order.stop_price):
            return
        if order.side is OrderSide.BUY:
            if order.type is OrderType.LIMIT:
                hit, raw, at_open = limit_buy_on_candle(o, lo, _price(order.limit_price))
                reason = "limit"
            else:
                hit, raw, at_open = stop_buy_on_candle(o, h, _price(order.stop_price))
                reason = "stop"
            if hit:
                self._execute(order, col, row, float(raw), at_open=bool(at_open), reason=reason)
            return
        if order.type is OrderType.LIMIT:
            code, raw, at_open, _, _ = exit_on_candle(o, h, lo, np.nan, STOP_LOSS,
                                                      _price(order.limit_price), self.stop_fill,
                                                      self.stop_fill_frac)
        else:
            level, stop_code = self._stop_level(order)
            code, raw, at_open, _, _ = exit_on_candle(o, h, lo, level, stop_code, np.nan,
                                                      self.stop_fill, self.stop_fill_frac)
        if code != NO_EXIT:
            self._execute(order, col, row, float(raw), at_open=bool(at_open),
                          reason=EXIT_REASON_NAMES[code])

    def _match_pair(self, stop: Order, target: Order, col: int, row: int,
                    open_only: bool = False) -> None:
        o, h, lo = self._candle(col, row)
        if open_only:
            h = lo = o
        level, stop_code = self._stop_level(stop)
        code, raw, at_open, ambiguous, _ = exit_on_candle(
            o, h, lo, level, stop_code, _price(target.limit_price), self.stop_fill,
            self.stop_fill_frac)
        if code == NO_EXIT:
            return
        order = target if EXIT_REASON_NAMES[code] == "take_profit" else stop
        self._execute(order, col, row, float(raw), at_open=bool(at_open),
                      reason=EXIT_REASON_NAMES[code], ambiguous=bool(ambiguous))

    def _siblings(self, order: Order) -> list[Order]:
        if order.group is None:
            return []
        return [o for o in self._live.values()
                if o.group == order.group and o.client_id != order.client_id and o.is_open]

    def _group_pair(self, order: Order) -> tuple[Order, Order] | None:
        """(stop, limit) of a sell OCO group holding exactly one of each, else None."""
        if order.group is None or order.side is not OrderSide.SELL:
            return None
        members = [order, *self._siblings(order)]
        resting = [o for o in members if o.type is not OrderType.MARKET]
        stops = [o for o in resting if o.type is OrderType.STOP and o.side is OrderSide.SELL]
        limits = [o for o in resting if o.type is OrderType.LIMIT and o.side is OrderSide.SELL]
        if len(resting) == 2 and len(stops) == 1 and len(limits) == 1:
            return stops[0], limits[0]
        return None
