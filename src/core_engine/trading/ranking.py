"""RankingTrader: any ranking strategy (scores → gates → allocation → exits) as a Trader.

The same strategy object runs in the vectorised engine, in :func:`replay` and live. At each
decision time ``t`` (the multiples of ``shift`` since the epoch, after the warm-up, with
``t + window`` inside the data) the trader reads the strategy's scores, the gates'
eligibility and the allocator's picks on the row that closes at ``t`` — through
:func:`core_engine.backtest.compute_inputs` and :func:`core_engine.backtest.allocate_at`,
the engine's own functions, so nothing is re-derived — and turns the current positions into
the targets with the portfolio-mode rules (issue 10):

1. **Exits first.** A position whose window ends at ``t`` (``hold="window"``) is sold at the
   open unless its symbol is picked again, in which case it is kept and its exit moves to
   ``t + window`` (no trade). With ``hold="until_dropped"`` a position is held while its
   symbol stays among the picks and sold at the first decision time where it does not.
2. **Entries**, best rank first: a pick not held is sized from the equity marked at ``t``
   (cash after the exits plus holdings at their last close): ``equity × weight`` of the
   allocator (the slot rule: ``1/n`` each for ``TopNEqual(n)``), shrunk to the cash left,
   and bought at the open of the candle starting at ``t`` with a quote-amount market order
   (``ioc``: when the symbol's candle is missing the pick is not traded). Every pick that
   does not become a position is a row of ``result.blocked`` (reason ``cash`` or
   ``no_entry_candle``).
3. **Exits as resting orders.** When an entry fills, a stop (fixed and/or trailing, levels
   from the fill price, ATR distances from the decision row) and a take-profit limit are
   placed in one OCO group with the position's time exit, so the SimBroker matches them
   with the backtest's own candle rule.

Notes (``ctx.note``) record each decision's picks and the equity it was sized from.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from core_engine.backtest._kernels import level_above, level_below
from core_engine.backtest.engine import allocate_at, compute_inputs, warm_up
from core_engine.data.panel import Panel
from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError
from core_engine.risk.allocation import Allocator, TopNEqual
from core_engine.risk.exits import ExitRules
from core_engine.risk.gates import Gate
from core_engine.trading.orders import Fill, OrderSide
from core_engine.trading.trader import Context, Trader

__all__ = ["HOLD_MODES", "RankingTrader"]

_DAY_NS = 86_400 * 10**9
_NEVER = np.iinfo(np.int64).max // 4
#: An entry worth less than this share of equity is cash dust left by float rounding.
_DUST = 1e-9

HOLD_MODES = ("window", "until_dropped")


class RankingTrader(Trader):
    """Run a ranking strategy as a trader (see the module docstring for the rules).

    Parameters
    ----------
    strategy : Strategy or str
        A strategy instance or a registry name.
    gates : sequence of Gate
    allocator : Allocator, optional
        Default ``TopNEqual(n=max_positions)``.
    exits : ExitRules, optional
        Stop-loss, take-profit, trailing stop (percent or ATR multiples).
    sizing : None
        Equity × the allocator's weight (the portfolio mode's default sizing).
    rules : None
        Reserved for the portfolio rules (``PortfolioRules``).
    window, shift : str
        Holding window and decision cadence, multiples of the data's timeframe.
    hold : {"window", "until_dropped"}
    max_positions : int
        Slots of the default allocator.
    """

    name = "ranking"

    def __init__(self, strategy: Any = "macd_rsi_confluence", gates: Any = (),
                 allocator: Allocator | None = None, exits: ExitRules | None = None,
                 sizing: Any = None, rules: Any = None, window: str = "4h", shift: str = "2h",
                 hold: str = "window", max_positions: int = 3) -> None:
        self.strategy = strategy
        self.gates = gates
        self.allocator = allocator
        self.exits = exits
        self.sizing = sizing
        self.rules = rules
        self.window = window
        self.shift = shift
        self.hold = hold
        self.max_positions = max_positions

    def _validate_params(self) -> None:
        from core_engine.backtest.engine import _resolve_strategy

        self._strategy = _resolve_strategy(self.strategy)
        gates = (self.gates,) if isinstance(self.gates, Gate) else tuple(self.gates or ())
        for gate in gates:
            if not isinstance(gate, Gate):
                raise ConfigError(f"The 'gates' parameter of RankingTrader must hold Gate "
                                  f"objects. Got {gate!r}.")
        self._gates = gates
        if isinstance(self.max_positions, bool) or not isinstance(self.max_positions, int) \
                or self.max_positions < 1:
            raise ConfigError("The 'max_positions' parameter of RankingTrader must be an "
                              f"integer >= 1. Got {self.max_positions!r}.")
        if self.allocator is not None and not isinstance(self.allocator, Allocator):
            raise ConfigError("The 'allocator' parameter of RankingTrader must be an Allocator "
                              f"such as TopNEqual(n=3) or None. Got {self.allocator!r}.")
        self._allocator = self.allocator or TopNEqual(n=self.max_positions)
        if self.exits is not None and not isinstance(self.exits, ExitRules):
            raise ConfigError("The 'exits' parameter of RankingTrader must be ExitRules(...) "
                              f"or None. Got {self.exits!r}.")
        if self.sizing is not None and (not hasattr(self.sizing, "weights")
                                        or getattr(self.sizing, "kind", "weight") != "weight"
                                        or tuple(self.sizing.needs())):
            raise ConfigError("The 'sizing' parameter of RankingTrader must be a sizing object "
                              "whose fraction is known at t (EqualSlots, FixedFraction) or None. "
                              f"Got {self.sizing!r}.")
        if self.rules is not None:
            unsupported = [n for n in ("daily_loss_limit_pct", "max_drawdown_pct",
                                       "max_correlation") if getattr(self.rules, n, None) is not None]
            if unsupported or not hasattr(self.rules, "min_order_value"):
                raise ConfigError("The 'rules' parameter of RankingTrader must be "
                                  "PortfolioRules(...) without "
                                  f"{unsupported or ['...']} (not supported by the event "
                                  f"trader yet). Got {self.rules!r}.")
        self._window_ns = timeframe_ns(self.window, name="window")
        self._shift_ns = timeframe_ns(self.shift, name="shift")
        if self.hold not in HOLD_MODES:
            raise ConfigError(f"The 'hold' parameter of RankingTrader must be one of "
                              f"{list(HOLD_MODES)}. Got {self.hold!r}.")
        self._lookback = warm_up(self._strategy, self._gates, self._allocator, self.exits)

    @property
    def every(self) -> str:
        """Decisions at the multiples of ``shift``."""
        return self.shift

    # ------------------------------------------------------------------ inputs
    def _inputs(self, panel: Panel) -> dict:
        """The engine's inputs and the allocator's picks on every row that closes on the
        shift grid (each row's picks read that row only: a causal computation)."""
        inputs = compute_inputs(panel, self._strategy, gates=self._gates,
                                allocator=self._allocator, exits=self.exits)
        closes = panel.index.asi8 + panel.step_ns
        rows = np.flatnonzero((closes % self._shift_ns == 0)
                              & (np.arange(panel.n_times) >= self._lookback))
        picks = allocate_at(inputs, rows, self._allocator, panel.symbols)
        bounds = np.searchsorted(picks.rows, rows, "left"), np.searchsorted(picks.rows, rows,
                                                                             "right")
        inputs["picks"] = picks
        inputs["pick_slices"] = {int(r): (int(a), int(b))
                                 for r, a, b in zip(rows, bounds[0], bounds[1], strict=True)}
        return inputs

    def _picks(self, ctx: Context) -> tuple[list[dict], dict | None, int]:
        t = ctx.now
        inputs, row = ctx.causal("ranking-inputs", self._inputs)
        if t.value % self._shift_ns or row < self._lookback:
            return [], inputs, row
        if ctx.end is not None and t.value + self._window_ns > ctx.end.value:
            return [], inputs, row
        lo, hi = inputs["pick_slices"].get(row, (0, 0))
        picks = inputs["picks"]
        out: list[dict[str, Any]] = [
            {"symbol": ctx.symbols[int(picks.cols[p])], "col": int(picks.cols[p]),
             "rank": int(picks.ranks[p]), "score": float(picks.scores[p]),
             "weight": float(picks.weights[p])} for p in range(lo, hi)]
        out.sort(key=lambda p: int(p["rank"]))
        return out, inputs, row

    # ------------------------------------------------------------------ hooks
    def _decision(self, ctx: Context, row: int) -> bool:
        t = ctx.now.value
        return (t % self._shift_ns == 0 and row >= self._lookback
                and (ctx.end is None or t + self._window_ns <= ctx.end.value))

    def on_bar(self, ctx: Context) -> None:
        t = ctx.now.value
        picks, inputs, row = self._picks(ctx)
        decision = self._decision(ctx, row)
        equity = ctx.mark_equity  # marked at t, before this open's trades (the sizing base)
        picked = {p["symbol"] for p in picks}
        positions = self.state.setdefault("positions", {})
        for symbol, pos in list(positions.items()):
            if pos.get("exit_sent"):
                continue
            if self.hold == "until_dropped" and decision and symbol not in picked:
                self._exit(ctx, symbol, pos, "dropped")
            elif pos["due"] <= t:
                self._exit(ctx, symbol, pos, "window_end")
        if not decision:
            return
        ctx.note("decision", equity=equity, cash=ctx.cash,
                 picks=[(p["symbol"], p["rank"], p["score"]) for p in picks])
        weights = self._weights(picks)
        entered: list[str] = []
        for pick, weight in zip(picks, weights, strict=True):
            pos = positions.get(pick["symbol"])
            if pos is not None and not pos.get("exit_sent"):
                if self.hold == "window":  # a re-pick: keep it, its exit moves
                    pos["due"] = t + self._window_ns
                    ctx.wake_at(pd.Timestamp(pos["due"], tz="UTC"))
                continue
            if self._enter(ctx, pick, weight, equity, inputs, row, entered):
                entered.append(pick["symbol"])

    def _run_end_due(self, ctx: Context) -> int:
        """``hold="until_dropped"``: positions still held after the last decision time of a
        replay leave one window after it (never, live)."""
        if ctx.end is None:
            return _NEVER
        last = (ctx.end.value - self._window_ns) // self._shift_ns * self._shift_ns
        return last + self._window_ns

    def _weights(self, picks: list[dict]) -> np.ndarray:
        sizing = self.sizing
        if sizing is None:
            return np.full(len(picks), 1.0 / self.max_positions)
        w = np.asarray(sizing.weights(len(picks), self.max_positions), dtype=np.float64)
        return np.minimum(w, float(sizing.max_position_pct) / 100.0)

    def _exit(self, ctx: Context, symbol: str, pos: dict, reason: str) -> None:
        qty = ctx.position(symbol)
        if qty <= 0:
            self.state["positions"].pop(symbol, None)
            return
        pos["exit_sent"] = True
        ctx.sell(symbol, qty, leg="exit", group=pos["group"], tag=reason)
        if ctx.position(symbol) <= 0:  # filled at this open
            self.state["positions"].pop(symbol, None)
            self.state.setdefault("last_exit", {})[symbol] = ctx.now.value

    def _rule_block(self, ctx: Context, symbol: str, entered: list[str]) -> str | None:
        rules = self.rules
        if rules is None:
            return None
        t = ctx.now.value
        cooldown = rules.duration_ns("cooldown") if rules.cooldown is not None else -1
        last_exit = self.state.get("last_exit", {}).get(symbol)
        if cooldown >= 0 and last_exit is not None and t < last_exit + cooldown:
            return "cooldown"
        if rules.max_entries_per_day is not None:
            day = t // _DAY_NS
            count = self.state.get("entries_per_day", {}).get(str(day), 0)
            if count >= rules.max_entries_per_day:
                return "max_entries_per_day"
        return None

    def _enter(self, ctx: Context, pick: dict, weight: float, equity: float, inputs: Any,
               row: int, entered: list[str]) -> bool:
        symbol = pick["symbol"]

        def block(reason: str) -> bool:
            ctx.block(symbol, reason, rank=pick["rank"], score=pick["score"])
            return False

        if not ctx.tradable(symbol):
            return block("no_entry_candle")
        reason = self._rule_block(ctx, symbol, entered)
        if reason is not None:
            return block(reason)
        if not weight > 0:
            return block("sizing")
        value, bound = equity * weight, None
        rules = self.rules
        if rules is not None and rules.max_exposure_pct is not None:
            cap = equity * rules.max_exposure_pct / 100.0
            if cap < value:
                value, bound = cap, "max_exposure_pct"
        if rules is not None and rules.max_gross_exposure_pct is not None:
            prices = ctx.view.last_prices()
            held = sum(ctx.position(s) * float(prices[j]) for j, s in enumerate(ctx.symbols)
                       if s not in entered and ctx.position(s) > 0)
            held += sum(self.state.get("entry_values", {}).get(s, 0.0) for s in entered)
            room = max(equity * rules.max_gross_exposure_pct / 100.0 - held, 0.0)
            if room < value:
                value, bound = room, "max_gross_exposure_pct"
        cash_cap = ctx.cash / (1.0 + ctx.taker_fee)
        if cash_cap < value:
            value, bound = cash_cap, "cash"
        min_value = 0.0 if rules is None else float(rules.min_order_value)
        lot = None if self.sizing is None else self.sizing.lot_step
        if not value > _DUST * equity or value < min_value:
            return block(bound or "min_order_value")
        atr = math.nan
        if inputs is not None and inputs.get("atr") is not None:
            atr = float(inputs["atr"][row, pick["col"]])
        meta = {"decision_time": ctx.now.isoformat(), "rank": pick["rank"],
                "score": pick["score"], "equity": equity, "atr": atr}
        order = ctx.buy(symbol, value=value, leg="entry", tag="entry", time_in_force="ioc",
                        lot_step=lot, min_value=min_value if min_value > 0 else None, meta=meta)
        if order.filled_quantity > 0:
            self.state.setdefault("entry_values", {})[symbol] = order.filled_quantity * \
                order.average_price
            day = str(ctx.now.value // _DAY_NS)
            per_day = self.state.setdefault("entries_per_day", {})
            per_day[day] = per_day.get(day, 0) + 1
            return True
        if order.reason in ("lot_step", "min_order_value"):
            return block(bound or "min_order_value")
        if order.reason == "no_candle":
            return block("no_entry_candle")
        return block("cash")

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        order = ctx.broker.fetch_order(fill.client_id)
        positions = self.state.setdefault("positions", {})
        if fill.side is OrderSide.SELL:
            if ctx.position(fill.symbol) <= 0:
                positions.pop(fill.symbol, None)
                self.state.setdefault("last_exit", {})[fill.symbol] = fill.time.value
            return
        if order.tag != "entry" or order.is_open:
            return
        entry = float(order.average_price)
        order.meta["weight"] = order.filled_quantity * entry / order.meta["equity"]
        due = ctx.now.value + self._window_ns
        if self.hold == "until_dropped":
            due = self._run_end_due(ctx)
        pos = {"group": order.client_id, "due": due, "entry_price": entry}
        positions[fill.symbol] = pos
        if due < _NEVER:
            ctx.wake_at(pd.Timestamp(due, tz="UTC"))
        self._protect(ctx, fill.symbol, order.meta.get("atr", math.nan), entry, pos)

    def _protect(self, ctx: Context, symbol: str, atr: float, entry: float, pos: dict) -> None:
        exits = self.exits
        if exits is None or not exits.active:
            return
        qty = ctx.position(symbol)
        nan = math.nan

        def dist(mult):
            return nan if mult is None else float(mult) * atr

        def frac(pct):
            return nan if pct is None else float(pct) / 100.0

        stop = float(level_below(entry, frac(exits.stop_loss_pct), dist(exits.stop_loss_atr)))
        target = float(level_above(entry, frac(exits.take_profit_pct),
                                   dist(exits.take_profit_atr)))
        trailing = exits.trailing_pct is not None or exits.trailing_atr is not None
        if math.isfinite(stop) and stop <= 0:
            stop = nan
        if math.isfinite(stop) or trailing:
            trail_offset = dist(exits.trailing_atr)
            ctx.sell(symbol, qty, type="stop", price=stop if math.isfinite(stop) else None,
                     trail_pct=exits.trailing_pct,
                     trail_offset=trail_offset if math.isfinite(trail_offset) else None,
                     trail_reference=entry if trailing else None, group=pos["group"],
                     leg="stop", tag="stop")
        if math.isfinite(target):
            ctx.sell(symbol, qty, type="limit", price=target, group=pos["group"], leg="target",
                     tag="take_profit")
