"""Numba kernels of the backtest: the per-candle fill model and the slices-mode simulation.

Arrays in, arrays and scalars out; validation is the caller's job
(:func:`core_engine.backtest.simulate.simulate_picks`, whose docstring states the rules in
words). DESIGN.md asks for "one cost and fill model for every simulation": the slices
kernel below, the portfolio kernel and the candle-matching SimBroker all call the same
small helpers, so a fill rule is written once.

Reusable helpers (all ``@njit(cache=True)``, scalars in and out unless said):

``level_below(ref, frac, dist) -> float`` / ``level_above(ref, frac, dist) -> float``
    ``ref × (1 ∓ frac) ∓ dist`` with NaN parts absent; NaN when both are NaN (no rule).
    Stop and trail levels use ``level_below``, the target ``level_above``. Levels are fixed
    from the entry *fill* (after slippage); ``dist`` is an ATR multiple known at ``t``.

``stop_in_force(stop_level, highest, trail_frac, trail_dist, has_trail) -> (level, reason)``
    The stop that applies to the next candle: the higher of the fixed stop and the trail
    ``level_below(highest, trail_frac, trail_dist)``, where ``highest`` is the highest high
    of the candles *already finished* (start it at the entry fill, raise it after checking
    a candle). ``reason`` is ``STOP_LOSS`` or ``TRAILING_STOP`` (a tie is ``STOP_LOSS``);
    ``level`` is NaN when neither rule is set.

``exit_on_candle(o, h, lo, stop_level, stop_reason, target_level, stop_fill, stop_fill_frac)
-> (reason, raw_price, at_open, ambiguous, worst_raw)``
    Whether one present candle closes a long position, in this order: open at or below the
    stop → out at the open (gap through the stop); open at or above the target → out at the
    open; low at or below the stop → out at the stop fill (``stop_fill_price``), and
    ``ambiguous`` when the same candle's high also reached the target (stop assumed first);
    high at or above the target → out at the target level. ``reason`` is ``NO_EXIT`` (-1)
    when nothing fired (then the other values are meaningless). ``raw_price`` is before
    exit slippage; ``at_open`` says the fill happened at the candle's open (exit time = its
    open time; otherwise its close time, ``open + step``). ``worst_raw`` is the conservative
    bound of the fill: the candle's low for a stop filled inside the candle, ``raw_price``
    otherwise. NaN levels mean "no rule".

``stop_fill_price(level, h, lo, stop_fill, stop_fill_frac) -> float``
    The fill of a stop reached inside a candle (its open above the level):
    ``STOP_FILL_LEVEL`` the level itself; ``STOP_FILL_LOW`` the candle's low;
    ``STOP_FILL_RANGE`` ``max(lo, level − stop_fill_frac × (h − lo))``.

``exit_candle_low(reason, at_open, raw_price, lo) -> float``
    The lowest raw price the position was exposed to on its exit candle (max drawdown):
    the fill for exits at the open or at a stop, the candle's low for a target inside it.

``exit_after_window(open_, close, due_row, last_present, stop_level, stop_reason,
target_level, max_delay) -> (exit_row, raw_price, reason, outcome, delayed_by)``
    The time exit of a position due out at the open of row ``due_row`` (1-D series of one
    symbol). When that candle is missing (an outage) the position is held to the first
    present open after it (``outcome = EXIT_AT_OPEN``, ``delayed_by`` = candles late); an
    open already beyond the stop or the target names the exit. ``max_delay`` caps the
    wait (in candles, ``-1`` = unlimited): past it the position exits at the close of
    ``last_present`` (the last present candle before the gap; must be ``>= 0``), outcome
    ``EXIT_DELAY_CAPPED``. With no later candle at all (data end, delisting) it exits at
    that same last close, outcome ``EXIT_AT_LAST_CLOSE`` (also when a cap was set: the
    cap changed nothing). For both last-close outcomes
    ``exit_row = last_present``, the exit time is that candle's close and ``delayed_by``
    is 0.

``net_return_pct(entry_price, raw_exit, fee, slip) -> float``
    The cost model: ``raw_exit × (1 − slip) × (1 − fee) / (entry_price × (1 + fee)) − 1``,
    in percent (``entry_price`` already includes the entry slippage).

Constants: exit reasons ``WINDOW_END, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP`` (names in
``EXIT_REASON_NAMES``) and ``NO_EXIT``; stop fills ``STOP_FILL_LEVEL, STOP_FILL_LOW,
STOP_FILL_RANGE`` (names in ``STOP_FILL_NAMES``); window-end outcomes ``EXIT_AT_OPEN,
EXIT_AT_LAST_CLOSE, EXIT_DELAY_CAPPED``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# exit reasons (int constants so the hot loop stays in nopython mode)
NO_EXIT = -1
WINDOW_END = 0
STOP_LOSS = 1
TAKE_PROFIT = 2
TRAILING_STOP = 3
EXIT_REASON_NAMES = ("window_end", "stop_loss", "take_profit", "trailing_stop")

# how a stop reached inside a candle fills
STOP_FILL_LEVEL = 0
STOP_FILL_LOW = 1
STOP_FILL_RANGE = 2
STOP_FILL_NAMES = ("level", "low", "range")

# how a time exit resolved (exit_after_window)
EXIT_AT_OPEN = 0
EXIT_AT_LAST_CLOSE = 1
EXIT_DELAY_CAPPED = 2

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
    ("worst_case_return_pct", np.float64),
    ("max_drawdown", np.float64),
    ("exit_reason", np.int8),
    ("ambiguous", np.bool_),
    ("gaps_in_window", np.int32),
    ("exit_at_last_close", np.bool_),
    ("exit_delayed_by", np.int64),
    ("exit_delay_capped", np.bool_),
])


# ---------------------------------------------------------------- the shared fill model
@njit(cache=True)
def level_below(ref, frac, dist):
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
def level_above(ref, frac, dist):
    """``ref × (1 + frac) + dist`` treating NaN parts as absent; NaN when both are absent."""
    if np.isnan(frac) and np.isnan(dist):
        return np.nan
    level = ref
    if not np.isnan(frac):
        level = level * (1.0 + frac)
    if not np.isnan(dist):
        level = level + dist
    return level


@njit(cache=True)
def net_return_pct(entry_price, raw_exit, fee, slip):
    """Net return in percent of a long trade: exit slippage and a fee on both sides."""
    exit_price = raw_exit * (1.0 - slip)
    return (exit_price * (1.0 - fee) / (entry_price * (1.0 + fee)) - 1.0) * 100.0


@njit(cache=True)
def stop_in_force(stop_level, highest, trail_frac, trail_dist, has_trail):
    """The stop level for the next candle (fixed stop or trail, whichever is higher) and its
    exit reason; the trail follows the highest high seen *before* that candle."""
    level = stop_level
    reason = STOP_LOSS
    if has_trail:
        trail_level = level_below(highest, trail_frac, trail_dist)
        if np.isnan(level) or trail_level > level:
            level = trail_level
            reason = TRAILING_STOP
    return level, reason


@njit(cache=True)
def stop_fill_price(level, h, lo, stop_fill, stop_fill_frac):
    """The raw fill of a stop reached inside a candle whose open is above ``level``."""
    if stop_fill == STOP_FILL_LOW:
        return lo
    if stop_fill == STOP_FILL_RANGE:
        fill = level - stop_fill_frac * (h - lo)
        return fill if fill > lo else lo
    return level


@njit(cache=True)
def exit_on_candle(o, h, lo, stop_level, stop_reason, target_level, stop_fill, stop_fill_frac):
    """Whether one present candle closes a long position; see the module docstring.

    Returns ``(reason, raw_price, at_open, ambiguous, worst_raw)``; ``reason == NO_EXIT``
    when neither level was reached.
    """
    stop_hit = (not np.isnan(stop_level)) and lo <= stop_level
    target_hit = (not np.isnan(target_level)) and h >= target_level
    if stop_hit and o <= stop_level:
        return stop_reason, o, True, False, o
    if target_hit and o >= target_level:
        return TAKE_PROFIT, o, True, False, o
    if stop_hit:
        fill = stop_fill_price(stop_level, h, lo, stop_fill, stop_fill_frac)
        return stop_reason, fill, False, target_hit, lo
    if target_hit:
        return TAKE_PROFIT, target_level, False, False, target_level
    return NO_EXIT, np.nan, False, False, np.nan


@njit(cache=True)
def exit_candle_low(reason, at_open, raw_price, lo):
    """The lowest raw price held on the exit candle: the candle's low for a target filled
    inside it (the order of high and low is unknown), the fill itself otherwise."""
    if reason == TAKE_PROFIT and not at_open:
        return lo
    return raw_price


@njit(cache=True)
def exit_after_window(open_, close, due_row, last_present, stop_level, stop_reason,
                      target_level, max_delay):
    """The time exit of a position due out at the open of ``due_row``; see the module
    docstring. Returns ``(exit_row, raw_price, reason, outcome, delayed_by)``."""
    n = open_.shape[0]
    limit = n
    if max_delay >= 0 and due_row + max_delay + 1 < n:
        limit = due_row + max_delay + 1
    exit_row = due_row
    while exit_row < limit and np.isnan(open_[exit_row]):
        exit_row += 1
    if exit_row < limit:
        o = open_[exit_row]
        reason = WINDOW_END
        if not np.isnan(stop_level) and o <= stop_level:
            reason = stop_reason
        elif not np.isnan(target_level) and o >= target_level:
            reason = TAKE_PROFIT
        return exit_row, o, reason, EXIT_AT_OPEN, exit_row - due_row
    # past the cap: capped if a price comes back later, else the data simply ended
    outcome = EXIT_AT_LAST_CLOSE
    while exit_row < n:
        if not np.isnan(open_[exit_row]):
            outcome = EXIT_DELAY_CAPPED
            break
        exit_row += 1
    return last_present, close[last_present], WINDOW_END, outcome, 0


# ---------------------------------------------------------------- slices mode
@njit(cache=True)
def _no_trade(rec):
    rec.status = NO_ENTRY_CANDLE
    rec.exit_row = -1
    rec.exit_time = 0
    rec.entry_price = np.nan
    rec.exit_price = np.nan
    rec.return_pct = np.nan
    rec.best_return_pct = np.nan
    rec.worst_case_return_pct = np.nan
    rec.max_drawdown = np.nan
    rec.exit_reason = WINDOW_END


@njit(cache=True)
def simulate_one(out, p, open_, high, low, close, row, window, fee, slip,
                 stop_frac, stop_dist, target_frac, target_dist, trail_frac, trail_dist,
                 index0, step, max_delay, stop_fill, stop_fill_frac):
    """Simulate one long pick decided at row ``row`` on one symbol's 1-D series; fill ``out[p]``.

    ``max_delay``: candles a time exit may wait for a price after an outage (-1 = unlimited).
    ``stop_fill``, ``stop_fill_frac``: how a stop reached inside a candle fills
    (:func:`stop_fill_price`); ``worst_case_return_pct`` is the return had it filled at the low.
    """
    n = open_.shape[0]
    rec = out[p]
    rec.pick = p
    entry_row = row + 1
    rec.entry_row = entry_row
    rec.entry_time = index0 + entry_row * step
    rec.ambiguous = False
    rec.gaps_in_window = 0
    rec.exit_at_last_close = False
    rec.exit_delayed_by = 0
    rec.exit_delay_capped = False
    if entry_row >= n or np.isnan(open_[entry_row]):
        _no_trade(rec)
        return
    rec.status = TRADED
    entry_price = open_[entry_row] * (1.0 + slip)
    rec.entry_price = entry_price
    stop_level = level_below(entry_price, stop_frac, stop_dist)
    target_level = level_above(entry_price, target_frac, target_dist)
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
        lo = low[k]
        eff_stop, stop_reason = stop_in_force(stop_level, highest, trail_frac, trail_dist,
                                              has_trail)
        reason, raw, at_open, ambiguous, worst_raw = exit_on_candle(
            o, high[k], lo, eff_stop, stop_reason, target_level, stop_fill, stop_fill_frac)
        if reason != NO_EXIT:
            exit_time = index0 + (k if at_open else k + 1) * step
            _close_trade(rec, k, raw, exit_time, reason, lowest,
                         exit_candle_low(reason, at_open, raw, lo), entry_price, fee, slip)
            if worst_raw != raw:
                rec.worst_case_return_pct = net_return_pct(entry_price, worst_raw, fee, slip)
            if ambiguous:
                rec.ambiguous = True
                rec.best_return_pct = net_return_pct(entry_price, target_level, fee, slip)
            rec.gaps_in_window = gaps
            return
        if lo < lowest:
            lowest = lo
        if high[k] > highest:
            highest = high[k]
    rec.gaps_in_window = gaps
    # Exit at the open of the candle starting at t + window; through an outage the position
    # is still held (exiting at the last close before it would need to know it was coming),
    # unless the user capped the wait: then it exits at that last close, flagged.
    eff_stop, stop_reason = stop_in_force(stop_level, highest, trail_frac, trail_dist,
                                          has_trail)
    exit_row, raw, reason, outcome, delayed = exit_after_window(
        open_, close, last_row + 1, last_present, eff_stop, stop_reason, target_level, max_delay)
    if outcome == EXIT_AT_OPEN:
        _close_trade(rec, exit_row, raw, index0 + exit_row * step, reason, lowest, raw,
                     entry_price, fee, slip)
        rec.exit_delayed_by = delayed
    else:
        _close_trade(rec, exit_row, raw, index0 + (exit_row + 1) * step, reason, lowest, raw,
                     entry_price, fee, slip)
        rec.exit_at_last_close = True
        rec.exit_delay_capped = outcome == EXIT_DELAY_CAPPED


@njit(cache=True)
def _close_trade(rec, exit_row, raw_exit, exit_time, reason, lowest, exposed_low,
                 entry_price, fee, slip):
    rec.exit_row = exit_row
    rec.exit_time = exit_time
    rec.exit_price = raw_exit * (1.0 - slip)
    rec.exit_reason = reason
    ret = net_return_pct(entry_price, raw_exit, fee, slip)
    rec.return_pct = ret
    rec.best_return_pct = ret
    rec.worst_case_return_pct = ret
    worst = lowest
    if exposed_low < worst:
        worst = exposed_low
    if raw_exit < worst:
        worst = raw_exit
    dd = (1.0 - worst / entry_price) * 100.0
    rec.max_drawdown = dd if dd > 0.0 else 0.0


@njit(cache=True)
def simulate_picks_serial(open_, high, low, close, rows, cols, window, fee, slip,
                          stop_frac, stop_dist, target_frac, target_dist, trail_frac, trail_dist,
                          index0, step, max_delay, stop_fill, stop_fill_frac, out):
    """:func:`simulate_one` for every pick ``p`` (row ``rows[p]``, column ``cols[p]``)."""
    for p in range(rows.shape[0]):
        j = cols[p]
        simulate_one(out, p, open_[:, j], high[:, j], low[:, j], close[:, j], rows[p], window,
                     fee, slip, stop_frac[p], stop_dist[p], target_frac[p], target_dist[p],
                     trail_frac[p], trail_dist[p], index0, step, max_delay, stop_fill,
                     stop_fill_frac)
    return out


@njit(cache=True, parallel=True)
def simulate_picks_2d(open_, high, low, close, rows, cols, window, fee, slip,
                      stop_frac, stop_dist, target_frac, target_dist, trail_frac, trail_dist,
                      index0, step, max_delay, stop_fill, stop_fill_frac, out):
    """:func:`simulate_picks_serial` with the picks spread over threads (large jobs only:
    waking the threads costs more than a few thousand picks)."""
    for p in prange(rows.shape[0]):
        j = cols[p]
        simulate_one(out, p, open_[:, j], high[:, j], low[:, j], close[:, j], rows[p], window,
                     fee, slip, stop_frac[p], stop_dist[p], target_frac[p], target_dist[p],
                     trail_frac[p], trail_dist[p], index0, step, max_delay, stop_fill,
                     stop_fill_frac)
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


_SLACK = 1.0 + 1e-9


@njit(cache=True)
def close_quality_2d(close, factor):
    """Per column of ``(T, N)`` closes, in one pass: ``out[0, j]`` and ``out[1, j]`` as
    :func:`count_missing_2d`, and ``out[2, j]`` the price discontinuities: consecutive
    present closes whose ratio exceeds ``factor`` or falls below ``1 / factor`` (the test
    of ``core_engine.data._kernels.close_jumps``, which lists them)."""
    n_rows, n_cols = close.shape
    out = np.zeros((3, n_cols), dtype=np.int64)
    for j in range(n_cols):
        total = 0
        first = -1
        last = -1
        jumps = 0
        prev = np.nan
        for i in range(n_rows):
            x = close[i, j]
            if np.isnan(x):
                total += 1
                continue
            if first < 0:
                first = i
            elif x * _SLACK > factor * prev or x * factor < prev * _SLACK:
                # a cheap test with room for rounding (prices are positive) passes every
                # jump; the ratio then decides exactly as close_jumps does
                ratio = x / prev
                if ratio > factor or ratio * factor < 1.0:
                    jumps += 1
            prev = x
            last = i
        out[0, j] = total
        if first >= 0:
            out[1, j] = (last - first + 1) - (n_rows - total)
        out[2, j] = jumps
    return out
