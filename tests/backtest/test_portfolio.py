"""Portfolio mode: equality with slices mode where they must agree, one blocking scenario per
rule (with its ``result.blocked`` row), sizing, hold modes, no lookahead, and the result's
views (summary, save/load, compare, plot)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_engine.backtest import BacktestResult, compare, walk_forward
from core_engine.data.panel import Panel
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
from core_engine.strategies import MacdRsiConfluence
from core_engine.strategies.base import Strategy


class FixedScores(Strategy):
    """Test strategy: every symbol is a candidate with a constant score (its preference),
    so the picks are known in advance; ``confidence`` equals the score."""

    name = "test_fixed_scores"

    def __init__(self, preference: tuple = (3.0, 2.0, 1.0)):
        self.preference = preference

    def score(self, features, panel):
        pref = np.asarray(self.preference, dtype=np.float64)[: panel.n_symbols]
        return np.broadcast_to(pref, panel.close.shape).copy()

    def confidence(self, features, panel):
        return self.score(features, panel)


def make_panel(closes, start="2021-03-01", spread=0.001) -> Panel:
    """A 5m panel from ``(T, N)`` closes; open = previous close (the candle's own close
    after a missing one), small wicks; a NaN close is a missing candle in every field."""
    close = np.asarray(closes, dtype=np.float64)
    open_ = np.vstack([close[:1], close[:-1]])
    open_ = np.where(np.isnan(open_) | np.isnan(close), close, open_)
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    index = pd.date_range(start, periods=close.shape[0], freq="5min", tz="UTC")
    names = tuple(f"{c}/USDT" for c in "ABCDEFGH"[: close.shape[1]])
    volume = np.where(np.isnan(close), np.nan, 1.0)
    return Panel(index, names, "5m", open_, high, low, close, volume)


def flat(n_times, n_symbols, drift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    steps = rng.normal(drift, 0.001, (n_times, n_symbols))
    return 100 * np.exp(np.cumsum(steps, axis=0))


def run(panel, preference=(3.0, 2.0, 1.0), **kwargs):
    kwargs.setdefault("window", "30m")
    kwargs.setdefault("shift", "30m")
    kwargs.setdefault("fee_bps", 10)
    return walk_forward(panel, FixedScores(preference=preference), mode="portfolio", **kwargs)


def reasons(result) -> list:
    return list(result.blocked["reason"])


# ---------------------------------------------------------------------- equality with slices
@pytest.mark.parametrize("exits", [None, ExitRules(stop_loss_pct=1.0, take_profit_pct=1.5,
                                                   trailing_pct=0.8)])
@pytest.mark.parametrize("period", ["feb", "may"])
def test_window_equal_shift_reproduces_slices_trades(real_feb, real_may, period, exits):
    panel = real_feb if period == "feb" else real_may
    common = dict(window="2h", shift="2h", exits=exits, slippage_bps=3)
    slices = walk_forward(panel, MacdRsiConfluence(), **common).trades
    book = walk_forward(panel, MacdRsiConfluence(), mode="portfolio",
                        sizing=FixedFraction(pct=30), **common)
    assert book.blocked.empty
    trades = book.trades
    columns = ["symbol", "decision_time", "entry_time", "exit_time", "entry_price",
               "exit_price", "return_pct", "best_return_pct", "max_drawdown", "exit_reason",
               "rank", "score", "gaps_in_window", "exit_at_last_close", "exit_delayed_by"]
    key = ["decision_time", "rank"]
    left = slices.sort_values(key).reset_index(drop=True)[columns]
    right = trades.sort_values(key).reset_index(drop=True)[columns]
    pd.testing.assert_frame_equal(left, right, check_exact=True)


def test_portfolio_differs_from_slices_when_windows_overlap(real_may):
    """With window = 2 × shift the account cannot hold every pick: cash blocks some."""
    result = walk_forward(real_may, MacdRsiConfluence(), mode="portfolio")
    assert (result.blocked["reason"] == "cash").any()


# ---------------------------------------------------------------------- accounting
def test_fees_and_pnl_by_hand():
    """One pick, flat price: the fees are the only loss."""
    panel = make_panel(np.full((40, 1), 100.0), spread=0.0)
    result = run(panel, preference=(1.0,), sizing=FixedFraction(pct=50), window="30m",
                 shift="1h", end="2021-03-01 01:30")
    t = result.trades.iloc[0]
    value = 10_000 * 0.5
    assert t["entry_value"] == pytest.approx(value)
    assert t["quantity"] == pytest.approx(value / 100.0)
    fee = value * 0.001 * 2
    assert t["fees"] == pytest.approx(fee)
    assert t["pnl"] == pytest.approx(-fee)
    assert result.metrics["fees_paid"] == pytest.approx(result.trades["fees"].sum())
    eq = result.equity
    assert eq["equity"].iloc[0] == 10_000.0
    assert eq["equity"].iloc[-1] == pytest.approx(10_000 + result.trades["pnl"].sum())
    assert (eq["cash"] >= 0).all()
    np.testing.assert_allclose(eq["equity"], eq["cash"] + eq["exposure"])


def test_cash_shrinks_a_pick_and_never_goes_negative():
    panel = make_panel(flat(60, 2))
    result = run(panel, preference=(2.0, 1.0), sizing=FixedFraction(pct=70), window="1h",
                 shift="1h", max_positions=2)
    first = result.trades[result.trades["decision_time"] == result.trades["decision_time"].min()]
    # the second pick gets what is left after the first (70 % + fee), less its own fee
    assert first["entry_value"].iloc[1] < 0.31 * 10_000
    assert first["entry_value"].iloc[1] > 0.29 * 10_000
    assert (result.equity["cash"] >= 0).all()


def test_lot_step_rounds_the_quantity_down():
    panel = make_panel(np.full((40, 1), 37.0), spread=0.0)
    result = run(panel, preference=(1.0,), sizing=FixedFraction(pct=50, lot_step=1.0))
    qty = result.trades["quantity"]
    assert qty.iloc[0] == np.floor(5_000 / 37.0)
    assert (qty == np.floor(qty)).all()
    np.testing.assert_allclose(result.trades["entry_value"], qty * 37.0)


# ---------------------------------------------------------------------- one scenario per rule
def test_cooldown_blocks_reentry():
    panel = make_panel(flat(80, 1))
    free = run(panel, preference=(1.0,))
    assert free.blocked.empty
    result = run(panel, preference=(1.0,), rules=PortfolioRules(cooldown="30m"))
    assert reasons(result) and set(reasons(result)) == {"cooldown"}
    # every other decision: the exit at t + 30m may re-enter from t + 60m on
    assert len(result.trades) == pytest.approx(len(free.trades) / 2, abs=1)


def test_max_entries_per_day():
    panel = make_panel(flat(12 * 30, 1), start="2021-03-01 20:00")
    result = run(panel, preference=(1.0,), rules=PortfolioRules(max_entries_per_day=3))
    entries = result.trades.groupby(result.trades["decision_time"].dt.floor("D")).size()
    assert (entries <= 3).all() and entries.iloc[-1] == 3
    assert set(reasons(result)) == {"max_entries_per_day"}
    assert run(panel, preference=(1.0,)).blocked.empty


def _crash_panel(drop_at=40, drop=0.93, n_times=200):
    close = flat(n_times, 2, seed=3)
    close[drop_at:, 0] *= drop
    return make_panel(close, start="2021-03-01 02:00")


def test_daily_loss_limit_halts_entries_for_the_day():
    panel = _crash_panel()
    rules = PortfolioRules(daily_loss_limit_pct=2.0)
    result = run(panel, preference=(2.0, 1.0), window="1h", shift="1h", rules=rules,
                 sizing=FixedFraction(pct=45), max_positions=2)
    assert set(reasons(result)) == {"daily_loss_limit_pct"}
    first = result.blocked["decision_time"].min()
    assert first > panel.index[40]
    assert (result.trades["decision_time"] < first).all()  # nothing entered the rest of the day


def test_daily_loss_limit_liquidates_at_the_next_open():
    close = flat(200, 1, seed=4)
    close[80:] *= 0.95  # the position entered at 06:00 (row 72) loses 5 % at row 80
    panel = make_panel(close, start="2021-03-01 00:00")
    rules = PortfolioRules(daily_loss_limit_pct=3.0, liquidate_on_daily_loss=True)
    result = run(panel, preference=(1.0,), window="6h", shift="6h", rules=rules,
                 sizing=FixedFraction(pct=90))
    liquidated = result.trades[result.trades["exit_reason"] == "daily_loss_limit_pct"]
    assert len(liquidated) == 1
    # closed at the open after the candle whose mark tripped the limit
    assert liquidated["exit_time"].iloc[0] == panel.index[81]


@pytest.mark.parametrize("halt_for", [None, "2h"])
def test_max_drawdown_halts_entries(halt_for):
    panel = _crash_panel(n_times=300)
    rules = PortfolioRules(max_drawdown_pct=2.0, drawdown_halt_for=halt_for)
    result = run(panel, preference=(2.0, 1.0), window="1h", shift="1h", rules=rules,
                 sizing=FixedFraction(pct=45), max_positions=2)
    assert set(reasons(result)) == {"max_drawdown_pct"}
    blocked_times = result.blocked["decision_time"]
    later_trades = result.trades["decision_time"] > blocked_times.max()
    if halt_for is None:
        assert not later_trades.any()
    else:
        assert later_trades.any()


def test_max_drawdown_liquidation():
    panel = _crash_panel(n_times=120)
    rules = PortfolioRules(max_drawdown_pct=3.0, liquidate_on_drawdown=True)
    result = run(panel, preference=(2.0, 1.0), window="4h", shift="4h", rules=rules,
                 sizing=FixedFraction(pct=48), max_positions=2)
    assert set(result.trades["exit_reason"]) >= {"max_drawdown_pct"}
    assert (result.trades.loc[result.trades["exit_reason"] == "max_drawdown_pct",
                              "exit_time"] == panel.index[41]).all()


def test_max_exposure_caps_then_blocks_below_the_minimum():
    panel = make_panel(flat(40, 1))
    capped = run(panel, preference=(1.0,), sizing=FixedFraction(pct=60),
                 rules=PortfolioRules(max_exposure_pct=20.0))
    assert capped.blocked.empty
    np.testing.assert_allclose(capped.trades["weight"], 0.2)
    blocked = run(panel, preference=(1.0,), sizing=FixedFraction(pct=60),
                  rules=PortfolioRules(max_exposure_pct=20.0, min_order_value=2_500.0))
    assert set(reasons(blocked)) == {"max_exposure_pct"}


def test_max_gross_exposure_blocks_the_pick_without_room():
    panel = make_panel(flat(40, 2))
    result = run(panel, preference=(2.0, 1.0), sizing=FixedFraction(pct=50),
                 rules=PortfolioRules(max_gross_exposure_pct=50.0), max_positions=2)
    assert set(reasons(result)) == {"max_gross_exposure_pct"}
    assert (result.blocked["symbol"] == "B/USDT").all()
    assert (result.trades["symbol"] == "A/USDT").all()


def test_max_correlation_blocks_a_twin():
    rng = np.random.default_rng(5)
    a = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, 120)))
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, 120)))
    panel = make_panel(np.column_stack([a, 2 * a, c]))
    rules = PortfolioRules(max_correlation=0.9, correlation_lookback=24)
    result = run(panel, preference=(3.0, 2.0, 1.0), rules=rules, window="1h", shift="1h")
    assert set(reasons(result)) == {"max_correlation"}
    assert (result.blocked["symbol"] == "B/USDT").all()
    assert {"A/USDT", "C/USDT"} <= set(result.trades["symbol"])


def test_min_order_value_and_cash_reasons():
    panel = make_panel(flat(40, 2))
    small = run(panel, preference=(2.0, 1.0), initial_cash=100.0,
                rules=PortfolioRules(min_order_value=60.0), max_positions=2)
    assert set(reasons(small)) == {"min_order_value"}
    short = run(panel, preference=(2.0, 1.0), sizing=FixedFraction(pct=80),
                rules=PortfolioRules(min_order_value=2_500.0), max_positions=2)
    assert set(reasons(short)) == {"cash"}


def test_no_entry_candle_is_a_blocked_pick():
    close = flat(40, 2)
    close[11:14, 0] = np.nan
    panel = make_panel(close)
    result = run(panel, preference=(2.0, 1.0), window="15m", shift="15m", max_positions=2)
    assert "no_entry_candle" in reasons(result)
    assert result.data_quality["picks_without_entry_candle"] == reasons(result).count(
        "no_entry_candle")


# ---------------------------------------------------------------------- sizing
def test_risk_per_trade_loses_the_risk_on_a_stop():
    close = np.full((60, 1), 100.0)
    close[30:, 0] = 90.0  # the position entered at 02:00 (row 24) falls through its stop
    panel = make_panel(close, spread=0.0)
    result = run(panel, preference=(1.0,), sizing=RiskPerTrade(risk_pct=1.0), fee_bps=0,
                 exits=ExitRules(stop_loss_pct=2.0), window="2h", shift="2h")
    first = result.trades.iloc[0]
    assert first["entry_value"] == pytest.approx(10_000 * 0.01 / 0.02)
    assert first["exit_reason"] == "stop_loss"


def test_risk_per_trade_needs_a_stop():
    with pytest.raises(ConfigError, match="RiskPerTrade sizing needs a stop"):
        run(make_panel(flat(40, 1)), sizing=RiskPerTrade(risk_pct=1.0))


def test_confidence_and_inverse_volatility_sizing():
    panel = make_panel(flat(80, 2))
    conf = run(panel, preference=(2.0, 1.0), sizing=ConfidenceSizing(full_confidence=2.0),
               max_positions=2)
    first = conf.trades.groupby("symbol")["weight"].first()
    assert first["A/USDT"] == pytest.approx(0.5) and first["B/USDT"] == pytest.approx(0.25)
    vol = run(panel, preference=(2.0, 1.0),
              sizing=InverseVolatilitySizing(target_volatility_pct=0.05, length=10),
              max_positions=2)
    assert "sizing" in reasons(vol)  # no volatility during its warm-up
    assert len(vol.trades) > 0


def test_equal_slots_default_is_one_over_max_positions():
    result = run(make_panel(flat(40, 3)), max_positions=3)
    first = result.trades[result.trades["decision_time"] == result.trades["decision_time"].min()]
    assert first["weight"].iloc[0] == pytest.approx(1 / 3)


# ---------------------------------------------------------------------- hold modes
def test_repick_extends_the_position_without_a_trade():
    panel = make_panel(flat(80, 1))
    result = run(panel, preference=(1.0,), window="1h", shift="30m")
    assert len(result.trades) == 1
    assert result.trades["repicks"].iloc[0] > 0


def test_until_dropped_holds_while_picked():
    class Alternating(FixedScores):
        name = "test_alternating"

        def score(self, features, panel):
            out = super().score(features, panel)
            hour = panel.index.hour.to_numpy()
            out[:, 0] = np.where(hour < 2, 1.0, np.nan)  # A is a candidate before 02:00
            return out

    panel = make_panel(flat(60, 1), start="2021-03-01 00:00")
    result = walk_forward(panel, Alternating(preference=(1.0,)), window="30m", shift="30m",
                          mode="portfolio", hold="until_dropped")
    assert len(result.trades) == 1
    assert result.trades["exit_reason"].iloc[0] == "dropped"
    # the decision at 02:00 reads the candle 01:55-02:00 (still a candidate); 02:30 drops it
    assert result.trades["exit_time"].iloc[0] == pd.Timestamp("2021-03-01 02:30", tz="UTC")


def test_rebalance_trades_the_difference():
    close = flat(80, 1, drift=0.002)
    panel = make_panel(close)
    result = run(panel, preference=(1.0,), window="1h", shift="30m",
                 sizing=FixedFraction(pct=50), rebalance=True)
    assert (result.trades["exit_reason"] == "rebalance").any()
    plain = run(panel, preference=(1.0,), window="1h", shift="30m", sizing=FixedFraction(pct=50))
    assert not (plain.trades["exit_reason"] == "rebalance").any()


# ---------------------------------------------------------------------- no lookahead
def test_poisoning_the_future_changes_nothing_before_t(real_feb):
    rules = PortfolioRules(cooldown="1h", max_entries_per_day=10, daily_loss_limit_pct=2.0,
                           liquidate_on_daily_loss=True, max_drawdown_pct=5.0,
                           drawdown_halt_for="6h", max_exposure_pct=40.0,
                           max_gross_exposure_pct=90.0, max_correlation=0.7)
    kwargs = dict(window="2h", shift="1h", mode="portfolio", rules=rules,
                  sizing=RiskPerTrade(risk_pct=1.0),
                  exits=ExitRules(stop_loss_pct=1.5, trailing_pct=1.0))
    base = walk_forward(real_feb, MacdRsiConfluence(), **kwargs)
    cut = real_feb.index[1500]
    rng = np.random.default_rng(0)
    after = np.asarray(real_feb.index >= cut)[:, None]
    noise = rng.uniform(0.5, 1.5, real_feb.close.shape)
    fields = {k: np.where(after, getattr(real_feb, k) * noise, getattr(real_feb, k))
              for k in ("open", "high", "low", "close")}
    poisoned = walk_forward(real_feb.with_fields(**fields), MacdRsiConfluence(), **kwargs)
    eq_a, eq_b = base.equity, poisoned.equity
    pd.testing.assert_frame_equal(eq_a[eq_a["time"] <= cut], eq_b[eq_b["time"] <= cut])
    done_a = base.trades[base.trades["exit_time"] < cut].reset_index(drop=True)
    done_b = poisoned.trades[poisoned.trades["exit_time"] < cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(done_a, done_b)
    bl_a = base.blocked[base.blocked["decision_time"] < cut].reset_index(drop=True)
    bl_b = poisoned.blocked[poisoned.blocked["decision_time"] < cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(bl_a, bl_b)
    assert len(bl_a) > 0
    # and the poison does change what comes after
    assert not np.allclose(eq_a["equity"].iloc[-1], eq_b["equity"].iloc[-1])


# ---------------------------------------------------------------------- parameters, results
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"initial_cash": -5}, "The 'initial_cash' parameter of walk_forward must be a positive"),
    ({"sizing": "risk"}, "The 'sizing' parameter of walk_forward must be a sizing object"),
    ({"rules": {"cooldown": "1h"}}, "The 'rules' parameter of walk_forward must be"),
    ({"hold": "forever"}, "The 'hold' parameter of walk_forward must be one of"),
    ({"rebalance": 1}, "The 'rebalance' parameter of walk_forward must be True or False"),
])
def test_invalid_portfolio_parameters(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        run(make_panel(flat(40, 1)), **kwargs)


def test_portfolio_options_need_portfolio_mode():
    with pytest.raises(ConfigError, match="apply to mode='portfolio' only"):
        walk_forward(make_panel(flat(40, 1)), FixedScores(), sizing=EqualSlots())


def test_result_views_round_trip(tmp_path, real_may):
    result = walk_forward(real_may, MacdRsiConfluence(), mode="portfolio",
                          rules=PortfolioRules(max_correlation=0.5))
    text = result.summary()
    assert "Final equity" in text and "Blocked picks by reason" in text
    assert "max_correlation" in result.to_markdown()
    again = BacktestResult.load(result.save(tmp_path / "run"))
    assert again.mode == "portfolio" and again.metrics == result.metrics
    pd.testing.assert_frame_equal(again.blocked, result.blocked)
    pd.testing.assert_frame_equal(again.equity, result.equity)
    table = compare([result, walk_forward(real_may, MacdRsiConfluence())])
    assert table.loc["final_equity"].iloc[0] == result.metrics["final_equity"]
    fig = result.plot("equity")
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels[:2] == ["equity", "cash"]
    assert "portfolio" in repr(result)


def test_account_metrics_by_hand():
    """Flat price, one trade of 50 % a day for a few days: metrics follow their definitions."""
    from core_engine.backtest.metrics import account_metrics, daily_returns

    times = pd.date_range("2021-03-01 00:05", periods=3 * 288, freq="5min", tz="UTC")
    value = 10_000 * np.exp(np.linspace(0, 0.03, len(times)))
    equity = pd.DataFrame({"time": times, "equity": value, "cash": value / 2,
                           "exposure": value / 2, "positions": 1,
                           "drawdown_pct": np.zeros(len(times))})
    daily = daily_returns(equity)
    assert len(daily) == 3
    trades = pd.DataFrame({c: pd.Series([], dtype=float) for c in (
        "return_pct", "best_return_pct", "worst_case_return_pct", "max_drawdown", "fees", "pnl",
        "entry_value", "quantity", "exit_price", "gaps_in_window")})
    for c in ("entry_time", "exit_time", "decision_time"):
        trades[c] = pd.DatetimeIndex([], tz="UTC")
    trades["exit_reason"] = pd.Series([], dtype=object)
    trades["ambiguous"] = pd.Series([], dtype=bool)
    blocked = pd.DataFrame({"reason": pd.Series([], dtype=object)})
    m = account_metrics(trades, equity, blocked, decisions=3, initial_cash=10_000.0)
    assert m["total_return_pct"] == pytest.approx((value[-1] / 10_000 - 1) * 100)
    assert m["exposure"] == pytest.approx(0.5)
    assert m["sharpe"] == pytest.approx(daily.mean() / daily.std(ddof=1) * np.sqrt(365))
    assert m["equity_max_drawdown_pct"] == 0.0 and m["max_drawdown_duration_days"] == 0.0
