"""Candles from local files: CSV, Parquet, Feather and freqtrade-style JSON.

One file per (symbol, timeframe), found in a directory by a name pattern
(``"{base}_{quote}-{timeframe}.{ext}"``, freqtrade's layout and the shared data's), or one
file given directly. Files are read strictly: a file whose rows break the candle contract is
an error naming the file and the row, never repaired behind the user's back (use
:func:`core_engine.data.candles.repair_candles` explicitly).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import check_mapping, check_path
from core_engine.data.candles import CANDLE_COLUMNS, validate_candles
from core_engine.data.providers.base import Provider, did_you_mean, resolve_range, slice_range
from core_engine.data.timeframes import format_timeframe, timeframe_ns
from core_engine.errors import ConfigError, DataValidationError

__all__ = ["FileProvider", "read_candle_file"]

EXTENSIONS = ("parquet", "feather", "csv", "json")
TIMESTAMP_UNITS = ("auto", "ms", "s", "iso")
_TS_DTYPE = pd.DatetimeTZDtype("ns", "UTC")
# pandas < 3 parses floats with a fast parser that can be 1 ulp off; files must read back
# exactly. pandas 3 parses exactly by default and deprecates the option.
_CSV_EXACT = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
_TIMESTAMP_ALIASES = ("timestamp", "date", "datetime", "time", "open_time", "opentime")


def _read_raw(path: Path) -> pd.DataFrame:
    ext = path.suffix.lower().lstrip(".")
    if ext == "parquet":
        return pd.read_parquet(path)
    if ext == "feather":
        return pd.read_feather(path)
    if ext == "csv":
        return pd.read_csv(path, **_CSV_EXACT)
    if ext == "json":
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
        if isinstance(payload, list) and payload and isinstance(payload[0], list):
            return pd.DataFrame([row[:6] for row in payload], columns=list(CANDLE_COLUMNS))
        if isinstance(payload, list):
            return pd.DataFrame(payload, columns=None if payload else list(CANDLE_COLUMNS))
        if isinstance(payload, dict):
            return pd.DataFrame(payload)
        raise DataValidationError(
            f"File {path} must hold a JSON list of [timestamp, open, high, low, close, volume] "
            f"rows or of records. Got {type(payload).__name__}."
        )
    raise ConfigError(
        f"File {path} has an unsupported extension {ext!r}; expected one of {list(EXTENSIONS)}."
    )


def _rename(frame: pd.DataFrame, columns: Mapping[str, str] | None, path: Path) -> pd.DataFrame:
    mapping = dict(columns or {})
    unknown = [c for c in mapping if c not in frame.columns]
    if unknown:
        raise ConfigError(
            f"The 'columns' mapping names {unknown}, which file {path} does not have. "
            f"It has {list(frame.columns)}.{did_you_mean(unknown[0], map(str, frame.columns))}"
        )
    frame = frame.rename(columns=mapping)
    taken = set(frame.columns)
    renames = {}
    for column in frame.columns:
        lower = str(column).strip().lower()
        target = "timestamp" if lower in _TIMESTAMP_ALIASES else lower
        if target in CANDLE_COLUMNS and target not in taken and column != target:
            renames[column] = target
            taken.add(target)
    frame = frame.rename(columns=renames)
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"File {path} is missing the column(s) {missing}; it has {list(frame.columns)}. "
            "Pass columns={'<file column>': '<candle column>'} to map them."
        )
    return frame[list(CANDLE_COLUMNS)]


def _epoch_unit(values: np.ndarray) -> str:
    magnitude = float(np.nanmax(np.abs(values))) if values.size else 0.0
    if magnitude < 1e11:
        return "s"
    if magnitude < 1e14:
        return "ms"
    if magnitude < 1e17:
        return "us"
    return "ns"


def _parse_timestamps(column: pd.Series, unit: str, path: Path | Traversable) -> pd.Series:
    """Read the timestamp column as ``datetime64[ns, UTC]``; naive values are UTC."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert("UTC").astype(_TS_DTYPE)
    if pd.api.types.is_datetime64_dtype(column.dtype):
        return column.dt.tz_localize("UTC").astype(_TS_DTYPE)
    numeric = pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)
    if unit == "iso" or (unit == "auto" and not numeric):
        if numeric:
            raise DataValidationError(
                f"File {path}: timestamp_unit='iso' needs text timestamps, but the column holds "
                f"numbers (first {column.iloc[0]!r}). Use timestamp_unit='ms' or 's'."
            )
        parsed = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
        bad = parsed.isna() & column.notna()
        if bad.any() or column.isna().any():
            row = int(np.flatnonzero((bad | column.isna()).to_numpy())[0])
            raise DataValidationError(
                f"File {path}, row {row:,}: timestamp {column.iloc[row]!r} is not an ISO time "
                "such as '2021-01-01 00:05:00+00:00'."
            )
        return parsed.astype(_TS_DTYPE)
    if not numeric:
        raise DataValidationError(
            f"File {path}: timestamp_unit={unit!r} needs numeric epoch timestamps, but the column "
            f"holds {column.dtype} (first {column.iloc[0]!r})."
        )
    values = column.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values))[0])
        raise DataValidationError(f"File {path}, row {row:,}: timestamp is missing ({values[row]}).")
    chosen = _epoch_unit(values) if unit == "auto" else unit
    return pd.Series(pd.to_datetime(column.to_numpy(), unit=chosen, utc=True), index=column.index).astype(_TS_DTYPE)


