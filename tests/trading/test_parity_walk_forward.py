"""Parity with the engine itself: replay(RankingTrader(s, ...)) equals
walk_forward(s, mode="portfolio", ...) trade for trade (symbol, decision/entry/exit time,
quantity, prices, return, P&L and fees to 1e-9, exit reason), blocked pick for blocked pick,
and candle by candle in equity (with cash and exposure), on the bundled real sample around
its two exchange outages (2021-04-20 01:55-04:30, 2021-04-25 04:00-08:45) and on the real
February (outage 02-11 03:45-04:55) and May 2021 (the 19 May crash) slices.

One parametrised test per dimension (every built-in strategy, every exit rule, every
portfolio rule on its own, every sizing object, both hold modes with and without
rebalancing, the exit-delay cap and the stop fills), everything at once on each data set,
and the three cases where the two used to differ (the last decision time in an outage, a
replay ending in an outage, cash dust)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core_engine.backtest import walk_forward
from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.errors import ConfigError
from core_engine.risk import (
    ConfidenceSizing,
    EqualSlots,
    ExitRules,
    FixedFraction,
    InverseVolatilitySizing,
    PortfolioRules,
    RiskPerTrade,
)
from core_engine.strategies import Strategy
from core_engine.trading import RankingTrader, SimBroker, replay

DATA = Path(__file__).parents[1] / "data_files"
EXITS = ExitRules(stop_loss_pct=1.5, take_profit_pct=2.5, trailing_pct=1.0)
ALL_RULES = PortfolioRules(cooldown="2h", max_entries_per_day=8, daily_loss_limit_pct=1.5,
                           liquidate_on_daily_loss=True, max_drawdown_pct=4.0,
                           drawdown_halt_for="12h", liquidate_on_drawdown=True,
                           max_exposure_pct=45, max_gross_exposure_pct=90,
                           max_correlation=0.7, correlation_lookback=48, min_order_value=20)


@pytest.fixture(scope="module")
def sample():
    return Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT", "SOL/USDT", "NKN/USDT",
                                          "ADA/USDT"], "2021-04-18", "2021-04-27"), "5m")


def real(month: str) -> Panel:
    frames = {}
    for base in ("BTC", "ETH", "SOL", "NKN"):
        frame = pd.read_parquet(DATA / f"{base}_USDT-5m-2021{month}.parquet")
        frames[f"{base}/USDT"] = frame
    return Panel.from_frames(frames, "5m")


@pytest.fixture(scope="module")
def feb():
    return real("feb")


@pytest.fixture(scope="module")
def may():
    return real("may")


def compare(panel, strategy="momentum_rank", *, exits=EXITS, hold="window", sizing=None,
            rules=None, rebalance=False, max_exit_delay=None, end=None, window="4h",
            fee_bps=10, slippage_bps=5, min_trades=1):
    """Both runs, every comparison; returns (walk_forward result, replay result)."""
    wf = walk_forward(panel, strategy, mode="portfolio", exits=exits, hold=hold,
                      sizing=sizing, rules=rules, rebalance=rebalance, end=end, window=window,
                      max_exit_delay=max_exit_delay, fee_bps=fee_bps,
                      slippage_bps=slippage_bps)
    stop_fill = {} if exits is None else {"stop_fill": exits.stop_fill,
                                          "stop_fill_frac": exits.stop_fill_range or 0.0}
    rp = replay(RankingTrader(strategy, exits=exits, hold=hold, sizing=sizing, rules=rules,
                              rebalance=rebalance, max_exit_delay=max_exit_delay,
                              window=window),
                panel, SimBroker(fee_bps=fee_bps, slippage_bps=slippage_bps, **stop_fill),
                end=end)
    order = ["decision_time", "rank", "exit_time"]
    want = wf.trades.sort_values(order).reset_index(drop=True)
    got = rp.trades.sort_values(order).reset_index(drop=True)
    assert len(got) == len(want) >= min_trades
    for col in ("symbol", "decision_time", "entry_time", "exit_time", "exit_reason",
                "exit_at_last_close"):
        assert list(got[col]) == list(want[col]), col
    for col in ("quantity", "entry_price", "exit_price", "entry_value", "return_pct", "pnl",
                "fees"):
        np.testing.assert_allclose(got[col], want[col], rtol=1e-9, atol=1e-9, err_msg=col)
    for col in ("decision_time", "symbol", "rank", "reason"):
        assert list(rp.blocked[col]) == list(wf.blocked[col]), col
    mine = rp.equity.set_index("time")
    theirs = wf.equity.set_index("time")
    assert theirs.index.isin(mine.index).all()  # every mark of the engine, in the replay too
    for col in ("equity", "cash", "exposure"):
        np.testing.assert_allclose(mine.loc[theirs.index, col], theirs[col], rtol=1e-9,
                                   atol=1e-6, err_msg=col)
    np.testing.assert_array_equal(mine.loc[theirs.index, "positions"], theirs["positions"])
    # accounting: the replay's account ends flat, at the initial cash plus the trades' P&L
    assert rp.equity["positions"].iloc[-1] == 0 and (rp.equity["cash"] >= 0).all()
    assert rp.metrics["final_equity"] == pytest.approx(10_000 + rp.trades["pnl"].sum(),
                                                       rel=1e-9)
    return wf, rp


@pytest.mark.parametrize("name", ["macd_rsi_confluence", "momentum_rank", "breakout",
                                  "ma_crossover"])
def test_every_builtin_strategy(sample, name):
    hold = "until_dropped" if name == "ma_crossover" else "window"
    compare(sample, name, hold=hold)


@pytest.mark.parametrize("exits", [
    ExitRules(stop_loss_pct=1.0), ExitRules(take_profit_pct=1.0), ExitRules(trailing_pct=0.8),
    ExitRules(stop_loss_atr=2.0, take_profit_atr=3.0, trailing_atr=2.5),
    None,
], ids=["stop", "target", "trailing", "atr", "time-only"])
def test_every_exit_rule(sample, exits):
    wf, _ = compare(sample, exits=exits)
    if exits is not None:
        assert (wf.trades["exit_reason"] != "window_end").any()


@pytest.mark.parametrize(("rules", "blocks"), [
    (PortfolioRules(cooldown="6h"), "cooldown"),
    (PortfolioRules(max_entries_per_day=3), "max_entries_per_day"),
    (PortfolioRules(daily_loss_limit_pct=0.8), "daily_loss_limit_pct"),
    (PortfolioRules(daily_loss_limit_pct=0.8, liquidate_on_daily_loss=True),
     "daily_loss_limit_pct"),
    (PortfolioRules(max_drawdown_pct=3), "max_drawdown_pct"),
    (PortfolioRules(max_drawdown_pct=2, drawdown_halt_for="8h", liquidate_on_drawdown=True),
     "max_drawdown_pct"),
    (PortfolioRules(max_exposure_pct=20, min_order_value=1_999.9), "max_exposure_pct"),
    (PortfolioRules(max_gross_exposure_pct=50), "max_gross_exposure_pct"),
    (PortfolioRules(max_correlation=0.5, correlation_lookback=36), "max_correlation"),
    (PortfolioRules(min_order_value=3_320), "min_order_value"),
], ids=lambda v: ",".join(v.active) if isinstance(v, PortfolioRules) else None)
def test_every_portfolio_rule_on_its_own(sample, rules, blocks):
    wf, _ = compare(sample, rules=rules)
    assert blocks in set(wf.blocked["reason"])  # the rule did block something
    if rules.liquidate_on_daily_loss or rules.liquidate_on_drawdown:
        assert blocks in set(wf.trades["exit_reason"])  # ... and liquidated


@pytest.mark.parametrize(("strategy", "sizing"), [
    ("momentum_rank", EqualSlots(slots=2, max_position_pct=30)),
    ("momentum_rank", FixedFraction(pct=40, lot_step=0.001)),
    ("momentum_rank", RiskPerTrade(risk_pct=0.5)),
    ("breakout", ConfidenceSizing(full_confidence=3)),
    ("momentum_rank", InverseVolatilitySizing(target_volatility_pct=0.15, length=24)),
], ids=["slots", "fixed+lot", "risk", "confidence", "inverse-volatility"])
def test_every_sizing(sample, strategy, sizing):
    compare(sample, strategy, sizing=sizing)


@pytest.mark.parametrize(("hold", "rebalance"), [("window", False), ("until_dropped", False),
                                                 ("window", True), ("until_dropped", True)])
def test_both_hold_modes_with_and_without_rebalancing(sample, hold, rebalance):
    wf, _ = compare(sample, "macd_rsi_confluence", hold=hold, rebalance=rebalance,
                    sizing=FixedFraction(pct=30))
    if rebalance:
        assert (wf.trades["exit_reason"] == "rebalance").any()


@pytest.mark.parametrize(("exits", "delay"), [
    (ExitRules(stop_loss_pct=1.0, stop_fill="low"), None),
    (ExitRules(trailing_pct=0.7, take_profit_pct=1.5, stop_fill="range",
               stop_fill_range=0.3), None),
    (None, 0), (EXITS, 3), (None, "1h"),
], ids=["fill-low", "fill-range", "delay-0", "delay-3", "delay-1h"])
def test_stop_fills_and_the_exit_delay_cap(sample, exits, delay):
    wf, _ = compare(sample, "momentum_rank", exits=exits, max_exit_delay=delay)
    if delay is not None:
        assert wf.trades["exit_at_last_close"].any()  # the cap did bind in an outage


def test_everything_at_once_on_the_sample(sample):
    wf, _ = compare(sample, "macd_rsi_confluence", sizing=RiskPerTrade(risk_pct=1,
                                                                      lot_step=0.0001),
                    rules=ALL_RULES, rebalance=True, max_exit_delay=6)
    assert len(set(wf.blocked["reason"])) >= 4


@pytest.mark.parametrize("month", ["feb", "may"])
def test_everything_at_once_on_real_data_with_gaps(request, month):
    panel = request.getfixturevalue(month)
    for hold in ("window", "until_dropped"):
        wf, _ = compare(panel, "macd_rsi_confluence", hold=hold,
                        sizing=FixedFraction(pct=35, lot_step=0.001), rules=ALL_RULES,
                        rebalance=True, max_exit_delay=4)
        assert len(wf.blocked)


# ---------------------------------------------------------------- where the two used to differ
def test_until_dropped_when_the_last_decision_time_falls_in_an_outage(sample):
    """The run ends at 2021-04-25 12:00 with a 6h window: its last decision time, 06:00, is
    in the outage (04:05-08:40 missing; the last decision evaluated is 04:00). Positions
    held at the end leave one window after the *scheduled* time, at 12:00, in both (the
    trader cannot know at its entry that the market will be closed at 06:00); walk_forward
    used to close them at 10:00."""
    end = pd.Timestamp("2021-04-25 12:00", tz="UTC")
    wf, _ = compare(sample, "ma_crossover", hold="until_dropped", end=end, window="6h",
                    exits=None)
    assert pd.Timestamp(wf.data_quality["last_decision_time"]) == end - pd.Timedelta("8h")
    assert wf.trades.loc[wf.trades["exit_reason"] == "window_end", "exit_time"].max() == end


def test_a_replay_ending_in_an_outage_exits_at_the_first_open_after_it(sample):
    """end = 2021-04-20 04:00 is inside the outage (01:55-04:30): the positions due at 02:00
    and 04:00 wait for the first open, 04:30, in walk_forward; the replay's exits now wait
    too, past its end (its equity runs to that candle), instead of leaving at the last
    close before the gap."""
    end = pd.Timestamp("2021-04-20 04:00", tz="UTC")
    wf, rp = compare(sample, "macd_rsi_confluence", end=end, exits=None)
    late = wf.trades["exit_time"] > end
    assert late.sum() >= 2 and not wf.trades.loc[late, "exit_at_last_close"].any()
    assert rp.equity["time"].iloc[-1] == pd.Timestamp("2021-04-20 04:35", tz="UTC")


def test_a_cooldown_counts_from_a_window_end_exit_at_the_same_decision_time():
    """BTC/USDT leaves at its window end, 2021-01-02 04:00, and is picked again at that very
    decision time: the exit comes first, so a 4h cooldown blocks the re-entry in both. The
    replay used to learn of the exit only from its fill report, after the decision, and
    re-entered."""
    panel = Panel.from_frames(load_sample(end="2021-01-03"), "5m")
    exits = ExitRules(stop_loss_pct=3, take_profit_pct=6, trailing_pct=2)
    wf, _ = compare(panel, "macd_rsi_confluence", exits=exits,
                    rules=PortfolioRules(cooldown="4h"), slippage_bps=0)
    blocked = wf.blocked.set_index(["decision_time", "symbol"])["reason"]
    assert blocked[(pd.Timestamp("2021-01-02 04:00", tz="UTC"), "BTC/USDT")] == "cooldown"


class Prefers(Strategy):
    """Scores every symbol by a fixed preference (a test strategy, no features)."""

    name = "test_parity_prefers"
    row_local = True

    def __init__(self, order=(2.0, 1.0)):
        self.order = order

    def score(self, features, panel):
        return np.where(np.isnan(panel.close), np.nan, np.asarray(self.order))


def test_dust_is_blocked_as_cash_by_both():
    """10,071.41 of cash, 100 % sizing, fee 10 bps: the first pick gets cash / 1.001, which
    costs 1.8e-12 less than the cash (float rounding). The second pick would have bought a
    position worth 1.8e-12 in the kernel (the trader refused it as dust): now both block it
    as ``cash``."""
    index = pd.date_range("2021-03-01", periods=12 * 24, freq="5min", tz="UTC")
    flat = pd.DataFrame({"timestamp": index, "open": 100.0, "high": 100.0, "low": 100.0,
                         "close": 100.0, "volume": 1.0})
    panel = Panel.from_frames({"AAA/USDT": flat, "BBB/USDT": flat}, "5m")
    cash = 10_071.41
    assert cash - cash / 1.001 * 1.001 > 0  # the rounding the rule is about
    kw = dict(window="4h", shift="4h", max_positions=2, sizing=FixedFraction(pct=100))
    wf = walk_forward(panel, Prefers(), mode="portfolio", initial_cash=cash, fee_bps=10, **kw)
    rp = replay(RankingTrader(Prefers(), **kw), panel, SimBroker(fee_bps=10),
                initial_cash=cash)
    assert len(wf.trades) == len(rp.trades) == 5 and set(wf.trades["symbol"]) == {"AAA/USDT"}
    assert list(wf.blocked["reason"]) == list(rp.blocked["reason"]) == ["cash"] * 5
    np.testing.assert_allclose(rp.trades["pnl"], wf.trades["pnl"], rtol=1e-9)


def test_the_broker_must_fill_stops_as_the_exits_say(sample):
    trader = RankingTrader("momentum_rank", exits=ExitRules(stop_loss_pct=1, stop_fill="low"))
    with pytest.raises(ConfigError, match="stop_fill='low'"):
        replay(trader, sample, SimBroker())
