"""walk_forward end to end: equals a plain-loop re-implementation, validates every parameter."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core_engine.backtest import BacktestResult, walk_forward
from core_engine.data.panel import Panel
from core_engine.errors import ConfigError, StrategyError
from core_engine.risk import ExitRules, TopNEqual
from core_engine.strategies.base import Strategy

from .reference import reference_trade


class LastReturn(Strategy):
    """Test strategy without features: score = return over the last ``length`` candles,
    candidates only when positive. Row i uses rows i-length..i only."""

    name = "test_last_return"

    def __init__(self, length: int = 6):
        self.length = length

    @property
    def lookback(self) -> int:
        return self.length

    def score(self, features, panel):
        close = panel.close
        out = np.full(close.shape, np.nan)
        out[self.length:] = close[self.length:] / close[:-self.length] - 1.0
        return np.where(out > 0, out, np.nan)


def reference_run(panel: Panel, strategy: LastReturn, *, window_c: int, shift_c: int, n: int,
                  fee: float, slip: float, exits: dict, atr=None, max_delay=None):
    """Decision times, scores, top-n and trades with plain loops (no engine code).

    ``window_c`` and ``shift_c`` are in 5m candles."""
    step = 300 * 10**9
    W = window_c
    shift_ns = shift_c * step
    t0 = int(panel.index.asi8[0])
    closes = panel.close
    trades = []
    t = -(-t0 // shift_ns) * shift_ns
    last_t = int(panel.index.asi8[-1]) + step - window_c * step
    while t <= last_t:
        i = (t - step - t0) // step
        entry_any = any(not np.isnan(panel.open[i + 1, j]) for j in range(panel.n_symbols)) \
            if i + 1 < panel.n_times else False
        if i >= strategy.length and entry_any:
            cands = []
            for j, sym in enumerate(panel.symbols):
                a, b = closes[i, j], closes[i - strategy.length, j]
                if atr is not None and not np.isfinite(atr[i, j]):
                    continue  # ATR exits need the ATR at the decision row
                if not (np.isnan(a) or np.isnan(b)) and a / b - 1 > 0:
                    cands.append((-(a / b - 1), sym, j))
            cands.sort()
            for rank, (neg, sym, j) in enumerate(cands[:n], start=1):
                tr = reference_trade(panel.open[:, j].tolist(), panel.high[:, j].tolist(),
                                     panel.low[:, j].tolist(), panel.close[:, j].tolist(), i, W,
                                     fee, slip, step=step, time0=t0,
                                     atr=None if atr is None else float(atr[i, j]),
                                     max_delay=max_delay, **exits)
                if tr is not None:
                    tr.update(symbol=sym, rank=rank, score=-neg, decision_time=t)
                    trades.append(tr)
        t += shift_ns
    return trades


def talib_atr(panel: Panel, length: int = 14) -> np.ndarray:
    """TA-Lib ATR of each symbol's own candles (missing ones dropped), placed back on the grid."""
    import talib

    out = np.full((panel.n_times, panel.n_symbols), np.nan)
    for j in range(panel.n_symbols):
        rows = np.flatnonzero(~np.isnan(panel.close[:, j]))
        out[rows, j] = talib.ATR(panel.high[rows, j], panel.low[rows, j], panel.close[rows, j],
                                 timeperiod=length)
    return out


@pytest.mark.parametrize("exits", [{}, {"stop_pct": 0.01, "target_pct": 0.015},
                                   {"stop_pct": 0.01, "trail_pct": 0.012, "target_pct": 0.02},
                                   {"stop_atr": 2.0, "target_atr": 3.0, "trail_atr": 2.5}])
