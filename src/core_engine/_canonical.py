"""The canonical form of a configuration value: equal for equal configurations, the same in
every process (no memory address), JSON-ready. ``config_id`` (sweeps) and
``Trader.trader_id`` (client order ids) hash it."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import math
import re
import types
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from core_engine.errors import ConfigError

__all__ = ["canonical"]


def canonical(value: Any) -> Any:
    """A JSON-ready form of ``value`` that is equal for equal configurations: numbers as
    floats, dataclasses and parameter objects as ``{"__class__": ..., fields}``, times as
    UTC ISO strings, functions by their name, code and captured values, objects with the
    default repr (a memory address) by their attributes, anything else by ``repr``.

    Raises
    ------
    ConfigError
        An object with nothing to identify it by (the default repr and no attributes)."""
    return _canonical(value, ())


def _canonical(value: Any, seen: tuple[int, ...]) -> Any:
    """``canonical`` with the ids of the objects being expanded (a cycle, an object holding
    itself or a function calling itself, is named instead of expanded again)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, np.bool_):
        number = float(value)
        return number if math.isfinite(number) else repr(number)
    if isinstance(value, np.bool_):
        return bool(value)
    if id(value) in seen:
        return {"__cycle__": f"{type(value).__module__}.{type(value).__qualname__}"}
    seen = (*seen, id(value))

    def canonical(v: Any) -> Any:
        return _canonical(v, seen)

    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):  # their repr's order follows the hash seed
        if len(value) < 2 or all(isinstance(v, (int, float)) for v in value):
            return repr(value)  # numbers hash alike in every process: ids unchanged
        return {"__set__": sorted(json.dumps(canonical(v), sort_keys=True) for v in value)}
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (pd.Timestamp, datetime.datetime, np.datetime64)):
        from core_engine.data.timeframes import to_utc_timestamp

        return to_utc_timestamp(value).isoformat()
    if isinstance(value, np.ndarray):  # its repr elides the middle of a long array
        return {"__ndarray__": str(value.dtype), "shape": list(value.shape),
                "sha256": _digest(np.ascontiguousarray(value).tobytes()
                                  if value.dtype != object else repr(value.tolist()).encode())}
    if isinstance(value, (pd.Series, pd.DataFrame, pd.Index)):
        frame = value.to_frame() if isinstance(value, (pd.Series, pd.Index)) else value
        try:
            hashed = pd.util.hash_pandas_object(frame, index=not isinstance(value, pd.Index))
            digest = _digest(hashed.to_numpy().tobytes())
        except TypeError:  # unhashable cells (lists, dicts): by their canonical form
            cells = [list(frame.columns), frame.to_numpy().tolist()]
            if not isinstance(value, pd.Index):
                cells.append(frame.index.tolist())
            digest = _digest(json.dumps(canonical(cells), sort_keys=True).encode())
        return {"__pandas__": type(value).__name__, "columns": [str(c) for c in frame.columns],
                "dtypes": [str(d) for d in frame.dtypes], "sha256": digest}
    if isinstance(value, type):  # a class (a Trader class swept from its points)
        return {"__class__": f"{value.__module__}.{value.__qualname__}"}
    cls = type(value)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__class__": name, **{f.name: canonical(getattr(value, f.name))
                                      for f in dataclasses.fields(value)}}
    if hasattr(value, "get_params"):
        return {"__class__": name, **canonical(value.get_params())}
    if isinstance(value, types.FunctionType):
        return _function(value, seen)
    text = repr(value) if cls.__repr__ is not object.__repr__ else None
    if text is not None and not _ADDRESS.search(text):
        return text  # ids of reprs without an address are unchanged
    if isinstance(value, types.MethodType):  # its repr names its object's address
        return {"__method__": canonical(value.__func__), "self": canonical(value.__self__)}
    if isinstance(value, functools.partial):
        return {"__partial__": canonical(value.func), "args": canonical(list(value.args)),
                "keywords": canonical(dict(value.keywords))}
    if text is not None and _importable(value):  # np.mean, a module's numba function
        return {"__object__": f"{value.__module__}.{value.__qualname__}"}
    # the repr names a memory address: the same configuration would get another id in
    # every process (a resumed sweep would run it again); its state identifies it
    if text is not None and isinstance(getattr(value, "py_func", None), types.FunctionType):
        return {"__class__": name, "py_func": canonical(value.py_func)}  # a numba function
    state = getattr(value, "__dict__", None)
    slots = {k: getattr(value, k) for c in cls.__mro__ for k in _slots(c) if hasattr(value, k)}
    if slots:
        state = {**slots, **(state or {})}
    if state is None:
        raise ConfigError(
            f"config_id cannot identify the {name} object: it has no parameters "
            "(get_params), is not a dataclass, has no attributes and no repr of its own. "
            "Give it a __repr__ naming its configuration, or make it a dataclass.")
    return {"__class__": name, **canonical(dict(state))}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _slots(cls: type) -> tuple[str, ...]:
    names = cls.__dict__.get("__slots__", ())
    names = (names,) if isinstance(names, str) else tuple(names)
    return tuple(n for n in names if n not in ("__dict__", "__weakref__"))


def _importable(value: Any) -> bool:
    """Whether ``value`` is what its module holds under its qualified name."""
    import importlib

    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return False
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return False
    return found is value


def _function(fn: types.FunctionType, seen: tuple[int, ...]) -> dict[str, Any]:
    """A function by its qualified name, its code and the values it captured or defaults
    to (two closures of one factory over different values differ)."""
    cells = [c.cell_contents if _filled(c) else None for c in fn.__closure__ or ()]
    return {"__function__": f"{fn.__module__}.{fn.__qualname__}",
            "code": _code_digest(fn.__code__), "captured": _canonical(cells, seen),
            "defaults": _canonical(list(fn.__defaults__ or ()), seen)}


def _filled(cell: types.CellType) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:  # a cell not yet assigned
        return False
    return True


def _code_digest(code: types.CodeType) -> str:
    """A digest of a code object's bytecode and constants (nested code objects by their own
    digest: their repr carries an address)."""
    consts = [_constant(c) for c in code.co_consts]
    text = code.co_code.hex() + "|" + "|".join(consts) + "|" + ",".join(code.co_names)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _constant(value: Any) -> str:
    """A code constant: ``x in {"a", "b"}`` compiles to a frozenset, whose repr's order
    follows the hash seed."""
    if isinstance(value, types.CodeType):
        return _code_digest(value)
    if isinstance(value, frozenset):
        return "frozenset(" + ",".join(sorted(_constant(v) for v in value)) + ")"
    if isinstance(value, tuple):
        return "(" + ",".join(_constant(v) for v in value) + ")"
    return repr(value)
