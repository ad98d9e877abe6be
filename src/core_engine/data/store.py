"""ParquetStore: one directory, one Parquet file per (timeframe, symbol), base candles only.

Layout: ``<root>/<timeframe>/<stem>.<hash>.parquet``: a readable stem of the symbol and a
hash of the exact symbol (``BTC/USDT`` → ``BTC_USDT.11b4defb0e96.parquet``), so two symbols
never share a file, not even on a case-insensitive disk; the exact symbol is kept in the
file's key/value metadata and checked on every read, write and delete (see
:mod:`core_engine.data._store_files`, which also keeps stores of the older layout readable).

Writes are upserts (merge on timestamp, the newest candle wins), written to a temporary file
in the same directory, flushed to disk and atomically renamed over the old file, so a process
killed mid-write leaves the previous file readable and intact. Reads push the time filter
down into Parquet (row-group statistics), so a narrow date range reads only the row groups
it needs. Indicators are never stored: only candles that pass
:func:`~core_engine.data.validate_candles`.

The store does not trust its files: a file it did not write, or one damaged since, is
checked on read (footer first, then the rows in one numba pass) and reported by name with
the way to remove and re-ingest it. Store-wide operations (:meth:`ParquetStore.symbols`,
:meth:`~ParquetStore.coverage`, :meth:`~ParquetStore.ingest`,
:meth:`~ParquetStore.read_panel` of every symbol) leave a broken file out with a
:class:`StoreWarning` and keep serving the others; asking for that file by its symbol is a
:class:`~core_engine.errors.StoreError`.
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

from core_engine._config import keyword_checked
from core_engine._validate import check_path, check_symbols
from core_engine.data._kernels import fill_column
from core_engine.data._store_files import (
    SUFFIX,
    BrokenFile,
    BrokenStoreFileError,
    StoreWarning,
    check_symbol,
    file_name,
    footer_problem,
    frame_from_table,
    legacy_name,
    read_checked_table,
    recorded,
    tf_folder,
)
from core_engine.data.candles import CANDLE_COLUMNS, gap_report, timestamps_ns, validate_candles
from core_engine.data.panel import FIELDS, Panel, check_grid
from core_engine.data.timeframes import timeframe_ns, to_utc_timestamp
from core_engine.errors import ConfigError, StoreError

__all__ = ["BrokenFile", "IngestReport", "ParquetStore", "StoreWarning"]

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
_NS_MIN, _NS_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max
_COVERAGE_COLUMNS = ["symbol", "timeframe", "first", "last", "candles", "missing", "gaps",
                     "longest_gap", "discontinuities", "status"]


def _warn(broken: BrokenFile) -> None:
    warnings.warn(str(broken), StoreWarning, stacklevel=3)


@keyword_checked
@dataclass(frozen=True)
class IngestReport:
    """What :meth:`ParquetStore.ingest` fetched: per symbol, the ranges asked and rows added.

    ``skipped`` maps each symbol that was not ingested because its stored file is broken to
    the message naming the file and the fix.
    """

    timeframe: str
    fetched: dict[str, list[tuple[pd.Timestamp, pd.Timestamp, int]]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def rows_added(self) -> int:
        return sum(n for ranges in self.fetched.values() for _, _, n in ranges)

    def __str__(self) -> str:
        lines = [f"ingest {self.timeframe}: {self.rows_added:,} candles fetched"]
        for symbol, ranges in self.fetched.items():
            if symbol in self.skipped:
                lines.append(f"  {symbol}: skipped: {self.skipped[symbol]}")
                continue
            if not ranges:
                lines.append(f"  {symbol}: up to date")
            for lo, hi, n in ranges:
                lines.append(f"  {symbol}: {lo:%Y-%m-%d %H:%M} .. {hi:%Y-%m-%d %H:%M} -> {n:,} candles")
        return "\n".join(lines)


@keyword_checked
class ParquetStore:
    """A directory of base candles, one Parquet file per (timeframe, symbol).

    Parameters
    ----------
    root : str or Path
        The directory; created on first write.

    Raises
    ------
    StoreError
        If ``root`` is not a path (``None``, a number), is empty, holds a NUL byte or names an
        existing file rather than a folder.

    Examples
    --------
    >>> import tempfile
    >>> store = ParquetStore(tempfile.mkdtemp())
    >>> store.symbols("5m")
    []
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = check_path(root, "root", "ParquetStore", kind="dir", error=StoreError)

    def __repr__(self) -> str:
        return f"ParquetStore({str(self.root)!r})"

    # ------------------------------------------------------------------ paths
    def path(self, symbol: str, timeframe: str) -> Path:
        """The file that holds ``symbol`` at ``timeframe`` (it may not exist yet)."""
        return self.root / tf_folder(timeframe) / file_name(symbol)

    def _locate(self, symbol: str, tf: str) -> Path | None:
        """The existing file of ``symbol``: its own, else one of the older layout that records
        ``symbol`` (or whose footer is unreadable, so that the error names it)."""
        path = self.path(symbol, tf)
        if path.exists():
            return path
        old = path.parent / legacy_name(symbol)
        if not old.is_file():
            return None
        try:
            owner = recorded(pq.read_schema(old).metadata)[0]
        except (OSError, pa.ArrowException):
            return old
        return old if owner == symbol else None

    def timeframes(self) -> list[str]:
        """Timeframes with at least one stored file, shortest first (other folders ignored)."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            try:
                ok = folder.is_dir() and tf_folder(folder.name) == folder.name
            except ConfigError:
                continue
            if ok and any(not p.name.startswith(".") for p in folder.glob(f"*{SUFFIX}")):
                found.append(folder.name)
        return sorted(found, key=timeframe_ns)

    def _scan(self, tf: str) -> tuple[dict[str, Path], list[BrokenFile]]:
        """Every file of one timeframe folder: the servable ones by symbol, and the broken.

        Only footers are read (schema, metadata, statistics); rows are checked on read.
        """
        directory = self.root / tf
        files: dict[str, Path] = {}
        legacy: dict[str, Path] = {}
        broken: list[BrokenFile] = []
        if not directory.is_dir():
            return files, broken
        for path in sorted(directory.glob(f"*{SUFFIX}")):
            if path.name.startswith("."):
                continue
            try:
                with pq.ParquetFile(path) as parquet:
                    symbol = recorded(parquet.schema_arrow.metadata)[0]
                    problem = footer_problem(parquet, None, tf)
            except (OSError, pa.ArrowException) as exc:
                broken.append(BrokenFile(path, tf, None, f"cannot be read as Parquet ({exc})"))
                continue
            if problem or symbol is None:
                broken.append(BrokenFile(path, tf, symbol, problem or "has no symbol"))
            elif path.name == file_name(symbol):
                files[symbol] = path
            elif path.name == legacy_name(symbol):
                legacy[symbol] = path
            else:
                broken.append(BrokenFile(path, tf, symbol, (
                    f"records the symbol {symbol!r}, whose file is {file_name(symbol)} (a file "
                    "copied or renamed by hand)")))
        for symbol, path in legacy.items():
            if symbol in files:
                broken.append(BrokenFile(path, tf, symbol, (
                    f"is an older copy of {symbol}, superseded by {files[symbol].name}")))
            else:
                files[symbol] = path
        return files, broken

    def symbols(self, timeframe: str = "5m") -> list[str]:
        """The symbols stored at ``timeframe``, sorted.

        A file that cannot be served (not Parquet, not written by this store, wrong schema)
        is left out with a :class:`StoreWarning` naming it; see :meth:`broken`.
        """
        files, broken = self._scan(tf_folder(timeframe))
        for item in broken:
            _warn(item)
        return sorted(files)

    def broken(self, timeframe: str | None = None) -> list[BrokenFile]:
        """The files whose footer shows they cannot be served (all timeframes by default).

        Rows are not read: a file whose rows break the candle contract is found when it is
        read (and listed by :meth:`coverage`).
        """
        tfs = [tf_folder(timeframe)] if timeframe else self.timeframes()
        return [item for tf in tfs for item in self._scan(tf)[1]]

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
            If the file cannot be written, or the stored file is broken or records another
            symbol (nothing is written; the message names the file).
        """
        check_symbol(symbol)
        tf = tf_folder(timeframe)
        validate_candles(candles, tf, symbol=symbol)
        path = self.path(symbol, tf)
        new = candles.loc[:, list(CANDLE_COLUMNS)]
        with self._locked(path):
            # Under the lock no other writer is mid-write on this file: any temp file left
            # beside it is debris from a writer that was killed, and is removed.
            for stale in path.parent.glob(f".{path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
            source = self._locate(symbol, tf)
            if source is not None:
                table = read_checked_table(source, symbol, tf, None, None)
                old = frame_from_table(table, source, symbol, tf)
                merged = pd.concat([old, new], ignore_index=True)
                keep = ~merged["timestamp"].duplicated(keep="last").to_numpy()
                merged = merged.loc[keep].sort_values("timestamp", kind="stable").reset_index(drop=True)
            else:
                merged = new.reset_index(drop=True)
            self._atomic_write(path, merged, symbol, tf)
            if source is not None and source != path:
                source.unlink(missing_ok=True)  # moved from the older layout to its own name
        return len(merged)

    def _atomic_write(self, path: Path, frame: pd.DataFrame, symbol: str, timeframe: str) -> None:
        ns = timestamps_ns(frame)  # any datetime unit and UTC alias -> ns UTC
        columns = [pa.array(ns, type=pa.int64()).cast(_SCHEMA.field("timestamp").type)]
        columns += [pa.array(frame[c].to_numpy(dtype=np.float64)) for c in CANDLE_COLUMNS[1:]]
        table = pa.Table.from_arrays(columns, schema=_SCHEMA).replace_schema_metadata({
            b"core_engine.symbol": symbol.encode(),
            b"core_engine.timeframe": timeframe.encode(),
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
        """Remove a stored series; return whether it existed.

        A damaged file of ``symbol`` is removed too (that is how to clear it before
        re-ingesting).

        Raises
        ------
        StoreError
            If the file at ``symbol``'s name records another symbol (nothing is removed).
        """
        check_symbol(symbol)
        tf = tf_folder(timeframe)
        path = self.path(symbol, tf)
        with self._locked(path):
            existed = False
            for candidate in (path, self._locate(symbol, tf)):
                if candidate is None or not candidate.exists():
                    continue
                try:
                    owner = recorded(pq.read_schema(candidate).metadata)[0]
                except (OSError, pa.ArrowException):
                    owner = None  # unreadable: its name is the symbol's, so it is the symbol's
                if owner is not None and owner != symbol:
                    raise StoreError(
                        f"Store file {candidate} records the symbol {owner!r}, not {symbol!r}; "
                        f"it was not removed. Delete it by hand if it is not {owner!r}'s."
                    )
                candidate.unlink()
                existed = True
        return existed

    # ------------------------------------------------------------------ read
    def _read_table(self, symbol: str, tf: str, start_ns: int | None,
                    end_ns: int | None) -> tuple[Path, pa.Table]:
        check_symbol(symbol)
        path = self._locate(symbol, tf)
        if path is None:
            stored = sorted(self._scan(tf)[0])
            raise StoreError(
                f"{symbol} is not stored at {tf} in {self.root}; stored symbols: "
                f"{stored or 'none'}."
            )
        return path, read_checked_table(path, symbol, tf, start_ns, end_ns)

    @staticmethod
    def _bounds(start, end) -> tuple[int | None, int | None]:
        return (None if start is None else to_utc_timestamp(start, name="start").value,
                None if end is None else to_utc_timestamp(end, name="end").value)

    def read(
        self,
        symbols: str | Iterable[str],
        timeframe: str = "5m",
        start=None,
        end=None,
    ) -> dict[str, pd.DataFrame]:
        """Read candles with ``start <= timestamp < end`` for each symbol.

        The time filter is pushed down into Parquet, so only the row groups overlapping the
        range are decoded. Every file is checked (see the module notes).

        Returns
        -------
        dict of str to candle frame
            In the order asked.

        Raises
        ------
        StoreError
            If a symbol is not stored at ``timeframe`` (the message lists what is), or its
            file is broken (the message names it and says how to remove and re-ingest it).
        """
        symbols = check_symbols(symbols, "symbols", "ParquetStore.read")
        tf = tf_folder(timeframe)
        start_ns, end_ns = self._bounds(start, end)
        out = {}
        for symbol in symbols:
            path, table = self._read_table(symbol, tf, start_ns, end_ns)
            out[symbol] = frame_from_table(table, path, symbol, tf)
        return out

    def read_one(self, symbol: str, timeframe: str = "5m", start=None, end=None) -> pd.DataFrame:
        """Read one symbol (see :meth:`read`)."""
        return self.read([symbol], timeframe, start, end)[symbol]

    def read_panel(self, symbols: Iterable[str] | None = None, timeframe: str = "5m",
                   start=None, end=None) -> Panel:
        """Read straight into a :class:`~core_engine.data.Panel` (no per-symbol frames).

        Each file's rows are checked against the candle contract while they are copied into
        the panel (one numba pass). With ``symbols=None`` every stored symbol is read and a
        broken file is left out with a :class:`StoreWarning`; a symbol asked for by name
        whose file is broken is a :class:`~core_engine.errors.StoreError`.
        """
        tf = tf_folder(timeframe)
        explicit = symbols is not None
        if symbols is None:
            files, broken = self._scan(tf)
            for item in broken:
                _warn(item)
            names = sorted(files)
        else:
            names = [symbols] if isinstance(symbols, str) else list(symbols)
        if not names:
            raise StoreError(f"No symbols stored at {tf} in {self.root}.")
        start_ns, end_ns = self._bounds(start, end)
        tables: list[tuple[str, Path, pa.Table]] = []
        for symbol in names:
            try:
                tables.append((symbol, *self._read_table(symbol, tf, start_ns, end_ns)))
            except BrokenStoreFileError as exc:
                if explicit:
                    raise
                _warn(exc.file)
        while True:
            if not tables:
                raise StoreError(f"No readable symbols at {tf} in {self.root}: every stored "
                                 "file is broken (see the warnings).")
            try:
                return _panel_from_tables(tables, tf)
            except BrokenStoreFileError as exc:
                if explicit:
                    raise
                _warn(exc.file)
                tables = [item for item in tables if item[1] != exc.file.path]

    # ------------------------------------------------------------------ report
    def coverage(self, timeframe: str | None = None) -> pd.DataFrame:
        """One row per stored file: first/last candle, candles, missing candles, gaps, price
        discontinuities (see :func:`~core_engine.data.gap_report`) and a ``status``.

        ``status`` is ``"ok"``, or ``"broken: <why>"`` for a file that cannot be served (it is
        reported with a :class:`StoreWarning` naming it, and its counts are empty).
        """
        rows = []
        for tf in [tf_folder(timeframe)] if timeframe else self.timeframes():
            files, broken = self._scan(tf)
            for symbol, path in sorted(files.items()):
                try:
                    frame = frame_from_table(read_checked_table(path, symbol, tf, None, None),
                                             path, symbol, tf)
                except BrokenStoreFileError as exc:
                    broken.append(exc.file)
                    continue
                report = gap_report(frame, tf)
                rows.append({
                    "symbol": symbol, "timeframe": tf,
                    "first": frame["timestamp"].iloc[0] if len(frame) else pd.NaT,
                    "last": frame["timestamp"].iloc[-1] if len(frame) else pd.NaT,
                    "candles": report.candles, "missing": report.missing, "gaps": report.count,
                    "longest_gap": report.longest,
                    "discontinuities": len(report.discontinuities), "status": "ok",
                })
            for item in broken:
                _warn(item)
                rows.append({"symbol": item.symbol or item.path.name, "timeframe": tf,
                             "first": pd.NaT, "last": pd.NaT,
                             "status": f"broken: {item.path.name} {item.reason}"})
        out = pd.DataFrame(rows, columns=_COVERAGE_COLUMNS)
        counts = ["candles", "missing", "gaps", "longest_gap", "discontinuities"]
        out[counts] = out[counts].astype("Int64")
        for column in ("first", "last"):
            out[column] = pd.to_datetime(out[column], utc=True)
        return out

    # ------------------------------------------------------------------ ingest
    def missing_ranges(self, symbol: str, timeframe: str, start,
                       end) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The parts of ``[start, end)`` not covered by the stored span of ``symbol``.

        Only the head and the tail are refetched: gaps inside the stored span are exchange
        outages that a refetch would not fill (see :meth:`coverage` to list them).

        Raises
        ------
        StoreError
            If the stored file of ``symbol`` is broken (the message names it).
        """
        step = timeframe_ns(timeframe)
        lo = to_utc_timestamp(start, name="start")
        hi = to_utc_timestamp(end, name="end")
        if hi <= lo:
            raise ConfigError(f"ingest needs start before end. Got start={lo}, end={hi}.")
        tf = tf_folder(timeframe)
        path = self._locate(check_symbol(symbol), tf)
        if path is None:
            return [(lo, hi)]
        stored = frame_from_table(read_checked_table(path, symbol, tf, None, None), path, symbol, tf)
        if stored.empty:
            return [(lo, hi)]
        stamps = timestamps_ns(stored)
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
        report = IngestReport(tf_folder(timeframe))
        for symbol in progress_bar(list(symbols), desc=f"ingest {timeframe}", enabled=progress):
            report.fetched[symbol] = []
            try:
                self._ingest_one(provider, symbol, timeframe, start, end, report)
            except BrokenStoreFileError as exc:
                _warn(exc.file)
                report.skipped[symbol] = str(exc)
        return report

    def _ingest_one(self, provider, symbol: str, timeframe: str, start, end,
                    report: IngestReport) -> None:
        """Fetch and write the missing ranges of one symbol into ``report``."""
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


def _panel_from_tables(tables: list[tuple[str, Path, pa.Table]], tf: str) -> Panel:
    """Copy checked store tables into a Panel, checking every row on the way (one pass)."""
    step = timeframe_ns(tf)
    symbols = tuple(symbol for symbol, _, _ in tables)
    stamps = [table.column("timestamp").to_numpy().view(np.int64) for _, _, table in tables]

    def ensure_sorted(j: int) -> None:
        ns = stamps[j]
        if ns.size > 1 and not bool((np.diff(ns) > 0).all()):
            symbol, path, table = tables[j]
            frame_from_table(table, path, symbol, tf)  # raises, naming the file and the row

    first, n_times = check_grid(stamps, symbols, step, "ParquetStore.read_panel", ensure_sorted)
    arrays = {name: np.empty((n_times, len(symbols)), order="F") for name in FIELDS}
    for j, (symbol, path, table) in enumerate(tables):
        out_o, out_h, out_l, out_c, out_v = (arrays[name][:, j] for name in FIELDS)
        last_row = -1
        for batch in table.to_batches():
            ns = batch.column(0).to_numpy().view(np.int64)
            o, h, lo, c, v = (batch.column(k).to_numpy() for k in range(1, 6))
            fault, _, last_row = fill_column(ns, o, h, lo, c, v, out_o, out_h, out_l, out_c, out_v,
                                             first, step, _NS_MIN, _NS_MAX, True, last_row)
            if fault:
                frame_from_table(table, path, symbol, tf)  # raises, naming the file and the row
                raise BrokenFile(path, tf, symbol, "breaks the candle contract").error()
        for target in (out_o, out_h, out_l, out_c, out_v):
            target[last_row + 1:] = np.nan
    index = pd.DatetimeIndex(first + np.arange(n_times, dtype=np.int64) * step, tz="UTC")
    return Panel._trusted(index, symbols, tf, **arrays)
