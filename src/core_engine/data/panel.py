"""The Panel: aligned time × symbol OHLCV arrays on one regular grid, the engine's input.

Each field (``open, high, low, close, volume``) is a 2-D float64 array of shape
``(n_times, n_symbols)`` in Fortran (column-major) order, so each symbol's series is one
contiguous column that a numba kernel reads at full speed. A missing candle is NaN in every
field. Row ``i`` is the candle opening at ``index[i]``; it becomes known at
``index[i] + timeframe`` (DESIGN.md §1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine.data._kernels import all_candles_ok, close_jumps, fill_column
from core_engine.data.candles import (
    CANDLE_COLUMNS,
    DEFAULT_DISCONTINUITY_FACTOR,
    DISCONTINUITY_COLUMNS,
    candle_problem,
    check_candle_columns,
    check_factor,
    first_bad_row,
    read_only,
    read_only_ns,
    timestamps_ns,
    validate_candles,
)
from core_engine.data.timeframes import format_timeframe, timeframe_ns, to_utc_timestamp
from core_engine.errors import ConfigError, DataValidationError

__all__ = ["FIELDS", "Panel"]

FIELDS = ("open", "high", "low", "close", "volume")
_NS_MIN, _NS_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max
# A grid longer than this many rows is refused when one empty stretch takes most of it
# (a stray candle far from the others; see check_grid).
_SPARSE_MIN_ROWS = 100_000
_SPARSE_HOLE_SHARE = 0.9


def _as_field(values: np.ndarray) -> np.ndarray:
    return np.asfortranarray(values, dtype=np.float64)


def _when(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").strftime("%Y-%m-%d %H:%M UTC")


@keyword_checked
@dataclass(frozen=True, eq=False)
class Panel:
    """Aligned OHLCV arrays for a universe of symbols on one regular time grid.

    Build one with :meth:`from_frames` or :meth:`from_store`. The constructor checks the
    grid, the shapes and the candle contract of every cell (one numba pass): a candle is
    either missing (NaN in all five fields) or has finite positive prices, a finite
    non-negative volume and ``low <= open, close <= high``; anything else is a
    :class:`~core_engine.errors.DataValidationError` naming the symbol and the row. Panels
    derived from a panel (:meth:`select`, :meth:`slice_rows`, :meth:`loc_time`,
    :meth:`known_at`) are not checked again; :meth:`with_fields` checks only on request.
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
        self._normalise()
        self._check_contract()

    def _normalise(self) -> None:
        """Check the grid and the shapes; store read-only Fortran views of the fields."""
        step = timeframe_ns(self.timeframe)
        object.__setattr__(self, "timeframe", format_timeframe(step))
        if isinstance(self.symbols, str) or not isinstance(self.symbols, Iterable):
            raise DataValidationError(
                f"Panel.symbols must be a sequence of names. Got {type(self.symbols).__name__}."
            )
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
            try:
                # a view: the panel's read-only flag must not freeze the caller's own array
                values = _as_field(getattr(self, name)).view()
            except (TypeError, ValueError) as exc:
                raise DataValidationError(
                    f"Panel field '{name}' must be a numeric array of shape {shape}; it could "
                    f"not be read as float64 ({exc})."
                ) from exc
            if values.shape != shape:
                raise DataValidationError(
                    f"Panel field '{name}' has shape {values.shape}; expected {shape} "
                    "(times × symbols)."
                )
            values.flags.writeable = False
            object.__setattr__(self, name, values)

    def _check_contract(self) -> None:
        """Every candle is all-NaN (missing) or valid: one vectorised numba pass per symbol
        (the kernel fill_column uses, so a cold start compiles nothing more for it)."""
        if self.n_times == 0 or self.n_symbols == 0:
            return
        for j in range(self.n_symbols):
            o, h, lo, c, v = (getattr(self, name)[:, j] for name in FIELDS)
            if not all_candles_ok(o, h, lo, c, v, True):
                row = first_bad_row(np.empty(0, dtype=np.int64), o, h, lo, c, v, 0, True)
                raise DataValidationError(self._fault_text(row, j))

    def _fault_text(self, row: int, j: int) -> str:
        values = [float(getattr(self, name)[row, j]) for name in FIELDS]
        nan = [name for name, value in zip(FIELDS, values, strict=True) if np.isnan(value)]
        if nan:
            others = [name for name in FIELDS if name not in nan]
            problem = (f"is partly missing: {', '.join(nan)} NaN but {', '.join(others)} not (a "
                       "missing candle is NaN in all five fields)")
        else:
            problem = candle_problem(*values) or "breaks the candle contract"
        return (f"Panel candle of {self.symbols[j]} at row {row:,} "
                f"({_when(self.index.asi8[row])}) {problem}.")

    @classmethod
    def _trusted(cls, index: pd.DatetimeIndex, symbols: Iterable[str], timeframe: str,
                 **fields: np.ndarray) -> Panel:
        """A panel whose candles are known to be valid (derived from a checked panel or
        filled by a checking kernel): shapes are checked, the candle contract is not."""
        panel = object.__new__(cls)
        for name, value in (("index", index), ("symbols", symbols), ("timeframe", timeframe),
                            *fields.items()):
            object.__setattr__(panel, name, value)
        panel._normalise()
        return panel

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
            Check every candle kept against the candle contract and the grid (default; one
            numba pass that also fills the panel). Disable only for frames you validated:
            then only the columns and the order of the timestamps are checked.

        Raises
        ------
        DataValidationError
            If a frame is invalid (naming the symbol and row), no frame is given, or the
            grid would be mostly empty because of a stray candle far from the others (the
            message names the symbol and its span).

        Notes
        -----
        Price discontinuities are not errors here; list them with :meth:`discontinuities`.
        """
        if not isinstance(frames, Mapping):
            raise DataValidationError(
                "Panel.from_frames needs a mapping of symbol -> candle frame. "
                f"Got {type(frames).__name__}."
            )
        if not frames:
            raise DataValidationError("Panel.from_frames needs at least one symbol. Got none.")
        for symbol, frame in frames.items():
            check_candle_columns(frame, str(symbol))
        if timeframe is None:
            timeframe = _infer_timeframe(frames)
        step = timeframe_ns(timeframe)
        lo_ns = _NS_MIN if start is None else to_utc_timestamp(start, name="start").value
        hi_ns = _NS_MAX if end is None else to_utc_timestamp(end, name="end").value
        series = []
        for symbol, frame in frames.items():
            ns = timestamps_ns(frame)
            if validate and frame["timestamp"].hasnans:
                validate_candles(frame, timeframe, symbol=str(symbol))
            # rows of [start, end) if sorted; unsorted input is caught by fill_column
            lo, hi = np.searchsorted(ns, lo_ns, "left"), np.searchsorted(ns, hi_ns, "left")
            series.append((str(symbol), frame, read_only_ns(ns), ns[lo:hi]))
        symbols = tuple(item[0] for item in series)

        def ensure_sorted(j: int) -> None:
            symbol, frame, ns, _ = series[j]
            if validate:
                validate_candles(frame, timeframe, symbol=symbol, discontinuity_factor=None)
            elif ns.size > 1 and not bool((np.diff(ns) > 0).all()):
                _raise_frame_fault(frame, timeframe, symbol,
                                   int(np.flatnonzero(np.diff(ns) <= 0)[0]) + 1, False)

        first, n_times = check_grid([kept for *_, kept in series], symbols, step,
                                    "Panel.from_frames", ensure_sorted)
        arrays = {name: np.empty((n_times, len(symbols)), order="F") for name in FIELDS}
        outputs = [arrays[name] for name in FIELDS]
        for j, (symbol, frame, ns, _) in enumerate(series):
            o, h, lo, c, v = (read_only(frame[name].to_numpy(dtype=np.float64))
                              for name in FIELDS)
            out_o, out_h, out_l, out_c, out_v = (values[:, j] for values in outputs)
            fault, position, last_row = fill_column(ns, o, h, lo, c, v, out_o, out_h, out_l,
                                                    out_c, out_v, first, step, lo_ns, hi_ns,
                                                    validate, -1)
            if fault:
                _raise_frame_fault(frame, timeframe, symbol, int(position), validate)
            for target in (out_o, out_h, out_l, out_c, out_v):
                target[last_row + 1:] = np.nan
        index = pd.DatetimeIndex(first + np.arange(n_times, dtype=np.int64) * step, tz="UTC")
        return cls._trusted(index, symbols, timeframe, **arrays)

    @classmethod
    def from_store(cls, store, symbols: Iterable[str] | None = None, timeframe: str = "5m",
                   start=None, end=None) -> Panel:
        """Read ``symbols`` (all stored ones when omitted) from a ParquetStore into a Panel.

        Every file is checked while it is copied into the panel (see
        :meth:`ParquetStore.read_panel <core_engine.data.ParquetStore.read_panel>`): a
        broken file is left out with a warning when ``symbols`` is omitted, and is an error
        when it is asked for.
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

    def with_fields(self, **fields: np.ndarray | bool) -> Panel:
        """Return a copy with some fields replaced.

        This is how leakage audits and sensitivity tests perturb data: they set the future
        to NaN or to huge values, or nudge one field. So the new values are checked for
        shape only, not against the candle contract, unless the keyword ``validate=True``
        is given (then as strictly as the constructor).
        """
        validate = fields.pop("validate", False)
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ConfigError(f"Unknown panel field(s) {sorted(unknown)}; expected {list(FIELDS)}.")
        if not isinstance(validate, (bool, np.bool_)):
            raise ConfigError(f"The 'validate' parameter of with_fields must be True or False. "
                              f"Got {validate!r}.")
        return self._replace(trusted=not validate, **fields)

    def _replace(self, *, trusted: bool = True, **changes) -> Panel:
        values = {n: getattr(self, n) for n in ("index", "symbols", "timeframe", *FIELDS)}
        values.update(changes)
        if trusted:
            return Panel._trusted(**values)
        return Panel(**values)

    def discontinuities(self, factor: float = DEFAULT_DISCONTINUITY_FACTOR) -> pd.DataFrame:
        """Price discontinuities: consecutive candles of a symbol whose closes differ by more
        than ``factor``, adjacent or across missing candles (a token redenomination, a bad
        tick, an exchange relisting).

        Parameters
        ----------
        factor : float
            A jump is ``close_after / close_before > factor`` or ``< 1 / factor``. The default
            :data:`~core_engine.data.candles.DEFAULT_DISCONTINUITY_FACTOR` (5) is far above
            any real 5m or 1h move in the bundled Binance data (at most ×1.87).

        Returns
        -------
        pandas.DataFrame
            One row per jump, ordered by symbol (panel order) then time, with columns
            ``symbol``, ``last_before`` and ``first_after`` (open times of the two candles,
            UTC), ``missing`` (candles missing between them, 0 when adjacent) and ``ratio``
            (``close_after / close_before``). Empty (same columns) when there is none.
            One numba pass over the closes: about 25 ms for 100 symbols × 105,120 candles.

        Examples
        --------
        >>> from core_engine.data import load_sample
        >>> Panel.from_frames(load_sample(["BTC/USDT"], "2021-03-01", "2021-03-02")).discontinuities()
        Empty DataFrame
        Columns: [symbol, last_before, first_after, missing, ratio]
        Index: []
        """
        factor = check_factor(factor)
        columns = ["symbol", *DISCONTINUITY_COLUMNS]
        if self.n_times == 0 or self.n_symbols == 0:
            jumps = np.empty((0, 3), dtype=np.int64)
        else:
            jumps = close_jumps(self.close, factor)
        cols, before, after = jumps[:, 0], jumps[:, 1], jumps[:, 2]
        ns = self.index.asi8
        return pd.DataFrame({
            "symbol": pd.Series(np.asarray(self.symbols, dtype=object)[cols] if cols.size else [],
                                dtype=object),
            "last_before": pd.DatetimeIndex(ns[before], tz="UTC"),
            "first_after": pd.DatetimeIndex(ns[after], tz="UTC"),
            "missing": (after - before - 1).astype(np.int64),
            "ratio": self.close[after, cols] / self.close[before, cols],
        }, columns=columns)

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


