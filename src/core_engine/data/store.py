"""ParquetStore: one directory, one Parquet file per (timeframe, symbol), base candles only.

Layout: ``<root>/<timeframe>/<SYMBOL>.parquet`` where ``/`` and ``:`` in the symbol become
``_`` and ``-`` (``BTC/USDT`` → ``BTC_USDT.parquet``); the exact symbol is kept in the file's
key/value metadata, so nothing is lost in the file name.

Writes are upserts (merge on timestamp, the newest candle wins), written to a temporary file
in the same directory, flushed to disk and atomically renamed over the old file, so a process
killed mid-write leaves the previous file readable and intact. Reads push the time filter
down into Parquet (row-group statistics), so a narrow date range reads only the row groups
it needs. Indicators are never stored: only candles that pass
:func:`~core_engine.data.validate_candles`.
"""

from __future__ import annotations

import fcntl
import os
import warnings
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core_engine.data.candles import CANDLE_COLUMNS, empty_candles, gap_report, validate_candles
from core_engine.data.timeframes import format_timeframe, timeframe_ns, to_utc_timestamp
from core_engine.errors import ConfigError, StoreError

__all__ = ["IngestReport", "ParquetStore"]

_SYMBOL_KEY = b"core_engine.symbol"
_TIMEFRAME_KEY = b"core_engine.timeframe"
_ROW_GROUP = 32_768
# Byte-stream-split floats and delta-coded timestamps compress prices well under zstd and
# decode about twice as fast as dictionary/plain pages (benchmarks/bench_store.py).
_WRITE_OPTIONS = dict(
    compression="zstd",
    use_dictionary=False,
    column_encoding={"timestamp": "DELTA_BINARY_PACKED",
                     **{c: "BYTE_STREAM_SPLIT" for c in CANDLE_COLUMNS[1:]}},
)
_SCHEMA = pa.schema(
    [pa.field("timestamp", pa.timestamp("ns", tz="UTC"), nullable=False)]
    + [pa.field(c, pa.float64(), nullable=False) for c in CANDLE_COLUMNS[1:]]
)


def _file_stem(symbol: str) -> str:
    if not symbol or symbol.startswith(".") or any(c in symbol for c in "\\\0"):
        raise ConfigError(f"Symbol {symbol!r} cannot be stored; expected a name such as 'BTC/USDT'.")
    return symbol.replace("/", "_").replace(":", "-")


@dataclass(frozen=True)
class IngestReport:
    """What :meth:`ParquetStore.ingest` fetched: per symbol, the ranges asked and rows added."""

    timeframe: str
    fetched: dict[str, list[tuple[pd.Timestamp, pd.Timestamp, int]]] = field(default_factory=dict)

    @property
    def rows_added(self) -> int:
        return sum(n for ranges in self.fetched.values() for _, _, n in ranges)

    def __str__(self) -> str:
        lines = [f"ingest {self.timeframe}: {self.rows_added:,} candles fetched"]
        for symbol, ranges in self.fetched.items():
            if not ranges:
                lines.append(f"  {symbol}: up to date")
            for lo, hi, n in ranges:
                lines.append(f"  {symbol}: {lo:%Y-%m-%d %H:%M} .. {hi:%Y-%m-%d %H:%M} -> {n:,} candles")
        return "\n".join(lines)


