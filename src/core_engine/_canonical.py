"""The canonical form of a configuration value: equal for equal configurations, the same in
every process (no memory address), JSON-ready. ``config_id`` (sweeps) and
``Trader.trader_id`` (client order ids) hash it."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import math
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
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, np.bool_):
        number = float(value)
        return number if math.isfinite(number) else repr(number)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
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
        hashed = pd.util.hash_pandas_object(frame, index=not isinstance(value, pd.Index))
        return {"__pandas__": type(value).__name__, "columns": [str(c) for c in frame.columns],
                "dtypes": [str(d) for d in frame.dtypes],
                "sha256": _digest(hashed.to_numpy().tobytes())}
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
        return _function(value)
    if cls.__repr__ is not object.__repr__:
        return repr(value)
    # the default repr names a memory address: the same configuration would get another
    # id in every process (a resumed sweep would run it again); its state identifies it
    state = getattr(value, "__dict__", None)
    if state is None:
        raise ConfigError(
            f"config_id cannot identify the {name} object: it has no parameters "
            "(get_params), is not a dataclass, has no attributes and no repr of its own. "
            "Give it a __repr__ naming its configuration, or make it a dataclass.")
    return {"__class__": name, **canonical(dict(state))}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _function(fn: types.FunctionType) -> dict[str, Any]:
    """A function by its qualified name, its code and the values it captured or defaults
    to (two closures of one factory over different values differ)."""
    cells = [c.cell_contents for c in fn.__closure__ or ()]
    return {"__function__": f"{fn.__module__}.{fn.__qualname__}",
            "code": _code_digest(fn.__code__),
            "captured": canonical(cells), "defaults": canonical(list(fn.__defaults__ or ()))}


def _code_digest(code: types.CodeType) -> str:
    """A digest of a code object's bytecode and constants (nested code objects by their own
    digest: their repr carries an address)."""
    consts = [_code_digest(c) if isinstance(c, types.CodeType) else repr(c)
              for c in code.co_consts]
    text = code.co_code.hex() + "|" + "|".join(consts) + "|" + ",".join(code.co_names)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
