"""core_engine.optimize: splitters, sweeps, executors and overfitting statistics (DESIGN.md §9).

>>> from core_engine.optimize import Sweep, WalkForward, walk_forward_optimize  # doctest: +SKIP
>>> sweep = Sweep("macd_rsi_confluence", {"rsi_low": "35:50:5",
...               "exits.stop_loss_pct": [1.0, 2.0]}, panel, window="4h", shift="2h")
>>> wfo = walk_forward_optimize(sweep, WalkForward(train="60d", test="14d"))  # doctest: +SKIP
>>> wfo.result.summary(), wfo.folds, print(wfo.overfitting_report())  # doctest: +SKIP

Portfolio mode sweeps sizing and rule fields (``"sizing.pct"``, ``"rules.cooldown"``) and is
measured on the account (daily returns; a walk-forward optimisation trades one account
through the test folds, :mod:`core_engine.optimize.account`); a Trader class or instance
(``Sweep(GridTrader, {"levels": [10, 20], ...}, panel)``) is swept through ``replay``.

Names are imported on first use, so ``core_engine.optimize.cli`` (the ``sweep`` command,
registered with every other command) costs nothing until it runs. Dask and optuna are
optional (``pip install 'core-engine[dask]'``, ``'core-engine[optuna]'``) and imported only
when a DaskExecutor or an optuna search is created.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "DaskExecutor": "executors", "Executor": "executors", "LocalExecutor": "executors",
    "OverfittingReport": "overfitting", "PBOResult": "overfitting",
    "deflated_sharpe_ratio": "overfitting", "expected_max_sharpe": "overfitting",
    "overfitting_report": "overfitting", "probabilistic_sharpe_ratio": "overfitting",
    "probability_of_backtest_overfitting": "overfitting",
    "ResultStore": "results", "config_id": "results",
    "Choice": "space", "IntUniform": "space", "Space": "space", "Uniform": "space",
    "CombinatorialPurgedCV": "splitters", "PurgedKFold": "splitters",
    "WalkForward": "splitters", "decision_times_of": "splitters",
    "Sweep": "sweep", "SweepResult": "sweep",
    "WalkForwardOptimization": "walk", "walk_forward_optimize": "walk",
}

__all__ = [
    "Choice",
    "CombinatorialPurgedCV",
    "DaskExecutor",
    "Executor",
    "IntUniform",
    "LocalExecutor",
    "OverfittingReport",
    "PBOResult",
    "PurgedKFold",
    "ResultStore",
    "Space",
    "Sweep",
    "SweepResult",
    "Uniform",
    "WalkForward",
    "WalkForwardOptimization",
    "config_id",
    "decision_times_of",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "overfitting_report",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "walk_forward_optimize",
]

if TYPE_CHECKING:  # the real imports, for type checkers and IDEs
    from core_engine.optimize.executors import DaskExecutor, Executor, LocalExecutor
    from core_engine.optimize.overfitting import (
        OverfittingReport,
        PBOResult,
        deflated_sharpe_ratio,
        expected_max_sharpe,
        overfitting_report,
        probabilistic_sharpe_ratio,
        probability_of_backtest_overfitting,
    )
    from core_engine.optimize.results import ResultStore, config_id
    from core_engine.optimize.space import Choice, IntUniform, Space, Uniform
    from core_engine.optimize.splitters import (
        CombinatorialPurgedCV,
        PurgedKFold,
        WalkForward,
        decision_times_of,
    )
    from core_engine.optimize.sweep import Sweep, SweepResult
    from core_engine.optimize.walk import WalkForwardOptimization, walk_forward_optimize


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core_engine.optimize' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"core_engine.optimize.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
