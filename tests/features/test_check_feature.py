"""check_feature: every built-in passes it under hypothesis data; each of its checks catches
a feature built to break that rule (negative controls)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from core_engine.errors import FeatureError, LookaheadError
from core_engine.features import (
    MACD,
    RSI,
    CrossSectional,
    FeatureComputer,
    MultiTimeframe,
    PandasTA,
    RollingHighLow,
)
from core_engine.testing.features import check_feature

from .helpers import builtin_kernel_features, candle_frames, synthetic_candles

ALL_BUILTINS = builtin_kernel_features() + [
    MultiTimeframe(RSI(3), "15m"),
    MultiTimeframe(MACD(3, 6, 2), "1h"),
    MultiTimeframe(RollingHighLow(2), "10m"),
    CrossSectional(RSI(5), "rsi_5", "zscore"),
    PandasTA("adx", length=5),
]


@pytest.mark.parametrize("feature", ALL_BUILTINS, ids=repr)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(candles=candle_frames())
def test_every_builtin_passes_check_feature(feature, candles):
    check_feature(feature, candles, n_times=6, timeframe="5m")


@pytest.mark.parametrize("feature", ALL_BUILTINS, ids=repr)
def test_every_builtin_passes_check_feature_on_real_data(feature, nkn_5m):
    check_feature(feature, nkn_5m.iloc[7000:8500].reset_index(drop=True), n_times=10)


# ---------------------------------------------------------------- negative controls
class NextClose(FeatureComputer):
    """Leaky on purpose: tomorrow's close (shift(-1))."""

    name = "next_close"
    _defaults: ClassVar[dict] = {}
    lookback = 0
    columns = ("next_close",)

    def _compute_frame(self, candles):
        return pd.DataFrame({"next_close": candles["close"].shift(-1).to_numpy()})


class FullSampleZScore(FeatureComputer):
    """Leaky on purpose: normalised with the mean and std of the whole series."""

    name = "full_sample_zscore"
    _defaults: ClassVar[dict] = {}
    lookback = 0
    columns = ("close_z",)

    def _compute_frame(self, candles):
        close = candles["close"]
        return pd.DataFrame({"close_z": ((close - close.mean()) / close.std()).to_numpy()})


class Mutating(FeatureComputer):
    name = "mutating"
    _defaults: ClassVar[dict] = {}
    lookback = 0
    columns = ("close_copy",)

    def _compute_frame(self, candles):
        candles["volume"] = candles["volume"] * 1.0 + 1.0
        return pd.DataFrame({"close_copy": candles["close"].to_numpy()})


class PanelIgnoresHoles(FeatureComputer):
    """compute is right, compute_panel uses pandas rolling over NaN rows (breaks the skip rule)."""

    name = "panel_ignores_holes"
    _defaults: ClassVar[dict] = {}
    lookback = 2
    columns = ("mean_3",)

    def _compute_frame(self, candles):
        return pd.DataFrame({"mean_3": candles["close"].rolling(3).mean().to_numpy()})

    def compute_panel(self, panel):
        mean = pd.DataFrame(panel.close).rolling(3, min_periods=1).mean().to_numpy().copy()
        mean[:2] = np.nan
        return {"mean_3": np.asfortranarray(mean)}


class WrongLookback(FeatureComputer):
    name = "wrong_lookback"
    _defaults: ClassVar[dict] = {}
    lookback = 5
    columns = ("close_copy",)

    def _compute_frame(self, candles):
        return pd.DataFrame({"close_copy": candles["close"].to_numpy()})


class SilentOnNaN:
    """Duck-typed (not a FeatureComputer, whose compute always validates): a NaN price goes
    through without the documented error."""

    columns = ("close_copy",)
    lookback = 0

    def __repr__(self):
        return "SilentOnNaN()"

    def compute(self, candles):
        if len(candles) == 0:
            raise FeatureError("empty")
        return pd.DataFrame({"close_copy": candles["close"].to_numpy()},
                            index=pd.DatetimeIndex(candles["timestamp"], name="timestamp"))

    def compute_panel(self, panel):
        return {"close_copy": np.array(panel.close, order="F")}


@pytest.fixture(scope="module")
def candles():
    return synthetic_candles(300, seed=11, holes=10)


def test_shift_minus_one_fails_with_lookahead_error(candles):
    with pytest.raises(LookaheadError, match=r"NextClose\(\) uses future candles: column "
                                             r"'next_close' at row \d+"):
        check_feature(NextClose(), candles)


def test_full_sample_normalisation_fails_with_lookahead_error(candles):
    with pytest.raises(LookaheadError, match="uses future candles"):
        check_feature(FullSampleZScore(), candles)


def test_naive_pandas_ta_dpo_is_caught(candles):
    with pytest.raises(LookaheadError):
        check_feature(PandasTA("dpo", length=10), candles)
    check_feature(PandasTA("dpo", length=10, centered=False), candles)


def test_input_mutation_is_caught(candles):
    with pytest.raises(AssertionError, match="modified its input"):
        check_feature(Mutating(), candles)


def test_panel_disagreeing_with_compute_is_caught(candles):
    with pytest.raises(AssertionError, match="compute_panel and compute differ"):
        check_feature(PanelIgnoresHoles(), candles)


def test_wrong_lookback_is_caught():
    # compute itself refuses it now (before issue 9 check_feature's shape check did)
    gap_free = synthetic_candles(100, seed=5)
    with pytest.raises(FeatureError, match=r"WrongLookback\(\) declares lookback = 5, but .* "
                                           r"'close_copy' has a value at row 0"):
        check_feature(WrongLookback(), gap_free)


def test_missing_documented_error_is_caught(candles):
    with pytest.raises(AssertionError, match="NaN close must raise DataValidationError"):
        check_feature(SilentOnNaN(), candles)
