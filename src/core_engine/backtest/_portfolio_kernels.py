"""Numba kernel of portfolio mode: one pass over the candles with one cash account.

Arrays and scalars in, structured records out; validation and the rules in words live in
:mod:`core_engine.backtest.portfolio`. The per-candle exit rules are not written here: the
kernel calls the shared helpers of :mod:`core_engine.backtest._kernels`
(``stop_in_force``, ``exit_on_candle``, ``exit_after_window``, ``exit_candle_low``,
``net_return_pct``, ``level_below``/``level_above``), the same ones slices mode uses.

State lives in per-symbol arrays (a symbol holds at most one position); ``held`` lists the
held columns. Parameters come packed in ``fparams``/``iparams`` (indices below) to keep the
signature, and so the compile time, small.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from core_engine.backtest._kernels import (
    EXIT_AT_OPEN,
    EXIT_DELAY_CAPPED,
    NO_EXIT,
    WINDOW_END,
    exit_after_window,
    exit_candle_low,
    exit_on_candle,
    level_above,
    level_below,
    net_return_pct,
    stop_in_force,
)

# exit reasons beyond the slices ones (WINDOW_END .. TRAILING_STOP = 0..3)
DROPPED = 4
REBALANCE = 5
LIQUIDATE_DAILY_LOSS = 6
LIQUIDATE_DRAWDOWN = 7
PORTFOLIO_EXIT_REASON_NAMES = ("window_end", "stop_loss", "take_profit", "trailing_stop",
                               "dropped", "rebalance", "daily_loss_limit_pct",
                               "max_drawdown_pct")

# why a pick did not become a position
B_NO_ENTRY = 0
B_CASH = 1
B_MIN_ORDER = 2
B_SIZING = 3
B_COOLDOWN = 4
B_MAX_ENTRIES = 5
B_DAILY_LOSS = 6
B_DRAWDOWN = 7
B_MAX_EXPOSURE = 8
B_MAX_GROSS = 9
B_MAX_CORR = 10
BLOCK_REASON_NAMES = ("no_entry_candle", "cash", "min_order_value", "sizing", "cooldown",
                      "max_entries_per_day", "daily_loss_limit_pct", "max_drawdown_pct",
                      "max_exposure_pct", "max_gross_exposure_pct", "max_correlation")

# fparams (NaN = rule off)
F_CASH, F_FEE, F_SLIP, F_MAX_POS, F_LOT, F_MIN_ORDER, F_RISK, F_DAILY_LOSS, F_MAX_DD, \
    F_MAX_EXPOSURE, F_MAX_GROSS, F_MAX_CORR, F_STOP_FILL_FRAC = range(13)
N_FPARAMS = 13
# iparams (-1 = off)
I_WINDOW, I_HOLD_UNTIL_DROPPED, I_REBALANCE, I_COOLDOWN_NS, I_HALT_NS, I_MAX_ENTRIES, \
    I_CORR_LOOKBACK, I_LIQ_DAILY, I_LIQ_DD, I_MAX_DELAY, I_STOP_FILL, I_INDEX0, I_STEP = range(13)
N_IPARAMS = 13

DAY_NS = 86_400 * 10**9
NEVER = np.iinfo(np.int64).max // 4

PORTFOLIO_TRADE_DTYPE = np.dtype([
    ("pick", np.int64),
    ("col", np.int64),
    ("entry_row", np.int64),
    ("exit_row", np.int64),
    ("entry_time", np.int64),
    ("exit_time", np.int64),
    ("entry_price", np.float64),
    ("exit_price", np.float64),
    ("quantity", np.float64),
    ("entry_value", np.float64),
    ("fees", np.float64),
    ("pnl", np.float64),
    ("weight", np.float64),
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
    ("repicks", np.int32),
])
BLOCKED_DTYPE = np.dtype([("pick", np.int64), ("reason", np.int8)])

# per-symbol float state (columns of `fs`)
S_QTY, S_PRICE, S_VALUE, S_FEES, S_STOP, S_TARGET, S_TRAIL_F, S_TRAIL_D, S_HIGH, S_LOW, \
    S_MARK, S_WEIGHT, S_INTRA_RAW, S_INTRA_WORST = range(14)
# per-symbol int state (columns of `is_`)
T_PICK, T_ENTRY_ROW, T_DUE, T_DUE_REASON, T_GAPS, T_LAST_PRESENT, T_REPICKS, T_INTRA, \
    T_INTRA_AMB, T_LAST_EXIT = range(10)


@njit(cache=True)
def return_correlation(close, a, b, end_row, length, xs, ys):
    """Pearson correlation of the 1-candle returns of columns ``a`` and ``b`` over the
    ``length`` returns ending at ``end_row`` (pairs with a NaN skipped); NaN when fewer
    than 2 pairs or either series is flat. ``xs``/``ys`` are scratch arrays of ``length``."""
    start = end_row - length + 1
    if start < 1:
        start = 1
    n = 0
    sa = 0.0
    sb = 0.0
    for m in range(start, end_row + 1):
        ra = close[m, a] / close[m - 1, a] - 1.0
        rb = close[m, b] / close[m - 1, b] - 1.0
        if np.isfinite(ra) and np.isfinite(rb):
            xs[n] = ra
            ys[n] = rb
            n += 1
            sa += ra
            sb += rb
    if n < 2:
        return np.nan
    ma = sa / n
    mb = sb / n
    sab = 0.0
    saa = 0.0
    sbb = 0.0
    for i in range(n):
        dx = xs[i] - ma
        dy = ys[i] - mb
        sab += dx * dy
        saa += dx * dx
        sbb += dy * dy
    if saa <= 0.0 or sbb <= 0.0:
        return np.nan
    return sab / np.sqrt(saa * sbb)


@njit(cache=True)
def _lot(value, price, lot):
    """(quantity, value) of an order worth ``value`` at ``price``, rounded down to ``lot``."""
    if np.isnan(lot):
        return value / price, value
    qty = np.floor(value / price / lot) * lot
    return qty, qty * price


@njit(cache=True)
def _record_exit(trades, n_tr, fs, is_, j, qty, exit_row, exit_time, raw, reason, exposed_low,
                 fee, slip, at_last_close, delayed, capped, ambiguous, worst_raw):
    """Write the trade of ``qty`` units of the position in column ``j``; return the cash
    it brings (proceeds after slippage and fee). ``worst_raw`` is the conservative bound
    of the fill (``exit_on_candle``), ``raw`` itself for fills at an open or a close."""
    rec = trades[n_tr]
    share = qty / fs[j, S_QTY]
    entry_price = fs[j, S_PRICE]
    exit_price = raw * (1.0 - slip)
    proceeds = qty * exit_price * (1.0 - fee)
    cost = (fs[j, S_VALUE] + fs[j, S_FEES]) * share
    rec.pick = is_[j, T_PICK]
    rec.col = j
    rec.entry_row = is_[j, T_ENTRY_ROW]
    rec.exit_row = exit_row
    rec.entry_time = 0
    rec.exit_time = exit_time
    rec.entry_price = entry_price
    rec.exit_price = exit_price
    rec.quantity = qty
    rec.entry_value = fs[j, S_VALUE] * share
    rec.fees = fs[j, S_FEES] * share + qty * exit_price * fee
    rec.pnl = proceeds - cost
    rec.weight = fs[j, S_WEIGHT] * share
    ret = net_return_pct(entry_price, raw, fee, slip)
    rec.return_pct = ret
    rec.best_return_pct = ret
    rec.worst_case_return_pct = ret
    if worst_raw != raw:
        rec.worst_case_return_pct = net_return_pct(entry_price, worst_raw, fee, slip)
    if ambiguous:
        rec.best_return_pct = net_return_pct(entry_price, fs[j, S_TARGET], fee, slip)
    worst = fs[j, S_LOW]
    if exposed_low < worst:
        worst = exposed_low
    if raw < worst:
        worst = raw
    dd = (1.0 - worst / entry_price) * 100.0
    rec.max_drawdown = dd if dd > 0.0 else 0.0
    rec.exit_reason = reason
    rec.ambiguous = ambiguous
    rec.gaps_in_window = is_[j, T_GAPS]
    rec.exit_at_last_close = at_last_close
    rec.exit_delayed_by = delayed
    rec.exit_delay_capped = capped
    rec.repicks = is_[j, T_REPICKS]
    return proceeds


@njit(cache=True)
def _drop(held, n_held, j):
    for h in range(n_held):
        if held[h] == j:
            held[h] = held[n_held - 1]
            return n_held - 1
    return n_held


@njit(cache=True)
def _time_exit(open_, close, fs, is_, j, k, max_delay):
    """Resolve a due position at row ``k`` with the shared window-end rule; returns
    ``(done, exit_row, raw, reason, outcome, delayed)`` (``done`` False: still waiting)."""
    due = is_[j, T_DUE]
    waiting_over = max_delay >= 0 and k >= due + max_delay + 1
    if np.isnan(open_[k, j]) and not waiting_over:
        return False, 0, 0.0, 0, 0, 0
    has_trail = not (np.isnan(fs[j, S_TRAIL_F]) and np.isnan(fs[j, S_TRAIL_D]))
    stop, stop_reason = stop_in_force(fs[j, S_STOP], fs[j, S_HIGH], fs[j, S_TRAIL_F],
                                      fs[j, S_TRAIL_D], has_trail)
    # rows due..k-1 are all missing (checked at each row), so this reads no future candle
    exit_row, raw, reason, outcome, delayed = exit_after_window(
        open_[:, j], close[:, j], due, is_[j, T_LAST_PRESENT], stop, stop_reason,
        fs[j, S_TARGET], max_delay)
    if reason == WINDOW_END:
        reason = is_[j, T_DUE_REASON]
    return True, exit_row, raw, reason, outcome, delayed


@njit(cache=True)
def _target_value(equity, weight, risk, fill, stop_frac, stop_dist, trail_frac, trail_dist,
                  max_pos):
    """The sizing's entry value for a fill at ``fill`` (NaN = no size)."""
    w = weight
    if not np.isnan(risk):
        has_trail = not (np.isnan(trail_frac) and np.isnan(trail_dist))
        stop0, _ = stop_in_force(level_below(fill, stop_frac, stop_dist), fill, trail_frac,
                                 trail_dist, has_trail)
        w = np.nan
        if not np.isnan(stop0) and stop0 < fill:
            w = risk * fill / (fill - stop0)
    if not (w > 0.0):
        return np.nan
    if w > max_pos:
        w = max_pos
    return equity * w


