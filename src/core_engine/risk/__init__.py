"""core_engine.risk: gates (eligibility), allocation (picks and weights), exits, sizing and
the portfolio rules.

The engine's order of work on a panel::

    eligible = apply_gates(gates, features, panel)                 # (T, N) bool
    alloc = allocator.allocate(scores[rows], eligible[rows], panel.symbols,
                               allocation_extra(allocator, features, confidence, rows))

(``allocation_extra`` is engine plumbing, imported from :mod:`core_engine.risk.allocation`.)
"""

from core_engine.risk.allocation import (
    Allocation,
    Allocator,
    ConfidenceWeighted,
    InverseVolatility,
    ScoreProportional,
    TopNEqual,
    symbol_name_rank,
)
from core_engine.risk.exits import ExitRules
from core_engine.risk.gates import (
    CustomGate,
    Gate,
    MaxATRPct,
    MaxSpreadProxy,
    MinQuoteVolume,
    apply_gates,
    gate_features,
)
from core_engine.risk.rules import RULE_NAMES, PortfolioRules
from core_engine.risk.sizing import (
    ConfidenceSizing,
    EqualSlots,
    FixedFraction,
    InverseVolatilitySizing,
    RiskPerTrade,
    Sizing,
    cap_by_balance,
    cap_by_exposure,
    parse_sizing,
    position_size,
    risk_per_trade_size,
    stop_price,
)

__all__ = [
    "RULE_NAMES",
    "Allocation",
    "Allocator",
    "ConfidenceSizing",
    "ConfidenceWeighted",
    "CustomGate",
    "EqualSlots",
    "ExitRules",
    "FixedFraction",
    "Gate",
    "InverseVolatility",
    "InverseVolatilitySizing",
    "MaxATRPct",
    "MaxSpreadProxy",
    "MinQuoteVolume",
    "PortfolioRules",
    "RiskPerTrade",
    "ScoreProportional",
    "Sizing",
    "TopNEqual",
    "apply_gates",
    "cap_by_balance",
    "cap_by_exposure",
    "gate_features",
    "parse_sizing",
    "position_size",
    "risk_per_trade_size",
    "stop_price",
    "symbol_name_rank",
]
