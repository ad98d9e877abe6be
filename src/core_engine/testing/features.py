"""``check_feature``: the scrutiny every built-in feature passes, available for yours.

>>> from core_engine.testing import check_feature          # doctest: +SKIP
>>> check_feature(MyFeature(length=10), candles)            # doctest: +SKIP
>>> check_feature(MyFeature(length=10), panel)              # doctest: +SKIP

It raises on the first problem, with a message naming the feature, the row and the column.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from core_engine.data.candles import DiscontinuityWarning
from core_engine.data.panel import Panel
from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError, DataValidationError, FeatureError, LookaheadError
from core_engine.testing._data import as_panel, check_options

__all__ = ["check_feature"]


def _fail(message: str) -> None:
    raise AssertionError(message)


def _same(a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
    """Element-wise equality with NaN == NaN and a relative tolerance."""
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        close = np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b))
    return both_nan | close | (a == b)


def _first_difference(full: pd.DataFrame, part: pd.DataFrame, rtol: float):
    a = full.to_numpy(dtype=np.float64)
    b = part.to_numpy(dtype=np.float64)
    bad = ~_same(a, b, rtol)
    if not bad.any():
        return None
    row, col = np.argwhere(bad)[0]
    return int(row), str(full.columns[col]), a[row, col], b[row, col]


def check_feature(computer, data, *, n_times: int = 20, seed: int = 0,
                  timeframe: str | None = None, rtol: float = 1e-12) -> None:
    """Assert that a feature keeps the contract of :class:`~core_engine.features.FeatureComputer`.

    Checks, in order, on each symbol's candles:

    1. **Shape**: ``compute`` returns :attr:`columns`, float64, indexed by the candles'
       timestamps, and, when the candles have no gaps, every row before :attr:`lookback`
       is NaN.
    2. **No mutation**: the input frame is unchanged (values, dtypes, columns, index).
    3. **Truncation invariance** (the time rule): for ``n_times`` sampled rows ``i``, every
       row ``<= i`` computed from the data cut after row ``i`` equals the full computation,
       and so does a computation where every row after ``i`` is replaced by other valid
       candles (garbage in the future changes nothing in the past).
    4. **compute vs compute_panel**: a one-symbol panel (also with some candles removed,
       i.e. NaN rows) gives, at present candles, exactly ``compute`` on the frame; with
       several symbols, so does the panel of all of them.
    5. **Documented errors**: an empty frame raises ``FeatureError``; a NaN price raises
       ``DataValidationError``; a gap-free frame of ``lookback`` rows (too short for a
       first value) returns all-NaN rows without error.

    Parameters
    ----------
    computer : FeatureComputer
    data : pandas.DataFrame, dict of str to DataFrame, Panel, or (store, symbols, timeframe)
        One symbol's candle frame, or the forms ``walk_forward`` accepts (every symbol is
        checked; a Panel's missing candles are dropped from each symbol's frame). Each
        preferably longer than ``lookback + n_times``.
    n_times : int
        Number of cut points sampled per symbol.
    seed : int
        Seed of the sampling and of the garbage.
    timeframe : str, optional
        The candles' timeframe for the panel check (inferred when omitted; a Panel's own).
    rtol : float
        Relative tolerance of the comparisons (exact by default up to rounding).

    Raises
    ------
    LookaheadError
        If a value depends on later candles (an ``AssertionError``).
    AssertionError
        For any other broken rule (the message names the symbol when there are several).
    ConfigError
        If ``data`` is none of the accepted forms or holds no candle.
    """
    if isinstance(computer, type) or not all(
            hasattr(computer, a) for a in ("compute", "columns", "lookback")):
        raise ConfigError(
            "The 'computer' parameter of check_feature must be a feature instance such as "
            "RSI(14) (a FeatureComputer, or an object with compute(candles), columns and "
            f"lookback). Got {type(computer).__name__} {computer!r:.80}.")
    n_times, seed = check_options("check_feature", n_times=n_times, seed=seed, rtol=rtol)
    if timeframe is not None:
        timeframe_ns(timeframe)
    frames, timeframe, panel = _frames_of(data, timeframe)
    for symbol, candles in frames.items():
        try:
            _check_frame(computer, candles, np.random.default_rng(seed), n_times, timeframe, rtol)
        except AssertionError as error:
            if len(frames) == 1:
                raise
            raise type(error)(f"{symbol}: {error}") from error
    if panel is not None and panel.n_symbols > 1:
        _check_panel_of_all(computer, panel, frames)


def _frames_of(data, timeframe: str | None):
    """``({symbol: frame}, timeframe, panel or None)`` of the accepted data forms."""
    if isinstance(data, pd.DataFrame):
        return {"candles": data}, timeframe, None
    panel = as_panel(data, "check_feature", timeframe)
    if isinstance(data, Mapping):
        frames = {str(s): f for s, f in data.items()}
    else:
        frames = {s: f for s, f in panel.to_frames().items() if len(f)}
    if not frames or panel.n_times == 0:
        raise ConfigError("check_feature needs at least one candle. Got none.")
    return frames, panel.timeframe, panel


def _check_frame(computer, candles, rng, n_times, timeframe, rtol) -> None:
    name = repr(computer)
    before = copy.deepcopy(candles)
    full = computer.compute(candles)
    if not candles.equals(before) or list(candles.dtypes) != list(before.dtypes) \
            or not candles.index.equals(before.index):
        _fail(f"{name}.compute modified its input candle frame.")
    _check_shape(computer, candles, full)
    _check_truncation(computer, candles, full, rng, n_times, rtol)
    _check_panel(computer, candles, full, rng, timeframe)
    _check_errors(computer, candles)


def _check_panel_of_all(computer, panel: Panel, frames) -> None:
    """compute_panel on the whole panel equals compute on each symbol's present candles."""
    name = repr(computer)
    values = computer.compute_panel(panel)
    for j, symbol in enumerate(panel.symbols):
        own = panel.frame(symbol)
        present = panel.present[:, j]
        if not len(own):
            continue
        expected = computer.compute(own)
        for column in computer.columns:
            got = np.asarray(values[column])[present, j]
            want = expected[column].to_numpy(dtype=np.float64)
            if not np.array_equal(got, want, equal_nan=True):
                row = int(np.flatnonzero(~_same(got, want, 0.0))[0])
                _fail(f"{name}: compute_panel on the {panel.n_symbols}-symbol panel and compute "
                      f"on {symbol}'s candles differ at its candle {row}, column {column!r}: "
                      f"{got[row]!r} != {want[row]!r}.")
            if not np.isnan(np.asarray(values[column])[~present, j]).all():
                _fail(f"{name}.compute_panel: column {column!r} of {symbol} has a value at a "
                      "missing candle.")


