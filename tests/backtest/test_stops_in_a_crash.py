"""Issue 9 §1 "Stops in a crash": the level fill stays the default, a conservative stop fill
is an option, and every run reports the spread between the two."""

from __future__ import annotations

import numpy as np
import pytest

from core_engine.backtest import walk_forward
from core_engine.errors import ConfigError
from core_engine.risk import ExitRules
from core_engine.strategies.base import Strategy

from .test_simulate import run_one

# entry 100; the second candle crashes to 90 inside five minutes without opening below 98
CRASH = [(99, 99, 99, 99), (100, 100.2, 99.8, 100), (100, 100.5, 90, 95), (95, 96, 94, 95),
         (95, 95, 95, 95)]


@pytest.mark.parametrize("fill, extra, expected", [
    ("level", {}, 98.0),
    ("low", {}, 90.0),
    ("range", {}, 98 - 0.5 * 10.5),
    ("range", {"stop_fill_range": 0.2}, 98 - 0.2 * 10.5),
    ("range", {"stop_fill_range": 3.0}, 90.0),  # never below the candle's low
])
def test_stops_in_a_crash_fill_options_on_a_hand_worked_candle(fill, extra, expected):
    rec = run_one(CRASH, exits=ExitRules(stop_loss_pct=2.0, stop_fill=fill, **extra))
    assert rec["exit_reason"] == 1 and rec["exit_row"] == 2
    assert rec["exit_price"] == pytest.approx(expected, rel=1e-14)
    assert rec["return_pct"] == pytest.approx(expected - 100, rel=1e-12)
    # the bound is the same whatever the fill: out at the candle's low
    assert rec["worst_case_return_pct"] == pytest.approx(-10.0, rel=1e-12)
    assert rec["max_drawdown"] == pytest.approx(100 - expected, rel=1e-12)


def test_stops_in_a_crash_gap_at_the_open_and_trailing_stops():
    # a candle opening below the stop fills at its open in every mode: worst case = return
    gap = [(99, 99, 99, 99), (100, 100, 100, 100), (96, 97, 90, 95), (95, 95, 95, 95),
           (95, 95, 95, 95)]
    for fill in ("level", "low"):
        rec = run_one(gap, exits=ExitRules(stop_loss_pct=2.0, stop_fill=fill))
        assert rec["exit_price"] == 96.0 and rec["worst_case_return_pct"] == rec["return_pct"]
    # a trailing stop reached inside a candle is a stop like any other
    trail = [(99, 99, 99, 99), (100, 110, 100, 108), (108, 108.5, 95, 96), (96, 96, 96, 96),
             (96, 96, 96, 96)]
    rec = run_one(trail, exits=ExitRules(trailing_pct=5.0, stop_fill="low"))
    assert rec["exit_reason"] == 3 and rec["exit_price"] == 95.0
    rec = run_one(trail, exits=ExitRules(trailing_pct=5.0))
    assert rec["exit_price"] == pytest.approx(104.5)
    assert rec["worst_case_return_pct"] == pytest.approx(-5.0)


class Momentum6(Strategy):
    name = "test_crash_momentum"
    row_local = True

    def score(self, features, panel):
        close = panel.close
        out = np.full(close.shape, np.nan)
        out[6:] = close[6:] / close[:-6] - 1.0
        return out


