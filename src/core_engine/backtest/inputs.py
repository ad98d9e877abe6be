"""The causal inputs of a run: features, scores, gate eligibility, ATR, and the picks of the
allocator on the decision rows.

Both the engine (:mod:`core_engine.backtest.engine`) and the lookahead audit
(:mod:`core_engine.backtest.audit`) build on these functions, so they live apart from both:
the engine imports the audit, and neither imports the other's module for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from core_engine.backtest.simulate import Picks
from core_engine.data.panel import Panel
from core_engine.data.timeframes import format_timeframe
from core_engine.errors import ConfigError, StrategyError
from core_engine.risk.allocation import Allocator, TopNEqual, allocation_extra
from core_engine.risk.exits import ExitRules
from core_engine.risk.gates import apply_gates, gate_features

__all__ = ["allocate_at", "compute_inputs", "scores_at", "warm_up"]


def _dedupe(computers: Iterable[Any]) -> list:
    seen, out = set(), []
    for comp in computers:
        key = (type(comp).__qualname__, tuple(getattr(comp, "columns", ()) or ()), repr(comp))
        if key not in seen:
            seen.add(key)
            out.append(comp)
    return out


def _atr_computer(exits: ExitRules | None):
    if exits is None or not exits.uses_atr:
        return None
    from core_engine.features import ATR

    return ATR(length=exits.atr_length)


def warm_up(strategy: Any, gates: tuple = (), allocator: Allocator | None = None,
            exits: ExitRules | None = None) -> int:
    """Candles of warm-up before the first decision: the largest ``lookback`` of the
    strategy, the gates, the allocator's features and the ATR of ATR exits."""
    allocator = allocator if allocator is not None else TopNEqual()
    try:
        lookbacks = [int(strategy.lookback)]
    except Exception as exc:
        raise StrategyError(
            f"Strategy {strategy!r} failed in lookback: {type(exc).__name__}: {exc}"
        ) from exc
    lookbacks += [int(g.lookback) for g in gates]
    lookbacks += [int(c.lookback) for c in allocator.features()]
    atr_comp = _atr_computer(exits)
    if atr_comp is not None:
        lookbacks.append(int(atr_comp.lookback))
    return max(lookbacks)


def compute_inputs(panel: Panel, strategy: Any, *, gates: tuple = (),
                   allocator: Allocator | None = None, exits: ExitRules | None = None,
                   cache: Any = None, rows: np.ndarray | None = None) -> dict:
    """Features, scores, eligibility (and confidence/ATR) of ``panel``: the causal inputs.

    Parameters
    ----------
    rows : numpy.ndarray, optional
        Evenly spaced decision rows. When given and the strategy declares
        ``row_local = True`` (its score at row ``i`` reads the features of row ``i`` only,
        e.g. thresholds and cross-sectional ranks), the strategy scores only these rows
        instead of all ``T``: same values, a fraction of the work.

    Returns
    -------
    dict
        ``features`` (dict of (T, N)), ``scores`` ((T, N), or one row per ``score_rows``),
        ``score_rows`` (None = every row), ``eligible`` (T, N bool, ATR availability
        included when exits use ATR), ``confidence`` (like ``scores``, or None), ``atr``
        ((T, N) or None), ``lookback`` (int). Read scores with :func:`scores_at`.
    """
    from core_engine.features.cache import compute_features

    allocator = allocator if allocator is not None else TopNEqual()
    atr_comp = _atr_computer(exits)
    try:
        declared = list(strategy.features())
    except Exception as exc:
        raise StrategyError(
            f"Strategy {strategy!r} failed in features(): {type(exc).__name__}: {exc}"
        ) from exc
    computers = declared + gate_features(gates) + list(allocator.features())
    if atr_comp is not None:
        computers.append(atr_comp)
    computers = _dedupe(computers)
    features = compute_features(computers, panel, cache=cache)
    score_rows = None
    score_panel: Panel = panel
    score_features: Mapping[str, np.ndarray] = features
    if rows is not None and len(rows) and getattr(strategy, "row_local", False) is True:
        # Decision rows lie on one arithmetic grid (shift / step apart) but skipped times
        # leave holes, so the step is the gcd of the gaps, not the first gap.
        spacing = int(np.gcd.reduce(np.diff(rows))) if len(rows) > 1 else 1
        every = slice(int(rows[0]), int(rows[-1]) + 1, spacing)  # views, no copies
        score_rows = np.arange(every.start, every.stop, spacing)
        score_panel = _RowsPanel.of(panel, every)
        score_features = RowFeatures(features, every)
    scores = strategy.score_panel(score_panel, features=score_features)
    eligible = apply_gates(gates, features, panel)
    confidence = None
    if "confidence" in allocator.required_extra():
        confidence = strategy.confidence_panel(score_panel, features=score_features)
    atr = None
    if atr_comp is not None:
        atr = features[atr_comp.columns[0]]
        eligible = eligible & np.isfinite(atr)
    return {"features": features, "scores": scores, "score_rows": score_rows,
            "eligible": eligible, "confidence": confidence, "atr": atr,
            "lookback": warm_up(strategy, gates, allocator, exits)}


