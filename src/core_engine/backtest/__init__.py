"""core_engine.backtest: the walk-forward engine, its simulation kernel, results and audit.

>>> from core_engine.backtest import walk_forward, BacktestResult, compare  # doctest: +SKIP
>>> result = walk_forward(panel, "macd_rsi_confluence", window="4h", shift="2h")  # doctest: +SKIP
>>> print(result.summary())  # doctest: +SKIP
"""

from core_engine.backtest.audit import audit_lookahead, poisoned_panels
from core_engine.backtest.engine import MODES, load_panel, walk_forward
from core_engine.backtest.inputs import allocate_at, compute_inputs, scores_at, warm_up
from core_engine.backtest.metrics import compute_metrics, equity_curve
from core_engine.backtest.results import BacktestResult, compare
from core_engine.backtest.schedule import SKIP_REASONS, DecisionSchedule, decision_schedule
from core_engine.backtest.simulate import (
    EXIT_REASON_NAMES,
    TRADE_DTYPE,
    Picks,
    records_to_frame,
    resolve_exit_distances,
    simulate_picks,
)

__all__ = [
    "EXIT_REASON_NAMES",
    "MODES",
    "SKIP_REASONS",
    "TRADE_DTYPE",
    "BacktestResult",
    "DecisionSchedule",
    "Picks",
    "allocate_at",
    "audit_lookahead",
    "compare",
    "compute_inputs",
    "compute_metrics",
    "decision_schedule",
    "equity_curve",
    "load_panel",
    "poisoned_panels",
    "records_to_frame",
    "resolve_exit_distances",
    "scores_at",
    "simulate_picks",
    "walk_forward",
    "warm_up",
]
