"""Sweep results on disk: one Parquet file, one row per (configuration, scope).

A configuration is identified by :func:`config_id`, a hash of the strategy class and
parameters, every ``walk_forward`` argument (defaults filled in), the data fingerprint and
the library version, so the same configuration on the same data always gets the same id and
anything that could change its result gets a new one. A *scope* names the decision times a
row's metrics cover: ``"all"`` (the sweep's whole span; these rows also hold the per-period
returns) or a fold of a splitter (``"<splitter id>/3/train"``).

While a sweep runs, every finished task is written at once as a small part file
(``<name>.parquet.parts/part-*.parquet``, written to a temporary name and renamed, so a crash
never leaves half a file); at the end the parts are merged into ``<name>.parquet`` the same
way. Re-running reads the file and any parts left by an interrupted run and skips every
(configuration, scope) already there.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import os
import types
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import core_engine
from core_engine._config import keyword_checked
from core_engine._validate import check_mapping, check_path
from core_engine.errors import ConfigError

__all__ = ["ResultStore", "canonical", "config_id"]

KEY = ("config_id", "scope")


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


def config_id(strategy: Any, backtest: Mapping[str, Any], fingerprint: str) -> str:
    """16 hex digits identifying a configuration on a data set (see the module docstring).

    Parameters
    ----------
    strategy : object
        The strategy (or trader class); any object has a canonical form.
    backtest : mapping
        The ``walk_forward`` (or ``replay``) arguments, defaults filled in.
    fingerprint : str
        The data set's fingerprint.

    Raises
    ------
    ConfigError
        ``backtest`` is not a mapping with string keys, or ``fingerprint`` is not a non-empty
        string.
    """
    check_mapping(backtest, "backtest", "config_id", optional=False, kinds=object,
                  expected="a dict of backtest arguments (str -> value)")
    if not isinstance(fingerprint, str) or not fingerprint:
        raise ConfigError("The 'fingerprint' parameter of config_id must be the data set's "
                          f"fingerprint (a non-empty string). Got {fingerprint!r:.80}.")
    payload = {"strategy": canonical(strategy), "backtest": canonical(dict(backtest)),
               "data": fingerprint, "version": core_engine.__version__}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return _digest(text.encode())


@keyword_checked
class ResultStore:
    """Rows of a sweep, in memory and (with a ``path``) in one Parquet file.

    Parameters
    ----------
    path : str or Path, optional
        The Parquet file. None keeps the rows in memory only (no resume).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else check_path(path, "path", "ResultStore", kind="file")
        if self.path is not None and self.path.suffix != ".parquet":
            raise ConfigError(f"The sweep results file must end in .parquet. Got '{self.path}'.")
        self._frames: list[pd.DataFrame] = []
        self._done: set[tuple[str, str]] = set()
        if self.path is not None:
            for file in self._files():
                frame = pd.read_parquet(file)
                self._frames.append(frame)
                self._done.update(zip(frame["config_id"], frame["scope"], strict=True))

    @property
    def parts(self) -> Path | None:
        """The folder of part files of a running (or interrupted) sweep."""
        return None if self.path is None else self.path.with_name(self.path.name + ".parts")

    def _files(self) -> list[Path]:
        assert self.path is not None and self.parts is not None
        files = [self.path] if self.path.is_file() else []
        if self.parts.is_dir():
            files += sorted(self.parts.glob("part-*.parquet"))
        return files

    def done(self) -> set[tuple[str, str]]:
        """The (config_id, scope) pairs stored."""
        return set(self._done)

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add rows (each with ``config_id`` and ``scope``); written to a part file now."""
        frame = _frame(list(rows))
        if frame.empty:
            return
        self._frames.append(frame)
        self._done.update(zip(frame["config_id"], frame["scope"], strict=True))
        if self.parts is not None:
            self.parts.mkdir(parents=True, exist_ok=True)
            _write_atomic(frame, self.parts / f"part-{uuid.uuid4().hex}.parquet")

    def frame(self) -> pd.DataFrame:
        """Every row, the latest one of each (config_id, scope)."""
        if not self._frames:
            return _frame([])
        frame = pd.concat(self._frames, ignore_index=True)
        return frame.drop_duplicates(list(KEY), keep="last").reset_index(drop=True)

    def finish(self) -> None:
        """Merge the part files into the one Parquet file and remove them."""
        if self.path is None or self.parts is None or not self.parts.is_dir():
            return
        leftovers = sorted(self.parts.glob("part-*.parquet"))
        frame = self.frame()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(frame, self.path)
        self._frames = [frame]
        for file in leftovers:
            file.unlink(missing_ok=True)
        for stray in self.parts.glob("*.tmp"):
            stray.unlink(missing_ok=True)
        self.parts.rmdir()

    def __len__(self) -> int:
        return len(self._done)

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path) if self.path else 'memory'}, {len(self)} rows)"


def _frame(rows: list[Mapping[str, Any]]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({k: pd.Series([], dtype=object) for k in KEY})
    return pd.DataFrame(rows)


def _write_atomic(frame: pd.DataFrame, target: Path) -> None:
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, target)