@njit(cache=True)
def _gross(fs, held, n_held):
    total = 0.0
    for h in range(n_held):
        j = held[h]
        total += fs[j, S_QTY] * fs[j, S_MARK]
    return total


@njit(cache=True)
def _entry_block(p, j, k, t_open, close, fs, is_, held, n_held, fp, ip, halted_dd,
                 halted_day, entries_today, scratch):
    """The first rule (before sizing) that blocks the new entry of pick ``p``, or -1."""
    if halted_dd:
        return B_DRAWDOWN
    if halted_day:
        return B_DAILY_LOSS
    if ip[I_COOLDOWN_NS] >= 0 and t_open < is_[j, T_LAST_EXIT] + ip[I_COOLDOWN_NS]:
        return B_COOLDOWN
    if ip[I_MAX_ENTRIES] >= 0 and entries_today >= ip[I_MAX_ENTRIES]:
        return B_MAX_ENTRIES
    if not np.isnan(fp[F_MAX_CORR]):
        for h in range(n_held):
            other = held[h]
            if other != j:
                corr = return_correlation(close, j, other, k - 1, ip[I_CORR_LOOKBACK],
                                          scratch[0], scratch[1])
                if corr > fp[F_MAX_CORR]:
                    return B_MAX_CORR
    return -1


