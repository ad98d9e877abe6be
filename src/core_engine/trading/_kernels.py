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
def next_event_row(open_, high, low, resting, n, start, stop):
    """The first row in ``[start, stop)`` where an order of ``resting[:n]`` (records of
    ``RESTING_DTYPE``; a negative ``kind`` marks a free slot) can fill, or ``stop`` when
    none can; equals :func:`order_triggers` over every order and row.

    The fixed-level orders of a symbol reduce to four bounds: a candle triggers one of them
    exactly when its open is at or below the highest limit buy, its low at or below the
    highest of those and of the fixed sell stops, its open at or above the lowest stop buy,
    or its high at or above the lowest of those, of the limit sells and of the stops' OCO
    targets (the conditions of :func:`limit_buy_on_candle`, :func:`stop_buy_on_candle` and
    ``exit_on_candle``). Only trailing stops are checked one by one.

    Missing candles (NaN open) fill nothing. ``resting[k].highest`` of each trailing stop
    is raised by the high of every candle *before* the returned row (the candles that
    finished without a fill); the caller raises it for the returned row after matching.
    """
    ncols = open_.shape[1]
    open_le = np.full(ncols, -np.inf)   # open at or below: limit buys
    low_le = np.full(ncols, -np.inf)    # low at or below: limit buys, fixed sell stops
    open_ge = np.full(ncols, np.inf)    # open at or above: stop buys
    high_ge = np.full(ncols, np.inf)    # high at or above: stop buys, limit sells, targets
    market = np.zeros(ncols, dtype=np.bool_)
    used = np.zeros(ncols, dtype=np.bool_)
    trails = np.empty(n, dtype=np.int64)
    n_trails = 0
    for k in range(n):
        rec = resting[k]
        if rec.kind < 0:
            continue
        c = rec.col
        if rec.kind == MARKET:
            market[c] = True
            used[c] = True
        elif rec.side == BUY:
            used[c] = True
            if rec.kind == LIMIT:
                open_le[c] = max(open_le[c], rec.level)
                low_le[c] = max(low_le[c], rec.level)
            else:
                open_ge[c] = min(open_ge[c], rec.level)
                high_ge[c] = min(high_ge[c], rec.level)
        elif rec.kind == LIMIT:
            used[c] = True
            high_ge[c] = min(high_ge[c], rec.level)
        elif np.isnan(rec.trail_frac) and np.isnan(rec.trail_dist):
            used[c] = True
            if not np.isnan(rec.level):
                low_le[c] = max(low_le[c], rec.level)
            if not np.isnan(rec.target):
                high_ge[c] = min(high_ge[c], rec.target)
        else:
            trails[n_trails] = k
            n_trails += 1
    cols = np.flatnonzero(used)
    for r in range(start, stop):
        for c in cols:
            o = open_[r, c]
            if np.isnan(o):
                continue
            # (the open against the low and high bounds too: implied on a real candle, not on
            # one that has an open alone, such as check_trader's cut at t)
            if market[c] or o <= open_le[c] or low[r, c] <= low_le[c] or o <= low_le[c] \
                    or o >= open_ge[c] or high[r, c] >= high_ge[c] or o >= high_ge[c]:
                return r
        for i in range(n_trails):
            rec = resting[trails[i]]
            c = rec.col
            o = open_[r, c]
            if np.isnan(o):
                continue
            if order_triggers(rec.side, rec.kind, rec.level, rec.target, rec.trail_frac,
                              rec.trail_dist, rec.highest, o, high[r, c], low[r, c]):
                return r
        for i in range(n_trails):
            rec = resting[trails[i]]
            h = high[r, rec.col]
            if h > rec.highest:  # False for NaN
                rec.highest = h
    return stop


