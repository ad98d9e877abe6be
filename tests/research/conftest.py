"""Fixtures of the research tests: a real slice of the bundled sample and runs on it."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from core_engine.backtest import walk_forward  # noqa: E402
from core_engine.data import Panel, load_sample  # noqa: E402
from core_engine.risk import ExitRules  # noqa: E402
from core_engine.strategies import MacdRsiConfluence, MomentumRank  # noqa: E402

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "ADA/USDT", "NKN/USDT"]


@pytest.fixture(scope="session")
def sample_panel() -> Panel:
    """Five real Binance symbols, 5m, March 2021 (8,928 candles each, a maintenance gap)."""
    return Panel.from_frames(load_sample(SYMBOLS, "2021-03-01", "2021-04-01"), "5m")


@pytest.fixture(scope="session")
def exits() -> ExitRules:
    return ExitRules(stop_loss_pct=1.2, take_profit_pct=2.5, trailing_pct=2)


@pytest.fixture(scope="session")
def baseline_result(sample_panel, exits):
    """The baseline with stop, target and trailing stop: every exit reason occurs."""
    return walk_forward(sample_panel, MacdRsiConfluence(), window="4h", shift="2h", fee_bps=10,
                        exits=exits)


@pytest.fixture(scope="session")
def momentum_result(sample_panel):
    return walk_forward(sample_panel, MomentumRank(), window="4h", shift="2h", fee_bps=10)
