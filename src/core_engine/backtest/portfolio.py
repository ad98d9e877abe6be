"""Portfolio mode: one compounding cash account, sized positions and portfolio rules.

This is the reference the event engine (replay of a ``RankingTrader``) and the live runner
are held to, trade for trade. The rules and the sizing below are computed by the kernels of
:mod:`core_engine.risk._kernels`, which the account kernel here and the ``RankingTrader``
both call: one code path. Long-only spot, one account in the quote currency, at most
one position per symbol. Decision times, scores, gates, picks (the allocator's, best rank
first) and exit levels are those of slices mode (:mod:`core_engine.backtest.simulate`);
what differs is that picks share one account.

**Times.** A decision at ``t`` reads candles closed by ``t``; its entry candle is the one
starting at ``t`` (row ``k``). The account is *marked* at every candle close:
``equity = cash + Σ quantity × mark``, the mark being the symbol's last known close (a
missing candle keeps the previous mark). The first mark is the initial cash at the first
decision time.

**Order of work at the open of candle ``k``** (time ``τ``):

1. *Exits at the open.* Positions due at or before ``k`` leave by the slices window-end
   rule (``exit_after_window``): at this open if the candle exists, named ``stop_loss``/
   ``trailing_stop``/``take_profit`` when the open is already beyond that level, else by
   why it was due (``window_end``, ``dropped``, ``daily_loss_limit_pct``,
   ``max_drawdown_pct``); a missing candle keeps the position waiting for the first open
   after it (``exit_delayed_by``), at most ``max_exit_delay`` candles when set, then at
   the last close before the gap (the cash arrives at the first open past the cap;
   ``exit_delay_capped`` is set, as in slices mode, when prices do come back later: that
   flag alone reads past the exit); when the data end first, at that last close
   (``exit_at_last_close``; the cash arrives at the end of the run). Other
   held positions whose candle opens through their stop or target leave at the open
   (``exit_on_candle``).
2. *Decision* (when ``τ`` is an evaluated decision time ``t``). With
   ``hold="until_dropped"``, held symbols that are not among the picks at ``t`` became due
   at ``k`` (step 1 closed them, reason ``dropped``). Then the picks, best rank first:

   * a symbol already held (and not due) is *re-picked*: it keeps its position; with
     ``hold="window"`` its exit moves to ``t + window``; with ``rebalance=True`` it trades
     the difference between its value at the open and its new target value (selling
     records a partial trade with reason ``rebalance``; buying adds to the position at
     an averaged entry price, capped like an entry and not during a halt; exit levels
     stay those of the first fill);
   * otherwise a new entry, checked in this order, the first failure being its
     ``result.blocked`` reason: ``no_entry_candle`` (the candle starting at ``t`` is
     missing), then the rules of :class:`~core_engine.risk.PortfolioRules`
     (``max_drawdown_pct``, ``daily_loss_limit_pct``, ``cooldown``,
     ``max_entries_per_day``, ``max_correlation``), then ``sizing`` (the sizing object
     gave no size), then the caps: the target value ``E × w`` (``E`` the equity marked at
     ``t``, before this open's trades; ``w`` the sizing's fraction, at most
     ``max_position_pct``) is cut to ``max_exposure_pct × E``, to the room under
     ``max_gross_exposure_pct × E`` (held positions at their marks plus this decision's
     fills) and to ``cash / (1 + fee)``; the quantity ``value / fill`` is rounded down to
     the sizing's ``lot_step`` (``value = quantity × fill`` then); a quantity of 0 or a
     value below ``min_order_value`` is blocked, named after the last cap that bound
     (``cash``, ``max_gross_exposure_pct``, ``max_exposure_pct``; a cap that cuts at most
     ``1e-9 × E`` off the value is an earlier cap again up to float rounding and does not
     count as binding) or ``min_order_value``;
     so is an order worth at most ``1e-9 × E`` (the cash float rounding leaves after the
     account is fully invested is dust, not a position; the event trader uses the same
     check, :func:`core_engine.risk._kernels.order_value_ok`).
     The fill is ``open × (1 + slippage)``; cash pays ``value × (1 + fee)`` (if rounding
     makes that exceed the cash, the cash is paid and the fee is the rest: cash never goes
     below 0). Levels are fixed from the fill as in slices mode. The position is due at
     ``t + window`` (``hold="window"``) or at the end of the run.

3. *Inside candle ``k``*: stop before target, gap-through at the open, trailing from the
   highs of earlier candles, stop fills, ambiguity: exactly the slices rules
   (``exit_on_candle``), for positions entered at this open too. Survivors' lows, highs
   and marks are updated.
4. *Mark* at the close of ``k``, then the halts this mark trips (daily loss from the UTC
   day's first mark, drawdown from the running peak); liquidation orders make every
   position due at the next open.

**End of the run.** After the last decision time ``t_last`` of the grid (the last
multiple of ``shift`` in ``[start, end − window]`` after the warm-up, evaluated or skipped
for an outage: whether the market opens then is not known before), positions are due at
``t_last + window`` at the latest; the account is marked up to that candle (or to the
last exit when later). With ``window == shift``, no rules and a sizing that the cash
always covers, every trade equals the slices trade of the same pick (times, prices,
``return_pct``, exit reason).

**Trade P&L.** ``entry_value = quantity × entry_price``; fees = entry fee + exit fee
(``quantity × exit_price × fee``); ``pnl = quantity × exit_price × (1 − fee) −
entry_value − entry fee``; ``return_pct`` is the slices per-unit return
(``net_return_pct``); ``weight = entry_value / E``. Accounting identities (tested on
every run): final equity = initial cash + Σ pnl, fees paid = Σ fees, cash ≥ 0 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core_engine.backtest._kernels import STOP_FILL_NAMES
from core_engine.backtest._portfolio_kernels import (
    BLOCK_REASON_NAMES,
    BLOCKED_DTYPE,
    F_CASH,
    F_SLIP,
    F_STOP_FILL_FRAC,
    I_END_DUE,
    I_HOLD_UNTIL_DROPPED,
    I_INDEX0,
    I_MAX_DELAY,
    I_REBALANCE,
    I_STEP,
    I_STOP_FILL,
    I_WINDOW,
    N_FPARAMS,
    N_IPARAMS,
    PORTFOLIO_EXIT_REASON_NAMES,
    PORTFOLIO_TRADE_DTYPE,
    REBALANCE,
    simulate_portfolio_kernel,
)
from core_engine.backtest.simulate import Picks, resolve_exit_distances
from core_engine.data.panel import Panel
from core_engine.errors import ConfigError
from core_engine.risk.exits import ExitRules
from core_engine.risk.rules import PortfolioRules, rule_params
from core_engine.risk.sizing import EqualSlots, InverseVolatilitySizing, Sizing

__all__ = ["BLOCK_REASON_NAMES", "HOLD_MODES", "PORTFOLIO_EXIT_REASON_NAMES",
           "PortfolioOptions", "PortfolioRun", "assemble_portfolio", "pick_sizing_values",
           "portfolio_frames", "run_end_row",
           "portfolio_options", "run_portfolio", "simulate_portfolio", "sizing_weights"]

HOLD_MODES = ("window", "until_dropped")


@dataclass(frozen=True, kw_only=True)
class PortfolioOptions:
    """The portfolio-mode options of ``walk_forward``, validated."""

    initial_cash: float = 10_000.0
    sizing: Sizing | None = None
    rules: PortfolioRules | None = None
    hold: str = "window"
    rebalance: bool = False

    def __post_init__(self) -> None:
        cash = self.initial_cash
        if isinstance(cash, bool) or not isinstance(cash, (int, float, np.integer, np.floating)) \
                or not np.isfinite(cash) or cash <= 0:
            raise ConfigError("The 'initial_cash' parameter of walk_forward must be a positive "
                              f"amount of the quote currency such as 10000. Got {cash!r}.")
        object.__setattr__(self, "initial_cash", float(cash))
        if self.sizing is not None and not isinstance(self.sizing, Sizing):
            raise ConfigError("The 'sizing' parameter of walk_forward must be a sizing object "
                              "such as EqualSlots(), FixedFraction(pct=10) or "
                              f"RiskPerTrade(risk_pct=1). Got {self.sizing!r}.")
        if self.rules is not None and not isinstance(self.rules, PortfolioRules):
            raise ConfigError("The 'rules' parameter of walk_forward must be "
                              f"PortfolioRules(...) or None. Got {self.rules!r}.")
        if self.hold not in HOLD_MODES:
            raise ConfigError(f"The 'hold' parameter of walk_forward must be one of "
                              f"{list(HOLD_MODES)}. Got {self.hold!r}.")
        if not isinstance(self.rebalance, bool):
            raise ConfigError("The 'rebalance' parameter of walk_forward must be True or "
                              f"False. Got {self.rebalance!r}.")

    @property
    def sizing_or_default(self) -> Sizing:
        return self.sizing if self.sizing is not None else EqualSlots()

    @property
    def rules_or_default(self) -> PortfolioRules:
        return self.rules if self.rules is not None else PortfolioRules()

    def check_exits(self, exits: ExitRules | None) -> None:
        """RiskPerTrade needs a stop: raise when the exits have none."""
        if self.sizing_or_default.kind == "risk" and (
                exits is None or (exits.stop_loss_pct is None and exits.stop_loss_atr is None
                                  and exits.trailing_pct is None and exits.trailing_atr is None)):
            raise ConfigError("RiskPerTrade sizing needs a stop: pass exits=ExitRules("
                              "stop_loss_pct=...) (or a trailing stop). Got exits="
                              f"{exits!r}.")

    def to_dict(self) -> dict:
        return {"initial_cash": self.initial_cash,
                "sizing": self.sizing_or_default.describe(),
                "rules": self.rules_or_default.to_dict(), "hold": self.hold,
                "rebalance": self.rebalance}


@dataclass(frozen=True)
class PortfolioRun:
    """Raw outcome of :func:`simulate_portfolio`: trade records (``PORTFOLIO_TRADE_DTYPE``,
    in exit order), blocked picks (``BLOCKED_DTYPE``), and the marks ``equity`` (columns
    equity, cash, exposure, positions) of panel rows ``first_row, first_row + 1, ...``."""

    trades: np.ndarray
    blocked: np.ndarray
    equity: np.ndarray
    first_row: int


def sizing_weights(sizing: Sizing, picks: Picks, max_positions: int, *,
                   confidence: np.ndarray | None = None,
                   volatility: np.ndarray | None = None) -> np.ndarray:
    """Each pick's equity fraction from ``sizing``; ``confidence``/``volatility`` hold the
    value of each pick (its symbol at its decision row) when the sizing needs them."""
    if "confidence" in sizing.needs() and confidence is None:
        raise ConfigError(f"{type(sizing).__name__} needs a strategy that provides "
                          "confidence(); this one returns None.")
    out = sizing.weights(len(picks), max_positions, confidence=confidence,
                         volatility=volatility)
    return np.ascontiguousarray(out, dtype=np.float64)


def portfolio_options(mode: str, *, initial_cash: Any, sizing: Any, rules: Any, hold: Any,
                      rebalance: Any) -> PortfolioOptions | None:
    """The validated portfolio options of ``walk_forward`` (None in slices mode, where
    giving any of them is an error)."""
    if mode != "portfolio":
        given = [name for name, value, default in (
            ("initial_cash", initial_cash, None), ("sizing", sizing, None),
            ("rules", rules, None), ("hold", hold, "window"), ("rebalance", rebalance, False))
            if value is not default and value != default]
        if given:
            raise ConfigError(f"walk_forward got {given} with mode={mode!r}; these apply to "
                              "mode='portfolio' only.")
        return None
    return PortfolioOptions(initial_cash=10_000.0 if initial_cash is None else initial_cash,
                            sizing=sizing, rules=rules, hold=hold, rebalance=rebalance)


def pick_sizing_values(panel: Panel, strategy: Any, picks: Picks, inputs: dict,
                       sizing: Sizing, cache: Any = None) -> dict:
    """Confidence and volatility of each pick at its decision row, as the sizing needs."""
    from core_engine.backtest.inputs import scores_at

    out: dict[str, np.ndarray | None] = {"confidence": None, "volatility": None}
    at = np.arange(len(picks))
    if "confidence" in sizing.needs():
        if inputs.get("confidence") is not None:
            out["confidence"] = scores_at(inputs, picks.rows, "confidence")[at, picks.cols]
        else:
            conf = strategy.confidence_panel(panel, features=inputs["features"])
            out["confidence"] = None if conf is None else conf[picks.rows, picks.cols]
    if isinstance(sizing, InverseVolatilitySizing):
        from core_engine.features.cache import compute_features

        vol = compute_features(sizing.features(), panel, cache=cache)[sizing.column]
        out["volatility"] = vol[picks.rows, picks.cols]
    return out


def run_portfolio(panel: Panel, strategy: Any, cfg: dict, schedule: Any, picks: Picks,
                  inputs: dict, cache: Any = None) -> PortfolioRun:
    """Portfolio mode of ``walk_forward``: sizing inputs, then :func:`simulate_portfolio`."""
    options: PortfolioOptions = cfg["portfolio"]
    sizing = options.sizing_or_default
    values = pick_sizing_values(panel, strategy, picks, inputs, sizing, cache)
    weights = sizing_weights(sizing, picks, cfg["max_positions"], **values)
    return simulate_portfolio(panel, picks, schedule.rows,
                              window_candles=schedule.window_candles, options=options,
                              weights=weights, fee_bps=cfg["fee_bps"],
                              slippage_bps=cfg["slippage_bps"], exits=cfg["exits"],
                              atr=inputs["atr"], max_exit_delay=cfg.get("max_exit_delay"),
                              end_due_row=run_end_row(panel, schedule))


def run_end_row(panel: Panel, schedule: Any) -> int | None:
    """The row at whose open positions still held after the run's last decision time leave:
    one window after the last time of the decision grid, *scheduled* (evaluated, or skipped
    because no candle opened then: an outage), so the end does not depend on whether the
    market happened to be open at that time (the event trader cannot know it beforehand)."""
    if len(schedule.times) == 0:
        return None
    last = int(schedule.times.asi8[-1])
    skipped = schedule.skipped
    outage = skipped.loc[skipped["reason"] == "no_entry_candle", "decision_time"]
    if len(outage):
        last = max(last, int(pd.DatetimeIndex(outage).asi8.max()))
    return (last - int(panel.index.asi8[0])) // panel.step_ns + schedule.window_candles


def assemble_portfolio(panel: Panel, cfg: dict, run: dict) -> dict:
    """Trades, blocked picks, equity, metrics and data-quality counts of a portfolio run."""
    from core_engine.backtest.metrics import account_metrics

    trades, blocked, equity = portfolio_frames(run["portfolio"], run["picks"], panel)
    metrics = account_metrics(trades, equity, blocked, decisions=len(run["schedule"].times),
                              initial_cash=cfg["portfolio"].initial_cash)
    full = trades[trades["exit_reason"] != "rebalance"]
    records = run["portfolio"].trades
    records = records[records["exit_reason"] != REBALANCE]
    counts = {
        "picks_without_entry_candle": int((blocked["reason"] == "no_entry_candle").sum()),
        "picks_blocked": int(len(blocked)),
        "trades_with_gaps": int((full["gaps_in_window"] > 0).sum()),
        "trades_exit_at_last_close": int(full["exit_at_last_close"].sum()),
        "trades_exit_delayed": int((full["exit_delayed_by"] > 0).sum()),
        "exit_delay_candles_max": int(full["exit_delayed_by"].max()) if len(full) else 0,
        "trades_exit_delay_capped": int(full["exit_delay_capped"].sum()),
    }
    held = tuple(records[name] for name in ("col", "entry_row", "exit_row"))
    return {"trades": trades, "blocked": blocked, "equity": equity, "metrics": metrics,
            "counts": counts, "held": held}


def _stop_fill(exits: ExitRules | None) -> tuple[int, float]:
    if exits is None:
        return 0, 0.0
    return STOP_FILL_NAMES.index(exits.stop_fill), float(exits.stop_fill_range or 0.0)


def _params(panel: Panel, options: PortfolioOptions, *, window_candles: int, fee_bps: float,
            slippage_bps: float, exits: ExitRules | None, max_exit_delay: int | None,
            end_due_row: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's packed parameters: the rules and sizing as the risk kernels read them
    (:func:`~core_engine.risk.rules.rule_params`, shared with the RankingTrader), then the
    account's own."""
    rule_fp, rule_ip = rule_params(options.rules, options.sizing_or_default, fee_bps / 1e4)
    fp = np.full(N_FPARAMS, np.nan)
    ip = np.full(N_IPARAMS, -1, dtype=np.int64)
    fp[:len(rule_fp)] = rule_fp
    ip[:len(rule_ip)] = rule_ip
    fp[F_CASH] = options.initial_cash
    fp[F_SLIP] = slippage_bps / 1e4
    ip[I_STOP_FILL], fp[F_STOP_FILL_FRAC] = _stop_fill(exits)
    ip[I_WINDOW] = window_candles
    ip[I_HOLD_UNTIL_DROPPED] = int(options.hold == "until_dropped")
    ip[I_REBALANCE] = int(options.rebalance)
    ip[I_MAX_DELAY] = -1 if max_exit_delay is None else int(max_exit_delay)
    ip[I_INDEX0] = int(panel.index.asi8[0]) if panel.n_times else 0
    ip[I_STEP] = int(panel.step_ns)
    ip[I_END_DUE] = -1 if end_due_row is None else int(end_due_row)
    return fp, ip


