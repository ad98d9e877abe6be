"""The simulation kernel against hand-computed trades and the independent reference."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.backtest.simulate import Picks, records_to_frame, simulate_picks
from core_engine.data.panel import Panel
from core_engine.errors import ConfigError
from core_engine.risk.exits import ExitRules

from .reference import reference_trade

T0 = pd.Timestamp("2021-01-01", tz="UTC")
STEP = 300 * 10**9


def panel_from_rows(rows, n_symbols=1):
    """rows: list of (open, high, low, close) or None (missing) for one symbol."""
    arr = np.full((len(rows), 4), np.nan)
    for i, r in enumerate(rows):
        if r is not None:
            arr[i] = r
    index = pd.date_range(T0, periods=len(rows), freq="5min")
    fields = {name: np.repeat(arr[:, [k]], n_symbols, axis=1) for k, name in
              enumerate(("open", "high", "low", "close"))}
    return Panel(index=index, symbols=tuple(f"S{j}" for j in range(n_symbols)), timeframe="5m",
                 volume=np.where(np.isnan(fields["close"]), np.nan, 1.0), **fields)


def one_pick(row=0, col=0):
    return Picks(rows=[row], cols=[col], weights=[1.0], ranks=[1], scores=[1.0])


def run_one(rows, *, window=3, fee_bps=0.0, slip_bps=0.0, exits=None, atr=None, decision_row=0):
    panel = panel_from_rows(rows)
    rec = simulate_picks(panel, one_pick(decision_row), window_candles=window, fee_bps=fee_bps,
                         slippage_bps=slip_bps, exits=exits, atr=atr)
    return rec[0]


# ----------------------------------------------------------------- hand-computed trades
def test_window_end_exit_at_next_open_with_fees_and_slippage():
    rows = [(99, 99, 99, 99), (100, 101, 99.5, 100.5), (100.5, 102, 100, 101),
            (101, 103, 100.8, 102), (104, 105, 103, 104)]
    rec = run_one(rows, fee_bps=10, slip_bps=5)
    entry = 100 * 1.0005
    exit_ = 104 * 0.9995
    assert rec["entry_price"] == pytest.approx(entry, rel=1e-15)
    assert rec["exit_price"] == pytest.approx(exit_, rel=1e-15)
    expected = (exit_ * 0.999 / (entry * 1.001) - 1) * 100
    assert rec["return_pct"] == pytest.approx(expected, rel=1e-12)
    assert rec["exit_reason"] == 0 and rec["exit_row"] == 4
    assert rec["entry_time"] == T0.value + STEP and rec["exit_time"] == T0.value + 4 * STEP
    # lowest raw price held: 99.5 (row 1) against the slipped entry 100.05
    assert rec["max_drawdown"] == pytest.approx((1 - 99.5 / entry) * 100, rel=1e-12)


def test_stop_inside_candle_fills_at_level():
    rows = [(99, 99, 99, 99), (100, 101, 99, 100), (100, 100.5, 97, 98), (98, 99, 97, 98),
            (98, 98, 98, 98)]
    rec = run_one(rows, exits=ExitRules(stop_loss_pct=2.0))
    assert rec["exit_reason"] == 1 and rec["exit_row"] == 2
    assert rec["exit_price"] == pytest.approx(98.0)
    assert rec["return_pct"] == pytest.approx(-2.0)
    assert rec["max_drawdown"] == pytest.approx(2.0)  # out at the stop: 97 is not counted
    assert rec["exit_time"] == T0.value + 3 * STEP  # close of the candle where it filled
    assert not rec["ambiguous"]


def test_gap_through_stop_fills_at_the_worse_open():
    rows = [(99, 99, 99, 99), (100, 100.2, 99.5, 100), (96, 96.5, 95, 96), (96, 97, 96, 97),
            (97, 97, 97, 97)]
    rec = run_one(rows, exits=ExitRules(stop_loss_pct=2.0))
    assert rec["exit_reason"] == 1 and rec["exit_price"] == pytest.approx(96.0)
    assert rec["return_pct"] == pytest.approx(-4.0)
    assert rec["exit_time"] == T0.value + 2 * STEP


def test_target_and_gap_through_target():
    rows = [(99, 99, 99, 99), (100, 100.5, 99.8, 100.2), (100.2, 103.5, 100, 103),
            (103, 103, 103, 103), (103, 103, 103, 103)]
    rec = run_one(rows, exits=ExitRules(take_profit_pct=3.0))
    assert rec["exit_reason"] == 2 and rec["exit_price"] == pytest.approx(103.0)
    rows[2] = (104, 105, 103.5, 104)
    rec = run_one(rows, exits=ExitRules(take_profit_pct=3.0))
    assert rec["exit_reason"] == 2 and rec["exit_price"] == pytest.approx(104.0)


def test_candle_touching_both_assumes_stop_and_reports_best_case():
    rows = [(99, 99, 99, 99), (100, 104, 97, 100), (100, 100, 100, 100), (100, 100, 100, 100),
            (100, 100, 100, 100)]
    rec = run_one(rows, fee_bps=10, exits=ExitRules(stop_loss_pct=2.0, take_profit_pct=3.0))
    assert rec["exit_reason"] == 1 and rec["ambiguous"]
    assert rec["return_pct"] == pytest.approx((98 * 0.999 / (100 * 1.001) - 1) * 100)
    assert rec["best_return_pct"] == pytest.approx((103 * 0.999 / (100 * 1.001) - 1) * 100)


def test_trailing_uses_highs_of_finished_candles_only():
    # entry 100; candle 1 high 110 (trail for candle 2 = 99), candle 1's own low 95 does not
    # hit the trail in force during candle 1 (which is 90 = 100 * 0.9)
    rows = [(99, 99, 99, 99), (100, 110, 95, 105), (105, 106, 98, 100), (100, 100, 100, 100),
            (100, 100, 100, 100)]
    rec = run_one(rows, exits=ExitRules(trailing_pct=10.0))
    assert rec["exit_reason"] == 3 and rec["exit_row"] == 2
    assert rec["exit_price"] == pytest.approx(99.0)
    assert rec["max_drawdown"] == pytest.approx(5.0)  # the 95 low of candle 1


def test_trailing_beats_fixed_stop_when_higher():
    rows = [(99, 99, 99, 99), (100, 120, 100, 118), (118, 118, 107, 110), (110, 110, 110, 110),
            (110, 110, 110, 110)]
    rec = run_one(rows, exits=ExitRules(stop_loss_pct=5.0, trailing_atr=2.0),
                  atr=np.full((5, 1), 5.0))
    assert rec["exit_reason"] == 3 and rec["exit_price"] == pytest.approx(110.0)


def test_gap_inside_window_is_counted_and_missing_exit_open_falls_back_to_last_close():
    rows = [(99, 99, 99, 99), (100, 101, 99, 100.5), None, (101, 102, 100, 101.5), None]
    rec = run_one(rows, window=3)
    assert rec["gaps_in_window"] == 1
    assert rec["exit_at_last_close"] and rec["exit_price"] == pytest.approx(101.5)
    assert rec["exit_row"] == 3 and rec["exit_time"] == T0.value + 4 * STEP


def test_missing_entry_candle_means_no_trade():
    rows = [(99, 99, 99, 99), None, (100, 100, 100, 100), (100, 100, 100, 100), (1, 1, 1, 1)]
    rec = run_one(rows)
    assert rec["status"] == 1 and math.isnan(rec["return_pct"])
    panel = panel_from_rows(rows)
    frame = records_to_frame(np.atleast_1d(rec), one_pick(), panel)
    assert len(frame) == 0


def test_invalid_arguments_raise_config_errors():
    panel = panel_from_rows([(1, 1, 1, 1)] * 5)
    with pytest.raises(ConfigError, match="'window_candles' parameter of simulate_picks"):
        simulate_picks(panel, one_pick(), window_candles=0)
    with pytest.raises(ConfigError, match="Pick rows must lie in"):
        simulate_picks(panel, one_pick(row=9), window_candles=2)
    with pytest.raises(ConfigError, match="ATR is NaN at decision row 0"):
        simulate_picks(panel, one_pick(), window_candles=2, exits=ExitRules(stop_loss_atr=1.0),
                       atr=np.full((5, 1), np.nan))


# ----------------------------------------------------------------- engine == reference
EXIT_COMBOS = {
    "none": {},
    "stop": {"stop_loss_pct": 1.0},
    "target": {"take_profit_pct": 1.5},
    "trailing": {"trailing_pct": 0.8},
    "stop+target": {"stop_loss_pct": 1.0, "take_profit_pct": 1.0},
    "all": {"stop_loss_pct": 1.0, "take_profit_pct": 2.0, "trailing_pct": 1.5},
    "stop_atr": {"stop_loss_atr": 1.5},
    "target_atr": {"take_profit_atr": 2.0},
    "trailing_atr": {"trailing_atr": 1.0},
    "all_atr": {"stop_loss_atr": 2.0, "take_profit_atr": 4.0, "trailing_atr": 3.0},
    "mixed": {"stop_loss_atr": 2.0, "take_profit_pct": 1.5, "trailing_pct": 1.5},
    "stop_at_low": {"stop_loss_pct": 1.0, "take_profit_pct": 1.0, "stop_fill": "low"},
    "all_range": {"stop_loss_pct": 1.0, "take_profit_pct": 2.0, "trailing_pct": 1.5,
                  "stop_fill": "range", "stop_fill_range": 0.3},
}


def simple_atr(panel):
    """Any positive causal volatility number serves: mean high-low range of 14 candles."""
    rng = pd.DataFrame(panel.high - panel.low)
    return np.asfortranarray(rng.rolling(14, min_periods=1).mean().to_numpy())


def reference_for(panel, picks, window, fee, slip, exits, atr, max_delay=None):
    kwargs = {}
    for short, rule in (("stop", "stop_loss"), ("target", "take_profit"), ("trail", "trailing")):
        pct = getattr(exits, f"{rule}_pct")
        mult = getattr(exits, f"{rule}_atr")
        if pct is not None:
            kwargs[f"{short}_pct"] = pct / 100
        if mult is not None:
            kwargs[f"{short}_atr"] = mult
    kwargs["stop_fill"] = exits.stop_fill
    if exits.stop_fill_range is not None:
        kwargs["range_frac"] = exits.stop_fill_range
    out = []
    for p in range(len(picks)):
        i, j = int(picks.rows[p]), int(picks.cols[p])
        out.append(reference_trade(
            panel.open[:, j].tolist(), panel.high[:, j].tolist(), panel.low[:, j].tolist(),
            panel.close[:, j].tolist(), i, window, fee, slip,
            atr=float(atr[i, j]) if atr is not None else None, step=panel.step_ns,
            time0=int(panel.index.asi8[0]), max_delay=max_delay, **kwargs))
    return out


REASONS = ("window_end", "stop_loss", "take_profit", "trailing_stop")


def assert_matches_reference(records, expected):
    assert len(records) == len(expected)
    for rec, ref in zip(records, expected, strict=True):
        if ref is None:
            assert rec["status"] == 1
            continue
        assert rec["status"] == 0
        assert REASONS[rec["exit_reason"]] == ref["exit_reason"]
        assert rec["entry_time"] == ref["entry_time"] and rec["exit_time"] == ref["exit_time"]
        assert rec["exit_row"] == ref["exit_row"]
        for field in ("entry_price", "exit_price", "return_pct", "best_return_pct",
                      "max_drawdown"):
            assert rec[field] == pytest.approx(ref[field], rel=1e-12, abs=1e-12), field
        assert rec["worst_case_return_pct"] == pytest.approx(ref["worst_return_pct"], rel=1e-12,
                                                             abs=1e-12)
        assert bool(rec["ambiguous"]) == ref["ambiguous"]
        assert rec["gaps_in_window"] == ref["gaps"]
        assert bool(rec["exit_at_last_close"]) == ref["last_close"]
        assert rec["exit_delayed_by"] == ref["delayed_by"]
        assert bool(rec["exit_delay_capped"]) == ref["capped"]


def every_symbol_picks(panel, first_row, every, window):
    rows = np.arange(first_row, panel.n_times - 1, every)
    rows = rows[rows + window < panel.n_times]
    r = np.repeat(rows, panel.n_symbols)
    c = np.tile(np.arange(panel.n_symbols), rows.size)
    return Picks(rows=r, cols=c, weights=np.full(r.size, 1 / 3), ranks=np.ones(r.size),
                 scores=np.zeros(r.size))


@pytest.mark.parametrize("period", ["feb", "may"])
@pytest.mark.parametrize("combo", list(EXIT_COMBOS))
def test_kernel_equals_reference_on_real_data(request, period, combo):
    panel = request.getfixturevalue(f"real_{period}")
    exits = ExitRules(**EXIT_COMBOS[combo])
    atr = simple_atr(panel)
    window = 48
    picks = every_symbol_picks(panel, 13, 12, window)
    records = simulate_picks(panel, picks, window_candles=window, fee_bps=10, slippage_bps=3,
                             exits=exits, atr=atr)
    expected = reference_for(panel, picks, window, 10 / 1e4, 3 / 1e4, exits, atr)
    assert_matches_reference(records, expected)
    reasons = {REASONS[r] for r in records["exit_reason"][records["status"] == 0]}
    # real data exercises every active rule (a weak test would see only window_end)
    for rule, reason in (("stop_loss", "stop_loss"), ("take_profit", "take_profit"),
                         ("trailing", "trailing_stop")):
        if any(k.startswith(rule) for k in EXIT_COMBOS[combo]):
            assert reason in reasons, (combo, reasons)
    if period == "may" and combo in ("stop+target", "all", "mixed", "stop_at_low", "all_range"):
        assert records["ambiguous"].any()  # the crash has candles touching both levels
    traded = records[records["status"] == 0]
    spread = traded["return_pct"] - traded["worst_case_return_pct"]
    assert (spread >= -1e-12).all()
    if exits.stop_fill == "low" or not (exits.stop_loss_pct or exits.stop_loss_atr
                                        or exits.trailing_pct or exits.trailing_atr):
        assert (spread == 0).all()
    else:  # stops inside candles fill above the low: the bound is wider than 0
        assert (spread > 0).any()


def test_parallel_and_serial_kernels_agree(real_may, monkeypatch):
    import core_engine.backtest.simulate as sim

    exits = ExitRules(**EXIT_COMBOS["all_atr"])
    atr = simple_atr(real_may)
    picks = every_symbol_picks(real_may, 13, 3, 48)
    serial = simulate_picks(real_may, picks, window_candles=48, exits=exits, atr=atr)
    monkeypatch.setattr(sim, "PARALLEL_MIN_STEPS", 0)
    parallel = simulate_picks(real_may, picks, window_candles=48, exits=exits, atr=atr)
    np.testing.assert_array_equal(serial, parallel)


def test_real_outage_gives_gaps_and_missing_entries(real_feb):
    panel = real_feb
    picks = every_symbol_picks(panel, 13, 1, 48)
    records = simulate_picks(panel, picks, window_candles=48)
    assert (records["gaps_in_window"] > 0).any()
    assert (records["status"] == 1).sum() == 15 * panel.n_symbols


@st.composite
def gappy_panels(draw):
    n = draw(st.integers(8, 60))
    n_sym = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    gap_rate = draw(st.sampled_from([0.0, 0.1, 0.3]))
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, n_sym)), axis=0))
    open_ = np.vstack([np.full((1, n_sym), 100.0), close[:-1]])
    if draw(st.booleans()):  # jumps between candles: gaps through levels
        open_ = open_ * np.exp(rng.normal(0, 0.01, (n, n_sym)))
    high = np.maximum(open_, close) * (1 + rng.exponential(0.005, (n, n_sym)))
    low = np.minimum(open_, close) * (1 - rng.exponential(0.005, (n, n_sym)))
    missing = rng.random((n, n_sym)) < gap_rate
    for a in (open_, high, low, close):
        a[missing] = np.nan
    index = pd.date_range(T0, periods=n, freq="5min")
    panel = Panel(index=index, symbols=tuple(f"S{j}" for j in range(n_sym)), timeframe="5m",
                  open=open_, high=high, low=low, close=close,
                  volume=np.where(missing, np.nan, 1.0))
    window = draw(st.integers(1, 12))
    rows = np.arange(0, n - 1)
    r = np.repeat(rows, n_sym)
    c = np.tile(np.arange(n_sym), rows.size)
    keep = r + window < n  # the window must fit on the grid (the schedule guarantees it)
    picks = Picks(rows=r[keep], cols=c[keep], weights=np.ones(keep.sum()),
                  ranks=np.ones(keep.sum()), scores=np.zeros(keep.sum()))
    combo = draw(st.sampled_from(list(EXIT_COMBOS)))
    max_delay = draw(st.sampled_from([None, 0, 1, 3]))
    return panel, picks, window, combo, max_delay


@settings(max_examples=40, deadline=None)
@given(case=gappy_panels(), fee_bps=st.sampled_from([0.0, 10.0]), slip=st.sampled_from([0.0, 5.0]))
def test_kernel_equals_reference_on_gappy_panels(case, fee_bps, slip):
    panel, picks, window, combo, max_delay = case
    exits = ExitRules(**EXIT_COMBOS[combo])
    atr = np.full((panel.n_times, panel.n_symbols), 0.7)
    before = panel.close.copy()
    records = simulate_picks(panel, picks, window_candles=window, fee_bps=fee_bps,
                             slippage_bps=slip, exits=exits, atr=atr, max_exit_delay=max_delay)
    expected = reference_for(panel, picks, window, fee_bps / 1e4, slip / 1e4, exits, atr,
                             max_delay)
    assert_matches_reference(records, expected)
    np.testing.assert_array_equal(panel.close, before)


# ----------------------------------------------------------------- per-pick distances
def random_distances(picks, atr, seed):
    """Each pick draws, per rule, none / a fraction / a price distance (as ExitRules allow)."""
    rng = np.random.default_rng(seed)
    n = len(picks)
    out = {f"{rule}_{unit}": np.full(n, np.nan) for rule in ("stop", "target", "trail")
           for unit in ("frac", "dist")}
    at = atr[picks.rows, picks.cols]
    for rule in ("stop", "target", "trail"):
        kind = rng.integers(0, 3, n)
        out[f"{rule}_frac"][kind == 1] = rng.uniform(0.002, 0.03, n)[kind == 1]
        out[f"{rule}_dist"][kind == 2] = (at * rng.uniform(0.5, 4.0, n))[kind == 2]
    return out


def reference_with_distances(panel, picks, window, fee, slip, dist, stop_fill="level",
                             range_frac=0.5):
    """The reference trade of each pick with its own levels: a price distance d is passed as
    the multiple d of an ATR of 1.0 (exact in floating point)."""
    out = []
    for p in range(len(picks)):
        i, j = int(picks.rows[p]), int(picks.cols[p])
        kwargs = {}
        for short in ("stop", "target", "trail"):
            frac, price = dist[f"{short}_frac"][p], dist[f"{short}_dist"][p]
            if not np.isnan(frac):
                kwargs[f"{short}_pct"] = float(frac)
            if not np.isnan(price):
                kwargs[f"{short}_atr"] = float(price)
        out.append(reference_trade(
            panel.open[:, j].tolist(), panel.high[:, j].tolist(), panel.low[:, j].tolist(),
            panel.close[:, j].tolist(), i, window, fee, slip, atr=1.0, step=panel.step_ns,
            time0=int(panel.index.asi8[0]), stop_fill=stop_fill, range_frac=range_frac,
            **kwargs))
    return out


@pytest.mark.parametrize("fill", [{}, {"stop_fill": "range", "stop_fill_range": 0.3}])
def test_per_pick_distances_equal_the_reference_on_real_data(real_may, fill):
    picks = every_symbol_picks(real_may, 13, 6, 48)
    dist = random_distances(picks, simple_atr(real_may), seed=4)
    records = simulate_picks(real_may, picks, window_candles=48, fee_bps=10, slippage_bps=3,
                             exits=ExitRules(**fill) if fill else None, distances=dist)
    expected = reference_with_distances(real_may, picks, 48, 10 / 1e4, 3 / 1e4, dist,
                                        **({"stop_fill": "range", "range_frac": 0.3}
                                           if fill else {}))
    assert_matches_reference(records, expected)
    reasons = {REASONS[r] for r in records["exit_reason"][records["status"] == 0]}
    assert reasons == set(REASONS)  # every rule fired somewhere: the levels were read


def test_several_exit_rules_in_one_call_equal_one_call_each(real_feb):
    """What a sweep does: the same picks stacked once per exit rule, their distances from
    resolve_exit_distances, one kernel call; each block equals the call with that rule."""
    from core_engine.backtest.simulate import resolve_exit_distances

    picks = every_symbol_picks(real_feb, 13, 12, 48)
    atr = simple_atr(real_feb)
    combos = ["none", "stop", "trailing", "all", "all_atr", "mixed"]
    rules = [ExitRules(**EXIT_COMBOS[c]) for c in combos]
    parts = [resolve_exit_distances(r, picks, atr) for r in rules]
    stacked = Picks(**{k: np.tile(getattr(picks, k), len(rules))
                       for k in ("rows", "cols", "weights", "ranks", "scores")})
    dist = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    before = {k: v.copy() for k, v in dist.items()}
    records = simulate_picks(real_feb, stacked, window_candles=48, fee_bps=10, distances=dist)
    n = len(picks)
    for k, rule in enumerate(rules):
        alone = simulate_picks(real_feb, picks, window_candles=48, fee_bps=10, exits=rule,
                               atr=atr)
        block = records[k * n:(k + 1) * n].copy()
        np.testing.assert_array_equal(block["pick"], np.arange(n) + k * n)  # stacked index
        block["pick"] -= k * n
        for field in alone.dtype.names:  # field by field: NaN prices of missing entries
            np.testing.assert_array_equal(block[field], alone[field], err_msg=field)
    for key, value in before.items():
        np.testing.assert_array_equal(dist[key], value)  # inputs not mutated


def test_bad_distances_raise_config_errors():
    panel = panel_from_rows([(1, 1, 1, 1)] * 5)
    good = {k: np.full(1, np.nan) for k in ("stop_frac", "stop_dist", "target_frac",
                                            "target_dist", "trail_frac", "trail_dist")}
    cases = [
        ({k: v for k, v in good.items() if k != "trail_dist"}, {}, r"Missing \['trail_dist'\]"),
        ({**good, "stop_pct": np.ones(1)}, {}, r"unknown \['stop_pct'\]"),
        ({**good, "stop_frac": np.ones(2)}, {}, r"distances\['stop_frac'\].*1 values.*\(2,\)"),
        ({**good, "target_dist": np.array([-1.0])}, {}, "number >= 0. Got -1.0 for pick 0"),
        ({**good, "trail_frac": np.array([np.inf])}, {}, "number >= 0. Got inf"),
        (good, {"exits": ExitRules(stop_loss_pct=1.0)}, "not both"),
        (good, {"atr": np.ones((5, 1))}, "does not read 'atr'"),
        ([1.0], {}, "must be a dict"),
    ]
    for distances, extra, message in cases:
        with pytest.raises(ConfigError, match=message):
            simulate_picks(panel, one_pick(), window_candles=2, distances=distances, **extra)
