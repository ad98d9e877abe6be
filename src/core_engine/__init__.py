"""core_engine: leakage-proof research for ranking crypto universes on a fixed cadence.

The layers, one direction only: ``data → features → strategies → risk → backtest``,
with ``live`` beside ``backtest``. See ``DESIGN`` in the project documentation.
"""

from core_engine.errors import (
    ConfigError,
    CoreEngineError,
    DataValidationError,
    ExchangeError,
    FeatureError,
    LookaheadError,
    StoreError,
    StrategyError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "CoreEngineError",
    "DataValidationError",
    "ExchangeError",
    "FeatureError",
    "LookaheadError",
    "StoreError",
    "StrategyError",
    "__version__",
]