@njit(cache=True)
def _size_entry(equity, target, fs, held, n_held, cash, fill, fp):
    """Cap a target value by the exposure rules and the cash; returns
    ``(quantity, value, reason)`` with ``reason`` the last cap that bound (or
    ``B_MIN_ORDER``), the order to skip when ``quantity <= 0`` or ``value`` is below the
    minimum order value."""
    fee = fp[F_FEE]
    value = target
    reason = B_MIN_ORDER
    if not np.isnan(fp[F_MAX_EXPOSURE]) and value > fp[F_MAX_EXPOSURE] * equity:
        value = fp[F_MAX_EXPOSURE] * equity
        reason = B_MAX_EXPOSURE
    if not np.isnan(fp[F_MAX_GROSS]):
        room = fp[F_MAX_GROSS] * equity - _gross(fs, held, n_held)
        if value > room:
            value = room
            reason = B_MAX_GROSS
    if value * (1.0 + fee) > cash:
        value = cash / (1.0 + fee)
        reason = B_CASH
    if not (value > 0.0):
        return 0.0, 0.0, reason
    qty, value = _lot(value, fill, fp[F_LOT])
    return qty, value, reason


@njit(cache=True)
def _pay(cash, value, fee):
    """Cash after paying ``value`` plus its fee; the fee absorbs the last rounding so that
    cash never goes below 0. Returns ``(cash, fee_paid)``."""
    cost = value * (1.0 + fee)
    if cost > cash:
        cost = cash
    return cash - cost, cost - value


