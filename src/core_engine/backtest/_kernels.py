"""Numba kernel of the backtest: simulate picks over their holding windows.

Arrays in, one structured record array out; validation is the caller's job
(:func:`core_engine.backtest.simulate.simulate_picks`). The semantics are documented there.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# exit reasons (int constants so the hot loop stays in nopython mode)
WINDOW_END = 0
STOP_LOSS = 1
TAKE_PROFIT = 2
TRAILING_STOP = 3
EXIT_REASON_NAMES = ("window_end", "stop_loss", "take_profit", "trailing_stop")

# status of a pick
TRADED = 0
NO_ENTRY_CANDLE = 1
STATUS_NAMES = ("traded", "no_entry_candle")

TRADE_DTYPE = np.dtype([
    ("pick", np.int64),
    ("status", np.int8),
    ("entry_row", np.int64),
    ("exit_row", np.int64),
    ("entry_time", np.int64),
    ("exit_time", np.int64),
    ("entry_price", np.float64),
    ("exit_price", np.float64),
    ("return_pct", np.float64),
    ("best_return_pct", np.float64),
    ("max_drawdown", np.float64),
    ("exit_reason", np.int8),
    ("ambiguous", np.bool_),
    ("gaps_in_window", np.int32),
    ("exit_at_last_close", np.bool_),
])


@njit(cache=True)
def _level_below(ref, frac, dist):
    """``ref × (1 − frac) − dist`` treating NaN parts as absent; NaN when both are absent."""
    if np.isnan(frac) and np.isnan(dist):
        return np.nan
    level = ref
    if not np.isnan(frac):
        level = level * (1.0 - frac)
    if not np.isnan(dist):
        level = level - dist
    return level


@njit(cache=True)
def _level_above(ref, frac, dist):
    if np.isnan(frac) and np.isnan(dist):
        return np.nan
    level = ref
    if not np.isnan(frac):
        level = level * (1.0 + frac)
    if not np.isnan(dist):
        level = level + dist
    return level


@njit(cache=True)
def _net_return_pct(entry_price, raw_exit, fee, slip):
    exit_price = raw_exit * (1.0 - slip)
    return (exit_price * (1.0 - fee) / (entry_price * (1.0 + fee)) - 1.0) * 100.0


@njit(cache=True)
def _stop_in_force(stop_level, highest, trail_frac, trail_dist, has_trail):
    """The stop level for the next candle (fixed stop or trail, whichever is higher) and its
    exit reason; the trail follows the highest high seen *before* that candle."""
    level = stop_level
    reason = STOP_LOSS
    if has_trail:
        trail_level = _level_below(highest, trail_frac, trail_dist)
        if np.isnan(level) or trail_level > level:
            level = trail_level
            reason = TRAILING_STOP
    return level, reason


@njit(cache=True)
def simulate_one(out, p, open_, high, low, close, row, window, fee, slip,
                 stop_frac, stop_dist, target_frac, target_dist, trail_frac, trail_dist,
                 index0, step):
    """Simulate one long pick decided at row ``row`` on one symbol's 1-D series; fill ``out[p]``."""
    n = open_.shape[0]
    rec = out[p]
    rec.pick = p
    entry_row = row + 1
    rec.entry_row = entry_row
    rec.entry_time = index0 + entry_row * step
    rec.ambiguous = False
    rec.gaps_in_window = 0
    rec.exit_at_last_close = False
    if entry_row >= n or np.isnan(open_[entry_row]):
        rec.status = NO_ENTRY_CANDLE
        rec.exit_row = -1
        rec.exit_time = 0
        rec.entry_price = np.nan
        rec.exit_price = np.nan
        rec.return_pct = np.nan
        rec.best_return_pct = np.nan
        rec.max_drawdown = np.nan
        rec.exit_reason = WINDOW_END
        return
    rec.status = TRADED
    entry_price = open_[entry_row] * (1.0 + slip)
    rec.entry_price = entry_price
    stop_level = _level_below(entry_price, stop_frac, stop_dist)
    target_level = _level_above(entry_price, target_frac, target_dist)
    has_trail = not (np.isnan(trail_frac) and np.isnan(trail_dist))
    highest = entry_price
    lowest = entry_price
    last_row = row + window
    gaps = 0
    last_present = -1
    for k in range(entry_row, last_row + 1):
        o = open_[k]
        if np.isnan(o):
            gaps += 1
            continue
        last_present = k
        h = high[k]
        lo = low[k]
        # the stop in force for candle k: fixed stop and trail from highs up to k-1
        eff_stop, reason = _stop_in_force(stop_level, highest, trail_frac, trail_dist, has_trail)
        stop_hit = (not np.isnan(eff_stop)) and lo <= eff_stop
        target_hit = (not np.isnan(target_level)) and h >= target_level
        if stop_hit and o <= eff_stop:
            _close_trade(rec, k, o, index0 + k * step, reason, lowest, o, entry_price, fee, slip)
            rec.gaps_in_window = gaps
            return
        if target_hit and o >= target_level:
            _close_trade(rec, k, o, index0 + k * step, TAKE_PROFIT, lowest, o,
                         entry_price, fee, slip)
            rec.gaps_in_window = gaps
            return
        if stop_hit:
            _close_trade(rec, k, eff_stop, index0 + (k + 1) * step, reason, lowest, eff_stop,
                         entry_price, fee, slip)
            if target_hit:
                rec.ambiguous = True
                rec.best_return_pct = _net_return_pct(entry_price, target_level, fee, slip)
            rec.gaps_in_window = gaps
            return
        if target_hit:
            _close_trade(rec, k, target_level, index0 + (k + 1) * step, TAKE_PROFIT, lowest, lo,
                         entry_price, fee, slip)
            rec.gaps_in_window = gaps
            return
        if lo < lowest:
            lowest = lo
        if h > highest:
            highest = h
    rec.gaps_in_window = gaps
    # Exit at the open of the candle starting at t + window. When that candle is missing
    # (an outage), the position is still held: it exits at the first open that exists, and
    # a stop or target that open already crossed names the exit. Exiting at the last close
    # before the outage would need to know the outage was coming.
    exit_row = last_row + 1
    while exit_row < n and np.isnan(open_[exit_row]):
        exit_row += 1
    if exit_row < n:
        o = open_[exit_row]
        eff_stop, reason = _stop_in_force(stop_level, highest, trail_frac, trail_dist, has_trail)
        if np.isnan(eff_stop) or o > eff_stop:
            reason = WINDOW_END
            if not np.isnan(target_level) and o >= target_level:
                reason = TAKE_PROFIT
        _close_trade(rec, exit_row, o, index0 + exit_row * step, reason, lowest, o,
                     entry_price, fee, slip)
    else:
        # no later candle at all (the data end, or a delisting): the last close is the only
        # price there is; flagged so the trade can be inspected or dropped
        c = close[last_present]
        _close_trade(rec, last_present, c, index0 + (last_present + 1) * step, WINDOW_END,
                     lowest, c, entry_price, fee, slip)
        rec.exit_at_last_close = True


