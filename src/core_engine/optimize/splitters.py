"""Cross-validation splitters on decision times, purged by label end, with an embargo.

A decision at time ``t`` is *labelled* until its label end ``e``: a backtest trade decided at
``t`` is held until the open of the candle starting at ``t + window``, so its outcome (its
label) is only known at ``e = t + window``. Label intervals are closed, ``[t, e]``: two
decisions overlap when one interval reaches the other, touching included, which is
conservative by one decision against López de Prado's snippet 7.3 (there a training label
that ends exactly at the first test decision is kept).

For every split the test decisions form one or more *test blocks* (maximal runs of
consecutive test times). For a block with first decision ``b0`` and latest label end ``E``:

* **purging** drops every training decision whose label interval overlaps ``[b0, E]``,
  i.e. ``t <= E`` and ``e >= b0``;
* **embargo** ``h`` drops the training decisions that start within ``h`` after the block's
  labels end, ``E < t <= E + h`` (serial correlation leaks forward, López de Prado 2018,
  *Advances in Financial Machine Learning*, §7.4.2). In a walk-forward, training always
  precedes testing, so there the embargo is a gap before the test: a training label must end
  more than ``h`` before ``b0`` (``e + h < b0``).

Splits are defined on the *unique* decision times, and rows sharing a time (one row per
symbol in a panel data set) always land on the same side.

The splitters follow scikit-learn's protocol (``split(X, y=None, groups=None)`` yielding
integer positions, ``get_n_splits``), so they can be given as ``cv=`` to
``cross_val_score`` or ``GridSearchCV``. ``X`` supplies the decision times: a
``DatetimeIndex``, a Series/DataFrame indexed by time (or by a MultiIndex with a datetime
level, e.g. ``(decision_time, symbol)``), or an array of ``datetime64``. Label ends come from
``purge=`` (a duration added to every decision time) or from ``split(..., label_end=...)``;
when both are given the later end wins.

Purging and embargo are written here by hand: scikit-learn's ``TimeSeriesSplit`` only has a
row-count ``gap`` and no purging by label end, and no well-kept library ships them.
"""

from __future__ import annotations

import datetime
import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError

__all__ = ["ROLES", "CombinatorialPurgedCV", "PurgedKFold", "WalkForward", "decision_times_of"]

#: Role codes of :meth:`roles` (index = code).
ROLES = ("", "train", "test", "purged", "embargoed")
_UNUSED, _TRAIN, _TEST, _PURGED, _EMBARGOED = range(5)

#: The most splits a combinatorial splitter builds (each is a backtest per trial).
MAX_SPLITS = 100_000


