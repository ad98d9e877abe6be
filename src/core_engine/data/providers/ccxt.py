"""Candles from any exchange CCXT speaks (Binance, Kraken, Bybit, OKX, …).

``ccxt`` is an optional dependency (``pip install 'core-engine[exchanges]'``); it is imported
only when a :class:`CCXTProvider` is created.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine._scrub import SCRUBBER, protect_logging
from core_engine._validate import check_mapping
from core_engine.data.providers._retry import CallSpacer, RetryPolicy, call_with_retry
from core_engine.data.providers.base import (
    Provider,
    candles_from_rows,
    did_you_mean,
    is_integer,
    is_number,
    resolve_range,
)
from core_engine.errors import ConfigError, DataValidationError

__all__ = ["CCXTProvider"]

_NS_PER_MS = 1_000_000


def import_ccxt():
    """Import ccxt or raise a :class:`ConfigError` that says how to install it."""
    try:
        import ccxt
    except ImportError as exc:
        raise ConfigError(
            "CCXTProvider needs the 'ccxt' package, which is not installed. Install it with "
            "pip install 'core-engine[exchanges]' (or pip install ccxt)."
        ) from exc
    return ccxt


#: ccxt's option and attribute names that carry a credential
CREDENTIAL_FIELDS = ("apiKey", "secret", "password", "uid", "login", "privateKey", "token",
                     "twofa")


def _protect_credentials(exchange: Any, given: tuple, config: Mapping[str, Any] | None) -> None:
    """Register every credential handed to ccxt (arguments, ``config``, the exchange object's
    own fields) with the log scrubber, and install it: ccxt's debug log prints request
    headers, and a market-data provider's keys must not show in logs any more than a
    broker's (:mod:`core_engine.live.keys` does the same for key rings)."""
    values = [v for v in given if isinstance(v, str)]
    values += [v for k, v in (config or {}).items() if k in CREDENTIAL_FIELDS and isinstance(v, str)]
    values += [v for k in CREDENTIAL_FIELDS if isinstance(v := getattr(exchange, k, None), str)]
    values = [v for v in values if v]
    for value in values:
        SCRUBBER.register(value)
    if values:
        protect_logging()