@pytest.mark.parametrize("period", ["feb", "may"])
def test_walk_forward_equals_plain_loop_reference(request, period, exits):
    panel = request.getfixturevalue(f"real_{period}")
    strategy = LastReturn(length=6)
    rules = ExitRules(stop_loss_pct=exits.get("stop_pct", 0) * 100 or None,
                      take_profit_pct=exits.get("target_pct", 0) * 100 or None,
                      trailing_pct=exits.get("trail_pct", 0) * 100 or None,
                      stop_loss_atr=exits.get("stop_atr"), take_profit_atr=exits.get("target_atr"),
                      trailing_atr=exits.get("trail_atr"))
    result = walk_forward(panel, strategy, window="4h", shift="2h", fee_bps=10, slippage_bps=2,
                          max_positions=2, exits=rules)
    atr = talib_atr(panel) if rules.uses_atr else None
    expected = reference_run(panel, strategy, window_c=48, shift_c=24, n=2, fee=0.001,
                             slip=0.0002, exits=exits, atr=atr)
    assert len(result.trades) > 100
    assert_trades_match(result.trades, expected, weight=0.5)


def assert_trades_match(trades, expected, weight):
    assert len(trades) == len(expected)
    for row, ref in zip(trades.itertuples(), expected, strict=True):
        assert row.symbol == ref["symbol"] and row.rank == ref["rank"]
        assert row.decision_time.value == ref["decision_time"]
        assert row.entry_time.value == ref["entry_time"] and row.exit_time.value == ref["exit_time"]
        assert row.score == pytest.approx(ref["score"], rel=1e-12)
        assert row.exit_reason == ref["exit_reason"]
        for field in ("entry_price", "exit_price", "return_pct", "best_return_pct",
                      "max_drawdown"):
            assert getattr(row, field) == pytest.approx(ref[field], rel=1e-12, abs=1e-12)
        assert row.ambiguous == ref["ambiguous"] and row.gaps_in_window == ref["gaps"]
        assert row.exit_delayed_by == ref["delayed_by"]
        assert row.exit_delay_capped == ref["capped"] and row.exit_at_last_close == ref["last_close"]
        assert row.weight == pytest.approx(weight)


EXIT_CHOICES = [{}, {"stop_pct": 0.005}, {"target_pct": 0.006}, {"trail_pct": 0.004},
                {"stop_pct": 0.004, "target_pct": 0.004},
                {"stop_pct": 0.008, "target_pct": 0.01, "trail_pct": 0.006}]


@st.composite
def gappy_runs(draw):
    n = draw(st.integers(30, 250))
    n_sym = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, (n, n_sym)), axis=0))
    open_ = np.vstack([np.full((1, n_sym), 100.0), close[:-1]]) * np.exp(
        rng.normal(0, 0.001, (n, n_sym)))
    high = np.maximum(open_, close) * (1 + rng.exponential(0.002, (n, n_sym)))
    low = np.minimum(open_, close) * (1 - rng.exponential(0.002, (n, n_sym)))
    missing = rng.random((n, n_sym)) < draw(st.sampled_from([0.0, 0.05, 0.2]))
    if draw(st.booleans()):  # an outage: every symbol missing for a while
        a = int(rng.integers(0, n - 5))
        missing[a:a + int(rng.integers(1, 15))] = True
    frames = {}
    start = pd.Timestamp("2021-01-01", tz="UTC") + pd.Timedelta(minutes=5 * draw(st.integers(0, 40)))
    for j in range(n_sym):
        keep = ~missing[:, j]
        frames[f"S{j}"] = pd.DataFrame({
            "timestamp": pd.date_range(start, periods=n, freq="5min").as_unit("ns")[keep],
            "open": open_[keep, j], "high": high[keep, j], "low": low[keep, j],
            "close": close[keep, j], "volume": np.ones(keep.sum())})
    frames = {k: v for k, v in frames.items() if len(v) > 1}
    shift_c = draw(st.sampled_from([1, 3, 6, 12]))
    window_c = draw(st.sampled_from([1, 2, 6, 12, 24]))
    return (frames, shift_c, window_c, draw(st.sampled_from(EXIT_CHOICES)), draw(st.integers(1, 3)),
            draw(st.sampled_from([None, 0, 2])))


