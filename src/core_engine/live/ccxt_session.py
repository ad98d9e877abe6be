"""One ccxt exchange, used safely: keys from a KeyRing, bounded backoff, errors classified.

:class:`CCXTSession` owns a ccxt exchange instance and runs every call through
:meth:`CCXTSession.call`, which applies the rules of DESIGN.md §8:

* **reads** (markets, candles, order lookups, trades, balances) are retried a bounded number
  of times on network errors and rate limits, with exponential backoff and full jitter (at
  least the server's ``Retry-After``); a rate limit or an authentication failure rotates to the
  next key of the ring;
* **writes** (create, cancel) are never retried: a timeout or network error raises
  :class:`UnknownOutcome` (the order may or may not exist; only a lookup by client id tells);
  a rate limit (HTTP 429/418: the request was refused, not executed) backs off once and raises
  :class:`RateLimited`;
* ccxt's error classes map to those of :mod:`core_engine.errors` (:func:`classify`): ``InsufficientFunds`` →
  :class:`InsufficientFunds`, ``OrderNotFound`` → :class:`OrderNotFound`, ``InvalidOrder`` /
  ``BadRequest`` → :class:`OrderRejected`, ``AuthenticationError`` → :class:`BrokerUnavailable`.

Messages of raised errors are scrubbed of every registered secret. ccxt's order and trade
dictionaries become plain records (:class:`ExchangeOrder`, :class:`ExchangeTrade`).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from core_engine._config import did_you_mean, keyword_checked
from core_engine._validate import check_instance, check_integer, check_mapping, check_real
from core_engine.errors import (
    BrokerUnavailable,
    ConfigError,
    ExchangeError,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    StopWouldTrigger,
)
from core_engine.live.keys import SCRUBBER, KeyRing, protect_logging
from core_engine.trading.orders import OrderStatus

__all__ = [
    "CCXTSession",
    "ExchangeOrder",
    "ExchangeTrade",
    "UnknownOutcome",
    "classify",
    "order_status",
]

_log = logging.getLogger(__name__)
T = TypeVar("T")


class UnknownOutcome(BrokerUnavailable):
    """A create or cancel timed out or lost its connection: it may or may not have happened."""


def classify(exc: BaseException) -> type[ExchangeError] | None:
    """Our error class for a ccxt exception (``None`` if it is not one of ccxt's).

    The order of the checks matters: in ccxt, ``RateLimitExceeded`` and ``DDoSProtection``
    are ``NetworkError`` subclasses and ``OrderNotFound`` is an ``InvalidOrder``.
    """
    import ccxt

    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return RateLimited
    if isinstance(exc, ccxt.NetworkError):  # RequestTimeout, ExchangeNotAvailable, ...
        return UnknownOutcome
    if isinstance(exc, ccxt.OrderNotFound):
        return OrderNotFound
    if isinstance(exc, ccxt.InsufficientFunds):
        return InsufficientFunds
    if isinstance(exc, ccxt.OrderImmediatelyFillable):
        return StopWouldTrigger
    if isinstance(exc, ccxt.InvalidOrder | ccxt.BadRequest | ccxt.OperationRejected):
        return OrderRejected
    if isinstance(exc, ccxt.AuthenticationError):
        return BrokerUnavailable
    if isinstance(exc, ccxt.BaseError):
        return BrokerUnavailable
    return None


@dataclass(frozen=True)
class ExchangeOrder:
    """An order as the exchange reports it."""

    client_id: str | None
    exchange_id: str
    symbol: str
    side: str
    status: OrderStatus
    quantity: float
    filled: float
    average_price: float | None
    trigger_price: float | None


@dataclass(frozen=True)
class ExchangeTrade:
    """One fill as the exchange reports it (fee in ``fee_asset``)."""

    trade_id: str
    order_exchange_id: str
    symbol: str
    side: str
    time_ms: int
    price: float
    quantity: float
    fee: float
    fee_asset: str
    liquidity: str | None


def order_status(status: str | None, filled: float) -> OrderStatus:
    """ccxt's unified order status as ours (``open`` with fills is ``partially_filled``)."""
    if status == "open":
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.SUBMITTED
    if status == "closed":
        return OrderStatus.FILLED
    if status in ("canceled", "cancelled", "expired"):
        return OrderStatus.CANCELLED
    if status == "rejected":
        return OrderStatus.REJECTED
    return OrderStatus.UNKNOWN


def to_order(raw: dict[str, Any]) -> ExchangeOrder:
    filled = float(raw.get("filled") or 0.0)
    return ExchangeOrder(
        client_id=raw.get("clientOrderId"), exchange_id=str(raw.get("id")),
        symbol=raw["symbol"], side=raw["side"], status=order_status(raw.get("status"), filled),
        quantity=float(raw.get("amount") or 0.0), filled=filled,
        average_price=float(raw["average"]) if raw.get("average") else None,
        trigger_price=float(raw["triggerPrice"]) if raw.get("triggerPrice") else None)


def to_trade(raw: dict[str, Any]) -> ExchangeTrade:
    fee = raw.get("fee") or {}
    base, quote = raw["symbol"].split("/")
    return ExchangeTrade(
        trade_id=str(raw["id"]), order_exchange_id=str(raw.get("order")), symbol=raw["symbol"],
        side=raw["side"], time_ms=int(raw["timestamp"]), price=float(raw["price"]),
        quantity=float(raw["amount"]), fee=float(fee.get("cost") or 0.0),
        fee_asset=fee.get("currency") or quote.split(":")[0],
        liquidity=raw.get("takerOrMaker"))


@keyword_checked
class CCXTSession:
    """A ccxt exchange with keys, bounded jittered backoff and error mapping.

    Parameters
    ----------
    exchange_id : str
        A ccxt exchange id (``"binance"``, ``"kraken"``, ...).
    keys : KeyRing, optional
        Credentials; without keys only public calls work.
    sandbox : bool, default False
        ccxt's ``set_sandbox_mode(True)`` (the exchange's testnet).
    config : dict, optional
        Extra ccxt constructor options (``timeout`` in ms, ``options``, ...).
    configure : callable, optional
        Called with the exchange after construction (e.g. to point its URLs elsewhere).
    read_retries : int, default 3
        Retries of a read after a network error or rate limit.
    backoff_base, backoff_cap : float
        Seconds; attempt ``n`` waits ``uniform(0, min(cap, base * 2**n))``, at least the
        server's ``Retry-After``, never more than ``backoff_cap``.
    sleep : callable, default time.sleep
    seed : int, optional
        Seed of the jitter.
    clock : callable, default time.monotonic
        Seconds; a rate limit whose ``Retry-After`` exceeds ``backoff_cap`` (an IP ban) is
        not retried, and every call until it has passed raises :class:`RateLimited` without
        reaching the exchange (a client that keeps calling is banned longer).
    """

    def __init__(self, exchange_id: str, *, keys: KeyRing | None = None, sandbox: bool = False,
                 config: dict[str, Any] | None = None,
                 configure: Callable[[Any], Any] | None = None, read_retries: int = 3,
                 backoff_base: float = 0.5, backoff_cap: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep, seed: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        import ccxt

        # every argument is checked before a ccxt object exists or a key is installed; the
        # messages of 'keys' and 'config' name types only (either may carry a credential)
        where = "CCXTSession"
        if not isinstance(exchange_id, str) or exchange_id not in ccxt.exchanges:
            hint = did_you_mean(exchange_id, ccxt.exchanges) if isinstance(exchange_id, str) else ""
            raise ConfigError(f"The 'exchange_id' parameter of {where} must be an exchange ccxt "
                              f"knows, such as 'binance' or 'kraken'. Got {exchange_id!r:.80}.{hint}")
        check_instance(keys, KeyRing, "keys", where, optional=True, show_value=False,
                       expected="a KeyRing (KeyRing.from_env(exchange_id))")
        check_instance(sandbox, bool, "sandbox", where)
        options = check_mapping(config, "config", where, kinds=object, show_value=False,
                                expected="a dict of ccxt options such as {'timeout': 10000}")
        for name, function in (("configure", configure), ("sleep", sleep), ("clock", clock)):
            if not (callable(function) or (name == "configure" and function is None)):
                raise ConfigError(f"The {name!r} parameter of {where} must be a callable"
                                  f"{' or None' if name == 'configure' else ''}. "
                                  f"Got {type(function).__name__}.")
        self.read_retries = check_integer(read_retries, "read_retries", where, low=0, high=100)
        self.backoff_base = check_real(backoff_base, "backoff_base", where, low=0)
        self.backoff_cap = check_real(backoff_cap, "backoff_cap", where, low=0)
        self._rng = random.Random(check_integer(seed, "seed", where, optional=True))
        self.exchange_id = exchange_id
        self.keys = keys
        self.sleep = sleep
        self.clock = clock
        self.quiet_until = -math.inf  # no call before (clock seconds): a long Retry-After
        self.slept: list[float] = []
        if keys is not None:
            protect_logging()  # ccxt's DEBUG log prints request headers, the API key among them
        options = {"enableRateLimit": True, "timeout": 10_000, **(options or {})}
        self.exchange = getattr(ccxt, exchange_id)(options)
        if sandbox:
            self.exchange.set_sandbox_mode(True)
        if configure is not None:
            configure(self.exchange)
        self._install_key()

    def _install_key(self) -> None:
        if self.keys is None:
            return
        key = self.keys.current
        self.exchange.apiKey = key.key.reveal()
        self.exchange.secret = key.secret.reveal()
        if key.password is not None:
            self.exchange.password = key.password.reveal()

    def rotate_key(self, reason: str) -> None:
        """Use the next key of the ring (no-op with fewer than two keys)."""
        if self.keys is not None and len(self.keys) > 1:
            self.keys.rotate(reason)
            self._install_key()

    def __repr__(self) -> str:
        return f"CCXTSession({self.exchange_id!r}, keys={self.keys!r})"

    # -- calls ------------------------------------------------------------------------------

    def _retry_after(self) -> float:
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        try:
            return float(headers.get("Retry-After") or 0.0)
        except (TypeError, ValueError):
            return 0.0

    def backoff(self, attempt: int) -> float:
        """Sleep before retry ``attempt`` (0-based); returns the seconds slept."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** attempt)
        delay = min(self.backoff_cap, max(self._retry_after(), self._rng.uniform(0, ceiling)))
        self.slept.append(delay)
        self.sleep(delay)
        return delay

    def call(self, what: str, function: Callable[..., T], *args: Any, write: bool = False,
             **kwargs: Any) -> T:
        """Run ``function(*args, **kwargs)`` (a method of :attr:`exchange`) under the rules.

        Raises
        ------
        UnknownOutcome
            A write timed out or lost its connection.
        RateLimited, BrokerUnavailable
            After the bounded retries (reads) or at once (writes).
        OrderRejected, InsufficientFunds, OrderNotFound
            The exchange's definite answers.
        """
        attempt = 0
        auth_failures = 0
        while True:
            wait = self.quiet_until - self.clock()
            if wait > 0:
                raise RateLimited(f"{self.exchange_id} {what}: not sent; the exchange asked "
                                  f"for no call for {wait:.0f} s more (until its Retry-After "
                                  "has passed)")
            try:
                return function(*args, **kwargs)
            except Exception as exc:
                kind = classify(exc)
                if kind is None:
                    raise
                message = SCRUBBER.scrub(f"{self.exchange_id} {what}: {type(exc).__name__}: {exc}")
                _log.debug("%s", message)
                if kind is RateLimited:
                    retry_after = self._retry_after()
                    if retry_after > self.backoff_cap:  # a ban: wait it out, call nothing
                        self.quiet_until = self.clock() + retry_after
                        raise RateLimited(f"{message} (Retry-After {retry_after:.0f} s: no "
                                          "call until it has passed)") from None
                    self.rotate_key("rate limited")
                    self.backoff(attempt)
                    if write or attempt >= self.read_retries:
                        raise RateLimited(message) from None
                elif kind is UnknownOutcome:
                    if write:
                        raise UnknownOutcome(message) from None
                    if attempt >= self.read_retries:
                        raise BrokerUnavailable(message) from None
                    self.backoff(attempt)
                elif kind is BrokerUnavailable and _is_auth(exc):
                    auth_failures += 1
                    if self.keys is None or self.keys.usable <= 1 or auth_failures > len(
                            self.keys):
                        raise BrokerUnavailable(message) from None
                    self.keys.retire("authentication failed")
                    self._install_key()
                else:
                    raise kind(message) from None
                attempt += 1


def _is_auth(exc: BaseException) -> bool:
    import ccxt

    return isinstance(exc, ccxt.AuthenticationError)
