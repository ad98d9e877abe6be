"""Timeframe strings ("5m", "1h", "4h", "1d") and their arithmetic.

All time arithmetic in core_engine is done on int64 nanoseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from core_engine.errors import ConfigError

__all__ = ["parse_timeframe", "timeframe_ns", "to_utc_timestamp", "format_timeframe"]

_UNIT_NS = {
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
    "d": 86_400 * 1_000_000_000,
    "w": 7 * 86_400 * 1_000_000_000,
}
_PATTERN = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)


def timeframe_ns(timeframe: str | pd.Timedelta, *, name: str = "timeframe") -> int:
    """Return the length of ``timeframe`` in nanoseconds.

    Parameters
    ----------
    timeframe : str or pandas.Timedelta
        A positive duration such as ``"5m"``, ``"1h"``, ``"4h"``, ``"1d"`` (CCXT spelling;
        ``"5min"`` is accepted too) or a ``Timedelta``.
    name : str
        The parameter name used in the error message.

    Raises
    ------
    ConfigError
        If the value is not a positive duration.

    Examples
    --------
    >>> timeframe_ns("5m")
    300000000000
    """
    if isinstance(timeframe, pd.Timedelta):
        value = int(timeframe.value)
    elif isinstance(timeframe, str):
        match = _PATTERN.match(timeframe)
        if match is None:
            raise ConfigError(
                f"The '{name}' parameter must be a positive duration such as '5m', '1h' or "
                f"'4h'. Got {timeframe!r}."
            )
        count, unit = int(match.group(1)), match.group(2).lower()
        unit = "m" if unit == "min" else unit
        value = count * _UNIT_NS[unit]
    else:
        raise ConfigError(
            f"The '{name}' parameter must be a duration string such as '4h'. "
            f"Got {type(timeframe).__name__} {timeframe!r}."
        )
    if value <= 0:
        raise ConfigError(
            f"The '{name}' parameter must be a positive duration such as '4h'. Got {timeframe!r}."
        )
    return value


def parse_timeframe(timeframe: str | pd.Timedelta, *, name: str = "timeframe") -> pd.Timedelta:
    """Return ``timeframe`` as a ``pandas.Timedelta`` (see :func:`timeframe_ns`)."""
    return pd.Timedelta(timeframe_ns(timeframe, name=name), unit="ns")


def format_timeframe(ns: int) -> str:
    """Return the shortest CCXT-style spelling of a duration in nanoseconds.

    Examples
    --------
    >>> format_timeframe(4 * 3_600 * 10**9)
    '4h'
    """
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_NS[unit]
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


def to_utc_timestamp(value, *, name: str = "time") -> pd.Timestamp:
    """Convert ``value`` (str, datetime, Timestamp, epoch ms int) to a UTC ``Timestamp``.

    Naive values are read as UTC, because exchanges and this library speak UTC only.

    Raises
    ------
    ConfigError
        If the value cannot be read as a time.
    """
    try:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            ts = pd.Timestamp(int(value), unit="ms")
        else:
            ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"The '{name}' parameter must be a time such as '2021-03-01' or "
            f"'2021-03-01 10:00'. Got {value!r}."
        ) from exc
    if ts is pd.NaT:
        raise ConfigError(f"The '{name}' parameter must be a time. Got {value!r}.")
    if ts.tzinfo is None:
        return ts.tz_localize("UTC")
    return ts.tz_convert("UTC")
