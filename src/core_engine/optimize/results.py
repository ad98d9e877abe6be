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

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

import core_engine
from core_engine._canonical import canonical
from core_engine._config import keyword_checked
from core_engine._validate import check_mapping, check_path
from core_engine.errors import ConfigError

__all__ = ["ResultStore", "canonical", "config_id"]

KEY = ("config_id", "scope")


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
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
