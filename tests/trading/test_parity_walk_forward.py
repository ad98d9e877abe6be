"""Parity with the engine itself: replay(RankingTrader(s, ...)) equals
walk_forward(s, mode="portfolio", ...) trade for trade (symbol, entry/exit time, quantity,
prices to 1e-9, exit reason), blocked pick for blocked pick, and candle by candle in equity,
for every built-in strategy, with stops/targets/trailing and the portfolio rules and sizing
objects the event trader supports, on the bundled real sample around two exchange outages."""

from __future__ import annotations

import numpy as np
import pytest

from core_engine.backtest import walk_forward
from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.risk import ExitRules
from core_engine.risk.rules import PortfolioRules
from core_engine.risk.sizing import EqualSlots, FixedFraction
from core_engine.strategies import get_strategy
from core_engine.trading import RankingTrader, SimBroker, replay

EXITS = ExitRules(stop_loss_pct=1.5, take_profit_pct=2.5, trailing_pct=1.0)


@pytest.fixture(scope="module")
def outages():
    # 2021-04-20 01:55-04:30 and 2021-04-25 04:00-08:45: Binance maintenance, no candles
    return Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT", "SOL/USDT", "NKN/USDT",
                                          "ADA/USDT"], "2021-04-18", "2021-04-27"), "5m")


def compare(panel, strategy, *, exits=EXITS, hold="window", sizing=None, rules=None):
    wf = walk_forward(panel, strategy, mode="portfolio", exits=exits, hold=hold, sizing=sizing,
                      rules=rules, fee_bps=10, slippage_bps=5)
    rp = replay(RankingTrader(strategy, exits=exits, hold=hold, sizing=sizing, rules=rules),
                panel, SimBroker(fee_bps=10, slippage_bps=5))
    want = wf.trades.sort_values(["decision_time", "rank"]).reset_index(drop=True)
    got = rp.trades.sort_values(["decision_time", "rank"]).reset_index(drop=True)
    assert len(got) == len(want) > 0
    for col in ("symbol", "decision_time", "entry_time", "exit_time", "exit_reason"):
        assert list(got[col]) == list(want[col]), col
    for col in ("quantity", "entry_price", "exit_price", "return_pct", "pnl", "fees"):
        np.testing.assert_allclose(got[col], want[col], rtol=1e-9, atol=1e-9, err_msg=col)
    assert list(rp.blocked["symbol"]) == list(wf.blocked["symbol"])
    assert list(rp.blocked["reason"]) == list(wf.blocked["reason"])
    mine = rp.equity.set_index("time")["equity"]
    theirs = wf.equity.set_index("time")["equity"]
    common = theirs.index.intersection(mine.index)
    assert len(common) > 0.9 * len(theirs)
    np.testing.assert_allclose(mine[common], theirs[common], rtol=1e-9)
    return wf


@pytest.mark.parametrize("name", ["macd_rsi_confluence", "momentum_rank", "breakout",
                                  "ma_crossover"])
def test_every_builtin_strategy(outages, name):
    hold = "until_dropped" if name == "ma_crossover" else "window"
    compare(outages, get_strategy(name), hold=hold)


@pytest.mark.parametrize("kw", [
    dict(rules=PortfolioRules(cooldown="4h", max_entries_per_day=6)),
    dict(rules=PortfolioRules(max_exposure_pct=25, max_gross_exposure_pct=50,
                              min_order_value=500)),
    dict(sizing=FixedFraction(pct=40, lot_step=0.001)),
    dict(sizing=EqualSlots(slots=2, max_position_pct=30), exits=None, hold="until_dropped"),
], ids=["cooldown+entries", "exposure+gross+min", "fixed+lot", "slots+until_dropped"])
def test_rules_and_sizing(outages, kw):
    wf = compare(outages, get_strategy("momentum_rank"), **kw)
    if "rules" in kw:
        assert len(wf.blocked) > 0
