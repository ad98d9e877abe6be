"""RankingTrader: any ranking strategy (scores → gates → allocation → exits) as a Trader.

The same strategy object runs in the vectorised engine, in :func:`replay` and live, and the
trader decides as ``walk_forward(mode="portfolio")`` does (issue 10): the rules are stated
once, in :mod:`core_engine.backtest.portfolio`, and *computed* once, by the kernels of
:mod:`core_engine.risk._kernels` that the backtest's account kernel calls too
(``rules_on_mark``, ``entry_block``, ``entry_size``, ``rebalance_size``; the entry stop of
``RiskPerTrade`` by :func:`~core_engine.backtest._portfolio_kernels.entry_stop`). What the
trader adds is the event plumbing:

* **Inputs.** The strategy's scores, the gates' eligibility, the allocator's picks, each
  pick's sizing fraction (:func:`~core_engine.backtest.portfolio.sizing_weights`) and exit
  distances (:func:`~core_engine.backtest.resolve_exit_distances`) come from one causal
  computation through ``ctx.causal`` (the engine's own functions; row ``i`` reads rows
  ``<= i``).
* **Marks.** At every call the account is marked at each candle close since the last call
  (its holdings did not change in between: every change is a fill, and a fill calls the
  trader) and each mark runs through the daily-loss and drawdown rules
  (:func:`~core_engine.risk._kernels.mark_account`). The equity of the last close is what
  entries are sized from. With a liquidating rule the trader wakes at every candle while it
  holds something, so a trip at a close empties the account at the next open.
* **Decisions** at the evaluated decision times: a multiple of ``shift`` after the warm-up,
  with ``t + window`` inside the run and the market open at ``t`` (some symbol has a candle
  starting at ``t``). Due positions leave first (``window_end``, ``dropped``, a
  liquidation), then the picks, best rank first: a held symbol is re-picked (its exit moves
  with ``hold="window"``; ``rebalance=True`` trades the difference to its new target), a new
  one passes the rules and the sizing or is a row of ``result.blocked``.
* **Orders.** An entry is a market buy of the kernel's quantity at the open of the candle
  starting at ``t`` (its price is known then: ``broker.market_price``); its stop (fixed
  and/or trailing) and take-profit rest in one OCO group with its time exit, so the
  SimBroker matches them with the backtest's candle rule. Time exits are market sells; with
  ``max_exit_delay`` a sell still waiting for a price after that many candles fills at the
  last close before the gap (``SimBroker.cap_wait``, as the backtest; simulation only).
  A broker without ``market_price`` (live, where the entry price is not known before the
  fill) gets the kernel's value as a quote-amount order sized from the last close.

The stop fill model belongs to the broker: ``exits.stop_fill`` must equal the SimBroker's
``stop_fill`` (checked when the run starts).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from core_engine._validate import check_items
from core_engine.backtest._kernels import STOP_FILL_NAMES, level_above, level_below
from core_engine.backtest._portfolio_kernels import entry_stop
from core_engine.backtest.engine import _exit_delay, allocate_at, compute_inputs, warm_up
from core_engine.backtest.portfolio import pick_sizing_values, sizing_weights
from core_engine.backtest.simulate import resolve_exit_distances
from core_engine.data.panel import Panel
from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError
from core_engine.risk import _kernels as rk
from core_engine.risk.allocation import Allocator, TopNEqual
from core_engine.risk.exits import ExitRules
from core_engine.risk.gates import Gate
from core_engine.risk.rules import PortfolioRules, rule_params
from core_engine.risk.sizing import EqualSlots, Sizing
from core_engine.trading.orders import Fill, OrderSide
from core_engine.trading.trader import Context, Trader

__all__ = ["HOLD_MODES", "RankingTrader"]

_NEVER = rk.NEVER
HOLD_MODES = ("window", "until_dropped")
_DIST = ("stop_frac", "stop_dist", "target_frac", "target_dist", "trail_frac", "trail_dist")


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
    sizing : Sizing, optional
        As ``walk_forward``'s (default ``EqualSlots()``: ``1 / max_positions`` of equity).
    rules : PortfolioRules, optional
        Every portfolio rule of ``walk_forward``.
    window, shift : str
        Holding window and decision cadence, multiples of the data's timeframe.
    hold : {"window", "until_dropped"}
    rebalance : bool
        A re-picked position trades the difference to its new target.
    max_positions : int
        Slots of the default allocator and of the default sizing.
    max_exit_delay : int or str, optional
        Candles (or a duration) a time exit may wait for a price in an outage before it
        leaves at the last close before the gap (replay only; as ``walk_forward``).
    """

    name = "ranking"

    def __init__(self, strategy: Any = "macd_rsi_confluence", gates: Any = (),
                 allocator: Allocator | None = None, exits: ExitRules | None = None,
                 sizing: Sizing | None = None, rules: PortfolioRules | None = None,
                 window: str = "4h", shift: str = "2h", hold: str = "window",
                 rebalance: bool = False, max_positions: int = 3,
                 max_exit_delay: Any = None) -> None:
        self.strategy = strategy
        self.gates = gates
        self.allocator = allocator
        self.exits = exits
        self.sizing = sizing
        self.rules = rules
        self.window = window
        self.shift = shift
        self.hold = hold
        self.rebalance = rebalance
        self.max_positions = max_positions
        self.max_exit_delay = max_exit_delay

    def _validate_params(self) -> None:
        from core_engine.backtest.engine import _resolve_strategy

        self._strategy = _resolve_strategy(self.strategy)
        gates = (self.gates,) if isinstance(self.gates, Gate) else tuple(check_items(
            () if self.gates is None else self.gates, "gates", "RankingTrader", kinds=Gate,
            expected="a Gate or a list of Gate objects such as [MaxATRPct(max_atr_pct=2.0)]"))
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
        if self.sizing is not None and not isinstance(self.sizing, Sizing):
            raise ConfigError("The 'sizing' parameter of RankingTrader must be a sizing object "
                              "such as EqualSlots(), FixedFraction(pct=10) or "
                              f"RiskPerTrade(risk_pct=1), or None. Got {self.sizing!r}.")
        self._sizing = self.sizing if self.sizing is not None else EqualSlots()
        if self.rules is not None and not isinstance(self.rules, PortfolioRules):
            raise ConfigError("The 'rules' parameter of RankingTrader must be "
                              f"PortfolioRules(...) or None. Got {self.rules!r}.")
        if not isinstance(self.rebalance, bool):
            raise ConfigError("The 'rebalance' parameter of RankingTrader must be True or "
                              f"False. Got {self.rebalance!r}.")
        if self._sizing.kind == "risk" and (self.exits is None or (
                self.exits.stop_loss_pct is None and self.exits.stop_loss_atr is None
                and self.exits.trailing_pct is None and self.exits.trailing_atr is None)):
            raise ConfigError("RiskPerTrade sizing needs a stop: pass exits=ExitRules("
                              f"stop_loss_pct=...) (or a trailing stop). Got exits={self.exits!r}.")
        self._window_ns = timeframe_ns(self.window, name="window")
        self._shift_ns = timeframe_ns(self.shift, name="shift")
        if self.hold not in HOLD_MODES:
            raise ConfigError(f"The 'hold' parameter of RankingTrader must be one of "
                              f"{list(HOLD_MODES)}. Got {self.hold!r}.")
        _exit_delay(self.max_exit_delay, 1)
        self._lookback = warm_up(self._strategy, self._gates, self._allocator, self.exits)
        rules = self.rules if self.rules is not None else PortfolioRules()
        self._liquidating = rules.liquidate_on_daily_loss or rules.liquidate_on_drawdown

    @property
    def every(self) -> str:
        """Decisions at the multiples of ``shift``."""
        return self.shift

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict:
        state = super().get_state()
        for key in ("af", "ai"):
            if key in state:
                state[key] = np.asarray(state[key]).tolist()
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        if "af" in self.state:
            self.state["af"] = np.asarray(self.state["af"], dtype=np.float64)
            self.state["ai"] = np.asarray(self.state["ai"], dtype=np.int64)

    # ------------------------------------------------------------------ inputs
    def _inputs(self, panel: Panel) -> dict:
        """The engine's inputs, the allocator's picks on every row that closes on the shift
        grid (each row's picks read that row only: a causal computation), each pick's
        sizing fraction and exit distances, and the prices the marks read."""
        inputs = compute_inputs(panel, self._strategy, gates=self._gates,
                                allocator=self._allocator, exits=self.exits)
        index = panel.index.asi8
        rows = np.flatnonzero(((index + panel.step_ns) % self._shift_ns == 0)
                              & (np.arange(panel.n_times) >= self._lookback))
        picks = allocate_at(inputs, rows, self._allocator, panel.symbols)
        values = pick_sizing_values(panel, self._strategy, picks, inputs, self._sizing)
        bounds = np.searchsorted(picks.rows, rows, "left"), np.searchsorted(picks.rows, rows,
                                                                             "right")
        dist = resolve_exit_distances(self.exits, picks, inputs["atr"])
        return {
            "picks": picks,
            "weights": sizing_weights(self._sizing, picks, self.max_positions, **values),
            "dist": np.vstack([dist[name] for name in _DIST]) if len(picks)
            else np.empty((6, 0)),
            "slices": {int(r): (int(a), int(b))
                       for r, a, b in zip(rows, bounds[0], bounds[1], strict=True)},
            "close": panel.close, "high": panel.high,
            "close_ffill": pd.DataFrame(panel.close).ffill().to_numpy(),
            "index0": int(index[0]) if len(index) else 0, "step": int(panel.step_ns),
        }

    # ------------------------------------------------------------------ the account
    def on_start(self, ctx: Context) -> None:
        self._setup(ctx)
        af = np.zeros(rk.N_RULE_FSTATE)
        ai = np.zeros(rk.N_RULE_ISTATE, dtype=np.int64)
        rk.rules_reset(af, ai, ctx.equity, ctx.now.value)
        self.state.update({"af": af, "ai": ai, "marked_to": ctx.now.value,
                           "equity_t": ctx.equity, "positions": {}, "last_exit": {}})
        self._refresh_book(ctx)

    def _setup(self, ctx: Context) -> None:
        """What the trader derives from its parameters and the broker (not state: a live
        runner that restores the state after a restart calls the hooks without
        ``on_start``, so each hook sets this up when it is missing)."""
        broker = ctx.broker
        exits = self.exits
        if exits is not None and exits.active and hasattr(broker, "stop_fill"):
            mine = STOP_FILL_NAMES.index(exits.stop_fill), float(exits.stop_fill_range or 0.0)
            theirs = int(broker.stop_fill), float(getattr(broker, "stop_fill_frac", 0.0))
            if mine[0] != theirs[0] or (mine[0] == 2 and mine[1] != theirs[1]):
                raise ConfigError(
                    f"RankingTrader's exits fill stops with stop_fill={exits.stop_fill!r}"
                    f"{f' (range {mine[1]:g})' if mine[0] == 2 else ''}, but the broker "
                    f"fills them with stop_fill={STOP_FILL_NAMES[theirs[0]]!r}: the fill "
                    "model is the broker's. Pass SimBroker(stop_fill="
                    f"{exits.stop_fill!r}" + (f", stop_fill_frac={mine[1]:g}" if mine[0] == 2
                                              else "") + ").")
        self._fp, self._ip = rule_params(self.rules, self._sizing, ctx.taker_fee)
        self._slip = float(getattr(broker, "slippage", 0.0))
        self._max_delay: int | None = None  # in candles, once the data's step is known
        self._scratch = np.empty((2, max(int(self._ip[rk.RI_CORR_LOOKBACK]), 2)))
        if "af" not in self.state:  # a state saved before any call
            self.state.update({"af": np.zeros(rk.N_RULE_FSTATE),
                               "ai": np.zeros(rk.N_RULE_ISTATE, dtype=np.int64),
                               "marked_to": ctx.now.value, "equity_t": ctx.equity})
            rk.rules_reset(self.state["af"], self.state["ai"], ctx.equity, ctx.now.value)
        self.state.setdefault("positions", {})
        self.state.setdefault("last_exit", {})
        self._refresh_book(ctx)

    def _refresh_book(self, ctx: Context) -> None:
        """What the account holds now (the marks until the next call use it)."""
        broker = ctx.broker
        holdings = getattr(broker, "holdings", None)
        if isinstance(holdings, np.ndarray) and len(holdings) == len(ctx.symbols):
            cols = np.flatnonzero(holdings > 0)  # a SimBroker: its own array
            self._book = (cols.astype(np.int64), holdings[cols].astype(np.float64),
                          float(broker.cash))
            return
        balances = broker.balances()
        held = [(j, float(balances.get(s.partition("/")[0], 0.0)))
                for j, s in enumerate(ctx.symbols)]
        held = [(j, q) for j, q in held if q > 0]
        self._book = (np.array([j for j, _ in held], dtype=np.int64),
                      np.array([q for _, q in held], dtype=np.float64),
                      float(balances.get(broker.quote, 0.0)))

    def _cash(self, ctx: Context) -> float:
        """The quote balance (the broker's own attribute when it has one)."""
        cash = getattr(ctx.broker, "cash", None)
        return float(cash) if isinstance(cash, float) else ctx.cash

    def _held(self, ctx: Context, symbol: str) -> float:
        """Base quantity held of ``symbol`` (the broker's own lookup when it has one)."""
        position = getattr(ctx.broker, "position", None)
        return float(position(symbol)) if position is not None else ctx.position(symbol)

    def _sync(self, ctx: Context, inputs: dict, row: int, refresh: bool) -> None:
        """Mark the account at every close since the last call (rules included) with what
        it held since then; a liquidating trip makes every position due at the next open.
        ``refresh``: read the holdings again afterwards (after a fill; ``on_bar`` needs not:
        a fill since the last call would have called ``on_fill``)."""
        if "_fp" not in self.__dict__:
            self._setup(ctx)
        step, index0 = inputs["step"], inputs["index0"]
        first = (self.state["marked_to"] - index0) // step  # the first row not marked yet
        if row >= first:
            cols, qty, cash = self._book
            equity, liq_row, liq = rk.mark_account(
                inputs["close_ffill"], cols, qty, cash, int(max(first, 0)), int(row),
                self.state["af"], self.state["ai"], self._fp, self._ip, index0, step)
            self.state["equity_t"] = float(equity)
            self.state["marked_to"] = index0 + (row + 1) * step
            if liq_row >= 0:
                due = index0 + (liq_row + 1) * step
                why = "daily_loss_limit_pct" if liq == rk.LIQ_DAILY else "max_drawdown_pct"
                for pos in self.state["positions"].values():
                    if pos["due"] > due:
                        pos["due"], pos["why"] = due, why
        if refresh:
            self._refresh_book(ctx)

    def _decision(self, ctx: Context, row: int) -> bool:
        t = ctx.now.value
        return (t % self._shift_ns == 0 and row >= self._lookback
                and (ctx.end is None or t + self._window_ns <= ctx.end.value)
                and any(ctx.tradable(s) for s in ctx.symbols))

    def _run_end_due(self, ctx: Context) -> int:
        """``hold="until_dropped"``: positions still held after the last decision time of
        the grid leave one window after it (never, live)."""
        if ctx.end is None:
            return _NEVER
        last = (ctx.end.value - self._window_ns) // self._shift_ns * self._shift_ns
        return last + self._window_ns

    # ------------------------------------------------------------------ hooks
    def on_bar(self, ctx: Context) -> None:
        inputs, row = ctx.causal("ranking-inputs", self._inputs)
        self._sync(ctx, inputs, row, refresh=False)
        t = ctx.now.value
        decision = self._decision(ctx, row)
        lo, hi = inputs["slices"].get(row, (0, 0)) if decision else (0, 0)
        picks = inputs["picks"]
        picked = {ctx.symbols[int(picks.cols[p])] for p in range(lo, hi)}
        positions = self.state["positions"]
        for symbol, pos in list(positions.items()):
            if pos.get("exit_sent"):
                continue
            if pos["due"] <= t:
                self._exit(ctx, symbol, pos, pos["why"], inputs["step"])
            elif self.hold == "until_dropped" and decision and symbol not in picked:
                self._exit(ctx, symbol, pos, "dropped", inputs["step"])
        self._refresh_book(ctx)  # the exits that filled at this open
        for symbol, pos in positions.items():
            # an exit that filled at this open counts for the cooldown before this
            # decision, as in the engine (its fill report reaches on_fill only afterwards)
            if pos.get("exit_sent") and self._held(ctx, symbol) <= 0:
                self.state["last_exit"][symbol] = t
        if decision:
            equity = self.state["equity_t"]
            ctx.note("decision", equity=equity, cash=self._cash(ctx),
                     picks=[(ctx.symbols[int(picks.cols[p])], int(picks.ranks[p]),
                             float(picks.scores[p])) for p in range(lo, hi)])
            self._decide(ctx, inputs, row, lo, hi, equity)
        self._keep_watch(ctx, inputs)

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        inputs, row = ctx.causal("ranking-inputs", self._inputs)
        self._sync(ctx, inputs, row, refresh=True)
        order = ctx.broker.fetch_order(fill.client_id)
        positions = self.state["positions"]
        if fill.side is OrderSide.SELL:
            if self._held(ctx, fill.symbol) <= 0:
                positions.pop(fill.symbol, None)
                self.state["last_exit"][fill.symbol] = fill.time.value
            return
        if order.is_open or order.tag not in ("entry", "rebalance"):
            return
        entry = float(order.average_price)
        meta = order.meta
        # the equity fraction bought (the trades' weight, as walk_forward's)
        order.meta["weight"] = order.filled_quantity * entry / meta["equity"]
        if order.tag != "entry":
            return
        due = ctx.now.value + self._window_ns
        if self.hold == "until_dropped":
            due = self._run_end_due(ctx)
        p = int(meta["pick"])
        dist = inputs["dist"][:, p]
        pos = {"group": order.client_id, "due": due, "why": "window_end", "entry": entry,
               "entry_row": row + 1, "pick": p,
               "stop": float(level_below(entry, dist[0], dist[1])),
               "target": float(level_above(entry, dist[2], dist[3]))}
        positions[fill.symbol] = pos
        if due < _NEVER:
            ctx.wake_at(pd.Timestamp(due, tz="UTC"))
        self._protect(ctx, fill.symbol, pos, entry, inputs)
        self._keep_watch(ctx, inputs)

    def _keep_watch(self, ctx: Context, inputs: dict) -> None:
        """With a liquidating rule, a held account is marked at every candle close."""
        if self._liquidating and self.state["positions"]:
            ctx.wake_at(pd.Timestamp(ctx.now.value + inputs["step"], tz="UTC"))

    # ------------------------------------------------------------------ decisions
    def _decide(self, ctx: Context, inputs: dict, row: int, lo: int, hi: int,
                equity: float) -> None:
        t = ctx.now.value
        state, fp, ip = self.state, self._fp, self._ip
        ai = state["ai"]
        halted_dd, halted_day = rk.entry_halted(ai, t)
        positions = state["positions"]
        picks, weights, dist = inputs["picks"], inputs["weights"], inputs["dist"]
        marks = inputs["close_ffill"][row] if row >= 0 else np.full(len(ctx.symbols), np.nan)
        entered: dict[int, float] = {}
        for p in range(lo, hi):
            col = int(picks.cols[p])
            symbol = ctx.symbols[col]
            cols, qty, _ = self._book
            # held positions at their last close, this decision's entries at their fill value
            gross = float(np.dot(qty, marks[cols])) if len(cols) else 0.0
            for j, value in entered.items():
                gross += value - float(qty[cols == j].sum() * marks[j])
            pos = positions.get(symbol)
            if pos is not None and not pos.get("exit_sent"):  # held and not due: a re-pick
                if self.hold == "window":
                    pos["due"] = t + self._window_ns
                    ctx.wake_at(pd.Timestamp(pos["due"], tz="UTC"))
                if self.rebalance and ctx.tradable(symbol):
                    self._rebalance(ctx, inputs, symbol, pos, p, equity, gross,
                                    halted_dd or halted_day, row)
                continue

            def block(reason: str, p: int = p, symbol: str = symbol) -> None:
                ctx.block(symbol, reason, rank=int(picks.ranks[p]),
                          score=float(picks.scores[p]))

            if not ctx.tradable(symbol):
                block("no_entry_candle")
                continue
            reason = rk.entry_block(ai, fp, ip, t, int(state["last_exit"].get(symbol, -_NEVER)),
                                    inputs["close"], col, cols, len(cols), row,
                                    self._scratch[0], self._scratch[1])
            exact, fill = self._fill_price(ctx, symbol, marks[col])
            if reason < 0:
                stop0 = entry_stop(fill, dist[0, p], dist[1, p], dist[4, p], dist[5, p])
                quantity, value, reason = rk.entry_size(equity, self._cash(ctx), gross, weights[p],
                                                        fill, stop0, fp)
            if reason >= 0:
                block(rk.BLOCK_REASON_NAMES[reason])
                continue
            meta = {"decision_time": ctx.now.isoformat(), "rank": int(picks.ranks[p]),
                    "score": float(picks.scores[p]), "equity": equity, "pick": p}
            if exact and self._sizing.lot_step is not None:
                order = ctx.buy(symbol, float(quantity), leg="entry", tag="entry",
                                time_in_force="ioc", meta=meta)
            else:  # the value (the broker pays it exactly, as the engine does), and a
                # live broker does not know the entry price before the fill
                lot = self._sizing.lot_step
                min_value = float(fp[rk.RF_MIN_ORDER])
                order = ctx.buy(symbol, value=float(value), leg="entry", tag="entry",
                                time_in_force="ioc", lot_step=lot,
                                min_value=min_value if min_value > 0 else None, meta=meta)
            if order.filled_quantity > 0:
                entered[col] = order.filled_quantity * float(order.average_price)
                ai[rk.AI_ENTRIES_TODAY] += 1
                self._refresh_book(ctx)
            elif order.reason in ("lot_step", "min_order_value"):
                block("min_order_value")
            elif order.reason == "no_candle":
                block("no_entry_candle")
            else:
                block("cash")

    def _fill_price(self, ctx: Context, symbol: str, last_close: float) -> tuple[bool, float]:
        """``(exact, fill)``: the entry fill (after slippage) of a market order now; from
        the last close when the broker cannot tell the price before the fill."""
        price = getattr(ctx.broker, "market_price", None)
        raw = float(price(symbol)) if price is not None else math.nan
        exact = math.isfinite(raw)
        return exact, (raw if exact else float(last_close)) * (1.0 + self._slip)

    def _rebalance(self, ctx: Context, inputs: dict, symbol: str, pos: dict, p: int,
                   equity: float, gross: float, halted: bool, row: int) -> None:
        """``rebalance=True``: trade a re-picked position toward its new target; its exit
        orders are re-placed for the new quantity at the levels of the first fill."""
        col = ctx.symbols.index(symbol)
        exact, fill = self._fill_price(ctx, symbol, inputs["close_ffill"][row, col])
        o = fill / (1.0 + self._slip)
        held = self._held(ctx, symbol)
        dist = inputs["dist"]
        stop0 = entry_stop(fill, dist[0, p], dist[1, p], dist[4, p], dist[5, p])
        qty, value = rk.rebalance_size(equity, self._cash(ctx), gross, held, o, fill,
                                       inputs["weights"][p], stop0, halted, self._fp)
        if qty == 0:
            return
        self._unprotect(ctx, pos)
        meta = {"equity": equity}  # the buy's weight is its value / this equity
        if qty > 0 and exact and self._sizing.lot_step is not None:
            ctx.buy(symbol, float(qty), leg="rebalance", tag="rebalance", time_in_force="ioc",
                    meta=meta)
        elif qty > 0:
            ctx.buy(symbol, value=float(value), leg="rebalance", tag="rebalance",
                    time_in_force="ioc", lot_step=self._sizing.lot_step, meta=meta)
        else:
            ctx.sell(symbol, float(-qty), leg="rebalance", tag="rebalance")
        self._refresh_book(ctx)
        pos["group"] = f"{pos['group']}-{ctx.now.value}"
        self._protect(ctx, symbol, pos, pos["entry"], inputs, row=row)

    # ------------------------------------------------------------------ orders
    def _exit(self, ctx: Context, symbol: str, pos: dict, reason: str, step: int) -> None:
        qty = self._held(ctx, symbol)
        if qty <= 0:
            self.state["positions"].pop(symbol, None)
            return
        pos["exit_sent"] = True
        order = ctx.sell(symbol, qty, leg="exit", group=pos["group"], tag=reason)
        cap = getattr(ctx.broker, "cap_wait", None)
        if order.is_open and self.max_exit_delay is not None and cap is not None:
            delay = self._max_delay
            if delay is None:
                delay = self._max_delay = _exit_delay(self.max_exit_delay, step)
            assert delay is not None  # max_exit_delay is set
            cap(order.client_id, pd.Timestamp(ctx.now.value + (delay + 1) * step, tz="UTC"))

    def _unprotect(self, ctx: Context, pos: dict) -> None:
        for order in ctx.open_orders():
            if order.group == pos["group"]:
                ctx.cancel(order)

    def _protect(self, ctx: Context, symbol: str, pos: dict, entry: float, inputs: dict,
                 row: int | None = None) -> None:
        """The position's stop (fixed and/or trailing, from the first fill) and take-profit
        in one OCO group; ``row``: re-placed after a rebalance at the open after ``row``
        (the trail resumes from the highest high since the entry)."""
        exits = self.exits
        if exits is None or not exits.active:
            return
        qty = self._held(ctx, symbol)
        if qty <= 0:
            return
        dist = inputs["dist"][:, pos["pick"]]
        stop, target = pos["stop"], pos["target"]
        trailing = not (math.isnan(dist[4]) and math.isnan(dist[5]))
        highest = entry
        if row is not None and row >= pos["entry_row"]:
            highs = inputs["high"][pos["entry_row"]: row + 1, ctx.symbols.index(symbol)]
            if np.isfinite(highs).any():
                highest = max(entry, float(np.nanmax(highs)))
        if math.isfinite(stop) and stop <= 0:
            stop = math.nan
        if math.isfinite(stop) or trailing:
            ctx.sell(symbol, qty, type="stop", price=stop if math.isfinite(stop) else None,
                     trail_pct=exits.trailing_pct,
                     trail_offset=None if math.isnan(dist[5]) else float(dist[5]),
                     trail_reference=highest if trailing else None, group=pos["group"],
                     leg="stop", tag="stop")
        if math.isfinite(target):
            ctx.sell(symbol, qty, type="limit", price=target, group=pos["group"],
                     leg="target", tag="take_profit")
