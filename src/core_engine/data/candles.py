"""The candle frame: the canonical one-symbol OHLCV frame, its validation and repairs.

A candle frame has the columns ``timestamp`` (``datetime64[ns, UTC]``, the candle's open
time) and ``open, high, low, close, volume`` (float64), with strictly increasing unique
timestamps on the timeframe's grid. :func:`validate_candles` checks all of it and raises
:class:`~core_engine.errors.DataValidationError` naming the first bad row. Repairs are
explicit functions that return the repaired frame and a report of what they changed;
nothing here changes data silently. Gaps are reported by :func:`gap_report`, never filled.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import check_frame
from core_engine.data._kernels import all_candles_ok, gap_free
from core_engine.data.timeframes import format_timeframe, is_utc, timeframe_ns
from core_engine.errors import ConfigError, DataValidationError

__all__ = [
    "CANDLE_COLUMNS",
    "DEFAULT_DISCONTINUITY_FACTOR",
    "PRICE_COLUMNS",
    "DiscontinuityWarning",
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
#: A close more than this factor above or below the previous close is a price discontinuity.
#: In the real Binance 5m data of 2020-12 .. 2021-07 the largest close-to-close move, gaps of
#: up to 56 candles included, is |ln r| = 0.296 (DOT, the 2021-05-19 crash), ×1.34; in the
#: 1h files 0.626 (NKN), ×1.87. ln 5 = 1.61 keeps 2.6 times that log distance from any real
#: move seen, while a 10× or 1000× redenomination (ln 2.3 and 6.9) is flagged.
DEFAULT_DISCONTINUITY_FACTOR = 5.0


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


def _fmt(value: float) -> str:
    return f"{value:,.10g}"


def timestamps_ns(frame: pd.DataFrame) -> np.ndarray:
    """The ``timestamp`` column as int64 nanoseconds since the epoch (any datetime unit)."""
    return frame["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)


def read_only(values: np.ndarray) -> np.ndarray:
    """A read-only contiguous view (one numba specialisation for every caller's arrays)."""
    out = np.ascontiguousarray(values, dtype=np.float64).view()
    out.flags.writeable = False
    return out


def candle_problem(o: float, h: float, lo: float, c: float, v: float) -> str | None:
    """Why one candle breaks the price/volume rules (the first broken, in a fixed order)."""
    for name, value in zip(PRICE_COLUMNS, (o, h, lo, c), strict=True):
        if not np.isfinite(value):
            return f"has {name} {value} (prices must be finite)"
        if value <= 0:
            return f"has non-positive {name} {_fmt(value)}"
    if not np.isfinite(v):
        return f"has volume {v} (volume must be finite)"
    if v < 0:
        return f"has negative volume {_fmt(v)}"
    for bad, text in ((h < lo, f"has high {_fmt(h)} below low {_fmt(lo)}"),
                      (h < o, f"has high {_fmt(h)} below open {_fmt(o)}"),
                      (h < c, f"has high {_fmt(h)} below close {_fmt(c)}"),
                      (lo > o, f"has low {_fmt(lo)} above open {_fmt(o)}"),
                      (lo > c, f"has low {_fmt(lo)} above close {_fmt(c)}")):
        if bad:
            return text
    return None


def _row_problem(frame: pd.DataFrame, i: int, step: int) -> str:
    """Why row ``i`` breaks the contract: the first broken rule, in a fixed order."""
    problem = candle_problem(*(float(frame[name].iat[i]) for name in CANDLE_COLUMNS[1:]))
    if problem is not None:
        return problem
    ns = timestamps_ns(frame)
    if i > 0 and ns[i] == ns[i - 1]:
        return "repeats the timestamp of the candle before it (duplicate timestamp)"
    if i > 0 and ns[i] < ns[i - 1]:
        return "comes before the candle above it (timestamps must increase)"
    if step and ns[i] % step:
        grid = format_timeframe(step)
        return (f"is off the {grid} grid (timestamps must be multiples of {grid} since "
                "1970-01-01 00:00 UTC)")
    return "breaks the candle contract"


def check_candle_columns(frame, symbol: str | None = None) -> None:
    """Check the columns and dtypes of a candle frame (no row is read)."""
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(
            f"Candles{_where(symbol)} must be a pandas DataFrame. Got {type(frame).__name__}."
        )
    names = list(frame.columns)
    repeated = [c for c in CANDLE_COLUMNS if names.count(c) > 1]
    if repeated:
        raise DataValidationError(
            f"Candles{_where(symbol)} have the column(s) {repeated} more than once; expected "
            f"each of {list(CANDLE_COLUMNS)} once. Got {names}."
        )
    missing = [c for c in CANDLE_COLUMNS if c not in names]
    if missing:
        raise DataValidationError(
            f"Candles{_where(symbol)} are missing the column(s) {missing}; expected "
            f"{list(CANDLE_COLUMNS)}. Got {names}."
        )
    ts = frame["timestamp"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        kind = "naive datetimes" if pd.api.types.is_datetime64_dtype(ts.dtype) else str(ts.dtype)
        raise DataValidationError(
            f"The 'timestamp' column{_where(symbol)} must be timezone-aware UTC datetimes "
            f"(datetime64[ns, UTC]). Got {kind}."
        )
    if not is_utc(ts.dtype.tz):
        raise DataValidationError(
            f"The 'timestamp' column{_where(symbol)} must be in UTC. Got timezone {ts.dtype.tz}."
        )
    for column in CANDLE_COLUMNS[1:]:
        if frame[column].dtype != np.float64:
            raise DataValidationError(
                f"The '{column}' column{_where(symbol)} must be float64. "
                f"Got {frame[column].dtype}."
            )


def validate_candles(
    frame: pd.DataFrame,
    timeframe: str | None = None,
    *,
    symbol: str | None = None,
    discontinuity_factor: float | None = DEFAULT_DISCONTINUITY_FACTOR,
) -> pd.DataFrame:
    """Check that ``frame`` is a valid candle frame and return it unchanged.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``timestamp, open, high, low, close, volume``; extra columns are allowed.
        Timestamps may be in any datetime unit and in UTC under any of its names
        (``"Etc/UTC"``, ``datetime.timezone.utc``, ``dateutil.tz.tzutc()``, pytz's UTC).
    timeframe : str, optional
        When given (``"5m"``), every timestamp must lie on that grid (a multiple of the
        timeframe since the Unix epoch).
    symbol : str, optional
        Named in error messages.
    discontinuity_factor : float or None
        Warn (:class:`DiscontinuityWarning`, not an error) when one close differs from the
        previous one by more than this factor, adjacent or across missing candles (a token
        redenomination, a bad tick). Default :data:`DEFAULT_DISCONTINUITY_FACTOR`;
        ``None`` turns the check off.

    Returns
    -------
    pandas.DataFrame
        The same object, so the call can be chained.

    Raises
    ------
    DataValidationError
        Naming the symbol, the first bad row (position and timestamp) and the broken rule:
        missing or repeated column, wrong dtype, naive or non-UTC timestamps, NaN/inf or
        non-positive price, negative or NaN volume, ``high < low``, ``high < max(open, close)``,
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
    check_candle_columns(frame, symbol)
    if len(frame) == 0:
        return frame
    ns = timestamps_ns(frame)
    if frame["timestamp"].hasnans:
        bad = int(np.flatnonzero(frame["timestamp"].isna().to_numpy())[0])
        raise DataValidationError(f"Candle {bad:,}{_where(symbol)} has no timestamp (NaT).")
    step = 0 if timeframe is None else timeframe_ns(timeframe)
    o, h, lo, c, v = (read_only(frame[name].to_numpy(dtype=np.float64))
                      for name in CANDLE_COLUMNS[1:])
    if not (all_candles_ok(o, h, lo, c, v, False) and _times_ok(ns, step)):
        bad = first_bad_row(ns, o, h, lo, c, v, step)
        raise DataValidationError(
            f"{_row_text(frame, bad, symbol)} {_row_problem(frame, bad, step)}."
        )
    if discontinuity_factor is not None:
        factor = check_factor(discontinuity_factor, "discontinuity_factor")
        before, after = price_jumps(c, factor)
        if before.size:
            _warn_jumps(ns, c, before, after, factor, step, symbol)
    return frame


def _times_ok(ns: np.ndarray, step: int) -> bool:
    """Strictly increasing timestamps, on the ``step`` grid when ``step`` (cheap when gap-free)."""
    if ns.size < 2:
        return not step or ns.size == 0 or ns[0] % step == 0
    if step and gap_free(read_only_ns(ns), step):
        return ns[0] % step == 0
    return bool((np.diff(ns) > 0).all()) and not (step and (ns % step).any())


def first_bad_row(ns: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
                  v: np.ndarray, step: int, allow_missing: bool = False) -> int:
    """The first row breaking the candle contract (vectorised; -1 if none).

    ``ns`` may be empty (no time checks); ``step`` 0 skips the grid check; with
    ``allow_missing`` a row NaN in all five fields passes.
    """
    with np.errstate(invalid="ignore"):
        bad = ~((0 < lo) & (lo <= o) & (lo <= c) & (o <= h) & (c <= h) & (h < np.inf)
                & (0 <= v) & (v < np.inf))
    if allow_missing:
        bad &= ~(np.isnan(o) & np.isnan(h) & np.isnan(lo) & np.isnan(c) & np.isnan(v))
    if ns.size:
        bad[1:] |= np.diff(ns) <= 0
        if step:
            bad |= ns % step != 0
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else -1


def read_only_ns(ns: np.ndarray) -> np.ndarray:
    """A read-only contiguous int64 view of nanosecond timestamps."""
    out = np.ascontiguousarray(ns, dtype=np.int64).view()
    out.flags.writeable = False
    return out


# ---------------------------------------------------------------- discontinuities
class DiscontinuityWarning(UserWarning):
    """A series' price jumps by more than a factor between two consecutive candles."""


def check_factor(factor, name: str = "factor") -> float:
    """Return ``factor`` as a float above 1, or raise :class:`ConfigError`."""
    if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, (int, float, np.integer,
                                                                         np.floating)):
        raise ConfigError(f"The '{name}' parameter must be a number above 1 such as 5. Got {factor!r}.")
    value = float(factor)
    if not np.isfinite(value) or value <= 1.0:
        raise ConfigError(f"The '{name}' parameter must be a finite number above 1 such as 5. Got {factor!r}.")
    return value


def price_jumps(close: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(before, after)`` of consecutive closes whose ratio is beyond ``factor``.

    ``close`` holds one series' closes in time order (missing candles absent or NaN, skipped).
    A jump is ``close[after] / close[before] > factor`` or ``< 1 / factor``.
    """
    present = np.flatnonzero(~np.isnan(close))
    if present.size < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    values = close[present]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = values[1:] / values[:-1]
    hits = np.flatnonzero((ratio > factor) | (ratio * factor < 1.0))
    return present[hits], present[hits + 1]


def _warn_jumps(ns, close, before, after, factor, step, symbol) -> None:
    i, k = int(before[0]), int(after[0])
    missing = int((ns[k] - ns[i]) // step - 1) if step else None
    across = f" across {missing:,} missing candles" if missing else ""
    warnings.warn(
        f"Candles{_where(symbol)} have {before.size:,} price discontinuit"
        f"{'y' if before.size == 1 else 'ies'} beyond ×{factor:g}; the first: close "
        f"{_fmt(close[i])} at {_when(ns[i])} then {_fmt(close[k])} at {_when(ns[k])}{across} "
        f"(×{close[k] / close[i]:.4g}). A redenomination or a bad tick? List them with "
        "gap_report(...).discontinuities; split the series with split_at_discontinuities.",
        DiscontinuityWarning,
        stacklevel=3,
    )


def _when(ns_value) -> str:
    return pd.Timestamp(int(ns_value), tz="UTC").strftime("%Y-%m-%d %H:%M UTC")


@keyword_checked
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


def _repair_input(frame: Any, where: str) -> pd.DataFrame:
    """The frame given to a repair function: a DataFrame with each candle column once, a
    datetime ``timestamp`` and numeric prices and volume (rows may still be wrong: that is
    what repairs are for). Raises DataValidationError naming the function otherwise."""
    check_frame(frame, "frame", where, columns=CANDLE_COLUMNS)
    if not pd.api.types.is_datetime64_any_dtype(frame["timestamp"].dtype):
        raise DataValidationError(
            f"The 'timestamp' column of the frame given to {where} must hold datetimes "
            f"(UTC-aware). Got {frame['timestamp'].dtype}; convert it with "
            "pd.to_datetime(..., utc=True).")
    for column in CANDLE_COLUMNS[1:]:
        dtype = frame[column].dtype
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            raise DataValidationError(
                f"The {column!r} column of the frame given to {where} must be numeric. "
                f"Got {dtype}.")
    return frame


def sort_candles(frame: pd.DataFrame) -> tuple[pd.DataFrame, RepairReport]:
    """Return the candles sorted by timestamp (stable) and a report of rows that moved."""
    _repair_input(frame, "sort_candles")
    order = np.argsort(frame["timestamp"].to_numpy(), kind="stable")
    moved = int(np.count_nonzero(order != np.arange(len(order))))
    details = (f"{moved:,} rows were out of order",) if moved else ()
    out = frame.iloc[order].reset_index(drop=True)
    return out, RepairReport("sort", len(frame), len(out), (), details)


def drop_duplicate_timestamps(
    frame: pd.DataFrame, keep: str = "last"
) -> tuple[pd.DataFrame, RepairReport]:
    """Drop rows that repeat a timestamp, keeping the ``"last"`` (newest) or ``"first"``."""
    _repair_input(frame, "drop_duplicate_timestamps")
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
    _repair_input(frame, "drop_invalid_rows")
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
    out = _repair_input(frame, "repair_candles").copy()
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


#: Columns of :meth:`GapReport.discontinuities_frame` (and of ``Panel.discontinuities``
#: without its ``symbol`` column).
DISCONTINUITY_COLUMNS = ("last_before", "first_after", "missing", "ratio")


@keyword_checked
@dataclass(frozen=True)
class GapReport:
    """Missing candles and price discontinuities of one series (nothing is filled).

    ``gaps`` lists ``(last_before, first_after, missing_candles)`` for each gap.
    ``discontinuities`` lists ``(last_before, first_after, missing_candles, ratio)`` for each
    pair of consecutive candles whose closes differ by more than ``factor`` (``ratio`` is
    the later close over the earlier one; ``missing_candles`` is 0 between adjacent candles).
    """

    timeframe: str
    candles: int
    expected: int
    missing: int
    gaps: tuple[tuple[pd.Timestamp, pd.Timestamp, int], ...]
    discontinuities: tuple[tuple[pd.Timestamp, pd.Timestamp, int, float], ...] = ()
    factor: float = DEFAULT_DISCONTINUITY_FACTOR

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

    def discontinuities_frame(self) -> pd.DataFrame:
        """The discontinuities with columns ``last_before, first_after, missing, ratio``."""
        return pd.DataFrame(list(self.discontinuities), columns=list(DISCONTINUITY_COLUMNS))


def gap_report(frame: pd.DataFrame, timeframe: str, *,
               factor: float = DEFAULT_DISCONTINUITY_FACTOR) -> GapReport:
    """Report the missing candles and the price discontinuities of a valid candle frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        A valid candle frame.
    timeframe : str
        Its grid step, e.g. ``"5m"``.
    factor : float
        A close more than ``factor`` times above or below the previous close (adjacent or
        across a gap) is a discontinuity (default :data:`DEFAULT_DISCONTINUITY_FACTOR`).

    Examples
    --------
    >>> ts = pd.to_datetime(["2021-01-01 00:00", "2021-01-01 00:05", "2021-01-01 00:20"], utc=True)
    >>> f = pd.DataFrame({"timestamp": ts, "open": 1.0, "high": [1.0, 1.0, 1000.0],
    ...                   "low": [1.0, 1.0, 1000.0], "close": [1.0, 1.0, 1000.0], "volume": 0.0})
    >>> report = gap_report(f, "5m")
    >>> report.missing, report.discontinuities[0][2:]
    (2, (2, 1000.0))
    """
    check_candle_columns(frame)
    step = timeframe_ns(timeframe)
    factor = check_factor(factor)
    ns = timestamps_ns(frame)
    if ns.size == 0:
        return GapReport(format_timeframe(step), 0, 0, 0, (), (), factor)
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
    close = frame["close"].to_numpy(dtype=np.float64)
    before, after = price_jumps(close, factor)
    discontinuities = tuple(
        (
            pd.Timestamp(int(ns[i]), tz="UTC"),
            pd.Timestamp(int(ns[k]), tz="UTC"),
            int((ns[k] - ns[i]) // step - 1),
            float(close[k] / close[i]),
        )
        for i, k in zip(before, after, strict=True)
    )
    return GapReport(format_timeframe(step), int(ns.size), expected, expected - int(ns.size), gaps,
                     discontinuities, factor)
