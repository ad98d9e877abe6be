"""Built-in strategies on hand-built inputs where the right picks are obvious."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib

from core_engine.data.panel import Panel
from core_engine.errors import ConfigError
from core_engine.strategies import (
    Breakout,
    MacdRsiConfluence,
    MomentumRank,
    MovingAverageCrossover,
    rank_candidates,
)

NAN = np.nan


def panel_from(close, volume=None, high=None, low=None, symbols=None) -> Panel:
    close = np.asarray(close, dtype=np.float64)
    open_ = np.vstack([close[:1], close[:-1]])
    high = np.maximum(open_, close) if high is None else np.asarray(high, dtype=np.float64)
    low = np.minimum(open_, close) if low is None else np.asarray(low, dtype=np.float64)
    volume = np.ones_like(close) if volume is None else np.asarray(volume, dtype=np.float64)
    symbols = symbols or tuple(f"S{j}" for j in range(close.shape[1]))
    index = pd.date_range("2021-04-01", periods=close.shape[0], freq="5min", tz="UTC")
    return Panel(index, tuple(symbols), "5m", open_, high, low, close, volume)


# ---------------------------------------------------------------------- MACD/RSI confluence
def confluence_features(atr_pct, slope, rsi, momentum, volume_z):
    row = lambda v: np.array([v], dtype=np.float64)  # noqa: E731
    return {"atr_pct_14": row(atr_pct), "macd_hist_slope_12_26_9": row(slope), "rsi_14": row(rsi),
            "return_24": row(momentum), "volume_zscore_20": row(volume_z)}


def test_confluence_declares_the_documented_columns():
    assert MacdRsiConfluence().columns() == {
        "rsi": "rsi_14", "macd_hist_slope": "macd_hist_slope_12_26_9", "atr_pct": "atr_pct_14",
        "momentum": "return_24", "volume_zscore": "volume_zscore_20"}


def test_confluence_gates_and_ranks_by_candidate_zscores():
    # S0 too volatile, S1 histogram falling, S2 RSI too high; S3, S4, S5 are candidates
    features = confluence_features(
        atr_pct=[2.0, 0.5, 0.5, 0.5, 0.5, 1.5],
        slope=[0.1, -0.1, 0.1, 0.1, 0.2, 0.1],
        rsi=[50, 50, 65.5, 40.0, 65.0, 55],
        momentum=[0.5, 0.5, 0.5, 0.02, 0.01, 0.03],
        volume_z=[9.0, 9.0, 9.0, 1.0, 2.0, -1.0],
    )
    panel = panel_from(np.ones((1, 6)))
    scores = MacdRsiConfluence().score(features, panel)
    # candidate z-scores: momentum (0, -sqrt(1.5), sqrt(1.5)); volume (1, 4, -5) / sqrt(14)
    z_mom = np.array([0.0, -math.sqrt(1.5), math.sqrt(1.5)])
    z_vol = np.array([1.0, 4.0, -5.0]) / math.sqrt(14)
    np.testing.assert_allclose(scores[0, :3], [NAN] * 3)
    np.testing.assert_allclose(scores[0, 3:], 0.5 * z_mom + 0.5 * z_vol, rtol=1e-12)
    assert rank_candidates(scores[0], panel.symbols) == ["S3", "S5", "S4"]
    heavy_momentum = MacdRsiConfluence(momentum_weight=0.8).score(features, panel)
    assert rank_candidates(heavy_momentum[0], panel.symbols) == ["S5", "S3", "S4"]
    strict = MacdRsiConfluence(max_atr_pct=1.0, rsi_high=60).score(features, panel)
    assert rank_candidates(strict[0], panel.symbols) == ["S3"]
    assert strict[0, 3] == 0.0  # a lone candidate: z-scores undefined -> 0


def test_confluence_nan_inputs_are_not_candidates():
    features = confluence_features(atr_pct=[NAN, 0.5, 0.5], slope=[0.1, NAN, 0.1],
                                   rsi=[50, 50, 50], momentum=[0.1, 0.1, NAN], volume_z=[1, 1, 1])
    assert np.isnan(MacdRsiConfluence().score(features, panel_from(np.ones((1, 3))))).all()


@pytest.mark.parametrize(
    ("params", "name"),
    [({"rsi_low": 70}, "rsi_low"), ({"macd_fast": 30}, "macd_fast"), ({"max_atr_pct": 0}, "max_atr_pct"),
     ({"momentum_weight": 1.5}, "momentum_weight"), ({"rsi_length": 2.5}, "rsi_length")],
)
def test_confluence_invalid_params(params, name):
    with pytest.raises(ConfigError, match=f"'{name}' parameter of MacdRsiConfluence"):
        MacdRsiConfluence(**params)


def test_confluence_end_to_end_on_an_obvious_panel():
    # S0 oscillates upwards (healthy RSI, rising MACD histogram at the end), S1 crashes
    n = 120
    t = np.arange(n)
    up = 100 * (1 + 0.0004 * t + 0.004 * np.sin(t / 3.0))
    down = 100 * (1 - 0.004 * t)
    panel = panel_from(np.column_stack([up, down]), volume=np.column_stack([1 + t % 7, 1 + t % 5]))
    strategy = MacdRsiConfluence(max_atr_pct=3.0)
    scores = strategy.score_panel(panel)
    rsi = talib.RSI(up, 14)
    _, _, hist = talib.MACD(up, 12, 26, 9)
    atr_pct = talib.ATR(panel.high[:, 0], panel.low[:, 0], up, 14) / up * 100
    slope = np.concatenate([[NAN], np.diff(hist)])
    expected = (rsi >= 40) & (rsi <= 65) & (slope > 0) & (atr_pct <= 3.0)
    assert 5 < expected.sum() < n - 40
    np.testing.assert_array_equal(np.isfinite(scores[:, 0]), expected)
    assert not np.isfinite(scores[:, 1]).any()  # RSI of a crash is far below 40


# ---------------------------------------------------------------------- MomentumRank
def test_momentum_rank_picks_rising_volume_confirmed_symbols():
    n = 40
    t = np.arange(n, dtype=np.float64)
    close = np.column_stack([100 * 1.01 ** t, 100 * 1.02 ** t, 100 * 0.99 ** t, 100 * 1.005 ** t])
    rising, falling = 1 + t, 100 - t
    volume = np.column_stack([rising, falling, rising, rising])
    panel = panel_from(close, volume=volume, symbols=("AAA", "BBB", "CCC", "DDD"))
    scores = MomentumRank(length=10).score_panel(panel)
    assert rank_candidates(scores[-1], panel.symbols) == ["AAA", "DDD"]  # BBB: volume falls
    np.testing.assert_allclose(scores[-1, [0, 3]], [1.01 ** 10 - 1, 1.005 ** 10 - 1], rtol=1e-12)
    assert np.isnan(scores[:19]).all()  # volume trend warm-up: slow window of 20
    everything = MomentumRank(length=10, min_volume_trend=-1.0, min_return=-1.0).score_panel(panel)
    assert rank_candidates(everything[-1], panel.symbols) == ["BBB", "AAA", "DDD", "CCC"]
    assert MomentumRank(length=10).lookback == 19


# ---------------------------------------------------------------------- Breakout
def breakout_panel():
    n = 60
    base = 100 + 0.1 * np.array([0.0, 1.0, 0.0, -1.0])[np.arange(n) % 4]  # flat, highs 100.1
    close = np.column_stack([base, base, base])
    close[-1, 0] = 103.0  # breakout with a volume spike
    close[-1, 1] = 102.0  # breakout without volume
    volume = np.ones((n, 3)) + 0.01 * (np.arange(n)[:, None] % 3)
    volume[-1, 0] = 50.0
    return panel_from(close, volume=volume, symbols=("XXX", "YYY", "ZZZ"))


def test_breakout_needs_the_breakout_and_enough_confirmations():
    panel = breakout_panel()
    strategy = Breakout(length=20, min_confirmations=2)
    scores = strategy.score_panel(panel)
    conf = strategy.confidence_panel(panel)
    prev_high = panel.high[-21:-1, 0].max()
    assert prev_high == 100.1
    # XXX: EMA trend + volume spike (RSI is overbought after a 3 % jump) -> 2 confirmations
    assert rank_candidates(scores[-1], panel.symbols) == ["XXX"]
    assert scores[-1, 0] == pytest.approx(103.0 / prev_high - 1, rel=1e-12)
    assert conf[-1, 0] == 2 and np.isnan(conf[-1, 1:]).all()
    assert np.isnan(scores[:-1]).all()  # nothing breaks out before
    loose = Breakout(length=20, min_confirmations=1)
    assert rank_candidates(loose.score_panel(panel)[-1], panel.symbols) == ["XXX", "YYY"]
    assert loose.confidence_panel(panel)[-1, 1] == 1
    scaled = Breakout(length=20, min_confirmations=1, scale_by_confidence=True).score_panel(panel)
    assert scaled[-1, 0] == pytest.approx(2 * (103.0 / prev_high - 1), rel=1e-12)


def test_breakout_compares_with_the_previous_candles_high_not_its_own():
    panel = breakout_panel()
    # a close above every earlier high is a breakout although the candle's own high is higher
    high = panel.high.copy()
    high[-1, 0] = 110.0
    bumped = panel.with_fields(high=high)
    assert np.isfinite(Breakout(length=20).score_panel(bumped)[-1, 0])


def test_breakout_params():
    with pytest.raises(ConfigError, match="'min_confirmations'"):
        Breakout(min_confirmations=4)
    with pytest.raises(ConfigError, match="'scale_by_confidence'"):
        Breakout(scale_by_confidence=1)
    with pytest.raises(ConfigError, match="'ema_fast' parameter of Breakout must be below 'ema_slow'"):
        Breakout(ema_fast=30)


# ---------------------------------------------------------------------- MA crossover
def test_ma_crossover_trend_and_fresh_crosses():
    n = 80
    t = np.arange(n, dtype=np.float64)
    rising = 100 + t
    falling = 200 - t
    v_shape = np.where(t < 60, 200 - 2 * t, 80 + 3 * (t - 60))  # turns up at row 60
    close = np.column_stack([rising, falling, v_shape])
    panel = panel_from(close, symbols=("UP", "DOWN", "TURN"))
    for kind, ref in (("ema", talib.EMA), ("sma", talib.SMA)):
        strategy = MovingAverageCrossover(kind=kind, fast=5, slow=20)
        scores = strategy.score_panel(panel)
        fast, slow = ref(rising, 5), ref(rising, 20)
        np.testing.assert_allclose(scores[19:, 0], (fast - slow)[19:] / slow[19:], rtol=1e-12)
        assert np.isnan(scores[:, 1]).all()
        assert np.isnan(scores[:19]).all()
    gap = talib.EMA(v_shape, 5) - talib.EMA(v_shape, 20)
    cross = int(np.argmax(gap > 0))
    assert 60 < cross < 75 and (gap[cross:] > 0).all()
    fresh = MovingAverageCrossover(fast=5, slow=20, fresh_within=3).score_panel(panel)
    assert np.isfinite(fresh[:, 2]).nonzero()[0].tolist() == [cross, cross + 1, cross + 2]
    assert np.isnan(fresh[:, 0]).all()  # UP crossed long ago (never from below after warm-up)
    assert MovingAverageCrossover(fast=5, slow=20, fresh_within=3).lookback == 19 + 1


def test_ma_crossover_params():
    with pytest.raises(ConfigError, match=r"'kind' parameter.*Got 'emma'. Did you mean 'ema'\?"):
        MovingAverageCrossover(kind="emma")
    with pytest.raises(ConfigError, match="'fresh_within'"):
        MovingAverageCrossover(fresh_within=0)
