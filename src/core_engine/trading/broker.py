"""The Broker protocol: what a trader's orders go through, simulated or live (DESIGN.md §7).

Implementations: :class:`~core_engine.trading.sim.SimBroker` (candle matching, here), and
the paper and exchange brokers of ``core_engine.live``. A runner or :func:`replay` talks to
any of them through these eight methods only.

Contract every implementation keeps
-----------------------------------
* ``place(order)`` sends a new order (status ``new``) and returns it with the status the
  broker reports (``submitted``, ``partially_filled``, ``filled``, ``cancelled`` for an IOC
  that found nothing). A refused order gets status ``rejected`` and the call raises
  :class:`OrderRejected` (:class:`InsufficientFunds` when the balance cannot cover it).
  Placing again an order whose client id the broker already knows, with the same
  parameters, returns the known order and sends nothing (idempotent create); with other
  parameters it raises :class:`OrderRejected`. When the outcome is unknown (a timeout) the
  order is ``unknown`` and :class:`BrokerUnavailable` is raised; ``fetch_order`` resolves it.
* ``cancel(client_id)`` cancels an open order and returns it; cancelling an order that is
  already final returns it unchanged. Unknown ids raise :class:`OrderNotFound`.
* ``fetch_order(client_id)`` returns the order as the broker knows it now.
* ``open_orders(symbol=None)`` lists the orders that may still fill.
* ``fills(since=None)`` lists executions (each once, by trade id) at or after ``since``.
* ``balances()`` maps each asset (``"USDT"``, ``"BTC"``) to the quantity held.
* ``candles(symbol, timeframe, since=None, limit=None)`` returns **closed** candles only
  (the candle contract of ``core_engine.data``).
* ``now()`` is the broker's clock (UTC).

Errors are :class:`~core_engine.errors.ExchangeError` subclasses, re-exported here.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import pandas as pd

from core_engine.errors import (
    BrokerUnavailable,
    ExchangeError,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    RateLimited,
)
from core_engine.trading.orders import Fill, Order

__all__ = [
    "Broker",
    "BrokerUnavailable",
    "ExchangeError",
    "InsufficientFunds",
    "OrderNotFound",
    "OrderRejected",
    "RateLimited",
    "split_symbol",
]


@runtime_checkable
class Broker(Protocol):
    """Structural type of a broker; see the module docstring for the contract."""

    def place(self, order: Order) -> Order: ...

    def cancel(self, client_id: str) -> Order: ...

    def fetch_order(self, client_id: str) -> Order: ...

    def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    def fills(self, since: Any = None) -> list[Fill]: ...

    def balances(self) -> dict[str, float]: ...

    def candles(self, symbol: str, timeframe: str, since: Any = None,
                limit: int | None = None) -> pd.DataFrame: ...

    def now(self) -> pd.Timestamp: ...


def split_symbol(symbol: str, default_quote: str = "USDT") -> tuple[str, str]:
    """``"BTC/USDT"`` -> ``("BTC", "USDT")``; a symbol without ``/`` is its own base asset.

    Examples
    --------
    >>> split_symbol("ETH/BTC"), split_symbol("AAA")
    (('ETH', 'BTC'), ('AAA', 'USDT'))
    """
    base, sep, quote = str(symbol).partition("/")
    if not sep:
        return base, default_quote
    return base, quote.split(":")[0]
