"""Missing candles: a NaN row on the panel is skipped (state carries over, output NaN), so at
every present candle the panel equals compute() on the symbol's own frame without them."""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.data.panel import Panel
from core_engine.errors import ConfigError
from core_engine.features import (
    RSI,
    CrossSectional,
    MultiTimeframe,
    PandasTA,
    compute_features,
)
from core_engine.features._runner import run_kernel_features

from .helpers import builtin_kernel_features, candle_frames


def drop_random_rows(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    keep = rng.random(len(frame)) >= share
    keep[:3] = True
    return frame.loc[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def holed_frames(btc_20k, nkn_5m):
    """Real frames (with their real maintenance gaps) minus random candles and a long hole."""
    btc = drop_random_rows(btc_20k.iloc[:8000], 0.05, 1)
    nkn = nkn_5m.iloc[3000:9000]
    nkn = nkn.drop(index=range(4000, 4300)).reset_index(drop=True)  # a 300-candle outage
    nkn = drop_random_rows(nkn, 0.02, 2)
    late = btc_20k.iloc[6000:7000].reset_index(drop=True)  # a symbol listed late
    return {"BTC": btc, "NKN": nkn, "LATE": late}


@pytest.fixture(scope="module")
def holed_panel(holed_frames):
    panel = Panel.from_frames(holed_frames, "5m")
    assert np.isnan(panel.close).sum() > 1000
    return panel


@pytest.mark.parametrize("feature", builtin_kernel_features(), ids=repr)
def test_panel_with_holes_equals_each_frame_without_them(feature, holed_panel, holed_frames):
    values = feature.compute_panel(holed_panel)
    assert set(values) == set(feature.columns)
    for j, symbol in enumerate(holed_panel.symbols):
        present = holed_panel.present[:, j]
        expected = feature.compute(holed_frames[symbol])
        for column in feature.columns:
            array = values[column]
            assert array.dtype == np.float64 and array.flags.f_contiguous
            assert array.shape == (holed_panel.n_times, holed_panel.n_symbols)
            np.testing.assert_array_equal(array[present, j], expected[column].to_numpy(),
                                          err_msg=f"{feature!r} {column} {symbol}")
            assert np.isnan(array[~present, j]).all()


@pytest.mark.parametrize("feature", [MultiTimeframe(RSI(14), "1h"),
                                     PandasTA("adx", length=14)], ids=repr)
def test_slow_path_features_skip_holes_too(feature, holed_panel, holed_frames):
    values = feature.compute_panel(holed_panel)
    for j, symbol in enumerate(holed_panel.symbols):
        present = holed_panel.present[:, j]
        expected = feature.compute(holed_frames[symbol])
        for column in feature.columns:
            np.testing.assert_array_equal(values[column][present, j], expected[column].to_numpy())
            assert np.isnan(values[column][~present, j]).all()


def test_a_nan_never_poisons_the_rest(btc_20k):
    frame = btc_20k.iloc[:600]
    panel = Panel.from_frames({"A": frame}, "5m")
    close = panel.close.copy()
    close[[50, 51, 300], 0] = np.nan
    holed = panel.with_fields(close=close)
    for feature in builtin_kernel_features():
        for column, array in feature.compute_panel(holed).items():
            tail = array[feature.lookback + 20:, 0]
            present = ~np.isnan(close[feature.lookback + 20:, 0])
            if column.startswith("volume_zscore"):
                continue  # may be NaN on real constant-volume windows, checked elsewhere
            assert not np.isnan(tail[present]).any(), (feature, column)


def test_only_the_inputs_a_feature_uses_decide_presence(btc_20k):
    panel = Panel.from_frames({"A": btc_20k.iloc[:300]}, "5m")
    volume = panel.volume.copy()
    volume[100, 0] = np.nan
    odd = panel.with_fields(volume=volume)
    rsi = RSI(14).compute_panel(odd)["rsi_14"]
    np.testing.assert_array_equal(rsi, RSI(14).compute_panel(panel)["rsi_14"])
    from core_engine.features import VolumeZScore

    z = VolumeZScore(5).compute_panel(odd)["volume_zscore_5"]
    assert np.isnan(z[100, 0]) and not np.isnan(z[101, 0])


def test_fused_threaded_run_equals_one_feature_at_a_time(holed_panel):
    features = builtin_kernel_features()
    fused = compute_features(features, holed_panel)
    for feature in features:
        alone = feature.compute_panel(holed_panel)
        for column in feature.columns:
            np.testing.assert_array_equal(fused[column], alone[column])
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = compute_features(features, holed_panel)
    finally:
        numba.set_num_threads(before)
    for column, array in fused.items():
        np.testing.assert_array_equal(array, single[column])


def test_reused_output_buffers_are_fully_overwritten(holed_panel):
    features = builtin_kernel_features()[:6]
    shape = (holed_panel.n_times, holed_panel.n_symbols)
    buffers = [tuple(np.full(shape, 123.0, order="F") for _ in f.columns) for f in features]
    fields = (holed_panel.high, holed_panel.low, holed_panel.close, holed_panel.volume)
    out = run_kernel_features(features, *fields, out=buffers)
    fresh = run_kernel_features(features, *fields)
    for reused, new, supplied in zip(out, fresh, buffers, strict=True):
        for a, b, c in zip(reused, new, supplied, strict=True):
            assert a is c
            np.testing.assert_array_equal(a, b)
            assert not (a == 123.0).any()
    values = compute_features(features, holed_panel)
    again = compute_features(features, holed_panel, out=values)
    for column, array in again.items():
        assert array is values[column]
    with pytest.raises(ConfigError, match="one sequence of arrays per feature"):
        run_kernel_features(features, *fields, out=np.empty((3, 1, 1)))
    with pytest.raises(ConfigError, match="writeable float64 Fortran array"):
        run_kernel_features(features[:1], *fields, out=[(np.empty(shape),)])


def test_cross_sectional_feature_on_panel(holed_panel):
    feature = CrossSectional(RSI(14), "rsi_14", "rank")
    ranks = feature.compute_panel(holed_panel)["rsi_14_rank"]
    rsi = RSI(14).compute_panel(holed_panel)["rsi_14"]
    expected = pd.DataFrame(rsi).rank(axis=1, pct=True).to_numpy()
    np.testing.assert_allclose(ranks, expected, rtol=1e-15)


@settings(max_examples=30, deadline=None)
@given(frames=st.lists(candle_frames(min_rows=1, max_rows=120), min_size=1, max_size=4))
def test_property_panel_equals_each_frame(frames):
    """Any frames, any gaps, any listing dates: panel values == each symbol's own frame."""
    frames = {f"S{j}": frame for j, frame in enumerate(frames)}
    panel = Panel.from_frames(frames, "5m")
    features = builtin_kernel_features()
    values = compute_features(features, panel)
    for j, (symbol, frame) in enumerate(frames.items()):
        present = panel.present[:, j]
        for feature in features:
            own = feature.compute(frame)
            for column in feature.columns:
                np.testing.assert_array_equal(values[column][present, j], own[column].to_numpy(),
                                              err_msg=f"{feature!r} {column} {symbol}")
                assert np.isnan(values[column][~present, j]).all()


def _child_computes(panel, queue):
    values = compute_features(builtin_kernel_features()[:6], panel)
    queue.put(float(np.nansum(values["rsi_14"])))


def test_threads_work_in_a_forked_child(holed_panel):
    """A sweep may fork worker processes after the parent has used the thread pool."""
    import multiprocessing

    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    expected = float(np.nansum(compute_features(builtin_kernel_features()[:6],
                                                holed_panel)["rsi_14"]))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_computes, args=(holed_panel, queue))
    child.start()
    child.join(timeout=30)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive, "the forked child hung"
    assert queue.get(timeout=5) == expected
