"""One file of the ParquetStore: its name, and reading it without trusting it.

File names. ``<root>/<timeframe>/<stem>.<hash>.parquet``: ``stem`` is the symbol made
readable and safe (``BTC/USDT`` → ``BTC_USDT``, ``BTC/USDT:USDT`` → ``BTC_USDT-USDT``, any
other character outside ``A-Z a-z 0-9 . _ -`` → ``_``) and ``hash`` the first 12 hex digits
of the BLAKE2b digest of the exact symbol (UTF-8). Two symbols share a file name only if they
share the hash (about one chance in 2**48 per pair), so ``BTC/USDT`` and ``BTC_USDT`` no
longer meet in one file, and two names that differ only in case differ in lower-case hex
too, which keeps them apart on case-insensitive disks (macOS, Windows). The exact symbol is
kept in the file's key/value metadata and checked on every read, write and delete, so even a
hash collision, or a file copied under another name, is an error and never a silent merge.

Stores written before this layout (``BTC_USDT.parquet``) stay readable: a file with the old
name is used for the symbol its metadata records, and the next write of that symbol moves it
to the new name.

Reading checks what a foreign or damaged file could break, cheapest first: the footer (the
recorded symbol and timeframe, the schema: nanosecond UTC timestamps, float64 columns; the
row-group statistics: no nulls, row groups in time order, no negative minimum price or
volume), then the decoded rows in one numba pass (the candle contract, strictly increasing
timestamps on the grid). A failure is a :class:`~core_engine.errors.StoreError` naming the
file and saying how to remove it and re-ingest.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core_engine._config import keyword_checked
from core_engine.data.candles import CANDLE_COLUMNS, empty_candles, validate_candles
from core_engine.data.timeframes import format_timeframe, is_utc, timeframe_ns
from core_engine.errors import ConfigError, DataValidationError, StoreError

SYMBOL_KEY = b"core_engine.symbol"
TIMEFRAME_KEY = b"core_engine.timeframe"
SUFFIX = ".parquet"
_HASH_DIGITS = 12
_STEM_CHARS = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_PRICE_COLUMNS = CANDLE_COLUMNS[1:5]


def check_symbol(symbol) -> str:
    """Return ``symbol`` if it is a non-empty string, or raise :class:`ConfigError`."""
    if not isinstance(symbol, str) or not symbol or "\0" in symbol:
        raise ConfigError(
            f"The 'symbol' parameter must be a non-empty name such as 'BTC/USDT'. Got {symbol!r}."
        )
    return symbol


def file_name(symbol: str) -> str:
    """The file name of ``symbol``: a readable stem and a hash of the exact symbol.

    Examples
    --------
    >>> file_name("BTC/USDT")
    'BTC_USDT.11b4defb0e96.parquet'
    """
    check_symbol(symbol)
    stem = _UNSAFE.sub("_", symbol.replace("/", "_").replace(":", "-"))[:_STEM_CHARS]
    if stem.startswith("."):
        stem = "_" + stem[1:]
    digest = hashlib.blake2b(symbol.encode("utf-8"), digest_size=_HASH_DIGITS // 2).hexdigest()
    return f"{stem}.{digest}{SUFFIX}"


def legacy_name(symbol: str) -> str:
    """The file name of ``symbol`` in stores written before the hashed names."""
    return symbol.replace("/", "_").replace(":", "-") + SUFFIX


class StoreWarning(UserWarning):
    """A store file could not be served and was left out; the message names it and the fix."""


class BrokenStoreFileError(StoreError):
    """A store file cannot be served; ``file`` (a :class:`BrokenFile`) says which and why."""

    def __init__(self, file: BrokenFile) -> None:
        super().__init__(str(file))
        self.file = file


@keyword_checked
@dataclass(frozen=True)
class BrokenFile:
    """A store file that cannot be served, and why.

    ``symbol`` is the symbol its metadata records, or None when that is unreadable.
    """

    path: Path
    timeframe: str
    symbol: str | None
    reason: str

    @property
    def advice(self) -> str:
        """How to get rid of it."""
        if self.symbol is None:
            return (f"Delete the file and re-ingest its symbol (core-engine ingest --symbols "
                    f"SYMBOL --timeframe {self.timeframe} ...).")
        return (f"Remove it with ParquetStore.delete({self.symbol!r}, {self.timeframe!r}) or by "
                f"deleting the file, then re-ingest it (core-engine ingest --symbols "
                f"{self.symbol} --timeframe {self.timeframe} ...).")

    def __str__(self) -> str:
        return f"Store file {self.path} {self.reason}. {self.advice}"

    def error(self) -> BrokenStoreFileError:
        """The error raised when this file is asked for."""
        return BrokenStoreFileError(self)


def recorded(metadata) -> tuple[str | None, str | None]:
    """The symbol and timeframe a file's key/value metadata records (None when absent)."""
    meta = metadata or {}
    symbol, tf = meta.get(SYMBOL_KEY), meta.get(TIMEFRAME_KEY)
    try:
        return (None if symbol is None else symbol.decode("utf-8"),
                None if tf is None else tf.decode("utf-8"))
    except UnicodeDecodeError:
        return None, None