@njit(cache=True)
def _open_position(fs, is_, j, p, k, fill, qty, value, fee_paid, equity, stop_frac, stop_dist,
                   target_frac, target_dist, trail_frac, trail_dist, due):
    fs[j, S_QTY] = qty
    fs[j, S_PRICE] = fill
    fs[j, S_VALUE] = value
    fs[j, S_FEES] = fee_paid
    fs[j, S_STOP] = level_below(fill, stop_frac, stop_dist)
    fs[j, S_TARGET] = level_above(fill, target_frac, target_dist)
    fs[j, S_TRAIL_F] = trail_frac
    fs[j, S_TRAIL_D] = trail_dist
    fs[j, S_HIGH] = fill
    fs[j, S_LOW] = fill
    fs[j, S_MARK] = fill
    fs[j, S_WEIGHT] = value / equity if equity > 0 else np.nan
    is_[j, T_PICK] = p
    is_[j, T_ENTRY_ROW] = k
    is_[j, T_DUE] = due
    is_[j, T_DUE_REASON] = WINDOW_END
    is_[j, T_GAPS] = 0
    is_[j, T_LAST_PRESENT] = k
    is_[j, T_REPICKS] = 0
    is_[j, T_INTRA] = NO_EXIT


@njit(cache=True)
def _rebalance(trades, n_tr, fs, is_, j, p, k, o, equity, cash, halted, held, n_held, fp,
               weights, risk, stop_frac, stop_dist, trail_frac, trail_dist, index0, step):
    """Trade a re-picked position toward its new target value at the open ``o`` of row
    ``k``; returns ``(cash, n_trades)``."""
    fee = fp[F_FEE]
    slip = fp[F_SLIP]
    fill = o * (1.0 + slip)
    target = _target_value(equity, weights[p], risk, fill, stop_frac[p], stop_dist[p],
                           trail_frac[p], trail_dist[p], fp[F_MAX_POS])
    if np.isnan(target):
        return cash, n_tr
    if not np.isnan(fp[F_MAX_EXPOSURE]) and target > fp[F_MAX_EXPOSURE] * equity:
        target = fp[F_MAX_EXPOSURE] * equity
    delta = target - fs[j, S_QTY] * o
    if delta > 0.0 and not halted:
        room = delta
        if not np.isnan(fp[F_MAX_GROSS]):
            gross_room = fp[F_MAX_GROSS] * equity - _gross(fs, held, n_held)
            if gross_room < room:
                room = gross_room
        if room * (1.0 + fee) > cash:
            room = cash / (1.0 + fee)
        if room > 0.0:
            qty, value = _lot(room, fill, fp[F_LOT])
            if qty > 0.0 and value >= fp[F_MIN_ORDER]:
                cash, fee_paid = _pay(cash, value, fee)
                fs[j, S_QTY] += qty
                fs[j, S_VALUE] += value
                fs[j, S_FEES] += fee_paid
                fs[j, S_PRICE] = fs[j, S_VALUE] / fs[j, S_QTY]
                fs[j, S_WEIGHT] += value / equity
    elif delta < 0.0:
        qty = -delta / o
        if not np.isnan(fp[F_LOT]):
            qty = np.floor(qty / fp[F_LOT]) * fp[F_LOT]
        if qty > fs[j, S_QTY]:
            qty = fs[j, S_QTY]
        if qty > 0.0 and qty < fs[j, S_QTY] and qty * o >= fp[F_MIN_ORDER]:
            share = qty / fs[j, S_QTY]
            cash += _record_exit(trades, n_tr, fs, is_, j, qty, k, index0 + k * step, o,
                                 REBALANCE, o, fee, slip, False, 0, False, False, o)
            n_tr += 1
            fs[j, S_QTY] -= qty
            fs[j, S_VALUE] *= 1.0 - share
            fs[j, S_FEES] *= 1.0 - share
            fs[j, S_WEIGHT] *= 1.0 - share
    return cash, n_tr