def _duration(value: Any, owner: str, name: str, *, fraction: bool = False) -> int | float:
    """Nanoseconds of a duration (``0``/None = none); a float in [0, 1) is a fraction of the
    time span when ``fraction`` is allowed."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                         and value == 0) or value == "0":
        return 0
    if fraction and isinstance(value, float) and 0.0 < value < 1.0:
        return float(value)
    if isinstance(value, (str, datetime.timedelta, np.timedelta64)):
        try:
            return timeframe_ns(value if isinstance(value, str) else pd.Timedelta(value),
                                name=name)
        except (ConfigError, ValueError):
            pass
    extra = " or a fraction in (0, 1) of the time span" if fraction else ""
    raise ConfigError(
        f"The '{name}' parameter of {owner} must be a duration such as '4h' or '2d'{extra}. "
        f"Got {value!r}."
    )


def decision_times_of(X: Any) -> np.ndarray:
    """The int64 UTC nanosecond decision time of every row of ``X``.

    ``X`` is a ``DatetimeIndex``, a Series or DataFrame indexed by time (or by a MultiIndex
    with a datetime level; a DataFrame may instead have a ``decision_time`` column), an
    object with a ``times`` DatetimeIndex (a DecisionSchedule) or an array of datetime64.

    Raises
    ------
    ConfigError
        If no decision times can be read from ``X`` or one is missing (NaT).
    """
    index: Any = None
    if isinstance(X, pd.DatetimeIndex):
        index = X
    elif isinstance(X, (pd.Series, pd.DataFrame)):
        if isinstance(X.index, pd.DatetimeIndex):
            index = X.index
        elif isinstance(X.index, pd.MultiIndex):
            for level in range(X.index.nlevels):
                values = X.index.get_level_values(level)
                if isinstance(values, pd.DatetimeIndex):
                    index = values
                    break
        if index is None and isinstance(X, pd.DataFrame) and "decision_time" in X.columns:
            index = pd.DatetimeIndex(X["decision_time"])
    elif isinstance(getattr(X, "times", None), pd.DatetimeIndex):
        index = X.times
    elif isinstance(X, (np.ndarray, list, tuple)):
        array = np.asarray(X)
        if np.issubdtype(array.dtype, np.datetime64) or (array.dtype == object and len(array)):
            try:
                index = pd.DatetimeIndex(array)
            except (TypeError, ValueError):
                index = None
    if index is None:
        raise ConfigError(
            "A splitter needs the decision times: pass a DatetimeIndex, a Series/DataFrame "
            "indexed by time (or with a datetime level), or an array of datetime64 as X. "
            f"Got {type(X).__name__}."
        )
    if index.hasnans:
        raise ConfigError("The decision times given to the splitter contain NaT.")
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)


class _PurgedSplitter:
    """Shared machinery: label ends, purging, embargo, roles, plot and the sklearn surface."""

    _embargo_before_test = False
    #: Drop splits left without a training decision (walk-forward) instead of keeping them.
    _skip_empty_train = False

    def __init__(self, *, purge: Any = None, embargo: Any = None) -> None:
        name = type(self).__name__
        self.purge = purge
        self.embargo = embargo
        self._purge_ns = int(_duration(purge, name, "purge"))
        self._embargo = _duration(embargo, name, "embargo", fraction=True)

    # ------------------------------------------------------------------ subclass hook
    def _folds(self, unique: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per split, boolean masks over the unique sorted times: (train candidates, test)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ core
    def _prepare(self, X: Any, label_end: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                         np.ndarray]:
        times = decision_times_of(X)
        ends = times + self._purge_ns
        if label_end is not None:
            given = decision_times_of(pd.DatetimeIndex(np.asarray(label_end)))
            if given.shape != times.shape:
                raise ConfigError(
                    f"The 'label_end' argument of {type(self).__name__}.split must hold one "
                    f"time per row of X ({len(times)}). Got {len(given)}."
                )
            if np.any(given < times):
                row = int(np.flatnonzero(given < times)[0])
                raise ConfigError(
                    f"The label end of row {row} ({pd.Timestamp(given[row])}) is before its "
                    f"decision time ({pd.Timestamp(times[row])}); a label ends at or after it."
                )
            ends = np.maximum(ends, given)
        unique, inverse = np.unique(times, return_inverse=True)
        return times, ends, unique, inverse.reshape(-1)

    def _embargo_ns(self, unique: np.ndarray) -> int:
        if isinstance(self._embargo, float):
            span = int(unique[-1] - unique[0]) if len(unique) else 0
            return int(math.ceil(self._embargo * span))
        return int(self._embargo)

    def _role_codes(self, X: Any, label_end: Any) -> list[np.ndarray]:
        times, ends, unique, inverse = self._prepare(X, label_end)
        embargo = self._embargo_ns(unique)
        out = []
        for train_u, test_u in self._folds(unique):
            test = test_u[inverse]
            codes = np.where(test, _TEST, np.where(train_u[inverse], _TRAIN, _UNUSED))
            spans = []
            for b0, b1 in _blocks(test_u, unique):
                in_block = test & (times >= b0) & (times <= b1)
                spans.append((b0, int(ends[in_block].max())))
            for b0, last_end in spans:  # purging first: an overlap is named as such
                codes[(codes == _TRAIN) & (times <= last_end) & (ends >= b0)] = _PURGED
            for b0, last_end in spans if embargo else ():
                candidate = codes == _TRAIN
                if self._embargo_before_test:
                    gap = candidate & (times < b0) & (ends + embargo >= b0)
                else:
                    gap = candidate & (times > last_end) & (times <= last_end + embargo)
                codes[gap] = _EMBARGOED
            if not (self._skip_empty_train and not (codes == _TRAIN).any()):
                out.append(codes.astype(np.int8))
        return out

    # ------------------------------------------------------------------ public API
    def split(self, X: Any = None, y: Any = None, groups: Any = None, *,
              label_end: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` integer positions into the rows of ``X``, split by split.

        Parameters
        ----------
        X : DatetimeIndex, Series, DataFrame or datetime64 array
            The decision times (see :func:`decision_times_of`).
        y, groups
            Ignored (scikit-learn signature).
        label_end : array-like of times, optional
            Per row, when its label ends (its decision time plus the holding window).
            Combined with ``purge`` by taking the later end.
        """
        for codes in self._role_codes(X, label_end):
            yield np.flatnonzero(codes == _TRAIN), np.flatnonzero(codes == _TEST)

    def roles(self, X: Any = None, *, label_end: Any = None) -> pd.DataFrame:
        """The role of every row of ``X`` in every split: ``"train"``, ``"test"``,
        ``"purged"``, ``"embargoed"`` or ``""`` (not used). One column per split."""
        codes = self._role_codes(X, label_end)
        names = np.asarray(ROLES, dtype=object)
        return pd.DataFrame({f"split_{k}": names[c] for k, c in enumerate(codes)},
                            index=pd.DatetimeIndex(decision_times_of(X), tz="UTC",
                                                   name="decision_time"))

    def backtest_paths(self, X: Any = None, *, label_end: Any = None
                       ) -> list[list[tuple[int, np.ndarray]]]:
        """The out-of-sample paths: each a time-ordered list of ``(split, test positions)``
        whose test positions tile the tested decisions once. One path here."""
        return [[(k, test) for k, (_, test) in enumerate(self.split(X, label_end=label_end))]]

    def plot(self, X: Any = None, *, label_end: Any = None, figsize: tuple[float, float] | None
             = None):
        """A matplotlib ``Figure``: one row per split, decisions coloured by role
        (train, test, purged, embargoed)."""
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch

        codes = self._role_codes(X, label_end)
        times = pd.DatetimeIndex(decision_times_of(X), tz="UTC")
        colours = {_TRAIN: "tab:blue", _TEST: "tab:orange", _PURGED: "tab:red",
                   _EMBARGOED: "tab:gray"}
        fig = Figure(figsize=figsize or (10, 1.2 + 0.35 * max(len(codes), 1)),
                     layout="constrained")
        ax = fig.subplots()
        for k, row in enumerate(codes):
            for code, colour in colours.items():
                mask = row == code
                if mask.any():
                    ax.scatter(times[mask], np.full(int(mask.sum()), k), s=6, marker="s",
                               color=colour, linewidths=0)
        ax.set_yticks(range(len(codes)))
        ax.set_yticklabels([f"split {k}" for k in range(len(codes))])
        ax.invert_yaxis()
        ax.set_xlabel("Decision time (UTC)")
        ax.set_title(repr(self))
        ax.legend(handles=[Patch(color=c, label=ROLES[k]) for k, c in colours.items()],
                  loc="upper center", bbox_to_anchor=(0.5, -0.25), ncols=4, frameon=False)
        return fig

    def __repr__(self) -> str:
        params = self._own_params()
        for key in ("purge", "embargo"):
            value = getattr(self, key)
            if value not in (None, 0, "0"):
                params[key] = value
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"

    def _own_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters (scikit-learn convention)."""
        return {**self._own_params(), "purge": self.purge, "embargo": self.embargo}


def _blocks(test_u: np.ndarray, unique: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) time of each maximal run of consecutive test times."""
    if not test_u.any():
        return []
    edges = np.diff(np.concatenate([[0], test_u.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(unique[a]), int(unique[b - 1])) for a, b in zip(starts, stops, strict=True)]


def _count(value: Any, owner: str, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be an integer >= {minimum}. Got {value!r}."
        )
    return int(value)


@keyword_checked
class WalkForward(_PurgedSplitter):
    """Rolling (or anchored) walk-forward: train on ``train``, test on the next ``test``.

    Test periods are consecutive and do not overlap: the first starts ``train`` after the
    first decision, each next one ``test`` later, and the last may be shorter. The training
    period of a split is the ``train`` before its test (``anchored=True``: everything since
    the first decision), less the purged decisions whose labels reach the test and, with an
    embargo, those whose labels end within ``embargo`` before it. Splits left without a test
    or a training decision are skipped.

    Parameters
    ----------
    train, test : str or Timedelta
        Durations, e.g. ``"60d"`` and ``"14d"``.
    anchored : bool
        Expanding training window from the first decision instead of a rolling one.
    purge : str or Timedelta, optional
        Label length: a decision at ``t`` is labelled until ``t + purge`` (a backtest's
        ``window``). :func:`~core_engine.optimize.walk_forward_optimize` passes the window.
    embargo : str, Timedelta or float, optional
        Extra gap before each test period (a float: a fraction of the whole time span).

    Examples
    --------
    >>> import pandas as pd
    >>> times = pd.date_range("2021-01-01", periods=10, freq="1D", tz="UTC")
    >>> wf = WalkForward(train="4d", test="3d", purge="1d")
    >>> [(tr.tolist(), te.tolist()) for tr, te in wf.split(times)]
    [([0, 1, 2], [4, 5, 6]), ([3, 4, 5], [7, 8, 9])]
    """

    _embargo_before_test = True
    _skip_empty_train = True

    def __init__(self, train: Any, test: Any, *, anchored: bool = False, purge: Any = None,
                 embargo: Any = None) -> None:
        super().__init__(purge=purge, embargo=embargo)
        self.train = train
        self.test = test
        self.anchored = anchored
        self._train_ns = int(_duration(train, "WalkForward", "train"))
        self._test_ns = int(_duration(test, "WalkForward", "test"))
        if self._train_ns <= 0 or self._test_ns <= 0:
            raise ConfigError(
                "The 'train' and 'test' parameters of WalkForward must be positive durations "
                f"such as '60d' and '14d'. Got train={train!r}, test={test!r}."
            )
        if not isinstance(anchored, bool):
            raise ConfigError(f"The 'anchored' parameter of WalkForward must be True or False. "
                              f"Got {anchored!r}.")

    def _own_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"train": self.train, "test": self.test}
        if self.anchored:
            params["anchored"] = True
        return params

    def _folds(self, unique: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        folds: list[tuple[np.ndarray, np.ndarray]] = []
        if not len(unique):
            return folds
        first, last = int(unique[0]), int(unique[-1])
        start = first + self._train_ns
        while start <= last:
            test = (unique >= start) & (unique < start + self._test_ns)
            lo = first if self.anchored else start - self._train_ns
            train = (unique >= lo) & (unique < start)
            if test.any() and train.any():
                folds.append((train, test))
            start += self._test_ns
        return folds

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None, *,
                     label_end: Any = None) -> int:
        """Number of splits of ``X`` (a walk-forward needs the times to count them)."""
        if X is None:
            raise ConfigError("WalkForward.get_n_splits needs X (the decision times): the "
                              "number of splits depends on the time span.")
        return len(self._role_codes(X, label_end))


