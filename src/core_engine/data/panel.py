"""The Panel: aligned time × symbol OHLCV arrays on one regular grid, the engine's input.

Each field (``open, high, low, close, volume``) is a 2-D float64 array of shape
``(n_times, n_symbols)`` in Fortran (column-major) order, so each symbol's series is one
contiguous column that a numba kernel reads at full speed. A missing candle is NaN in every
field. Row ``i`` is the candle opening at ``index[i]``; it becomes known at
``index[i] + timeframe`` (DESIGN.md §1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core_engine.data.candles import CANDLE_COLUMNS, validate_candles
from core_engine.data.timeframes import format_timeframe, timeframe_ns, to_utc_timestamp
from core_engine.errors import ConfigError, DataValidationError

__all__ = ["FIELDS", "Panel"]

FIELDS = ("open", "high", "low", "close", "volume")


def _as_field(values: np.ndarray) -> np.ndarray:
    return np.asfortranarray(values, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Panel:
    """Aligned OHLCV arrays for a universe of symbols on one regular time grid.

    Build one with :meth:`from_frames` or :meth:`from_store`; the constructor checks shapes.
    It does not copy arrays that are already float64 in Fortran order: the panel holds
    read-only views of them (the caller's arrays stay writeable, and share memory).

    Attributes
    ----------
    index : pandas.DatetimeIndex
        Candle open times, UTC, strictly increasing with a constant step of ``timeframe``.
    symbols : tuple of str
        Column labels.
    timeframe : str
        The grid step, e.g. ``"5m"``.
    open, high, low, close, volume : numpy.ndarray
        Float64 arrays of shape ``(len(index), len(symbols))``, NaN where a candle is missing.
    """

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    timeframe: str
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __post_init__(self) -> None:
        step = timeframe_ns(self.timeframe)
        object.__setattr__(self, "timeframe", format_timeframe(step))
        object.__setattr__(self, "symbols", tuple(str(s) for s in self.symbols))
        if not isinstance(self.index, pd.DatetimeIndex) or self.index.tz is None:
            raise DataValidationError("Panel.index must be a UTC pandas.DatetimeIndex.")
        index = self.index.tz_convert("UTC").as_unit("ns")
        object.__setattr__(self, "index", index)
        ns = index.asi8
        if ns.size > 1 and not np.all(np.diff(ns) == step):
            raise DataValidationError(
                f"Panel.index must be a regular {self.timeframe} grid without holes "
                "(missing candles are NaN rows, not missing index entries)."
            )
        if len(set(self.symbols)) != len(self.symbols):
            raise DataValidationError(f"Panel symbols must be unique. Got {list(self.symbols)}.")
        shape = (len(index), len(self.symbols))
        for name in FIELDS:
            # a view: the panel's read-only flag must not freeze the caller's own array
            values = _as_field(getattr(self, name)).view()
            if values.shape != shape:
                raise DataValidationError(
                    f"Panel field '{name}' has shape {values.shape}; expected {shape} "
                    "(times × symbols)."
                )
            values.flags.writeable = False
            object.__setattr__(self, name, values)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls,
        frames: Mapping[str, pd.DataFrame],
        timeframe: str | None = None,
        *,
        start=None,
        end=None,
        validate: bool = True,
    ) -> Panel:
        """Align one candle frame per symbol onto a common grid.

        Parameters
        ----------
        frames : mapping of symbol to candle frame
            Each a valid candle frame (see :func:`~core_engine.data.validate_candles`).
        timeframe : str, optional
            The grid step. Inferred as the smallest step between candles when omitted.
        start, end : time, optional
            Keep candles with ``start <= timestamp < end``.
        validate : bool
            Validate each frame first (default). Disable only for frames you validated.

        Raises
        ------
        DataValidationError
            If a frame is invalid (naming the symbol and row) or no frame has a candle.
        """
        if not frames:
            raise DataValidationError("Panel.from_frames needs at least one symbol. Got none.")
        if timeframe is None:
            timeframe = _infer_timeframe(frames)
        step = timeframe_ns(timeframe)
        if validate:
            for symbol, frame in frames.items():
                validate_candles(frame, timeframe, symbol=symbol)
        stamps = {s: f["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64) for s, f in frames.items()}
        lo_ns = None if start is None else to_utc_timestamp(start, name="start").value
        hi_ns = None if end is None else to_utc_timestamp(end, name="end").value
        firsts, lasts = [], []
        for ns in stamps.values():
            keep = _time_mask(ns, lo_ns, hi_ns)
            if keep.any():
                firsts.append(ns[keep][0])
                lasts.append(ns[keep][-1])
        symbols = tuple(frames)
        if not firsts:
            index = pd.DatetimeIndex([], tz="UTC").as_unit("ns")
            empty = np.empty((0, len(symbols)))
            return cls(index, symbols, timeframe, empty, empty, empty, empty, empty)
        first = min(firsts) // step * step
        n_times = int((max(lasts) - first) // step + 1)
        arrays = {name: np.full((n_times, len(symbols)), np.nan, order="F") for name in FIELDS}
        for j, (symbol, frame) in enumerate(frames.items()):
            ns = stamps[symbol]
            keep = _time_mask(ns, lo_ns, hi_ns)
            rows = (ns[keep] - first) // step
            for name in FIELDS:
                arrays[name][rows, j] = frame[name].to_numpy(dtype=np.float64)[keep]
        index = pd.DatetimeIndex(first + np.arange(n_times, dtype=np.int64) * step, tz="UTC")
        return cls(index, symbols, timeframe, **arrays)

    @classmethod
    def from_store(cls, store, symbols: Iterable[str] | None = None, timeframe: str = "5m",
                   start=None, end=None) -> Panel:
        """Read ``symbols`` (all stored ones when omitted) from a ParquetStore into a Panel.

        The store only holds validated candles, so they are not validated again.
        """
        return store.read_panel(symbols, timeframe, start=start, end=end)

    # ------------------------------------------------------------------ views
    @property
    def n_times(self) -> int:
        return len(self.index)

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def step_ns(self) -> int:
        """The grid step in nanoseconds."""
        return timeframe_ns(self.timeframe)

    @property
    def nbytes(self) -> int:
        """Bytes held by the five OHLCV arrays."""
        return sum(getattr(self, name).nbytes for name in FIELDS)

    @property
    def present(self) -> np.ndarray:
        """Boolean ``(n_times, n_symbols)`` mask of candles that exist."""
        return ~np.isnan(self.close)

    def field(self, name: str) -> np.ndarray:
        """Return the array of field ``name`` (one of ``open, high, low, close, volume``)."""
        if name not in FIELDS:
            raise ConfigError(f"Panel has no field {name!r}; expected one of {list(FIELDS)}.")
        return getattr(self, name)

    def column(self, symbol: str) -> int:
        """Return the column position of ``symbol``."""
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise ConfigError(
                f"Symbol {symbol!r} is not in this panel; it has {list(self.symbols)}."
            ) from None

    def frame(self, symbol: str, *, dropna: bool = True) -> pd.DataFrame:
        """Return one symbol as a candle frame (missing candles dropped unless ``dropna=False``)."""
        j = self.column(symbol)
        data = {"timestamp": self.index}
        data.update({name: getattr(self, name)[:, j] for name in FIELDS})
        out = pd.DataFrame(data)
        if dropna:
            out = out.loc[~np.isnan(out["close"].to_numpy())].reset_index(drop=True)
        return out

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """Return every symbol as a candle frame (missing candles dropped)."""
        return {symbol: self.frame(symbol) for symbol in self.symbols}

    def select(self, symbols: Iterable[str]) -> Panel:
        """Return a panel with only ``symbols``, in the given order."""
        cols = [self.column(s) for s in symbols]
        return self._replace(symbols=tuple(self.symbols[c] for c in cols),
                             **{n: getattr(self, n)[:, cols] for n in FIELDS})

    def slice_rows(self, start: int, stop: int) -> Panel:
        """Return rows ``start:stop`` of the grid."""
        return self._replace(index=self.index[start:stop],
                             **{n: getattr(self, n)[start:stop] for n in FIELDS})

    def loc_time(self, start=None, end=None) -> Panel:
        """Return the candles with ``start <= timestamp < end``."""
        ns = self.index.asi8
        lo = 0 if start is None else int(np.searchsorted(ns, to_utc_timestamp(start).value, "left"))
        hi = len(ns) if end is None else int(np.searchsorted(ns, to_utc_timestamp(end).value, "left"))
        return self.slice_rows(lo, hi)

    def known_at(self, t) -> Panel:
        """Return the candles known at time ``t``: those with ``timestamp + timeframe <= t``.

        This is the data a decision at ``t`` may use (DESIGN.md §1).
        """
        cutoff = to_utc_timestamp(t, name="t").value - self.step_ns
        n = int(np.searchsorted(self.index.asi8, cutoff, "right"))
        return self.slice_rows(0, n)

    def with_fields(self, **fields: np.ndarray) -> Panel:
        """Return a copy with some fields replaced (used to poison data in leakage tests)."""
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ConfigError(f"Unknown panel field(s) {sorted(unknown)}; expected {list(FIELDS)}.")
        return self._replace(**fields)

    def _replace(self, **changes) -> Panel:
        values = {n: getattr(self, n) for n in ("index", "symbols", "timeframe", *FIELDS)}
        values.update(changes)
        return Panel(**values)

    def fingerprint(self) -> str:
        """A SHA-256 hex digest of the grid, symbols and every value (identifies the data)."""
        digest = hashlib.sha256()
        digest.update(self.timeframe.encode())
        digest.update("\x1f".join(self.symbols).encode())
        digest.update(self.index.asi8.tobytes())
        for name in FIELDS:
            digest.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        if self.n_times:
            span = f"{self.index[0]:%Y-%m-%d %H:%M} .. {self.index[-1]:%Y-%m-%d %H:%M} UTC"
        else:
            span = "empty"
        missing = int(np.isnan(self.close).sum())
        return (
            f"Panel({self.n_symbols} symbols × {self.n_times:,} {self.timeframe} candles, "
            f"{span}, {missing:,} missing)"
        )


def _time_mask(ns: np.ndarray, lo_ns: int | None, hi_ns: int | None) -> np.ndarray:
    keep = np.ones(ns.shape, dtype=bool)
    if lo_ns is not None:
        keep &= ns >= lo_ns
    if hi_ns is not None:
        keep &= ns < hi_ns
    return keep


def _infer_timeframe(frames: Mapping[str, pd.DataFrame]) -> str:
    steps = []
    for frame in frames.values():
        if "timestamp" not in frame.columns:
            raise DataValidationError(f"Candles are missing the 'timestamp' column; expected {list(CANDLE_COLUMNS)}.")
        ns = frame["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        diffs = np.diff(ns)
        diffs = diffs[diffs > 0]
        if diffs.size:
            steps.append(int(diffs.min()))
    if not steps:
        raise DataValidationError(
            "Cannot infer the timeframe from frames with fewer than two candles; pass timeframe='5m'."
        )
    return format_timeframe(min(steps))