def read_candle_file(
    path: str | os.PathLike,
    timeframe: str | None = None,
    *,
    symbol: str | None = None,
    columns: Mapping[str, str] | None = None,
    timestamp_unit: str = "auto",
) -> pd.DataFrame:
    """Read one candle file into a validated candle frame (whole file).

    Parameters
    ----------
    path : path-like
        A ``.parquet``, ``.feather``, ``.csv`` or ``.json`` file. JSON is freqtrade's list of
        ``[ms, open, high, low, close, volume]`` rows, or a list of records.
    timeframe : str, optional
        If given, timestamps must lie on its grid.
    symbol : str, optional
        Named in error messages.
    columns : mapping, optional
        File column -> candle column, e.g. ``{"date": "timestamp", "Open": "open"}``. Columns
        named like the candle columns in any case, and ``date``/``time``/``datetime``/
        ``open_time`` for the timestamp, are found without a mapping. Other columns are dropped.
    timestamp_unit : {"auto", "ms", "s", "iso"}
        Epoch milliseconds, seconds, or ISO-8601 text. ``"auto"`` reads datetimes as they are,
        text as ISO, and numbers by magnitude (below 1e11 seconds, below 1e14 milliseconds,
        then micro- and nanoseconds). Naive times are read as UTC.

    Raises
    ------
    DataValidationError
        Naming the file and the first bad row (0-based data row, header not counted).
    ConfigError
        Unknown extension, unit or mapped column.
    """
    path = check_path(path, "path", "read_candle_file", kind="file", must_exist=True)
    columns = check_mapping(columns, "columns", "read_candle_file",
                            expected="a dict of file column -> candle column")
    if not isinstance(timestamp_unit, str) or timestamp_unit not in TIMESTAMP_UNITS:
        raise ConfigError(
            f"The 'timestamp_unit' parameter must be one of {list(TIMESTAMP_UNITS)}. "
            f"Got {timestamp_unit!r}.{did_you_mean(str(timestamp_unit), TIMESTAMP_UNITS)}"
        )
    if not path.is_file():
        raise ConfigError(f"Candle file {path} does not exist.")
    frame = _rename(_read_raw(path), columns, path)
    out = pd.DataFrame({"timestamp": _parse_timestamps(frame["timestamp"], timestamp_unit, path)})
    for name in CANDLE_COLUMNS[1:]:
        values = frame[name]
        if values.dtype != np.float64:
            converted = pd.to_numeric(values, errors="coerce")
            bad = converted.isna() & values.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataValidationError(
                    f"File {path}, row {row:,}: {name} {values.iloc[row]!r} is not a number."
                )
            values = converted.astype(np.float64)
        out[name] = values.to_numpy(dtype=np.float64)
    try:
        validate_candles(out, timeframe, symbol=symbol)
    except DataValidationError as exc:
        raise DataValidationError(
            f"File {path} (rows counted from 0, header not counted): {exc}"
        ) from exc
    return out


def _pattern_regex(pattern: str) -> re.Pattern:
    parts = re.split(r"(\{base\}|\{quote\}|\{timeframe\}|\{ext\})", pattern)
    groups = {"{base}": r"(?P<base>[A-Za-z0-9]+)", "{quote}": r"(?P<quote>[A-Za-z0-9]+)",
              "{timeframe}": r"(?P<timeframe>\d+[a-zA-Z]+)", "{ext}": r"(?P<ext>[a-z]+)"}
    return re.compile("^" + "".join(groups.get(p, re.escape(p)) for p in parts) + "$")


