"""Pieces of a replay's result computed without pandas' slow paths equal the pandas forms
they replace, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.trading import SimBroker, Trader, replay
from core_engine.trading.results import _daily_returns
from core_engine.trading.trips import _no_trades
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


def _numpy_equity(close, snapshots, start_row, end_row, initial_cash):
    """The equity frame's columns as the vectorised numpy form computes them (the form the
    kernel replaced): a row's account is the last snapshot at or before it, valued at the
    forward-filled closes."""
    rows = np.arange(start_row, end_row + 1)
    snap_rows = np.array([s[0] for s in snapshots])
    cash = np.array([s[1] for s in snapshots])
    holdings = np.array([s[2] for s in snapshots])
    pick = np.searchsorted(snap_rows, rows, "right") - 1
    last = pd.DataFrame(close[: end_row + 1]).ffill().to_numpy()[start_row:]
    held = holdings[pick]
    exposure = np.nansum(held * np.where(held != 0, last, 0.0), axis=1)
    value = np.concatenate([[initial_cash], cash[pick] + exposure])
    peak = np.maximum.accumulate(np.maximum(value, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        drawdown = np.maximum(np.where(peak > 0, (1.0 - value / peak) * 100.0, 0.0), 0.0)
    return {"equity": value, "cash": np.concatenate([[initial_cash], cash[pick]]),
            "exposure": np.concatenate([[0.0], exposure]),
            "positions": np.concatenate([[0], (held > 0).sum(axis=1)]),
            "drawdown_pct": drawdown}


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 120), k=st.integers(1, 11), seed=st.integers(0, 2**16),
       nan_share=st.sampled_from([0.0, 0.2, 0.95]), data=st.data())
def test_the_equity_kernel_equals_the_numpy_form(n, k, seed, nan_share, data):
    """Missing closes carried forward (also from before the first row, or none yet),
    several snapshots of one row (the last holds), rows without a snapshot, short
    holdings and cash going below zero and back (the peak, the drawdown)."""
    from core_engine.trading.results import equity_frame

    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, k)), axis=0))
    close[rng.random((n, k)) < nan_share] = np.nan
    start_row = data.draw(st.integers(0, n - 1))
    end_row = data.draw(st.integers(start_row, n - 1))
    rows = np.sort(rng.integers(start_row, end_row + 1, rng.integers(0, 2 * n + 1)))
    snapshots = [(start_row - 1, 1_000.0, np.zeros(k))]
    for row in rows.tolist():
        hold = np.where(rng.random(k) < 0.5, 0.0, rng.normal(1.0, 2.0, k))
        snapshots.append((row, float(rng.normal(500.0, 1_500.0)), hold))
    index = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")
    from core_engine.data.panel import Panel

    panel = Panel(index=index, symbols=tuple(f"S{j}/USDT" for j in range(k)), timeframe="5m",
                  open=close, high=close, low=close, close=close,
                  volume=np.where(np.isnan(close), np.nan, 1.0))
    got = equity_frame(panel, snapshots, start_row, end_row, 1_000.0)
    want = _numpy_equity(close, snapshots, start_row, end_row, 1_000.0)
    assert list(got.columns) == ["time", "equity", "cash", "exposure", "positions",
                                 "drawdown_pct"]
    for col, values in want.items():
        # the exposure sums symbols in order; numpy's nansum pairs them from 8 on
        np.testing.assert_allclose(got[col].to_numpy(), values, rtol=1e-12, atol=1e-9,
                                   err_msg=col)
    assert got["positions"].dtype == np.int64
    times = panel.index.asi8[start_row:end_row + 1]
    assert got["time"].iloc[0].value == times[0]
    np.testing.assert_array_equal(pd.DatetimeIndex(got["time"]).asi8[1:],
                                  times + panel.step_ns)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=5), st.none(), st.just(float("nan")),
                          st.integers(-3, 3), st.booleans(), st.floats(-1.0, 1.0)),
                max_size=12),
       st.booleans())
def test_a_column_of_cells_has_the_dtype_and_values_pandas_infers(cells, strings_only):
    """The orders and fills frames build their string columns through Arrow (``_cells``):
    the same frame as pandas' own inference, whatever the cells (None and NaN among
    strings, numbers, booleans, mixtures)."""
    from core_engine.trading.results import _cells

    if strings_only:
        cells = [c for c in cells if c is None or isinstance(c, str)]
    got = pd.DataFrame({"c": _cells(list(cells))})
    want = pd.DataFrame({"c": list(cells)})
    pd.testing.assert_frame_equal(got, want)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 300), seed=st.integers(0, 2**16),
       nan_share=st.sampled_from([0.0, 0.1, 1.0]), flat_share=st.sampled_from([0.0, 0.5]))
def test_the_account_pass_equals_the_numpy_forms(n, seed, nan_share, flat_share):
    """The longest run below the peak and the mean exposure share (over marks with a
    positive value, NaN skipped) from ``account_marks`` equal the numpy forms."""
    from core_engine.trading._kernels import account_marks

    rng = np.random.default_rng(seed)
    value = rng.normal(100.0, 80.0, n)
    value[rng.random(n) < nan_share] = np.nan
    exposure = rng.normal(50.0, 30.0, n)
    exposure[rng.random(n) < 0.1] = np.nan
    dd = np.where(rng.random(n) < flat_share, 0.0, rng.uniform(0.0, 5.0, n))
    times = np.arange(n, dtype=np.int64) * 3600 * 10**9
    _, longest, total, count = account_marks(times, value, dd, exposure, 100.0)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], (dd > 0).astype(np.int8), [0]))))
    assert longest == (int((edges[1::2] - edges[::2]).max()) if len(edges) else 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(value > 0, exposure / value, np.nan)
    if np.isnan(shares).all():
        assert count == 0
    else:
        np.testing.assert_allclose(total / count, np.nanmean(shares), rtol=1e-12)