@njit(cache=True)
def triggers_on_row(open_, high, low, resting, n, row, open_only, out):
    """The orders of ``resting[:n]`` that can fill on candle ``row`` (with ``open_only``,
    at its open alone): their indexes are written to ``out[:count]`` in order and ``count``
    is returned; the SimBroker matches only those in Python. None where the candle is
    missing, nor free slots (negative ``kind``)."""
    count = 0
    for k in range(n):
        rec = resting[k]
        c = rec.col
        o = open_[row, c]
        if rec.kind < 0 or np.isnan(o):
            continue
        h = o if open_only else high[row, c]
        lo = o if open_only else low[row, c]
        if order_triggers(rec.side, rec.kind, rec.level, rec.target, rec.trail_frac,
                          rec.trail_dist, rec.highest, o, h, lo):
            out[count] = k
            count += 1
    return count


@njit(cache=True)
def equity_marks(close, snap_rows, snap_cash, snap_hold, start_row, end_row, initial_cash):
    """The account marked at the close of each row ``start_row..end_row`` after a first mark
    of ``initial_cash``: ``(marks, positions)``, ``marks`` rows equity, cash, exposure and
    drawdown in percent of the running peak.

    The account at a row is the last snapshot ``(snap_rows, snap_cash, snap_hold)`` taken at
    or before it (rows nondecreasing; the first at or before ``start_row``); each holding
    is valued at its symbol's last close (carried over missing candles; a symbol with no
    close yet adds nothing). One pass, no temporary per row and symbol: the replay's
    equity frame (``results.equity_frame``) of a year of 5m candles."""
    n = end_row - start_row + 1
    k = close.shape[1]
    marks = np.empty((4, n + 1))
    positions = np.zeros(n + 1, dtype=np.int64)
    last = np.full(k, np.nan)
    for j in range(k):  # the close carried into the first row
        for r in range(start_row - 1, -1, -1):
            if not np.isnan(close[r, j]):
                last[j] = close[r, j]
                break
    peak = max(initial_cash, 0.0)
    marks[0, 0] = initial_cash
    marks[1, 0] = initial_cash
    marks[2, 0] = 0.0
    marks[3, 0] = max((1.0 - initial_cash / peak) * 100.0, 0.0) if peak > 0 else 0.0
    p = 0
    n_snaps = len(snap_rows)
    for t in range(n):
        row = start_row + t
        while p + 1 < n_snaps and snap_rows[p + 1] <= row:
            p += 1
        exposure = 0.0
        held = 0
        for j in range(k):
            c = close[row, j]
            if not np.isnan(c):
                last[j] = c
            h = snap_hold[p, j]
            if h > 0:
                held += 1
            if h != 0:
                v = h * last[j]
                if not np.isnan(v):
                    exposure += v
        cash = snap_cash[p]
        value = cash + exposure
        peak = max(peak, max(value, 0.0))
        marks[0, t + 1] = value
        marks[1, t + 1] = cash
        marks[2, t + 1] = exposure
        marks[3, t + 1] = max((1.0 - value / peak) * 100.0, 0.0) if peak > 0 else 0.0
        positions[t + 1] = held
    return marks, positions


