"""Reading and writing a saved run: one directory of ``trades.parquet``, ``equity.parquet``
and ``run.json``.

``run.json`` is strict JSON (RFC 8259: no ``NaN``/``Infinity`` tokens), so any JSON reader
can open it. A non-finite number is written as ``null`` and its place is listed under
``"non_finite"`` (``{"path": ["metrics", "sharpe"], "value": "NaN"}``), from which
:func:`read_run` puts the exact value back. Files written before this rule (format 1, with
bare ``NaN`` tokens) still load.

Everything read is checked before it is used: a garbled, truncated or hand-edited file, a
missing section or a value of the wrong type raises :class:`~core_engine.errors.ConfigError`
naming the file and the key, never a raw ``JSONDecodeError``, ``KeyError`` or Arrow error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core_engine._validate import check_path
from core_engine.errors import ConfigError

__all__ = ["FILES", "FORMAT_VERSION", "read_blocked", "read_run", "write_run"]

FORMAT_VERSION = 2
FILES = ("trades.parquet", "equity.parquet", "run.json")
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_SECTIONS = ("config", "metrics", "data_quality")
#: Columns a saved run's tables must hold (others may follow).
TRADE_COLUMNS = ("symbol", "decision_time", "entry_time", "exit_time", "entry_price",
                 "exit_price", "weight", "return_pct", "exit_reason")
EQUITY_COLUMNS = ("decision_time", "equity", "drawdown_pct")
#: Portfolio mode: the account marked at every candle close, and the blocked picks.
ACCOUNT_EQUITY_COLUMNS = ("time", "equity", "cash", "exposure", "drawdown_pct")
BLOCKED_COLUMNS = ("decision_time", "symbol", "rank", "score", "reason")

_NUMBER, _INT, _STR, _DICT, _LIST = "a number", "an integer", "a string", "an object", "a list"
_CONFIG_TYPES = {
    "strategy": (_DICT,), "window": (_STR,), "shift": (_STR,), "start": (_STR, None),
    "end": (_STR, None), "fee_bps": (_NUMBER,), "slippage_bps": (_NUMBER,),
    "max_positions": (_INT,), "allocator": (_STR,), "gates": (_LIST,), "exits": (_DICT, None),
    "mode": (_STR,), "audit": (_INT,), "timeframe": (_STR,), "symbols": (_LIST,),
    "library_version": (_STR,), "data_fingerprint": (_STR,), "max_exit_delay": (_INT, None),
}
_STRATEGY_TYPES = {"name": (_STR,), "class": (_STR,), "params": (_DICT,), "repr": (_STR,)}
_QUALITY_TYPES = {
    "symbols": (_LIST,), "n_symbols": (_INT,), "timeframe": (_STR,), "candles": (_INT,),
    "start": (_STR, None), "end": (_STR, None), "first_decision_time": (_STR, None),
    "last_decision_time": (_STR, None), "skipped_decision_times": (_DICT,),
    "missing_candles_by_symbol": (_DICT,), "gap_candles_by_symbol": (_DICT,),
    "price_discontinuities_by_symbol": (_DICT,), "discontinuity_factor": (_NUMBER,),
    **{key: (_INT,) for key in (
        "missing_candles", "gap_candles", "warm_up_candles", "decision_times_scheduled",
        "decision_times_evaluated", "picks", "picks_without_entry_candle", "trades_with_gaps",
        "trades_exit_at_last_close", "trades_exit_delayed", "exit_delay_candles_max",
        "trades_exit_delay_capped", "price_discontinuities", "trades_across_discontinuity")},
}


# ---------------------------------------------------------------------------- writing
def _strict(value: Any, path: list, found: list) -> Any:
    """``value`` with every non-finite float replaced by None (its path appended to found)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        found.append({"path": list(path),
                      "value": "NaN" if math.isnan(value) else
                      ("Infinity" if value > 0 else "-Infinity")})
        return None
    if isinstance(value, Mapping):
        return {str(k): _strict(v, [*path, str(k)], found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v, [*path, i], found) for i, v in enumerate(value)]
    return value


