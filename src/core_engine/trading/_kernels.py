"""Numba kernels of the event world: buy-side fill checks and the event-skipping search.

Sells (stops, trailing stops, targets, OCO stop + target) are matched with the backtest's own
fill model, :func:`core_engine.backtest._kernels.exit_on_candle` and
:func:`~core_engine.backtest._kernels.stop_in_force`, so one rule decides a stop or a target
everywhere (DESIGN.md: one cost and fill model). Buys are their mirror image, written here:

``limit_buy_on_candle(o, lo, level) -> (hit, raw_price, at_open)``
    open at or below the limit → at the open (the candle opened through it); low at or
    below the limit → at the limit.
``stop_buy_on_candle(o, h, level) -> (hit, raw_price, at_open)``
    open at or above the stop → at the open (a gap); high at or above the stop → at the stop.

:func:`next_event_row` scans the candles for the first row where any resting order can
trigger, raising each trailing stop's ``highest`` with the highs of the candles it passes,
so :func:`~core_engine.trading.events.replay` jumps over quiet stretches instead of calling
Python on every candle.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from core_engine.backtest._kernels import (
    NO_EXIT,
    STOP_FILL_LEVEL,
    STOP_LOSS,
    exit_on_candle,
    stop_in_force,
)

# order codes (orders.SIDE_CODE / orders.TYPE_CODE)
BUY = 0
SELL = 1
MARKET = 0
LIMIT = 1
STOP = 2


@njit(cache=True)
def limit_buy_on_candle(o, lo, level):
    """A limit buy at ``level`` on one present candle; see the module docstring."""
    if o <= level:
        return True, o, True
    if lo <= level:
        return True, level, False
    return False, np.nan, False


@njit(cache=True)
def stop_buy_on_candle(o, h, level):
    """A stop buy at ``level`` on one present candle; see the module docstring."""
    if o >= level:
        return True, o, True
    if h >= level:
        return True, level, False
    return False, np.nan, False


@njit(cache=True)
def order_triggers(side, kind, level, target, trail_frac, trail_dist, highest, o, h, lo):
    """Whether one resting order fills (at least partly) on a present candle."""
    if kind == MARKET:
        return True
    if side == BUY:
        if kind == LIMIT:
            return limit_buy_on_candle(o, lo, level)[0]
        return stop_buy_on_candle(o, h, level)[0]
    if kind == LIMIT:
        return exit_on_candle(o, h, lo, np.nan, STOP_LOSS, level, STOP_FILL_LEVEL, 0.0)[0] \
            != NO_EXIT
    has_trail = not (np.isnan(trail_frac) and np.isnan(trail_dist))
    stop, reason = stop_in_force(level, highest, trail_frac, trail_dist, has_trail)
    return exit_on_candle(o, h, lo, stop, reason, target, STOP_FILL_LEVEL, 0.0)[0] != NO_EXIT


@njit(cache=True)
def next_event_row(open_, high, low, resting, start, stop):
    """The first row in ``[start, stop)`` where an order of ``resting`` (records of
    ``RESTING_DTYPE``) can fill, or ``stop`` when none can.

    Missing candles (NaN open) fill nothing. ``resting[k].highest`` of each trailing stop
    is raised by the high of every present candle *before* the returned row (the candles
    that finished without a fill); the caller raises it for the returned row after matching.
    """
    m = resting.shape[0]
    for r in range(start, stop):
        for k in range(m):
            rec = resting[k]
            c = rec.col
            o = open_[r, c]
            if np.isnan(o):
                continue
            if order_triggers(rec.side, rec.kind, rec.level, rec.target, rec.trail_frac,
                              rec.trail_dist, rec.highest, o, high[r, c], low[r, c]):
                return r
        for k in range(m):
            rec = resting[k]
            h = high[r, rec.col]
            if h > rec.highest:  # False for NaN
                rec.highest = h
    return stop


@njit(cache=True)
def triggers_on_row(open_, high, low, resting, row, open_only, out):
    """``out[k]``: whether order ``k`` of ``resting`` can fill on candle ``row`` (with
    ``open_only``, at its open alone); the SimBroker matches only those in Python. False
    where the candle is missing."""
    for k in range(resting.shape[0]):
        rec = resting[k]
        c = rec.col
        o = open_[row, c]
        if np.isnan(o):
            out[k] = False
            continue
        h = o if open_only else high[row, c]
        lo = o if open_only else low[row, c]
        out[k] = order_triggers(rec.side, rec.kind, rec.level, rec.target, rec.trail_frac,
                                rec.trail_dist, rec.highest, o, h, lo)
    return out