@settings(max_examples=30, deadline=None)
@given(case=gappy_runs(), length=st.integers(1, 12))
def test_walk_forward_equals_reference_on_gappy_synthetic_panels(case, length):
    frames, shift_c, window_c, exits, n, max_delay = case
    assume(frames)
    panel = Panel.from_frames(frames, "5m")
    rules = ExitRules(stop_loss_pct=exits.get("stop_pct", 0) * 100 or None,
                      take_profit_pct=exits.get("target_pct", 0) * 100 or None,
                      trailing_pct=exits.get("trail_pct", 0) * 100 or None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # too short for any decision: fine here
        result = walk_forward(panel, LastReturn(length=length), window=f"{5 * window_c}m",
                              shift=f"{5 * shift_c}m", fee_bps=10, slippage_bps=1,
                              max_positions=n, exits=rules, max_exit_delay=max_delay)
    expected = reference_run(panel, LastReturn(length=length), window_c=window_c,
                             shift_c=shift_c, n=n, fee=0.001, slip=0.0001, exits=exits,
                             max_delay=max_delay)
    assert_trades_match(result.trades, expected, weight=1 / n)


class Everyone(LastReturn):
    """Test strategy: every present candle is a candidate with the same score."""

    name = "test_everyone"

    def score(self, features, panel):
        return np.where(np.isnan(panel.close), np.nan, 1.0)


def test_outage_is_reported_in_the_data_quality_section(real_feb):
    result = walk_forward(real_feb, Everyone(), window="2h", shift="1h", max_positions=4)
    dq = result.data_quality
    # 2021-02-11 03:45..04:55 is missing for every symbol: 04:00 has no entry candle
    assert dq["skipped_decision_times"] == {"warm_up": 1, "window_past_data_end": 0,
                                            "no_entry_candle": 1}
    assert dq["missing_candles"] == 15 * 4
    assert dq["missing_candles_by_symbol"] == dict.fromkeys(real_feb.symbols, 15)
    assert dq["gap_candles"] == 60
    # the 02:00 and 03:00 windows run into the outage; the 02:00 one cannot exit at the
    # missing 04:00 open: it stays in the market and exits at 05:00, the first open after
    # the outage (exiting at the 03:40 close would need to know the outage was coming)
    trades = result.trades
    gappy = trades[trades["gaps_in_window"] > 0]
    assert sorted(gappy["decision_time"].dt.strftime("%m-%d %H:%M").unique()) == \
        ["02-11 02:00", "02-11 03:00"]
    assert dq["trades_with_gaps"] == 8 == result.metrics["trades_with_gaps"]
    held = trades[trades["decision_time"] == pd.Timestamp("2021-02-11 02:00", tz="UTC")]
    assert len(held) == 4 and (held["exit_time"] == pd.Timestamp("2021-02-11 05:00", tz="UTC")).all()
    assert not held["exit_at_last_close"].any()
    for _, trade in held.iterrows():
        frame = real_feb.frame(trade["symbol"]).set_index("timestamp")
        if trade["exit_reason"] == "window_end":
            assert trade["exit_price"] == frame.loc[trade["exit_time"], "open"]
    # only the last decision's trades (the window ends with the data) exit at a last close
    assert dq["trades_exit_at_last_close"] == 4
    last_close = trades[trades["exit_at_last_close"]]
    assert sorted(last_close["exit_time"].dt.strftime("%m-%d %H:%M").unique()) == ["02-16 00:00"]
    # 05:00 reads the missing 04:55 candle: no score, no pick, evaluated with 0 trades
    eq = result.equity.set_index("decision_time")
    assert eq.loc[pd.Timestamp("2021-02-11 05:00", tz="UTC"), "n_trades"] == 0
    assert dq["decision_times_evaluated"] == len(eq)


def test_data_forms_store_dict_and_panel_agree(real_may, tmp_path):
    from core_engine.data.store import ParquetStore

    frames = real_may.to_frames()
    store = ParquetStore(tmp_path / "store")
    for symbol, frame in frames.items():
        store.write(symbol, "5m", frame)
    a = walk_forward(real_may, LastReturn(), fee_bps=5)
    b = walk_forward(frames, LastReturn(), fee_bps=5)
    c = walk_forward((store, list(real_may.symbols), "5m"), LastReturn(), fee_bps=5)
    pd.testing.assert_frame_equal(a.trades, b.trades)
    pd.testing.assert_frame_equal(a.trades, c.trades)
    assert a.fingerprint == real_may.fingerprint() == c.fingerprint


def test_late_listing_is_not_counted_as_gaps(real_may):
    frames = real_may.to_frames()
    frames["SOL/USDT"] = frames["SOL/USDT"].iloc[500:-100]  # listed late, data ends early
    frames["BTC/USDT"] = frames["BTC/USDT"].drop(index=[1000, 1001, 1500])  # three gaps
    dq = walk_forward(frames, LastReturn()).data_quality
    assert dq["missing_candles_by_symbol"]["SOL/USDT"] == 600
    assert dq["gap_candles_by_symbol"] == {"BTC/USDT": 3, "ETH/USDT": 0, "SOL/USDT": 0,
                                           "NKN/USDT": 0}
    assert dq["missing_candles"] == 603 and dq["gap_candles"] == 3


def test_start_end_bound_the_decision_times(real_may):
    result = walk_forward(real_may, LastReturn(), start="2021-05-18", end="2021-05-20 04:00")
    eq = result.equity
    assert eq["decision_time"].iloc[0] == pd.Timestamp("2021-05-18", tz="UTC")
    assert eq["decision_time"].iloc[-1] == pd.Timestamp("2021-05-20", tz="UTC")
    assert result.trades["exit_time"].max() <= pd.Timestamp("2021-05-20 04:00", tz="UTC")
    # an end past the data: the windows that would run past the last candle are skipped
    late = walk_forward(real_may, LastReturn(), start="2021-05-22", end="2021-05-24")
    assert late.data_quality["skipped_decision_times"]["window_past_data_end"] == 12
    assert late.equity["decision_time"].iloc[-1] == pd.Timestamp("2021-05-22 20:00", tz="UTC")


def test_allocator_overrides_max_positions_and_weights_sum_to_at_most_one(real_may):
    result = walk_forward(real_may, LastReturn(), allocator=TopNEqual(n=1), max_positions=3)
    assert (result.trades["rank"] == 1).all()
    sums = result.trades.groupby("decision_time")["weight"].sum()
    assert (sums <= 1 + 1e-12).all()


def test_saved_engine_run_reloads_identically(real_may, tmp_path):
    result = walk_forward(real_may, LastReturn(), exits=ExitRules(stop_loss_pct=1.0))
    loaded = BacktestResult.load(result.save(tmp_path / "run"))
    pd.testing.assert_frame_equal(loaded.trades, result.trades, check_dtype=False)
    assert loaded.config["data_fingerprint"] == real_may.fingerprint()
    assert loaded.config["exits"]["stop_loss_pct"] == 1.0
    assert loaded.config["strategy"]["params"] == {"length": 6}
    assert "Trades" in loaded.summary()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"window": "-2h"}, "The 'window' parameter of walk_forward must be a positive duration such as '4h'. Got '-2h'."),
    ({"shift": "soon"}, "The 'shift' parameter of walk_forward must be a positive duration such as '2h'. Got 'soon'."),
    ({"window": "7m"}, "The 'window' parameter of walk_forward must be a multiple of the panel's 5m timeframe. Got '7m'."),
    ({"fee_bps": -1}, "The 'fee_bps' parameter of walk_forward must be a number in [0, 10000) basis points. Got -1."),
    ({"slippage_bps": float("nan")}, "The 'slippage_bps' parameter of walk_forward must be a number"),
    ({"max_positions": 0}, "The 'max_positions' parameter of walk_forward must be an integer >= 1. Got 0."),
    ({"initial_cash": 5000}, "these apply to mode='portfolio' only"),
    ({"mode": "slice"}, "The 'mode' parameter of walk_forward must be one of ['slices', 'portfolio']. Got 'slice'."),
    ({"audit": -1}, "The 'audit' parameter of walk_forward must be an integer >= 0. Got -1."),
    ({"exits": {"stop_loss_pct": 2}}, "The 'exits' parameter of walk_forward must be ExitRules(...) or None."),
    ({"gates": ["max_atr"]}, "The 'gates' parameter of walk_forward must hold Gate objects. Got 'max_atr'."),
    ({"gates": 5}, "The 'gates' parameter of walk_forward must be a list of Gate objects. Got 5."),
    ({"allocator": 3}, "The 'allocator' parameter of walk_forward must be an Allocator"),
    ({"start": "2021-05-20", "end": "2021-05-19"}, "The 'end' parameter of walk_forward must be after 'start'."),
    ({"start": "not a date"}, "The 'start' parameter must be a time"),
])
def test_invalid_parameters_raise_config_error(real_may, kwargs, message):
    with pytest.raises(ConfigError) as info:
        walk_forward(real_may, LastReturn(), **kwargs)
    assert message in str(info.value)


