"""Portfolio-mode sweeps: sizing and rule parameters, account metrics equal independent
walk_forward(mode="portfolio") calls, daily account returns, resume. (The process pool and
Dask run a portfolio sweep in test_sweep.py and test_dask.py.)"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from core_engine.backtest import walk_forward
from core_engine.errors import ConfigError
from core_engine.optimize import LocalExecutor, Sweep, probabilistic_sharpe_ratio
from core_engine.risk import EqualSlots, ExitRules, FixedFraction, PortfolioRules
from core_engine.strategies import MacdRsiConfluence

from .helpers import random_walk_panel

INLINE = LocalExecutor(1)
SPACE = {"rules.cooldown": ["1h", "6h"], "sizing.pct": [20.0, 45.0],
         "exits.stop_loss_pct": [None, 1.0]}


@pytest.fixture(scope="module")
def panel():
    return random_walk_panel(n_symbols=5, n_candles=288 * 12, seed=17)


@pytest.fixture(scope="module")
def sweep(panel):
    return Sweep(MacdRsiConfluence(max_atr_pct=2.0), SPACE, panel, mode="portfolio",
                 sizing=FixedFraction(pct=10.0), rules=PortfolioRules(max_entries_per_day=20),
                 initial_cash=5_000.0)


@pytest.fixture(scope="module")
def inline(sweep):
    return sweep.run(executor=INLINE, progress=False)


def flat(metrics: dict) -> dict:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            prefix = "exit" if key == "exit_reasons" else key
            out.update({f"{prefix}_{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def same(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def daily_returns_reference(equity: pd.DataFrame) -> pd.Series:
    """Plain pandas: a UTC day's value is its last mark at or before the next midnight; the
    first day's return is from the first mark (the initial cash)."""
    values = pd.Series(equity["equity"].to_numpy(),
                       index=pd.DatetimeIndex(equity["time"]) - pd.Timedelta(1, "ns"))
    closes = values.iloc[1:].groupby(values.index[1:].floor("D")).last()
    previous = np.concatenate([[values.iloc[0]], closes.to_numpy()[:-1]])
    return pd.Series(closes.to_numpy() / previous - 1.0, index=closes.index)


def test_the_issue_example_builds_and_sizing_needs_a_base_with_its_field(panel):
    sweep = Sweep(MacdRsiConfluence, {"rules.cooldown": ["1h", "2h"], "sizing.pct": [20.0]},
                  panel, mode="portfolio", sizing=FixedFraction(pct=10.0))
    specs = [sweep.build(p) for p in sweep.points()]
    assert [s.backtest["rules"] for s in specs] == [PortfolioRules(cooldown="1h"),
                                                    PortfolioRules(cooldown="2h")]
    assert {s.backtest["sizing"] for s in specs} == {FixedFraction(pct=20.0)}
    # without a base, sizing.* fields are those of walk_forward's default EqualSlots()
    slots = Sweep(MacdRsiConfluence, {"sizing.slots": [2, 4]}, panel, mode="portfolio")
    assert [slots.build(p).backtest["sizing"] for p in slots.points()] == [
        EqualSlots(slots=2), EqualSlots(slots=4)]
    with pytest.raises(ConfigError, match=r"EqualSlots has no field 'pct'.*"
                                          r"sizing=FixedFraction\(pct=10\)"):
        Sweep(MacdRsiConfluence, {"sizing.pct": [20.0]}, panel, mode="portfolio")
    # a point that sets the whole argument is the base of its own fields
    both = Sweep(MacdRsiConfluence, {"sizing": [FixedFraction(pct=10.0, max_position_pct=30.0)],
                                     "sizing.pct": [25.0]}, panel, mode="portfolio",
                 sizing=FixedFraction(pct=10.0))
    assert both.build(both.points()[0]).backtest["sizing"] == FixedFraction(
        pct=25.0, max_position_pct=30.0)
    with pytest.raises(ConfigError, match="one mode"):
        Sweep(MacdRsiConfluence, {"mode": ["slices", "portfolio"]}, panel)


def test_portfolio_sweep_equals_independent_walk_forward_calls(panel, sweep, inline):
    table = inline.table
    assert len(table) == 8 and inline.n_trials == 8 and table["error"].isna().all()
    assert table["final_equity"].nunique() == 8  # sizing, rules and stops all matter
    assert inline.returns.index.name == "day"
    for cid, row in table.iterrows():
        spec = sweep.build(json.loads(row["params"]))
        assert spec.config_id == cid
        expected = walk_forward(panel, spec.strategy, **spec.backtest)
        assert expected.config["mode"] == "portfolio"
        for key, value in flat(expected.metrics).items():
            assert same(value, row[key]), (cid, key, value, row[key])
        reference = daily_returns_reference(expected.equity)
        kept = inline.returns[cid].dropna()
        pd.testing.assert_index_equal(kept.index, reference.index, check_names=False)
        np.testing.assert_allclose(kept.to_numpy(), reference.to_numpy(), rtol=1e-13, atol=0)
        # the sweep's per-period returns are the ones the account's Sharpe is computed from
        assert row["sharpe"] == pytest.approx(
            kept.mean() / kept.std(ddof=1) * math.sqrt(365.0), rel=1e-12)


def test_portfolio_sweep_resumes_and_reports_on_daily_returns(sweep, inline, tmp_path):
    path = tmp_path / "portfolio.parquet"
    first = sweep.run(executor=INLINE, results=path, progress=False)
    again = sweep.run(executor=INLINE, results=path, progress=False)
    assert (first.evaluated, again.evaluated, again.skipped) == (8, 0, 8)
    pd.testing.assert_frame_equal(first.table.drop(columns="elapsed_s"),
                                  again.table.drop(columns="elapsed_s"))
    pd.testing.assert_frame_equal(inline.returns, again.returns)
    report = again.overfitting_report(n_blocks=4)
    best = again.returns[again.best_config_id].dropna()
    # daily account returns do not overlap: every day is one observation, 365 a year
    assert report.n_obs == len(best) and report.periods_per_year == 365.0
    assert report.psr == pytest.approx(probabilistic_sharpe_ratio(best), rel=1e-12)
    assert report.pbo.n_periods == len(again.returns.dropna())


def test_a_swept_stop_with_risk_per_trade_sizing(panel):
    """RiskPerTrade sizes from the stop distance: sweeping the stop changes the sizes."""
    from core_engine.risk import RiskPerTrade

    sweep = Sweep(MacdRsiConfluence(max_atr_pct=2.0), {"exits.stop_loss_pct": [0.8, 2.0],
                                                      "sizing.risk_pct": [0.5, 1.0]},
                  panel, mode="portfolio", sizing=RiskPerTrade(risk_pct=1.0),
                  exits=ExitRules(take_profit_pct=3.0))
    result = sweep.run(executor=INLINE, progress=False)
    for cid, row in result.table.iterrows():
        spec = sweep.build(json.loads(row["params"]))
        expected = walk_forward(panel, spec.strategy, **spec.backtest)
        assert row["final_equity"] == expected.metrics["final_equity"], cid
        assert row["fees_paid"] == expected.metrics["fees_paid"], cid
    assert result.table["fees_paid"].nunique() == 4
