"""Timeframe strings ("5m", "1h", "4h", "1d") and their arithmetic.

All time arithmetic in core_engine is done on int64 nanoseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import datetime as _dt
import re

import numpy as np
import pandas as pd

from core_engine._validate import MAX_DURATION_YEARS
from core_engine._validate import YEAR_NS as _YEAR_NS
from core_engine.errors import ConfigError

__all__ = ["format_timeframe", "is_utc", "parse_timeframe", "timeframe_ns", "to_utc_timestamp"]

_UNIT_NS = {
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
    "d": 86_400 * 1_000_000_000,
    "w": 7 * 86_400 * 1_000_000_000,
}
# Units are case-insensitive except "M": in CCXT's spelling "1M" is one month, "1m" one minute.
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdwSHDW]|min|MIN|Min)\s*$")
_MONTH = re.compile(r"^\s*(\d+)\s*(M|mo|mon|month|months)\s*$")


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
        if match is None and _MONTH.match(timeframe):
            raise ConfigError(
                f"The '{name}' parameter {timeframe!r} is a number of months (CCXT spells one "
                "month '1M' and one minute '1m'). Months have no fixed length, so core_engine "
                "does not use them as a candle grid; use minutes ('1m'), hours, days or weeks "
                "('1w'), or '30d'."
            )
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
    if value > MAX_DURATION_YEARS * _YEAR_NS:  # a unit mistake; it would overflow timestamps
        raise ConfigError(
            f"The '{name}' parameter must be a duration of at most {MAX_DURATION_YEARS} years "
            f"such as '4h' or '30d'. Got {timeframe!r}."
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


# Integers are epoch milliseconds; this is the span of plausible ones (1973-03-03 .. 2262-04-11).
_MS_LOW, _MS_HIGH = 10**11, pd.Timestamp.max.value // 1_000_000
_UTC_NAMES = frozenset({
    "UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu",
    "GMT", "Etc/GMT", "GMT0", "Etc/GMT0", "GMT+0", "Etc/GMT+0", "GMT-0", "Etc/GMT-0",
    "Greenwich", "Etc/Greenwich",
})


def is_utc(tz) -> bool:
    """Whether ``tz`` is UTC under any of its names.

    Accepted: ``datetime.timezone.utc`` (and any zero-offset ``datetime.timezone``), the IANA
    aliases (``"UTC"``, ``"Etc/UTC"``, ``"Zulu"``, ``"GMT"``, …) as strings, ``zoneinfo`` or
    pytz zones, and dateutil's ``tzutc()`` and ``gettz("UTC")``.

    Examples
    --------
    >>> import datetime, zoneinfo
    >>> is_utc(datetime.timezone.utc), is_utc(zoneinfo.ZoneInfo("Etc/UTC")), is_utc("Europe/Paris")
    (True, True, False)
    """
    if tz is None:
        return False
    if isinstance(tz, str):
        return tz in _UTC_NAMES
    if isinstance(tz, _dt.timezone):
        return tz.utcoffset(None) == _dt.timedelta(0)
    if type(tz).__name__ == "tzutc":  # dateutil.tz.tzutc, without importing dateutil
        return True
    for attribute in ("key", "zone"):  # zoneinfo.ZoneInfo.key, pytz's .zone
        name = getattr(tz, attribute, None)
        if isinstance(name, str):
            return name in _UTC_NAMES
    filename = getattr(tz, "_filename", None)  # dateutil.tz.tzfile
    if isinstance(filename, str):
        return filename.replace("\\", "/").split("/zoneinfo/")[-1] in _UTC_NAMES
    return str(tz) in _UTC_NAMES


def _from_integer(value: int, name: str) -> pd.Timestamp:
    if _MS_LOW <= value <= _MS_HIGH:
        return pd.Timestamp(value, unit="ms")
    if 0 < value < _MS_LOW:
        meant = f"epoch seconds ({pd.Timestamp(value, unit='s'):%Y-%m-%d %H:%M} UTC)" if (
            value >= 10**8) else "a small number, not a time"
        hint = f"; pass {value * 1000} (milliseconds) or a string such as '2021-01-01'" if (
            value >= 10**8) else "; pass a string such as '2021-01-01'"
    elif value > _MS_HIGH:
        unit = "microseconds" if value < 10**17 else "nanoseconds"
        divisor = 1_000 if value < 10**17 else 1_000_000
        meant = f"epoch {unit}"
        hint = f"; pass {value // divisor} (milliseconds) or a string such as '2021-01-01'"
    else:
        meant = "a time at or before 1970"
        hint = "; pass a string such as '2021-01-01'"
    raise ConfigError(
        f"The '{name}' parameter is an integer, read as epoch milliseconds, but {value} looks "
        f"like {meant}{hint}."
    )


def to_utc_timestamp(value, *, name: str = "time") -> pd.Timestamp:
    """Convert ``value`` to a UTC ``Timestamp``.

    Accepted: a string (``"2021-03-01"``, ``"2021-03-01 10:00"``, ISO 8601 with an offset),
    ``datetime``/``date``, ``pandas.Timestamp``, ``numpy.datetime64``, or an integer
    (Python or NumPy) of epoch **milliseconds** between 1973 and 2262. Naive values are
    read as UTC, because exchanges and this library speak UTC only; aware values in any zone
    are converted to UTC.

    Raises
    ------
    ConfigError
        If the value cannot be read as a time, or is ambiguous: an integer that looks like
        epoch seconds (``1609459200``), micro- or nanoseconds, and any float (seconds or
        milliseconds? a float says neither) are refused with the value to pass instead.

    Examples
    --------
    >>> to_utc_timestamp(1609459200000)
    Timestamp('2021-01-01 00:00:00+0000', tz='UTC')
    >>> to_utc_timestamp("2021-01-01 01:00+01:00")
    Timestamp('2021-01-01 00:00:00+0000', tz='UTC')
    """
    if isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"The '{name}' parameter must be a time such as '2021-03-01'. Got {value!r}.")
    if isinstance(value, (float, np.floating)):
        raise ConfigError(
            f"The '{name}' parameter is a float ({value!r}), which is ambiguous (seconds? "
            "milliseconds?); pass an integer of epoch milliseconds or a string such as "
            "'2021-03-01 10:00'."
        )
    if isinstance(value, (int, np.integer)):
        return _from_integer(int(value), name).tz_localize("UTC")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(
            f"The '{name}' parameter must be a time such as '2021-03-01' or "
            f"'2021-03-01 10:00'. Got {value!r}."
        ) from exc
    if ts is pd.NaT:
        raise ConfigError(f"The '{name}' parameter must be a time. Got {value!r}.")
    try:  # nanoseconds, like every time in the library: years 1677..2262 only
        ts = ts.as_unit("ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime) as exc:
        raise ConfigError(
            f"The '{name}' parameter must be a time between {pd.Timestamp.min:%Y} and "
            f"{pd.Timestamp.max:%Y}. Got {value!r}.") from exc
    if ts.tzinfo is None:
        return ts.tz_localize("UTC")
    return ts.tz_convert("UTC")