def _gather(values: np.ndarray, every: slice) -> np.ndarray:
    """Rows ``every`` of a ``(T, N)`` array as a read-only Fortran array.

    One strided pass (a cache line per value) instead of one per operation a strategy
    applies to a strided view: elementwise numpy on a view 24 rows apart is ~50x slower
    than on the gathered copy.
    """
    out = np.asfortranarray(values[every])
    out.flags.writeable = False
    return out


class RowFeatures(Mapping):
    """The features of a run on the decision rows ``every`` only, gathered on first read.

    A row-local strategy scores the decision rows alone; it reads a few of the features
    computed for all rows, so each is gathered when first read (and kept), not all up front.
    A read-only mapping of column name to ``(len(rows), N)`` array, like the full features.
    """

    def __init__(self, features: Mapping[str, np.ndarray], every: slice) -> None:
        self._source = features
        self._every = every
        self._gathered: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        found = self._gathered.get(name)
        if found is None:
            found = self._gathered[name] = _gather(self._source[name], self._every)
        return found

    def __iter__(self):
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)

    def copy(self) -> dict[str, np.ndarray]:
        """A plain dict of every column (each gathered), as ``dict.copy`` gives."""
        return {name: self[name] for name in self._source}


class _RowsPanel(Panel):
    """The panel's candles on the decision rows ``every``, each field gathered on first read.

    Its candles are the panel's own, so the candle contract is not checked again (as for
    ``Panel.slice_rows``); a field no strategy reads is never copied.
    """

    @classmethod
    def of(cls, panel: Panel, every: slice) -> Panel:
        rows = object.__new__(cls)
        object.__setattr__(rows, "_source", panel)
        object.__setattr__(rows, "_every", every)
        object.__setattr__(rows, "_gathered", {})
        object.__setattr__(rows, "index", panel.index[every])
        object.__setattr__(rows, "symbols", panel.symbols)
        object.__setattr__(rows, "timeframe", format_timeframe(every.step * panel.step_ns))
        return rows

    def _field(self, name: str) -> np.ndarray:
        found = self._gathered.get(name)  # type: ignore[attr-defined]
        if found is None:
            found = _gather(getattr(self._source, name), self._every)  # type: ignore[attr-defined]
            self._gathered[name] = found  # type: ignore[attr-defined]
        return found

    open = property(lambda self: self._field("open"))
    high = property(lambda self: self._field("high"))
    low = property(lambda self: self._field("low"))
    close = property(lambda self: self._field("close"))
    volume = property(lambda self: self._field("volume"))


def scores_at(inputs: Mapping, rows: np.ndarray, key: str = "scores") -> np.ndarray:
    """``inputs[key]`` (scores or confidence) on panel ``rows``, shape ``(len(rows), N)``."""
    values = inputs[key]
    score_rows = inputs.get("score_rows")
    if score_rows is None:
        return values[rows]
    pos = np.searchsorted(score_rows, rows)
    if np.any(pos >= len(score_rows)) or np.any(score_rows[np.minimum(pos, len(score_rows) - 1)] != rows):
        raise ConfigError("scores_at: the strategy was scored on other rows than those asked for.")
    return values[pos]


def allocate_at(inputs: Mapping, rows: np.ndarray, allocator: Allocator,
                symbols: tuple[str, ...]) -> Picks:
    """The allocator's picks on decision ``rows``, flattened into :class:`Picks`."""
    rows = np.asarray(rows, dtype=np.int64)
    scores = scores_at(inputs, rows)
    confidence = None if inputs["confidence"] is None else scores_at(inputs, rows, "confidence")
    needed = {k: inputs["features"][k][rows] for k in allocator.required_extra()
              if k in inputs["features"]}
    extra = allocation_extra(allocator, needed, confidence, slice(None))
    alloc = allocator.allocate(scores, inputs["eligible"][rows], symbols, extra)
    filled = alloc.picks >= 0
    d_idx, slot = np.nonzero(filled)
    cols = alloc.picks[d_idx, slot]
    return Picks(rows=rows[d_idx], cols=cols, weights=alloc.weights[d_idx, slot],
                 ranks=alloc.ranks[d_idx, slot], scores=scores[d_idx, cols])
