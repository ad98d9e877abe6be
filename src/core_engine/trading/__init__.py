"""core_engine.trading: the event world (DESIGN.md §7).

Orders and fills (:mod:`~core_engine.trading.orders`), the :class:`Broker` protocol, the
candle-matching :class:`SimBroker`, the :class:`Trader` contract, :class:`RankingTrader`
(any ranking strategy as a trader) and :func:`replay`, which runs a trader over recorded
candles and returns a :class:`ReplayResult`.

>>> from core_engine.trading import RankingTrader, replay  # doctest: +SKIP
>>> result = replay(RankingTrader("macd_rsi_confluence"), panel)  # doctest: +SKIP
"""

from core_engine.trading.broker import (
    Broker,
    BrokerUnavailable,
    ExchangeError,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    split_symbol,
)
from core_engine.trading.orders import (
    TRANSITIONS,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    check_transition,
    client_order_id,
)
from core_engine.trading.ranking import RankingTrader
from core_engine.trading.replay import replay
from core_engine.trading.results import ReplayResult
from core_engine.trading.sim import SimBroker
from core_engine.trading.trader import Context, Trader

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