class ParquetStore:
    """A directory of base candles, one Parquet file per (timeframe, symbol).

    Parameters
    ----------
    root : str or Path
        The directory; created on first write.

    Examples
    --------
    >>> import tempfile
    >>> store = ParquetStore(tempfile.mkdtemp())
    >>> store.symbols("5m")
    []
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ParquetStore({str(self.root)!r})"

    # ------------------------------------------------------------------ paths
    def path(self, symbol: str, timeframe: str) -> Path:
        """The file that holds ``symbol`` at ``timeframe`` (it may not exist yet)."""
        tf = format_timeframe(timeframe_ns(timeframe))
        return self.root / tf / f"{_file_stem(symbol)}.parquet"

    def timeframes(self) -> list[str]:
        """Timeframes with at least one stored symbol, shortest first."""
        if not self.root.is_dir():
            return []
        found = [p.name for p in self.root.iterdir() if p.is_dir() and any(p.glob("*.parquet"))]
        return sorted(found, key=lambda tf: timeframe_ns(tf))

    def symbols(self, timeframe: str = "5m") -> list[str]:
        """The symbols stored at ``timeframe``, sorted."""
        directory = self.root / format_timeframe(timeframe_ns(timeframe))
        if not directory.is_dir():
            return []
        out = []
        for path in sorted(directory.glob("*.parquet")):
            if path.name.startswith("."):
                continue
            meta = pq.read_schema(path).metadata or {}
            out.append(meta.get(_SYMBOL_KEY, path.stem.encode()).decode())
        return sorted(out)

    # ------------------------------------------------------------------ write
    @contextmanager
    def _locked(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.parent / f".{path.name}.lock"
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write(self, symbol: str, timeframe: str, candles: pd.DataFrame) -> int:
        """Upsert candles: merge with what is stored by timestamp, the new candle winning.

        Parameters
        ----------
        symbol : str
            E.g. ``"BTC/USDT"``.
        timeframe : str
            E.g. ``"5m"``; every timestamp must be on its grid.
        candles : pandas.DataFrame
            A valid candle frame (extra columns are not stored).

        Returns
        -------
        int
            The number of candles in the file after the write.

        Raises
        ------
        DataValidationError
            If ``candles`` is not a valid candle frame (nothing is written).
        StoreError
            If the file cannot be written.
        """
        validate_candles(candles, timeframe, symbol=symbol)
        path = self.path(symbol, timeframe)
        new = candles.loc[:, list(CANDLE_COLUMNS)]
        with self._locked(path):
            # Under the lock no other writer is mid-write on this file: any temp file left
            # beside it is debris from a writer that was killed, and is removed.
            for stale in path.parent.glob(f".{path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
            old = _table_to_frame(self._read_path(path, None, None)) if path.exists() else None
            if old is not None and len(old):
                merged = pd.concat([old, new], ignore_index=True)
                keep = ~merged["timestamp"].duplicated(keep="last").to_numpy()
                merged = merged.loc[keep].sort_values("timestamp", kind="stable").reset_index(drop=True)
            else:
                merged = new.reset_index(drop=True)
            self._atomic_write(path, merged, symbol, timeframe)
        return len(merged)

    def _atomic_write(self, path: Path, frame: pd.DataFrame, symbol: str, timeframe: str) -> None:
        table = pa.Table.from_pandas(frame, schema=_SCHEMA, preserve_index=False)
        table = table.replace_schema_metadata({
            _SYMBOL_KEY: symbol.encode(),
            _TIMEFRAME_KEY: format_timeframe(timeframe_ns(timeframe)).encode(),
        })
        tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
        try:
            pq.write_table(table, tmp, row_group_size=_ROW_GROUP, **_WRITE_OPTIONS)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"Could not write {path}: {exc}") from exc

    def delete(self, symbol: str, timeframe: str) -> bool:
        """Remove a stored series; return whether it existed."""
        path = self.path(symbol, timeframe)
        with self._locked(path):
            existed = path.exists()
            path.unlink(missing_ok=True)
        return existed

    # ------------------------------------------------------------------ read
    def _read_table(self, symbol: str, timeframe: str, start_ns: int | None,
                    end_ns: int | None) -> pa.Table:
        path = self.path(symbol, timeframe)
        if not path.exists():
            stored = self.symbols(timeframe)
            raise StoreError(
                f"{symbol} is not stored at {timeframe} in {self.root}; stored symbols: "
                f"{stored or 'none'}."
            )
        return self._read_path(path, start_ns, end_ns)

    @staticmethod
    def _read_path(path: Path, start_ns: int | None, end_ns: int | None) -> pa.Table:
        """Read a file, decoding only the row groups whose timestamp range meets the filter.

        The row groups are chosen from the min/max statistics in the footer (predicate
        push-down), then the edge rows are cut with one vectorised comparison.
        """
        try:
            parquet = pq.ParquetFile(path)
            if start_ns is None and end_ns is None:
                return parquet.read(columns=list(CANDLE_COLUMNS))
            lo = -(2**63) if start_ns is None else start_ns
            hi = 2**63 - 1 if end_ns is None else end_ns
            groups = []
            for g in range(parquet.metadata.num_row_groups):
                stats = parquet.metadata.row_group(g).column(0).statistics
                if stats is None or not stats.has_min_max:
                    groups.append(g)
                    continue
                g_min, g_max = pd.Timestamp(stats.min).value, pd.Timestamp(stats.max).value
                if g_max >= lo and g_min < hi:
                    groups.append(g)
            table = parquet.read_row_groups(groups, columns=list(CANDLE_COLUMNS))
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"Could not read {path}: {exc}") from exc
        ns = table.column("timestamp").to_numpy().view(np.int64)
        keep = (ns >= lo) & (ns < hi)
        return table if keep.all() else table.filter(pa.array(keep))

    def read(
        self,
        symbols: str | Iterable[str],
        timeframe: str = "5m",
        start=None,
        end=None,
    ) -> dict[str, pd.DataFrame]:
        """Read candles with ``start <= timestamp < end`` for each symbol.

        The time filter is pushed down into Parquet, so only the row groups overlapping the
        range are decoded.

        Returns
        -------
        dict of str to candle frame
            In the order asked.

        Raises
        ------
        StoreError
            If a symbol is not stored at ``timeframe`` (the message lists what is).
        """
        if isinstance(symbols, str):
            symbols = [symbols]
        start_ns = None if start is None else to_utc_timestamp(start, name="start").value
        end_ns = None if end is None else to_utc_timestamp(end, name="end").value
        return {
            symbol: _table_to_frame(self._read_table(symbol, timeframe, start_ns, end_ns))
            for symbol in symbols
        }

    def read_one(self, symbol: str, timeframe: str = "5m", start=None, end=None) -> pd.DataFrame:
        """Read one symbol (see :meth:`read`)."""
        return self.read([symbol], timeframe, start, end)[symbol]

    def read_panel(self, symbols: Iterable[str] | None = None, timeframe: str = "5m",
                   start=None, end=None):
        """Read straight into a :class:`~core_engine.data.Panel` (fast path, no per-symbol frames)."""
        from core_engine.data.panel import FIELDS, Panel

        if symbols is None:
            symbols = self.symbols(timeframe)
        symbols = list(symbols)
        if not symbols:
            raise StoreError(f"No symbols stored at {timeframe} in {self.root}.")
        step = timeframe_ns(timeframe)
        start_ns = None if start is None else to_utc_timestamp(start, name="start").value
        end_ns = None if end is None else to_utc_timestamp(end, name="end").value
        tables = [self._read_table(symbol, timeframe, start_ns, end_ns) for symbol in symbols]
        stamps = [t.column("timestamp").to_numpy().view(np.int64) for t in tables]
        present = [ns for ns in stamps if ns.size]
        if not present:
            index = pd.DatetimeIndex([], tz="UTC")
            empty = np.empty((0, len(symbols)))
            return Panel(index, tuple(symbols), timeframe, empty, empty, empty, empty, empty)
        first = min(ns[0] for ns in present) // step * step
        n_times = int((max(ns[-1] for ns in present) - first) // step + 1)
        arrays = [np.empty((n_times, len(symbols)), order="F") for _ in FIELDS]
        for j, (ns, table) in enumerate(zip(stamps, tables, strict=True)):
            _fill_column(arrays, j, ns, table, first, step)
        index = pd.DatetimeIndex(first + np.arange(n_times, dtype=np.int64) * step, tz="UTC")
        return Panel(index, tuple(symbols), timeframe, *arrays)

    # ------------------------------------------------------------------ report
    def coverage(self, timeframe: str | None = None) -> pd.DataFrame:
        """One row per stored series: first/last candle, candles, missing candles, gaps."""
        rows = []
        for tf in [timeframe] if timeframe else self.timeframes():
            for symbol in self.symbols(tf):
                frame = self.read_one(symbol, tf)
                report = gap_report(frame, tf)
                rows.append({
                    "symbol": symbol,
                    "timeframe": format_timeframe(timeframe_ns(tf)),
                    "first": frame["timestamp"].iloc[0] if len(frame) else pd.NaT,
                    "last": frame["timestamp"].iloc[-1] if len(frame) else pd.NaT,
                    "candles": report.candles,
                    "missing": report.missing,
                    "gaps": report.count,
                    "longest_gap": report.longest,
                })
        columns = ["symbol", "timeframe", "first", "last", "candles", "missing", "gaps", "longest_gap"]
        return pd.DataFrame(rows, columns=columns)

    # ------------------------------------------------------------------ ingest
    def missing_ranges(self, symbol: str, timeframe: str, start, end) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The parts of ``[start, end)`` not covered by the stored span of ``symbol``.

        Only the head and the tail are refetched: gaps inside the stored span are exchange
        outages that a refetch would not fill (see :meth:`coverage` to list them).
        """
        step = timeframe_ns(timeframe)
        lo = to_utc_timestamp(start, name="start")
        hi = to_utc_timestamp(end, name="end")
        if hi <= lo:
            raise ConfigError(f"ingest needs start before end. Got start={lo}, end={hi}.")
        path = self.path(symbol, timeframe)
        if not path.exists():
            return [(lo, hi)]
        stamps = pq.read_table(path, columns=["timestamp"]).column("timestamp").to_numpy().view(np.int64)
        if stamps.size == 0:
            return [(lo, hi)]
        first = pd.Timestamp(int(stamps[0]), tz="UTC")
        after_last = pd.Timestamp(int(stamps[-1]) + step, tz="UTC")
        ranges = []
        if lo < first:
            ranges.append((lo, min(first, hi)))
        if hi > after_last:
            ranges.append((max(after_last, lo), hi))
        return ranges

    def ingest(self, provider, symbols: str | Iterable[str], timeframe: str, start, end, *,
               progress: bool | None = None) -> IngestReport:
        """Fetch from ``provider`` only the candles of ``[start, end)`` not yet stored, and write them.

        Parameters
        ----------
        provider : object with ``fetch_ohlcv(symbol, timeframe, start, end)``
        symbols : str or iterable of str
        timeframe : str
        start, end : time
            UTC; ``end`` is exclusive.
        progress : bool, optional
            Show a progress bar over the symbols; by default only in a notebook or an
            interactive terminal, never in CI (see :func:`core_engine.progress.progress_bar`).

        Returns
        -------
        IngestReport
        """
        from core_engine.progress import progress_bar

        if isinstance(symbols, str):
            symbols = [symbols]
        report = IngestReport(format_timeframe(timeframe_ns(timeframe)))
        for symbol in progress_bar(list(symbols), desc=f"ingest {timeframe}", enabled=progress):
            report.fetched[symbol] = []
            for lo, hi in self.missing_ranges(symbol, timeframe, start, end):
                candles = provider.fetch_ohlcv(symbol, timeframe, lo, hi)
                if len(candles):
                    ts = candles["timestamp"]
                    outside = (ts < lo) | (ts >= hi)
                    if outside.any():
                        warnings.warn(
                            f"{type(provider).__name__} returned {int(outside.sum())} candles of "
                            f"{symbol} outside [{lo}, {hi}); they were not stored.",
                            stacklevel=2,
                        )
                        candles = candles.loc[~outside.to_numpy()].reset_index(drop=True)
                if len(candles):
                    self.write(symbol, timeframe, candles)
                report.fetched[symbol].append((lo, hi, len(candles)))
        return report


