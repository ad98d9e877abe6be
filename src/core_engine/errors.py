"""The one error hierarchy of core_engine.

Every error the library raises on purpose derives from :class:`CoreEngineError`, and each
is also the builtin exception that fits (``ValueError`` for bad input, ``RuntimeError``
for failures while running), so ``except ValueError`` in user code keeps working.

A message names what was given, where, and what was expected.
"""

from __future__ import annotations

__all__ = [
    "CoreEngineError",
    "ConfigError",
    "DataValidationError",
    "ExchangeError",
    "FeatureError",
    "LookaheadError",
    "StoreError",
    "StrategyError",
]


class CoreEngineError(Exception):
    """Base class of every error raised by core_engine."""


class DataValidationError(CoreEngineError, ValueError):
    """A candle frame or panel breaks the candle contract (DESIGN.md §2)."""


class ConfigError(CoreEngineError, ValueError):
    """A parameter or configuration value is invalid."""


class FeatureError(CoreEngineError, ValueError):
    """A feature cannot be computed from the input it was given."""


class StrategyError(CoreEngineError, RuntimeError):
    """A strategy failed; the message names the strategy and the decision time."""


class ExchangeError(CoreEngineError, RuntimeError):
    """An exchange or data provider failed permanently (after retries, if any)."""


class StoreError(CoreEngineError, RuntimeError):
    """The Parquet store could not read or write a file."""


class LookaheadError(CoreEngineError, AssertionError):
    """A computation used data from after the decision time (the time rule, DESIGN.md §1)."""
