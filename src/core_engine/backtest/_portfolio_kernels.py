"""Numba kernel of portfolio mode: one pass over the candles with one cash account.

Arrays and scalars in, structured records out; validation and the rules in words live in
:mod:`core_engine.backtest.portfolio`. Nothing here is a rule of its own:

* the per-candle exit rules are the shared helpers of :mod:`core_engine.backtest._kernels`
  (``stop_in_force``, ``exit_on_candle``, ``exit_after_window``, ``exit_candle_low``,
  ``net_return_pct``, ``level_below``/``level_above``), the ones slices mode uses;
* the portfolio rules and the sizing are the kernels of :mod:`core_engine.risk._kernels`
  (``rules_on_mark``, ``entry_block``, ``entry_size``, ``rebalance_size``, ``pay``), the ones
  the event world's ``RankingTrader`` calls, with :func:`entry_stop` below.

State lives in per-symbol arrays (a symbol holds at most one position); ``held`` lists the
held columns. Parameters come packed in ``fparams``/``iparams``: the risk kernels' ``RF_*`` /
``RI_*`` first (:func:`core_engine.risk.rules.rule_params`), then this kernel's ``F_*`` /
``I_*``, to keep the signature, and so the compile time, small. Calls between kernels pass
typed values (``np.int64(0)``, ``np.bool_(False)``), never bare literals: numba compiles
one specialisation per literal, which costs seconds of cold start each.
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
from core_engine.risk._kernels import (
    AI_ENTRIES_TODAY,
    B_NO_ENTRY,
    BLOCK_REASON_NAMES,
    LIQ_DAILY,
    LIQ_NONE,
    N_RULE_FPARAMS,
    N_RULE_FSTATE,
    N_RULE_IPARAMS,
    N_RULE_ISTATE,
    NEVER,
    RF_FEE,
    RI_CORR_LOOKBACK,
    entry_block,
    entry_halted,
    entry_size,
    pay,
    rebalance_size,
    rules_on_mark,
    rules_reset,
)

__all__ = ["BLOCKED_DTYPE", "BLOCK_REASON_NAMES", "PORTFOLIO_EXIT_REASON_NAMES",
           "PORTFOLIO_TRADE_DTYPE", "entry_stop", "simulate_portfolio_kernel"]

# exit reasons beyond the slices ones (WINDOW_END .. TRAILING_STOP = 0..3)
DROPPED = 4
REBALANCE = 5
LIQUIDATE_DAILY_LOSS = 6
LIQUIDATE_DRAWDOWN = 7
PORTFOLIO_EXIT_REASON_NAMES = ("window_end", "stop_loss", "take_profit", "trailing_stop",
                               "dropped", "rebalance", "daily_loss_limit_pct",
                               "max_drawdown_pct")

# fparams after the risk kernels' RF_* (NaN = off)
F_CASH, F_SLIP, F_STOP_FILL_FRAC = range(N_RULE_FPARAMS, N_RULE_FPARAMS + 3)
N_FPARAMS = N_RULE_FPARAMS + 3
# iparams after the risk kernels' RI_* (-1 = off / default)
I_WINDOW, I_HOLD_UNTIL_DROPPED, I_REBALANCE, I_MAX_DELAY, I_STOP_FILL, I_INDEX0, I_STEP, \
    I_END_DUE = range(N_RULE_IPARAMS, N_RULE_IPARAMS + 8)
N_IPARAMS = N_RULE_IPARAMS + 8

# exit distances of each pick: rows of the (6, n_picks) `dist` array
D_STOP_F, D_STOP_D, D_TARGET_F, D_TARGET_D, D_TRAIL_F, D_TRAIL_D = range(6)

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
# account: the risk kernels' rule state (AF_* / AI_*) first, then these
A_CASH, A_EQ_PREV = range(N_RULE_FSTATE, N_RULE_FSTATE + 2)
C_N_HELD, C_N_TR, C_N_BL = range(N_RULE_ISTATE, N_RULE_ISTATE + 3)


@njit(cache=True)
def entry_stop(fill, stop_frac, stop_dist, trail_frac, trail_dist):
    """The stop in force on the entry candle of a position filled at ``fill`` (the fixed
    stop or the trail from the fill, whichever is higher; NaN = none): what
    ``RiskPerTrade`` sizes from. The RankingTrader calls it too."""
    has_trail = not (np.isnan(trail_frac) and np.isnan(trail_dist))
    level, _ = stop_in_force(level_below(fill, stop_frac, stop_dist), fill, trail_frac,
                             trail_dist, has_trail)
    return level


@njit(cache=True)
def _stop_of(fs, j):
    """(level, reason) of the stop in force for the next candle of the position in ``j``."""
    has_trail = not (np.isnan(fs[j, S_TRAIL_F]) and np.isnan(fs[j, S_TRAIL_D]))
    return stop_in_force(fs[j, S_STOP], fs[j, S_HIGH], fs[j, S_TRAIL_F], fs[j, S_TRAIL_D],
                         has_trail)


@njit(cache=True)
def _gross(fs, held, n_held):
    total = 0.0
    for h in range(n_held):
        j = held[h]
        total += fs[j, S_QTY] * fs[j, S_MARK]
    return total


@njit(cache=True)
def _record(trades, n_tr, fs, is_, j, qty, exit_row, exit_time, raw, reason, exposed_low, fp,
            at_last_close, delayed, capped, ambiguous, worst_raw):
    """Write the trade of ``qty`` units of the position in column ``j``; return the cash
    it brings (proceeds after slippage and fee). ``worst_raw`` is the conservative bound
    of the fill (``exit_on_candle``), ``raw`` itself for fills at an open or a close."""
    fee = fp[RF_FEE]
    slip = fp[F_SLIP]
    rec = trades[n_tr]
    share = qty / fs[j, S_QTY]
    entry_price = fs[j, S_PRICE]
    exit_price = raw * (1.0 - slip)
    proceeds = qty * exit_price * (1.0 - fee)
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
    rec.pnl = proceeds - (fs[j, S_VALUE] + fs[j, S_FEES]) * share
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
def _close(trades, fs, is_, j, ac, ic, held, exit_row, exit_time, raw, reason, exposed_low, fp,
           at_last_close, delayed, capped, ambiguous, worst_raw):
    """Close the whole position of column ``j``: record, cash, cooldown clock, held list."""
    ac[A_CASH] += _record(trades, ic[C_N_TR], fs, is_, j, fs[j, S_QTY], exit_row, exit_time,
                          raw, reason, exposed_low, fp, at_last_close, delayed, capped,
                          ambiguous, worst_raw)
    ic[C_N_TR] += 1
    is_[j, T_LAST_EXIT] = exit_time
    is_[j, T_PICK] = -1
    n_held = ic[C_N_HELD]
    for h in range(n_held):
        if held[h] == j:
            held[h] = held[n_held - 1]
            ic[C_N_HELD] = n_held - 1
            break


@njit(cache=True)
def _due_exit(open_, close, k, fs, is_, j, held, ac, ic, trades, fp, ip, data_ended):
    """Close the due position of column ``j`` at row ``k`` by the shared window-end rule, or
    return False when it still waits for a price (``data_ended``: no row is left, close it
    at its last close)."""
    due = is_[j, T_DUE]
    if data_ended:
        n = open_.shape[0]
        if due > n:
            due = n
    else:
        max_delay = ip[I_MAX_DELAY]
        waiting_over = max_delay >= 0 and k >= due + max_delay + 1
        if np.isnan(open_[k, j]) and not waiting_over:
            return False
    stop, stop_reason = _stop_of(fs, j)
    # rows due..k-1 are all missing (checked at each row), so this reads no future candle
    exit_row, raw, reason, outcome, delayed = exit_after_window(
        open_[:, j], close[:, j], due, is_[j, T_LAST_PRESENT], stop, stop_reason,
        fs[j, S_TARGET], ip[I_MAX_DELAY])
    if reason == WINDOW_END:
        reason = is_[j, T_DUE_REASON]
    at_open = outcome == EXIT_AT_OPEN
    exit_time = ip[I_INDEX0] + (exit_row if at_open else exit_row + 1) * ip[I_STEP]
    _close(trades, fs, is_, j, ac, ic, held, exit_row, exit_time, raw, reason, raw, fp,
           not at_open, delayed, outcome == EXIT_DELAY_CAPPED, np.bool_(False), raw)
    return True


@njit(cache=True)
def _open_stage(open_, high, low, close, k, fs, is_, held, ac, ic, trades, fp, ip):
    """At the open of row ``k``: due positions exit (window end, dropped, liquidation, by
    the shared window-end rule) and stop/target gaps exit at the open. Exits inside the
    candle of positions held before ``k`` are found here and applied after the decision."""
    h = 0
    while h < ic[C_N_HELD]:
        j = held[h]
        is_[j, T_INTRA] = NO_EXIT
        if is_[j, T_DUE] <= k:
            if not _due_exit(open_, close, k, fs, is_, j, held, ac, ic, trades, fp, ip,
                             np.bool_(False)):
                h += 1
            continue
        o = open_[k, j]
        if np.isnan(o):
            is_[j, T_GAPS] += 1
            h += 1
            continue
        stop, stop_reason = _stop_of(fs, j)
        reason, raw, at_open, ambiguous, worst_raw = exit_on_candle(
            o, high[k, j], low[k, j], stop, stop_reason, fs[j, S_TARGET], ip[I_STOP_FILL],
            fp[F_STOP_FILL_FRAC])
        if reason != NO_EXIT and at_open:
            _close(trades, fs, is_, j, ac, ic, held, k, ip[I_INDEX0] + k * ip[I_STEP], raw,
                   reason, raw, fp, np.bool_(False), np.int64(0), np.bool_(False),
                   np.bool_(False), worst_raw)
            continue
        if reason != NO_EXIT:
            is_[j, T_INTRA] = reason
            is_[j, T_INTRA_AMB] = 1 if ambiguous else 0
            fs[j, S_INTRA_RAW] = raw
            fs[j, S_INTRA_WORST] = worst_raw
        h += 1


@njit(cache=True)
def _decide(open_, close, k, p0, p1, cols, weights, dist, end_due, fs, is_, held, ac, ic,
            trades, blocked, fp, ip, scratch):
    """The picks ``p0..p1-1`` of the decision whose entry candle is row ``k``, best first."""
    t_open = ip[I_INDEX0] + k * ip[I_STEP]
    equity = ac[A_EQ_PREV]
    halted_dd, halted_day = entry_halted(ic, t_open)
    slip = fp[F_SLIP]
    for p in range(p0, p1):
        j = cols[p]
        o = open_[k, j]
        fill = o * (1.0 + slip)
        if is_[j, T_PICK] >= 0 and is_[j, T_DUE] > k:  # held and not due: a re-pick
            is_[j, T_REPICKS] += 1
            if ip[I_HOLD_UNTIL_DROPPED] == 0:
                is_[j, T_DUE] = k + ip[I_WINDOW]
            if ip[I_REBALANCE] != 1 or np.isnan(o):
                continue
            stop0 = entry_stop(fill, dist[D_STOP_F, p], dist[D_STOP_D, p], dist[D_TRAIL_F, p],
                               dist[D_TRAIL_D, p])
            qty, value = rebalance_size(equity, ac[A_CASH], _gross(fs, held, ic[C_N_HELD]),
                                        fs[j, S_QTY], o, fill, weights[p], stop0,
                                        halted_dd or halted_day, fp)
            if qty > 0.0:
                ac[A_CASH], fee_paid = pay(ac[A_CASH], value, fp[RF_FEE])
                fs[j, S_QTY] += qty
                fs[j, S_VALUE] += value
                fs[j, S_FEES] += fee_paid
                fs[j, S_PRICE] = fs[j, S_VALUE] / fs[j, S_QTY]
                fs[j, S_WEIGHT] += value / equity
            elif qty < 0.0:
                sold = -qty
                share = sold / fs[j, S_QTY]
                ac[A_CASH] += _record(trades, ic[C_N_TR], fs, is_, j, sold, k, t_open, o,
                                      np.int64(REBALANCE), o, fp, np.bool_(False), np.int64(0),
                                      np.bool_(False), np.bool_(False), o)
                ic[C_N_TR] += 1
                fs[j, S_QTY] -= sold
                fs[j, S_VALUE] *= 1.0 - share
                fs[j, S_FEES] *= 1.0 - share
                fs[j, S_WEIGHT] *= 1.0 - share
            continue
        if np.isnan(o):
            reason = B_NO_ENTRY
        else:
            reason = entry_block(ic, fp, ip, t_open, is_[j, T_LAST_EXIT], close, j, held,
                                 ic[C_N_HELD], k - 1, scratch[0], scratch[1])
        qty = 0.0
        value = 0.0
        if reason < 0:
            stop0 = entry_stop(fill, dist[D_STOP_F, p], dist[D_STOP_D, p], dist[D_TRAIL_F, p],
                               dist[D_TRAIL_D, p])
            qty, value, reason = entry_size(equity, ac[A_CASH], _gross(fs, held, ic[C_N_HELD]),
                                            weights[p], fill, stop0, fp)
        if reason >= 0:
            blocked[ic[C_N_BL]].pick = p
            blocked[ic[C_N_BL]].reason = reason
            ic[C_N_BL] += 1
            continue
        ac[A_CASH], fee_paid = pay(ac[A_CASH], value, fp[RF_FEE])
        fs[j, S_QTY] = qty
        fs[j, S_PRICE] = fill
        fs[j, S_VALUE] = value
        fs[j, S_FEES] = fee_paid
        fs[j, S_STOP] = level_below(fill, dist[D_STOP_F, p], dist[D_STOP_D, p])
        fs[j, S_TARGET] = level_above(fill, dist[D_TARGET_F, p], dist[D_TARGET_D, p])
        fs[j, S_TRAIL_F] = dist[D_TRAIL_F, p]
        fs[j, S_TRAIL_D] = dist[D_TRAIL_D, p]
        fs[j, S_HIGH] = fill
        fs[j, S_LOW] = fill
        fs[j, S_MARK] = fill
        fs[j, S_WEIGHT] = value / equity if equity > 0 else np.nan
        is_[j, T_PICK] = p
        is_[j, T_ENTRY_ROW] = k
        is_[j, T_DUE] = end_due if ip[I_HOLD_UNTIL_DROPPED] == 1 else k + ip[I_WINDOW]
        is_[j, T_DUE_REASON] = WINDOW_END
        is_[j, T_GAPS] = 0
        is_[j, T_LAST_PRESENT] = k
        is_[j, T_REPICKS] = 0
        is_[j, T_INTRA] = NO_EXIT
        held[ic[C_N_HELD]] = j
        ic[C_N_HELD] += 1
        ic[AI_ENTRIES_TODAY] += 1


@njit(cache=True)
def _candle_stage(open_, high, low, close, k, fs, is_, held, ac, ic, trades, fp, ip):
    """Inside candle ``k``: stop/target exits (entries of this row checked in full, others
    by the open stage's finding), then lows, highs and marks of the survivors."""
    h = 0
    while h < ic[C_N_HELD]:
        j = held[h]
        o = open_[k, j]
        if is_[j, T_DUE] <= k or np.isnan(o):
            h += 1
            continue
        lo = low[k, j]
        if is_[j, T_ENTRY_ROW] == k:
            stop, stop_reason = _stop_of(fs, j)
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
            _close(trades, fs, is_, j, ac, ic, held, k, ip[I_INDEX0] + row_time * ip[I_STEP],
                   raw, reason, exit_candle_low(reason, at_open, raw, lo), fp, np.bool_(False),
                   np.int64(0), np.bool_(False), ambiguous, worst_raw)
            continue
        is_[j, T_LAST_PRESENT] = k
        if lo < fs[j, S_LOW]:
            fs[j, S_LOW] = lo
        if high[k, j] > fs[j, S_HIGH]:
            fs[j, S_HIGH] = high[k, j]
        fs[j, S_MARK] = close[k, j]
        h += 1


@njit(cache=True)
def _mark(k, e, eq, fs, is_, held, ac, ic, fp, ip):
    """Equity at the close of row ``k`` (row ``e`` of ``eq``), then the halts it trips
    (:func:`core_engine.risk._kernels.rules_on_mark`); a liquidation makes every held
    position due at the next open."""
    exposure = _gross(fs, held, ic[C_N_HELD])
    equity = ac[A_CASH] + exposure
    eq[e, 0] = equity
    eq[e, 1] = ac[A_CASH]
    eq[e, 2] = exposure
    eq[e, 3] = ic[C_N_HELD]
    ac[A_EQ_PREV] = equity
    liquidate = rules_on_mark(ac, ic, equity, ip[I_INDEX0] + (k + 1) * ip[I_STEP], fp, ip)
    if liquidate != LIQ_NONE:
        reason = LIQUIDATE_DAILY_LOSS if liquidate == LIQ_DAILY else LIQUIDATE_DRAWDOWN
        for h in range(ic[C_N_HELD]):
            j = held[h]
            if is_[j, T_DUE] > k + 1:
                is_[j, T_DUE] = k + 1
                is_[j, T_DUE_REASON] = reason


@njit(cache=True)
def _skip_flat(k, last, e, eq, ac, ic, fp, ip):
    """Marks of rows ``k + 1 .. last`` of an account holding nothing (cash only): equal to
    the mark of row ``k``, so the rules need only the last of them (a new UTC day among
    them opens at that equity; no halt can trip on an unchanged equity). Returns ``e``."""
    for _ in range(k + 1, last + 1):
        eq[e, 0] = ac[A_CASH]
        eq[e, 1] = ac[A_CASH]
        eq[e, 2] = 0.0
        eq[e, 3] = 0.0
        e += 1
    ac[A_EQ_PREV] = ac[A_CASH]
    rules_on_mark(ac, ic, ac[A_CASH], ip[I_INDEX0] + (last + 1) * ip[I_STEP], fp, ip)
    return e


@njit(cache=True)
def simulate_portfolio_kernel(open_, high, low, close, dec_rows, pick_start, cols, weights,
                              dist, fp, ip, trades, blocked, eq):
    """Run the account over the candles from the first decision; fill ``trades`` (exit
    order), ``blocked`` and ``eq`` (rows ``dec_rows[0] + e``: equity, cash, exposure,
    positions). ``dist``: the ``(6, n_picks)`` exit distances (rows ``D_*``). Returns
    ``(n_trades, n_blocked, n_eq)``."""
    n, n_sym = open_.shape
    n_dec = dec_rows.shape[0]
    if n_dec == 0:
        return 0, 0, 0
    fs = np.full((n_sym, 14), np.nan)
    is_ = np.zeros((n_sym, 10), dtype=np.int64)
    is_[:, T_PICK] = -1
    is_[:, T_LAST_EXIT] = -NEVER
    held = np.empty(n_sym, dtype=np.int64)
    scratch = np.empty((2, max(ip[RI_CORR_LOOKBACK], 2)))
    ac = np.zeros(N_RULE_FSTATE + 2)
    ic = np.zeros(N_RULE_ISTATE + 3, dtype=np.int64)
    ac[A_CASH] = fp[F_CASH]
    ac[A_EQ_PREV] = fp[F_CASH]
    i0 = dec_rows[0]
    rules_reset(ac, ic, fp[F_CASH], ip[I_INDEX0] + (i0 + 1) * ip[I_STEP])
    eq[0, 0] = fp[F_CASH]
    eq[0, 1] = fp[F_CASH]
    eq[0, 2] = 0.0
    eq[0, 3] = 0.0
    end_due = ip[I_END_DUE]
    if end_due < 0:
        end_due = dec_rows[n_dec - 1] + 1 + ip[I_WINDOW]
    last_row = end_due if end_due < n - 1 else n - 1
    d = np.int64(0)
    k = i0 + 1
    e = np.int64(1)
    while k < n:
        is_dec = d < n_dec and dec_rows[d] + 1 == k
        if is_dec and ip[I_HOLD_UNTIL_DROPPED] == 1:
            for h in range(ic[C_N_HELD]):
                j = held[h]
                if is_[j, T_DUE] > k:
                    picked = False
                    for p in range(pick_start[d], pick_start[d + 1]):
                        picked = picked or cols[p] == j
                    if not picked:
                        is_[j, T_DUE] = k
                        is_[j, T_DUE_REASON] = DROPPED
        _open_stage(open_, high, low, close, k, fs, is_, held, ac, ic, trades, fp, ip)
        if is_dec:
            _decide(open_, close, k, pick_start[d], pick_start[d + 1], cols, weights, dist,
                    end_due, fs, is_, held, ac, ic, trades, blocked, fp, ip, scratch)
            d += 1
        _candle_stage(open_, high, low, close, k, fs, is_, held, ac, ic, trades, fp, ip)
        _mark(k, e, eq, fs, is_, held, ac, ic, fp, ip)
        e += 1
        if d >= n_dec and ic[C_N_HELD] == 0 and k >= last_row:
            break
        if ic[C_N_HELD] == 0 and d < n_dec and dec_rows[d] > k:
            # nothing held until the next decision: the marks stay flat
            e = _skip_flat(k, dec_rows[d], e, eq, ac, ic, fp, ip)
            k = dec_rows[d]
        k += 1
    if ic[C_N_HELD] > 0:  # the data ended while positions waited for a price
        while ic[C_N_HELD] > 0:
            _due_exit(open_, close, n, fs, is_, held[0], held, ac, ic, trades, fp, ip,
                      np.bool_(True))
        eq[e - 1, 0] = ac[A_CASH]
        eq[e - 1, 1] = ac[A_CASH]
        eq[e - 1, 2] = 0.0
        eq[e - 1, 3] = 0.0
    return ic[C_N_TR], ic[C_N_BL], e
