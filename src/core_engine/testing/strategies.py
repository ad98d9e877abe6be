"""``check_strategy``: the lookahead and contract checks every strategy must pass.

The same helper checks the built-in strategies in our own tests and a user's strategy in
theirs (DESIGN.md §1, "leakage-proof").
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from core_engine._validate import check_instance
from core_engine.data.candles import DiscontinuityWarning
from core_engine.data.panel import FIELDS, Panel
from core_engine.errors import ConfigError, LookaheadError
from core_engine.strategies.base import Strategy, rank_candidates
from core_engine.testing._data import as_panel, check_options

__all__ = ["check_strategy", "POISONS"]

#: The garbage written after the checked row: all-NaN, huge prices, the future reversed.
POISONS = ("nan", "huge", "reversed")
_HUGE = 1e12


def check_strategy(strategy: Strategy, data: Any, *, n_times: int = 10, seed: int = 0,
                   rtol: float = 1e-9, atol: float = 1e-12) -> list[pd.Timestamp]:
    """Assert that ``strategy`` is causal and honours the strategy contract on ``data``.

    Checks, in order:

    1. parameters round-trip: ``clone()`` equals the original with equal ``get_params()``,
       and ``type(s)(**s.get_params()) == s``;
    2. inputs are not mutated: the panel and the feature arrays are unchanged by ``score``
       and ``confidence``;
    3. at ``n_times`` sampled rows ``i`` (seeded; rows with candidates preferred), the scores
       and confidence at every row ``<= i`` are unchanged when all candles after row ``i``
       are replaced by garbage: NaN, huge values (``1e12``), and the future in reverse order;
    4. at the decision time ``t = index[i] + timeframe``, the one-off path
       (:meth:`Strategy.scores_at` / :meth:`Strategy.select_symbols` on the data known at
       ``t``) agrees with row ``i`` of the vectorised scores;
    5. when the strategy declares ``row_local = True``, scoring row ``i`` alone (its panel
       row and feature row) gives row ``i`` of the full scores.

    Parameters
    ----------
    strategy : Strategy
    data : Panel, dict of str to DataFrame, or (store, symbols, timeframe)
        The forms ``walk_forward`` accepts. Should be longer than ``strategy.lookback`` so
        that some scores are not NaN.
    n_times : int
        Number of rows to check.
    seed : int
        Seed of the row sampling.
    rtol, atol : float
        Tolerance of the value comparisons (NaN equals NaN).

    Returns
    -------
    list of pandas.Timestamp
        The decision times checked.

    Raises
    ------
    LookaheadError
        If a score or confidence at or before row ``i`` depends on data after row ``i``
        (names the strategy, the symbol, the row time and the poison).
    AssertionError
        If parameters do not round-trip, an input is mutated, ``select_symbols``
        disagrees with the vectorised scores, or a ``row_local`` claim is false.
    ConfigError
        If ``data`` is none of the accepted forms, has fewer than 2 rows, or
        ``n_times < 1``.
    """
    check_instance(strategy, Strategy, "strategy", "check_strategy",
                   expected="a Strategy instance such as MomentumRank()")
    n_times, seed = check_options("check_strategy", n_times=n_times, seed=seed, rtol=rtol,
                                  atol=atol)
    data = as_panel(data, "check_strategy")
    if data.n_times < 2:
        raise ConfigError(f"check_strategy needs a panel of at least 2 rows. Got {data.n_times}.")
    _check_params(strategy)
    fingerprint = data.fingerprint()
    features = strategy.compute_features(data)
    snapshot = {k: np.array(v, copy=True) for k, v in features.items()}
    scores = strategy.score_panel(data, features=features)
    confidence = strategy.confidence_panel(data, features=features)
    _check_not_mutated(strategy, data, fingerprint, features, snapshot)

    checked = []
    for i in _sample_rows(strategy, scores, n_times, seed):
        for poison in POISONS:
            _check_poison(strategy, data, scores, confidence, i, poison, rtol, atol)
        t = data.index[i] + pd.Timedelta(data.step_ns, unit="ns")
        _check_one_off(strategy, data, scores, i, t, rtol, atol)
        _check_row_local(strategy, data, features, scores, confidence, i, rtol, atol)
        checked.append(t)
    return checked


def _check_row_local(strategy: Strategy, data: Panel, features: dict, scores: np.ndarray,
                     confidence: np.ndarray | None, i: int, rtol: float, atol: float) -> None:
    """A ``row_local`` strategy scored on row ``i`` alone must give row ``i`` of the full run."""
    if getattr(strategy, "row_local", False) is not True:
        return
    one_row = data.slice_rows(i, i + 1)
    one_features = {k: np.asarray(v)[i:i + 1] for k, v in features.items()}
    alone = strategy.score_panel(one_row, features=one_features)
    pairs: list[tuple[str, np.ndarray, np.ndarray | None]] = [("score", scores[i:i + 1], alone)]
    if confidence is not None:
        pairs.append(("confidence", confidence[i:i + 1],
                      strategy.confidence_panel(one_row, features=one_features)))
    for what, full, single in pairs:
        same = np.isclose(np.asarray(single, dtype=np.float64), full, rtol=rtol, atol=atol,
                          equal_nan=True)
        if not same.all():
            j = int(np.flatnonzero(~same.ravel())[0])
            raise AssertionError(
                f"{strategy!r} declares row_local = True, but its {what} of "
                f"{data.symbols[j]} at {_when(data, i)} is {full.ravel()[j]!r} in the full run "
                f"and {np.asarray(single).ravel()[j]!r} when row {i} is scored alone; "
                "set row_local = False."
            )


def _check_params(strategy: Strategy) -> None:
    params = strategy.get_params()
    clone = strategy.clone()
    if clone is strategy or not (clone == strategy):
        raise AssertionError(f"{strategy!r}: clone() returned {clone!r}, which is not equal to the original.")
    for key, value in clone.get_params().items():
        if not _same_param(value, params[key]):
            raise AssertionError(
                f"{strategy!r}: parameter {key!r} does not round-trip through clone(): "
                f"{params[key]!r} became {value!r}."
            )
    rebuilt = type(strategy)(**params)
    if not (rebuilt == strategy):
        raise AssertionError(f"{strategy!r}: {type(strategy).__name__}(**get_params()) gave {rebuilt!r}.")


def _same_param(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    return bool(a == b)


def _check_not_mutated(strategy: Strategy, data: Panel, fingerprint: str,
                       features: Mapping[str, np.ndarray], snapshot: Mapping[str, np.ndarray]) -> None:
    if data.fingerprint() != fingerprint:
        raise AssertionError(f"{strategy!r} mutated the input panel.")
    for key, before in snapshot.items():
        if not np.array_equal(np.asarray(features[key]), before, equal_nan=True):
            raise AssertionError(f"{strategy!r} mutated its input feature {key!r}.")


def _sample_rows(strategy: Strategy, scores: np.ndarray, n_times: int, seed: int) -> list[int]:
    n_rows = scores.shape[0]
    rows = np.arange(min(max(int(strategy.lookback), 0), n_rows - 2), n_rows - 1)
    rng = np.random.default_rng(seed)
    with_candidates = rows[np.isfinite(scores[rows]).any(axis=1)]
    others = np.setdiff1d(rows, with_candidates)
    n_first = min(len(with_candidates), max(n_times - n_times // 3, n_times - len(others)))
    first: np.ndarray | list[int] = (
        rng.choice(with_candidates, size=n_first, replace=False) if n_first else [])
    n_rest = min(len(others), n_times - n_first)
    rest: np.ndarray | list[int] = rng.choice(others, size=n_rest, replace=False) if n_rest else []
    return sorted(int(i) for i in np.concatenate([np.asarray(first, int), np.asarray(rest, int)]))


def _poisoned(data: Panel, i: int, poison: str) -> Panel:
    fields = {}
    for name in FIELDS:
        values = np.array(getattr(data, name), order="F", copy=True)
        if poison == "nan":
            values[i + 1:] = np.nan
        elif poison == "huge":
            values[i + 1:] = _HUGE
        else:
            values[i + 1:] = values[i + 1:][::-1].copy()
        fields[name] = values
    return data.with_fields(**fields)


def _raw_outputs(strategy: Strategy, panel: Panel) -> tuple[np.ndarray, np.ndarray | None]:
    # the poisons jump where real prices do not: not the user's data to warn about
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DiscontinuityWarning)
        features = strategy.compute_features(panel)
        scores = strategy._call("score", lambda: strategy.score(features, panel))
        conf = strategy._call("confidence", lambda: strategy.confidence(features, panel))
    conf = None if conf is None else np.asarray(conf, dtype=np.float64)
    return np.asarray(scores, dtype=np.float64), conf


def _check_poison(strategy: Strategy, data: Panel, scores: np.ndarray, confidence: np.ndarray | None,
                  i: int, poison: str, rtol: float, atol: float) -> None:
    got_scores, got_conf = _raw_outputs(strategy, _poisoned(data, i, poison))
    pairs: list[tuple[str, np.ndarray, np.ndarray | None]] = [("score", scores, got_scores)]
    if confidence is not None:
        pairs.append(("confidence", confidence, got_conf))
    for what, expected, got in pairs:
        if got is None or got.shape != expected.shape:
            raise LookaheadError(
                f"{strategy!r}: {what} changed shape/presence when the data after row {i} were poisoned ({poison})."
            )
        _compare(strategy, data, expected[: i + 1], got[: i + 1], rtol, atol, LookaheadError,
                 f"{what} changed when the candles after {_when(data, i)} were replaced by "
                 f"'{poison}' garbage (it uses future data)")


def _check_one_off(strategy: Strategy, data: Panel, scores: np.ndarray, i: int, t: pd.Timestamp,
                   rtol: float, atol: float) -> None:
    one_off = strategy.scores_at(data, t).to_numpy()
    _compare(strategy, data, scores[i: i + 1], one_off[None, :], rtol, atol, LookaheadError,
             f"scores_at(data, {t:%Y-%m-%d %H:%M} UTC) on the data known at that time disagrees "
             "with the vectorised scores (it uses future data)", row0=i)
    selected = strategy.select_symbols(data, t)
    expected = rank_candidates(scores[i], list(data.symbols))
    if selected != expected and not _near_tie(scores[i], rtol, atol):
        raise AssertionError(
            f"{strategy!r}: select_symbols at {t:%Y-%m-%d %H:%M} UTC returned {selected}; the "
            f"vectorised scores rank {expected}."
        )


def _near_tie(row: np.ndarray, rtol: float, atol: float) -> bool:
    finite = np.sort(row[np.isfinite(row)])
    return bool(np.any(np.diff(finite) <= atol + rtol * np.abs(finite[1:])))


def _when(data: Panel, i: int) -> str:
    return f"row {i} ({data.index[i]:%Y-%m-%d %H:%M} UTC)"


def _compare(strategy: Strategy, data: Panel, expected: np.ndarray, got: np.ndarray, rtol: float,
             atol: float, error: type[Exception], message: str, row0: int = 0) -> None:
    same = np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    if same.all():
        return
    r, j = np.argwhere(~same)[0]
    raise error(
        f"{strategy!r}: {message}: {data.symbols[j]} at {_when(data, row0 + r)} was "
        f"{expected[r, j]!r}, became {got[r, j]!r}."
    )
