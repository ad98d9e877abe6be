"""What a feature's ``compute`` must return, checked once for every feature (yours included).

:class:`~core_engine.features.base.FeatureComputer` runs the user's ``compute`` (or a
built-in's ``_compute_frame``) through :func:`conform`: the output is accepted as a
DataFrame, a named Series or a dict of columns, with one row per candle (positional, on the
candles' own index or on their timestamps), numeric columns; it is returned as float64
columns in the declared order, indexed by the candles' timestamps. Anything else raises
:class:`~core_engine.errors.FeatureError` naming the feature, what it returned and what was
expected. Undeclared ``columns`` and ``lookback`` are inferred by running the feature once
on :func:`probe_candles`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from core_engine.errors import ConfigError, FeatureError

__all__ = ["PROBE_ROWS", "check_columns", "check_lookback", "conform", "first_value_row",
           "is_gap_free", "probe_candles"]

#: Rows of the synthetic probe on which undeclared columns and lookback are inferred.
PROBE_ROWS = 600


@lru_cache(maxsize=1)
def probe_candles() -> pd.DataFrame:
    """A valid, gap-free 5m candle frame of :data:`PROBE_ROWS` rows (seeded random walk).

    Returns a copy-on-read frame: callers must not modify it.
    """
    rng = np.random.default_rng(12345)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, PROBE_ROWS)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0.0, 0.005, PROBE_ROWS))
    return pd.DataFrame({
        "timestamp": pd.date_range("2021-01-01", periods=PROBE_ROWS, freq="5min", tz="UTC"),
        "open": open_,
        "high": np.maximum(open_, close) * (1 + spread),
        "low": np.minimum(open_, close) * (1 - spread),
        "close": close,
        "volume": rng.exponential(100.0, PROBE_ROWS),
    })


def check_columns(value: Any, owner: str) -> tuple[str, ...]:
    """``value`` as a tuple of distinct non-empty column names, else ConfigError."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        hint = f" Did you mean ({value!r},)?" if isinstance(value, str) and value else ""
        raise ConfigError(
            f"The 'columns' of {owner} must be a non-empty tuple of column names such as "
            f"('range_pct',). Got {value!r}.{hint}"
        )
    names = tuple(value)
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise ConfigError(f"The 'columns' of {owner} must be non-empty strings. Got {bad[0]!r}.")
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"The 'columns' of {owner} name {twice} more than once.")
    return names


def check_lookback(value: Any, owner: str) -> int:
    """``value`` as a non-negative int, else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(
            f"The 'lookback' of {owner} must be an integer >= 0 (candles of warm-up). "
            f"Got {value!r}."
        )
    return int(value)


def conform(raw: Any, candles: pd.DataFrame, owner: str,
            columns: tuple[str, ...] | None) -> pd.DataFrame:
    """Check and normalise what ``compute`` returned for ``candles``.

    Parameters
    ----------
    raw : object
        The hook's output.
    candles : pandas.DataFrame
        The validated, non-empty candle frame it was computed from.
    owner : str
        The feature's repr, for messages.
    columns : tuple of str, optional
        The declared columns (any order in ``raw``; returned in this order); ``None`` while
        inferring them.

    Returns
    -------
    pandas.DataFrame
        float64 columns indexed by the candles' timestamps (``timestamp``).

    Raises
    ------
    FeatureError
        If the output is not a table, has the wrong number of rows or an unrelated index,
        other columns than declared, or non-numeric values.
    """
    frame = _as_frame(raw, owner, columns)
    n = len(candles)
    timestamps = pd.DatetimeIndex(candles["timestamp"], name="timestamp")
    if len(frame) != n:
        raise FeatureError(
            f"{owner}.compute returned {len(frame)} rows for {n} candles; expected one row "
            "per candle (NaN where there is no value yet)."
        )
    if not _aligned(frame.index, candles.index, timestamps):
        raise FeatureError(
            f"{owner}.compute returned rows indexed {_describe(frame.index)}; expected one row "
            f"per candle, in order: the candles' own index ({_describe(candles.index)}), "
            "their timestamps, or positions 0..n-1."
        )
    bad = [c for c in frame.columns if not isinstance(c, str)]
    if bad or not len(frame.columns):
        got = repr(bad[0]) if bad else "no column"
        raise FeatureError(f"{owner}.compute must return columns named by strings. Got {got}.")
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise FeatureError(f"{owner}.compute returned the column(s) "
                           f"{sorted({n for n in names if names.count(n) > 1})} twice.")
    if columns is not None and set(names) != set(columns):
        missing = [c for c in columns if c not in names]
        extra = [c for c in names if c not in columns]
        raise FeatureError(
            f"{owner}.compute returned columns {names}; its 'columns' declare "
            f"{list(columns)} (missing {missing}, unexpected {extra}). Return those, or fix "
            "'columns' (or leave it out to have it inferred)."
        )
    order = list(columns) if columns is not None else names
    values = {name: _numeric(frame[name], name, owner) for name in order}
    return pd.DataFrame(values, index=timestamps)


def _as_frame(raw: Any, owner: str, columns: tuple[str, ...] | None) -> pd.DataFrame:
    if isinstance(raw, pd.DataFrame):
        return raw
    if isinstance(raw, pd.Series):
        name = raw.name
        if name is None and columns is not None and len(columns) == 1:
            name = columns[0]
        if not isinstance(name, str):
            raise FeatureError(
                f"{owner}.compute returned a Series named {name!r}; name it "
                "(series.rename('my_column')) or return a DataFrame."
            )
        return raw.to_frame(name)
    if isinstance(raw, Mapping):
        try:
            return pd.DataFrame(dict(raw))
        except ValueError as error:  # columns of different lengths
            raise FeatureError(f"{owner}.compute returned a dict that is not a table: "
                               f"{error}.") from error
    raise FeatureError(
        f"{owner}.compute must return a pandas DataFrame (one row per candle, one column per "
        f"output). Got {type(raw).__name__}."
    )


def _aligned(index: pd.Index, own: pd.Index, timestamps: pd.DatetimeIndex) -> bool:
    if index.equals(own):
        return True
    if isinstance(index, pd.RangeIndex):
        return index.start == 0 and index.step == 1
    if isinstance(index, pd.DatetimeIndex):
        if index.tz is None:
            return False
        return bool(np.array_equal(index.as_unit("ns").asi8, timestamps.as_unit("ns").asi8))
    return False


def _describe(index: pd.Index) -> str:
    if len(index) == 0:
        return "by nothing"
    return f"{type(index).__name__} {index[0]} .. {index[-1]}"


def _numeric(column: pd.Series, name: str, owner: str) -> np.ndarray:
    dtype = column.dtype
    if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)) \
            or pd.api.types.is_complex_dtype(dtype):
        raise FeatureError(
            f"{owner}.compute returned column {name!r} of dtype {dtype}; expected numbers "
            "(float, int or bool; NaN for 'no value')."
        )
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def first_value_row(frame: pd.DataFrame) -> int | None:
    """The first row where any column has a value, or None."""
    present = ~np.isnan(frame.to_numpy(dtype=np.float64)).all(axis=1)
    rows = np.flatnonzero(present)
    return int(rows[0]) if rows.size else None


def is_gap_free(candles: pd.DataFrame) -> bool:
    """True when the candles are evenly spaced (the frame lookback is defined on)."""
    ns = candles["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    return bool(ns.size < 3 or np.all(np.diff(ns) == ns[1] - ns[0]))
