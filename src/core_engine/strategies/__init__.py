"""core_engine.strategies: the trader agents (DESIGN.md §4).

A strategy declares the features it needs and scores every (time, symbol); NaN = not a
candidate. Look one up with :func:`get_strategy` by name or module path, or register your own
with :func:`register`.
"""

from core_engine.strategies.base import Strategy, did_you_mean, rank_candidates
from core_engine.strategies.breakout import Breakout
from core_engine.strategies.ma_crossover import MovingAverageCrossover
from core_engine.strategies.macd_rsi_confluence import MacdRsiConfluence
from core_engine.strategies.momentum_rank import MomentumRank
from core_engine.strategies.registry import (
    get_strategy,
    get_strategy_class,
    list_strategies,
    register,
    register_strategy,
)

__all__ = [
    "Breakout",
    "MacdRsiConfluence",
    "MomentumRank",
    "MovingAverageCrossover",
    "Strategy",
    "did_you_mean",
    "get_strategy",
    "get_strategy_class",
    "list_strategies",
    "rank_candidates",
    "register",
    "register_strategy",
]
