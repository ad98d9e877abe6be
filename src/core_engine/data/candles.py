"""The candle frame: the canonical one-symbol OHLCV frame, its validation and repairs.

A candle frame has the columns ``timestamp`` (``datetime64[ns, UTC]``, the candle's open
time) and ``open, high, low, close, volume`` (float64), with strictly increasing unique
timestamps on the timeframe's grid. :func:`validate_candles` checks all of it and raises
:class:`~core_engine.errors.DataValidationError` naming the first bad row. Repairs are
explicit functions that return the repaired frame and a report of what they changed;
nothing here changes data silently. Gaps are reported by :func:`gap_report`, never filled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core_engine.data.timeframes import format_timeframe, timeframe_ns
from core_engine.errors import DataValidationError

__all__ = [
    "CANDLE_COLUMNS",
    "PRICE_COLUMNS",
    "GapReport",
    "RepairReport",
    "drop_invalid_rows",
    "drop_duplicate_timestamps",
    "empty_candles",
    "gap_report",
    "repair_candles",
    "sort_candles",
    "validate_candles",
]

PRICE_COLUMNS = ("open", "high", "low", "close")
CANDLE_COLUMNS = ("timestamp", *PRICE_COLUMNS, "volume")
_TS_DTYPE = pd.DatetimeTZDtype("ns", "UTC")


def empty_candles() -> pd.DataFrame:
    """Return a valid candle frame with no rows."""
    frame = pd.DataFrame({c: np.empty(0, dtype=np.float64) for c in CANDLE_COLUMNS[1:]})
    frame.insert(0, "timestamp", pd.DatetimeIndex([], tz="UTC").astype(_TS_DTYPE))
    return frame


def _where(symbol: str | None) -> str:
    return f" of {symbol}" if symbol else ""


def _row_text(frame: pd.DataFrame, position: int, symbol: str | None) -> str:
    ts = frame["timestamp"].iloc[position]
    when = ts.strftime("%Y-%m-%d %H:%M UTC") if isinstance(ts, pd.Timestamp) else str(ts)
    return f"Candle {position:,}{_where(symbol)} ({when})"


#: A validation rule: the mask of rows breaking it, and the message for one such row.
_Check = tuple[np.ndarray, Callable[[int], str]]


def _price_checks(name: str, values: np.ndarray) -> list[_Check]:
    """The finite and positive rules of one price column."""
    return [
        (~np.isfinite(values), lambda i: f"has {name} {values[i]} (prices must be finite)"),
        (values <= 0, lambda i: f"has non-positive {name} {_fmt(values[i])}"),
    ]


def _fmt(value: float) -> str:
    return f"{value:,.10g}"


def validate_candles(
    frame: pd.DataFrame,
    timeframe: str | None = None,
    *,
    symbol: str | None = None,
) -> pd.DataFrame:
    """Check that ``frame`` is a valid candle frame and return it unchanged.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``timestamp, open, high, low, close, volume``; extra columns are allowed.
    timeframe : str, optional
        When given (``"5m"``), every timestamp must lie on that grid (a multiple of the
        timeframe since the Unix epoch).
    symbol : str, optional
        Named in error messages.

    Returns
    -------
    pandas.DataFrame
        The same object, so the call can be chained.

    Raises
    ------
    DataValidationError
        Naming the symbol, the first bad row (position and timestamp) and the broken rule:
        missing column, wrong dtype, naive or non-UTC timestamps, NaN/inf or non-positive
        price, negative or NaN volume, ``high < low``, ``high < max(open, close)``,
        ``low > min(open, close)``, duplicate or unsorted timestamps, off-grid timestamps.

    Examples
    --------
    >>> frame = pd.DataFrame({
    ...     "timestamp": pd.to_datetime(["2021-01-01 00:00", "2021-01-01 00:05"], utc=True),
    ...     "open": [10.0, 11.0], "high": [11.5, 11.2], "low": [9.5, 10.8],
    ...     "close": [11.0, 11.1], "volume": [3.0, 1.0]})
    >>> validate_candles(frame, "5m") is frame
    True
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(
            f"Candles{_where(symbol)} must be a pandas DataFrame. Got {type(frame).__name__}."
        )
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"Candles{_where(symbol)} are missing the column(s) {missing}; expected "
            f"{list(CANDLE_COLUMNS)}. Got {list(frame.columns)}."
        )
    ts = frame["timestamp"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        kind = "naive datetimes" if pd.api.types.is_datetime64_dtype(ts.dtype) else str(ts.dtype)
        raise DataValidationError(
            f"The 'timestamp' column{_where(symbol)} must be timezone-aware UTC datetimes "
            f"(datetime64[ns, UTC]). Got {kind}."
        )
    if str(ts.dtype.tz) != "UTC":
        raise DataValidationError(
            f"The 'timestamp' column{_where(symbol)} must be in UTC. Got timezone {ts.dtype.tz}."
        )
    for column in CANDLE_COLUMNS[1:]:
        if frame[column].dtype != np.float64:
            raise DataValidationError(
                f"The '{column}' column{_where(symbol)} must be float64. "
                f"Got {frame[column].dtype}."
            )
    if len(frame) == 0:
        return frame

    ns = ts.to_numpy(dtype="datetime64[ns]").view(np.int64)
    if ts.isna().any():
        bad = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise DataValidationError(f"Candle {bad:,}{_where(symbol)} has no timestamp (NaT).")

    opens, highs, lows, closes, volumes = (
        frame[c].to_numpy(dtype=np.float64) for c in CANDLE_COLUMNS[1:]
    )
    checks: list[_Check] = []
    for name, values in zip(PRICE_COLUMNS, (opens, highs, lows, closes), strict=True):
        checks += _price_checks(name, values)
    checks += [
        (~np.isfinite(volumes), lambda i: f"has volume {volumes[i]} (volume must be finite)"),
        (volumes < 0, lambda i: f"has negative volume {_fmt(volumes[i])}"),
        (highs < lows, lambda i: f"has high {_fmt(highs[i])} below low {_fmt(lows[i])}"),
        (highs < opens, lambda i: f"has high {_fmt(highs[i])} below open {_fmt(opens[i])}"),
        (highs < closes, lambda i: f"has high {_fmt(highs[i])} below close {_fmt(closes[i])}"),
        (lows > opens, lambda i: f"has low {_fmt(lows[i])} above open {_fmt(opens[i])}"),
        (lows > closes, lambda i: f"has low {_fmt(lows[i])} above close {_fmt(closes[i])}"),
    ]
    steps = np.diff(ns)
    duplicate = np.zeros(len(ns), dtype=bool)
    duplicate[1:] = steps == 0
    unsorted = np.zeros(len(ns), dtype=bool)
    unsorted[1:] = steps < 0
    checks.append(
        (duplicate, lambda i: "repeats the timestamp of the candle before it (duplicate timestamp)")
    )
    checks.append(
        (unsorted, lambda i: "comes before the candle above it (timestamps must increase)")
    )
    if timeframe is not None:
        step = timeframe_ns(timeframe)
        checks.append(
            (
                ns % step != 0,
                lambda i: f"is off the {format_timeframe(step)} grid (timestamps must be "
                f"multiples of {format_timeframe(step)} since 1970-01-01 00:00 UTC)",
            )
        )
    # Report the earliest bad row across all rules, so the message points at the first problem.
    first: tuple[int, Callable[[int], str]] | None = None  # (row, message)
    for mask, message in checks:
        hits = np.flatnonzero(mask)
        if hits.size and (first is None or hits[0] < first[0]):
            first = (int(hits[0]), message)
    if first is not None:
        first_row, first_message = first
        raise DataValidationError(
            f"{_row_text(frame, first_row, symbol)} {first_message(first_row)}."
        )
    return frame


@dataclass(frozen=True)
class RepairReport:
    """What a repair changed: the rows it removed or moved, and why."""

    action: str
    rows_before: int
    rows_after: int
    removed_timestamps: tuple[pd.Timestamp, ...] = ()
    details: tuple[str, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        """Whether the repair changed anything."""
        return self.rows_before != self.rows_after or bool(self.details)

    def __str__(self) -> str:
        text = f"{self.action}: {self.rows_before:,} -> {self.rows_after:,} rows"
        if self.details:
            text += "; " + "; ".join(self.details[:5])
            if len(self.details) > 5:
                text += f"; … and {len(self.details) - 5:,} more"
        return text


def sort_candles(frame: pd.DataFrame) -> tuple[pd.DataFrame, RepairReport]:
    """Return the candles sorted by timestamp (stable) and a report of rows that moved."""
    order = np.argsort(frame["timestamp"].to_numpy(), kind="stable")
    moved = int(np.count_nonzero(order != np.arange(len(order))))
    details = (f"{moved:,} rows were out of order",) if moved else ()
    out = frame.iloc[order].reset_index(drop=True)
    return out, RepairReport("sort", len(frame), len(out), (), details)


def drop_duplicate_timestamps(
    frame: pd.DataFrame, keep: str = "last"
) -> tuple[pd.DataFrame, RepairReport]:
    """Drop rows that repeat a timestamp, keeping the ``"last"`` (newest) or ``"first"``."""
    if keep not in ("first", "last"):
        raise DataValidationError(f"The 'keep' parameter must be 'first' or 'last'. Got {keep!r}.")
    dup = frame["timestamp"].duplicated(keep=keep).to_numpy()
    removed = tuple(frame["timestamp"][dup])
    out = frame.loc[~dup].reset_index(drop=True)
    details = (f"dropped {dup.sum():,} duplicate timestamps keeping the {keep}",) if dup.any() else ()
    return out, RepairReport("dedupe", len(frame), len(out), removed, details)


def drop_invalid_rows(
    frame: pd.DataFrame, timeframe: str | None = None
) -> tuple[pd.DataFrame, RepairReport]:
    """Drop rows breaking a per-row rule (NaN/non-positive price, bad volume, OHLC order, grid).

    Each removed row is listed in the report with its reason.
    """
    o, h, lo, c, v = (frame[col].to_numpy(dtype=np.float64) for col in CANDLE_COLUMNS[1:])
    prices = np.column_stack([o, h, lo, c])
    with np.errstate(invalid="ignore"):
        reasons = {
            "non-finite price": ~np.isfinite(prices).all(axis=1),
            "non-positive price": (prices <= 0).any(axis=1),
            "bad volume": ~np.isfinite(v) | (v < 0),
            "high below low/open/close": (h < lo) | (h < o) | (h < c),
            "low above open/close": (lo > o) | (lo > c),
        }
    if timeframe is not None:
        ns = frame["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        reasons["off grid"] = ns % timeframe_ns(timeframe) != 0
    bad = np.zeros(len(frame), dtype=bool)
    details = []
    for reason, mask in reasons.items():
        new = mask & ~bad
        for i in np.flatnonzero(new):
            details.append(f"row {i:,} ({frame['timestamp'].iloc[i]}): {reason}")
        bad |= mask
    removed = tuple(frame["timestamp"][bad])
    out = frame.loc[~bad].reset_index(drop=True)
    return out, RepairReport("drop_invalid", len(frame), len(out), removed, tuple(details))


def repair_candles(
    frame: pd.DataFrame, timeframe: str | None = None, *, keep: str = "last"
) -> tuple[pd.DataFrame, list[RepairReport]]:
    """Sort, drop duplicate timestamps and drop invalid rows, returning every report.

    The result passes :func:`validate_candles`. Nothing is filled or interpolated.
    """
    reports = []
    out = frame.copy()
    if "timestamp" in out.columns and not isinstance(out["timestamp"].dtype, pd.DatetimeTZDtype):
        raise DataValidationError(
            "repair_candles cannot guess a timezone: the 'timestamp' column must be UTC-aware. "
            f"Got {out['timestamp'].dtype}; convert it with pd.to_datetime(..., utc=True)."
        )
    for column in CANDLE_COLUMNS[1:]:
        if out[column].dtype != np.float64:
            out[column] = out[column].astype(np.float64)
            reports.append(RepairReport("cast", len(out), len(out), (), (f"cast {column} to float64",)))
    for step in (sort_candles, lambda f: drop_duplicate_timestamps(f, keep=keep),
                 lambda f: drop_invalid_rows(f, timeframe)):
        out, report = step(out)
        reports.append(report)
    return out, reports


@dataclass(frozen=True)
class GapReport:
    """Missing candles of one series: how many, in how many gaps, the longest, and where.

    ``gaps`` lists ``(last_before, first_after, missing_candles)`` for each gap.
    """

    timeframe: str
    candles: int
    expected: int
    missing: int
    gaps: tuple[tuple[pd.Timestamp, pd.Timestamp, int], ...]

    @property
    def count(self) -> int:
        """Number of gap events."""
        return len(self.gaps)

    @property
    def longest(self) -> int:
        """Missing candles in the longest gap (0 without gaps)."""
        return max((g[2] for g in self.gaps), default=0)

    def to_frame(self) -> pd.DataFrame:
        """The gaps as a DataFrame with columns ``last_before, first_after, missing``."""
        return pd.DataFrame(list(self.gaps), columns=["last_before", "first_after", "missing"])


def gap_report(frame: pd.DataFrame, timeframe: str) -> GapReport:
    """Report the missing candles of a valid candle frame (nothing is filled).

    Examples
    --------
    >>> ts = pd.to_datetime(["2021-01-01 00:00", "2021-01-01 00:05", "2021-01-01 00:20"], utc=True)
    >>> f = pd.DataFrame({"timestamp": ts, "open": 1.0, "high": 1.0, "low": 1.0,
    ...                   "close": 1.0, "volume": 0.0})
    >>> gap_report(f, "5m").missing
    2
    """
    step = timeframe_ns(timeframe)
    ns = frame["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    if ns.size == 0:
        return GapReport(format_timeframe(step), 0, 0, 0, ())
    expected = int((ns[-1] - ns[0]) // step + 1)
    jumps = np.flatnonzero(np.diff(ns) > step)
    gaps = tuple(
        (
            pd.Timestamp(ns[i], tz="UTC"),
            pd.Timestamp(ns[i + 1], tz="UTC"),
            int((ns[i + 1] - ns[i]) // step - 1),
        )
        for i in jumps
    )
    return GapReport(format_timeframe(step), int(ns.size), expected, expected - int(ns.size), gaps)
