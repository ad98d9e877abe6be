"""The provider interface and the normalisation every provider shares.

A provider turns ``(symbol, timeframe, start, end)`` into a candle frame (see
:mod:`core_engine.data.candles`): columns ``timestamp`` (``datetime64[ns, UTC]``, candle open
time) and ``open, high, low, close, volume`` (float64), holding exactly the candles whose
open time lies in ``[start, end)``. Providers never fill gaps; a missing candle stays missing.
"""

from __future__ import annotations

import abc
import difflib
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeGuard

import numpy as np
import pandas as pd

from core_engine._validate import check_items
from core_engine.data.candles import (
    CANDLE_COLUMNS,
    RepairReport,
    drop_duplicate_timestamps,
    empty_candles,
    sort_candles,
    validate_candles,
)
from core_engine.data.timeframes import format_timeframe, timeframe_ns, to_utc_timestamp
from core_engine.errors import ConfigError, DataValidationError

__all__ = [
    "Provider",
    "ProviderRepairWarning",
    "TimeRange",
    "candles_from_rows",
    "did_you_mean",
    "is_integer",
    "is_number",
    "resolve_range",
    "slice_range",
]

_NS_PER_MS = 1_000_000
_TS_DTYPE = pd.DatetimeTZDtype("ns", "UTC")


class ProviderRepairWarning(UserWarning):
    """A provider sorted or de-duplicated the rows it received; the message says what changed."""