@keyword_checked
class PurgedKFold(_PurgedSplitter):
    """K contiguous test folds in time order; train on everything else, purged and embargoed.

    Parameters
    ----------
    n_splits : int
        Number of folds (>= 2), contiguous in time, of equal numbers of decision times
        (the first ones one longer when they do not divide evenly).
    purge : str or Timedelta, optional
        Label length (see :class:`WalkForward`).
    embargo : str, Timedelta or float, optional
        Training decisions within this long after each test fold's labels end are dropped.

    Examples
    --------
    >>> import pandas as pd
    >>> times = pd.date_range("2021-01-01", periods=9, freq="1h", tz="UTC")
    >>> cv = PurgedKFold(n_splits=3, purge="1h", embargo="1h")
    >>> [tr.tolist() for tr, _ in cv.split(times)]
    [[5, 6, 7, 8], [0, 1, 8], [0, 1, 2, 3, 4]]
    """

    def __init__(self, n_splits: int = 5, *, purge: Any = None, embargo: Any = None) -> None:
        super().__init__(purge=purge, embargo=embargo)
        self.n_splits = _count(n_splits, "PurgedKFold", "n_splits", 2)

    def _own_params(self) -> dict[str, Any]:
        return {"n_splits": self.n_splits}

    def _folds(self, unique: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        groups = _groups(unique, self.n_splits, "PurgedKFold", "n_splits")
        return [(groups != k, groups == k) for k in range(self.n_splits)]

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """``n_splits``."""
        return self.n_splits


def _groups(unique: np.ndarray, n: int, owner: str, name: str) -> np.ndarray:
    if len(unique) < n:
        raise ConfigError(
            f"{owner} with {name}={n} needs at least {n} distinct decision times. "
            f"Got {len(unique)}."
        )
    sizes = [len(a) for a in np.array_split(np.arange(len(unique)), n)]
    return np.repeat(np.arange(n), sizes)


@keyword_checked
class CombinatorialPurgedCV(_PurgedSplitter):
    """Combinatorial purged cross-validation (López de Prado 2018, §12.4).

    The decision times are cut into ``n_folds`` contiguous groups; every choice of
    ``n_test_folds`` groups is one split's test set (``C(N, k)`` splits), the rest trains,
    purged and embargoed around each test block. Every group is tested in
    ``C(N−1, k−1)`` splits, so the test sets assemble into ``φ = C(N, k)·k / N``
    complete out-of-sample *backtest paths* (:meth:`backtest_paths`).

    Parameters
    ----------
    n_folds : int
        ``N`` >= 2 groups.
    n_test_folds : int
        ``k`` test groups per split, ``1 <= k < N``.
    purge, embargo
        As in :class:`PurgedKFold`.

    Examples
    --------
    >>> cv = CombinatorialPurgedCV(n_folds=6, n_test_folds=2)
    >>> cv.get_n_splits(), cv.get_n_paths()
    (15, 5)
    """

    def __init__(self, n_folds: int = 6, n_test_folds: int = 2, *, purge: Any = None,
                 embargo: Any = None) -> None:
        super().__init__(purge=purge, embargo=embargo)
        self.n_folds = _count(n_folds, "CombinatorialPurgedCV", "n_folds", 2)
        self.n_test_folds = _count(n_test_folds, "CombinatorialPurgedCV", "n_test_folds", 1)
        if self.n_test_folds >= self.n_folds:
            raise ConfigError(
                "The 'n_test_folds' parameter of CombinatorialPurgedCV must be below "
                f"'n_folds'. Got n_folds={n_folds!r}, n_test_folds={n_test_folds!r}."
            )
        splits = math.comb(self.n_folds, self.n_test_folds)
        if splits > MAX_SPLITS:  # each split is a full backtest: more is a typo, and a MemoryError
            raise ConfigError(
                f"CombinatorialPurgedCV(n_folds={self.n_folds}, n_test_folds={self.n_test_folds})"
                f" has {splits:,} splits; at most {MAX_SPLITS:,} are allowed.")
        self._combos = list(itertools.combinations(range(self.n_folds), self.n_test_folds))

    def _own_params(self) -> dict[str, Any]:
        return {"n_folds": self.n_folds, "n_test_folds": self.n_test_folds}

    def _folds(self, unique: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        groups = _groups(unique, self.n_folds, "CombinatorialPurgedCV", "n_folds")
        out = []
        for combo in self._combos:
            test = np.isin(groups, combo)
            out.append((~test, test))
        return out

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """``C(n_folds, n_test_folds)``."""
        return len(self._combos)

    def get_n_paths(self) -> int:
        """``φ = C(N, k)·k / N`` backtest paths."""
        return len(self._combos) * self.n_test_folds // self.n_folds

    def path_splits(self) -> np.ndarray:
        """``(n_paths, n_folds)`` int array: the split whose test set supplies group ``g``
        on path ``j`` (the ``j``-th split, in order, that tests ``g``)."""
        table = np.empty((self.get_n_paths(), self.n_folds), dtype=np.int64)
        for g in range(self.n_folds):
            table[:, g] = [s for s, combo in enumerate(self._combos) if g in combo]
        return table

    def backtest_paths(self, X: Any = None, *, label_end: Any = None
                       ) -> list[list[tuple[int, np.ndarray]]]:
        """The ``φ`` out-of-sample paths over ``X``: each a time-ordered list of
        ``(split, positions of group g)`` for ``g = 0 .. N−1``."""
        times = decision_times_of(X)
        unique, inverse = np.unique(times, return_inverse=True)
        groups = _groups(unique, self.n_folds, "CombinatorialPurgedCV", "n_folds")[inverse]
        members = [np.flatnonzero(groups == g) for g in range(self.n_folds)]
        return [[(int(split), members[g]) for g, split in enumerate(row)]
                for row in self.path_splits()]
