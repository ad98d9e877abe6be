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
