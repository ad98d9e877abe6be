"""Every plot rendered to PNG on a real backtest, and its contents checked."""

from __future__ import annotations

import io

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from core_engine.backtest import BacktestResult
from core_engine.errors import ConfigError
from core_engine.research.plots import (
    EXIT_MARKERS,
    breakdown_table,
    plot_breakdown,
    plot_comparison,
    plot_equity,
    plot_result,
    plot_return_distribution,
    plot_trades,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _render(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    data = buffer.getvalue()
    assert data.startswith(PNG_MAGIC) and len(data) > 2000
    return data


def _times(values) -> np.ndarray:
    """Line x-data (datetimes or matplotlib date numbers) as matplotlib date numbers."""
    values = np.asarray(values)
    if values.dtype.kind in "fi":
        return values.astype(np.float64)
    return mdates.date2num(pd.DatetimeIndex(values).tz_localize(None).to_pydatetime())


def _num(times) -> np.ndarray:
    return mdates.date2num(pd.DatetimeIndex(times).tz_convert("UTC").tz_localize(None).to_pydatetime())


def test_equity_plot_has_equity_and_drawdown_lines(baseline_result):
    fig = plot_equity(baseline_result)
    _render(fig)
    ax_eq, ax_dd = fig.axes
    equity = baseline_result.equity
    curves = [ln for ln in ax_eq.lines if ln.get_label() == "equity"]
    assert len(curves) == 1
    np.testing.assert_allclose(np.asarray(curves[0].get_ydata(), float), equity["equity"].to_numpy())
    np.testing.assert_allclose(_times(curves[0].get_xdata()), _num(equity["decision_time"]))
    # no ambiguous candle in this run, so no best-case curve: equity, the 1.0 reference and
    # the worst case of its stops (filled at the candle's low instead of the level)
    assert baseline_result.metrics["ambiguous_trades"] == 0
    assert baseline_result.metrics["stop_fill_spread_pct"] > 0
    assert len(ax_eq.lines) == 3
    (worst,) = [ln for ln in ax_eq.lines if ln.get_label().startswith("worst case")]
    np.testing.assert_allclose(np.asarray(worst.get_ydata(), float),
                               equity["worst_case_equity"].to_numpy())
    assert (equity["worst_case_equity"] <= equity["equity"] + 1e-12).all()
    (dd,) = ax_dd.lines
    np.testing.assert_allclose(np.asarray(dd.get_ydata(), float), -equity["drawdown_pct"].to_numpy())
    assert max(np.asarray(dd.get_ydata(), float)) <= 0.0
    assert ax_eq.get_ylabel() == "Equity (start = 1)"
    assert ax_dd.get_ylabel() == "Drawdown (%)"
    assert ax_dd.get_xlabel() == "Decision time (UTC)"
    assert "macd_rsi_confluence" in ax_eq.get_title()


def test_equity_plot_adds_best_case_line_when_candles_were_ambiguous(baseline_result):
    equity = baseline_result.equity
    equity["best_case_equity"] = equity["equity"] * 1.01
    metrics = baseline_result.metrics
    metrics["ambiguous_trades"] = 2
    variant = BacktestResult(trades=baseline_result.trades, equity=equity, metrics=metrics,
                             config=baseline_result.config,
                             data_quality=baseline_result.data_quality)
    fig = plot_equity(variant)
    best = [ln for ln in fig.axes[0].lines if ln.get_label().startswith("best case")]
    assert len(best) == 1
    np.testing.assert_allclose(np.asarray(best[0].get_ydata(), float),
                               equity["best_case_equity"].to_numpy())


@pytest.mark.parametrize("symbol", ["SOL/USDT", "NKN/USDT"])
def test_trade_markers_match_the_trades_of_the_symbol(baseline_result, sample_panel, symbol):
    fig = plot_trades(baseline_result, symbol, sample_panel)
    _render(fig)
    (ax,) = fig.axes
    trades = baseline_result.trades
    mine = trades[trades["symbol"] == symbol]
    assert len(mine) > 20
    by_label = {ln.get_label(): ln for ln in ax.lines}
    price = by_label[f"{symbol} close"]
    j = sample_panel.column(symbol)
    np.testing.assert_allclose(np.asarray(price.get_ydata(), float), sample_panel.close[:, j])
    # the close is drawn at the candle's close time
    np.testing.assert_allclose(_times(price.get_xdata())[:3],
                               _num(sample_panel.index[:3] + pd.Timedelta("5min")))
    entry = by_label[f"entry ({len(mine)})"]
    assert entry.get_marker() == "^" and entry.get_linestyle() == "None"
    assert len(entry.get_xdata()) == len(mine)
    np.testing.assert_allclose(np.asarray(entry.get_ydata(), float), mine["entry_price"].to_numpy())
    exit_markers = 0
    for reason, (marker, _) in EXIT_MARKERS.items():
        part = mine[mine["exit_reason"] == reason]
        label = f"exit: {reason.replace('_', ' ')} ({len(part)})"
        if not len(part):
            assert label not in by_label
            continue
        line = by_label[label]
        assert line.get_marker() == marker
        np.testing.assert_allclose(np.asarray(line.get_ydata(), float), part["exit_price"].to_numpy())
        np.testing.assert_allclose(_times(line.get_xdata()), _num(part["exit_time"]))
        exit_markers += len(line.get_xdata())
    assert exit_markers == len(mine)
    # stop-loss, take-profit and trailing exits all occur and have distinct markers
    assert set(mine["exit_reason"]) >= {"stop_loss", "take_profit", "trailing_stop"}
    assert len({m for m, _ in EXIT_MARKERS.values()}) == len(EXIT_MARKERS)
    # stop and target levels: one segment per trade each, at entry × (1 ∓ pct)
    levels = {c.get_label(): c for c in ax.collections if isinstance(c, LineCollection)}
    stops = levels["stop level"].get_segments()
    targets = levels["target level"].get_segments()
    assert len(stops) == len(targets) == len(mine)
    np.testing.assert_allclose([s[0][1] for s in stops], mine["entry_price"] * (1 - 1.2 / 100))
    np.testing.assert_allclose([s[0][1] for s in targets], mine["entry_price"] * (1 + 2.5 / 100))
    # a stop-loss exit inside a candle fills at the stop level drawn
    stop_exits = mine[(mine["exit_reason"] == "stop_loss")]
    at_level = np.isclose(stop_exits["exit_price"], stop_exits["entry_price"] * (1 - 0.012))
    assert at_level.mean() > 0.5
    assert ax.get_xlabel() == "Time (UTC)" and ax.get_ylabel() == "Price (USDT)"


def test_trade_plot_window_keeps_only_trades_entered_inside(baseline_result, sample_panel):
    fig = plot_trades(baseline_result, "BTC/USDT", sample_panel, start="2021-03-10",
                      end="2021-03-12")
    trades = baseline_result.trades
    t = trades["entry_time"]
    expected = trades[(trades["symbol"] == "BTC/USDT") & (t >= pd.Timestamp("2021-03-10", tz="UTC"))
                      & (t < pd.Timestamp("2021-03-12", tz="UTC"))]
    entry = [ln for ln in fig.axes[0].lines if ln.get_label().startswith("entry")][0]
    assert len(entry.get_xdata()) == len(expected) > 0
    price = fig.axes[0].lines[0]
    assert len(price.get_xdata()) == 2 * 288


def test_trade_plot_needs_a_panel_for_a_loaded_run(baseline_result, tmp_path):
    loaded = BacktestResult.load(baseline_result.save(tmp_path / "run"))
    with pytest.raises(ConfigError, match="pass panel="):
        plot_trades(loaded, "BTC/USDT")
    with pytest.raises(ConfigError, match="not in this panel"):
        plot_trades(baseline_result, "DOGE/USDT")


def test_return_distribution_counts_every_trade(baseline_result):
    fig = plot_return_distribution(baseline_result, bins=40)
    _render(fig)
    (ax,) = fig.axes
    returns = baseline_result.trades["return_pct"]
    assert len(ax.patches) == 40
    assert sum(p.get_height() for p in ax.patches) == len(returns)
    vlines = {ln.get_label().split()[0]: ln.get_xdata()[0] for ln in ax.lines}
    assert vlines["mean"] == pytest.approx(returns.mean())
    assert vlines["median"] == pytest.approx(returns.median())
    assert vlines["zero"] == 0.0
    assert ax.get_xlabel() == "Trade return after costs (%)" and ax.get_ylabel() == "Trades"


@pytest.mark.parametrize("by", ["symbol", "hour"])
def test_breakdown_bars_equal_a_pandas_groupby(baseline_result, by):
    fig = plot_breakdown(baseline_result, by=by)
    _render(fig)
    ax_ret, ax_n = fig.axes
    trades = baseline_result.trades
    key = trades["symbol"] if by == "symbol" else trades["decision_time"].dt.hour
    expected = trades.groupby(key)["return_pct"].agg(["mean", "size"]).sort_index()
    assert len(ax_ret.patches) == len(ax_n.patches) == len(expected)
    np.testing.assert_allclose([p.get_height() for p in ax_ret.patches], expected["mean"])
    assert [p.get_height() for p in ax_n.patches] == expected["size"].tolist()
    assert sum(p.get_height() for p in ax_n.patches) == len(trades)
    labels = [t.get_text() for t in ax_n.get_xticklabels()]
    if by == "symbol":
        assert labels == sorted(trades["symbol"].unique())
    else:
        assert labels == [f"{h:02d}h" for h in expected.index]  # 2h shift: even hours only
        assert all(h % 2 == 0 for h in expected.index)
    assert ax_ret.get_ylabel() == "Average return (%)" and ax_n.get_ylabel() == "Trades"


def test_breakdown_rejects_unknown_grouping(baseline_result):
    with pytest.raises(ConfigError, match="'symbol' or 'hour'"):
        breakdown_table(baseline_result, by="weekday")


def test_comparison_draws_one_curve_per_run(baseline_result, momentum_result):
    fig = plot_comparison([baseline_result, momentum_result], names=["baseline", "momentum"])
    _render(fig)
    ax_eq, ax_dd = fig.axes
    curves = [ln for ln in ax_eq.lines if ln.get_label() != "_child"]
    runs = [ln for ln in curves if ln.get_label().split()[0] in ("baseline", "momentum")]
    assert len(runs) == 2 and len(ax_dd.lines) == 2
    for line, result in zip(runs, [baseline_result, momentum_result], strict=True):
        np.testing.assert_allclose(np.asarray(line.get_ydata(), float), result.equity["equity"])
        assert f"{result.metrics['total_return_pct']:+.2f} %" in line.get_label()
    assert [ln.get_label() for ln in ax_dd.lines] == ["baseline", "momentum"]
    with pytest.raises(ConfigError, match="2 results"):
        plot_comparison([baseline_result, momentum_result], names=["one"])
    default = plot_comparison([baseline_result, baseline_result])
    assert [ln.get_label() for ln in default.axes[1].lines] == ["macd_rsi_confluence #1",
                                                                 "macd_rsi_confluence #2"]


def test_plot_result_dispatches_by_kind(baseline_result, momentum_result, sample_panel):
    assert len(plot_result(baseline_result).axes) == 2
    assert len(plot_result(baseline_result, kind="returns", bins=10).axes[0].patches) == 10
    assert len(plot_result(baseline_result, kind="distribution", bins=7).axes[0].patches) == 7
    both = plot_result(baseline_result, kind="comparison", others=[momentum_result],
                       names=["a", "b"])
    assert [ln.get_label() for ln in both.axes[1].lines] == ["a", "b"]
    with pytest.raises(ConfigError, match="needs others="):
        plot_result(baseline_result, kind="comparison")
    hour = plot_result(baseline_result, kind="breakdown", by="hour")
    assert hour.axes[1].get_xlabel() == "Hour of day (UTC)"
    trades = plot_result(baseline_result, kind="trades", symbol="ETH/USDT", panel=sample_panel)
    assert "ETH/USDT" in trades.axes[0].get_title()
    with pytest.raises(ConfigError, match="Did you mean 'equity'"):
        plot_result(baseline_result, kind="equty")


def test_plots_leave_pyplot_state_alone(baseline_result):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_equity(baseline_result)
    plot_return_distribution(baseline_result)
    assert plt.get_fignums() == before


def test_a_run_without_trades_still_plots(sample_panel):
    from core_engine.backtest import walk_forward
    from core_engine.strategies import MomentumRank

    empty = walk_forward(sample_panel.loc_time("2021-03-01", "2021-03-04"),
                         MomentumRank(min_return=5.0))
    assert empty.metrics["trades"] == 0
    fig = plot_trades(empty, "BTC/USDT", sample_panel)
    assert [ln.get_label() for ln in fig.axes[0].lines] == ["BTC/USDT close", "entry (0)"]
    hist = plot_return_distribution(empty)
    assert len(hist.axes[0].patches) == 0
    assert len(plot_breakdown(empty, by="hour").axes[0].patches) == 0
    equity = plot_equity(empty)
    np.testing.assert_array_equal(equity.axes[0].lines[0].get_ydata(), 1.0)
    for figure in (fig, hist, equity):
        _render(figure)
