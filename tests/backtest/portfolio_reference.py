"""A deliberately plain reference of portfolio mode: Python lists, dicts and floats.

Written from the rules in the docstring of ``core_engine.backtest.portfolio`` (and the
slices rules of DESIGN.md §1 / ``simulate.py``); it imports nothing from core_engine, so
agreement with the numba kernel is evidence, not echo. Structure on purpose unlike the
kernel: one ``Position`` object per holding, one method per stage of a candle.

Prices are ``prices[field][row][col]`` with ``None`` or NaN for a missing candle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DAY = 86_400 * 10**9
DUST = 1e-9  # an order worth at most this share of equity is rounding dust, not a position
SLICES_REASONS = ("window_end", "stop_loss", "take_profit", "trailing_stop")


def missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


@dataclass
class Pick:
    pick: int            # index of the pick (its order: decision, then rank)
    col: int
    weight: float        # sizing fraction (NaN = no size); ignored with risk sizing
    stop_frac: float | None = None
    stop_dist: float | None = None
    target_frac: float | None = None
    target_dist: float | None = None
    trail_frac: float | None = None
    trail_dist: float | None = None


@dataclass
class Config:
    cash: float = 10_000.0
    fee: float = 0.001
    slip: float = 0.0
    window: int = 48
    hold: str = "window"
    rebalance: bool = False
    max_position: float = 1.0          # fraction
    lot: float | None = None
    risk: float | None = None          # fraction of equity at risk (RiskPerTrade)
    min_order: float = 0.0
    cooldown_ns: int | None = None
    max_entries: int | None = None
    daily_loss: float | None = None    # fraction
    liquidate_daily: bool = False
    max_dd: float | None = None        # fraction
    halt_ns: int | None = None         # None = for good
    liquidate_dd: bool = False
    max_exposure: float | None = None  # fraction per asset
    max_gross: float | None = None     # fraction
    max_corr: float | None = None
    corr_lookback: int = 288
    max_delay: int | None = None
    end_due: int | None = None         # row where positions left after the last decision exit
    stop_fill: str = "level"           # "level", "low" or "range"
    stop_fill_frac: float = 0.0


@dataclass
class Position:
    pick: Pick
    qty: float
    price: float
    value: float
    fees: float
    weight: float
    entry_row: int
    due: int
    due_reason: str = "window_end"
    stop: float | None = None
    target: float | None = None
    high: float = 0.0
    low: float = 0.0
    mark: float = 0.0
    gaps: int = 0
    last_present: int = 0
    repicks: int = 0
    pending: tuple | None = None       # intra-candle exit found at the open


@dataclass
class Account:
    cash: float
    positions: dict = field(default_factory=dict)   # col -> Position
    trades: list = field(default_factory=list)
    blocked: list = field(default_factory=list)
    marks: list = field(default_factory=list)
    last_exit: dict = field(default_factory=dict)
    equity_at_t: float = 0.0
    peak: float = 0.0
    day: int = 0
    day_open: float = 0.0
    day_halted: bool = False
    entries_today: int = 0
    halted_forever: bool = False
    halt_until: int | None = None


class Reference:
    def __init__(self, prices, index0, step, decisions, cfg: Config):
        self.o, self.h, self.l, self.c = (prices[k] for k in ("open", "high", "low", "close"))
        self.n = len(self.o)
        self.index0, self.step = index0, step
        self.decisions = decisions      # list of (decision_row, [Pick, ...] best first)
        self.cfg = cfg

    # ---------------------------------------------------------------- helpers
    def time(self, row):
        return self.index0 + row * self.step

    def stop_now(self, pos):
        """(level, name) of the stop in force for the next candle, or (None, None)."""
        best = None
        if pos.stop is not None:
            best = (pos.stop, "stop_loss")
        pk = pos.pick
        if pk.trail_frac is not None or pk.trail_dist is not None:
            trail = pos.high
            if pk.trail_frac is not None:
                trail = trail * (1 - pk.trail_frac)
            if pk.trail_dist is not None:
                trail = trail - pk.trail_dist
            if best is None or trail > best[0]:
                best = (trail, "trailing_stop")
        return best if best is not None else (None, None)

    def ret(self, entry, raw):
        f, s = self.cfg.fee, self.cfg.slip
        return (raw * (1 - s) * (1 - f) / (entry * (1 + f)) - 1) * 100

    def close_out(self, acc, pos, qty, exit_row, exit_time, raw, reason, low_seen,
                  last_close=False, delayed=0, capped=False, ambiguous=False, worst=None):
        f, s = self.cfg.fee, self.cfg.slip
        part = qty / pos.qty
        out_price = raw * (1 - s)
        cash_in = qty * out_price * (1 - f)
        entry_cost = (pos.value + pos.fees) * part
        dd = max(0.0, (1 - min(pos.low, low_seen, raw) / pos.price) * 100)
        best = self.ret(pos.price, pos.target) if ambiguous else self.ret(pos.price, raw)
        acc.trades.append({
            "pick": pos.pick.pick, "col": pos.pick.col, "entry_row": pos.entry_row,
            "exit_row": exit_row, "exit_time": exit_time, "entry_price": pos.price,
            "exit_price": out_price, "quantity": qty, "entry_value": pos.value * part,
            "fees": pos.fees * part + qty * out_price * f, "pnl": cash_in - entry_cost,
            "weight": pos.weight * part, "return_pct": self.ret(pos.price, raw),
            "best_return_pct": best, "max_drawdown": dd, "exit_reason": reason,
            "worst_case_return_pct": self.ret(pos.price, raw if worst is None else worst),
            "ambiguous": ambiguous, "gaps_in_window": pos.gaps,
            "exit_at_last_close": last_close, "exit_delayed_by": delayed,
            "exit_delay_capped": capped, "repicks": pos.repicks})
        acc.cash += cash_in
        if qty == pos.qty:
            del acc.positions[pos.pick.col]
            acc.last_exit[pos.pick.col] = exit_time

    def exposure(self, acc):
        return sum(p.qty * p.mark for p in acc.positions.values())

    def corr(self, a, b, end_row):
        xs, ys = [], []
        for m in range(max(end_row - self.cfg.corr_lookback + 1, 1), end_row + 1):
            vals = (self.c[m][a], self.c[m - 1][a], self.c[m][b], self.c[m - 1][b])
            if any(missing(v) for v in vals):
                continue
            xs.append(vals[0] / vals[1] - 1)
            ys.append(vals[2] / vals[3] - 1)
        if len(xs) < 2:
            return None
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
        sxx = sum((x - mx) ** 2 for x in xs)
        syy = sum((y - my) ** 2 for y in ys)
        if sxx <= 0 or syy <= 0:
            return None
        return sxy / math.sqrt(sxx * syy)

    # ---------------------------------------------------------------- stages
    def resolve_due(self, acc, pos, k):
        """Exit of a due position at row ``k`` if its price came (or the wait is over)."""
        cfg = self.cfg
        over = cfg.max_delay is not None and k >= pos.due + cfg.max_delay + 1
        col = pos.pick.col
        if over or k >= self.n:
            lp = pos.last_present
            raw = self.c[lp][col]
            # flagged 'capped' when prices came back later (else the data simply ended)
            capped = over and any(not missing(self.o[m][col])
                                  for m in range(pos.due + cfg.max_delay + 1, self.n))
            self.close_out(acc, pos, pos.qty, lp, self.time(lp + 1), raw, pos.due_reason, raw,
                           last_close=True, capped=capped)
            return
        o = self.o[k][col]
        if missing(o):
            return
        level, name = self.stop_now(pos)
        reason = pos.due_reason
        if level is not None and o <= level:
            reason = name
        elif pos.target is not None and o >= pos.target:
            reason = "take_profit"
        self.close_out(acc, pos, pos.qty, k, self.time(k), o, reason, o, delayed=k - pos.due)

    def candle_exit(self, pos, k):
        """(reason, raw, at_open, ambiguous, worst) of candle ``k`` for ``pos``, or None."""
        col = pos.pick.col
        o, hi, lo = self.o[k][col], self.h[k][col], self.l[k][col]
        level, name = self.stop_now(pos)
        if level is not None and o <= level:
            return (name, o, True, False, o)
        if pos.target is not None and o >= pos.target:
            return ("take_profit", o, True, False, o)
        if level is not None and lo <= level:
            fill = {"level": level, "low": lo,
                    "range": max(lo, level - self.cfg.stop_fill_frac * (hi - lo))}[
                self.cfg.stop_fill]
            return (name, fill, False, pos.target is not None and hi >= pos.target, lo)
        if pos.target is not None and hi >= pos.target:
            return ("take_profit", pos.target, False, False, pos.target)
        return None

    def open_stage(self, acc, k):
        for pos in list(acc.positions.values()):
            pos.pending = None
            if pos.due <= k:
                self.resolve_due(acc, pos, k)
                continue
            if missing(self.o[k][pos.pick.col]):
                pos.gaps += 1
                continue
            hit = self.candle_exit(pos, k)
            if hit is not None and hit[2]:
                self.close_out(acc, pos, pos.qty, k, self.time(k), hit[1], hit[0], hit[1],
                               worst=hit[4])
            else:
                pos.pending = hit

    def size(self, equity, pk, fill):
        cfg = self.cfg
        if cfg.risk is not None:
            stop = None
            if pk.stop_frac is not None or pk.stop_dist is not None:
                stop = fill * (1 - (pk.stop_frac or 0.0)) - (pk.stop_dist or 0.0)
            if pk.trail_frac is not None or pk.trail_dist is not None:
                trail = fill * (1 - (pk.trail_frac or 0.0)) - (pk.trail_dist or 0.0)
                if stop is None or trail > stop:
                    stop = trail
            if stop is None or not stop < fill:
                return None
            w = cfg.risk * fill / (fill - stop)
        else:
            w = pk.weight
        if missing(w) or w <= 0:
            return None
        return equity * min(w, cfg.max_position)

    def to_qty(self, value, fill):
        if self.cfg.lot is None:
            return value / fill, value
        q = math.floor(value / fill / self.cfg.lot) * self.cfg.lot
        return q, q * fill

    def pay(self, acc, value):
        cost = min(value * (1 + self.cfg.fee), acc.cash)
        acc.cash -= cost
        return cost - value

    def rule_block(self, acc, pk, k, t):
        cfg = self.cfg
        if acc.halted_forever or (acc.halt_until is not None and t < acc.halt_until):
            return "max_drawdown_pct"
        if acc.day_halted:
            return "daily_loss_limit_pct"
        if cfg.cooldown_ns is not None and pk.col in acc.last_exit \
                and t < acc.last_exit[pk.col] + cfg.cooldown_ns:
            return "cooldown"
        if cfg.max_entries is not None and acc.entries_today >= cfg.max_entries:
            return "max_entries_per_day"
        if cfg.max_corr is not None:
            for other in acc.positions:
                if other != pk.col:
                    r = self.corr(pk.col, other, k - 1)
                    if r is not None and r > cfg.max_corr:
                        return "max_correlation"
        return None

    def enter(self, acc, pk, k, t, equity):
        cfg = self.cfg
        o = self.o[k][pk.col]
        if missing(o):
            return "no_entry_candle"
        why = self.rule_block(acc, pk, k, t)
        if why:
            return why
        fill = o * (1 + cfg.slip)
        value = self.size(equity, pk, fill)
        if value is None:
            return "sizing"
        why = "min_order_value"
        tol = DUST * equity  # a cap binds when it cuts more than float rounding

        def cut(value, why, cap, name):
            return (cap, name if value - cap > tol else why) if value > cap else (value, why)

        if cfg.max_exposure is not None:
            value, why = cut(value, why, cfg.max_exposure * equity, "max_exposure_pct")
        if cfg.max_gross is not None:
            value, why = cut(value, why, cfg.max_gross * equity - self.exposure(acc),
                             "max_gross_exposure_pct")
        if value * (1 + cfg.fee) > acc.cash:
            value, why = cut(value, why, acc.cash / (1 + cfg.fee), "cash")
        if value <= 0:
            return why
        qty, value = self.to_qty(value, fill)
        if qty <= 0 or value < cfg.min_order or value <= DUST * equity:
            return why
        fee_paid = self.pay(acc, value)
        stop = target = None
        if pk.stop_frac is not None or pk.stop_dist is not None:
            stop = fill * (1 - (pk.stop_frac or 0.0)) - (pk.stop_dist or 0.0)
        if pk.target_frac is not None or pk.target_dist is not None:
            target = fill * (1 + (pk.target_frac or 0.0)) + (pk.target_dist or 0.0)
        due = self.end_due if cfg.hold == "until_dropped" else k + cfg.window
        acc.positions[pk.col] = Position(
            pick=pk, qty=qty, price=fill, value=value, fees=fee_paid,
            weight=value / equity, entry_row=k, due=due, stop=stop, target=target,
            high=fill, low=fill, mark=fill, last_present=k)
        acc.entries_today += 1
        return None

    def rebalance(self, acc, pos, pk, k, equity, halted):
        cfg = self.cfg
        o = self.o[k][pk.col]
        if missing(o):
            return
        fill = o * (1 + cfg.slip)
        target = self.size(equity, pk, fill)
        if target is None:
            return
        if cfg.max_exposure is not None:
            target = min(target, cfg.max_exposure * equity)
        delta = target - pos.qty * o
        if delta > 0 and not halted:
            room = delta
            if cfg.max_gross is not None:
                room = min(room, cfg.max_gross * equity - self.exposure(acc))
            room = min(room, acc.cash / (1 + cfg.fee)) if room * (1 + cfg.fee) > acc.cash else room
            if room <= 0:
                return
            qty, value = self.to_qty(room, fill)
            if qty > 0 and value >= cfg.min_order and value > DUST * equity:
                fee_paid = self.pay(acc, value)
                pos.qty += qty
                pos.value += value
                pos.fees += fee_paid
                pos.price = pos.value / pos.qty
                pos.weight += value / equity
        elif delta < 0:
            qty = -delta / o
            if cfg.lot is not None:
                qty = math.floor(qty / cfg.lot) * cfg.lot
            qty = min(qty, pos.qty)
            if 0 < qty < pos.qty and qty * o >= cfg.min_order and qty * o > DUST * equity:
                part = qty / pos.qty
                self.close_out(acc, pos, qty, k, self.time(k), o, "rebalance", o)
                pos.qty -= qty
                pos.value *= 1 - part
                pos.fees *= 1 - part
                pos.weight *= 1 - part

    def decide(self, acc, k, picks):
        t = self.time(k)
        equity = acc.equity_at_t
        halted = acc.halted_forever or (acc.halt_until is not None and t < acc.halt_until) \
            or acc.day_halted
        for pk in picks:
            pos = acc.positions.get(pk.col)
            if pos is not None and pos.due > k:
                pos.repicks += 1
                if self.cfg.hold == "window":
                    pos.due = k + self.cfg.window
                if self.cfg.rebalance:
                    self.rebalance(acc, pos, pk, k, equity, halted)
                continue
            why = self.enter(acc, pk, k, t, equity)
            if why:
                acc.blocked.append((pk.pick, why))

    def candle_stage(self, acc, k):
        for pos in list(acc.positions.values()):
            col = pos.pick.col
            if pos.due <= k or missing(self.o[k][col]):
                continue
            hit = self.candle_exit(pos, k) if pos.entry_row == k else pos.pending
            lo = self.l[k][col]
            if hit is not None:
                reason, raw, at_open, amb, worst = hit
                exposed = lo if (reason == "take_profit" and not at_open) else raw
                self.close_out(acc, pos, pos.qty, k, self.time(k if at_open else k + 1), raw,
                               reason, exposed, ambiguous=amb, worst=worst)
                continue
            pos.last_present = k
            pos.low = min(pos.low, lo)
            pos.high = max(pos.high, self.h[k][col])
            pos.mark = self.c[k][col]

    def mark(self, acc, k):
        cfg = self.cfg
        expo = self.exposure(acc)
        equity = acc.cash + expo
        acc.marks.append((equity, acc.cash, expo, len(acc.positions)))
        acc.equity_at_t = equity
        tau = self.time(k + 1)
        if tau // DAY != acc.day:
            acc.day, acc.day_open = tau // DAY, equity
            acc.day_halted, acc.entries_today = False, 0
        if cfg.daily_loss is not None and not acc.day_halted \
                and equity <= acc.day_open * (1 - cfg.daily_loss):
            acc.day_halted = True
            if cfg.liquidate_daily:
                self.liquidate(acc, k + 1, "daily_loss_limit_pct")
        acc.peak = max(acc.peak, equity)
        if cfg.max_dd is not None and not acc.halted_forever \
                and equity <= acc.peak * (1 - cfg.max_dd):
            if cfg.halt_ns is None:
                acc.halted_forever = True
            else:
                acc.halt_until = tau + cfg.halt_ns
            acc.peak = equity
            if cfg.liquidate_dd:
                self.liquidate(acc, k + 1, "max_drawdown_pct")

    @staticmethod
    def liquidate(acc, row, reason):
        for pos in acc.positions.values():
            if pos.due > row:
                pos.due, pos.due_reason = row, reason

    # ---------------------------------------------------------------- run
    def run(self):
        cfg = self.cfg
        acc = Account(cash=cfg.cash)
        if not self.decisions:
            return acc
        by_entry = {row + 1: picks for row, picks in self.decisions}
        first = self.decisions[0][0]
        self.end_due = self.decisions[-1][0] + 1 + cfg.window if cfg.end_due is None \
            else cfg.end_due
        last_row = min(self.end_due, self.n - 1)
        acc.marks.append((cfg.cash, cfg.cash, 0.0, 0))
        acc.equity_at_t = acc.peak = acc.day_open = cfg.cash
        acc.day = self.time(first + 1) // DAY
        last_entry = self.decisions[-1][0] + 1
        for k in range(first + 1, self.n):
            picks = by_entry.get(k)
            if picks is not None and cfg.hold == "until_dropped":
                chosen = {pk.col for pk in picks}
                for col, pos in acc.positions.items():
                    if pos.due > k and col not in chosen:
                        pos.due, pos.due_reason = k, "dropped"
            self.open_stage(acc, k)
            if picks is not None:
                self.decide(acc, k, picks)
            self.candle_stage(acc, k)
            self.mark(acc, k)
            if k >= last_entry and not acc.positions and k >= last_row:
                break
        if acc.positions:
            for pos in list(acc.positions.values()):
                self.resolve_due(acc, pos, self.n)
            acc.marks[-1] = (acc.cash, acc.cash, 0.0, 0)
        return acc


def run_reference(prices, index0, step, decision_rows, picks, cfg: Config):
    """Run the reference. ``picks``: rows of ``(decision_row, col, weight, exits)`` in pick
    order, ``exits`` a dict of the ``Pick`` level fields (fractions / price distances)."""
    grouped: dict = {}
    for p, (row, col, weight, exits) in enumerate(picks):
        grouped.setdefault(row, []).append(Pick(pick=p, col=col, weight=weight, **exits))
    decisions = [(row, grouped.get(row, [])) for row in decision_rows]
    return Reference(prices, index0, step, decisions, cfg).run()
