"""Parity: replay(RankingTrader(s, ...)) equals the portfolio mode of issue 10, trade for
trade (symbol, times, quantity, prices to 1e-9, exit reason), blocked pick for blocked pick,
and candle by candle in equity, for every built-in strategy, with stops/targets/trailing,
both hold modes and the portfolio rules the event trader supports, on the bundled real
sample (with its exchange gaps). The reference is the independent simulator of
``portfolio_reference.py``."""

from __future__ import annotations

import numpy as np
import pytest

from core_engine.backtest.inputs import allocate_at, compute_inputs, warm_up
from core_engine.backtest.schedule import decision_schedule
from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.risk import ExitRules, PortfolioRules, TopNEqual
from core_engine.strategies import get_strategy
from core_engine.trading import RankingTrader, SimBroker, replay
from tests.trading import portfolio_reference as ref

HOUR = 3600 * 10**9


@pytest.fixture(scope="module")
def week():
    return Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT", "SOL/USDT", "NKN/USDT",
                                          "ADA/USDT"], "2021-04-17", "2021-04-27"), "5m")


def reference(panel, strategy, exits, *, hold, rules=None, fee_bps=10, slippage_bps=5):
    alloc = TopNEqual(n=3)
    sched = decision_schedule(panel.index.asi8, panel.step_ns, window_ns=4 * HOUR,
                              shift_ns=2 * HOUR, lookback=warm_up(strategy, (), alloc, exits),
                              entry_open=panel.open)
    inputs = compute_inputs(panel, strategy, allocator=alloc, exits=exits)
    picks = allocate_at(inputs, sched.rows, alloc, panel.symbols)

    def pct(v):
        return None if v is None else v / 100.0

    kw = {}
    if rules is not None:
        kw = dict(cooldown=None if rules.cooldown is None else rules.duration_ns("cooldown"),
                  max_per_day=rules.max_entries_per_day, min_value=rules.min_order_value,
                  max_exposure=pct(rules.max_exposure_pct),
                  max_gross=pct(rules.max_gross_exposure_pct))
    e = exits or ExitRules()
    return ref.simulate(panel, picks, sched.rows, window=sched.window_candles,
                        fee=fee_bps / 1e4, slip=slippage_bps / 1e4, hold=hold,
                        stop=pct(e.stop_loss_pct), target=pct(e.take_profit_pct),
                        trail=pct(e.trailing_pct), **kw)


def assert_parity(result, expected):
    trades, blocked, equity = expected
    got = result.trades.sort_values(["decision_time", "symbol"]).reset_index(drop=True)
    want = trades.sort_values(["decision_time", "symbol"]).reset_index(drop=True)
    assert len(got) == len(want) > 0
    for col in ("symbol", "decision_time", "entry_time", "exit_time", "exit_reason"):
        assert list(got[col]) == list(want[col]), col
    for col in ("quantity", "entry_price", "exit_price"):
        np.testing.assert_allclose(got[col], want[col], rtol=1e-9, err_msg=col)
    b = result.blocked
    assert list(b["symbol"]) == list(blocked.get("symbol", [])) and \
        list(b["reason"]) == list(blocked.get("reason", []))
    mine = result.equity.set_index("time")["equity"]
    theirs = equity.set_index("time")["equity"]
    common = theirs.index.intersection(mine.index)
    assert len(common) > 0.9 * len(theirs)
    np.testing.assert_allclose(mine[common], theirs[common], rtol=1e-9)


EXITS = ExitRules(stop_loss_pct=1.5, take_profit_pct=2.5, trailing_pct=1.0)


@pytest.mark.parametrize("name", ["macd_rsi_confluence", "momentum_rank", "breakout",
                                  "ma_crossover"])
def test_every_builtin_strategy_with_stops_targets_trailing(week, name):
    strategy = get_strategy(name)
    hold = "until_dropped" if name == "ma_crossover" else "window"
    result = replay(RankingTrader(strategy, exits=EXITS, hold=hold), week,
                    SimBroker(fee_bps=10, slippage_bps=5))
    assert_parity(result, reference(week, strategy, EXITS, hold=hold))


@pytest.mark.parametrize("hold", ["window", "until_dropped"])
def test_time_exits_only(week, hold):
    strategy = get_strategy("momentum_rank")
    result = replay(RankingTrader(strategy, hold=hold), week, SimBroker(fee_bps=10,
                                                                        slippage_bps=5))
    assert_parity(result, reference(week, strategy, None, hold=hold))


@pytest.mark.parametrize("rules", [
    PortfolioRules(cooldown="4h"), PortfolioRules(max_entries_per_day=4),
    PortfolioRules(max_exposure_pct=20, min_order_value=1_999.9),
    PortfolioRules(max_gross_exposure_pct=50), PortfolioRules(min_order_value=3_000),
    PortfolioRules(cooldown="2h", max_gross_exposure_pct=80, min_order_value=100),
], ids=lambda r: ",".join(r.active))
def test_portfolio_rules_block_the_same_picks(week, rules):
    strategy = get_strategy("momentum_rank")
    result = replay(RankingTrader(strategy, exits=EXITS, rules=rules), week,
                    SimBroker(fee_bps=10, slippage_bps=5))
    expected = reference(week, strategy, EXITS, hold="window", rules=rules)
    assert len(expected[1]) > 0  # the rule did block something
    assert_parity(result, expected)
