"""Allocators: from scores and eligibility to at most ``n`` picks and their weights.

Every allocator picks the ``n`` best finite scores among eligible symbols (ties broken by
score descending, then symbol name ascending, so the result does not depend on the column
order) and gives them weights. Weights follow the *slot* rule: each of the ``n`` positions
is worth ``1/n`` of the capital, so ``k`` picks invest ``k/n`` in total, shared according to
the allocator's rule. Weights are therefore ``>= 0`` and sum to at most 1.

The vectorised form :meth:`Allocator.allocate` is what the backtest engine calls on the
decision rows; :meth:`Allocator.allocate_row` is the one-off form.

Examples
--------
>>> import numpy as np
>>> alloc = TopNEqual(n=2).allocate(np.array([[0.1, 0.5, 0.3]]), np.ones((1, 3), bool),
...                                 ["AAA", "BBB", "CCC"])
>>> alloc.picks.tolist(), alloc.weights.tolist()
([[1, 2]], [[0.5, 0.5]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from core_engine._config import keyword_checked
from core_engine._validate import check_items
from core_engine.errors import ConfigError
from core_engine.risk._kernels import top_n_select_2d

__all__ = [
    "Allocation",
    "Allocator",
    "ConfidenceWeighted",
    "InverseVolatility",
    "ScoreProportional",
    "TopNEqual",
    "allocation_extra",
    "symbol_name_rank",
]

#: The key of the strategy confidence in the ``extra`` mapping.
CONFIDENCE = "confidence"


@keyword_checked
class Allocation(NamedTuple):
    """Picks of an allocator on ``D`` decision rows.

    Attributes
    ----------
    picks : ndarray of int64, shape (D, min(n, N))
        Column positions of the picks, best first; ``-1`` marks an empty slot (always after
        the filled ones).
    weights : ndarray of float64, shape (D, min(n, N))
        Capital fraction of each pick, ``0.0`` for empty slots; each row sums to ``<= 1``.
    ranks : ndarray of int64, shape (D, min(n, N))
        1-based rank of each pick among the row's candidates, ``0`` for empty slots.
    """

    picks: np.ndarray
    weights: np.ndarray
    ranks: np.ndarray


def symbol_name_rank(symbols: Sequence[str]) -> np.ndarray:
    """Return the rank of each symbol's name (0 = alphabetically first); names must be unique."""
    names = [str(s) for s in check_items(symbols, "symbols", "symbol_name_rank",
                                         expected="a list of symbols")]
    if len(set(names)) != len(names):
        raise ConfigError(f"Allocator symbols must be unique. Got {names}.")
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names), dtype=np.int64)
    return rank


