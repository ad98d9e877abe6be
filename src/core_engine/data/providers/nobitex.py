"""Candles from Nobitex's public UDF history endpoint (``/market/udf/history``).

Only the standard library is used (``urllib``), so this provider needs no extra package.
The endpoint answers ``{"s": "ok", "t": [...], "o": [...], "h": [...], "l": [...],
"c": [...], "v": [...]}`` with ``t`` the candle open time in epoch seconds, ``{"s": "no_data"}``
when the range holds no candle, or ``{"s": "error", "errmsg": "..."}``.
"""

from __future__ import annotations

import email.utils
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import check_real
from core_engine.data.providers._retry import CallSpacer, RetryPolicy, call_with_retry
from core_engine.data.providers.base import (
    Provider,
    candles_from_rows,
    did_you_mean,
    is_integer,
    is_number,
    resolve_range,
)
from core_engine.errors import ConfigError, DataValidationError, ExchangeError

__all__ = ["NOBITEX_RESOLUTIONS", "NobitexProvider", "nobitex_symbol"]

#: Timeframe (canonical spelling) -> Nobitex resolution.
NOBITEX_RESOLUTIONS = {
    "1m": "1", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "3h": "180",
    "4h": "240", "6h": "360", "12h": "720", "1d": "D",
}
_NS_PER_S = 1_000_000_000

#: A transport takes (url, timeout seconds) and returns (HTTP status, headers, body bytes).
Transport = Callable[[str, float], tuple[int, dict, bytes]]


def nobitex_symbol(symbol: str) -> str:
    """Return Nobitex's spelling of a symbol: ``"BTC/IRT" -> "BTCIRT"``.

    Examples
    --------
    >>> nobitex_symbol("btc/usdt")
    'BTCUSDT'
    """
    if not isinstance(symbol, str) or not symbol.replace("/", "").replace("-", "").isalnum():
        raise ConfigError(
            f"The 'symbol' parameter must look like 'BTC/IRT' or 'BTCIRT'. Got {symbol!r}."
        )
    return symbol.replace("/", "").replace("-", "").upper()


def urllib_transport(url: str, timeout: float) -> tuple[int, dict, bytes]:
    """GET ``url`` with urllib; HTTP errors are returned as a status, not raised."""
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "core-engine"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - https URL from config
            return int(response.status), dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers.items()) if exc.headers else {}, exc.read() or b""


class _TransientHTTP(Exception):
    def __init__(self, status: int, retry_after: float | None, body: bytes) -> None:
        super().__init__(f"HTTP {status} {body[:200]!r}")
        self.retry_after = retry_after


def _retry_after(headers: dict) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(parsed.timestamp() - time.time(), 0.0) if parsed else None


