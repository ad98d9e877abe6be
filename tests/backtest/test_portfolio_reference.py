"""Portfolio mode equals the independent plain-Python reference (tests/backtest/
portfolio_reference.py): every mark (rel 1e-9), every trade, every blocked pick — on
hypothesis-made panels with gaps and on real data, for combinations of sizing, every rule
and every exit rule. The accounting identities are checked on every run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core_engine.backtest import walk_forward
from core_engine.backtest._portfolio_kernels import (
    BLOCK_REASON_NAMES,
    PORTFOLIO_EXIT_REASON_NAMES,
)
from core_engine.backtest.inputs import allocate_at, compute_inputs, warm_up
from core_engine.backtest.portfolio import PortfolioOptions, sizing_weights
from core_engine.backtest.schedule import decision_schedule
from core_engine.backtest.simulate import Picks
from core_engine.data.panel import Panel
from core_engine.risk import (
    EqualSlots,
    ExitRules,
    FixedFraction,
    PortfolioRules,
    RiskPerTrade,
    TopNEqual,
)
from core_engine.strategies import MacdRsiConfluence

from .portfolio_helpers import assert_accounting, assert_same_as_reference, simulate_both

EXITS = [None, ExitRules(stop_loss_pct=1.0), ExitRules(take_profit_pct=1.0),
         ExitRules(trailing_pct=0.8),
         ExitRules(stop_loss_pct=1.5, take_profit_pct=2.0, trailing_pct=1.0),
         ExitRules(stop_loss_pct=1.0, stop_fill="low"),
         ExitRules(trailing_pct=0.7, take_profit_pct=1.5, stop_fill="range",
                   stop_fill_range=0.3)]


def random_panel(seed: int, n_times: int, n_symbols: int, gaps: int, delist: int) -> Panel:
    """Random walks with wicks and open gaps, ``gaps`` outages and a tail delisting."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_times, n_symbols)), 0))
    open_ = np.vstack([close[:1], close[:-1]]) * (1 + rng.normal(0, 0.003, close.shape))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.005, close.shape)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.005, close.shape)))
    fields = (open_, high, low, close)
    for _ in range(gaps):
        a = int(rng.integers(0, n_times))
        b, j = a + int(rng.integers(1, 20)), int(rng.integers(0, n_symbols))
        for arr in fields:
            arr[a:b, j] = np.nan
    if delist:
        for arr in fields:
            arr[-delist:, 0] = np.nan
    index = pd.date_range("2021-03-01 20:00", periods=n_times, freq="5min", tz="UTC")
    return Panel(index, tuple(f"S{j}/USDT" for j in range(n_symbols)), "5m", *fields,
                 np.where(np.isnan(close), np.nan, 1.0))


def random_picks(rng, rows, n_symbols: int) -> Picks:
    pick_rows, pick_cols = [], []
    for row in rows:
        chosen = rng.choice(n_symbols, int(rng.integers(0, min(n_symbols, 4) + 1)),
                            replace=False)
        pick_rows += [row] * len(chosen)
        pick_cols += [int(c) for c in chosen]
    n = len(pick_rows)
    return Picks(rows=np.array(pick_rows, dtype=np.int64),
                 cols=np.array(pick_cols, dtype=np.int64), weights=np.ones(n),
                 ranks=np.ones(n), scores=np.zeros(n))


@st.composite
def rule_sets(draw) -> PortfolioRules:
    params = {
        "cooldown": draw(st.sampled_from([None, "15m", "1h"])),
        "max_entries_per_day": draw(st.sampled_from([None, 3, 10])),
        "daily_loss_limit_pct": draw(st.sampled_from([None, 1.0, 3.0])),
        "max_drawdown_pct": draw(st.sampled_from([None, 2.0, 5.0])),
        "max_exposure_pct": draw(st.sampled_from([None, 20.0, 50.0])),
        "max_gross_exposure_pct": draw(st.sampled_from([None, 60.0, 100.0])),
        "max_correlation": draw(st.sampled_from([None, 0.2, 0.5])),
        "correlation_lookback": draw(st.sampled_from([5, 30])),
        "min_order_value": draw(st.sampled_from([0.0, 100.0, 3000.0])),
    }
    if params["daily_loss_limit_pct"] is not None:
        params["liquidate_on_daily_loss"] = draw(st.booleans())
    if params["max_drawdown_pct"] is not None:
        params["liquidate_on_drawdown"] = draw(st.booleans())
        params["drawdown_halt_for"] = draw(st.sampled_from([None, "30m"]))
    return PortfolioRules(**params)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_times=st.integers(60, 320),
       n_symbols=st.integers(2, 5), gaps=st.integers(0, 8), delist=st.sampled_from([0, 0, 7]),
       window=st.integers(1, 12), shift=st.integers(1, 12), exits=st.sampled_from(EXITS),
       rules=rule_sets(), sizing_choice=st.integers(0, 3),
       hold=st.sampled_from(["window", "until_dropped"]), rebalance=st.booleans(),
       slippage_bps=st.sampled_from([0.0, 5.0]), max_exit_delay=st.sampled_from([None, 0, 2]))
