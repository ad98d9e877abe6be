"""Issue 9 §1 "Outages and discontinuities" (backtest part): every trade held past its window
is flagged and counted, and ``max_exit_delay`` caps the wait."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_engine.backtest import walk_forward
from core_engine.backtest.simulate import Picks, simulate_picks
from core_engine.data import Panel
from core_engine.errors import ConfigError
from core_engine.strategies.base import Strategy

from .test_simulate import assert_matches_reference, every_symbol_picks, reference_for


class AlwaysLong(Strategy):
    name = "test_outage_always_long"
    row_local = True

    def score(self, features, panel):
        return np.where(np.isnan(panel.close), np.nan, 1.0)


def redenominated_panel() -> Panel:
    """One token at ~1.0 that comes back ×1000 after a two-day outage (a redenomination)."""
    index = pd.date_range("2021-01-01", "2021-01-06", freq="5min", tz="UTC", inclusive="left")
    rng = np.random.default_rng(3)
    price = np.exp(np.cumsum(rng.normal(0, 0.002, len(index))))
    gap = (index >= pd.Timestamp("2021-01-02 03:00", tz="UTC")) & \
        (index < pd.Timestamp("2021-01-04 03:00", tz="UTC"))
    price[index >= pd.Timestamp("2021-01-04 03:00", tz="UTC")] *= 1000.0
    frame = pd.DataFrame({"timestamp": index, "open": price, "high": price * 1.001,
                          "low": price * 0.999, "close": price, "volume": 1.0})[~gap]
    return Panel.from_frames({"RDN/USDT": frame.reset_index(drop=True)}, "5m")


def test_outages_and_discontinuities_redenomination_trade_is_flagged_and_capped():
    panel = redenominated_panel()
    kwargs = {"window": "4h", "shift": "2h", "fee_bps": 0, "max_positions": 1}
    held = walk_forward(panel, AlwaysLong(), **kwargs)
    trades = held.trades
    late = trades[trades["exit_delayed_by"] > 0]
    # the 00:00 and 02:00 windows end inside the outage: both held two days, ×1000
    assert late["decision_time"].dt.strftime("%d %H:%M").tolist() == ["02 00:00", "02 02:00"]
    assert (late["exit_time"] == pd.Timestamp("2021-01-04 03:00", tz="UTC")).all()
    # due out at 04:00 and 06:00 on the 2nd, out at 03:00 on the 4th: 47 h and 45 h late
    assert late["exit_delayed_by"].tolist() == [47 * 12, 45 * 12]
    assert (late["return_pct"] > 50_000).all()
    dq = held.data_quality
    assert dq["trades_exit_delayed"] == 2 and dq["exit_delay_candles_max"] == 564
    assert dq["trades_exit_delay_capped"] == 0
    assert "Exits held past the window" in held.summary()
    assert held.config["max_exit_delay"] is None

    capped = walk_forward(panel, AlwaysLong(), max_exit_delay="1h", **kwargs)
    ct = capped.trades.set_index("decision_time")
    for when in ("2021-01-02 00:00", "2021-01-02 02:00"):
        trade = ct.loc[pd.Timestamp(when, tz="UTC")]
        # out at the close of 02:55, the last candle before the gap, flagged
        assert trade["exit_time"] == pd.Timestamp("2021-01-02 03:00", tz="UTC")
        frame = panel.frame("RDN/USDT").set_index("timestamp")
        assert trade["exit_price"] == frame.loc[pd.Timestamp("2021-01-02 02:55", tz="UTC"), "close"]
        assert trade["exit_delay_capped"] and trade["exit_at_last_close"]
        assert trade["exit_delayed_by"] == 0 and abs(trade["return_pct"]) < 5
    assert capped.data_quality["trades_exit_delay_capped"] == 2
    assert capped.data_quality["trades_exit_delayed"] == 0
    assert capped.config["max_exit_delay"] == 12
    assert "max_exit_delay 12 candles" in capped.summary()
    # the same cap in candles; a longer cap lets the trade wait
    same = walk_forward(panel, AlwaysLong(), max_exit_delay=np.int64(12), **kwargs)
    pd.testing.assert_frame_equal(same.trades, capped.trades)
    patient = walk_forward(panel, AlwaysLong(), max_exit_delay="3d", **kwargs)
    pd.testing.assert_frame_equal(patient.trades, held.trades)


def test_outages_and_discontinuities_real_outage_delays_are_counted(real_feb):
    """2021-02-11 03:45..04:55 is missing on Binance: the 02:00 windows (due out at 04:00)
    wait 12 candles for the 05:00 open; with max_exit_delay=6 they leave at the 03:40 close."""
    kwargs = {"window": "2h", "shift": "1h", "max_positions": 4}
    result = walk_forward(real_feb, AlwaysLong(), **kwargs)
    trades = result.trades
    late = trades[trades["exit_delayed_by"] > 0]
    assert (late["decision_time"] == pd.Timestamp("2021-02-11 02:00", tz="UTC")).all()
    assert len(late) == 4 and (late["exit_delayed_by"] == 12).all()
    assert result.data_quality["trades_exit_delayed"] == 4
    capped = walk_forward(real_feb, AlwaysLong(), max_exit_delay=6, **kwargs).trades
    moved = capped[capped["exit_delay_capped"]]
    assert len(moved) == 4
    assert (moved["exit_time"] == pd.Timestamp("2021-02-11 03:45", tz="UTC")).all()
    # every other trade is unchanged
    rest = capped[~capped["exit_delay_capped"]].drop(columns="exit_delay_capped")
    pd.testing.assert_frame_equal(
        rest.reset_index(drop=True),
        trades[trades["exit_delayed_by"] == 0].drop(columns="exit_delay_capped")
        .reset_index(drop=True))


@pytest.mark.parametrize("max_delay", [None, 0, 5, 14, 15])
def test_outages_and_discontinuities_kernel_equals_reference_on_the_real_outage(real_feb,
                                                                              max_delay):
    gap = int(np.flatnonzero(np.isnan(real_feb.open).all(axis=1))[0])
    near = every_symbol_picks(real_feb, gap - 70, 1, 48)
    keep = near.rows < gap + 3
    picks = Picks(rows=near.rows[keep], cols=near.cols[keep], weights=near.weights[keep],
                  ranks=near.ranks[keep], scores=near.scores[keep])
    records = simulate_picks(real_feb, picks, window_candles=48, fee_bps=10,
                             max_exit_delay=max_delay)
    assert_matches_reference(records, reference_for(real_feb, picks, 48, 1e-3, 0.0,
                                                    _no_exits(), None, max_delay))
    capped = int(records["exit_delay_capped"].sum())
    assert (capped > 0) == (max_delay is not None and max_delay < 15)


def _no_exits():
    from core_engine.risk import ExitRules

    return ExitRules()


@pytest.mark.parametrize("value", [-1, 1.5, True, "-1h", "7m", "soon"])
def test_outages_and_discontinuities_bad_max_exit_delay(real_feb, value):
    with pytest.raises(ConfigError, match="'max_exit_delay' parameter of walk_forward"):
        walk_forward(real_feb, AlwaysLong(), max_exit_delay=value)