# account scalars: floats in `ac`, ints in `ic`
A_CASH, A_EQ_PREV, A_PEAK, A_DAY_OPEN = range(4)
C_N_HELD, C_N_TR, C_N_BL, C_DAY, C_DAY_HALTED, C_DD_FOREVER, C_HALT_UNTIL, \
    C_ENTRIES_TODAY = range(8)


@njit(cache=True)
def _close_all_at(trades, fs, is_, j, ac, ic, held, qty, exit_row, exit_time, raw, reason,
                  exposed_low, fp, at_last_close, delayed, capped, ambiguous, worst_raw):
    """Close the whole position of column ``j``: record, cash, cooldown clock, held list."""
    ac[A_CASH] += _record_exit(trades, ic[C_N_TR], fs, is_, j, qty, exit_row, exit_time, raw,
                               reason, exposed_low, fp[F_FEE], fp[F_SLIP], at_last_close,
                               delayed, capped, ambiguous, worst_raw)
    ic[C_N_TR] += 1
    is_[j, T_LAST_EXIT] = exit_time
    is_[j, T_PICK] = -1
    ic[C_N_HELD] = _drop(held, ic[C_N_HELD], j)


@njit(cache=True)
def _settle_due(trades, fs, is_, j, ac, ic, held, fp, exit_row, raw, reason, outcome, delayed,
                index0, step):
    if outcome == EXIT_AT_OPEN:
        _close_all_at(trades, fs, is_, j, ac, ic, held, fs[j, S_QTY], exit_row,
                      index0 + exit_row * step, raw, reason, raw, fp, False, delayed, False,
                      False, raw)
    else:
        _close_all_at(trades, fs, is_, j, ac, ic, held, fs[j, S_QTY], exit_row,
                      index0 + (exit_row + 1) * step, raw, reason, raw, fp, True, 0,
                      outcome == EXIT_DELAY_CAPPED, False, raw)


@njit(cache=True)
def _open_stage(open_, high, low, close, k, fs, is_, held, ac, ic, trades, fp, ip):
    """At the open of row ``k``: due positions exit (window end, dropped, liquidation, by
    the shared window-end rule) and stop/target gaps exit at the open. Exits inside the
    candle of positions held before ``k`` are found here and applied after the decision."""
    index0 = ip[I_INDEX0]
    step = ip[I_STEP]
    h = 0
    while h < ic[C_N_HELD]:
        j = held[h]
        is_[j, T_INTRA] = NO_EXIT
        if is_[j, T_DUE] <= k:
            done, exit_row, raw, reason, outcome, delayed = _time_exit(
                open_, close, fs, is_, j, k, ip[I_MAX_DELAY])
            if done:
                _settle_due(trades, fs, is_, j, ac, ic, held, fp, exit_row, raw, reason,
                            outcome, delayed, index0, step)
            else:
                h += 1
            continue
        o = open_[k, j]
        if np.isnan(o):
            is_[j, T_GAPS] += 1
            h += 1
            continue
        has_trail = not (np.isnan(fs[j, S_TRAIL_F]) and np.isnan(fs[j, S_TRAIL_D]))
        stop, stop_reason = stop_in_force(fs[j, S_STOP], fs[j, S_HIGH], fs[j, S_TRAIL_F],
                                          fs[j, S_TRAIL_D], has_trail)
        reason, raw, at_open, ambiguous, worst_raw = exit_on_candle(
            o, high[k, j], low[k, j], stop, stop_reason, fs[j, S_TARGET], ip[I_STOP_FILL],
            fp[F_STOP_FILL_FRAC])
        if reason != NO_EXIT and at_open:
            _close_all_at(trades, fs, is_, j, ac, ic, held, fs[j, S_QTY], k, index0 + k * step,
                          raw, reason, raw, fp, False, 0, False, False, worst_raw)
            continue
        if reason != NO_EXIT:
            is_[j, T_INTRA] = reason
            is_[j, T_INTRA_AMB] = 1 if ambiguous else 0
            fs[j, S_INTRA_RAW] = raw
            fs[j, S_INTRA_WORST] = worst_raw
        h += 1


@njit(cache=True)
def _picked(cols, p0, p1, j):
    for p in range(p0, p1):
        if cols[p] == j:
            return True
    return False