def test_kernel_equals_reference_on_random_panels(seed, n_times, n_symbols, gaps, delist,
                                                  window, shift, exits, rules, sizing_choice,
                                                  hold, rebalance, slippage_bps,
                                                  max_exit_delay):
    panel = random_panel(seed, n_times, n_symbols, gaps, delist)
    rng = np.random.default_rng(seed + 1)
    rows = np.arange(int(rng.integers(1, 10)), n_times - window - 1, shift, dtype=np.int64)
    picks = random_picks(rng, rows, n_symbols)
    has_stop = exits is not None and (exits.stop_loss_pct or exits.trailing_pct)
    sizing = [EqualSlots(), FixedFraction(pct=40, lot_step=0.01),
              EqualSlots(slots=2, max_position_pct=30),
              RiskPerTrade(risk_pct=0.5) if has_stop else FixedFraction(pct=70)][sizing_choice]
    options = PortfolioOptions(initial_cash=10_000.0, sizing=sizing, rules=rules, hold=hold,
                               rebalance=rebalance)
    run, acc = simulate_both(panel, picks, rows, options=options, window=window,
                             slippage_bps=slippage_bps, exits=exits,
                             max_exit_delay=max_exit_delay)
    assert_same_as_reference(run, acc, PORTFOLIO_EXIT_REASON_NAMES, BLOCK_REASON_NAMES)
    assert_accounting(run, 10_000.0)


def _engine_picks(panel, strategy, *, window_c, shift_c, exits, max_positions=3):
    """The picks walk_forward makes, from the public building blocks."""
    allocator = TopNEqual(n=max_positions)
    sched = decision_schedule(panel.index.asi8, panel.step_ns, window_ns=window_c * 300 * 10**9,
                              shift_ns=shift_c * 300 * 10**9,
                              lookback=warm_up(strategy, (), allocator, exits),
                              entry_open=panel.open)
    inputs = compute_inputs(panel, strategy, allocator=allocator, exits=exits, rows=sched.rows)
    return sched, allocate_at(inputs, sched.rows, allocator, panel.symbols), inputs


REAL_CASES = {
    "baseline, equal slots": (
        {}, None),
    "stops, risk sizing, every rule, until_dropped": (
        {"sizing": RiskPerTrade(risk_pct=1.0, lot_step=0.001), "hold": "until_dropped",
         "rules": PortfolioRules(cooldown="1h", max_entries_per_day=12,
                                 daily_loss_limit_pct=2.0, liquidate_on_daily_loss=True,
                                 max_drawdown_pct=6.0, drawdown_halt_for="12h",
                                 liquidate_on_drawdown=True, max_exposure_pct=40.0,
                                 max_gross_exposure_pct=90.0, max_correlation=0.8,
                                 min_order_value=50.0)},
        ExitRules(stop_loss_pct=2.0, take_profit_pct=3.0, trailing_pct=1.5)),
    "rebalance, fixed fraction, low stop fill": (
        {"sizing": FixedFraction(pct=45), "rebalance": True, "slippage_bps": 5.0},
        ExitRules(stop_loss_pct=1.5, stop_fill="low")),
}


@pytest.mark.parametrize("period", ["feb", "may"])
@pytest.mark.parametrize("case", list(REAL_CASES))
def test_walk_forward_equals_reference_on_real_data(real_feb, real_may, period, case):
    panel = real_feb if period == "feb" else real_may
    kwargs, exits = REAL_CASES[case]
    kwargs = dict(kwargs)
    slip = kwargs.pop("slippage_bps", 0.0)
    strategy = MacdRsiConfluence()
    result = walk_forward(panel, strategy, window="2h", shift="1h", exits=exits,
                          slippage_bps=slip, mode="portfolio", **kwargs)
    sched, picks, inputs = _engine_picks(panel, strategy, window_c=24, shift_c=12, exits=exits)
    options = PortfolioOptions(**kwargs)
    weights = sizing_weights(options.sizing_or_default, picks, 3)
    run, acc = simulate_both(panel, picks, sched.rows, options=options, window=24,
                             slippage_bps=slip, exits=exits, atr=inputs["atr"], weights=weights)
    assert_same_as_reference(run, acc, PORTFOLIO_EXIT_REASON_NAMES, BLOCK_REASON_NAMES)
    assert_accounting(run, options.initial_cash)
    # the result walk_forward returns is that run
    np.testing.assert_allclose(result.equity["equity"].to_numpy(), run.equity[:, 0], rtol=1e-12)
    assert len(result.trades) == len(acc.trades) and len(result.blocked) == len(acc.blocked)
    assert list(result.blocked["reason"]) == [reason for _, reason in acc.blocked]
    m = result.metrics
    assert m["fees_paid"] == pytest.approx(result.trades["fees"].sum(), rel=1e-12)
    assert m["final_equity"] == pytest.approx(10_000.0 + result.trades["pnl"].sum(), rel=1e-9)
    assert (result.equity["cash"] >= 0).all()
    if case != "baseline, equal slots":
        assert len(result.blocked) > 0