def test_invalid_data_and_strategy(real_may):
    with pytest.raises(ConfigError, match="'data' argument of walk_forward must be a Panel"):
        walk_forward([1, 2], LastReturn())
    with pytest.raises(ConfigError, match="'strategy' parameter of walk_forward must be a Strategy"):
        walk_forward(real_may, 42)
    with pytest.raises(ConfigError, match=r"Got the class LastReturn; pass LastReturn\(\) instead"):
        walk_forward(real_may, LastReturn)


class Broken(LastReturn):
    name = "test_broken"

    def score(self, features, panel):
        raise ZeroDivisionError("boom")


class BrokenFeatures(LastReturn):
    name = "test_broken_features"

    def features(self):
        raise KeyError("no such feature")


def test_strategy_failure_becomes_strategy_error(real_may):
    with pytest.raises(StrategyError, match="boom"):
        walk_forward(real_may, Broken())
    with pytest.raises(StrategyError, match=r"BrokenFeatures\(\) failed in"):
        walk_forward(real_may, BrokenFeatures())


def test_inputs_are_not_mutated(real_may):
    before = {f: getattr(real_may, f).copy() for f in ("open", "high", "low", "close", "volume")}
    walk_forward(real_may, LastReturn(), exits=ExitRules(trailing_pct=1.0))
    for f, values in before.items():
        np.testing.assert_array_equal(getattr(real_may, f), values)


