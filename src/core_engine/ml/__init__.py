"""core_engine.ml: cost-aware labels, datasets, scikit-learn strategies and a trading
environment for reinforcement learning (DESIGN.md §10).

>>> from core_engine.ml import ForwardReturn, SklearnStrategy, make_dataset  # doctest: +SKIP
>>> strategy = SklearnStrategy(LogisticRegression(), [RSI(14)],
...                            label=ForwardReturn(window="4h", hurdle_pct=0.0))  # doctest: +SKIP
>>> walk_forward(panel, strategy, window="4h", shift="4h", audit=5)  # doctest: +SKIP

Names are imported on first use. The ``ml`` extra (``pip install 'core-engine[ml]'``)
installs what they need: scikit-learn for :class:`SklearnStrategy` and the scorer, gymnasium
for :class:`TradingEnv`; labels and datasets need neither.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ForwardReturn": "labels", "Labels": "labels", "TripleBarrier": "labels",
    "binary_label": "labels", "decision_rows": "labels", "forward_return_label": "labels",
    "triple_barrier_label": "labels",
    "Dataset": "dataset", "make_dataset": "dataset",
    "MODEL_CACHE": "strategy", "FittedModel": "strategy", "ModelCache": "strategy",
    "SklearnStrategy": "strategy", "trading_scorer": "strategy",
    "ScheduledWeights": "replay",
    "TradingEnv": "env",
}

__all__ = [
    "Dataset",
    "FittedModel",
    "ForwardReturn",
    "Labels",
    "MODEL_CACHE",
    "ModelCache",
    "ScheduledWeights",
    "SklearnStrategy",
    "TradingEnv",
    "TripleBarrier",
    "binary_label",
    "decision_rows",
    "forward_return_label",
    "make_dataset",
    "trading_scorer",
    "triple_barrier_label",
]

if TYPE_CHECKING:
    from core_engine.ml.dataset import Dataset, make_dataset
    from core_engine.ml.env import TradingEnv
    from core_engine.ml.labels import (
        ForwardReturn,
        Labels,
        TripleBarrier,
        binary_label,
        decision_rows,
        forward_return_label,
        triple_barrier_label,
    )
    from core_engine.ml.replay import ScheduledWeights
    from core_engine.ml.strategy import (
        MODEL_CACHE,
        FittedModel,
        ModelCache,
        SklearnStrategy,
        trading_scorer,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core_engine.ml' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"core_engine.ml.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
