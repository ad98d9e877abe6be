"""Randomized parity (issue 11): replay(RankingTrader(s, ...)) equals
walk_forward(s, mode="portfolio", ...) trade for trade, blocked pick for blocked pick and mark
for mark on drawn configurations (every built-in strategy and its parameters, gates,
allocators, exits and stop fills, sizing objects, portfolio rules, hold modes, rebalancing,
exit-delay caps, fees and slippage, start/end inside or past the data, symbol subsets and
windows of real data with gaps; see ``parity.py``). A few dozen draws here; the soak run is
``python -m tests.trading.fuzz_parity``."""

from __future__ import annotations

import random
import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.trading.parity import check, draw_config


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_replay_equals_walk_forward_on_drawn_configurations(seed):
    config = draw_config(random.Random(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short windows: "no decision time" and the like
        outcome = check(config)
    assert outcome.rejected in (None, "ConfigError")


def test_the_draws_cover_every_dimension():
    """The drawing reaches every strategy, pool, hold mode, sizing, allocator and rule, and
    start/end inside and past the data (so the property test is not vacuous)."""
    configs = [draw_config(random.Random(seed)) for seed in range(400)]
    assert {c.strategy for c in configs} == {"macd_rsi_confluence", "momentum_rank",
                                             "breakout", "ma_crossover"}
    assert len({c.data.pool for c in configs}) == 7
    assert {c.trader["hold"] for c in configs} == {"window", "until_dropped"}
    sizing = {type(c.trader["sizing"]).__name__ for c in configs}
    assert sizing >= {"NoneType", "EqualSlots", "FixedFraction", "RiskPerTrade",
                      "ConfidenceSizing", "InverseVolatilitySizing"}
    assert {type(c.trader["allocator"]).__name__ for c in configs} >= {
        "TopNEqual", "ScoreProportional", "InverseVolatility", "ConfidenceWeighted"}
    rules = [c.trader["rules"] for c in configs if c.trader["rules"] is not None]
    assert set().union(*(r.active for r in rules)) >= {
        "cooldown", "max_entries_per_day", "daily_loss_limit_pct", "max_drawdown_pct",
        "max_exposure_pct", "max_gross_exposure_pct", "max_correlation", "min_order_value"}
    assert any(r.liquidate_on_daily_loss for r in rules)
    assert any(r.liquidate_on_drawdown for r in rules)
    assert any(c.start is not None for c in configs) and any(c.end is not None
                                                               for c in configs)
    assert any(c.data.hole is not None for c in configs)
    assert any(c.data.days <= 1 for c in configs)
    assert any(c.trader["rebalance"] for c in configs)
    assert any(c.trader["max_exit_delay"] is not None for c in configs)
    assert any(c.maker_taker for c in configs)
