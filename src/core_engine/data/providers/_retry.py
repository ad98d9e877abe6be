"""Retry with exponential backoff, and spacing of calls, shared by the network providers.

Sleeping and reading the clock go through injected callables so that tests run instantly
and can assert on every sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from core_engine.errors import ConfigError, ExchangeError

__all__ = ["CallSpacer", "RetryPolicy", "call_with_retry"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how long to wait before retrying a transient failure.

    The wait before retry ``k`` (``k = 0, 1, …``) is ``min(backoff * factor**k, max_backoff)``
    seconds; no jitter, so runs are reproducible. A server's own "retry after" hint wins when
    it is longer (capped at ``max_backoff``).
    """

    max_retries: int = 5
    backoff: float = 1.0
    factor: float = 2.0
    max_backoff: float = 60.0

    def __post_init__(self) -> None:
        if (isinstance(self.max_retries, (bool, np.bool_))
                or not isinstance(self.max_retries, (int, np.integer)) or self.max_retries < 0):
            raise ConfigError(
                f"The 'max_retries' parameter must be a non-negative integer. Got {self.max_retries!r}."
            )
        for label, value, low in (("backoff", self.backoff, 0.0), ("factor", self.factor, 1.0),
                                  ("max_backoff", self.max_backoff, 0.0)):
            if (isinstance(value, (bool, np.bool_))
                    or not isinstance(value, (int, float, np.integer, np.floating))
                    or not np.isfinite(value) or value < low):
                raise ConfigError(
                    f"The '{label}' parameter must be a number >= {low:g}. Got {value!r}."
                )

    def delay(self, attempt: int, hint: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        wait = min(self.backoff * self.factor**attempt, self.max_backoff)
        if hint is not None and hint > wait:
            wait = min(hint, self.max_backoff)
        return float(wait)


class CallSpacer:
    """Keep at least ``interval`` seconds between the starts of consecutive calls."""

    def __init__(self, interval: float, *, clock: Callable[[], float],
                 sleep: Callable[[float], None]) -> None:
        self.interval = float(interval)
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None

    def wait(self) -> None:
        """Sleep until ``interval`` has passed since the previous call, then mark this one."""
        if self._last is not None and self.interval > 0:
            remaining = self.interval - (self._clock() - self._last)
            if remaining > 0:
                self._sleep(remaining)
        self._last = self._clock()


def call_with_retry(
    call: Callable[[], T],
    *,
    policy: RetryPolicy,
    classify: Callable[[BaseException], tuple[bool, float | None]],
    sleep: Callable[[float], None],
    describe: str,
) -> T:
    """Run ``call``; retry transient failures with backoff, fail fast on permanent ones.

    Parameters
    ----------
    call : callable
        The request; raises on failure.
    policy : RetryPolicy
        Retry count and backoff.
    classify : callable
        Returns ``(transient, retry_after_seconds)`` for an exception, or raises
        :class:`ExchangeError` itself for a permanent failure. Exceptions it does not know
        must be re-raised by it (a programming error is not retried).
    sleep : callable
        ``time.sleep`` or a test double.
    describe : str
        What was requested ("binance BTC/USDT 5m since 2021-01-01 00:00 UTC"), for messages.

    Raises
    ------
    ExchangeError
        After the last retry of a transient failure, or at once for a permanent one.
    """
    attempt = 0
    while True:
        try:
            return call()
        except ExchangeError:
            raise
        except Exception as exc:  # noqa: BLE001 - classify decides and re-raises what it does not know
            transient, hint = classify(exc)
            if not transient:
                raise ExchangeError(f"{describe} failed permanently: {_exc_text(exc)}") from exc
            if attempt >= policy.max_retries:
                raise ExchangeError(
                    f"{describe} still failed after {policy.max_retries} retries: {_exc_text(exc)}"
                ) from exc
            sleep(policy.delay(attempt, hint))
            attempt += 1


def _exc_text(exc: BaseException) -> str:
    text = str(exc).strip()
    if len(text) > 300:
        text = text[:300] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