def open_file(path: Path, timeframe: str) -> pq.ParquetFile:
    """Open a store file and parse its footer, or raise the :class:`BrokenFile` error."""
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise BrokenFile(path, timeframe, None,
                         f"cannot be read as Parquet ({_short(exc)})").error() from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def footer_problem(parquet: pq.ParquetFile, symbol: str | None, timeframe: str) -> str | None:
    """Why a file's footer is not that of a store file of ``symbol`` at ``timeframe``."""
    rec_symbol, rec_tf = recorded(parquet.schema_arrow.metadata)
    if rec_symbol is None:
        return ("has no core_engine.symbol metadata (it was not written by ParquetStore, "
                "which records each file's symbol)")
    if symbol is not None and rec_symbol != symbol:
        return (f"records the symbol {rec_symbol!r}, not {symbol!r} (a file copied or renamed "
                "by hand, or two symbols sharing a name)")
    if rec_tf is not None and rec_tf != timeframe:
        return f"records the timeframe {rec_tf!r} but lies in the {timeframe!r} folder"
    return schema_problem(parquet.schema_arrow) or statistics_problem(parquet.metadata)


def schema_problem(schema: pa.Schema) -> str | None:
    """Why a schema is not the store's (nanosecond UTC timestamps, float64 values)."""
    missing = [c for c in CANDLE_COLUMNS if schema.get_field_index(c) < 0]
    if missing:
        return f"has no column(s) {missing} (it has {schema.names})"
    ts = schema.field("timestamp").type
    if not pa.types.is_timestamp(ts):
        return f"has a 'timestamp' column of type {ts}, expected timestamp[ns, tz=UTC]"
    if ts.unit != "ns":
        return (f"has timestamps in {ts.unit} (pandas' default is us), expected ns: read as "
                "nanoseconds they would land in 1970")
    if ts.tz is None or not (is_utc(ts.tz) or ts.tz in ("+00:00", "-00:00")):
        return f"has timestamps in timezone {ts.tz or 'none (naive)'}, expected UTC"
    for column in CANDLE_COLUMNS[1:]:
        kind = schema.field(column).type
        if kind != pa.float64():
            return f"has a {column!r} column of type {kind}, expected float64 (double)"
    return None


def statistics_problem(metadata: pq.FileMetaData) -> str | None:
    """What the row-group statistics of the footer already show to be wrong, if anything.

    Nulls, row groups out of time order, negative or zero minimum prices, negative minimum
    volume. NaN does not show in Parquet statistics: the row check catches it.
    """
    positions = {metadata.schema.column(i).name: i for i in range(metadata.num_columns)}
    previous_max = None
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for name in CANDLE_COLUMNS:
            stats = group.column(positions[name]).statistics
            if stats is None:
                continue
            if stats.has_null_count and stats.null_count:
                return f"has {stats.null_count:,} missing (null) value(s) in column {name!r}"
            if not stats.has_min_max:
                continue
            low = stats.min_raw
            if name in _PRICE_COLUMNS and low <= 0:
                return f"has a non-positive {name} ({low:,.10g}) in row group {g}"
            if name == "volume" and low < 0:
                return f"has a negative volume ({low:,.10g}) in row group {g}"
            if name == "timestamp":
                if previous_max is not None and low <= previous_max:
                    return (f"has row group {g} starting at or before the end of the one "
                            "before it (timestamps must increase)")
                previous_max = stats.max_raw
    return None


