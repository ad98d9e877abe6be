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
    "BrokerUnavailable",
    "ExchangeError",
    "FeatureError",
    "InsufficientFunds",
    "LookaheadError",
    "OrderNotFound",
    "OrderRejected",
    "OrderStateError",
    "RateLimited",
    "StopWouldTrigger",
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


class OrderRejected(ExchangeError):
    """The broker refused an order (invalid parameters, a duplicate client id, a market rule);
    the order's status is ``rejected``."""


class StopWouldTrigger(OrderRejected):
    """A stop order refused because the market is already through its level (Binance -2010
    "Stop price would trigger immediately", ccxt ``OrderImmediatelyFillable``)."""


class InsufficientFunds(OrderRejected):
    """The balance (cash for a buy, the held asset for a sell) cannot cover the order."""


class OrderNotFound(ExchangeError):
    """No order with the given client order id is known to the broker."""


class RateLimited(ExchangeError):
    """The broker asked us to slow down (HTTP 429 and the like): back off, do not retry now."""


class BrokerUnavailable(ExchangeError):
    """The broker could not be reached or did not answer; the outcome of a request that
    changes state (a create, a cancel) is unknown until it is looked up."""


class OrderStateError(CoreEngineError, RuntimeError):
    """An order was asked to make a status change its transition table does not allow."""


class StoreError(CoreEngineError, RuntimeError):
    """The Parquet store could not read or write a file."""


class LookaheadError(CoreEngineError, AssertionError):
    """A computation used data from after the decision time (the time rule, DESIGN.md §1)."""