@njit(cache=True)
def _decide(open_, close, k, p0, p1, cols, weights, stop_frac, stop_dist, target_frac,
            target_dist, trail_frac, trail_dist, end_due, fs, is_, held, ac, ic, trades,
            blocked, fp, ip, scratch):
    """The picks ``p0..p1-1`` of the decision whose entry candle is row ``k``, best first."""
    index0 = ip[I_INDEX0]
    step = ip[I_STEP]
    t_open = index0 + k * step
    equity = ac[A_EQ_PREV]
    halted_dd = ic[C_DD_FOREVER] == 1 or t_open < ic[C_HALT_UNTIL]
    halted_day = ic[C_DAY_HALTED] == 1
    fee = fp[F_FEE]
    for p in range(p0, p1):
        j = cols[p]
        if is_[j, T_PICK] >= 0 and is_[j, T_DUE] > k:  # held and not due: a re-pick
            is_[j, T_REPICKS] += 1
            if ip[I_HOLD_UNTIL_DROPPED] == 0:
                is_[j, T_DUE] = k + ip[I_WINDOW]
            if ip[I_REBALANCE] == 1 and not np.isnan(open_[k, j]):
                cash, n_tr = _rebalance(trades, ic[C_N_TR], fs, is_, j, p, k, open_[k, j],
                                        equity, ac[A_CASH], halted_dd or halted_day, held,
                                        ic[C_N_HELD], fp, weights, fp[F_RISK], stop_frac,
                                        stop_dist, trail_frac, trail_dist, index0, step)
                ac[A_CASH] = cash
                ic[C_N_TR] = n_tr
            continue
        reason = -1
        o = open_[k, j]
        if np.isnan(o):
            reason = B_NO_ENTRY
        else:
            reason = _entry_block(p, j, k, t_open, close, fs, is_, held, ic[C_N_HELD], fp, ip,
                                  halted_dd, halted_day, ic[C_ENTRIES_TODAY], scratch)
        qty = 0.0
        value = 0.0
        fill = o * (1.0 + fp[F_SLIP])
        if reason < 0:
            target = _target_value(equity, weights[p], fp[F_RISK], fill, stop_frac[p],
                                   stop_dist[p], trail_frac[p], trail_dist[p], fp[F_MAX_POS])
            if np.isnan(target):
                reason = B_SIZING
            else:
                qty, value, cap = _size_entry(equity, target, fs, held, ic[C_N_HELD],
                                              ac[A_CASH], fill, fp)
                if not (qty > 0.0) or value < fp[F_MIN_ORDER]:
                    reason = cap
        if reason >= 0:
            blocked[ic[C_N_BL]].pick = p
            blocked[ic[C_N_BL]].reason = reason
            ic[C_N_BL] += 1
            continue
        cash, fee_paid = _pay(ac[A_CASH], value, fee)
        ac[A_CASH] = cash
        due = end_due if ip[I_HOLD_UNTIL_DROPPED] == 1 else k + ip[I_WINDOW]
        _open_position(fs, is_, j, p, k, fill, qty, value, fee_paid, equity, stop_frac[p],
                       stop_dist[p], target_frac[p], target_dist[p], trail_frac[p],
                       trail_dist[p], due)
        held[ic[C_N_HELD]] = j
        ic[C_N_HELD] += 1
        ic[C_ENTRIES_TODAY] += 1


@njit(cache=True)
def _candle_stage(open_, high, low, close, k, fs, is_, held, ac, ic, trades, fp, ip):
    """Inside candle ``k``: stop/target exits (entries of this row checked in full, others
    by the open stage's finding), then lows, highs and marks of the survivors."""
    index0 = ip[I_INDEX0]
    step = ip[I_STEP]
    h = 0
    while h < ic[C_N_HELD]:
        j = held[h]
        o = open_[k, j]
        if is_[j, T_DUE] <= k or np.isnan(o):
            h += 1
            continue
        lo = low[k, j]
        if is_[j, T_ENTRY_ROW] == k:
            has_trail = not (np.isnan(fs[j, S_TRAIL_F]) and np.isnan(fs[j, S_TRAIL_D]))
            stop, stop_reason = stop_in_force(fs[j, S_STOP], fs[j, S_HIGH], fs[j, S_TRAIL_F],
                                              fs[j, S_TRAIL_D], has_trail)
            reason, raw, at_open, ambiguous, worst_raw = exit_on_candle(
                o, high[k, j], lo, stop, stop_reason, fs[j, S_TARGET], ip[I_STOP_FILL],
                fp[F_STOP_FILL_FRAC])
        else:
            reason = is_[j, T_INTRA]
            raw = fs[j, S_INTRA_RAW]
            worst_raw = fs[j, S_INTRA_WORST]
            at_open = False
            ambiguous = is_[j, T_INTRA_AMB] == 1
        if reason != NO_EXIT:
            row_time = k if at_open else k + 1
            _close_all_at(trades, fs, is_, j, ac, ic, held, fs[j, S_QTY], k,
                          index0 + row_time * step, raw, reason,
                          exit_candle_low(reason, at_open, raw, lo), fp, False, 0, False,
                          ambiguous, worst_raw)
            continue
        is_[j, T_LAST_PRESENT] = k
        if lo < fs[j, S_LOW]:
            fs[j, S_LOW] = lo
        if high[k, j] > fs[j, S_HIGH]:
            fs[j, S_HIGH] = high[k, j]
        fs[j, S_MARK] = close[k, j]
        h += 1