@dataclass(frozen=True)
class TimeRange:
    """A checked half-open UTC range ``[start, end)`` and its timeframe."""

    start: pd.Timestamp
    end: pd.Timestamp
    timeframe: str

    @property
    def step(self) -> int:
        """The timeframe in nanoseconds."""
        return timeframe_ns(self.timeframe)

    @property
    def start_ns(self) -> int:
        return int(self.start.value)

    @property
    def end_ns(self) -> int:
        return int(self.end.value)

    @property
    def start_ms(self) -> int:
        return -(-self.start_ns // _NS_PER_MS)

    @property
    def end_ms(self) -> int:
        return -(-self.end_ns // _NS_PER_MS)


def resolve_range(
    timeframe: str,
    start,
    end,
    *,
    default_start=None,
    default_end=None,
    who: str = "fetch_ohlcv",
) -> TimeRange:
    """Check ``timeframe`` and turn ``start``/``end`` into a :class:`TimeRange`.

    ``None`` takes the default; a ``None`` default means the bound is required.

    Raises
    ------
    ConfigError
        If the timeframe is not a duration, a bound is missing or unreadable, or
        ``start >= end``.
    """
    timeframe_ns(timeframe, name="timeframe")
    bounds = []
    for label, value, default in (("start", start, default_start), ("end", end, default_end)):
        if value is None:
            value = default
        if value is None:
            raise ConfigError(
                f"The '{label}' parameter of {who} is required: give a time such as "
                f"'2021-03-01'. Got None."
            )
        bounds.append(to_utc_timestamp(value, name=label))
    lo, hi = bounds
    if lo >= hi:
        raise ConfigError(
            f"The 'start' parameter of {who} must be before 'end' (the range is [start, end)). "
            f"Got start={lo} and end={hi}."
        )
    return TimeRange(lo.as_unit("ns"), hi.as_unit("ns"), format_timeframe(timeframe_ns(timeframe)))


def is_integer(value) -> TypeGuard[int | np.integer]:
    """Whether ``value`` is an integer (Python or NumPy), booleans excluded."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value) -> TypeGuard[int | float | np.integer | np.floating]:
    """Whether ``value`` is a real number (Python or NumPy), booleans excluded."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def slice_range(frame: pd.DataFrame, start_ns: int | None, end_ns: int | None) -> pd.DataFrame:
    """Return the rows of a sorted candle frame with ``start_ns <= timestamp < end_ns``."""
    ns = frame["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    lo = 0 if start_ns is None else int(np.searchsorted(ns, start_ns, side="left"))
    hi = len(ns) if end_ns is None else int(np.searchsorted(ns, end_ns, side="left"))
    if lo == 0 and hi == len(ns):
        return frame
    return frame.iloc[lo:hi].reset_index(drop=True)


def _is_row(row: object) -> bool:
    """A list, tuple or 1-D array of at least 6 items (a string or a number is not a row)."""
    return (isinstance(row, (list, tuple)) or (isinstance(row, np.ndarray) and row.ndim == 1)
            ) and len(row) >= 6


def _rows_array(rows, where: str) -> np.ndarray:
    if isinstance(rows, np.ndarray):
        array = rows
    else:
        rows = check_items(rows, "rows", "candles_from_rows", error=DataValidationError,
                           expected="a list of rows [timestamp_ms, open, high, low, close, "
                                    "volume] or a 2-D array")
        if not rows:
            return np.empty((0, 6), dtype=np.float64)
        bad = next((i for i, r in enumerate(rows) if not _is_row(r)), None)
        if bad is not None:
            raise DataValidationError(
                f"Row {bad:,} from {where} must be [timestamp_ms, open, high, low, close, "
                f"volume]. Got {rows[bad]!r}."
            )
        array = np.array([r[:6] for r in rows], dtype=object)
    if array.ndim != 2 or array.shape[1] < 6:
        raise DataValidationError(
            f"Rows from {where} must have shape (n, 6) as [timestamp_ms, open, high, low, "
            f"close, volume]. Got shape {array.shape}."
        )
    try:
        return np.asarray(array[:, :6], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"Rows from {where} must hold numbers [timestamp_ms, open, high, low, close, "
            f"volume]; a value could not be read as a number ({exc})."
        ) from exc


def candles_from_rows(
    rows: Sequence[Sequence[float]] | np.ndarray,
    timeframe: str,
    *,
    symbol: str | None = None,
    source: str = "the provider",
    time_unit: str = "ms",
) -> pd.DataFrame:
    """Turn exchange rows ``[time, open, high, low, close, volume]`` into a valid candle frame.

    Rows are sorted by time and duplicate timestamps dropped (keeping the last, newest row);
    when either repair changes anything a :class:`ProviderRepairWarning` says what changed.
    Nothing else is repaired: an invalid row raises.

    Parameters
    ----------
    rows : sequence of sequences or numpy.ndarray
        One row per candle; the time is the candle open time since the Unix epoch, UTC.
        ``None`` volume (some exchanges send it) is an error, never silently read as 0.
    timeframe : str
        The candle length, e.g. ``"5m"``; timestamps must lie on its grid.
    symbol : str, optional
        Named in messages.
    source : str
        Where the rows came from (``"binance"``), named in messages.
    time_unit : {"ms", "s"}
        Unit of the time column.

    Returns
    -------
    pandas.DataFrame
        A candle frame that passes :func:`~core_engine.data.candles.validate_candles`.

    Raises
    ------
    DataValidationError
        For rows of the wrong shape, non-numeric values, or a row that breaks the candle
        contract (named by position and timestamp).

    Examples
    --------
    >>> rows = [[1609459500000, 2.0, 2.5, 1.5, 2.2, 7.0], [1609459200000, 1.0, 2.1, 0.9, 2.0, 5.0]]
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     frame = candles_from_rows(rows, "5m", symbol="BTC/USDT")
    >>> frame["timestamp"].dt.strftime("%H:%M").tolist()
    ['00:00', '00:05']
    """
    for name, value, optional in (("source", source, False), ("symbol", symbol, True)):
        if not (isinstance(value, str) or (optional and value is None)):
            raise ConfigError(f"The {name!r} parameter of candles_from_rows must be a string"
                              f"{' or None' if optional else ''}. Got {value!r}.")
    if not isinstance(time_unit, str) or time_unit not in ("ms", "s"):
        raise ConfigError("The 'time_unit' parameter of candles_from_rows must be 'ms' or 's'. "
                          f"Got {time_unit!r}.")
    timeframe_ns(timeframe)
    where = f"{source}" + (f" for {symbol}" if symbol else "")
    array = _rows_array(rows, where)
    if array.shape[0] == 0:
        return empty_candles()
    times = array[:, 0]
    if not np.isfinite(times).all():
        bad = int(np.flatnonzero(~np.isfinite(times))[0])
        raise DataValidationError(f"Row {bad:,} from {where} has no timestamp ({times[bad]}).")
    per_unit = {"ms": _NS_PER_MS, "s": 1_000_000_000}[time_unit]
    ns = times.astype(np.int64) * per_unit
    frame = pd.DataFrame(
        {name: array[:, i + 1].copy() for i, name in enumerate(CANDLE_COLUMNS[1:])}
    )
    frame.insert(0, "timestamp", pd.to_datetime(ns, unit="ns", utc=True).astype(_TS_DTYPE))
    frame = repair_order(frame, where)
    return validate_candles(frame, timeframe, symbol=symbol)


def repair_order(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Sort and de-duplicate (keep last) with a :class:`ProviderRepairWarning` if anything changed."""
    ns = frame["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    if ns.size < 2 or bool((np.diff(ns) > 0).all()):
        return frame
    reports: list[RepairReport] = []
    frame, report = sort_candles(frame)
    reports.append(report)
    frame, report = drop_duplicate_timestamps(frame, keep="last")
    reports.append(report)
    changed = "; ".join(str(r) for r in reports if r.changed)
    warnings.warn(
        f"Candles from {where} were not strictly increasing in time and were repaired "
        f"({changed}).",
        ProviderRepairWarning,
        stacklevel=3,
    )
    return frame


class Provider(abc.ABC):
    """A source of candles: ``fetch_ohlcv(symbol, timeframe, start, end) -> candle frame``.

    Subclasses set :attr:`name` and implement :meth:`fetch_ohlcv`; :meth:`symbols` is
    optional. The returned frame holds the candles with ``start <= timestamp < end`` (UTC),
    sorted, unique and valid (:func:`~core_engine.data.candles.validate_candles` passes with
    the timeframe); candles that are not closed yet are never returned.
    """

    name: str = "provider"

    @abc.abstractmethod
    def fetch_ohlcv(self, symbol: str, timeframe: str, start=None, end=None) -> pd.DataFrame:
        """Return the candles of ``symbol`` with open time in ``[start, end)``.

        Parameters
        ----------
        symbol : str
            ``"BASE/QUOTE"``, e.g. ``"BTC/USDT"``.
        timeframe : str
            Candle length such as ``"5m"``, ``"1h"``.
        start, end : str, datetime, pandas.Timestamp or int (epoch ms)
            The half-open UTC range; naive values are read as UTC. Whether ``None`` is
            accepted depends on the provider.
        """

    def symbols(self) -> list[str]:
        """The symbols this provider can serve (not every provider can list them)."""
        raise NotImplementedError(f"The {self.name!r} provider cannot list its symbols.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
