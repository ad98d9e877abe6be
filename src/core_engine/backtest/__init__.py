"""core_engine.backtest: the walk-forward engine, its simulation kernel, results and audit.

>>> from core_engine.backtest import walk_forward, BacktestResult, compare  # doctest: +SKIP
>>> result = walk_forward(panel, "macd_rsi_confluence", window="4h", shift="2h")  # doctest: +SKIP
>>> print(result.summary())  # doctest: +SKIP
"""

# The names marked F401 are not public, so not in __all__ (issue 9 §2): engine plumbing that
# walk_forward and the RankingTrader call per decision on inputs they have already checked.
# It lives in core_engine.backtest.inputs, .schedule and .simulate; these names stay
# importable from the package only because core_engine.optimize imports them from here.
# New code imports them from their modules.
from core_engine.backtest.audit import audit_lookahead, poisoned_panels
from core_engine.backtest.engine import MODES, load_panel, walk_forward
from core_engine.backtest.inputs import warm_up  # noqa: F401
from core_engine.backtest.metrics import compute_metrics, equity_curve
from core_engine.backtest.results import BacktestResult, compare
from core_engine.backtest.schedule import SKIP_REASONS, decision_schedule  # noqa: F401
from core_engine.backtest.simulate import (  # noqa: F401
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
    "audit_lookahead",
    "compare",
    "compute_metrics",
    "equity_curve",
    "load_panel",
    "poisoned_panels",
    "walk_forward",
]
