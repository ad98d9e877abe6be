"""Numba kernels of the risk layer: top-n selection, rolling means for gates, and the
portfolio rules and sizing of one account.

Kernels take and return NumPy arrays and scalars only and validate nothing beyond shapes;
the public wrappers in ``allocation.py``, ``gates.py``, ``rules.py`` and ``sizing.py``
validate and convert.

**Portfolio rules and sizing** (the semantics in words: :mod:`core_engine.risk.rules`,
:mod:`core_engine.risk.sizing` and :mod:`core_engine.backtest.portfolio`). The portfolio
kernel of the backtest and the event world's ``RankingTrader`` call these same functions,
so a rule is written once (DESIGN.md: one cost and fill model for every simulation).

Parameters come packed (:func:`core_engine.risk.rules.rule_params` packs them): floats
``fp[RF_*]`` (NaN = rule off) and ints ``ip[RI_*]`` (-1 = off); a caller may append its own
parameters after them. The account's rule state is ``af[AF_*]`` (floats) and ``ai[AI_*]``
(ints), likewise at the front of the caller's arrays.

``rules_reset(af, ai, equity, tau)``
    Start the state at the first mark (time ``tau``): peak and day's opening equity =
    ``equity``, the UTC day of ``tau``, no halt, no entry today.
``rules_on_mark(af, ai, equity, tau, fp, ip) -> liquidate``
    One mark of the account at a candle close ``tau``: a new UTC day opens at this equity
    (daily halt and entry count reset); a loss of ``daily_loss_limit_pct`` from the day's
    opening equity halts entries for the day; the running peak rises; a drawdown of
    ``max_drawdown_pct`` from the peak halts entries until ``tau + drawdown_halt_for`` (or
    for good) and restarts the peak at this equity. Returns ``LIQ_DAILY``/``LIQ_DRAWDOWN``
    when a trip asks to close every position at the next open (the daily one first), else
    ``LIQ_NONE``.
``mark_account(close_ffill, cols, qty, cash, r0, r1, af, ai, fp, ip, index0, step)
-> (equity, liq_row, liq)``
    :func:`rules_on_mark` at the closes of rows ``r0..r1`` of an account holding ``qty[i]``
    of column ``cols[i]`` and ``cash`` throughout (marks: the last known closes
    ``close_ffill``). Returns the last equity (NaN when ``r1 < r0``) and the first row
    whose mark asked for a liquidation (-1 if none) with its code.
``entry_halted(ai, t_open) -> (drawdown, daily)``
    Whether entries are halted at ``t_open`` by the drawdown or the daily-loss rule.
``entry_block(ai, fp, ip, t_open, last_exit, close, j, held, n_held, end_row, xs, ys)
-> reason``
    The first rule that blocks a new entry of column ``j`` at ``t_open`` (``B_*``, -1 if
    none), in the documented order: drawdown halt, daily halt, ``cooldown`` (``last_exit``
    = the column's last exit time), ``max_entries_per_day`` (``ai[AI_ENTRIES_TODAY]``),
    ``max_correlation`` against the columns ``held[:n_held]`` over the returns ending at
    ``end_row`` (``xs``/``ys``: scratch arrays of ``correlation_lookback``).
``sizing_fraction(weight, fill, stop0, fp) -> w``
    The sizing's fraction of equity, at most ``max_position_pct``: ``weight``, or with
    ``RiskPerTrade`` ``risk × fill / (fill − stop0)`` (``stop0``: the stop in force on the
    entry candle); NaN = no size.
``entry_size(equity, cash, gross, weight, fill, stop0, fp) -> (quantity, value, reason)``
    A new entry's order: ``equity × w`` cut to ``max_exposure_pct × equity``, to the room
    under ``max_gross_exposure_pct × equity`` (``gross``: the positions' value now), to
    ``cash / (1 + fee)``; the quantity ``value / fill`` rounded down to the lot. ``reason``
    is -1 when the order stands, else why not (``B_SIZING``, or the last cap that bound:
    ``B_CASH``, ``B_MAX_GROSS``, ``B_MAX_EXPOSURE``, or ``B_MIN_ORDER``). A cap binds
    when it cuts more than ``DUST × equity`` (it still cuts the value when it cuts less):
    caps equal in exact arithmetic (the room under ``max_gross_exposure_pct`` 100 % and
    the cash, no fee) are named after the earlier one whichever float sum comes out a
    hair lower, so the engine and the trader, summing the gross their own ways, agree.
``rebalance_size(equity, cash, gross, held_qty, o, fill, weight, stop0, halted, fp)
-> (quantity, value)``
    ``rebalance=True`` for a re-picked position of ``held_qty`` at the open ``o``: the
    difference between its new target value (capped like an entry's) and ``held_qty × o``.
    ``quantity > 0`` buys (not while ``halted``; capped by the gross room and the cash),
    ``< 0`` sells part of it (never all), 0 trades nothing.
``order_value_ok(quantity, value, equity, min_order) -> bool``
    An order stands when its quantity is positive, its value at least ``min_order_value``
    and above ``DUST × equity`` (the cash left by float rounding is not a position).
``lot_quantity(value, price, lot) -> (quantity, value)``
    ``value / price`` rounded down to a multiple of ``lot`` (NaN = no lot).
``pay(cash, value, fee) -> (cash, fee_paid)``
    Cash after buying ``value`` with its fee on top; the fee absorbs the last rounding so
    cash never goes below 0.
``return_correlation(close, a, b, end_row, length, xs, ys) -> float``
    Pearson correlation of the 1-candle returns of two columns (see the function).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# ---------------------------------------------------------------- top-n and rolling means


@njit(cache=True, inline="always")
def _top_n_into(scores, eligible, name_rank, n, picks, taken):
    """:func:`top_n_select_1d` written into ``picks`` (``n`` slots); ``taken``: scratch of
    ``len(scores)`` booleans. In place, so that the row kernels need neither a slice
    assignment nor a fresh array per row (either costs numba's compile time on a cold
    start: a slice assignment compiles its error message's string formatting)."""
    n_cols = scores.shape[0]
    for j in range(n_cols):
        taken[j] = False
    for k in range(n):
        picks[k] = -1
    for k in range(n):
        best = -1
        best_score = 0.0
        for j in range(n_cols):
            if taken[j] or not eligible[j]:
                continue
            s = scores[j]
            if not np.isfinite(s):
                continue
            if best == -1 or s > best_score or (s == best_score and name_rank[j] < name_rank[best]):
                best = j
                best_score = s
        if best == -1:
            break
        picks[k] = best
        taken[best] = True


@njit(cache=True)
def top_n_select_1d(scores, eligible, name_rank, n):
    """Columns of the ``n`` best finite, eligible scores, best first, ``-1`` for empty slots.

    Ties are broken by ``name_rank`` ascending (the rank of the symbol name), so the result
    is the same whatever the column order.
    """
    picks = np.empty(n, dtype=np.int64)
    taken = np.empty(scores.shape[0], dtype=np.bool_)
    _top_n_into(scores, eligible, name_rank, n, picks, taken)
    return picks


@njit(cache=True)
def _top_n_rows(scores, eligible, name_rank, n, picks, taken):
    for i in range(scores.shape[0]):
        _top_n_into(scores[i], eligible[i], name_rank, n, picks[i], taken)


def top_n_select_rows(scores, eligible, name_rank, n):
    """Row-wise :func:`top_n_select_1d` over a ``(D, N)`` array, on one thread (the
    arrays are allocated here: an allocation inside the kernel costs compile time on a
    cold start)."""
    picks = np.empty((scores.shape[0], n), dtype=np.int64)
    taken = np.empty(scores.shape[1], dtype=np.bool_)
    _top_n_rows(scores, eligible, name_rank, int(n), picks, taken)
    return picks


@njit(cache=True, parallel=True)
def top_n_select_rows_parallel(scores, eligible, name_rank, n):
    """:func:`top_n_select_rows` with the rows spread over threads."""
    n_rows, n_cols = scores.shape
    picks = np.empty((n_rows, n), dtype=np.int64)
    for i in prange(n_rows):
        taken = np.empty(n_cols, dtype=np.bool_)
        _top_n_into(scores[i], eligible[i], name_rank, n, picks[i], taken)
    return picks


#: Below this many cells (rows × columns) the selection runs on one thread: waking the
#: thread pool costs milliseconds, more than selecting a few thousand cells.
PARALLEL_MIN_CELLS = 200_000


def top_n_select_2d(scores, eligible, name_rank, n):
    """Row-wise :func:`top_n_select_1d` over a ``(D, N)`` array; returns ``(D, n)`` int64.

    Large arrays (the backtest's decision rows at once) use threads; small ones (a live
    bar, a short run) a serial loop: same results.
    """
    if scores.shape[0] * scores.shape[1] >= PARALLEL_MIN_CELLS:
        return top_n_select_rows_parallel(scores, eligible, name_rank, n)
    return top_n_select_rows(scores, eligible, name_rank, n)


@njit(cache=True)
def rolling_mean_1d(values, length):
    """Mean of the last ``length`` values at each row; NaN until ``length`` values and while
    the window holds a NaN (equals ``pandas.Series.rolling(length).mean()``)."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    total = 0.0
    n_nan = 0
    for i in range(n):
        v = values[i]
        if np.isnan(v):
            n_nan += 1
        else:
            total += v
        if i >= length:
            old = values[i - length]
            if np.isnan(old):
                n_nan -= 1
            else:
                total -= old
        if i >= length - 1 and n_nan == 0:
            out[i] = total / length
    return out


@njit(cache=True, parallel=True)
def rolling_mean_2d(values, length):
    """Column-wise :func:`rolling_mean_1d` of a ``(T, N)`` array."""
    out = np.empty(values.shape)
    for j in prange(values.shape[1]):
        out[:, j] = rolling_mean_1d(values[:, j], length)
    return out


# ---------------------------------------------------------------- portfolio rules and sizing
# why a pick did not become a position (result.blocked["reason"])
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

# float parameters (fp; NaN = off)
RF_FEE, RF_MAX_POS, RF_LOT, RF_MIN_ORDER, RF_RISK, RF_DAILY_LOSS, RF_MAX_DD, \
    RF_MAX_EXPOSURE, RF_MAX_GROSS, RF_MAX_CORR = range(10)
N_RULE_FPARAMS = 10
# int parameters (ip; -1 = off)
RI_COOLDOWN_NS, RI_HALT_NS, RI_MAX_ENTRIES, RI_CORR_LOOKBACK, RI_LIQ_DAILY, RI_LIQ_DD = range(6)
N_RULE_IPARAMS = 6
# account rule state: floats (af) and ints (ai)
AF_PEAK, AF_DAY_OPEN = range(2)
N_RULE_FSTATE = 2
AI_DAY, AI_DAY_HALTED, AI_DD_FOREVER, AI_HALT_UNTIL, AI_ENTRIES_TODAY = range(5)
N_RULE_ISTATE = 5
# what a mark asks for (rules_on_mark)
LIQ_NONE = 0
LIQ_DAILY = 1
LIQ_DRAWDOWN = 2

DAY_NS = 86_400 * 10**9
NEVER = np.iinfo(np.int64).max // 4
#: An order worth at most this share of equity is float-rounding dust, not a position.
DUST = 1e-9


@njit(cache=True)
def rules_reset(af, ai, equity, tau):
    """Start the rule state at the first mark; see the module docstring."""
    af[AF_PEAK] = equity
    af[AF_DAY_OPEN] = equity
    ai[AI_DAY] = tau // DAY_NS
    ai[AI_DAY_HALTED] = 0
    ai[AI_DD_FOREVER] = 0
    ai[AI_HALT_UNTIL] = -NEVER
    ai[AI_ENTRIES_TODAY] = 0


@njit(cache=True)
def rules_on_mark(af, ai, equity, tau, fp, ip):
    """One mark at the candle close ``tau``; returns ``LIQ_*`` (see the module docstring)."""
    day = tau // DAY_NS
    if day != ai[AI_DAY]:
        ai[AI_DAY] = day
        af[AF_DAY_OPEN] = equity
        ai[AI_DAY_HALTED] = 0
        ai[AI_ENTRIES_TODAY] = 0
    liquidate = LIQ_NONE
    if not np.isnan(fp[RF_DAILY_LOSS]) and ai[AI_DAY_HALTED] == 0 \
            and equity <= af[AF_DAY_OPEN] * (1.0 - fp[RF_DAILY_LOSS]):
        ai[AI_DAY_HALTED] = 1
        if ip[RI_LIQ_DAILY] == 1:
            liquidate = LIQ_DAILY
    if equity > af[AF_PEAK]:
        af[AF_PEAK] = equity
    if not np.isnan(fp[RF_MAX_DD]) and ai[AI_DD_FOREVER] == 0 \
            and equity <= af[AF_PEAK] * (1.0 - fp[RF_MAX_DD]):
        if ip[RI_HALT_NS] < 0:
            ai[AI_DD_FOREVER] = 1
        else:
            ai[AI_HALT_UNTIL] = tau + ip[RI_HALT_NS]
        af[AF_PEAK] = equity
        if ip[RI_LIQ_DD] == 1 and liquidate == LIQ_NONE:
            liquidate = LIQ_DRAWDOWN
    return liquidate


@njit(cache=True)
def mark_account(close_ffill, cols, qty, cash, r0, r1, af, ai, fp, ip, index0, step):
    """Marks of rows ``r0..r1`` of an account that holds still; see the module docstring."""
    equity = np.nan
    liq_row = -1
    liq = LIQ_NONE
    for r in range(r0, r1 + 1):
        equity = cash
        for i in range(cols.shape[0]):
            equity += qty[i] * close_ffill[r, cols[i]]
        code = rules_on_mark(af, ai, equity, index0 + (r + 1) * step, fp, ip)
        if code != LIQ_NONE and liq_row < 0:
            liq_row = r
            liq = code
    return equity, liq_row, liq


@njit(cache=True)
def entry_halted(ai, t_open):
    """``(drawdown, daily)``: whether a halt stops new entries at ``t_open``."""
    return ai[AI_DD_FOREVER] == 1 or t_open < ai[AI_HALT_UNTIL], ai[AI_DAY_HALTED] == 1


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
def entry_block(ai, fp, ip, t_open, last_exit, close, j, held, n_held, end_row, xs, ys):
    """The first rule blocking a new entry of column ``j`` (``B_*``) or -1."""
    halted_dd, halted_day = entry_halted(ai, t_open)
    if halted_dd:
        return B_DRAWDOWN
    if halted_day:
        return B_DAILY_LOSS
    if ip[RI_COOLDOWN_NS] >= 0 and t_open < last_exit + ip[RI_COOLDOWN_NS]:
        return B_COOLDOWN
    if ip[RI_MAX_ENTRIES] >= 0 and ai[AI_ENTRIES_TODAY] >= ip[RI_MAX_ENTRIES]:
        return B_MAX_ENTRIES
    if not np.isnan(fp[RF_MAX_CORR]):
        for h in range(n_held):
            other = held[h]
            if other != j:
                corr = return_correlation(close, j, other, end_row, ip[RI_CORR_LOOKBACK],
                                          xs, ys)
                if corr > fp[RF_MAX_CORR]:
                    return B_MAX_CORR
    return -1


@njit(cache=True)
def lot_quantity(value, price, lot):
    """(quantity, value) of an order worth ``value`` at ``price``, rounded down to ``lot``."""
    if np.isnan(lot):
        return value / price, value
    qty = np.floor(value / price / lot) * lot
    return qty, qty * price


@njit(cache=True)
def pay(cash, value, fee):
    """Cash after paying ``value`` plus its fee, and the fee paid (cash never below 0)."""
    cost = value * (1.0 + fee)
    if cost > cash:
        cost = cash
    return cash - cost, cost - value


@njit(cache=True)
def order_value_ok(qty, value, equity, min_order):
    """Whether an order of ``qty`` worth ``value`` stands (not zero, not below the minimum
    order value, not dust)."""
    return qty > 0.0 and value >= min_order and value > DUST * equity


@njit(cache=True)
def sizing_fraction(weight, fill, stop0, fp):
    """The sizing's fraction of equity (NaN = no size), at most ``max_position_pct``."""
    w = weight
    if not np.isnan(fp[RF_RISK]):
        w = np.nan
        if not np.isnan(stop0) and stop0 < fill:
            w = fp[RF_RISK] * fill / (fill - stop0)
    if not (w > 0.0):
        return np.nan
    if w > fp[RF_MAX_POS]:
        w = fp[RF_MAX_POS]
    return w


@njit(cache=True)
def _cut(value, cap, reason, cap_reason, tol):
    """``value`` cut to ``cap``; ``cap_reason`` names the block only when the cut is more
    than ``tol`` (a smaller one is float rounding of a tie: the earlier cap bound)."""
    if value > cap:
        if value - cap > tol:
            reason = cap_reason
        value = cap
    return value, reason


@njit(cache=True)
def entry_size(equity, cash, gross, weight, fill, stop0, fp):
    """A new entry's ``(quantity, value, reason)``; see the module docstring."""
    w = sizing_fraction(weight, fill, stop0, fp)
    if np.isnan(w):
        return 0.0, 0.0, B_SIZING
    tol = DUST * equity
    value = equity * w
    reason = B_MIN_ORDER
    if not np.isnan(fp[RF_MAX_EXPOSURE]):
        value, reason = _cut(value, fp[RF_MAX_EXPOSURE] * equity, reason, B_MAX_EXPOSURE, tol)
    if not np.isnan(fp[RF_MAX_GROSS]):
        value, reason = _cut(value, fp[RF_MAX_GROSS] * equity - gross, reason, B_MAX_GROSS,
                             tol)
    if value * (1.0 + fp[RF_FEE]) > cash:
        # (compared as value x (1 + fee), what paying it costs, and cut to exactly what
        # the cash buys, even when it names no block)
        cap = cash / (1.0 + fp[RF_FEE])
        if value - cap > tol:
            reason = B_CASH
        value = cap
    if not (value > 0.0):
        return 0.0, 0.0, reason
    qty, value = lot_quantity(value, fill, fp[RF_LOT])
    if not order_value_ok(qty, value, equity, fp[RF_MIN_ORDER]):
        return 0.0, 0.0, reason
    return qty, value, -1


@njit(cache=True)
def rebalance_size(equity, cash, gross, held_qty, o, fill, weight, stop0, halted, fp):
    """The signed quantity (and value) that moves a re-picked position to its target."""
    w = sizing_fraction(weight, fill, stop0, fp)
    if np.isnan(w):
        return 0.0, 0.0
    target = equity * w
    if not np.isnan(fp[RF_MAX_EXPOSURE]) and target > fp[RF_MAX_EXPOSURE] * equity:
        target = fp[RF_MAX_EXPOSURE] * equity
    delta = target - held_qty * o
    if delta > 0.0 and not halted:
        room = delta
        if not np.isnan(fp[RF_MAX_GROSS]):
            gross_room = fp[RF_MAX_GROSS] * equity - gross
            if gross_room < room:
                room = gross_room
        if room * (1.0 + fp[RF_FEE]) > cash:
            room = cash / (1.0 + fp[RF_FEE])
        if room > 0.0:
            qty, value = lot_quantity(room, fill, fp[RF_LOT])
            if order_value_ok(qty, value, equity, fp[RF_MIN_ORDER]):
                return qty, value
    elif delta < 0.0:
        qty = -delta / o
        if not np.isnan(fp[RF_LOT]):
            qty = np.floor(qty / fp[RF_LOT]) * fp[RF_LOT]
        if qty > held_qty:
            qty = held_qty
        if qty < held_qty and order_value_ok(qty, qty * o, equity, fp[RF_MIN_ORDER]):
            return -qty, qty * o
    return 0.0, 0.0