def _check_shape(computer, candles: pd.DataFrame, full: pd.DataFrame) -> None:
    name = repr(computer)
    if tuple(full.columns) != tuple(computer.columns):
        _fail(f"{name}.compute returned columns {list(full.columns)}; expected "
              f"{list(computer.columns)}.")
    if len(full) != len(candles) or not np.array_equal(
            full.index.asi8, pd.DatetimeIndex(candles["timestamp"]).asi8):
        _fail(f"{name}.compute must return one row per candle indexed by its timestamp.")
    for column in full.columns:
        if full[column].dtype != np.float64:
            _fail(f"{name}: column {column!r} is {full[column].dtype}; expected float64.")
    if not _gap_free(computer, candles):
        return  # lookback is defined on gap-free data (time-based features count time)
    warm = full.iloc[: computer.lookback].to_numpy(dtype=np.float64)
    if warm.size and not np.isnan(warm).all():
        row, col = np.argwhere(~np.isnan(warm))[0]
        _fail(f"{name}: row {row} of column {full.columns[col]!r} has a value although "
              f"lookback is {computer.lookback} (rows before lookback must be NaN).")


def _gap_free(computer, candles: pd.DataFrame) -> bool:
    """Gap-free in the unit the feature's lookback counts: its own rule when it has one
    (a FeatureComputer; MultiTimeframe counts base-timeframe candles), else evenly spaced."""
    rule = getattr(computer, "_gap_free", None)
    if rule is not None:
        return bool(rule(candles))
    return bool(np.unique(np.diff(pd.DatetimeIndex(candles["timestamp"]).asi8)).size <= 1)


