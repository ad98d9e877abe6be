"""Panel: alignment on one grid, NaN for missing candles, views, fingerprint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.data import FIELDS, Panel
from core_engine.errors import ConfigError, DataValidationError


def test_alignment_with_holes_and_different_spans(make_candles):
    a = make_candles(50, seed=1)
    b = make_candles(30, seed=2, start="2021-01-01 01:00").drop(index=[3, 4, 10]).reset_index(drop=True)
    panel = Panel.from_frames({"A/USDT": a, "B/USDT": b}, "5m")
    assert panel.symbols == ("A/USDT", "B/USDT")
    assert panel.n_times == 50 and panel.index[0] == a["timestamp"].iloc[0]
    assert np.isnan(panel.close[:12, 1]).all()
    assert np.isnan(panel.close[12 + 3, 1]) and np.isnan(panel.close[12 + 10, 1])
    assert panel.close[12 + 5, 1] == b["close"].iloc[3]
    for name in FIELDS:
        values = panel.field(name)
        assert values.dtype == np.float64 and values.flags.f_contiguous
        assert not values.flags.writeable
    pd.testing.assert_frame_equal(panel.frame("B/USDT"), b)
    pd.testing.assert_frame_equal(panel.frame("A/USDT"), a)
    assert "2 symbols × 50 5m candles" in repr(panel)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 60), drop=st.lists(st.integers(0, 59), max_size=20), seed=st.integers(0, 99))
def test_round_trip_frames(make_candles, n, drop, seed):
    frame = make_candles(n, seed=seed)
    keep = sorted(set(range(n)) - {d for d in drop if d < n} | {0})
    frame = frame.iloc[keep].reset_index(drop=True)
    other = make_candles(n, seed=seed + 1)
    panel = Panel.from_frames({"X": frame, "Y": other}, "5m")
    pd.testing.assert_frame_equal(panel.frame("X"), frame)
    assert panel.present[:, 0].sum() == len(frame)


def test_start_end_filter_and_views(make_candles):
    frame = make_candles(100)
    panel = Panel.from_frames({"A": frame}, "5m", start="2021-01-01 01:00", end="2021-01-01 02:00")
    assert panel.n_times == 12 and panel.index[0] == pd.Timestamp("2021-01-01 01:00", tz="UTC")
    full = Panel.from_frames({"A": frame, "B": frame}, "5m")
    assert full.loc_time("2021-01-01 00:30", "2021-01-01 00:40").n_times == 2
    assert full.select(["B"]).symbols == ("B",)
    # a decision at 01:00 may use candles that closed by 01:00: the last one opened 00:55
    known = full.known_at("2021-01-01 01:00")
    assert known.index[-1] == pd.Timestamp("2021-01-01 00:55", tz="UTC")


def test_fingerprint_changes_with_any_value(make_candles):
    frame = make_candles(40)
    panel = Panel.from_frames({"A": frame}, "5m")
    same = Panel.from_frames({"A": frame.copy()}, "5m")
    assert panel.fingerprint() == same.fingerprint()
    close = panel.close.copy()
    close[17, 0] = np.nextafter(close[17, 0], np.inf)
    assert panel.with_fields(close=close).fingerprint() != panel.fingerprint()


def test_errors_are_clear(make_candles):
    frame = make_candles(10)
    with pytest.raises(DataValidationError, match="at least one symbol"):
        Panel.from_frames({}, "5m")
    bad = frame.copy()
    bad.loc[4, "high"] = 1.0
    with pytest.raises(DataValidationError, match="Candle 4 of BAD"):
        Panel.from_frames({"BAD": bad}, "5m")
    panel = Panel.from_frames({"A": frame}, "5m")
    with pytest.raises(ConfigError, match="'ZZZ' is not in this panel"):
        panel.frame("ZZZ")
    with pytest.raises(DataValidationError, match="shape"):
        panel.with_fields(close=np.zeros((3, 1)))


def test_infers_timeframe(make_candles):
    panel = Panel.from_frames({"A": make_candles(10, timeframe="60m")})
    assert panel.timeframe == "1h"


def test_real_data_panel_is_lean(btc_5m):
    panel = Panel.from_frames({"BTC/USDT": btc_5m}, "5m")
    assert panel.n_times == 65_741 + 177
    assert int(np.isnan(panel.close).sum()) == 177
    assert panel.nbytes == 5 * 8 * panel.n_times


def test_constructor_leaves_the_callers_arrays_writeable(make_candles):
    panel = Panel.from_frames({"A": make_candles(10)}, "5m")
    mine = {name: np.array(getattr(panel, name), order="F") for name in FIELDS}
    again = Panel(panel.index, panel.symbols, "5m", **mine)
    assert all(mine[name].flags.writeable for name in FIELDS)
    assert not again.close.flags.writeable
    mine["close"][0, 0] = -1.0  # the panel shares memory without copying: documented, cheap
    assert again.close[0, 0] == -1.0
