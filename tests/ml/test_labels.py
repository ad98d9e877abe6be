"""Labels against hand-computed values (gap, missing entry, data end, stop-then-target
candle, gap through a stop), against the engine's own trades on the real sample, and their
time rule: a label is the same on any data that contains its end and unknown before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.backtest import poisoned_panels, walk_forward
from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.errors import ConfigError
from core_engine.ml import (
    ForwardReturn,
    ScheduledWeights,
    TripleBarrier,
    binary_label,
    forward_return_label,
    triple_barrier_label,
)
from core_engine.risk import ExitRules, TopNEqual
from tests.ml.helpers import hand_panel

NAN = np.nan
FEE, SLIP = 0.001, 0.0005
H = pd.Timedelta("1h")


def net(entry_open, raw_exit, fee=FEE, slip=SLIP):
    """The cost model by hand: slippage and a fee on each side, in percent."""
    return (raw_exit * (1 - slip) * (1 - fee) / (entry_open * (1 + slip) * (1 + fee)) - 1) * 100


def ts(hour):
    return pd.Timestamp("2022-01-01", tz="UTC") + hour * H


@pytest.fixture(scope="module")
def gap_panel():
    # row:     0      1      2      3      4      5      6      7
    opens = [100.0, 101.0, 102.0, NAN, 104.0, 105.0, 106.0, 107.0]
    closes = [101.0, 102.0, 103.0, NAN, 105.0, 106.0, 107.0, 108.0]
    highs = [c + 0.5 for c in closes]
    lows = [o - 0.5 for o in opens]
    return hand_panel(opens, highs, lows, closes)


def test_forward_return_by_hand(gap_panel):
    labels = forward_return_label(gap_panel, "2h", fee_bps=10, slippage_bps=5,
                                  decision_times=[ts(1), ts(2), ts(3), ts(4), ts(7)])
    values = labels.values[:, 0]
    # t=01:00: entry at the open of row 1 (101), exit at the open of row 3 — missing (an
    # outage): held to the first open after it, row 4 (104); known at row 4's close.
    assert values[0] == pytest.approx(net(101.0, 104.0), rel=1e-12)
    assert labels.exit_time[0, 0] == ts(4).value and labels.end[0, 0] == ts(5).value
    # t=02:00: entry 102 at row 2, exit at row 4's open 104 (row 3 missing inside: no effect)
    assert values[1] == pytest.approx(net(102.0, 104.0), rel=1e-12)
    assert labels.end[1, 0] == ts(5).value
    # t=03:00: the entry candle (row 3) is missing: no trade, no label; nominal end t+2h+1h
    assert np.isnan(values[2]) and labels.end[2, 0] == ts(6).value
    # t=04:00: entry at row 4 (104), exit at row 6's open (106), known at 07:00
    assert values[3] == pytest.approx(net(104.0, 106.0), rel=1e-12)
    assert labels.end[3, 0] == ts(7).value and labels.exit_time[3, 0] == ts(6).value
    # t=07:00: the window runs past the data: unknown
    assert np.isnan(values[4]) and labels.end[4, 0] == ts(10).value
    assert labels.return_pct[0, 0] == values[0] and labels.name == "return_pct"


def test_binary_variants(gap_panel):
    raw = forward_return_label(gap_panel, "2h", fee_bps=10, slippage_bps=5)
    hurdle = 2.5  # t=01:00 earns 2.68 %, t=02:00 1.67 %
    above = binary_label(raw, hurdle_pct=hurdle)
    direct = forward_return_label(gap_panel, "2h", fee_bps=10, slippage_bps=5, hurdle_pct=hurdle)
    np.testing.assert_array_equal(above.values, direct.values)
    known = np.isfinite(raw.values)
    assert np.array_equal(np.isfinite(above.values), known)
    np.testing.assert_array_equal(above.values[known], (raw.values[known] > hurdle) * 1.0)
    assert above.values[0, 0] == 1.0 and above.values[1, 0] == 0.0
    np.testing.assert_array_equal(above.end, raw.end)
    with pytest.raises(ConfigError, match="hurdle_pct"):
        binary_label(raw, hurdle_pct="2%")


def barrier_panel(second_candle):
    """Entry at 100 (row 1); the second candle of the window (row 2) is ``second_candle``."""
    o2, h2, l2, c2 = second_candle
    return hand_panel([100.0, 100.0, o2, 100.0, 100.0], [100.5, 101.0, h2, 100.5, 100.5],
                      [99.5, 99.5, l2, 99.5, 99.5], [100.0, 100.5, c2, 100.0, 100.0])


EXITS = ExitRules(stop_loss_pct=2.0, take_profit_pct=3.0)  # stop 98, target 103


@pytest.mark.parametrize("candle, value, raw_exit, reason, exit_hour, end_hour", [
    # low 97 reaches the stop and high 104 the target in one candle: stop assumed first
    ((100.5, 104.0, 97.0, 101.0), -1.0, 98.0, "stop_loss", 3, 3),
    ((100.5, 103.5, 99.0, 101.0), 1.0, 103.0, "take_profit", 3, 3),   # target only
    ((97.0, 97.5, 96.0, 97.2), -1.0, 97.0, "stop_loss", 2, 3),        # gap through the stop
    ((100.2, 101.0, 99.0, 100.6), 0.0, 100.0, "window_end", 4, 5),    # neither: time exit
])
def test_triple_barrier_by_hand(candle, value, raw_exit, reason, exit_hour, end_hour):
    labels = triple_barrier_label(barrier_panel(candle), "3h", EXITS, fee_bps=10,
                                  slippage_bps=0, decision_times=[ts(1)])
    assert labels.values[0, 0] == value
    assert labels.return_pct[0, 0] == pytest.approx(net(100.0, raw_exit, slip=0.0), rel=1e-12)
    frame = labels.frame()
    assert frame["exit_reason"].iloc[0] == reason
    assert labels.exit_time[0, 0] == ts(exit_hour).value
    assert labels.end[0, 0] == ts(end_hour).value


def test_a_stop_before_the_data_end_is_known():
    """The window runs past the last candle, but the stop fired inside the data: the label
    is known (and the same once more data arrives)."""
    short = barrier_panel((100.5, 104.0, 97.0, 101.0)).slice_rows(0, 3)
    labels = triple_barrier_label(short, "3h", EXITS, decision_times=[ts(1)])
    assert labels.values[0, 0] == -1.0
    plain = forward_return_label(short, "3h", decision_times=[ts(1)])
    assert np.isnan(plain.values[0, 0])


def test_bad_label_parameters():
    with pytest.raises(ConfigError, match="TripleBarrier must be ExitRules"):
        TripleBarrier(window="4h")
    with pytest.raises(ConfigError, match="fee_bps"):
        ForwardReturn(fee_bps=-1)
    with pytest.raises(ConfigError, match="did you mean|Did you mean"):
        ForwardReturn(windw="4h")
    panel = hand_panel([1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ConfigError, match="multiple of the panel's 1h"):
        forward_return_label(panel, "90min")
    with pytest.raises(ConfigError, match="not the close of a candle"):
        forward_return_label(panel, "1h", decision_times=[ts(0) + pd.Timedelta("30min")])


@pytest.fixture(scope="module")
def sample():
    return Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT", "NKN/USDT", "XRP/USDT"],
                                         "2021-02-01", "2021-02-15"), "5m")


@pytest.mark.parametrize("exits", [None, ExitRules(stop_loss_pct=1.5, take_profit_atr=2.0,
                                                   trailing_pct=2.5)])
def test_labels_are_the_engines_trades(sample, exits):
    """Every label equals the return, exit time and reason of the trade walk_forward makes
    when it picks that symbol at that time (real data, with its exchange gaps)."""
    times = pd.date_range("2021-02-02", "2021-02-14", freq="4h", tz="UTC")
    weights = pd.DataFrame(1.0, index=times, columns=list(sample.symbols))
    result = walk_forward(sample, ScheduledWeights(weights), window="4h", shift="4h",
                          start=times[0], end=times[-1] + pd.Timedelta("4h"), fee_bps=10,
                          slippage_bps=5, exits=exits, max_positions=sample.n_symbols,
                          allocator=TopNEqual(n=sample.n_symbols))
    spec = ForwardReturn(window="4h", fee_bps=10, slippage_bps=5) if exits is None else \
        TripleBarrier(window="4h", exits=exits, fee_bps=10, slippage_bps=5)
    frame = spec.compute(sample, times).frame()
    trades = result.trades.set_index(["decision_time", "symbol"])
    assert len(trades) >= 0.9 * len(frame)
    joined = trades[["return_pct", "exit_time", "exit_reason"]].join(frame.add_prefix("label_"))
    np.testing.assert_allclose(joined["label_return_pct"], joined["return_pct"], rtol=1e-12)
    assert (joined["label_exit_time"] == joined["exit_time"]).all()
    assert (joined["label_exit_reason"] == joined["exit_reason"]).all()
    if exits is None:
        np.testing.assert_allclose(joined["label_label"], joined["return_pct"], rtol=1e-12)
    else:
        assert set(joined["exit_reason"]) >= {"window_end", "stop_loss"}
    untraded = frame.index.difference(trades.index)
    assert frame.loc[untraded, "label"].isna().all()  # no entry candle: no label either


@pytest.mark.parametrize("spec", [
    ForwardReturn(window="2h", fee_bps=10, slippage_bps=5),
    TripleBarrier(window="4h", exits=ExitRules(stop_loss_pct=1.0, take_profit_pct=1.5,
                                               trailing_atr=3.0)),
])
def test_a_label_is_known_at_its_end_and_not_before(sample, spec):
    """On the data known at a label's end, poisoned or not after it, the label is the same;
    on the data known one candle earlier it is unknown (or, for a barrier hit, the same)."""
    times = pd.date_range("2021-02-05", periods=60, freq="50min", tz="UTC").floor("5min")
    full = spec.compute(sample, times)
    rng = np.random.default_rng(4)
    for k in rng.choice(len(times), size=6, replace=False):
        for j in range(sample.n_symbols):
            if not np.isfinite(full.values[k, j]):
                continue
            end = pd.Timestamp(int(full.end[k, j]), tz="UTC")
            known = sample.known_at(end)
            row = known.n_times - 1
            for label, variant in {"known": known,
                                   **poisoned_panels(sample, row, seed=k)}.items():
                again = spec.compute(variant, times[[k]])
                assert again.values[0, j] == full.values[k, j], label
                assert again.end[0, j] == full.end[k, j], label
            earlier = spec.compute(sample.known_at(end - pd.Timedelta("5min")), times[[k]])
            assert np.isnan(earlier.values[0, j]) or full.exit_reason[k, j] != 0


def _reference_forward(opens, window, fee, slip):
    """Plain-Python forward-return labels (no engine code): entry at the next open, exit at
    the first open at or after ``window`` candles later, unknown past the data."""
    out = []
    n = len(opens)
    for i in range(n):
        entry = i + 1
        if entry >= n or opens[entry] != opens[entry]:
            out.append((None, None))
            continue
        k = entry + window
        while k < n and opens[k] != opens[k]:
            k += 1
        if k >= n:
            out.append((None, None))
            continue
        value = (opens[k] * (1 - slip) * (1 - fee) / (opens[entry] * (1 + slip) * (1 + fee))
                 - 1) * 100
        out.append((value, k))
    return out


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(50.0, 150.0), min_size=6, max_size=30), st.integers(1, 4),
       st.lists(st.integers(0, 29), max_size=6), st.integers(0, 30), st.integers(0, 20))
def test_forward_labels_equal_a_plain_reference(prices, window, holes, fee_bps, slip_bps):
    opens = list(prices)
    for h in holes:
        if h < len(opens):
            opens[h] = NAN
    closes = [o * 1.001 if o == o else NAN for o in opens]
    panel = hand_panel(opens, [c * 1.01 if c == c else NAN for c in closes],
                       [o * 0.99 if o == o else NAN for o in opens], closes)
    labels = forward_return_label(panel, f"{window}h", fee_bps=fee_bps, slippage_bps=slip_bps)
    expected = _reference_forward(opens, window, fee_bps / 1e4, slip_bps / 1e4)
    for i, (value, exit_row) in enumerate(expected):
        if value is None:
            assert np.isnan(labels.values[i, 0])
        else:
            assert labels.values[i, 0] == pytest.approx(value, rel=1e-12, abs=1e-12)
            assert labels.end[i, 0] == ts(exit_row + 1).value
