"""What we send to each exchange through ccxt: one small pure function per exchange.

``create_call(exchange_id, ...)`` turns one order of ours into the arguments of ccxt's
``create_order`` for that exchange: our client id in the exchange's own parameter, the
exchange's stop-loss / take-profit order type. ``lookup_params`` gives the parameters that
find or cancel an order by that client id. Nothing here talks to the network, so the
recorded-request tests (``tests/live/test_exchange_params.py``) pin the exact requests ccxt
builds from them.

* Binance spot: ``newClientOrderId``; a stop is ``STOP_LOSS`` (market on trigger) through
  ccxt's ``stopLossPrice``; a target is ``TAKE_PROFIT`` through ``takeProfitPrice``; orders
  are found and cancelled by ``origClientOrderId``.
* Kraken spot: ``cl_ord_id`` (ccxt's ``clientOrderId``; a 32-hex id as a UUID) plus a
  ``userref`` derived from it;
  a stop is ``stop-loss`` (``price`` = trigger), a target ``take-profit``; orders are found by
  ``cl_ord_id`` among open and closed orders, cancelled by ``cl_ord_id``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core_engine.errors import ConfigError
from core_engine.live.client_ids import kraken_client_id, kraken_userref

__all__ = ["ORDER_TYPES", "SUPPORTED_EXCHANGES", "CreateCall", "create_call", "lookup_params"]

ORDER_TYPES = ("market", "limit", "stop", "take_profit")
SIDES = ("buy", "sell")


@dataclass(frozen=True)
class CreateCall:
    """The arguments of one ``exchange.create_order(...)`` call."""

    symbol: str
    type: str
    side: str
    amount: float
    price: float | None
    params: dict[str, Any] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ccxt's ``create_order``."""
        return {"symbol": self.symbol, "type": self.type, "side": self.side,
                "amount": self.amount, "price": self.price, "params": dict(self.params)}


def _check(client_id: str, symbol: str, side: str, order_type: str, quantity: float,
           limit_price: float | None, stop_price: float | None) -> None:
    if not isinstance(client_id, str) or not client_id:
        raise ConfigError(f"An order needs a non-empty client id. Got {client_id!r}.")
    if side not in SIDES:
        raise ConfigError(f"Order {client_id}: side must be one of {SIDES}. Got {side!r}.")
    if order_type not in ORDER_TYPES:
        raise ConfigError(
            f"Order {client_id}: type must be one of {ORDER_TYPES}. Got {order_type!r}.")
    if not (isinstance(quantity, int | float) and math.isfinite(quantity) and quantity > 0):
        raise ConfigError(
            f"Order {client_id}: quantity must be a positive number. Got {quantity!r}.")
    if order_type == "limit" and not _positive(limit_price):
        raise ConfigError(f"Order {client_id}: a limit order needs a positive limit_price. "
                          f"Got {limit_price!r}.")
    if order_type in ("stop", "take_profit") and not _positive(stop_price):
        raise ConfigError(f"Order {client_id}: a {order_type} order needs a positive "
                          f"stop_price (its trigger). Got {stop_price!r}.")


def _positive(value: float | None) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _binance(client_id: str, symbol: str, side: str, order_type: str, quantity: float,
             limit_price: float | None, stop_price: float | None) -> CreateCall:
    params: dict[str, Any] = {"newClientOrderId": client_id}
    if order_type == "stop":
        params["stopLossPrice"] = stop_price
    elif order_type == "take_profit":
        params["takeProfitPrice"] = stop_price
    ccxt_type = "limit" if order_type == "limit" else "market"
    return CreateCall(symbol, ccxt_type, side, float(quantity),
                      limit_price if order_type == "limit" else None, params)


def _kraken(client_id: str, symbol: str, side: str, order_type: str, quantity: float,
            limit_price: float | None, stop_price: float | None) -> CreateCall:
    params: dict[str, Any] = {"clientOrderId": kraken_client_id(client_id),
                              "userref": kraken_userref(client_id)}
    if order_type == "stop":
        params["stopLossPrice"] = stop_price
    elif order_type == "take_profit":
        params["takeProfitPrice"] = stop_price
    ccxt_type = "limit" if order_type == "limit" else "market"
    return CreateCall(symbol, ccxt_type, side, float(quantity),
                      limit_price if order_type == "limit" else None, params)


_BUILDERS: dict[str, Callable[..., CreateCall]] = {"binance": _binance, "kraken": _kraken}
SUPPORTED_EXCHANGES = tuple(_BUILDERS)


def create_call(exchange_id: str, *, client_id: str, symbol: str, side: str, order_type: str,
                quantity: float, limit_price: float | None = None,
                stop_price: float | None = None) -> CreateCall:
    """The ccxt ``create_order`` arguments of one order on ``exchange_id``.

    Parameters
    ----------
    exchange_id : {"binance", "kraken"}
    client_id : str
        Our idempotent id (:func:`core_engine.live.client_ids.client_order_id`).
    symbol, side : str
        Unified symbol; ``"buy"`` or ``"sell"``.
    order_type : {"market", "limit", "stop", "take_profit"}
        ``stop`` and ``take_profit`` are market orders on trigger at ``stop_price``.
    quantity : float
        In base currency, > 0.
    limit_price, stop_price : float, optional

    Raises
    ------
    ConfigError
        Unknown exchange, side or type; a missing or non-positive price or quantity.

    Examples
    --------
    >>> create_call("binance", client_id="ceabc", symbol="BTC/USDT", side="sell",
    ...             order_type="stop", quantity=0.5, stop_price=30000.0).params
    {'newClientOrderId': 'ceabc', 'stopLossPrice': 30000.0}
    """
    builder = _BUILDERS.get(exchange_id)
    if builder is None:
        raise ConfigError(f"Placing orders on {exchange_id!r} is not supported; supported: "
                          f"{', '.join(SUPPORTED_EXCHANGES)}.")
    _check(client_id, symbol, side, order_type, quantity, limit_price, stop_price)
    return builder(client_id, symbol, side, order_type, quantity, limit_price, stop_price)


def lookup_params(exchange_id: str, client_id: str) -> dict[str, Any]:
    """ccxt ``params`` that find (``fetch_order``) or cancel an order by our client id.

    Examples
    --------
    >>> lookup_params("binance", "ceabc")
    {'origClientOrderId': 'ceabc'}
    """
    if exchange_id == "binance":
        return {"origClientOrderId": client_id}
    if exchange_id == "kraken":
        return {"cl_ord_id": kraken_client_id(client_id)}
    raise ConfigError(f"Finding orders by client id on {exchange_id!r} is not supported; "
                      f"supported: {', '.join(SUPPORTED_EXCHANGES)}.")
