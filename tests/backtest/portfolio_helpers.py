"""Glue of the portfolio tests: feed the same picks to the engine and to the reference, and
check the accounting identities. Only converts data; no rule is implemented here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from core_engine.backtest.portfolio import PortfolioOptions, simulate_portfolio
from core_engine.backtest.simulate import Picks
from core_engine.data.panel import Panel
from core_engine.risk import PortfolioRules
from core_engine.risk.sizing import RiskPerTrade, Sizing

from .portfolio_reference import Config, run_reference


def _opt(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def reference_config(options: PortfolioOptions, *, window: int, fee_bps: float,
                     slippage_bps: float, max_exit_delay: int | None = None,
                     exits=None) -> Config:
    sizing: Sizing = options.sizing_or_default
    rules: PortfolioRules = options.rules_or_default

    def frac(v):
        return None if v is None else v / 100.0

    def ns(v):
        return None if v is None else int(pd.Timedelta(v).value)

    return Config(
        cash=options.initial_cash, fee=fee_bps / 1e4, slip=slippage_bps / 1e4, window=window,
        hold=options.hold, rebalance=options.rebalance,
        max_position=sizing.max_position_pct / 100.0, lot=sizing.lot_step,
        risk=frac(sizing.risk_pct) if isinstance(sizing, RiskPerTrade) else None,
        min_order=rules.min_order_value, cooldown_ns=ns(rules.cooldown),
        max_entries=rules.max_entries_per_day, daily_loss=frac(rules.daily_loss_limit_pct),
        liquidate_daily=rules.liquidate_on_daily_loss, max_dd=frac(rules.max_drawdown_pct),
        halt_ns=ns(rules.drawdown_halt_for), liquidate_dd=rules.liquidate_on_drawdown,
        max_exposure=frac(rules.max_exposure_pct), max_gross=frac(rules.max_gross_exposure_pct),
        max_corr=rules.max_correlation, corr_lookback=rules.correlation_lookback,
        max_delay=max_exit_delay,
        stop_fill="level" if exits is None else exits.stop_fill,
        stop_fill_frac=0.0 if exits is None else float(exits.stop_fill_range or 0.0))


def reference_run(panel: Panel, picks: Picks, rows, weights, dist: dict, cfg: Config):
    prices = {k: getattr(panel, k).tolist() for k in ("open", "high", "low", "close")}
    ref_picks = []
    for p in range(len(picks)):
        exits = {f"{a}_{b}": _opt(dist[f"{a}_{b}"][p])
                 for a in ("stop", "target", "trail") for b in ("frac", "dist")}
        ref_picks.append((int(picks.rows[p]), int(picks.cols[p]), float(weights[p]), exits))
    return run_reference(prices, int(panel.index.asi8[0]), int(panel.step_ns),
                         [int(r) for r in rows], ref_picks, cfg)


TRADE_FIELDS = ("pick", "col", "entry_row", "exit_row", "exit_time", "exit_reason",
                "ambiguous", "gaps_in_window", "exit_at_last_close", "exit_delayed_by",
                "exit_delay_capped", "repicks")
FLOAT_FIELDS = ("entry_price", "exit_price", "quantity", "entry_value", "fees", "pnl",
                "weight", "return_pct", "best_return_pct", "worst_case_return_pct",
                "max_drawdown")


def assert_same_as_reference(run, acc, reason_names, block_names, rel=1e-9):
    """The kernel's trades, blocked picks and marks equal the reference's."""
    rec = run.trades[np.lexsort((run.trades["exit_time"], run.trades["pick"]))]
    ref = sorted(acc.trades, key=lambda t: (t["pick"], t["exit_time"]))
    assert len(rec) == len(ref), (len(rec), len(ref))
    for got, want in zip(rec, ref, strict=True):
        for name in TRADE_FIELDS:
            value = got[name]
            if name == "exit_reason":
                value = reason_names[int(value)]
            assert value == want[name], (name, got, want)
        for name in FLOAT_FIELDS:
            assert math.isclose(float(got[name]), want[name], rel_tol=rel, abs_tol=1e-9), \
                (name, got, want)
    blocked = [(int(b["pick"]), block_names[int(b["reason"])]) for b in run.blocked]
    assert blocked == acc.blocked
    marks = np.asarray(acc.marks, dtype=np.float64).reshape(-1, 4)
    assert run.equity.shape == marks.shape, (run.equity.shape, marks.shape)
    np.testing.assert_allclose(run.equity, marks, rtol=rel, atol=1e-9)


def assert_accounting(run, initial_cash: float):
    """Final equity = initial cash + Σ pnl; cash >= 0 at every mark; every position closed."""
    eq = run.equity
    assert (eq[:, 1] >= 0).all()
    if len(eq):
        assert eq[-1, 3] == 0
        assert math.isclose(eq[-1, 0], initial_cash + float(run.trades["pnl"].sum()),
                            rel_tol=1e-9, abs_tol=1e-6)
        np.testing.assert_allclose(eq[:, 0], eq[:, 1] + eq[:, 2], rtol=1e-12)


def simulate_both(panel, picks, rows, *, options, window, fee_bps=10.0, slippage_bps=0.0,
                  exits=None, atr=None, weights=None, max_exit_delay=None):
    from core_engine.backtest.portfolio import sizing_weights
    from core_engine.backtest.simulate import resolve_exit_distances

    if weights is None:
        weights = sizing_weights(options.sizing_or_default, picks, 3)
    run = simulate_portfolio(panel, picks, rows, window_candles=window, options=options,
                             weights=weights, fee_bps=fee_bps, slippage_bps=slippage_bps,
                             exits=exits, atr=atr, max_exit_delay=max_exit_delay)
    cfg = reference_config(options, window=window, fee_bps=fee_bps, slippage_bps=slippage_bps,
                           max_exit_delay=max_exit_delay, exits=exits)
    acc = reference_run(panel, picks, rows, weights, resolve_exit_distances(exits, picks, atr),
                        cfg)
    return run, acc
