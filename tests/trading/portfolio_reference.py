"""An independent plain-Python simulator of the portfolio-mode semantics (issue 10), the
reference the RankingTrader replay is held to. It shares no code with the SimBroker, the
trading kernels or the backtest kernels: every rule is written out again, candle by candle.

Picks (which symbols the strategy, gates and allocator choose at each decision time) are the
engine's own :func:`core_engine.backtest.allocate_at`: they are the input, not the
simulation.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

DAY = 86_400 * 10**9


def _stop(p):
    level, reason = p["stop"], "stop_loss"
    if p["trail"] is not None:
        trail = p["highest"] * (1 - p["trail"])
        if math.isnan(level) or trail > level:
            level, reason = trail, "trailing_stop"
    return level, reason


def simulate(panel, picks, dec_rows, *, window, fee, slip, hold="window", slots=3,
             stop=None, target=None, trail=None, cash=10_000.0, cooldown=None,
             max_per_day=None, min_value=0.0, max_exposure=None, max_gross=None):
    """Returns ``(trades, blocked, equity)`` as DataFrames (see the test for columns)."""
    OPEN, H, L, C = (np.asarray(getattr(panel, f)) for f in ("open", "high", "low", "close"))
    index, step = panel.index.asi8, panel.step_ns
    n, m = OPEN.shape
    mark = pd.DataFrame(C).ffill().to_numpy()
    by_row = {}
    for r, c, k, s in zip(picks.rows, picks.cols, picks.ranks, picks.scores, strict=True):
        by_row.setdefault(int(r) + 1, []).append((int(k), int(c), float(s)))
    end_due = int(dec_rows[-1]) + 1 + window
    held, trades, blocked, equity = {}, [], [], []
    last_exit, per_day = {}, {}

    def close(j, k, raw, reason, at_open):
        nonlocal cash
        p = held.pop(j)
        price = raw * (1 - slip)
        cash += p["qty"] * price * (1 - fee)
        when = index[k] + (0 if at_open else step)
        last_exit[j] = when
        trades.append({"symbol": panel.symbols[j], "decision_time": p["t"],
                       "entry_time": p["entry_time"], "exit_time": pd.Timestamp(when, tz="UTC"),
                       "entry_price": p["fill"], "exit_price": price, "quantity": p["qty"],
                       "exit_reason": reason})

    for k in range(int(dec_rows[0]) + 1, n):
        t = index[k]
        picked = sorted(by_row.get(k, []))
        is_dec = (k - 1) in set(int(r) for r in dec_rows)
        equity_t = cash + sum(p["qty"] * mark[k - 1, j] for j, p in held.items())
        if is_dec and hold == "until_dropped":
            names = {c for _, c, _ in picked}
            for j, p in held.items():
                if j not in names and p["due"] > k:
                    p["due"], p["why"] = k, "dropped"
        for j in sorted(held):  # 1. exits at the open
            p, o = held[j], OPEN[k, j]
            if math.isnan(o):
                continue
            level, why = _stop(p)
            if p["due"] <= k:
                reason = why if o <= level else "take_profit" if o >= p["target"] else p["why"]
                close(j, k, o, reason, True)
            elif o <= level:
                close(j, k, o, why, True)
            elif o >= p["target"]:
                close(j, k, o, "take_profit", True)
        if is_dec:  # 2. the decision
            entered = {}
            for rank, j, score in picked:
                sym = panel.symbols[j]
                if j in held:
                    if hold == "window":
                        held[j]["due"] = k + window
                    continue

                def block(reason, sym=sym, rank=rank, score=score, t=t):
                    blocked.append({"decision_time": pd.Timestamp(t, tz="UTC"), "symbol": sym,
                                    "rank": rank, "score": score, "reason": reason})
                if math.isnan(OPEN[k, j]):
                    block("no_entry_candle")
                    continue
                if cooldown is not None and j in last_exit and t < last_exit[j] + cooldown:
                    block("cooldown")
                    continue
                if max_per_day is not None and per_day.get(t // DAY, 0) >= max_per_day:
                    block("max_entries_per_day")
                    continue
                value, bound = equity_t / slots, None

                def cut(value, bound, cap, name, tol=1e-9 * equity_t):
                    # a cap binds when it cuts more than float rounding
                    if value > cap:
                        return cap, name if value - cap > tol else bound
                    return value, bound

                if max_exposure is not None:
                    value, bound = cut(value, bound, max_exposure * equity_t,
                                       "max_exposure_pct")
                if max_gross is not None:
                    used = sum(p["qty"] * mark[k - 1, i] for i, p in held.items()
                               if i not in entered) + sum(entered.values())
                    room = max(max_gross * equity_t - used, 0.0)
                    value, bound = cut(value, bound, room, "max_gross_exposure_pct")
                if value * (1 + fee) > cash:
                    value, bound = cut(value, bound, cash / (1 + fee), "cash")
                if not value > 1e-9 * equity_t or value < min_value:
                    block(bound or "min_order_value")
                    continue
                fill = OPEN[k, j] * (1 + slip)
                cash -= min(value * (1 + fee), cash)
                per_day[t // DAY] = per_day.get(t // DAY, 0) + 1
                entered[j] = value
                held[j] = {"qty": value / fill, "fill": fill, "t": pd.Timestamp(t, tz="UTC"),
                           "entry_time": pd.Timestamp(t, tz="UTC"),
                           "stop": fill * (1 - stop) if stop else math.nan,
                           "target": fill * (1 + target) if target else math.inf,
                           "trail": trail, "highest": fill,
                           "due": k + window if hold == "window" else end_due,
                           "why": "window_end"}
        for j in sorted(held):  # 3. inside the candle
            p, o, h, lo = held[j], OPEN[k, j], H[k, j], L[k, j]
            if math.isnan(o):
                continue
            level, why = _stop(p)
            if lo <= level:
                close(j, k, level, why, False)
            elif h >= p["target"]:
                close(j, k, p["target"], "take_profit", False)
            else:
                p["highest"] = max(p["highest"], h)
        equity.append((pd.Timestamp(index[k] + step, tz="UTC"),
                       cash + sum(p["qty"] * mark[k, j] for j, p in held.items())))
    for j in sorted(held):  # the data ended: the last close there is
        last = int(np.flatnonzero(~np.isnan(C[:, j]))[-1])
        close(j, last, C[last, j], held[j]["why"], False)
    return (pd.DataFrame(trades), pd.DataFrame(blocked),
            pd.DataFrame(equity, columns=["time", "equity"]))