def test_feature_cache_and_progress(real_may, capsys):
    from core_engine.features.cache import FeatureCache
    from core_engine.strategies import MacdRsiConfluence

    cache = FeatureCache()
    a = walk_forward(real_may, MacdRsiConfluence(), cache=cache, progress=True)
    b = walk_forward(real_may, MacdRsiConfluence(), cache=cache)
    c = walk_forward(real_may, MacdRsiConfluence())
    pd.testing.assert_frame_equal(a.trades, b.trades)
    pd.testing.assert_frame_equal(a.trades, c.trades)
    assert len(a.trades) > 0
    err = capsys.readouterr().err
    assert "walk_forward:" in err and "/4 [" in err  # the stage bar, four stages


@pytest.mark.parametrize("name", ["macd_rsi_confluence", "momentum_rank"])
@pytest.mark.parametrize("period", ["feb", "may"])
def test_row_local_scoring_gives_the_same_run(request, period, name):
    from core_engine.strategies import get_strategy

    panel = request.getfixturevalue(f"real_{period}")
    everywhere = get_strategy(name)
    decision_rows_only = get_strategy(name)
    decision_rows_only.row_local = True  # opt-in: the score of row i reads row i only
    kwargs = {"exits": ExitRules(stop_loss_atr=2.0), "max_positions": 2}
    a = walk_forward(panel, everywhere, **kwargs)
    b = walk_forward(panel, decision_rows_only, audit=2, **kwargs)
    assert len(a.trades) > 20
    pd.testing.assert_frame_equal(a.trades, b.trades)
    pd.testing.assert_frame_equal(a.equity, b.equity)


def test_too_short_data_warns_and_gives_an_empty_result(real_may):
    with pytest.warns(UserWarning, match="evaluated no decision time"):
        result = walk_forward(real_may.slice_rows(0, 40), LastReturn())
    assert len(result.trades) == 0 and result.metrics["trades"] == 0
    assert "Trades" in result.summary()
