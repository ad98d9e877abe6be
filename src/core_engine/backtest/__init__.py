"""core_engine.backtest: the walk-forward engine, its simulation kernel, results and audit.

>>> from core_engine.backtest import walk_forward, BacktestResult, compare  # doctest: +SKIP
>>> result = walk_forward(panel, "macd_rsi_confluence", window="4h", shift="2h")  # doctest: +SKIP
>>> print(result.summary())  # doctest: +SKIP
"""

# Engine plumbing (allocate_at, scores_at, compute_inputs, warm_up, decision_schedule, Picks,
# simulate_picks, records_to_frame, resolve_exit_distances) is not public (issue 9 §2): steps
# walk_forward, the RankingTrader and the sweeps call per decision on inputs they have already
# checked. Import it from core_engine.backtest.inputs, .schedule and .simulate.
from core_engine.backtest.audit import audit_lookahead, poisoned_panels
from core_engine.backtest.engine import MODES, load_panel, walk_forward
from core_engine.backtest.metrics import compute_metrics, equity_curve
from core_engine.backtest.results import BacktestResult, compare
from core_engine.backtest.schedule import SKIP_REASONS
from core_engine.backtest.simulate import EXIT_REASON_NAMES, TRADE_DTYPE

__all__ = [
    "EXIT_REASON_NAMES",
    "MODES",
    "SKIP_REASONS",
    "TRADE_DTYPE",
    "BacktestResult",
    "audit_lookahead",
    "compare",
    "compute_metrics",
    "equity_curve",
    "load_panel",
    "poisoned_panels",
    "walk_forward",
]