def _garbage_after(candles: pd.DataFrame, stop: int, rng: np.random.Generator) -> pd.DataFrame:
    """Rows after ``stop`` replaced by other valid candles (scaled, shuffled volume)."""
    out = candles.copy()
    tail = slice(stop + 1, len(out))
    n = len(out) - stop - 1
    if n <= 0:
        return out
    scale = np.exp(rng.normal(0.0, 0.3, n))
    for field in ("open", "high", "low", "close"):
        out.iloc[tail, out.columns.get_loc(field)] = out[field].to_numpy()[tail] * scale
    out.iloc[tail, out.columns.get_loc("volume")] = rng.permutation(out["volume"].to_numpy()[tail]) * 3.0
    return out


def _check_truncation(computer, candles, full, rng, n_times, rtol) -> None:
    name = repr(computer)
    n = len(candles)
    rows = np.unique(np.r_[rng.integers(0, n, size=max(n_times - 1, 0)), n - 2])
    rows = rows[(rows >= 0) & (rows < n - 1)]
    for stop in rows:
        stop = int(stop)
        for label, data in (
            ("data cut after it", candles.iloc[: stop + 1]),
            ("every later candle replaced", _garbage_after(candles, stop, rng)),
        ):
            with warnings.catch_warnings():
                # the garbage jumps where real prices do not: not the user's data to warn about
                warnings.simplefilter("ignore", DiscontinuityWarning)
                part = computer.compute(data).iloc[: stop + 1]
            diff = _first_difference(full.iloc[: stop + 1], part, rtol)
            if diff is not None:
                row, column, a, b = diff
                when = candles["timestamp"].iloc[row]
                raise LookaheadError(
                    f"{name} uses future candles: column {column!r} at row {row} ({when}) is "
                    f"{a!r} from all the data but {b!r} from {label} (cut at row {stop})."
                )


def _check_panel(computer, candles, full, rng, timeframe) -> None:
    name = repr(computer)
    variants = [("the frame", candles, full)]
    if len(candles) > 10:
        keep = np.ones(len(candles), dtype=bool)
        keep[rng.choice(np.arange(1, len(candles) - 1), size=max(1, len(candles) // 20),
                        replace=False)] = False
        holed = candles.loc[keep].reset_index(drop=True)
        variants.append(("the frame with candles removed", holed, computer.compute(holed)))
    for label, frame, expected in variants:
        panel = Panel.from_frames({"X": frame}, timeframe, validate=False)
        values = computer.compute_panel(panel)
        if set(values) != set(computer.columns):
            _fail(f"{name}.compute_panel returned keys {sorted(values)}; expected "
                  f"{list(computer.columns)}.")
        ns = frame["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        rows = (ns - panel.index.asi8[0]) // panel.step_ns
        missing = np.ones(panel.n_times, dtype=bool)
        missing[rows] = False
        for column in computer.columns:
            array = values[column]
            if array.shape != (panel.n_times, 1) or array.dtype != np.float64:
                _fail(f"{name}.compute_panel: {column!r} has {array.dtype} {array.shape}; "
                      f"expected float64 {(panel.n_times, 1)}.")
            got, want = array[rows, 0], expected[column].to_numpy(dtype=np.float64)
            if not np.array_equal(got, want, equal_nan=True):
                row = int(np.flatnonzero(~_same(got, want, 0.0))[0])
                _fail(f"{name}: compute_panel and compute differ on {label} at candle {row}, "
                      f"column {column!r}: {got[row]!r} != {want[row]!r}.")
            if not np.isnan(array[missing, 0]).all():
                _fail(f"{name}.compute_panel: column {column!r} has a value at a missing candle.")


def _check_errors(computer, candles) -> None:
    name = repr(computer)
    try:
        computer.compute(candles.iloc[:0])
    except FeatureError:
        pass
    else:
        _fail(f"{name}.compute on an empty frame must raise FeatureError.")
    if len(candles) > 2:
        broken = candles.copy()
        broken.iloc[len(broken) // 2, broken.columns.get_loc("close")] = np.nan
        try:
            computer.compute(broken)
        except DataValidationError:
            pass
        else:
            _fail(f"{name}.compute on a frame with a NaN close must raise DataValidationError.")
    short = min(computer.lookback, len(candles))
    regular = _gap_free(computer, candles)
    if short > 0 and regular:
        out = computer.compute(candles.iloc[:short])
        if len(out) != short or not np.isnan(out.to_numpy(dtype=np.float64)).all():
            _fail(f"{name}.compute on {short} candles (< lookback + 1) must return {short} "
                  "all-NaN rows.")
