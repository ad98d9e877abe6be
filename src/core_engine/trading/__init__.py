"""core_engine.trading: the event world (DESIGN.md §7).

Orders and fills (:mod:`~core_engine.trading.orders`), the :class:`Broker` protocol, the
candle-matching :class:`SimBroker`, the :class:`Trader` contract, :class:`RankingTrader`
(any ranking strategy as a trader) and :func:`replay`, which runs a trader over recorded
candles and returns a :class:`ReplayResult`.

>>> from core_engine.trading import RankingTrader, replay  # doctest: +SKIP
>>> result = replay(RankingTrader("macd_rsi_confluence"), panel)  # doctest: +SKIP
"""

from core_engine._lazy import lazy_attributes

# Names resolve on first use (PEP 562), so ``import core_engine.trading.cli`` (the command
# line) stays light; ``from core_engine.trading import replay`` works as usual.
_WHERE = {
    "Broker": "broker", "BrokerUnavailable": "broker", "ExchangeError": "broker",
    "InsufficientFunds": "broker", "OrderNotFound": "broker", "OrderRejected": "broker",
    "RateLimited": "broker", "split_symbol": "broker",
    "TRANSITIONS": "orders", "Fill": "orders", "FollowUp": "orders", "Order": "orders", "OrderSide": "orders",
    "OrderStatus": "orders", "OrderType": "orders", "check_transition": "orders",
    "client_order_id": "orders",
    "RankingTrader": "ranking", "replay": "events", "ReplayResult": "results",
    "SimBroker": "sim", "Context": "trader", "Trader": "trader",
}


__all__ = [
    "TRANSITIONS",
    "Broker",
    "BrokerUnavailable",
    "Context",
    "ExchangeError",
    "Fill",
    "FollowUp",
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

__getattr__, __dir__ = lazy_attributes(__name__, _WHERE, globals(), __all__)