def _table_to_frame(table: pa.Table) -> pd.DataFrame:
    if table.num_rows == 0:
        return empty_candles()
    data = {"timestamp": pd.DatetimeIndex(table.column("timestamp").to_numpy().view("datetime64[ns]"), tz="UTC")}
    for column in CANDLE_COLUMNS[1:]:
        data[column] = table.column(column).to_numpy()
    return pd.DataFrame(data)


def _fill_column(arrays: list[np.ndarray], j: int, ns: np.ndarray, table: pa.Table,
                 first: int, step: int) -> None:
    """Copy one symbol's table into column ``j`` of the panel arrays, NaN where no candle.

    Without holes the Parquet pages are copied chunk by chunk straight into the column;
    with holes the rows are scattered by their grid position.
    """
    from core_engine.data.panel import FIELDS

    n_times = arrays[0].shape[0]
    row0 = int((ns[0] - first) // step) if ns.size else 0
    contiguous = ns.size > 0 and int((ns[-1] - ns[0]) // step) + 1 == ns.size
    if not (contiguous and row0 == 0 and ns.size == n_times):
        for values in arrays:
            values[:, j] = np.nan
    if ns.size == 0:
        return
    for values, name in zip(arrays, FIELDS, strict=True):
        if contiguous:
            row = row0
            for chunk in table.column(name).chunks:
                size = len(chunk)
                values[row:row + size, j] = chunk.to_numpy(zero_copy_only=False)
                row += size
        else:
            values[(ns - first) // step, j] = table.column(name).to_numpy()