@keyword_checked
class FileProvider(Provider):
    """Candles from a directory of files, one per (symbol, timeframe), or from one file.

    Parameters
    ----------
    path_or_dir : path-like
        A directory searched with ``pattern``, or a single file (then any symbol name is
        accepted and served from that file).
    columns : mapping, optional
        File column -> candle column (see :func:`read_candle_file`).
    timestamp_unit : {"auto", "ms", "s", "iso"}
        How to read the time column (see :func:`read_candle_file`).
    pattern : str
        File name in the directory, with ``{base}``, ``{quote}``, ``{timeframe}``, ``{ext}``;
        ``ext`` is tried in the order parquet, feather, csv, json.

    Examples
    --------
    >>> from core_engine.data.providers import FileProvider
    >>> provider = FileProvider("user_data/data/binance")  # doctest: +SKIP
    >>> provider.fetch_ohlcv("BTC/USDT", "5m", "2021-01-01", "2021-02-01")  # doctest: +SKIP
    """

    name = "file"

    def __init__(
        self,
        path_or_dir: str | os.PathLike,
        *,
        columns: Mapping[str, str] | None = None,
        timestamp_unit: str = "auto",
        pattern: str = "{base}_{quote}-{timeframe}.{ext}",
    ) -> None:
        self.path = check_path(path_or_dir, "path_or_dir", "FileProvider", must_exist=True)
        columns = check_mapping(columns, "columns", "FileProvider",
                                expected="a dict of file column -> candle column")
        if not isinstance(pattern, str):
            raise ConfigError("The 'pattern' parameter of FileProvider must be a string such as "
                              f"'{{base}}_{{quote}}-{{timeframe}}.{{ext}}'. Got {pattern!r}.")
        if not isinstance(timestamp_unit, str) or timestamp_unit not in TIMESTAMP_UNITS:
            raise ConfigError(
                f"The 'timestamp_unit' parameter must be one of {list(TIMESTAMP_UNITS)}. "
                f"Got {timestamp_unit!r}.{did_you_mean(str(timestamp_unit), TIMESTAMP_UNITS)}"
            )
        if "{base}" not in pattern or "{timeframe}" not in pattern:
            raise ConfigError(
                "The 'pattern' parameter must contain {base} and {timeframe}, such as "
                f"'{{base}}_{{quote}}-{{timeframe}}.{{ext}}'. Got {pattern!r}."
            )
        self.columns = dict(columns) if columns else None
        self.timestamp_unit = timestamp_unit
        self.pattern = pattern
        self._regex = _pattern_regex(pattern)

    def __repr__(self) -> str:
        return f"FileProvider({str(self.path)!r})"

    def path_for(self, symbol: str, timeframe: str) -> Path:
        """The file that holds ``symbol`` at ``timeframe``.

        Raises
        ------
        ConfigError
            If no file matches; the message lists what the directory has.
        """
        if self.path.is_file():
            return self.path
        base, _, quote = symbol.partition("/")
        tf = format_timeframe(timeframe_ns(timeframe))
        candidates = []
        for ext in EXTENSIONS:
            name = self.pattern.format(base=base, quote=quote, timeframe=tf, ext=ext)
            candidates.append(name)
            if (self.path / name).is_file():
                return self.path / name
        available = self.symbols(tf)
        raise ConfigError(
            f"No candle file for {symbol} {tf} in {self.path}: looked for {candidates}. "
            f"Symbols with {tf} files here: {available}.{did_you_mean(symbol, available)}"
        )

    def symbols(self, timeframe: str | None = None) -> list[str]:
        """Symbols (``"BTC/USDT"``) that have a file in the directory, for one timeframe or any."""
        if self.path.is_file():
            raise NotImplementedError("A FileProvider over one file cannot list symbols.")
        wanted = None if timeframe is None else format_timeframe(timeframe_ns(timeframe))
        found = set()
        for entry in self.path.iterdir():
            match = self._regex.match(entry.name)
            if match is None or match.group("ext") not in EXTENSIONS:
                continue
            if wanted is not None and match.group("timeframe") != wanted:
                continue
            quote = match.groupdict().get("quote")
            found.add(f"{match.group('base')}/{quote}" if quote else match.group("base"))
        return sorted(found)

    def fetch_ohlcv(self, symbol: str, timeframe: str, start=None, end=None) -> pd.DataFrame:
        """Return the candles of ``symbol`` with open time in ``[start, end)``.

        ``start``/``end`` default to the whole file.

        Raises
        ------
        ConfigError
            No file for the symbol and timeframe, or a bad range.
        DataValidationError
            The file breaks the candle contract (the message names file and row).
        """
        far = resolve_range(timeframe, start, end, default_start="1970-01-01",
                            default_end="2262-01-01", who="FileProvider.fetch_ohlcv")
        frame = read_candle_file(
            self.path_for(symbol, far.timeframe), far.timeframe, symbol=symbol,
            columns=self.columns, timestamp_unit=self.timestamp_unit,
        )
        return slice_range(frame, None if start is None else far.start_ns,
                           None if end is None else far.end_ns)