@keyword_checked
class NobitexProvider(Provider):
    """Closed candles from Nobitex (Iranian exchange), public data, no key needed.

    Parameters
    ----------
    base_url : str
        API root, ``"https://api.nobitex.ir"``.
    transport : callable, optional
        ``transport(url, timeout) -> (status, headers, body)``; defaults to urllib. Inject one
        to add a proxy or to test.
    timeout : float
        Seconds before a request times out (a timeout is retried).
    max_candles_per_request : int
        Candles asked for per request; the range is walked in chunks of this many candles,
        each chunk starting right after the last candle received (so a server that answers
        with fewer candles than asked loses nothing).
    min_interval : float
        Seconds kept between the starts of two requests (rate limit).
    max_retries, backoff, max_backoff : int, float, float
        Transient failures (connection errors, timeouts, HTTP 429 and 5xx) are retried
        ``max_retries`` times, waiting ``backoff * 2**k`` seconds (capped at ``max_backoff``,
        longer if the server sends ``Retry-After``).
    sleep, clock : callable
        ``time.sleep`` and ``time.time``, or test doubles.

    Notes
    -----
    Timeframes map to resolutions ``1m→1, 5m→5, 15m→15, 30m→30, 1h→60, 3h→180, 4h→240,
    6h→360, 12h→720, 1d→D``. Symbols ``"BTC/IRT"`` are sent as ``"BTCIRT"``. ``{"s":
    "no_data"}`` is an empty chunk (the range is still walked to its end). The still-open
    candle is dropped.
    """

    name = "nobitex"

    def __init__(
        self,
        base_url: str = "https://api.nobitex.ir",
        *,
        transport: Transport | None = None,
        timeout: float = 30.0,
        max_candles_per_request: int = 500,
        min_interval: float = 0.5,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parsed = urllib.parse.urlparse(base_url if isinstance(base_url, str) else "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(
                f"The 'base_url' parameter of NobitexProvider must be an http(s) URL such as "
                f"'https://api.nobitex.ir'. Got {base_url!r}."
            )
        if not is_integer(max_candles_per_request) or max_candles_per_request < 1:
            raise ConfigError(
                "The 'max_candles_per_request' parameter of NobitexProvider must be a positive "
                f"integer. Got {max_candles_per_request!r}."
            )
        if not is_number(timeout) or not timeout > 0:
            raise ConfigError(f"The 'timeout' parameter must be a positive number of seconds. Got {timeout!r}.")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.max_candles_per_request = int(max_candles_per_request)
        self.retry = RetryPolicy(max_retries=max_retries, backoff=backoff, max_backoff=max_backoff)
        self._transport = transport or urllib_transport
        self._sleep = sleep
        self._clock = clock
        self._spacer = CallSpacer(check_real(min_interval, "min_interval", "NobitexProvider",
                                             low=0), clock=clock, sleep=sleep)

    def __repr__(self) -> str:
        return f"NobitexProvider({self.base_url!r})"

    @staticmethod
    def resolution(timeframe: str) -> str:
        """Return the Nobitex resolution of a timeframe (``"1h" -> "60"``)."""
        if timeframe not in NOBITEX_RESOLUTIONS:
            raise ConfigError(
                f"The 'timeframe' parameter: Nobitex serves {list(NOBITEX_RESOLUTIONS)}. "
                f"Got {timeframe!r}.{did_you_mean(timeframe, NOBITEX_RESOLUTIONS)}"
            )
        return NOBITEX_RESOLUTIONS[timeframe]

    def _classify(self, exc: BaseException) -> tuple[bool, float | None]:
        if isinstance(exc, _TransientHTTP):
            return True, exc.retry_after
        if isinstance(exc, (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError)):
            return True, None
        raise exc

    def _get(self, url: str, describe: str) -> dict:
        def call() -> dict:
            self._spacer.wait()
            status, headers, body = self._transport(url, self.timeout)
            if status == 429 or status >= 500:
                raise _TransientHTTP(status, _retry_after(headers), body)
            if status != 200:
                raise ExchangeError(f"{describe} failed with HTTP {status}: {body[:300]!r}")
            try:
                return json.loads(body)
            except ValueError as exc:
                raise ExchangeError(f"{describe} returned a body that is not JSON: {body[:300]!r}") from exc

        return call_with_retry(
            call, policy=self.retry, classify=self._classify, sleep=self._sleep, describe=describe
        )

    def _chunk_rows(self, payload: dict, describe: str) -> tuple[np.ndarray, int | None]:
        """Rows of one answer and, for ``no_data``, the ``nextTime`` hint (seconds) if any."""
        status = payload.get("s") if isinstance(payload, dict) else None
        if status == "no_data":
            hint = payload.get("nextTime")
            return np.empty((0, 6)), int(hint) if is_number(hint) and np.isfinite(hint) else None
        if status == "error":
            raise ExchangeError(f"{describe} failed: Nobitex answered error {payload.get('errmsg')!r}.")
        if status != "ok":
            raise ExchangeError(f"{describe} returned an unexpected answer {str(payload)[:300]}.")
        keys = ("t", "o", "h", "l", "c", "v")
        missing = [k for k in keys if not isinstance(payload.get(k), list)]
        lengths = {len(payload[k]) for k in keys if k not in missing}
        if missing or len(lengths) != 1:
            raise ExchangeError(
                f"{describe} returned arrays t/o/h/l/c/v that are missing {missing} or of unequal "
                f"lengths {sorted(lengths)}."
            )
        try:
            columns = [np.asarray(payload[k], dtype=np.float64) for k in keys]
        except (TypeError, ValueError) as exc:
            raise ExchangeError(f"{describe} returned a value that is not a number ({exc}).") from exc
        times = columns[0]
        if not np.isfinite(times).all():
            row = int(np.flatnonzero(~np.isfinite(times))[0])
            raise DataValidationError(
                f"{describe}: row {row:,} has no usable open time (t = {payload['t'][row]!r}); "
                "candles without one cannot be placed, so nothing of this request was stored."
            )
        return np.column_stack(columns), None

    def fetch_ohlcv(self, symbol: str, timeframe: str, start=None, end=None) -> pd.DataFrame:
        """Return the closed candles of ``symbol`` with open time in ``[start, end)``.

        ``start`` is required; ``end`` defaults to now.

        Raises
        ------
        ConfigError
            Unsupported timeframe, bad symbol or range.
        ExchangeError
            Nobitex answered ``"error"``, a non-retryable HTTP status, or a transient failure
            persisted after the retries; the message names the symbol and timeframe.
        """
        now = self._clock()
        rng = resolve_range(
            timeframe, start, end, default_end=pd.Timestamp(now, unit="s", tz="UTC"),
            who="NobitexProvider.fetch_ohlcv",
        )
        resolution = self.resolution(rng.timeframe)
        market = nobitex_symbol(symbol)
        step_s = rng.step // _NS_PER_S
        first = -(-rng.start_ns // _NS_PER_S)
        stop = min(-(-rng.end_ns // _NS_PER_S), int(now) - step_s + 1)  # exclusive; closed only
        chunk = step_s * self.max_candles_per_request
        parts = []
        cursor = first
        while cursor < stop:
            upper = min(cursor + chunk, stop)
            query = urllib.parse.urlencode(
                {"symbol": market, "resolution": resolution, "from": cursor, "to": upper - 1}
            )
            describe = (
                f"Fetching {rng.timeframe} candles of {symbol} ({market}) from Nobitex "
                f"[{cursor}, {upper})"
            )
            rows, next_time = self._chunk_rows(
                self._get(f"{self.base_url}/market/udf/history?{query}", describe), describe
            )
            rows = rows[(rows[:, 0] >= cursor) & (rows[:, 0] < upper)]
            if rows.size:
                parts.append(rows)
                # Continue right after the last candle served: if the server capped the answer
                # below the chunk, the rest of the chunk is asked for next, never skipped.
                cursor = int(rows[:, 0].max()) + step_s
            else:
                cursor = max(upper, next_time) if next_time and next_time > cursor else upper
        rows = np.concatenate(parts) if parts else np.empty((0, 6))
        return candles_from_rows(rows, rng.timeframe, symbol=symbol, source="Nobitex", time_unit="s")