def write_run(folder: str | Path, trades: pd.DataFrame, equity: pd.DataFrame,
              sections: Mapping[str, Any], *, overwrite: bool = False,
              blocked: pd.DataFrame | None = None) -> Path:
    """Write a run to ``folder``; refuse to replace a saved run unless ``overwrite``.
    ``blocked`` (portfolio mode) goes to ``blocked.parquet``.

    Raises
    ------
    ConfigError
        If ``folder`` is a file, already holds a saved run and ``overwrite`` is False, or
        cannot be written.
    """
    folder = check_path(folder, "path", "BacktestResult.save", kind="dir")
    if not isinstance(overwrite, bool):
        raise ConfigError(f"The 'overwrite' parameter of BacktestResult.save must be True or "
                          f"False. Got {overwrite!r}.")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"BacktestResult.save needs a directory; '{folder}' is a file.")
    existing = [name for name in FILES if (folder / name).exists()]
    if existing and not overwrite:
        raise ConfigError(
            f"'{folder}' already holds a saved run ({', '.join(existing)}); "
            "BacktestResult.save will not replace it. Pass overwrite=True to replace it, "
            "or choose another directory."
        )
    found: list = []
    payload: dict[str, Any] = {"format_version": FORMAT_VERSION}
    payload.update({name: _strict(sections[name], [name], found) for name in _SECTIONS})
    payload["non_finite"] = found
    text = json.dumps(payload, indent=2, default=str, allow_nan=False)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        trades.to_parquet(folder / "trades.parquet", index=False)
        equity.to_parquet(folder / "equity.parquet", index=False)
        if blocked is not None:
            blocked.to_parquet(folder / "blocked.parquet", index=False)
        (folder / "run.json").write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"BacktestResult.save could not write the run to '{folder}': "
                          f"{type(exc).__name__}: {exc}") from exc
    return folder


# ---------------------------------------------------------------------------- reading
def _fail(file: Path, key: str, message: str) -> ConfigError:
    return ConfigError(f"The saved run file '{file}' is damaged: {key} {message}")


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Integral):
        return _INT
    if isinstance(value, Real):
        return _NUMBER
    names: dict[type, str] = {str: _STR, dict: _DICT, list: _LIST}
    return names.get(type(value), type(value).__name__)


def _check_types(file: Path, where: str, section: Mapping, types: Mapping) -> None:
    for key, allowed in types.items():
        if key not in section:
            continue
        kind = _kind(section[key])
        ok = kind in allowed or (kind == _INT and _NUMBER in allowed)
        if not ok:
            names = " or ".join("null" if a is None else a for a in allowed)
            raise _fail(file, f"'{where}.{key}'",
                        f"must be {names}; found {section[key]!r}.")


def _check_counts(file: Path, where: str, mapping: Any) -> None:
    if not isinstance(mapping, Mapping):
        raise _fail(file, f"'{where}'", f"must be an object of counts; found {mapping!r}.")
    for key, value in mapping.items():
        if _kind(value) != _INT:
            raise _fail(file, f"'{where}.{key}'", f"must be an integer; found {value!r}.")


def _restore(file: Path, payload: dict) -> None:
    entries = payload.get("non_finite", [])
    if not isinstance(entries, list):
        raise _fail(file, "'non_finite'", f"must be a list; found {entries!r}.")
    for entry in entries:
        ok = (isinstance(entry, Mapping) and isinstance(entry.get("path"), list)
              and len(entry["path"]) >= 2 and entry.get("value") in _NON_FINITE)
        if not ok:
            raise _fail(file, "'non_finite'", f"holds an invalid entry {entry!r}.")
        *parents, last = entry["path"]
        node: Any = payload
        try:
            for key in parents:
                node = node[key]
            if node[last] is not None:
                raise TypeError
        except (KeyError, IndexError, TypeError):
            raise _fail(file, f"'non_finite' entry {entry['path']}",
                        "points at no null value in the file.") from None
        node[last] = _NON_FINITE[entry["value"]]