def _dist_rows(dist: dict, n_picks: int) -> np.ndarray:
    """The six exit distances as the kernel's ``(6, n_picks)`` array (rows ``D_*``)."""
    out = np.empty((6, n_picks))
    for row, name in enumerate(("stop_frac", "stop_dist", "target_frac", "target_dist",
                                "trail_frac", "trail_dist")):
        out[row] = dist[name]
    return out


def simulate_portfolio(panel: Panel, picks: Picks, decision_rows: np.ndarray, *,
                       window_candles: int, options: PortfolioOptions, weights: np.ndarray,
                       fee_bps: float = 10.0, slippage_bps: float = 0.0,
                       exits: ExitRules | None = None, atr: np.ndarray | None = None,
                       max_exit_delay: int | None = None,
                       end_due_row: int | None = None) -> PortfolioRun:
    """Run the account over ``panel`` (see the module docstring for every rule).

    Parameters
    ----------
    panel : Panel
        The candles.
    picks : Picks
        The allocator's picks, grouped by decision row in ``decision_rows`` order and best
        rank first within a decision (as :func:`~core_engine.backtest.allocate_at` gives).
    decision_rows : numpy.ndarray
        The evaluated decision rows ``i`` (increasing); entries at row ``i + 1``.
    window_candles : int
        Candles in the holding window.
    options : PortfolioOptions
        Initial cash, sizing, rules, hold mode, rebalancing.
    weights : numpy.ndarray
        Each pick's equity fraction (:func:`sizing_weights`; ignored by ``RiskPerTrade``).
    fee_bps, slippage_bps, exits, atr, max_exit_delay
        As in slices mode.
    end_due_row : int, optional
        The row at whose open positions still held after the last decision leave
        (default: one window after the last of ``decision_rows``).

    Returns
    -------
    PortfolioRun
    """
    rows = np.ascontiguousarray(decision_rows, dtype=np.int64)
    if len(picks) and (np.any(np.diff(picks.rows) < 0) or not np.isin(picks.rows, rows).all()):
        raise ConfigError("simulate_portfolio: picks must be grouped by decision row, in the "
                          "order of 'decision_rows'.")
    options.check_exits(exits)
    dist = resolve_exit_distances(exits, picks, atr)
    fp, ip = _params(panel, options, window_candles=window_candles, fee_bps=fee_bps,
                     slippage_bps=slippage_bps, exits=exits, max_exit_delay=max_exit_delay,
                     end_due_row=end_due_row)
    pick_start = np.searchsorted(picks.rows, rows, side="left").astype(np.int64)
    pick_start = np.append(pick_start, len(picks)).astype(np.int64)
    n_picks = len(picks)
    trades = np.zeros(n_picks * (2 if options.rebalance else 1) + 1, dtype=PORTFOLIO_TRADE_DTYPE)
    blocked = np.zeros(n_picks + 1, dtype=BLOCKED_DTYPE)
    first = int(rows[0]) if len(rows) else 0
    eq = np.zeros((max(panel.n_times - first, 1), 4))
    n_tr, n_bl, n_eq = simulate_portfolio_kernel(
        panel.open, panel.high, panel.low, panel.close, rows, pick_start, picks.cols,
        np.ascontiguousarray(weights, dtype=np.float64), _dist_rows(dist, n_picks), fp, ip,
        trades, blocked, eq)
    return PortfolioRun(trades=trades[:n_tr], blocked=blocked[:n_bl], equity=eq[:n_eq],
                        first_row=first)