@keyword_checked
class CCXTProvider(Provider):
    """Closed OHLCV candles from a CCXT exchange, paginated, rate-limited and retried.

    Parameters
    ----------
    exchange_id : str
        A CCXT exchange id such as ``"binance"``, ``"kraken"``, ``"bybit"``.
    exchange : object, optional
        A ready exchange object (a ``ccxt.Exchange`` or anything with ``fetch_ohlcv``,
        ``rateLimit`` and ``id``). When given, ``exchange_id`` and the credentials are not
        used to build one; tests pass a fake exchange here to run offline.
    api_key, secret, password : str, optional
        Credentials, only needed for exchanges that require them for candles. They are handed
        to CCXT and not kept on the provider (so they never show in reprs or logs).
    config : mapping, optional
        Extra CCXT constructor options (``{"options": {"defaultType": "future"}}``).
    limit : int
        Candles asked for per request (Binance serves up to 1,000).
    max_retries : int
        Retries of a transient failure before giving up with :class:`ExchangeError`.
    backoff : float
        Seconds before the first retry; doubled for each further retry, capped at
        ``max_backoff``.
    max_backoff : float
        Longest wait between retries, in seconds.
    sleep : callable
        ``time.sleep`` or a test double; used for backoff and rate-limit spacing.
    clock : callable
        Seconds since the epoch (``time.time``); decides which candle is still open and spaces
        calls.

    Notes
    -----
    Pagination asks for ``since=start`` and moves ``since`` to the last returned open time
    plus one timeframe, until ``end``, an empty page, or a page with no newer candle. Calls
    are spaced by the exchange's ``rateLimit`` (milliseconds) unless the exchange object
    throttles itself (``enableRateLimit=True``); an exchange built here has CCXT's own
    throttle switched off so the spacing is done, and testable, in one place.
    Transient CCXT errors (``NetworkError`` and its subclasses ``RequestTimeout``,
    ``DDoSProtection``, ``RateLimitExceeded``, ``ExchangeNotAvailable``) are retried; every
    other CCXT error (``BadSymbol``, ``AuthenticationError``, ``ExchangeError``, …) raises
    :class:`~core_engine.errors.ExchangeError` at once. The still-open last candle (open time
    + timeframe > now) is dropped, so partial candles never reach a store.

    Examples
    --------
    >>> provider = CCXTProvider("binance")  # doctest: +SKIP
    >>> provider.fetch_ohlcv("BTC/USDT", "5m", "2021-01-01", "2021-01-02")  # doctest: +SKIP
    """

    def __init__(
        self,
        exchange_id: str = "binance",
        *,
        exchange: Any = None,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        config: Mapping[str, Any] | None = None,
        limit: int = 1000,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ccxt = import_ccxt()
        # named by type only: a config dict may carry credentials ({"apiKey": ...})
        config = check_mapping(config, "config", "CCXTProvider", kinds=object, show_value=False,
                               expected="a dict of CCXT options such as {'timeout': 10000}")
        if not is_integer(limit) or limit < 1:
            raise ConfigError(f"The 'limit' parameter of CCXTProvider must be a positive integer. Got {limit!r}.")
        if exchange is None:
            exchange = self._build_exchange(exchange_id, api_key, secret, password, config)
        elif not callable(getattr(exchange, "fetch_ohlcv", None)):
            raise ConfigError(
                "The 'exchange' parameter of CCXTProvider must be a CCXT exchange object with a "
                f"fetch_ohlcv method. Got {type(exchange).__name__}."
            )
        _protect_credentials(exchange, (api_key, secret, password), config)
        self._exchange = exchange
        self.exchange_id = str(getattr(exchange, "id", None) or exchange_id)
        self.name = f"ccxt:{self.exchange_id}"
        self.limit = int(limit)
        self.retry = RetryPolicy(max_retries=max_retries, backoff=backoff, max_backoff=max_backoff)
        self._sleep = sleep
        self._clock = clock
        throttled_by_exchange = bool(getattr(exchange, "enableRateLimit", False))
        interval = 0.0 if throttled_by_exchange else float(getattr(exchange, "rateLimit", 0) or 0) / 1000
        self._spacer = CallSpacer(interval, clock=clock, sleep=sleep)
        ccxt = self._ccxt
        self._transient = (
            ccxt.NetworkError,
            ccxt.RequestTimeout,
            ccxt.DDoSProtection,
            ccxt.RateLimitExceeded,
            ccxt.ExchangeNotAvailable,
        )

    def _build_exchange(self, exchange_id: str, api_key: str | None, secret: str | None,
                        password: str | None, config: Mapping[str, Any] | None) -> Any:
        ccxt = self._ccxt
        known = list(getattr(ccxt, "exchanges", []))
        if not isinstance(exchange_id, str) or exchange_id not in known:
            raise ConfigError(
                f"The 'exchange_id' parameter of CCXTProvider must be an exchange CCXT knows, "
                f"such as 'binance' or 'kraken'. Got {exchange_id!r}.{did_you_mean(exchange_id, known)}"
            )
        options: dict[str, Any] = {"enableRateLimit": False}
        options.update(dict(config or {}))
        for key, value in (("apiKey", api_key), ("secret", secret), ("password", password)):
            if value is not None:
                options[key] = value
        return getattr(ccxt, exchange_id)(options)

    @property
    def exchange(self) -> Any:
        """The CCXT exchange object used for requests."""
        return self._exchange

    def __repr__(self) -> str:
        return f"CCXTProvider({self.exchange_id!r}, limit={self.limit})"

    def _classify(self, exc: BaseException) -> tuple[bool, float | None]:
        if isinstance(exc, self._transient):
            return True, None
        if isinstance(exc, self._ccxt.BaseError):
            return False, None
        raise exc

    def _check_timeframe(self, timeframe: str) -> None:
        supported = getattr(self._exchange, "timeframes", None)
        if isinstance(supported, Mapping) and supported and timeframe not in supported:
            raise ConfigError(
                f"The 'timeframe' parameter: {self.exchange_id} does not serve {timeframe!r} "
                f"candles; it serves {sorted(supported)}.{did_you_mean(timeframe, supported)}"
            )

    def _request(self, symbol: str, timeframe: str, since: int) -> list:
        when = pd.Timestamp(since * _NS_PER_MS, tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
        describe = (
            f"Fetching {timeframe} candles of {symbol} from exchange '{self.exchange_id}' "
            f"(since {when})"
        )

        def call() -> list:
            self._spacer.wait()
            return self._exchange.fetch_ohlcv(symbol, timeframe, since=since, limit=self.limit)

        page = call_with_retry(
            call, policy=self.retry, classify=self._classify, sleep=self._sleep, describe=describe
        )
        return list(page or [])

    def fetch_ohlcv(self, symbol: str, timeframe: str, start=None, end=None) -> pd.DataFrame:
        """Return the closed candles of ``symbol`` with open time in ``[start, end)``.

        ``start`` is required; ``end`` defaults to now. See the class notes for pagination,
        rate limits and retries.

        Raises
        ------
        ConfigError
            Bad timeframe or range.
        ExchangeError
            A permanent exchange error, or a transient one still failing after the retries;
            the message names the exchange, symbol and timeframe.
        DataValidationError
            The exchange returned a candle that breaks the candle contract.
        """
        now = self._clock()
        rng = resolve_range(
            timeframe, start, end, default_end=pd.Timestamp(now, unit="s", tz="UTC"),
            who=f"{type(self).__name__}.fetch_ohlcv",
        )
        timeframe = rng.timeframe
        self._check_timeframe(timeframe)
        step_ms = rng.step // _NS_PER_MS
        # A candle is closed when open + step <= now; stop_ms is exclusive.
        stop_ms = min(rng.end_ms, int(now * 1000) - step_ms + 1)
        rows: list = []
        cursor = rng.start_ms
        while cursor < stop_ms:
            page = self._request(symbol, timeframe, cursor)
            self._check_times(page, symbol, timeframe, cursor)
            fresh = [row for row in page if row[0] >= cursor]
            if not fresh:
                break
            rows.extend(row for row in fresh if row[0] < stop_ms)
            cursor = int(max(row[0] for row in fresh)) + step_ms
        return candles_from_rows(
            rows, timeframe, symbol=symbol, source=f"exchange '{self.exchange_id}'"
        )

    def _check_times(self, page: list, symbol: str, timeframe: str, since: int) -> None:
        """Refuse a page with a row whose open time is missing or not a number.

        Such a row cannot be placed in time; dropping it would hide a hole the exchange did
        not report, so nothing of the request is kept.
        """
        for position, row in enumerate(page):
            stamp = row[0] if isinstance(row, (list, tuple)) and len(row) else None
            if not is_number(stamp) or not np.isfinite(float(stamp)):
                when = pd.Timestamp(since * _NS_PER_MS, tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
                raise DataValidationError(
                    f"Row {position:,} of the {timeframe} candles of {symbol} that exchange "
                    f"'{self.exchange_id}' returned for since={since} ({when}) has no usable open "
                    f"time: {row!r}. Expected [timestamp_ms, open, high, low, close, volume]; "
                    "nothing of this request was stored."
                )

    def symbols(self) -> list[str]:
        """The exchange's market symbols (loads markets: one network request)."""
        markets = call_with_retry(
            self._exchange.load_markets, policy=self.retry, classify=self._classify,
            sleep=self._sleep, describe=f"Loading the markets of exchange '{self.exchange_id}'",
        )
        return sorted(markets)
