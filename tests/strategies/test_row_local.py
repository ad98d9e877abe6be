"""row_local: the claim that lets the engine score only decision rows is verified, not trusted."""

from __future__ import annotations

import numpy as np
import pytest

from core_engine.data import Panel
from core_engine.features import EMA
from core_engine.strategies import MacdRsiConfluence, MomentumRank
from core_engine.strategies.base import Strategy
from core_engine.testing import check_strategy


class _FalselyRowLocal(Strategy):
    """Reads the previous row of its EMA (causal, but not row-local) while claiming it is."""

    name = "falsely_row_local"
    row_local = True

    def __init__(self, length=5):
        self.length = length

    def features(self):
        return [EMA(length=self.length)]

    def score(self, features, panel):
        ema = features[f"ema_{self.length}"]
        previous = np.full_like(ema, np.nan)
        previous[1:] = ema[:-1]
        return ema / previous - 1.0


@pytest.fixture(scope="module")
def panel(make_candles):
    return Panel.from_frames({f"S{i}": make_candles(600, seed=i) for i in range(4)}, "5m")


def test_false_row_local_claim_is_caught(panel):
    with pytest.raises(AssertionError, match="declares row_local = True"):
        check_strategy(_FalselyRowLocal(), panel, n_times=5)


@pytest.mark.parametrize("strategy", [MacdRsiConfluence(), MomentumRank(length=12)], ids=repr)
def test_builtin_row_local_claims_hold(panel, strategy):
    assert strategy.row_local is True
    assert len(check_strategy(strategy, panel, n_times=8)) == 8


class _ReadsEverything(Strategy):
    """Row-local: reads the panel's close and its features through every Mapping form, and
    records what it was given."""

    name = "reads_everything"
    row_local = True
    seen: list = []

    def __init__(self, length=5):
        self.length = length

    def features(self):
        return [EMA(length=self.length)]

    def score(self, features, panel):
        type(self).seen.append((dict(features), dict(features.items()), panel.close, panel.n_times,
                                f"ema_{self.length}" in features, len(features)))
        return features[f"ema_{self.length}"] / panel.close - 1.0


def test_decision_rows_are_given_as_contiguous_read_only_arrays_and_score_as_all_rows(panel):
    """The row-local path hands the strategy its decision rows gathered (contiguous, so
    numpy runs at full speed on them, and read-only), as a full Mapping; the scores and the
    run equal those of the same strategy scoring every row."""
    from core_engine.backtest import walk_forward

    _ReadsEverything.seen = []
    local = walk_forward(panel, _ReadsEverything(), window="1h", shift="30min", max_positions=2)
    features, items, close, n_times, has, n = _ReadsEverything.seen[-1]
    assert has and n == 1 and features.keys() == items.keys() == {"ema_5"}
    for array in (features["ema_5"], close):
        assert array.shape == (n_times, panel.n_symbols)
        assert array.flags.f_contiguous and not array.flags.writeable
    every_row = _ReadsEverything()
    every_row.row_local = False
    dense = walk_forward(panel, every_row, window="1h", shift="30min", max_positions=2)
    assert _ReadsEverything.seen[-1][3] == panel.n_times  # the dense run scored every row
    assert len(local.trades) > 0
    import pandas as pd
    pd.testing.assert_frame_equal(local.trades, dense.trades)