@njit(cache=True)
def _liquidate(is_, held, n_held, due, reason):
    for h in range(n_held):
        j = held[h]
        if is_[j, T_DUE] > due:
            is_[j, T_DUE] = due
            is_[j, T_DUE_REASON] = reason


@njit(cache=True)
def _mark(k, e, eq, fs, is_, held, ac, ic, fp, ip):
    """Equity at the close of row ``k`` (row ``e`` of ``eq``), then the halts it trips."""
    exposure = _gross(fs, held, ic[C_N_HELD])
    equity = ac[A_CASH] + exposure
    eq[e, 0] = equity
    eq[e, 1] = ac[A_CASH]
    eq[e, 2] = exposure
    eq[e, 3] = ic[C_N_HELD]
    ac[A_EQ_PREV] = equity
    tau = ip[I_INDEX0] + (k + 1) * ip[I_STEP]
    day = tau // DAY_NS
    if day != ic[C_DAY]:
        ic[C_DAY] = day
        ac[A_DAY_OPEN] = equity
        ic[C_DAY_HALTED] = 0
        ic[C_ENTRIES_TODAY] = 0
    if not np.isnan(fp[F_DAILY_LOSS]) and ic[C_DAY_HALTED] == 0 \
            and equity <= ac[A_DAY_OPEN] * (1.0 - fp[F_DAILY_LOSS]):
        ic[C_DAY_HALTED] = 1
        if ip[I_LIQ_DAILY] == 1:
            _liquidate(is_, held, ic[C_N_HELD], k + 1, LIQUIDATE_DAILY_LOSS)
    if equity > ac[A_PEAK]:
        ac[A_PEAK] = equity
    if not np.isnan(fp[F_MAX_DD]) and ic[C_DD_FOREVER] == 0 \
            and equity <= ac[A_PEAK] * (1.0 - fp[F_MAX_DD]):
        if ip[I_HALT_NS] < 0:
            ic[C_DD_FOREVER] = 1
        else:
            ic[C_HALT_UNTIL] = tau + ip[I_HALT_NS]
        ac[A_PEAK] = equity
        if ip[I_LIQ_DD] == 1:
            _liquidate(is_, held, ic[C_N_HELD], k + 1, LIQUIDATE_DRAWDOWN)


@njit(cache=True)
def _skip_flat(k, last, e, eq, ac, ic, ip):
    """Marks of rows ``k + 1 .. last`` of an account holding nothing (cash only): equal to
    the mark of row ``k``; a new UTC day among them opens at that equity. Returns ``e``."""
    for _ in range(k + 1, last + 1):
        eq[e, 0] = ac[A_CASH]
        eq[e, 1] = ac[A_CASH]
        eq[e, 2] = 0.0
        eq[e, 3] = 0.0
        e += 1
    day = (ip[I_INDEX0] + (last + 1) * ip[I_STEP]) // DAY_NS
    if day != ic[C_DAY]:
        ic[C_DAY] = day
        ac[A_DAY_OPEN] = ac[A_CASH]
        ic[C_DAY_HALTED] = 0
        ic[C_ENTRIES_TODAY] = 0
    ac[A_EQ_PREV] = ac[A_CASH]
    return e


