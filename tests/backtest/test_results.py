"""Metrics, the sleeve equity curve and BacktestResult persistence, on hand-computed trades."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core_engine.backtest.metrics import compute_metrics, equity_curve
from core_engine.backtest.results import BacktestResult, compare
from core_engine.errors import ConfigError

H = 3600 * 10**9
T = pd.Timestamp("2021-03-01", tz="UTC")


def hand_trades() -> pd.DataFrame:
    ts = lambda h: T + pd.Timedelta(hours=h)  # noqa: E731
    return pd.DataFrame({
        "symbol": ["AAA", "BBB", "AAA"],
        "decision_time": [ts(0), ts(0), ts(4)],
        "entry_time": [ts(0), ts(0), ts(4)],
        "exit_time": [ts(4), ts(4), ts(5)],
        "entry_price": [10.0, 20.0, 11.0],
        "exit_price": [10.2, 19.8, 10.67],
        "direction": "long",
        "weight": [0.5, 0.5, 1 / 3],
        "return_pct": [2.0, -1.0, -3.0],
        "best_return_pct": [2.0, 1.5, -3.0],
        "max_drawdown": [0.5, 1.2, 3.1],
        "exit_reason": ["window_end", "stop_loss", "stop_loss"],
        "rank": [1, 2, 1],
        "score": [0.9, 0.8, 0.7],
        "ambiguous": [False, True, False],
        "gaps_in_window": [0, 2, 0],
        "exit_at_last_close": [False, False, False],
    })


DECISIONS = pd.DatetimeIndex([T, T + pd.Timedelta(hours=2), T + pd.Timedelta(hours=4)])


def test_equity_uses_window_over_shift_sleeves():
    eq = equity_curve(hand_trades(), DECISIONS, window_ns=4 * H, shift_ns=2 * H)
    assert eq["n_trades"].tolist() == [2, 0, 1]
    np.testing.assert_allclose(eq["period_return_pct"], [0.5, 0.0, -1.0], rtol=1e-12)
    # two sleeves: 00:00 and 04:00 share sleeve 0, 02:00 is sleeve 1
    np.testing.assert_allclose(eq["equity"], [1.0025, 1.0025, (1.005 * 0.99 + 1) / 2], rtol=1e-12)
    np.testing.assert_allclose(eq["best_case_period_return_pct"], [1.75, 0.0, -1.0], rtol=1e-12)
    assert eq["drawdown_pct"].iloc[-1] == pytest.approx((1 - 0.997475 / 1.0025) * 100, rel=1e-9)


def test_metrics_on_hand_computed_trades():
    trades = hand_trades()
    eq = equity_curve(trades, DECISIONS, window_ns=4 * H, shift_ns=2 * H)
    m = compute_metrics(trades, eq, window_ns=4 * H, shift_ns=2 * H)
    assert m["trades"] == 3 and m["decisions"] == 3 and m["decisions_with_trades"] == 2
    assert m["coverage"] == pytest.approx(2 / 3)
    assert m["win_rate"] == pytest.approx(1 / 3)
    assert m["avg_return_pct"] == pytest.approx(-2 / 3)
    assert m["median_return_pct"] == pytest.approx(-1.0)
    assert m["profit_factor"] == pytest.approx(2 / 4)
    assert m["max_trade_drawdown_pct"] == pytest.approx(3.1)
    assert m["avg_trade_max_drawdown_pct"] == pytest.approx(4.8 / 3)
    period = np.array([0.005, 0.0, -0.01])
    ppy = 365 * 6  # each period return is a 4h-window return: 6 windows a day, not 12 shifts
    assert m["periods_per_year"] == ppy
    assert m["sharpe"] == pytest.approx(period.mean() / period.std(ddof=1) * math.sqrt(ppy))
    assert m["sortino"] == pytest.approx(period.mean() / math.sqrt(1e-4 / 3) * math.sqrt(ppy))
    assert m["total_return_pct"] == pytest.approx((0.997475 - 1) * 100)
    # 0.5*4h + 0.5*4h + (1/3)*1h over 2 sleeves * 2h * 3 decisions
    assert m["exposure"] == pytest.approx((4 + 1 / 3) / 12)
    assert m["avg_holding_minutes"] == pytest.approx(180.0)
    assert m["turnover_per_year"] == pytest.approx(2 * (4 / 3) / 2 / (6 / 8760))
    assert m["ambiguous_trades"] == 1
    assert m["ambiguous_spread_pct"] == pytest.approx(2.5 / 3)
    assert m["trades_with_gaps"] == 1
    assert m["exit_reasons"] == {"window_end": 1, "stop_loss": 2, "take_profit": 0,
                                 "trailing_stop": 0}


def test_metrics_without_trades_are_explicit_not_errors():
    trades = hand_trades().iloc[0:0]
    eq = equity_curve(trades, DECISIONS, window_ns=4 * H, shift_ns=2 * H)
    m = compute_metrics(trades, eq, window_ns=4 * H, shift_ns=2 * H)
    assert m["trades"] == 0 and m["coverage"] == 0.0 and m["total_return_pct"] == 0.0
    assert math.isnan(m["win_rate"]) and math.isnan(m["profit_factor"])


def make_result(**config) -> BacktestResult:
    trades = hand_trades()
    eq = equity_curve(trades, DECISIONS, window_ns=4 * H, shift_ns=2 * H)
    m = compute_metrics(trades, eq, window_ns=4 * H, shift_ns=2 * H)
    cfg = {"strategy": {"name": "hand", "params": {}}, "window": "4h", "shift": "2h",
           "fee_bps": 10.0, "slippage_bps": 0.0, "mode": "slices",
           "library_version": "0.1.0", "data_fingerprint": "abc123", **config}
    dq = {"n_symbols": 2, "candles": 100, "timeframe": "5m", "missing_candles": 0,
          "skipped_decision_times": {"warm_up": 1}, "picks_without_entry_candle": 0}
    return BacktestResult(trades=trades, equity=eq, metrics=m, config=cfg, data_quality=dq)


def test_result_is_immutable():
    result = make_result()
    with pytest.raises(AttributeError, match="immutable"):
        result.metrics = {}
    trades = result.trades
    trades.loc[0, "return_pct"] = 99.0
    result.metrics["trades"] = -1
    assert result.trades.loc[0, "return_pct"] == 2.0
    assert result.metrics["trades"] == 3


def test_save_and_load_round_trip(tmp_path):
    result = make_result()
    folder = result.save(tmp_path / "run")
    loaded = BacktestResult.load(folder)
    pd.testing.assert_frame_equal(loaded.trades, result.trades, check_dtype=False)
    pd.testing.assert_frame_equal(loaded.equity, result.equity)
    for key, value in result.metrics.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(loaded.metrics[key])
        else:
            assert loaded.metrics[key] == value, key
    assert loaded.config == result.config and loaded.fingerprint == "abc123"
    assert loaded.version == "0.1.0"
    with pytest.raises(ConfigError, match="is not a saved backtest run"):
        BacktestResult.load(tmp_path)


def test_summary_and_compare():
    result = make_result()
    text = result.summary()
    assert "Win rate" in text and "33.3%" in text and "hand" in text
    assert "stop_loss 2" in text and "warm_up 1" in text
    table = compare([result, make_result()])
    assert list(table.columns) == ["hand #1", "hand #2"]
    assert table.loc["trades", "hand #1"] == 3 and table.loc["exit_stop_loss", "hand #2"] == 2
    with pytest.raises(ConfigError):
        compare([])


def test_markdown_html_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    result = make_result()
    report = result.to_markdown()
    assert report.startswith("# Walk-forward backtest") and "| Win rate | 33.3% |" in report
    assert "| data_fingerprint | abc123 |" in report
    figure = result.plot()
    lines = figure.axes[0].get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), result.equity["equity"])
    html = result._repr_html_()
    assert "<table" in html and "33.3" in html
    assert "<table" in result.metrics._repr_html_()
    assert result.metrics == dict(result.metrics)


def test_sharpe_does_not_grow_with_window_overlap():
    """Always-long on one i.i.d. random walk: the annualised Sharpe must not depend on how
    much the windows overlap (annualising overlapping 4h returns as 2h ones inflates it √2)."""
    rng = np.random.default_rng(3)
    step = 5 * 60 * 10**9
    log_ret = rng.normal(0.0004, 0.004, 24 * 12 * 400)
    close = 100 * np.exp(np.cumsum(log_ret))
    sharpes = {}
    for window_h, shift_h in ((2, 2), (4, 2), (8, 2), (24, 4)):
        window, shift = window_h * H, shift_h * H
        decisions = np.arange(shift, (len(close) - 1) * step - window, shift)
        entry = close[decisions // step - 1]  # the open of the candle starting at t
        exit_ = close[(decisions + window) // step - 1]
        trades = pd.DataFrame({
            "decision_time": pd.DatetimeIndex(decisions, tz="UTC"),
            "entry_time": pd.DatetimeIndex(decisions, tz="UTC"),
            "exit_time": pd.DatetimeIndex(decisions + window, tz="UTC"),
            "weight": 1.0, "return_pct": (exit_ / entry - 1) * 100,
            "best_return_pct": (exit_ / entry - 1) * 100, "max_drawdown": 0.0,
            "ambiguous": False, "gaps_in_window": 0, "exit_reason": "window_end"})
        times = pd.DatetimeIndex(decisions, tz="UTC")
        eq = equity_curve(trades, times, window_ns=window, shift_ns=shift)
        sharpes[(window_h, shift_h)] = compute_metrics(trades, eq, window_ns=window,
                                                       shift_ns=shift)["sharpe"]
    base = sharpes[(2, 2)]
    for key, value in sharpes.items():
        assert value == pytest.approx(base, rel=0.12), (key, sharpes)