def _raise_frame_fault(frame: pd.DataFrame, timeframe: str, symbol: str, position: int,
                       validated: bool) -> None:
    """Raise the error for a fault :func:`fill_column` found at ``position`` of ``frame``."""
    if validated:
        validate_candles(frame, timeframe, symbol=symbol, discontinuity_factor=None)
    when = _when(timestamps_ns(frame)[position])
    raise DataValidationError(
        f"Candle {position:,} of {symbol} ({when}) is not after the candle before it on the "
        f"{format_timeframe(timeframe_ns(timeframe))} grid; Panel.from_frames(validate=False) "
        "needs sorted, unique timestamps. Validate the frame (validate_candles) or repair it "
        "(repair_candles)."
    )


def check_grid(stamps: Sequence[np.ndarray], symbols: Sequence[str], step: int, who: str,
               ensure_sorted: Callable[[int], None] | None = None) -> tuple[int, int]:
    """First row time and row count of the grid covering ``stamps`` (one sorted array each).

    Refuses (:class:`DataValidationError`, naming the symbols and spans) a grid of more than
    100,000 rows of which one stretch with no candle at all takes more than 90 %: the mark of
    a stray candle far from the others, such as one at epoch 0 among a year of candles, which
    would otherwise allocate millions of empty rows. ``ensure_sorted(j)`` is called before a
    refusal, so unsorted input gets its own error instead.
    """
    spans = [(j, ns) for j, ns in enumerate(stamps) if ns.size]
    if not spans:
        return 0, 0
    first = min(int(ns[0]) for _, ns in spans) // step * step
    last = max(int(ns[-1]) for _, ns in spans)
    n_times = (last - first) // step + 1
    most = max(ns.size for _, ns in spans)
    hole_rows = int(np.ceil(_SPARSE_HOLE_SHARE * n_times))
    sparse = n_times > _SPARSE_MIN_ROWS and most <= n_times - hole_rows + 1
    hole = _largest_hole(spans, step, hole_rows) if sparse else None
    if hole is not None or n_times <= 0:
        for j, _ in spans:
            if ensure_sorted is not None:
                ensure_sorted(j)
    if hole is not None:
        _refuse_sparse(hole, spans, symbols, step, n_times, who)
    if n_times <= 0:
        raise DataValidationError(f"{who}: the timestamps must increase. Got a series ending "
                                  "before it starts.")
    return first, int(n_times)