@njit(cache=True)
def simulate_portfolio_kernel(open_, high, low, close, dec_rows, pick_start, cols, weights,
                              stop_frac, stop_dist, target_frac, target_dist, trail_frac,
                              trail_dist, fp, ip, trades, blocked, eq):
    """Run the account over the candles from the first decision; fill ``trades`` (exit
    order), ``blocked`` and ``eq`` (rows ``dec_rows[0] + e``: equity, cash, exposure,
    positions). Returns ``(n_trades, n_blocked, n_eq)``."""
    n, n_sym = open_.shape
    n_dec = dec_rows.shape[0]
    if n_dec == 0:
        return 0, 0, 0
    fs = np.full((n_sym, 14), np.nan)
    is_ = np.zeros((n_sym, 10), dtype=np.int64)
    is_[:, T_PICK] = -1
    is_[:, T_LAST_EXIT] = -NEVER
    held = np.empty(n_sym, dtype=np.int64)
    scratch = np.empty((2, max(ip[I_CORR_LOOKBACK], 2)))
    ac = np.zeros(4)
    ic = np.zeros(8, dtype=np.int64)
    ac[A_CASH] = fp[F_CASH]
    ac[A_EQ_PREV] = fp[F_CASH]
    ac[A_PEAK] = fp[F_CASH]
    ac[A_DAY_OPEN] = fp[F_CASH]
    ic[C_HALT_UNTIL] = -NEVER
    i0 = dec_rows[0]
    ic[C_DAY] = (ip[I_INDEX0] + (i0 + 1) * ip[I_STEP]) // DAY_NS
    eq[0, 0] = fp[F_CASH]
    eq[0, 1] = fp[F_CASH]
    eq[0, 2] = 0.0
    eq[0, 3] = 0.0
    end_due = dec_rows[n_dec - 1] + 1 + ip[I_WINDOW]
    last_row = end_due if end_due < n - 1 else n - 1
    d = 0
    k = i0 + 1
    e = 1
    while k < n:
        is_dec = d < n_dec and dec_rows[d] + 1 == k
        if is_dec and ip[I_HOLD_UNTIL_DROPPED] == 1:
            for h in range(ic[C_N_HELD]):
                j = held[h]
                if is_[j, T_DUE] > k and not _picked(cols, pick_start[d], pick_start[d + 1], j):
                    is_[j, T_DUE] = k
                    is_[j, T_DUE_REASON] = DROPPED
        _open_stage(open_, high, low, close, k, fs, is_, held, ac, ic, trades, fp, ip)
        if is_dec:
            _decide(open_, close, k, pick_start[d], pick_start[d + 1], cols, weights, stop_frac,
                    stop_dist, target_frac, target_dist, trail_frac, trail_dist, end_due, fs,
                    is_, held, ac, ic, trades, blocked, fp, ip, scratch)
            d += 1
        _candle_stage(open_, high, low, close, k, fs, is_, held, ac, ic, trades, fp, ip)
        _mark(k, e, eq, fs, is_, held, ac, ic, fp, ip)
        e += 1
        if d >= n_dec and ic[C_N_HELD] == 0 and k >= last_row:
            break
        if ic[C_N_HELD] == 0 and d < n_dec and dec_rows[d] > k:
            # nothing held until the next decision: the marks stay flat
            e = _skip_flat(k, dec_rows[d], e, eq, ac, ic, ip)
            k = dec_rows[d]
        k += 1
    if ic[C_N_HELD] > 0:  # the data ended while positions waited for a price
        while ic[C_N_HELD] > 0:
            j = held[0]
            due = is_[j, T_DUE] if is_[j, T_DUE] < n else n
            has_trail = not (np.isnan(fs[j, S_TRAIL_F]) and np.isnan(fs[j, S_TRAIL_D]))
            stop, stop_reason = stop_in_force(fs[j, S_STOP], fs[j, S_HIGH], fs[j, S_TRAIL_F],
                                              fs[j, S_TRAIL_D], has_trail)
            exit_row, raw, reason, outcome, delayed = exit_after_window(
                open_[:, j], close[:, j], due, is_[j, T_LAST_PRESENT], stop, stop_reason,
                fs[j, S_TARGET], ip[I_MAX_DELAY])
            if reason == WINDOW_END:
                reason = is_[j, T_DUE_REASON]
            _settle_due(trades, fs, is_, j, ac, ic, held, fp, exit_row, raw, reason, outcome,
                        delayed, ip[I_INDEX0], ip[I_STEP])
        eq[e - 1, 0] = ac[A_CASH]
        eq[e - 1, 1] = ac[A_CASH]
        eq[e - 1, 2] = 0.0
        eq[e - 1, 3] = 0.0
    return ic[C_N_TR], ic[C_N_BL], e
