"""A deliberately simple reference implementation of one slices-mode trade.

Plain Python loops over candles given as lists of floats; no numba, no NumPy vectorisation,
nothing imported from ``core_engine.backtest``. It is written from the rules in
DESIGN.md §1 and issue 5 only, so that agreement with the engine is evidence, not echo.

Rules (long only):
- enter at open of the candle after the decision candle, times (1 + slip); no candle → no trade;
- levels from the entry fill: stop = fill*(1-pct) or fill - k*atr; target = fill*(1+pct) or
  fill + k*atr; trail = best*(1-pct) or best - k*atr, best = max(fill, highs of candles
  already finished);
- candles of the window one by one, missing ones skipped and counted;
  the active stop is the higher of fixed stop and trail;
  open <= stop → out at open; open >= target → out at open; low <= stop → out at the stop
  fill: the stop itself ("level"), the candle's low ("low"), or the stop less
  ``range_frac`` of the candle's high-low range but not under the low ("range")
  (ambiguous if high >= target too, best case = target; worst case = out at the low);
  high >= target → out at target;
- else out at the open of the candle after the window; if that candle is missing, at the
  first open after it (``delayed_by`` = how many candles later), unless that is more than
  ``max_delay`` candles late: then at the last close seen (``capped``); with no open after
  the window at all, at the last close seen;
- return = exit*(1-slip)*(1-fee) / (fill*(1+fee)) - 1 in percent;
- drawdown = 1 - (lowest raw price exposed to) / fill in percent, floored at 0.
"""

from __future__ import annotations

import math


def _nan(x):
    return x is None or (isinstance(x, float) and math.isnan(x))


def reference_trade(opens, highs, lows, closes, decision_row, window, fee, slip,
                    stop_pct=None, target_pct=None, trail_pct=None,
                    stop_atr=None, target_atr=None, trail_atr=None, atr=None,
                    step=1, time0=0, max_delay=None, stop_fill="level", range_frac=0.5):
    """Simulate one trade; return a dict, or None when the entry candle is missing.

    ``*_pct`` are fractions (0.02 = 2 %); ``*_atr`` multiples of ``atr`` (a float).
    Times are ``time0 + row * step``.
    """
    n = len(opens)
    entry = decision_row + 1
    if entry >= n or _nan(opens[entry]):
        return None
    fill = opens[entry] * (1 + slip)

    def stop_price():
        candidates = []
        if stop_pct is not None:
            candidates.append((fill * (1 - stop_pct), "stop_loss"))
        if stop_atr is not None:
            candidates.append((fill - stop_atr * atr, "stop_loss"))
        if trail_pct is not None:
            candidates.append((best * (1 - trail_pct), "trailing_stop"))
        if trail_atr is not None:
            candidates.append((best - trail_atr * atr, "trailing_stop"))
        if not candidates:
            return None, None
        # the highest stop is hit first; on a tie the fixed stop is named
        top = candidates[0]
        for c in candidates[1:]:
            if c[0] > top[0]:
                top = c
        return top

    target = None
    if target_pct is not None:
        target = fill * (1 + target_pct)
    if target_atr is not None:
        target = fill + target_atr * atr

    def net(raw):
        return (raw * (1 - slip) * (1 - fee) / (fill * (1 + fee)) - 1) * 100

    def finish(raw_exit, row, exit_time, reason, worst_price, ambiguous=False, best=None,
               at_low=None):
        out_price = raw_exit * (1 - slip)
        ret = (out_price * (1 - fee) / (fill * (1 + fee)) - 1) * 100
        low_seen = min(worst_price, raw_exit)
        dd = max(0.0, (1 - low_seen / fill) * 100)
        best_ret = ret
        if best is not None:
            best_ret = (best * (1 - slip) * (1 - fee) / (fill * (1 + fee)) - 1) * 100
        return {"entry_row": entry, "exit_row": row, "entry_time": time0 + entry * step,
                "exit_time": exit_time, "entry_price": fill, "exit_price": out_price,
                "return_pct": ret, "best_return_pct": best_ret, "max_drawdown": dd,
                "exit_reason": reason, "ambiguous": ambiguous, "gaps": gaps,
                "last_close": False, "delayed_by": 0, "capped": False,
                "worst_return_pct": ret if at_low is None else net(at_low)}

    best = fill
    lowest = fill
    gaps = 0
    last_seen = None
    for k in range(entry, decision_row + window + 1):
        if _nan(opens[k]):
            gaps += 1
            continue
        last_seen = k
        level, why = stop_price()
        o, h, lo = opens[k], highs[k], lows[k]
        if level is not None and o <= level:
            return finish(o, k, time0 + k * step, why, min(lowest, o))
        if target is not None and o >= target:
            return finish(o, k, time0 + k * step, "take_profit", min(lowest, o))
        if level is not None and lo <= level:
            if stop_fill == "low":
                price = lo
            elif stop_fill == "range":
                price = max(lo, level - range_frac * (h - lo))
            else:
                price = level
            both = target is not None and h >= target
            return finish(price, k, time0 + (k + 1) * step, why, min(lowest, price),
                          ambiguous=both, best=target if both else None, at_low=lo)
        if target is not None and h >= target:
            return finish(target, k, time0 + (k + 1) * step, "take_profit", min(lowest, lo))
        lowest = min(lowest, lo)
        best = max(best, h)
    due = decision_row + window + 1
    after = due
    while after < n and _nan(opens[after]):  # exit candle missing: hold until prices return
        after += 1
    too_late = max_delay is not None and after - due > max_delay
    if after < n and not too_late:
        o = opens[after]
        level, why = stop_price()
        if level is None or o > level:
            why = "take_profit" if target is not None and o >= target else "window_end"
        result = finish(o, after, time0 + after * step, why, min(lowest, o))
        result["delayed_by"] = after - due
        return result
    c = closes[last_seen]
    result = finish(c, last_seen, time0 + (last_seen + 1) * step, "window_end", min(lowest, c))
    result["last_close"] = True
    result["capped"] = after < n  # a later price exists, but too late
    return result
