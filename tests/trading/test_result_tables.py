"""Pieces of a replay's result computed without pandas' slow paths equal the pandas forms
they replace, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.trading import SimBroker, Trader, replay
from core_engine.trading.results import _daily_returns, _no_trades
from tests.trading.conftest import make_panel


def _pandas_daily_returns(times_ns, value, initial_cash):
    times = pd.DatetimeIndex(times_ns, tz="UTC")
    daily = pd.Series(value, index=times).resample("1D").last().dropna()
    if not len(daily):
        return np.empty(0)
    return (pd.concat([pd.Series([initial_cash]), daily.reset_index(drop=True)])
            .pct_change().dropna().to_numpy())


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 400), step_min=st.sampled_from([5, 60, 240, 1440]),
       start=st.integers(0, 10**6), seed=st.integers(0, 2**16),
       nan_share=st.sampled_from([0.0, 0.1, 0.9]), zeros=st.booleans())
def test_daily_returns_equal_the_pandas_resample(n, step_min, start, seed, nan_share, zeros):
    rng = np.random.default_rng(seed)
    times = (start * 60 + np.arange(n, dtype=np.int64) * step_min * 60) * 10**9
    value = 1_000.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    value[rng.random(n) < nan_share] = np.nan
    if zeros and n:
        value[rng.integers(0, n, 3)] = 0.0  # 0/0 and x/0 in the returns
    got = _daily_returns(times, value, 1_000.0)
    want = _pandas_daily_returns(times, value, 1_000.0)
    np.testing.assert_array_equal(got, want)


def test_a_replay_without_trades_gets_the_typed_empty_frame_not_a_shared_one():
    panel = make_panel([(100, 101, 99, 100, 10)] * 4)
    first = replay(Trader(), panel, SimBroker())
    trades = first._trades
    trades.attrs["mutated"] = True
    trades["changed"] = pd.Series(dtype=float)  # the first result's own frame changed
    second = replay(Trader(), panel, SimBroker())
    assert len(second.trades) == 0 and "mutated" not in second.trades.attrs
    assert "mutated" not in _no_trades().attrs and len(_no_trades()) == 0
    dtypes = second.trades.dtypes
    assert str(dtypes["entry_time"]).startswith("datetime64") and dtypes["rank"] == np.int64
    assert dtypes["return_pct"] == np.float64 and dtypes["ambiguous"] == np.bool_