@njit(cache=True)
def round_trips(col, buy, qty, price, fee, weight, rebalance, time, n_cols):
    """Fills (in the order made; ``col`` the symbol's column) grouped per symbol into
    flat-to-flat round trips (``core_engine.trading.trips``). Returns ``(first, last,
    basis, sold)`` per trip in the order trips end: the indexes of its first buy (the
    earliest ``time``; the first made among equal times) and its last sell, its cost
    basis ``(quantity, buy value, buy fees, weight)`` and its sells' ``(quantity, value,
    fees)``. The basis is the position's when it is flat again: its
    quantity the position's at the first closing sell, plus what was bought after it (a
    grid re-buying before it is flat), less partial rebalancing sales after it; value, fees
    and weight those of every buy, less the partial sales' shares. Sums run in fill
    order."""
    n = len(col)
    held = np.zeros(n_cols)
    bought = np.zeros(n_cols)
    value = np.zeros(n_cols)
    fees = np.zeros(n_cols)
    wsum = np.zeros(n_cols)
    first_buy = np.full(n_cols, -1)
    based = np.zeros(n_cols, dtype=np.bool_)
    base = np.zeros((n_cols, 1))
    sells = np.zeros((n_cols, 3))
    first = np.empty(n, dtype=np.int64)
    last = np.empty(n, dtype=np.int64)
    basis = np.empty((n, 4))
    sold = np.empty((n, 3))
    m = 0
    for i in range(n):
        c = col[i]
        q = qty[i]
        if buy[i]:
            # the entry: the earliest buy (a fill at the open of a candle can follow one
            # inside the candle before it in the order fills are made)
            if first_buy[c] < 0 or time[i] < time[first_buy[c]]:
                first_buy[c] = i
            held[c] += q
            bought[c] += q
            value[c] += q * price[i]
            fees[c] += fee[i]
            wsum[c] += weight[i]
            if based[c]:  # bought after the position began to close: closed by this trip
                base[c, 0] += q
            continue
        if rebalance[i] and first_buy[c] >= 0 and held[c] - q > bought[c] * 1e-9:
            # a partial rebalancing sale: a trip of its own at average cost (its share of
            # the basis: what is held and what closing sales already sold)
            share = q / (base[c, 0] if based[c] else held[c])
            first[m] = first_buy[c]
            last[m] = i
            basis[m, 0] = q
            basis[m, 1] = value[c] * share
            basis[m, 2] = fees[c] * share
            basis[m, 3] = wsum[c] * share
            sold[m, 0] = 0.0 + q
            sold[m, 1] = 0.0 + q * price[i]
            sold[m, 2] = 0.0 + fee[i]
            m += 1
            held[c] -= q
            value[c] *= 1.0 - share
            fees[c] *= 1.0 - share
            wsum[c] *= 1.0 - share
            if based[c]:
                base[c, 0] -= q
            continue
        if not based[c]:  # the quantity the closing sells close
            based[c] = True
            base[c, 0] = held[c]
        sells[c, 0] += q
        sells[c, 1] += q * price[i]
        sells[c, 2] += fee[i]
        held[c] -= q
        if held[c] <= bought[c] * 1e-9:
            if first_buy[c] >= 0:
                first[m] = first_buy[c]
                last[m] = i
                basis[m, 0] = base[c, 0]
                basis[m, 1] = value[c]
                basis[m, 2] = fees[c]
                basis[m, 3] = wsum[c]
                sold[m, :] = sells[c, :]
                m += 1
            held[c] = 0.0
            bought[c] = 0.0
            value[c] = 0.0
            fees[c] = 0.0
            wsum[c] = 0.0
            first_buy[c] = -1
            based[c] = False
            sells[c, :] = 0.0
    return first[:m], last[:m], basis[:m], sold[:m]


_DAY_NS = 86_400 * 10**9


@njit(cache=True, error_model="numpy")
def account_marks(times_ns, value, drawdown, exposure, initial_cash):
    """One pass over the marks of a replay's account for its metrics
    (``results.account_metrics``): ``(daily, longest, exposure_sum, exposure_n)``.

    ``daily``: the returns of the last value of each UTC day (NaN values skipped), the first
    from ``initial_cash``, NaN returns dropped (pandas' ``resample("1D").last()`` then
    ``pct_change``); ``longest``: the longest run of marks with ``drawdown > 0``;
    ``exposure_sum / exposure_n``: the mean of ``exposure / value`` over the marks with
    ``value > 0`` (NaN skipped)."""
    n = len(value)
    daily = np.empty(n + 1)
    daily[0] = initial_cash
    m = 1
    have = False
    day = 0
    last = np.nan
    run = 0
    longest = 0
    share_sum = 0.0
    share_n = 0
    for i in range(n):
        if drawdown[i] > 0:
            run += 1
            if run > longest:
                longest = run
        else:
            run = 0
        v = value[i]
        if v > 0:
            share = exposure[i] / v
            if not np.isnan(share):
                share_sum += share
                share_n += 1
        if np.isnan(v):
            continue
        d = times_ns[i] // _DAY_NS
        if have and d != day:
            daily[m] = last
            m += 1
        last = v
        day = d
        have = True
    if not have:
        return np.empty(0), longest, share_sum, share_n
    daily[m] = last
    m += 1
    out = np.empty(m - 1)
    k = 0
    for i in range(m - 1):
        r = daily[i + 1] / daily[i] - 1
        if not np.isnan(r):
            out[k] = r
            k += 1
    return out[:k], longest, share_sum, share_n
