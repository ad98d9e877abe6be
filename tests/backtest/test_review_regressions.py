"""Regressions for defects found in review: each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_engine.backtest import walk_forward
from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.errors import ConfigError
from core_engine.strategies import MacdRsiConfluence, MomentumRank


@pytest.fixture(scope="module")
def march():
    """Real candles around the 2021-03-06 01:55-03:30 Binance maintenance outage."""
    return Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT", "SOL/USDT", "ADA/USDT"],
                                         "2021-03-03", "2021-03-10"), "5m")


@pytest.mark.parametrize("strategy", [MacdRsiConfluence(), MomentumRank()], ids=repr)
def test_row_local_scoring_survives_a_skipped_first_gap(march, strategy):
    """The 02:00 decision has no entry candle (outage): the first gap between decision rows is
    two shifts, and row-local scoring must still score every decision row."""
    fast = walk_forward(march, strategy, start="2021-03-06 00:00")
    every_row = strategy.clone()
    every_row.row_local = False
    slow = walk_forward(march, every_row, start="2021-03-06 00:00")
    assert fast.data_quality["skipped_decision_times"]["no_entry_candle"] >= 1
    assert len(fast.trades) > 20
    pd.testing.assert_frame_equal(fast.trades, slow.trades)


def test_exit_candle_in_an_outage_waits_for_the_first_open_after_it():
    """Prices fall 50 % during an outage that swallows the exit candle: the trade must carry the
    loss (exit at the first open after the outage), not exit at the last close before it."""
    index = pd.date_range("2021-01-01", periods=24 * 12, freq="5min", tz="UTC")
    price = np.full(len(index), 100.0)
    price[index >= pd.Timestamp("2021-01-01 07:00", tz="UTC")] = 50.0
    frame = pd.DataFrame({"timestamp": index, "open": price, "high": price, "low": price,
                          "close": price, "volume": 1.0})
    outage = (index >= pd.Timestamp("2021-01-01 03:00", tz="UTC")) & \
        (index < pd.Timestamp("2021-01-01 07:00", tz="UTC"))
    panel = Panel.from_frames({"X/USDT": frame.loc[~outage].reset_index(drop=True)}, "5m")

    class AlwaysLong(MomentumRank):
        name = "test_always_long"
        row_local = False

        def score(self, features, panel):
            return np.where(np.isnan(panel.close), np.nan, 1.0)

    result = walk_forward(panel, AlwaysLong(length=1), window="2h", shift="2h", fee_bps=0,
                          max_positions=1, end="2021-01-01 10:00")
    trade = result.trades.set_index("decision_time").loc[pd.Timestamp("2021-01-01 02:00", tz="UTC")]
    assert trade["exit_time"] == pd.Timestamp("2021-01-01 07:00", tz="UTC")
    assert trade["return_pct"] == pytest.approx(-50.0)
    assert not trade["exit_at_last_close"]


def test_panel_off_the_epoch_grid_is_a_config_error(make_candles):
    frame = make_candles(300, timeframe="60m")
    good = Panel.from_frames({"A": frame}, "1h")
    shifted = Panel(good.index + pd.Timedelta("30min"), good.symbols, "1h", good.open, good.high,
                    good.low, good.close, good.volume)
    with pytest.raises(ConfigError, match="off that grid"):
        walk_forward(shifted, MomentumRank(length=3), window="2h", shift="2h")