def test_stops_in_a_crash_spread_on_the_may_2021_crash(real_may):
    """On the real 19 May 2021 crash: the level run reports its worst case, and that worst
    case is exactly what the run with stops filled at the low gives."""
    kwargs = {"window": "4h", "shift": "1h", "max_positions": 2, "fee_bps": 10}
    rules = {"stop_loss_pct": 1.5, "take_profit_pct": 3.0, "trailing_pct": 2.0}
    level = walk_forward(real_may, Momentum6(), exits=ExitRules(**rules), **kwargs)
    low = walk_forward(real_may, Momentum6(), exits=ExitRules(stop_fill="low", **rules), **kwargs)
    ranged = walk_forward(real_may, Momentum6(), exits=ExitRules(stop_fill="range", **rules),
                          **kwargs)
    m, ml, mr = level.metrics, low.metrics, ranged.metrics
    assert m["stop_fill_spread_pct"] > 0.05 and ml["stop_fill_spread_pct"] == 0.0
    assert 0 < mr["stop_fill_spread_pct"] < m["stop_fill_spread_pct"]
    for worse, better in ((ml, mr), (mr, m)):
        assert worse["total_return_pct"] < better["total_return_pct"]
    # the worst case of every run is the run with stops at the low, trade for trade
    for run in (level, ranged):
        np.testing.assert_allclose(run.trades["worst_case_return_pct"],
                                   low.trades["return_pct"], rtol=1e-12, atol=1e-12)
        assert run.metrics["worst_case_total_return_pct"] == \
            pytest.approx(ml["total_return_pct"], rel=1e-12)
        assert run.metrics["worst_case_avg_return_pct"] == \
            pytest.approx(ml["avg_return_pct"], rel=1e-12)
    # ... and the fill changes nothing but the fill price of stops inside a candle
    same = ["symbol", "entry_time", "exit_time", "exit_reason", "entry_price"]
    assert level.trades[same].equals(low.trades[same])
    summary = level.summary()
    assert "Stop fill minus fill at the low, avg" in summary
    assert "Total return if stops fill at the low" in summary
    assert level.config["exits"]["stop_fill"] == "level"
    assert ranged.config["exits"]["stop_fill_range"] == 0.5
    assert level.equity["worst_case_equity"].iloc[-1] == \
        pytest.approx(low.equity["equity"].iloc[-1], rel=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    ({"stop_fill": "lowest"}, r"must be one of \['level', 'low', 'range'\]. Got 'lowest'. "
                              r"Did you mean 'low'\?"),
    ({"stop_fill": "low", "stop_fill_range": 0.3}, "applies to stop_fill='range' only"),
    ({"stop_fill": "range", "stop_fill_range": 0}, "'stop_fill_range' parameter of ExitRules"),
    ({"stop_fill": "range", "stop_fill_range": float("nan")}, "must be a finite number > 0"),
])
def test_stops_in_a_crash_bad_fill_options(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ExitRules(stop_loss_pct=1.0, **kwargs)


def test_stops_in_a_crash_metrics_on_hand_computed_trades():
    from core_engine.backtest.metrics import compute_metrics, equity_curve

    from .test_results import DECISIONS, H, hand_trades

    trades = hand_trades()
    trades["worst_case_return_pct"] = [2.0, -4.0, -3.0]  # the stop of BBB filled at a 4 % low
    eq = equity_curve(trades, DECISIONS, window_ns=4 * H, shift_ns=2 * H)
    np.testing.assert_allclose(eq["worst_case_period_return_pct"], [-1.0, 0.0, -1.0])
    np.testing.assert_allclose(eq["worst_case_equity"], [0.995, 0.995, (0.99 * 0.99 + 1) / 2])
    m = compute_metrics(trades, eq, window_ns=4 * H, shift_ns=2 * H)
    assert m["stop_fill_spread_pct"] == pytest.approx(1.0)
    assert m["worst_case_avg_return_pct"] == pytest.approx(-5 / 3)
    assert m["worst_case_total_return_pct"] == pytest.approx(((0.99 * 0.99 + 1) / 2 - 1) * 100)


def test_stops_in_a_crash_cli_flags(tmp_path, capsys):
    from core_engine.backtest import BacktestResult
    from core_engine.cli import main

    out = tmp_path / "run"
    code = main(["backtest", "--symbols", "BTC/USDT,SOL/USDT", "--start", "2021-05-17",
                 "--end", "2021-05-21", "--stop-loss-pct", "1.5", "--stop-fill", "range",
                 "--stop-fill-range", "0.25", "--max-exit-delay", "1h", "--out", str(out)])
    assert code == 0
    assert "Total return if stops fill at the low" in capsys.readouterr().out
    config = BacktestResult.load(out).config
    assert config["exits"]["stop_fill"] == "range" and config["exits"]["stop_fill_range"] == 0.25
    assert config["max_exit_delay"] == 12
    assert main(["backtest", "--symbols", "BTC/USDT", "--stop-loss-pct", "1",
                 "--stop-fill-range", "0.25", "--out", "-"]) == 2
    assert "applies to stop_fill='range' only" in capsys.readouterr().err


def test_stops_in_a_crash_spread_in_portfolio_mode(real_may):
    """Portfolio mode reports the same bound: the level run's per-trade spread is what the
    run with stops at the low loses on the same trades, and the summary shows it."""
    kwargs = {"window": "4h", "shift": "1h", "max_positions": 2, "fee_bps": 10,
              "mode": "portfolio"}
    rules = {"stop_loss_pct": 1.5, "trailing_pct": 2.0}
    level = walk_forward(real_may, Momentum6(), exits=ExitRules(**rules), **kwargs)
    low = walk_forward(real_may, Momentum6(), exits=ExitRules(stop_fill="low", **rules),
                       **kwargs)
    assert level.metrics["stop_fill_spread_pct"] > 0.05
    assert low.metrics["stop_fill_spread_pct"] == 0.0
    assert low.metrics["final_equity"] < level.metrics["final_equity"]
    assert "Stop fill minus fill at the low, avg" in level.summary()
    # where the two accounts hold the same trades, the level run's worst case is the low run
    same = ["symbol", "entry_time", "exit_time", "exit_reason"]
    n = min(len(level.trades), len(low.trades))
    differs = level.trades[same].head(n).ne(low.trades[same].head(n)).any(axis=1).to_numpy()
    first = int(differs.argmax()) if differs.any() else n
    assert first >= 3
    np.testing.assert_allclose(level.trades["worst_case_return_pct"].iloc[:first],
                               low.trades["return_pct"].iloc[:first], rtol=1e-12, atol=1e-12)
