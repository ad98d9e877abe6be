"""Gates: obvious hand-built cases, references (TA-Lib, pandas), NaN = not eligible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.errors import ConfigError, StrategyError
from core_engine.features.cache import compute_features
from core_engine.risk import (
    CustomGate,
    MaxATRPct,
    MaxSpreadProxy,
    MinQuoteVolume,
    TopNEqual,
    apply_gates,
    gate_features,
)

NAN = np.nan


def _features(gates, panel):
    return compute_features(gate_features(gates), panel)


def test_max_spread_proxy_hand_built(build_panel):
    close = np.full((6, 2), 100.0)
    high = np.column_stack([np.full(6, 100.25), np.full(6, 101.0)])
    low = np.column_stack([np.full(6, 99.75), np.full(6, 99.0)])
    high[4, 0] = 103.0  # one wide candle on S0: 3.25 % range
    panel = build_panel(close, high, low)
    gate = MaxSpreadProxy(max_pct=1.0, length=3)
    np.testing.assert_allclose(gate.range_pct(panel)[:, 0], [NAN, NAN, 0.5, 0.5, 1.4166666666666667, 1.4166666666666667], rtol=1e-12)
    # S0: 0.5 % mean range passes from row 2 (warm-up) until the wide candle enters the window
    assert gate.mask({}, panel)[:, 0].tolist() == [False, False, True, True, False, False]
    assert not gate.mask({}, panel)[:, 1].any()  # S1: 2 % range, never eligible


def test_max_spread_proxy_matches_pandas_and_is_nan_aware(random_panel):
    gate = MaxSpreadProxy(max_pct=0.8, length=12)
    got = gate.range_pct(random_panel)
    rng = pd.DataFrame((random_panel.high - random_panel.low) / random_panel.close * 100)
    expected = rng.rolling(12).mean().to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, equal_nan=True)
    assert not gate.mask({}, random_panel)[100:114, 1].any()  # missing candles in the window


def test_max_atr_pct_equals_talib_threshold(random_panel):
    gate = MaxATRPct(max_atr_pct=1.2, length=14)
    features = _features([gate], random_panel)
    j = 0
    p = random_panel
    atr_pct = talib.ATR(p.high[:, j], p.low[:, j], p.close[:, j], 14) / p.close[:, j] * 100
    expected = np.nan_to_num(atr_pct, nan=np.inf) <= 1.2
    mask = gate.mask(features, p)
    assert 0 < expected.sum() < len(expected)
    np.testing.assert_array_equal(mask[:, j], expected)
    assert not mask[:14].any()  # warm-up is not eligible


def test_min_quote_volume_hand_built(build_panel):
    close = np.array([[10.0, 1.0]] * 5)
    volume = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0], [5.0, 5.0]])
    volume[3, 1] = NAN
    close[3, 1] = NAN
    panel = build_panel(close, volume=volume)
    gate = MinQuoteVolume(min_quote_volume=50.0, lookback=2)
    mask = gate.mask(_features([gate], panel), panel)
    # S0 quote volume over 2 candles: -, 30, 50, 70, 90 -> eligible from row 2
    assert mask[:, 0].tolist() == [False, False, True, True, True]
    # S1: 10 per candle, never 50; the missing candle is not eligible either
    assert not mask[:, 1].any()


def test_custom_gate_and_and_combination(random_panel):
    only_btc = CustomGate(fn=lambda f, p: np.tile([s == "BTC/USDT" for s in p.symbols], (p.n_times, 1)),
                          name="only_btc")
    spread = MaxSpreadProxy(max_pct=5.0, length=3)
    mask = apply_gates([only_btc, spread], {}, random_panel)
    assert mask.dtype == np.bool_ and mask.shape == (600, 4)
    assert not mask[:, [0, 2, 3]].any()
    np.testing.assert_array_equal(mask[:, 1], spread.mask({}, random_panel)[:, 1])
    assert apply_gates([], {}, random_panel).all()
    as_float = CustomGate(fn=lambda f, p: np.where(p.close > 50, 1.0, NAN), name="float")
    np.testing.assert_array_equal(as_float.mask({}, random_panel), np.nan_to_num(random_panel.close) > 50)


def test_gate_errors_are_clear(random_panel):
    with pytest.raises(ConfigError, match="'max_atr_pct' parameter of MaxATRPct"):
        MaxATRPct(max_atr_pct=-1)
    with pytest.raises(ConfigError, match="'lookback' parameter of MinQuoteVolume"):
        MinQuoteVolume(min_quote_volume=1.0, lookback=0)
    with pytest.raises(ConfigError, match="'max_pct' parameter of MaxSpreadProxy"):
        MaxSpreadProxy(max_pct=float("nan"))
    with pytest.raises(ConfigError, match=r"MaxATRPct needs the parameter\(s\) \[.max_atr_pct.\]"):
        MaxATRPct()
    with pytest.raises(ConfigError, match="callable"):
        CustomGate(fn=3, name="x")
    with pytest.raises(ConfigError, match="atr_pct_14"):
        MaxATRPct(max_atr_pct=1.0).mask({}, random_panel)
    with pytest.raises(StrategyError, match="'boom' failed: KeyError"):
        CustomGate(fn=lambda f, p: f["nope"], name="boom").mask({}, random_panel)
    with pytest.raises(StrategyError, match="shape"):
        CustomGate(fn=lambda f, p: np.ones(3, bool), name="short").mask({}, random_panel)
    with pytest.raises(ConfigError, match="Gate objects"):
        apply_gates([lambda f, p: None], {}, random_panel)


def test_gates_are_causal(random_panel):
    gates = [MaxATRPct(max_atr_pct=1.5), MinQuoteVolume(min_quote_volume=1e3, lookback=24),
             MaxSpreadProxy(max_pct=1.5, length=6)]
    full = apply_gates(gates, _features(gates, random_panel), random_panel)
    for cut in (50, 301, 599):
        short = random_panel.slice_rows(0, cut)
        np.testing.assert_array_equal(apply_gates(gates, _features(gates, short), short), full[:cut])


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.2, 3.0), st.integers(1, 4))
def test_no_pick_that_a_gate_rejected(seed, max_pct, n):
    rng = np.random.default_rng(seed)
    n_times, n_sym = 40, 6
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_times, n_sym)), axis=0))
    wick = np.abs(rng.normal(0, 0.01, (n_times, n_sym)))
    from core_engine.data.panel import Panel

    index = pd.date_range("2021-01-01", periods=n_times, freq="5min", tz="UTC")
    panel = Panel(index, tuple(f"X{j}" for j in range(n_sym)), "5m", close, close * (1 + wick),
                  close * (1 - wick), close, np.ones_like(close))
    gate = MaxSpreadProxy(max_pct=max_pct, length=3)
    eligible = apply_gates([gate], {}, panel)
    scores = rng.normal(size=(n_times, n_sym))
    alloc = TopNEqual(n=n).allocate(scores, eligible, panel.symbols)
    rows, slots = np.nonzero(alloc.picks >= 0)
    assert eligible[rows, alloc.picks[rows, slots]].all()
    assert (alloc.picks[~eligible.any(axis=1)] == -1).all()
