"""Decision times: the shift grid since the epoch, mapped to the candle closing at t."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.backtest.schedule import decision_schedule

STEP = 300 * 10**9
H = 3600 * 10**9


def grid(start="2021-01-01 00:00", n=576):
    return pd.date_range(start, periods=n, freq="5min", tz="UTC").as_unit("ns").asi8


def test_two_days_of_5m_with_4h_window_and_2h_shift():
    idx = grid()  # 2021-01-01 00:00 .. 2021-01-02 23:55
    s = decision_schedule(idx, STEP, window_ns=4 * H, shift_ns=2 * H)
    # 00:00 on day 1 has no closed candle (warm-up); the last window must end by the data end
    assert s.times[0] == pd.Timestamp("2021-01-01 02:00", tz="UTC")
    assert s.times[-1] == pd.Timestamp("2021-01-02 20:00", tz="UTC")
    assert len(s.times) == 22
    assert s.rows[0] == 23  # the 01:55 candle closes at 02:00
    assert s.window_candles == 48
    assert s.skip_counts == {"warm_up": 1, "window_past_data_end": 0, "no_entry_candle": 0}


def test_lookback_start_end_and_skip_reasons():
    idx = grid()
    opens = np.ones((idx.size, 3))
    opens[12 * 10] = np.nan  # nobody trades the 10:00 candle (outage)
    opens[12 * 12, :2] = np.nan  # one symbol still trades at 12:00: not skipped
    s = decision_schedule(idx, STEP, window_ns=4 * H, shift_ns=2 * H, lookback=40,
                          start_ns=pd.Timestamp("2021-01-01 01:00", tz="UTC").value,
                          end_ns=pd.Timestamp("2021-01-03 04:00", tz="UTC").value,
                          entry_open=opens)
    reasons = dict(zip(s.skipped["decision_time"].dt.strftime("%d %H:%M"), s.skipped["reason"],
                       strict=True))
    assert reasons["01 02:00"] == "warm_up"  # row 23 < 40
    assert reasons["01 10:00"] == "no_entry_candle"
    assert reasons["02 22:00"] == "window_past_data_end"
    assert reasons["03 00:00"] == "window_past_data_end"
    assert s.times[0] == pd.Timestamp("2021-01-01 04:00", tz="UTC")  # row 47 >= 40
    assert pd.Timestamp("2021-01-01 10:00", tz="UTC") not in s.times
    assert pd.Timestamp("2021-01-01 12:00", tz="UTC") in s.times


def test_off_grid_start_rounds_up_to_the_next_multiple_of_shift():
    idx = grid("2021-01-01 00:35", 300)
    s = decision_schedule(idx, STEP, window_ns=H, shift_ns=2 * H)
    assert s.times[0] == pd.Timestamp("2021-01-01 02:00", tz="UTC")
    assert (s.times.asi8 % (2 * H) == 0).all()


def test_empty_grid_and_too_short_data():
    s = decision_schedule(np.empty(0, np.int64), STEP, window_ns=4 * H, shift_ns=2 * H)
    assert len(s.times) == 0 and len(s.skipped) == 0
    s = decision_schedule(grid(n=20), STEP, window_ns=4 * H, shift_ns=2 * H)
    assert len(s.times) == 0


@settings(max_examples=50, deadline=None)
@given(offset=st.integers(0, 200), n=st.integers(1, 700), w=st.integers(1, 60),
       shift=st.sampled_from([1, 3, 6, 12, 24, 36]), lookback=st.integers(0, 100),
       start_off=st.integers(-50, 300))
def test_every_decision_obeys_the_time_rule(offset, n, w, shift, lookback, start_off):
    idx = grid(n=n) + offset * STEP
    start = int(idx[0]) + start_off * STEP
    s = decision_schedule(idx, STEP, window_ns=w * STEP, shift_ns=shift * STEP,
                          lookback=lookback, start_ns=start)
    t = s.times.asi8
    assert (t % (shift * STEP) == 0).all()
    assert (idx[s.rows] + STEP == t).all()  # the decision row closes at t
    assert (s.rows >= lookback).all() and (s.rows + w <= n - 1).all()
    assert (t >= start).all() and (t + w * STEP <= idx[-1] + STEP).all()
    # nothing on the shift grid inside [start, end - window] is lost: evaluated + skipped
    lo = -(-start // (shift * STEP))
    hi = (int(idx[-1]) + STEP - w * STEP) // (shift * STEP)
    assert len(s.times) + len(s.skipped) == max(0, hi - lo + 1)
