"""Idempotent client order ids: the same decision always produces the same id.

A client order id is a short hash of (trader id, bar time, symbol, leg[, attempt]). The runner
writes it to the journal before the network call; after a crash or a timeout the order is
found again by that id, so a create is never sent twice for one decision.

Exchange limits (from the exchanges' API documentation):

* Binance spot ``newClientOrderId``: at most 36 characters of ``[.A-Z:/a-z0-9_-]``.
* Kraken ``cl_ord_id``: a UUID, or free text of at most 18 characters; ``userref`` is a
  signed 32-bit integer.

The ids here are ``"ce"`` followed by lower-case base-32 digits (``a-z2-7``), which every one of
these exchanges accepts.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pandas as pd

from core_engine.errors import ConfigError

__all__ = ["CLIENT_ID_LENGTH", "client_order_id", "kraken_client_id", "kraken_userref"]

PREFIX = "ce"
CLIENT_ID_LENGTH = {"binance": 26, "kraken": 18}
"""Length of the ids per exchange; any other exchange gets the Binance form."""
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def _bar_nanoseconds(bar_time: object) -> int:
    try:
        stamp = pd.Timestamp(bar_time)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"The 'bar_time' of client_order_id must be a timestamp. Got {bar_time!r}.") from exc
    if stamp is pd.NaT:
        raise ConfigError("The 'bar_time' of client_order_id must be a timestamp. Got NaT.")
    if stamp.tzinfo is None:
        raise ConfigError(
            f"The 'bar_time' of client_order_id must be timezone-aware (UTC). Got naive {stamp}.")
    return int(stamp.tz_convert("UTC").value)


def client_order_id(trader_id: str, bar_time: object, symbol: str, leg: str, *,
                    attempt: int = 0, exchange: str = "binance") -> str:
    """The client order id of one order leg of one decision.

    Parameters
    ----------
    trader_id : str
        Stable id of the trader instance (strategy name plus parameters, or a user label).
    bar_time : timestamp
        The decision time (timezone-aware).
    symbol : str
        Unified symbol, e.g. ``"BTC/USDT"``.
    leg : str
        Which order of the decision: ``"entry"``, ``"exit"``, ``"stop"``, ``"take_profit"``, ...
    attempt : int, default 0
        Bumped only when the journal has proven the previous id was never placed and the
        runner decides to send the leg again; 0 keeps ids of older journals unchanged.
    exchange : str, default "binance"
        Picks the length limit (:data:`CLIENT_ID_LENGTH`).

    Returns
    -------
    str
        ``"ce"`` + base-32 digest, 26 characters (18 for Kraken).

    Examples
    --------
    >>> client_order_id("macd-1", "2021-03-01 10:00Z", "BTC/USDT", "entry")
    'cedrqpsxifkxzwwwqhihdi5qqs'
    >>> len(client_order_id("macd-1", "2021-03-01 10:00Z", "BTC/USDT", "entry", exchange="kraken"))
    18
    """
    for name, value in (("trader_id", trader_id), ("symbol", symbol), ("leg", leg)):
        if not isinstance(value, str) or not value:
            raise ConfigError(
                f"The {name!r} of client_order_id must be a non-empty string. Got {value!r}.")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
        raise ConfigError(
            f"The 'attempt' of client_order_id must be an integer >= 0. Got {attempt!r}.")
    fields = [trader_id, str(_bar_nanoseconds(bar_time)), symbol, leg]
    if attempt:
        fields.append(str(attempt))
    digest = hashlib.sha256("\x1f".join(fields).encode()).digest()
    length = CLIENT_ID_LENGTH.get(exchange, CLIENT_ID_LENGTH["binance"])
    text = base64.b32encode(digest).decode().lower().rstrip("=")
    return PREFIX + text[: length - len(PREFIX)]


def kraken_userref(client_id: str) -> int:
    """A signed 32-bit ``userref`` derived from a client id (Kraken filters orders by it).

    Examples
    --------
    >>> kraken_userref("ce2a3b4c5d6e7f2a3b")
    -1177132672
    """
    if not isinstance(client_id, str) or not client_id:
        raise ConfigError(f"The 'client_id' of kraken_userref must be a non-empty string. "
                          f"Got {client_id!r}.")
    value = int.from_bytes(hashlib.sha256(client_id.encode()).digest()[:4], "big")
    return value - (1 << 32) if value >= (1 << 31) else value


def kraken_client_id(client_id: str) -> str:
    """Our client id in a form Kraken's ``cl_ord_id`` accepts: as is up to 18 characters, a
    32-hex-digit id (the trading layer's ``client_order_id``) as a UUID.

    Examples
    --------
    >>> kraken_client_id("ce12a8ea383a30700228eca90a058e1c")
    'ce12a8ea-383a-3070-0228-eca90a058e1c'
    """
    if isinstance(client_id, str) and 0 < len(client_id) <= 18:
        return client_id
    if isinstance(client_id, str) and _HEX32.match(client_id):
        return "-".join((client_id[:8], client_id[8:12], client_id[12:16], client_id[16:20],
                         client_id[20:]))
    raise ConfigError(f"Kraken's cl_ord_id takes up to 18 characters or a UUID; the client id "
                      f"{client_id!r} is neither (use client_order_id(..., exchange='kraken')).")
