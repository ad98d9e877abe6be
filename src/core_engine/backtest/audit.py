"""The lookahead audit: re-run decisions on truncated and poisoned data and compare.

For each audited decision time ``t`` (decision row ``i``), the strategy's inputs are
recomputed on three versions of the panel:

* ``truncated`` — only the candles known at ``t`` (rows ``0..i``, :meth:`Panel.slice_rows`);
* ``future NaN`` — the full grid with every candle after row ``i`` set to NaN;
* ``future huge`` — the full grid with every price after row ``i`` replaced by huge random
  values (and volume likewise).

The scores, gate eligibility and picks (and ATR, when exits use it) at row ``i`` must equal
those of the full run. Any difference raises :class:`~core_engine.errors.LookaheadError`
naming the strategy, the time, the symbol and — by comparing every feature column one by
one — the feature(s) that changed. A decision that is causal gives bit-identical inputs up
to a relative tolerance of 1e-9 (summation order may differ in vectorised rolling code).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from core_engine._validate import check_instance, check_integer, check_rows
from core_engine.backtest.inputs import allocate_at, compute_inputs, scores_at
from core_engine.data.candles import DiscontinuityWarning
from core_engine.data.panel import FIELDS, Panel
from core_engine.errors import ConfigError, LookaheadError
from core_engine.risk.allocation import Allocator, TopNEqual
from core_engine.risk.exits import ExitRules

__all__ = ["audit_lookahead", "poisoned_panels"]

_PHRASES = {"truncated": "data truncated at the decision time",
            "future NaN": "data whose future is set to NaN",
            "future huge": "data whose future is replaced by huge values"}
_RTOL = 1e-9
#: What ``reference["inputs"]`` must hold (the keys compute_inputs returns that are read).
_REFERENCE_KEYS = ("features", "scores", "score_rows", "eligible", "confidence", "atr")
_ATOL = 1e-12


def poisoned_panels(panel: Panel, row: int, seed: int = 0) -> dict[str, Panel]:
    """The three versions of ``panel`` a decision at row ``row`` must not tell apart.

    Returns ``{"truncated": ..., "future NaN": ..., "future huge": ...}``.

    Raises
    ------
    ConfigError
        If ``panel`` is not a Panel, ``row`` not one of its rows, or ``seed`` not a
        non-negative integer.
    """
    check_instance(panel, Panel, "panel", "poisoned_panels")
    row = check_integer(row, "row", "poisoned_panels", low=0, high=panel.n_times - 1)
    seed = check_integer(seed, "seed", "poisoned_panels", low=0)
    rng = np.random.default_rng(seed)
    after = slice(row + 1, None)
    nan_fields, huge_fields = {}, {}
    n_after = max(panel.n_times - row - 1, 0)
    huge_base = rng.uniform(1e6, 1e9, size=(n_after, panel.n_symbols))
    for name in FIELDS:
        values = np.array(getattr(panel, name), order="F")
        values[after] = np.nan
        nan_fields[name] = values
        big = np.array(getattr(panel, name), order="F")
        scale = {"open": 1.0, "high": 1.5, "low": 0.5, "close": 1.1, "volume": 3.0}[name]
        big[after] = huge_base * scale
        huge_fields[name] = big
    return {"truncated": panel.slice_rows(0, row + 1),
            "future NaN": panel.with_fields(**nan_fields),
            "future huge": panel.with_fields(**huge_fields)}


def _differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return ~np.isclose(a, b, rtol=_RTOL, atol=_ATOL, equal_nan=True)


def _changed_features(ref: Mapping[str, np.ndarray], other: Mapping[str, np.ndarray],
                      row: int) -> list[str]:
    changed = []
    for name, values in ref.items():
        if name not in other or _differs(values[row], np.asarray(other[name])[row]).any():
            changed.append(name)
    return changed


def audit_lookahead(panel: Panel, strategy: Any, rows: np.ndarray, *, k: int,
                    gates: tuple = (), allocator: Any = None, exits: Any = None,
                    reference: Mapping | None = None, seed: int = 0) -> list[int]:
    """Audit ``k`` random decision rows of a run; return the audited rows.

    Parameters
    ----------
    panel, strategy, gates, allocator, exits
        As given to :func:`~core_engine.backtest.walk_forward`.
    rows : numpy.ndarray
        The evaluated decision rows to sample from.
    k : int
        How many rows to audit (all when fewer are available).
    reference : mapping, optional
        The full run (``{"inputs": compute_inputs(...)}``); computed when omitted.
    seed : int
        Seed of the row sampling and of the poison values.

    Raises
    ------
    LookaheadError
        If any audited decision differs on truncated or poisoned data.
    ConfigError
        If a parameter is malformed (the message names it): ``rows`` not rows of ``panel``,
        ``k`` not a positive integer, ``allocator`` / ``exits`` not an Allocator / ExitRules,
        ``reference`` not ``{"inputs": ...}`` as walk_forward builds it, ``seed`` not a
        non-negative integer.
    """
    where = "audit_lookahead"
    check_instance(panel, Panel, "panel", where)
    rows = check_rows(rows, "rows", where, n_rows=panel.n_times)
    k = check_integer(k, "k", where, low=1)
    allocator = check_instance(allocator, Allocator, "allocator", where, optional=True,
                               expected="an Allocator such as TopNEqual(n=3)")
    check_instance(exits, ExitRules, "exits", where, optional=True,
                   expected="ExitRules(...)")
    _check_reference(reference)
    seed = check_integer(seed, "seed", where, low=0)
    allocator = allocator if allocator is not None else TopNEqual()
    if rows.size == 0:
        return []
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(rows, size=min(int(k), rows.size), replace=False))
    if reference is None:
        reference = {"inputs": compute_inputs(panel, strategy, gates=gates, allocator=allocator,
                                              exits=exits)}
    ref = reference["inputs"]
    for row in chosen:
        row = int(row)
        ref_picks = allocate_at(ref, np.array([row]), allocator, panel.symbols)
        for label, variant in poisoned_panels(panel, row, seed=seed + row).items():
            with warnings.catch_warnings():
                # the huge poison jumps where real prices do not: not the user's data
                warnings.simplefilter("ignore", DiscontinuityWarning)
                other = compute_inputs(variant, strategy, gates=gates, allocator=allocator,
                                       exits=exits)
            _compare(panel, strategy, row, label, ref, other, ref_picks,
                     allocate_at(other, np.array([row]), allocator, panel.symbols))
    return [int(r) for r in chosen]


def _check_reference(reference: Any) -> None:
    inputs = reference.get("inputs") if isinstance(reference, Mapping) else None
    if reference is not None and not (
            isinstance(inputs, Mapping) and all(key in inputs for key in _REFERENCE_KEYS)):
        raise ConfigError(
            "The 'reference' parameter of audit_lookahead must be the full run as walk_forward "
            "builds it ({'inputs': compute_inputs(...)}, from core_engine.backtest.inputs) or "
            f"None. Got {type(reference).__name__} {reference!r:.80}.")


def _compare(panel: Panel, strategy: Any, row: int, label: str, ref: Mapping, other: Mapping,
             ref_picks, other_picks) -> None:
    t = panel.index[row] + pd.Timedelta(panel.step_ns, "ns")
    data = _PHRASES[label]
    when = f"{t:%Y-%m-%d %H:%M} UTC"
    changed = _changed_features(ref["features"], other["features"], row)
    where = (f"Feature(s) that changed: {changed}." if changed else
             "No feature column changed, so the leak is in the strategy's score() itself.")
    at = np.array([row])
    checks = [("score", scores_at(ref, at)[0], scores_at(other, at)[0]),
              ("gate eligibility", ref["eligible"][row], other["eligible"][row])]
    if ref.get("atr") is not None:
        checks.append(("ATR of the exit rules", ref["atr"][row], other["atr"][row]))
    for what, a, b in checks:
        bad = _differs(a, b)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise LookaheadError(
                f"Strategy {strategy!r} looks ahead: the {what} of {panel.symbols[j]} for the "
                f"decision at {when} is {float(b[j]):.10g} on {data} instead of "
                f"{float(a[j]):.10g} (data after the decision time changed it). {where}"
            )
    if not (np.array_equal(ref_picks.cols, other_picks.cols)
            and np.allclose(ref_picks.weights, other_picks.weights, rtol=_RTOL)):
        names = [panel.symbols[c] for c in ref_picks.cols]
        other_names = [panel.symbols[c] for c in other_picks.cols]
        raise LookaheadError(
            f"Strategy {strategy!r} looks ahead: the picks for the decision at {when} are "
            f"{other_names} on {data} instead of {names}. {where}"
        )