def row_group_stats(metadata: pq.FileMetaData, g: int) -> tuple[int, int] | None:
    """The (min, max) timestamp in nanoseconds of row group ``g``, if recorded."""
    stats = metadata.row_group(g).column(0).statistics
    if stats is None or not stats.has_min_max:
        return None
    return int(stats.min_raw), int(stats.max_raw)


def read_checked_table(path: Path, symbol: str, timeframe: str, start_ns: int | None,
                       end_ns: int | None) -> pa.Table:
    """Read a store file's candles in ``[start_ns, end_ns)`` after checking its footer.

    The row groups are chosen from the timestamp statistics (predicate push-down), then the
    edge rows are cut with one vectorised comparison. The rows are not checked here (see
    :func:`frame_from_table` and the panel's fill kernel).
    """
    with open_file(path, timeframe) as parquet:
        problem = footer_problem(parquet, symbol, timeframe)
        if problem:
            raise BrokenFile(path, timeframe, recorded(parquet.schema_arrow.metadata)[0],
                             problem).error()
        lo = -(2**63) if start_ns is None else start_ns
        hi = 2**63 - 1 if end_ns is None else end_ns
        try:
            if start_ns is None and end_ns is None:
                table = parquet.read(columns=list(CANDLE_COLUMNS))
            else:
                groups = [g for g in range(parquet.metadata.num_row_groups)
                          if (span := row_group_stats(parquet.metadata, g)) is None
                          or (span[1] >= lo and span[0] < hi)]
                table = parquet.read_row_groups(groups, columns=list(CANDLE_COLUMNS))
        except (OSError, pa.ArrowException) as exc:
            raise BrokenFile(path, timeframe, symbol,
                             f"cannot be decoded ({_short(exc)})").error() from exc
    nulls = [c for c in CANDLE_COLUMNS if table.column(c).null_count]
    if nulls:
        raise BrokenFile(path, timeframe, symbol,
                         f"has missing (null) values in column(s) {nulls}").error()
    if start_ns is None and end_ns is None:
        return table
    ns = table.column("timestamp").to_numpy().view(np.int64)
    keep = (ns >= lo) & (ns < hi)
    return table if keep.all() else table.filter(pa.array(keep))


def frame_from_table(table: pa.Table, path: Path, symbol: str, timeframe: str) -> pd.DataFrame:
    """The candle frame of a table read from ``path``, checked against the candle contract."""
    if table.num_rows == 0:
        return empty_candles()
    ns = table.column("timestamp").to_numpy().view(np.int64)
    data = {"timestamp": pd.DatetimeIndex(ns.view("datetime64[ns]"), tz="UTC")}
    for column in CANDLE_COLUMNS[1:]:
        data[column] = table.column(column).to_numpy()
    frame = pd.DataFrame(data)
    check_frame(frame, path, symbol, timeframe)
    return frame


def check_frame(frame: pd.DataFrame, path: Path, symbol: str, timeframe: str) -> None:
    """Raise the :class:`BrokenFile` error if a frame read from ``path`` breaks the contract."""
    try:
        validate_candles(frame, timeframe, symbol=symbol, discontinuity_factor=None)
    except DataValidationError as exc:
        raise BrokenFile(path, timeframe, symbol, f"breaks the candle contract: {exc}".rstrip(".")
                         ).error() from exc


def tf_folder(timeframe: str) -> str:
    """The folder name of ``timeframe`` (its shortest spelling)."""
    return format_timeframe(timeframe_ns(timeframe))
