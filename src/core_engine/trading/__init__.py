"""core_engine.trading: the event world (DESIGN.md §7).

Orders and fills (:mod:`~core_engine.trading.orders`), the :class:`Broker` protocol, the
candle-matching :class:`SimBroker`, the :class:`Trader` contract, :class:`RankingTrader`
(any ranking strategy as a trader) and :func:`replay`, which runs a trader over recorded
candles and returns a :class:`ReplayResult`.

>>> from core_engine.trading import RankingTrader, replay  # doctest: +SKIP
>>> result = replay(RankingTrader("macd_rsi_confluence"), panel)  # doctest: +SKIP
"""

from importlib import import_module
from typing import Any

# Names resolve on first use (PEP 562), so ``import core_engine.trading.cli`` (the command
# line) stays light; ``from core_engine.trading import replay`` works as usual.
_WHERE = {
    "Broker": "broker", "BrokerUnavailable": "broker", "ExchangeError": "broker",
    "InsufficientFunds": "broker", "OrderNotFound": "broker", "OrderRejected": "broker",
    "RateLimited": "broker", "split_symbol": "broker",
    "TRANSITIONS": "orders", "Fill": "orders", "Order": "orders", "OrderSide": "orders",
    "OrderStatus": "orders", "OrderType": "orders", "check_transition": "orders",
    "client_order_id": "orders",
    "RankingTrader": "ranking", "replay": "events", "ReplayResult": "results",
    "SimBroker": "sim", "Context": "trader", "Trader": "trader",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'core_engine.trading' has no attribute {name!r}")
    value = getattr(import_module(f"core_engine.trading.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "TRANSITIONS",
    "Broker",
    "BrokerUnavailable",
    "Context",
    "ExchangeError",
    "Fill",
    "InsufficientFunds",
    "Order",
    "OrderNotFound",
    "OrderRejected",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "RankingTrader",
    "RateLimited",
    "ReplayResult",
    "SimBroker",
    "Trader",
    "check_transition",
    "client_order_id",
    "replay",
    "split_symbol",
]
