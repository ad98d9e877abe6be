"""Checks shared by the public entry points, one per class of hostile input.

Each check turns a value a user may pass by mistake (``None`` for a path, a path with a NUL
byte, a file where a folder is expected, a duration of a million years, an object where a
candle frame is expected) into a :class:`~core_engine.errors.CoreEngineError` subclass whose
message says what was given, where, and what was expected (STYLE.md), instead of the
``TypeError``, ``ValueError``, ``OSError`` or ``MemoryError`` the standard library, pandas
or Arrow would raise later, far from the cause.

Like :mod:`core_engine._config`, this module sits below every layer: it imports only
:mod:`core_engine.errors` (and pandas or NumPy, lazily, for the checks that need them).
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Literal, overload

from core_engine.errors import ConfigError, CoreEngineError, DataValidationError

__all__ = ["MAX_DURATION_YEARS", "YEAR_NS", "check_frame", "check_instance",
           "check_integer", "check_items", "check_mapping", "check_path", "check_real",
           "check_result", "check_rows", "check_symbols"]

#: The longest span accepted for a duration parameter (a window, a shift, a gap): longer is
#: certainly a unit mistake, and it would overflow nanosecond timestamps (year 2262).
MAX_DURATION_YEARS = 100
YEAR_NS = 365 * 24 * 3600 * 10**9


def check_path(value: Any, name: str, where: str, *, kind: str = "any", must_exist: bool = False,
               error: type[CoreEngineError] = ConfigError) -> Path:
    """``value`` as a :class:`~pathlib.Path`, or ``error`` naming the parameter.

    Refuses ``None``, anything that is not a ``str`` or ``os.PathLike``, the empty string
    (which would silently mean the current folder), a NUL byte (which the OS cannot store),
    a file where a folder is expected (``kind="dir"``) and a folder where a file is expected
    (``kind="file"``); with ``must_exist``, a path that does not exist.

    Parameters
    ----------
    value : str or os.PathLike
        What the user passed.
    name, where : str
        The parameter and the function or class it belongs to, for the message.
    kind : {"any", "file", "dir"}
        What the path must be when it exists.
    must_exist : bool
        Refuse a path that does not exist.
    error : type
        The error class to raise (``StoreError`` for a store, ``JournalError`` for a journal).
    """
    expected = {"file": "a file path", "dir": "a folder path", "any": "a path"}[kind]
    if not isinstance(value, (str, os.PathLike)):
        raise error(f"The {name!r} parameter of {where} must be {expected} (str or "
                    f"pathlib.Path). Got {type(value).__name__} {value!r}.")
    try:
        text = os.fspath(value)
    except TypeError as exc:  # a PathLike whose __fspath__ returns something else
        raise error(f"The {name!r} parameter of {where} must be {expected}. Got {value!r}.") from exc
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text.strip():
        raise error(f"The {name!r} parameter of {where} must be {expected}, not an empty "
                    f"string. Got {value!r}.")
    if "\x00" in text:
        raise error(f"The {name!r} parameter of {where} must be {expected} without a NUL "
                    f"byte. Got {value!r}.")
    path = Path(text).expanduser()
    try:
        exists = path.exists()
        is_dir = exists and path.is_dir()
    except OSError as exc:  # a name too long, a permission denied on a parent
        raise error(f"The {name!r} parameter of {where} cannot be used as {expected}: "
                    f"{exc.strerror or exc}. Got {value!r}.") from exc
    if must_exist and not exists:
        raise error(f"The {name!r} parameter of {where} must be an existing "
                    f"{'folder' if kind == 'dir' else 'file' if kind == 'file' else 'path'}. "
                    f"Got {value!r}, which does not exist.")
    if exists and kind == "dir" and not is_dir:
        raise error(f"The {name!r} parameter of {where} must be a folder. Got {value!r}, "
                    "which is a file.")
    if exists and kind == "file" and is_dir:
        raise error(f"The {name!r} parameter of {where} must be a file. Got {value!r}, "
                    "which is a folder.")
    return path


def check_frame(value: Any, name: str, where: str, *, columns: tuple[str, ...] = (),
                expected: str = "a pandas DataFrame of candles",
                error: type[CoreEngineError] = DataValidationError) -> Any:
    """``value`` if it is a pandas DataFrame (``expected`` says of what) with unique
    column labels holding ``columns``, else ``error`` naming the parameter (never pandas'
    ``AttributeError`` or ``KeyError``). Costs O(columns), not O(rows)."""
    import pandas as pd

    if not isinstance(value, pd.DataFrame):
        raise error(f"The {name!r} parameter of {where} must be {expected}. "
                    f"Got {type(value).__name__}.")
    if not value.columns.is_unique:
        repeated = sorted({str(c) for c in value.columns[value.columns.duplicated()]})
        raise error(f"The {name!r} parameter of {where} has repeated column(s) "
                    f"{repeated}: each column must appear once.")
    missing = [c for c in columns if c not in value.columns]
    if missing:
        raise error(f"The {name!r} parameter of {where} lacks the column(s) {missing}; "
                    f"expected {list(columns)}. Got {[str(c) for c in value.columns]}.")
    return value


def check_rows(value: Any, name: str, where: str, *, n_rows: int,
               error: type[CoreEngineError] = ConfigError) -> Any:
    """``value`` as a 1-D int64 NumPy array of row numbers in ``[0, n_rows)`` (a list, a
    tuple or an integer array; an empty one is accepted), else ``error`` naming the
    parameter and the first row outside. Vectorised: O(rows) in NumPy, none in Python."""
    import numpy as np

    try:
        rows = np.asarray(value)
    except (TypeError, ValueError, OverflowError):
        rows = None
    if rows is None or rows.ndim != 1 or not (
            rows.size == 0 or np.issubdtype(rows.dtype, np.integer)):
        raise error(f"The {name!r} parameter of {where} must be a 1-D array of row numbers "
                    f"(integers). Got {type(value).__name__} {value!r:.80}.")
    outside = (rows < 0) | (rows >= n_rows)
    if outside.any():
        raise error(f"The {name!r} parameter of {where} must hold rows 0 to {n_rows - 1:,} "
                    f"of the panel. Got row {int(rows[np.argmax(outside)]):,}.")
    return rows.astype(np.int64, copy=False)


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _rule(low: float | None, high: float | None) -> str:
    parts = [f">= {_number(low)}" if low is not None else "",
             f"<= {_number(high)}" if high is not None else ""]
    text = " and ".join(p for p in parts if p)
    return f" {text}" if text else ""


@overload
def check_real(value: Any, name: str, where: str, *, low: float | None = ...,
               high: float | None = ..., optional: Literal[False] = ...,
               error: type[CoreEngineError] = ...) -> float: ...
@overload
def check_real(value: Any, name: str, where: str, *, low: float | None = ...,
               high: float | None = ..., optional: bool = ...,
               error: type[CoreEngineError] = ...) -> float | None: ...
def check_real(value: Any, name: str, where: str, *, low: float | None = None,
               high: float | None = None, optional: bool = False,
               error: type[CoreEngineError] = ConfigError) -> float | None:
    """``value`` as a finite ``float`` within ``[low, high]`` (NumPy scalars accepted, ``bool``
    refused), ``None`` if ``optional`` allows it, else ``error`` naming the parameter."""
    if value is None and optional:
        return None
    ok = isinstance(value, Real) and not isinstance(value, bool)
    if ok:
        number = float(value)
        ok = math.isfinite(number) and (low is None or number >= low) and (
            high is None or number <= high)
    if not ok:
        raise error(f"The {name!r} parameter of {where} must be a finite number"
                    f"{_rule(low, high)}{' or None' if optional else ''}. Got {value!r}.")
    return number


@overload
def check_integer(value: Any, name: str, where: str, *, low: int | None = ...,
                  high: int | None = ..., optional: Literal[False] = ...,
                  error: type[CoreEngineError] = ...) -> int: ...
@overload
def check_integer(value: Any, name: str, where: str, *, low: int | None = ...,
                  high: int | None = ..., optional: bool = ...,
                  error: type[CoreEngineError] = ...) -> int | None: ...
def check_integer(value: Any, name: str, where: str, *, low: int | None = None,
                  high: int | None = None, optional: bool = False,
                  error: type[CoreEngineError] = ConfigError) -> int | None:
    """``value`` as an ``int`` within ``[low, high]`` (NumPy integers accepted, ``bool`` and
    floats refused), ``None`` if ``optional`` allows it, else ``error`` naming the parameter.
    Give ``high`` wherever the value sizes an allocation: ``10**12`` must be refused here,
    not found as a ``MemoryError`` later."""
    if value is None and optional:
        return None
    ok = isinstance(value, Integral) and not isinstance(value, bool)
    ok = ok and (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        raise error(f"The {name!r} parameter of {where} must be an integer{_rule(low, high)}"
                    f"{' or None' if optional else ''}. Got {value!r}.")
    return int(value)


def _shown(value: Any, show_value: bool) -> str:
    """``"dict {'a': 1}"``, or only ``"dict"`` where the value may hold a credential."""
    return f"{type(value).__name__} {value!r:.80}" if show_value else type(value).__name__


def check_instance(value: Any, kinds: type | tuple[type, ...], name: str, where: str, *,
                   expected: str | None = None, optional: bool = False,
                   show_value: bool = True,
                   error: type[CoreEngineError] = ConfigError) -> Any:
    """``value`` if it is an instance of ``kinds`` (or ``None`` when ``optional``), else
    ``error`` saying what was expected (``expected``, or the class names). With
    ``show_value=False`` the message names the value's type only (a parameter that may
    carry an API key or secret must never print it)."""
    if (value is None and optional) or isinstance(value, kinds):
        return value
    if expected is None:
        names = [k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,))]
        expected = "a " + " or a ".join(names)
    raise error(f"The {name!r} parameter of {where} must be {expected}"
                f"{' or None' if optional else ''}. Got {_shown(value, show_value)}.")


def check_items(value: Any, name: str, where: str, *, kinds: type | tuple[type, ...] = object,
                expected: str = "a list", non_empty: bool = False, show_value: bool = True,
                error: type[CoreEngineError] = ConfigError) -> list[Any]:
    """``value`` as a list when it is a list, tuple or other iterable (not a string, bytes or
    a mapping) whose items are instances of ``kinds``; else ``error`` naming the parameter
    and the first wrong item (by type only with ``show_value=False``, as
    :func:`check_instance`)."""
    from collections.abc import Iterable, Mapping

    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise error(f"The {name!r} parameter of {where} must be {expected}. "
                    f"Got {_shown(value, show_value)}.")
    items = list(value)
    if non_empty and not items:
        raise error(f"The {name!r} parameter of {where} must be {expected}, not empty.")
    for i, item in enumerate(items):
        if not isinstance(item, kinds):
            raise error(f"The {name!r} parameter of {where} must be {expected}; its item {i} "
                        f"is {_shown(item, show_value)}.")
    return items


_RESULT_PARTS = ("trades", "equity", "metrics", "config", "data_quality")


def check_result(result: Any, name: str, where: str) -> Any:
    """``result`` if it has the parts of a BacktestResult (trades, equity, metrics, config,
    data quality), else a ConfigError. Checked by its parts, not its class, so the layers
    that show results (formatting, plots, reports) need not import the backtest engine."""
    if isinstance(result, type) or not all(hasattr(result, part) for part in _RESULT_PARTS):
        raise ConfigError(f"The {name!r} parameter of {where} must be a BacktestResult (from "
                          "walk_forward, replay or BacktestResult.load). "
                          f"Got {type(result).__name__} {result!r:.80}.")
    return result


def check_symbols(value: Any, name: str, where: str, *,
                  error: type[CoreEngineError] = ConfigError) -> list[str]:
    """One symbol (``"BTC/USDT"``) or an iterable of them, as a list of non-empty strings."""
    if isinstance(value, str):
        value = [value]
    items = check_items(value, name, where, kinds=str, error=error,
                        expected="a symbol such as 'BTC/USDT' or a list of them")
    for item in items:
        if not item.strip() or "\x00" in item:
            raise error(f"The {name!r} parameter of {where} must hold symbols such as "
                        f"'BTC/USDT'. Got {item!r}.")
    return items


def check_mapping(value: Any, name: str, where: str, *, optional: bool = True,
                  expected: str = "a dict of str -> str", kinds: type | tuple[type, ...] = str,
                  show_value: bool = True,
                  error: type[CoreEngineError] = ConfigError) -> dict[str, Any] | None:
    """``value`` as a dict whose keys are strings and values instances of ``kinds`` (``None``
    when ``optional``). With ``show_value=False`` the message names types only, never a key
    or a value: a config dict may carry an API key."""
    from collections.abc import Mapping

    if value is None and optional:
        return None
    if not isinstance(value, Mapping):
        raise error(f"The {name!r} parameter of {where} must be {expected}"
                    f"{' or None' if optional else ''}. "
                    f"Got {repr(value)[:80] if show_value else type(value).__name__}.")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, kinds):
            got = (repr(value)[:80] if show_value else
                   f"a {type(key).__name__} key" if not isinstance(key, str) else
                   f"a {type(item).__name__} value")
            raise error(f"The {name!r} parameter of {where} must be {expected}"
                        f"{' or None' if optional else ''}. Got {got}.")
    return dict(value)