def portfolio_frames(run: PortfolioRun, picks: Picks, panel: Panel
                     ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(trades, blocked, equity)`` DataFrames of a portfolio run.

    ``trades``: the slices columns plus ``quantity, entry_value, fees, pnl,
    exit_delayed_by, exit_delay_capped, repicks``, ordered by pick (decision time, rank)
    then exit time. ``blocked``: ``decision_time, symbol, rank, score, reason``.
    ``equity``: ``time`` (candle close), ``equity, cash, exposure, positions,
    drawdown_pct``.
    """
    step = panel.step_ns
    index0 = int(panel.index.asi8[0]) if panel.n_times else 0
    symbols = np.asarray(panel.symbols, dtype=object)
    rec = run.trades[np.lexsort((run.trades["exit_time"], run.trades["pick"]))]
    p = rec["pick"]
    trades = pd.DataFrame({
        "symbol": symbols[rec["col"]],
        "decision_time": pd.DatetimeIndex(index0 + (picks.rows[p] + 1) * step, tz="UTC"),
        "entry_time": pd.DatetimeIndex(index0 + rec["entry_row"] * step, tz="UTC"),
        "exit_time": pd.DatetimeIndex(rec["exit_time"], tz="UTC"),
        "entry_price": rec["entry_price"],
        "exit_price": rec["exit_price"],
        "direction": "long",
        "weight": rec["weight"],
        "return_pct": rec["return_pct"],
        "best_return_pct": rec["best_return_pct"],
        "worst_case_return_pct": rec["worst_case_return_pct"],
        "max_drawdown": rec["max_drawdown"],
        "exit_reason": np.asarray(PORTFOLIO_EXIT_REASON_NAMES, dtype=object)[
            rec["exit_reason"].astype(np.int64)],
        "rank": picks.ranks[p],
        "score": picks.scores[p],
        "ambiguous": rec["ambiguous"].astype(bool),
        "gaps_in_window": rec["gaps_in_window"].astype(np.int64),
        "exit_at_last_close": rec["exit_at_last_close"].astype(bool),
        "exit_delayed_by": rec["exit_delayed_by"].astype(np.int64),
        "exit_delay_capped": rec["exit_delay_capped"].astype(bool),
        "quantity": rec["quantity"],
        "entry_value": rec["entry_value"],
        "fees": rec["fees"],
        "pnl": rec["pnl"],
        "repicks": rec["repicks"].astype(np.int64),
    })
    bp = run.blocked["pick"]
    blocked = pd.DataFrame({
        "decision_time": pd.DatetimeIndex(index0 + (picks.rows[bp] + 1) * step, tz="UTC"),
        "symbol": symbols[picks.cols[bp]],
        "rank": picks.ranks[bp],
        "score": picks.scores[bp],
        "reason": np.asarray(BLOCK_REASON_NAMES, dtype=object)[
            run.blocked["reason"].astype(np.int64)],
    })
    eq = run.equity
    rows = run.first_row + np.arange(eq.shape[0], dtype=np.int64)
    value = eq[:, 0]
    peak = np.maximum.accumulate(value) if len(value) else value
    with np.errstate(invalid="ignore", divide="ignore"):
        drawdown = np.where(peak > 0, (1.0 - value / peak) * 100.0, 0.0)
    equity = pd.DataFrame({
        "time": pd.DatetimeIndex(index0 + (rows + 1) * step, tz="UTC"),
        "equity": value,
        "cash": eq[:, 1],
        "exposure": eq[:, 2],
        "positions": eq[:, 3].astype(np.int64),
        "drawdown_pct": drawdown,
    })
    return trades, blocked, equity
