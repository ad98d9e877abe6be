"""SyntheticProvider: determinism, slice consistency, the candle contract, realistic statistics."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.data.candles import DiscontinuityWarning, gap_report, validate_candles
from core_engine.data.providers import SyntheticProvider
from core_engine.data.providers.synthetic import BLOCK
from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError

YEAR = ("2021-01-01", "2022-01-01")
STEP = pd.Timedelta("5m")


def test_same_request_same_frame_and_seed_matters():
    a = SyntheticProvider(seed=11).fetch_ohlcv("BTC/USDT", "5m", "2021-01-01", "2021-01-10")
    b = SyntheticProvider(seed=11).fetch_ohlcv("BTC/USDT", "5m", "2021-01-01", "2021-01-10")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    c = SyntheticProvider(seed=12).fetch_ohlcv("BTC/USDT", "5m", "2021-01-01", "2021-01-10")
    d = SyntheticProvider(seed=11).fetch_ohlcv("ETH/USDT", "5m", "2021-01-01", "2021-01-10")
    assert not np.allclose(a["close"], c["close"]) and not np.allclose(a["close"], d["close"])
    assert a["timestamp"].dtype == pd.DatetimeTZDtype("ns", "UTC") and len(a) == 9 * 288


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32), a=st.integers(0, 3 * BLOCK), ab=st.integers(1, 2 * BLOCK),
       bc=st.integers(0, 2 * BLOCK), timeframe=st.sampled_from(["1m", "5m", "1h", "1d"]))
def test_a_sub_range_is_exactly_a_slice_of_a_larger_range(seed, a, ab, bc, timeframe):
    provider = SyntheticProvider(seed=seed)
    step = pd.Timedelta(timeframe_ns(timeframe), unit="ns")
    t0 = pd.Timestamp("2019-11-01", tz="UTC").floor(step)  # straddles the origin (2020-01-01)
    big = provider.fetch_ohlcv("SYN/USDT", timeframe, t0, t0 + (a + ab + bc) * step)
    small = provider.fetch_ohlcv("SYN/USDT", timeframe, t0 + a * step, t0 + (a + ab) * step)
    pd.testing.assert_frame_equal(small, big.iloc[a:a + ab].reset_index(drop=True), check_exact=True)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**63), volatility=st.floats(0.0, 5.0), drift=st.floats(-3.0, 3.0),
       regimes=st.booleans(), gaps=st.sampled_from([0.0, 0.01, 0.5, 0.95]),
       timeframe=st.sampled_from(["1m", "5m", "15m", "4h", "1d"]), n=st.integers(1, 3000),
       start=st.datetimes(min_value=pd.Timestamp("1971-01-01").to_pydatetime(),
                          max_value=pd.Timestamp("2100-01-01").to_pydatetime()))
def test_always_passes_the_candle_contract(seed, volatility, drift, regimes, gaps, timeframe, n, start):
    provider = SyntheticProvider(seed=seed, volatility=volatility, drift=drift, regimes=regimes, gaps=gaps)
    begin = pd.Timestamp(start, tz="UTC")
    frame = provider.fetch_ohlcv("X/USDT", timeframe, begin, begin + pd.Timedelta(n * timeframe_ns(timeframe), unit="ns"))
    # at extreme volatility a random walk may move beyond ×5 between two candles (across a
    # gap, say): a DiscontinuityWarning then, and only then
    jumps = gap_report(frame, timeframe).discontinuities
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validate_candles(frame, timeframe, symbol="X/USDT")
    assert [type(w.message) for w in caught] == ([DiscontinuityWarning] if jumps else [])
    assert len(frame) <= n
    assert np.isfinite(frame[["open", "high", "low", "close", "volume"]].to_numpy()).all()


def test_open_is_the_previous_close_and_wicks_bound_the_body():
    frame = SyntheticProvider(seed=3).fetch_ohlcv("A/B", "5m", *YEAR)
    assert np.array_equal(frame["open"].to_numpy()[1:], frame["close"].to_numpy()[:-1])
    body_top = np.maximum(frame["open"], frame["close"])
    body_bottom = np.minimum(frame["open"], frame["close"])
    assert (frame["high"] >= body_top).all() and (frame["low"] <= body_bottom).all()
    assert (frame["high"] > body_top).mean() > 0.99  # wicks are drawn, not zero


def test_volatility_and_drift_match_the_parameters():
    provider = SyntheticProvider(seed=5, volatility=0.6, drift=0.0, regimes=False)
    per_candle = 0.6 * np.sqrt(STEP / pd.Timedelta(days=365.25))
    estimates = []
    for i in range(8):
        close = provider.fetch_ohlcv(f"S{i}/USDT", "5m", *YEAR)["close"].to_numpy()
        estimates.append(np.diff(np.log(close)).std())
    # 105,119 returns per symbol: the sampling error of a std is ~0.2%; the bridge keeps
    # the per-candle variance at sigma**2 * (1 - 1/BLOCK).
    assert np.mean(estimates) == pytest.approx(per_candle, rel=0.01)
    trending = SyntheticProvider(seed=5, volatility=0.2, drift=2.0, regimes=False)
    growth = [np.log(trending.fetch_ohlcv(f"S{i}/USDT", "1h", *YEAR)["close"].iloc[[0, -1]]).diff().iloc[-1]
              for i in range(8)]
    assert np.mean(growth) == pytest.approx(2.0, abs=0.2)  # std of the mean: 0.2/sqrt(8) = 0.07


def test_regimes_switch_volatility_between_blocks():
    frame = SyntheticProvider(seed=9).fetch_ohlcv("A/B", "5m", "2021-01-01", "2023-01-01")
    returns = np.diff(np.log(frame["close"].to_numpy()))
    ns = frame["timestamp"].astype("int64").to_numpy()[1:]
    block = ns // (300 * 10**9) // BLOCK
    stds = pd.Series(returns).groupby(block).std()
    assert stds.max() / stds.min() > 2.5  # calm vs stormy blocks
    flat = SyntheticProvider(seed=9, regimes=False).fetch_ohlcv("A/B", "5m", "2021-01-01", "2023-01-01")
    flat_stds = pd.Series(np.diff(np.log(flat["close"].to_numpy()))).groupby(block).std()
    assert flat_stds.max() / flat_stds.min() < 1.2


def test_volume_is_positive_lognormal_and_rises_with_the_move():
    frame = SyntheticProvider(seed=2).fetch_ohlcv("A/B", "5m", *YEAR)
    move = np.abs(np.log(frame["close"] / frame["open"]))
    assert (frame["volume"] > 0).all()
    assert move.corr(frame["volume"], method="spearman") > 0.3
    assert 500 < frame["volume"].median() < 2000  # around volume=1000


def test_gaps_drop_candles_and_leave_the_rest_unchanged():
    full = SyntheticProvider(seed=4).fetch_ohlcv("A/B", "5m", *YEAR)
    holed = SyntheticProvider(seed=4, gaps=0.1).fetch_ohlcv("A/B", "5m", *YEAR)
    assert len(holed) / len(full) == pytest.approx(0.9, abs=0.005)
    kept = full[full["timestamp"].isin(holed["timestamp"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(holed, kept, check_exact=True)


def test_a_year_of_5m_candles_for_many_symbols():
    # Its speed (~0.12 s for these 10 symbols on the 2-core box) is timed by the benchmarks
    # that generate their workloads with it, not here: a timed unit test fails on a busy machine.
    provider = SyntheticProvider(seed=0)
    frames = [provider.fetch_ohlcv(s, "5m", *YEAR) for s in provider.symbols()]
    assert sum(len(f) for f in frames) == 10 * 105_120


def test_parameter_errors():
    for kwargs, match in [({"seed": -1}, "'seed'"), ({"gaps": 1.0}, "'gaps'"),
                          ({"volatility": -0.1}, "'volatility'"), ({"start_price": 0}, "'start_price'"),
                          ({"drift": float("nan")}, "'drift'"), ({"n_symbols": 0}, "'n_symbols'"),
                          ({"origin": "1960-01-01"}, "'origin'")]:
        with pytest.raises(ConfigError, match=match):
            SyntheticProvider(**kwargs)
    provider = SyntheticProvider()
    with pytest.raises(ConfigError, match="'start' parameter .* is required"):
        provider.fetch_ohlcv("A/B", "5m", None, "2021-01-01")
    with pytest.raises(ConfigError, match="'timeframe'"):
        provider.fetch_ohlcv("A/B", "five minutes", "2021-01-01", "2021-01-02")
    with pytest.raises(ConfigError, match="after 1970"):
        provider.fetch_ohlcv("A/B", "5m", "1969-12-31", "1970-01-02")
    assert provider.symbols()[:2] == ["SYN000/USDT", "SYN001/USDT"] and len(provider.symbols()) == 10
    assert len(provider.fetch_ohlcv("A/B", "1h", "2021-01-01 00:10", "2021-01-01 00:50")) == 0
