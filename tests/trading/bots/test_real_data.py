"""Every bot on real Binance candles (the bundled sample, a copy of the shared real data):
the orders and fills are internally consistent (no sell without a position, cash never
negative, P&L = Σ fills − fees + what is held at the last close, each order's fills add up),
the bot's own report agrees with the account, and ``check_trader`` finds no look-ahead."""

from __future__ import annotations

import functools
import time

import pandas as pd
import pytest

from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.testing import check_trader
from core_engine.trading import SimBroker, replay
from core_engine.trading.bots import (
    BreakoutTrader,
    CycleTrader,
    DCATrader,
    GridTrader,
    PriceTriggerTrader,
    ScalpTrader,
)
from tests.trading.bots.conftest import check_consistency

CASH = 10_000.0


@functools.cache
def sample(start: str, end: str) -> Panel:
    return Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT"], start, end), "5m")


CASES = {
    # the 2021-05-19 crash takes BTC out of the bottom of the grid: liquidated
    "grid": (lambda: GridTrader(low=42_000, high=60_000, levels=20, spacing="geometric",
                                amount_per_level=450, on_exit="liquidate"),
             "2021-05-10", "2021-05-24"),
    "dca": (lambda: DCATrader(amount=50, interval="daily", ma_length=288 * 7,
                              take_profit_pct=15), "2021-01-01", "2021-06-30"),
    "cycle": (lambda: CycleTrader(symbol="ETH/USDT", amount=2_000), "2021-05-01", "2021-05-22"),
    "triggers": (lambda: PriceTriggerTrader({
        "BTC/USDT": {"buy": 56_000, "amount": 3_000, "stop_loss": 50_000, "take_profit": 60_000},
        "ETH/USDT": {"buy": 4_000, "quantity": 1.0, "stop_loss": 3_300, "sell": 4_300}}),
        "2021-05-03", "2021-05-20"),
    "scalp": (lambda: ScalpTrader(amount=2_000), "2021-02-01", "2021-02-06"),
    "breakout": (lambda: BreakoutTrader(), "2021-02-01", "2021-02-15"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bot_on_real_data_is_consistent_and_causal(name):
    make, start, end = CASES[name]
    panel = sample(start, end)
    bot = make()
    started = time.perf_counter()
    result = replay(bot, panel, SimBroker(fee_bps=10, initial_cash=CASH))
    assert time.perf_counter() - started < 20  # a hang, not a benchmark
    check_consistency(result, panel, CASH)
    assert (result.orders.status == "rejected").sum() == 0
    change = result.metrics["final_equity"] - CASH
    last = {s: float(pd.Series(panel.close[:, panel.column(s)]).dropna().iloc[-1])
            for s in panel.symbols}
    if name == "grid":
        report = bot.report(last["BTC/USDT"])
        assert report["status"] == "stopped" and report["cycles"] > 10
        assert report["total_pnl"] == pytest.approx(change, rel=1e-9)
        assert result.orders.tag.iloc[-1] == "grid_exit"
    elif name == "dca":
        report = bot.report(last["BTC/USDT"])
        buys = result.fills[result.fills.side == "buy"]
        assert report["buys"] == len(buys) > 20 and report["skipped"] > 0
        assert (pd.DatetimeIndex(buys.time).normalize() == pd.DatetimeIndex(buys.time)).all()
        assert report["take_profits"] >= 1
        assert report["realized_pnl"] + report["unrealized_pnl"] == pytest.approx(change)
    elif name == "cycle":
        report = bot.report(last["ETH/USDT"])
        assert report["cycles"] >= 3
        assert report["realized_pnl"] + report["unrealized_pnl"] == pytest.approx(change)
    elif name == "triggers":
        fired = {s: [f["level"] for f in r["fired"]] for s, r in bot.report().items()}
        assert fired["BTC/USDT"][0] == "buy" and len(fired["BTC/USDT"]) == 2
        assert fired["ETH/USDT"][0] == "buy" and len(fired["ETH/USDT"]) == 2
    else:
        report = bot.report()
        assert report["entries"] >= 5
        held = 0.0 if report["position"] is None else \
            report["position"]["quantity"] * last["BTC/USDT"] - report["position"]["cost"]
        assert report["realized_pnl"] + held == pytest.approx(change)
    assert check_trader(bot, panel, n_times=3, broker=SimBroker(fee_bps=10,
                                                                  initial_cash=CASH))


SHORT = {  # three days around the 2021-05-19 crash
    "grid": lambda: GridTrader(low=30_000, high=50_000, levels=20, spacing="geometric",
                               amount_per_level=450, on_exit="liquidate"),
    "dca": lambda: DCATrader(amount=100, interval="4h", ma_length=48, take_profit_pct=3),
    "cycle": lambda: CycleTrader(symbol="ETH/USDT", amount=2_000, buy_drop_pct=3),
    "triggers": lambda: PriceTriggerTrader({
        "BTC/USDT": {"buy": 40_000, "amount": 3_000, "stop_loss": 35_000,
                     "take_profit": 41_000}}),
    "scalp": lambda: ScalpTrader(amount=2_000),
    "breakout": lambda: BreakoutTrader(),
}


@pytest.mark.parametrize("name", list(SHORT))
def test_bot_decides_alike_called_at_every_candle(name):
    """``replay(skip=False)`` calls ``on_bar`` at every candle: each bot keeps its own
    cadence and wake-ups, so the fills equal those of the skipping replay."""
    panel = sample("2021-05-18", "2021-05-21")
    fast = replay(SHORT[name](), panel, SimBroker(initial_cash=CASH))
    slow = replay(SHORT[name](), panel, SimBroker(initial_cash=CASH), skip=False)
    assert len(fast.fills) >= 2
    pd.testing.assert_frame_equal(fast.fills, slow.fills)
    pd.testing.assert_frame_equal(fast.orders, slow.orders)
