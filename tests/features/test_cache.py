"""FeatureCache and compute_features."""

from __future__ import annotations

import numpy as np
import pytest

from core_engine.data.panel import Panel
from core_engine.errors import ConfigError, FeatureError
from core_engine.features import (
    ATR,
    EMA,
    MACD,
    RSI,
    FeatureCache,
    MultiTimeframe,
    compute_features,
)


@pytest.fixture(scope="module")
def panel(btc_20k, nkn_5m):
    return Panel.from_frames({"BTC": btc_20k.iloc[:3000], "NKN": nkn_5m.iloc[:2500]}, "5m")


def test_compute_features_merges_every_column(panel):
    features = [RSI(14), MACD(), ATR(14), MultiTimeframe(RSI(14), "1h")]
    values = compute_features(features, panel)
    assert list(values) == ["rsi_14", *MACD().columns, "atr_14", "atr_pct_14", "rsi_14_1h"]
    for feature in features:
        alone = feature.compute_panel(panel)
        for column in feature.columns:
            np.testing.assert_array_equal(values[column], alone[column])
            assert values[column].shape == (panel.n_times, 2)
            assert values[column].flags.f_contiguous


def test_duplicate_columns_are_an_error(panel):
    with pytest.raises(ConfigError, match=r"Two features produce the column 'rsi_14'"):
        compute_features([RSI(14), RSI(length=14)], panel)


def test_bad_inputs(panel):
    with pytest.raises(ConfigError, match="FeatureComputer"):
        compute_features(["rsi"], panel)
    with pytest.raises(FeatureError, match="Panel"):
        compute_features([RSI()], {"close": 1})
    with pytest.raises(FeatureError, match="no rows"):
        compute_features([RSI()], panel.slice_rows(0, 0))
    with pytest.raises(ConfigError, match="either 'out' or 'cache'"):
        compute_features([RSI()], panel, FeatureCache(), out=np.empty((1, 1, 1), order="F"))


def test_cache_hits_on_same_feature_and_data_and_misses_otherwise(panel):
    cache = FeatureCache()
    first = compute_features([RSI(14), EMA(12)], panel, cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 2, 2)
    second = compute_features([RSI(length=14), EMA(26)], panel, cache)
    assert (cache.hits, cache.misses) == (1, 3)
    assert second["rsi_14"] is first["rsi_14"]  # served from memory, not recomputed
    assert not second["rsi_14"].flags.writeable
    # same values, different panel object: the fingerprint matches -> hit
    twin = Panel.from_frames({s: panel.frame(s) for s in panel.symbols}, "5m")
    compute_features([RSI(14)], twin, cache)
    assert cache.hits == 2
    # different data: miss
    changed = panel.with_fields(close=np.where(np.isnan(panel.close), np.nan, panel.close * 1.01))
    compute_features([RSI(14)], changed, cache)
    assert cache.misses == 4


def test_lru_eviction_respects_the_byte_cap(panel):
    one = panel.n_times * panel.n_symbols * 8
    cache = FeatureCache(max_bytes=int(2.5 * one))
    compute_features([EMA(5)], panel, cache)
    compute_features([EMA(6)], panel, cache)
    compute_features([EMA(5)], panel, cache)  # touch EMA(5): EMA(6) is now the oldest
    compute_features([EMA(7)], panel, cache)
    assert len(cache) == 2 and cache.nbytes <= cache.max_bytes
    hits = cache.hits
    compute_features([EMA(5)], panel, cache)
    assert cache.hits == hits + 1
    compute_features([EMA(6)], panel, cache)
    assert cache.hits == hits + 1  # evicted
    big = FeatureCache(max_bytes=one)  # MACD's 4 outputs do not fit: not stored
    compute_features([MACD()], panel, big)
    assert len(big) == 0
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0
    with pytest.raises(ConfigError, match="max_bytes"):
        FeatureCache(max_bytes=0)


def test_a_misspelt_keyword_gets_the_did_you_mean_of_the_strategies():
    with pytest.raises(ConfigError, match=r"FeatureCache has no parameter 'max_byte'; valid "
                                          r"parameters are \['max_bytes'\]\. Did you mean "
                                          r"'max_bytes'\?"):
        FeatureCache(max_byte=10)
    with pytest.raises(ConfigError, match="at most 1 positional"):
        FeatureCache(10, 20)