def _as_2d(name: str, values: Any, shape: tuple[int, int] | None, dtype: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 2:
        raise ConfigError(f"Allocator input {name!r} must be 2-D (decision rows × symbols). Got shape {arr.shape}.")
    if shape is not None and arr.shape != shape:
        raise ConfigError(f"Allocator input {name!r} has shape {arr.shape}; expected {shape}.")
    if dtype is bool and arr.dtype != np.bool_:
        raise ConfigError(f"Allocator input {name!r} must be a boolean mask. Got dtype {arr.dtype}.")
    return np.ascontiguousarray(arr, dtype=dtype)


@keyword_checked
@dataclass(frozen=True, kw_only=True)
class Allocator:
    """Base allocator: top ``n`` by score; subclasses choose eligibility and weights.

    Parameters
    ----------
    n : int
        Maximum number of positions (default 3, DESIGN.md §5).
    """

    n: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise ConfigError(f"The 'n' parameter of {type(self).__name__} must be a positive integer. Got {self.n!r}.")

    # ------------------------------------------------------------------ what it needs
    def features(self) -> list:
        """Feature computers the allocator needs (computed by the engine with the rest)."""
        return []

    def required_extra(self) -> tuple[str, ...]:
        """Keys the ``extra`` mapping of :meth:`allocate` must hold."""
        return ()

    # ------------------------------------------------------------------ subclass hooks
    def _eligible(self, scores: np.ndarray, eligible: np.ndarray, extra: Mapping[str, np.ndarray]) -> np.ndarray:
        return eligible

    def _raw_weights(self, picked_scores: np.ndarray, picked: dict[str, np.ndarray]) -> np.ndarray:
        return np.ones_like(picked_scores)

    # ------------------------------------------------------------------ public API
    def allocate(self, scores: np.ndarray, eligible: np.ndarray | None, symbols: Sequence[str],
                 extra: Mapping[str, np.ndarray] | None = None) -> Allocation:
        """Pick and weight on ``D`` decision rows at once.

        Parameters
        ----------
        scores : ndarray, shape (D, N)
            Strategy scores on the decision rows; NaN = not a candidate.
        eligible : ndarray of bool, shape (D, N), or None
            Gate mask (:func:`core_engine.risk.apply_gates`); None = all eligible.
        symbols : sequence of str, length N
            Column labels, used to break ties by name.
        extra : mapping of str to ndarray (D, N), optional
            Values the allocator needs, keyed as in :meth:`required_extra`
            (e.g. ``"volatility_20"``, ``"confidence"``); see :func:`allocation_extra`.

        Returns
        -------
        Allocation
            ``(picks, weights, ranks)``, each ``(D, min(n, N))`` (a slot per symbol at most).

        Raises
        ------
        ConfigError
            On shape mismatch, a non-boolean mask, duplicate symbols or a missing extra.
        """
        scores = _as_2d("scores", scores, None, np.float64)
        if len(symbols) != scores.shape[1]:
            raise ConfigError(f"Allocator got {len(symbols)} symbols for {scores.shape[1]} score columns.")
        if eligible is None:
            eligible = np.ones(scores.shape, dtype=bool)
        eligible = _as_2d("eligible", eligible, scores.shape, bool)
        extra = {} if extra is None else dict(extra)
        for key in self.required_extra():
            if key not in extra:
                raise ConfigError(
                    f"{type(self).__name__} needs extra[{key!r}] (a (D, N) array); got keys {sorted(extra)}."
                )
            extra[key] = _as_2d(f"extra[{key!r}]", extra[key], scores.shape, np.float64)
        mask = np.ascontiguousarray(self._eligible(scores, eligible, extra), dtype=np.bool_)
        # at most one slot per symbol: an absurd n (10**12) must not allocate (D, n) arrays;
        # the weights below still divide by n, so the result is the same for any n >= N
        slots = min(int(self.n), scores.shape[1])
        picks = top_n_select_2d(scores, mask, symbol_name_rank(symbols), slots)
        filled = picks >= 0
        safe = np.where(filled, picks, 0)
        picked_scores = np.where(filled, np.take_along_axis(scores, safe, axis=1), np.nan)
        picked = {k: np.where(filled, np.take_along_axis(v, safe, axis=1), np.nan)
                  for k, v in extra.items()}
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            raw = np.where(filled, self._raw_weights(picked_scores, picked), 0.0)
            # scale each row by its largest weight first, so huge or tiny values cannot
            # overflow the sum
            top = raw.max(axis=1, keepdims=True)
            raw = np.where(top > 0, raw / np.where(top > 0, top, 1.0), 0.0)
        total = raw.sum(axis=1, keepdims=True)
        k = filled.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            weights = np.where(total > 0, raw / total * (k / self.n), 0.0)
        ranks = np.where(filled, np.arange(1, slots + 1, dtype=np.int64)[None, :], 0)
        return Allocation(picks, weights, ranks)

    def allocate_row(self, scores: np.ndarray, eligible: np.ndarray | None, symbols: Sequence[str],
                     extra: Mapping[str, np.ndarray] | None = None) -> dict[str, float]:
        """One decision: return ``{symbol: weight}`` ordered best first (1-D inputs)."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 1:
            raise ConfigError(f"allocate_row expects 1-D scores. Got shape {scores.shape}.")
        row_extra = None if extra is None else {k: np.asarray(v)[None, :] for k, v in extra.items()}
        alloc = self.allocate(scores[None, :], None if eligible is None else np.asarray(eligible)[None, :],
                              symbols, row_extra)
        return {str(symbols[c]): float(w) for c, w in zip(alloc.picks[0], alloc.weights[0], strict=True) if c >= 0}


@keyword_checked
@dataclass(frozen=True, kw_only=True)
class TopNEqual(Allocator):
    """The ``n`` best scores, ``1/n`` of the capital each (the default allocator)."""


@keyword_checked
@dataclass(frozen=True, kw_only=True)
class ScoreProportional(Allocator):
    """The ``n`` best **positive** scores, sharing ``k/n`` of the capital in proportion to score.

    Candidates with a score ``<= 0`` are not picked (a weight proportional to a non-positive
    score is meaningless); use it with scores that are positive for good candidates, such as
    returns or breakout strength, not with z-scores centred on zero.
    """

    def _eligible(self, scores, eligible, extra):
        with np.errstate(invalid="ignore"):
            return eligible & (scores > 0)

    def _raw_weights(self, picked_scores, picked):
        return picked_scores


@keyword_checked
@dataclass(frozen=True, kw_only=True)
class InverseVolatility(Allocator):
    """The ``n`` best scores, sharing ``k/n`` of the capital in proportion to ``1/volatility``.

    Volatility is the rolling standard deviation of 1-bar returns over ``length`` bars
    (feature ``ReturnVolatility(length)``); a symbol without a finite, positive volatility is
    not picked.
    """

    length: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.length, bool) or not isinstance(self.length, (int, np.integer)) or self.length < 2:
            raise ConfigError(f"The 'length' parameter of InverseVolatility must be an integer >= 2. Got {self.length!r}.")

    def _computer(self):
        from core_engine.features import ReturnVolatility

        return ReturnVolatility(length=self.length)

    def features(self) -> list:
        return [self._computer()]

    def required_extra(self) -> tuple[str, ...]:
        return (self._computer().columns[0],)

    def _eligible(self, scores, eligible, extra):
        vol = extra[self.required_extra()[0]]
        with np.errstate(invalid="ignore"):
            return eligible & np.isfinite(vol) & (vol > 0)

    def _raw_weights(self, picked_scores, picked):
        vol = picked[self.required_extra()[0]]
        # min(vol) / vol rather than 1 / vol: the same proportions, no overflow for tiny vol
        with np.errstate(invalid="ignore"):
            lowest = np.min(np.where(vol > 0, vol, np.inf), axis=1, keepdims=True)
        return lowest / vol


@keyword_checked
@dataclass(frozen=True, kw_only=True)
class ConfidenceWeighted(Allocator):
    """The ``n`` best scores, sharing ``k/n`` of the capital in proportion to confidence.

    Confidence comes from :meth:`Strategy.confidence` (e.g. the Breakout's number of
    agreeing confirmations), passed as ``extra["confidence"]``; a symbol whose confidence
    is NaN or ``<= 0`` is not picked.
    """

    def required_extra(self) -> tuple[str, ...]:
        return (CONFIDENCE,)

    def _eligible(self, scores, eligible, extra):
        conf = extra[CONFIDENCE]
        with np.errstate(invalid="ignore"):
            return eligible & (conf > 0)

    def _raw_weights(self, picked_scores, picked):
        return picked[CONFIDENCE]


def allocation_extra(allocator: Allocator, features: Mapping[str, np.ndarray],
                     confidence: np.ndarray | None, rows: np.ndarray | slice) -> dict[str, np.ndarray]:
    """Build the ``extra`` mapping of ``allocator`` on the decision ``rows``.

    Parameters
    ----------
    features : mapping of str to (T, N) ndarray
        Feature arrays computed with (at least) ``allocator.features()``.
    confidence : (T, N) ndarray or None
        ``strategy.confidence_panel(...)``.
    rows : index array or slice
        The decision rows.

    Raises
    ------
    ConfigError
        If the allocator needs confidence and the strategy provides none, or a feature is missing.
    """
    extra = {}
    for key in allocator.required_extra():
        if key == CONFIDENCE:
            if confidence is None:
                raise ConfigError(
                    f"{type(allocator).__name__} needs a strategy that provides confidence(); this one returns None."
                )
            extra[key] = np.asarray(confidence)[rows]
        elif key in features:
            extra[key] = np.asarray(features[key])[rows]
        else:
            raise ConfigError(
                f"{type(allocator).__name__} needs feature {key!r}; compute allocator.features() with the others."
            )
    return extra
