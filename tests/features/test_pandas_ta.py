"""The pandas-ta adapter."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from core_engine.data.panel import Panel
from core_engine.errors import ConfigError
from core_engine.features import PandasTA
from core_engine.features.pandas_ta import import_pandas_ta, pandas_ta_indicators


def test_imports_the_right_package_for_this_python():
    module = import_pandas_ta()
    expected = "pandas_ta_classic" if sys.version_info < (3, 12) else "pandas_ta"
    assert module.__name__ == expected
    assert len(pandas_ta_indicators()) > 100
    assert {"adx", "rsi", "supertrend", "stoch"} <= set(pandas_ta_indicators())


def test_values_equal_calling_pandas_ta_directly(btc_20k):
    frame = btc_20k.iloc[:3000]
    ta = import_pandas_ta()
    index = pd.DatetimeIndex(frame["timestamp"])
    direct = ta.adx(pd.Series(frame["high"].to_numpy(), index=index),
                    pd.Series(frame["low"].to_numpy(), index=index),
                    pd.Series(frame["close"].to_numpy(), index=index), length=14)
    feature = PandasTA("adx", length=14)
    out = feature.compute(frame)
    assert feature.columns == ("adx_14", "dmp_14", "dmn_14")
    np.testing.assert_array_equal(out.to_numpy(), direct.to_numpy())
    assert feature.lookback == 14


def test_volume_indicator_and_series_output(btc_20k):
    frame = btc_20k.iloc[:500]
    out = PandasTA("obv").compute(frame)
    assert list(out.columns) == ["obv"]
    ta = import_pandas_ta()
    expected = ta.obv(frame["close"], frame["volume"]).to_numpy()
    np.testing.assert_allclose(out["obv"].to_numpy(), expected, rtol=1e-12)


def test_unknown_indicator_and_parameter_have_did_you_mean():
    with pytest.raises(ConfigError, match=r"pandas-ta has no indicator 'adxx'.*'adx'"):
        PandasTA("adxx")
    with pytest.raises(ConfigError, match=r"no parameter 'lenght'.*Did you mean 'length'"):
        PandasTA("rsi", lenght=14)


def test_params_repr_and_clone():
    feature = PandasTA("rsi", length=7)
    assert repr(feature) == "PandasTA('rsi', length=7)"
    assert feature.get_params() == {"name": "rsi", "length": 7}
    assert feature.clone(length=9) == PandasTA("rsi", length=9)


def test_too_short_frame_gives_nan_rows(btc_20k):
    out = PandasTA("rsi", length=14).compute(btc_20k.iloc[:5])
    assert out.shape == (5, 1) and out.isna().all().all()


def test_compute_panel_loops_symbols(btc_20k, nkn_5m):
    frames = {"BTC": btc_20k.iloc[:800], "NKN": nkn_5m.iloc[100:900].reset_index(drop=True)}
    panel = Panel.from_frames(frames, "5m")
    feature = PandasTA("rsi", length=14)
    values = feature.compute_panel(panel)["rsi_14"]
    assert values.shape == (panel.n_times, 2) and values.flags.f_contiguous
    for j, frame in enumerate(frames.values()):
        own = feature.compute(frame)["rsi_14"].to_numpy()
        np.testing.assert_array_equal(values[panel.present[:, j], j], own)