@njit(cache=True)
def _close_trade(rec, exit_row, raw_exit, exit_time, reason, lowest, exit_candle_low,
                 entry_price, fee, slip):
    rec.exit_row = exit_row
    rec.exit_time = exit_time
    rec.exit_price = raw_exit * (1.0 - slip)
    rec.exit_reason = reason
    ret = _net_return_pct(entry_price, raw_exit, fee, slip)
    rec.return_pct = ret
    rec.best_return_pct = ret
    worst = lowest
    if exit_candle_low < worst:
        worst = exit_candle_low
    if raw_exit < worst:
        worst = raw_exit
    dd = (1.0 - worst / entry_price) * 100.0
    rec.max_drawdown = dd if dd > 0.0 else 0.0


@njit(cache=True)
def simulate_picks_serial(open_, high, low, close, rows, cols, window, fee, slip,
                          stop_frac, stop_dist, target_frac, target_dist, trail_frac, trail_dist,
                          index0, step, out):
    """:func:`simulate_one` for every pick ``p`` (row ``rows[p]``, column ``cols[p]``)."""
    for p in range(rows.shape[0]):
        j = cols[p]
        simulate_one(out, p, open_[:, j], high[:, j], low[:, j], close[:, j], rows[p], window,
                     fee, slip, stop_frac[p], stop_dist[p], target_frac[p], target_dist[p],
                     trail_frac[p], trail_dist[p], index0, step)
    return out


@njit(cache=True, parallel=True)
def simulate_picks_2d(open_, high, low, close, rows, cols, window, fee, slip,
                      stop_frac, stop_dist, target_frac, target_dist, trail_frac, trail_dist,
                      index0, step, out):
    """:func:`simulate_picks_serial` with the picks spread over threads (large jobs only:
    waking the threads costs more than a few thousand picks)."""
    for p in prange(rows.shape[0]):
        j = cols[p]
        simulate_one(out, p, open_[:, j], high[:, j], low[:, j], close[:, j], rows[p], window,
                     fee, slip, stop_frac[p], stop_dist[p], target_frac[p], target_dist[p],
                     trail_frac[p], trail_dist[p], index0, step)
    return out


@njit(cache=True)
def count_missing_2d(values):
    """Per column of a ``(T, N)`` array: ``out[0, j]`` NaN rows in total, ``out[1, j]`` NaN
    rows between the column's first and last present row (gaps, as opposed to rows before
    a listing or after a delisting)."""
    n_rows, n_cols = values.shape
    out = np.zeros((2, n_cols), dtype=np.int64)
    for j in prange(n_cols):
        total = 0
        first = -1
        last = -1
        for i in range(n_rows):
            if np.isnan(values[i, j]):
                total += 1
            else:
                if first < 0:
                    first = i
                last = i
        out[0, j] = total
        if first >= 0:
            out[1, j] = (last - first + 1) - (n_rows - total)
    return out