def _largest_hole(spans, step: int, hole_rows: int) -> tuple[int, int] | None:
    """``(last_before, first_after)`` of a stretch of ``hole_rows`` rows or more where no
    symbol has a candle, or None."""
    pieces = []
    for _, ns in spans:
        cuts = np.flatnonzero(np.diff(ns) > hole_rows * step)
        starts = np.concatenate([[0], cuts + 1])
        ends = np.concatenate([cuts, [ns.size - 1]])
        pieces += [(int(ns[a]), int(ns[b])) for a, b in zip(starts, ends, strict=True)]
    pieces.sort()
    reach = pieces[0][1]
    for lo, hi in pieces[1:]:
        if lo - reach > hole_rows * step:
            return reach, lo
        reach = max(reach, hi)
    return None


def _refuse_sparse(hole, spans, symbols, step: int, n_times: int, who: str) -> None:
    before, after = hole
    sides: dict[bool, list[str]] = {True: [], False: []}
    counts = {True: 0, False: 0}
    for j, ns in spans:
        n_before = int(np.searchsorted(ns, before, "right"))
        for side, count in ((True, n_before), (False, ns.size - n_before)):
            if count:
                sides[side].append(f"{symbols[j]} ({count:,} candle{'s' if count > 1 else ''}, "
                                   f"{_when(ns[0] if side else ns[n_before])} .. "
                                   f"{_when(ns[n_before - 1] if side else ns[-1])})")
                counts[side] += count
    stray = counts[True] <= counts[False]
    empty = (after - before) // step - 1
    raise DataValidationError(
        f"{who} would build a {format_timeframe(step)} grid of {n_times:,} rows, {empty:,} of "
        f"them empty: no symbol has a candle between {_when(before)} and {_when(after)}. "
        f"The candles {'before' if stray else 'after'} that stretch look stray: "
        f"{'; '.join(sides[stray][:5])}. Remove them, or pass start=/end= to keep the part "
        "you need."
    )


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