def _check_payload(file: Path, payload: Any) -> None:
    if not isinstance(payload, dict):
        raise _fail(file, "the top level", f"must be a JSON object; found {_kind(payload)}.")
    version = payload.get("format_version")
    if version not in (1, FORMAT_VERSION) or isinstance(version, bool):
        raise _fail(file, "'format_version'",
                    f"must be 1 or {FORMAT_VERSION}; found {version!r}.")
    for name in _SECTIONS:
        if name not in payload:
            raise _fail(file, f"the key '{name}'", "is missing.")
        if not isinstance(payload[name], dict):
            raise _fail(file, f"'{name}'", f"must be an object; found {payload[name]!r}.")
    if version == FORMAT_VERSION:
        _restore(file, payload)
    config, metrics, quality = (payload[name] for name in _SECTIONS)
    _check_types(file, "config", config, _CONFIG_TYPES)
    _check_types(file, "config.strategy", config.get("strategy", {}), _STRATEGY_TYPES)
    for key in ("trades", "decisions"):
        if key not in metrics:
            raise _fail(file, f"'metrics.{key}'", "is missing.")
        if _kind(metrics[key]) != _INT:
            raise _fail(file, f"'metrics.{key}'", f"must be an integer; found {metrics[key]!r}.")
    for key, value in metrics.items():
        if key == "exit_reasons":
            _check_counts(file, "metrics.exit_reasons", value)
        elif isinstance(value, Mapping):  # a breakdown: numbers by name
            for name, item in value.items():
                if _kind(item) not in (_INT, _NUMBER, None):
                    raise _fail(file, f"'metrics.{key}.{name}'",
                                f"must be a number; found {item!r}.")
        elif _kind(value) not in (_INT, _NUMBER, None):
            raise _fail(file, f"'metrics.{key}'", f"must be a number; found {value!r}.")
    _check_types(file, "data_quality", quality, _QUALITY_TYPES)
    for key, value in quality.items():
        if key.endswith("_by_symbol") or key == "skipped_decision_times":
            _check_counts(file, f"data_quality.{key}", value)
        elif key not in _QUALITY_TYPES and _kind(value) not in (_INT, _NUMBER, _STR, None):
            raise _fail(file, f"'data_quality.{key}'",
                        f"must be a number or a string; found {value!r}.")


def _read_table(file: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(file)
    except Exception as exc:  # pyarrow raises several unrelated classes on damaged files
        raise ConfigError(f"The saved run file '{file}' is not a readable Parquet table: "
                          f"{type(exc).__name__}: {exc}") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise _fail(file, f"the column(s) {missing}", "are missing.")
    return frame


def read_run(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Read and check a saved run; return ``(trades, equity, payload)``.

    Raises
    ------
    ConfigError
        If ``folder`` is not a saved run, or any of its files is damaged (the message names
        the file and the key).
    """
    folder = check_path(folder, "path", "BacktestResult.load", kind="dir")
    missing = [n for n in FILES if not (folder / n).is_file()]
    if missing:
        raise ConfigError(
            f"'{folder}' is not a saved backtest run: missing {missing}; expected a "
            "directory written by BacktestResult.save()."
        )
    file = folder / "run.json"
    try:
        payload = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"The saved run file '{file}' is not valid JSON: {exc}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The saved run file '{file}' cannot be read: "
                          f"{type(exc).__name__}: {exc}") from None
    _check_payload(file, payload)
    trades = _read_table(folder / "trades.parquet", TRADE_COLUMNS)
    portfolio = payload["config"].get("mode") == "portfolio"
    equity = _read_table(folder / "equity.parquet",
                         ACCOUNT_EQUITY_COLUMNS if portfolio else EQUITY_COLUMNS)
    return trades, equity, payload


def read_blocked(folder: str | Path) -> pd.DataFrame | None:
    """The blocked picks of a saved portfolio run (None when the run has none saved)."""
    file = Path(folder) / "blocked.parquet"
    return _read_table(file, BLOCKED_COLUMNS) if file.is_file() else None
