"""SklearnStrategy: a scikit-learn estimator refit walk-forward, its output the score.

How a score at decision time ``t`` is made (every step causal, so the engine's audit and
:func:`core_engine.testing.check_strategy` pass):

1. **Samples.** Training rows are ``(s, symbol)`` for the sample times ``s`` (multiples of
   ``sample_every`` since the Unix epoch, after the features' warm-up): the features of the
   row closing at ``s`` (:func:`core_engine.ml.dataset.feature_rows`) and the label of the
   trade decided at ``s`` (:mod:`core_engine.ml.labels`, the engine's fill and cost model),
   with the time its label ends.
2. **Retrain times** ``r`` are the multiples of ``retrain_every`` since the epoch, from the
   first one with ``train_window`` of samples before it. The training rows of the model of
   ``r`` are those of :class:`core_engine.optimize.WalkForward` (``train=train_window``,
   ``test=retrain_every``, ``purge``, ``embargo``) for the test period starting at ``r``:
   sample times in ``[r − train_window, r)`` whose label ends before ``r`` (purged by label
   end, and with an embargo ``h`` before ``r − h``). Rows with a NaN feature or an unknown
   label are left out. Anchoring ``r`` on the epoch (not on the first candle) makes a
   truncated run, a replay and a live runner retrain at the same times.
3. **Fit.** The estimator is cloned (``sklearn.base.clone``) and fitted on those rows;
   ``threshold="tune"`` wraps it in ``TunedThresholdClassifierCV`` over
   :class:`core_engine.optimize.PurgedKFold` splits of the same rows with the trading scorer
   (:func:`trading_scorer`: the net return of the trades the thresholded model takes).
   Fitted models are cached in memory by (estimator and its parameters, label, threshold
   settings, retrain time, fingerprint of the training data), so sweeping rules or exits,
   auditing, or replaying the same data does not refit.
4. **Score** of the rows whose decision time is in ``[r, r + retrain_every)``: the
   probability of the positive class (the largest label: 1 for a binary label, the
   take-profit for triple-barrier labels) of a classifier, or the prediction of a
   regressor; NaN where a feature is NaN, before the first retrain time, and below a
   numeric or tuned ``threshold`` (not a candidate).

The walk-forward bookkeeping and purging are the optimize package's splitters; the labels
are the backtest's simulation; what is written here is the gluing and the cache.
"""

from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine.data.panel import Panel
from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError
from core_engine.ml.dataset import _ranked, feature_columns, feature_rows
from core_engine.ml.labels import ForwardReturn, TripleBarrier, decision_rows
from core_engine.strategies.base import Strategy

__all__ = ["MODEL_CACHE", "FittedModel", "ModelCache", "SklearnStrategy", "trading_scorer"]


@keyword_checked
class ModelCache:
    """Least-recently-used cache of fitted models, keyed by what determines a fit.

    Attributes
    ----------
    hits, misses : int
        Look-ups answered from the cache, and fits made.
    """

    def __init__(self, max_models: int = 512) -> None:
        self.max_models = max_models
        self._models: OrderedDict[tuple, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> Any:
        model = self._models.get(key)
        if model is not None:
            self._models.move_to_end(key)
            self.hits += 1
        return model

    def put(self, key: tuple, model: Any) -> None:
        self.misses += 1
        self._models[key] = model
        while len(self._models) > self.max_models:
            self._models.popitem(last=False)

    def clear(self) -> None:
        """Forget every model (counters kept)."""
        self._models.clear()

    def __len__(self) -> int:
        return len(self._models)

    def __repr__(self) -> str:
        return f"ModelCache({len(self)} models, {self.hits} hits, {self.misses} fits)"


_NO_MODEL = ("no model",)

#: The process-wide cache every SklearnStrategy uses.
MODEL_CACHE = ModelCache()


@keyword_checked
@dataclass(frozen=True)
class FittedModel:
    """One walk-forward fit: its retrain time, the model, its training rows and columns."""

    retrain_time: pd.Timestamp
    model: Any
    n_train: int
    columns: tuple[str, ...]
    threshold: float | None


def _net_return_sum(y_true: np.ndarray, y_pred: np.ndarray, return_pct: np.ndarray) -> float:
    taken = np.asarray(y_pred) == np.max(y_true) if len(y_true) else np.zeros(0, dtype=bool)
    return float(np.sum(np.asarray(return_pct, dtype=np.float64)[taken]))


def import_sklearn(who: str) -> Any:
    """Import scikit-learn or raise a :class:`ConfigError` that says how to install it (it
    is the ``ml`` extra: the base install leaves it, and the scipy it brings, out)."""
    try:
        import sklearn
    except ImportError as exc:
        raise ConfigError(
            f"{who} needs scikit-learn, which is not installed. Install it with "
            "pip install 'core-engine[ml]' (or pip install scikit-learn)."
        ) from exc
    return sklearn


def trading_scorer() -> Any:
    """A scikit-learn scorer: the summed net return (percent, after costs) of the rows a
    classifier predicts positive, read from the ``return_pct`` metadata.

    It needs metadata routing (``sklearn.config_context(enable_metadata_routing=True)``),
    inside which it is built and used:

    >>> import sklearn
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     scorer = trading_scorer()
    """
    import_sklearn("trading_scorer")
    from sklearn.metrics import make_scorer

    return make_scorer(_net_return_sum).set_score_request(return_pct=True)


class _FeatureList(list):
    """The feature computers of an SklearnStrategy: a list that is also the strategy's
    ``features()`` hook (the parameter and the hook share the name)."""

    def __call__(self) -> list:
        return list(self)


def _canonical(value: Any) -> Any:
    """A comparable, hashable description of a parameter (estimators by class and params)."""
    if hasattr(value, "get_params") and hasattr(value, "fit"):
        params = value.get_params(deep=False)
        return (type(value).__module__ + "." + type(value).__qualname__,
                tuple(sorted((k, _canonical(v)) for k, v in params.items())))
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _canonical(v)) for k, v in value.items()))
    if isinstance(value, np.ndarray):
        return ("ndarray", value.shape, value.tobytes())
    return repr(value)


def _digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(b"|")
    return digest.hexdigest()


class SklearnStrategy(Strategy):
    """A Strategy whose score is a scikit-learn model's probability or prediction.

    After scoring, ``models_`` lists the fits of the last :meth:`score` call (one
    :class:`FittedModel` per retrain time; a ``walk_forward`` audit scores again on
    truncated data, so inspect the models of a run made without ``audit``).

    Parameters
    ----------
    estimator : scikit-learn estimator or Pipeline
        A classifier (score = probability of the positive class) or a regressor (score =
        prediction). Cloned for every fit; never fitted in place.
    features : list of FeatureComputer
        The model's inputs at each decision row (computed by the engine, causally).
    label : ForwardReturn or TripleBarrier
        What the model learns; default ``ForwardReturn(window="4h", hurdle_pct=0.0)``
        (1 when the trade's net return after 10 bp fees per side is positive).
    retrain_every : str
        Retrain cadence; retrain times are its multiples since the epoch.
    train_window : str
        Length of the training period before each retrain time (longer than the label's
        window, which is purged).
    purge : str, optional
        A minimum label length added to every label's own end (labels always purge by
        their end; this only lengthens them).
    embargo : str, optional
        Gap between the last training label's end and the retrain time.
    threshold : None, float or "tune"
        None: every finite score is a candidate. A number: scores below it are NaN.
        ``"tune"``: per fit, ``TunedThresholdClassifierCV`` picks the threshold that
        maximises the training rows' net return (:func:`trading_scorer`) over
        ``tune_splits`` purged folds; binary classifiers only.
    sample_every : str, optional
        Spacing of the training samples; default the label's window (labels of one symbol
        then do not overlap).
    ranks : bool or list of str
        Add cross-sectional ranks of all (True) or some feature columns.
    min_train_rows : int
        Fewer training rows (or a single class) leave the period without a model (NaN).
    tune_splits : int
        Folds of the threshold tuning.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from core_engine.features import RSI, Momentum
    >>> s = SklearnStrategy(LogisticRegression(), [RSI(14), Momentum(12)],
    ...                     retrain_every="7d", train_window="28d")
    >>> s.lookback, s.clone() == s
    (14, True)
    """

    name = "sklearn"

    def __init__(self, estimator: Any = None, features: Iterable[Any] = (),
                 label: Any = None, retrain_every: str = "30d", train_window: str = "180d",
                 purge: Any = None, embargo: Any = None, threshold: Any = None,
                 sample_every: str | None = None, ranks: Any = False,
                 min_train_rows: int = 50, tune_splits: int = 3) -> None:
        self.estimator = estimator
        self.features = features
        self.label = label
        self.retrain_every = retrain_every
        self.train_window = train_window
        self.purge = purge
        self.embargo = embargo
        self.threshold = threshold
        self.sample_every = sample_every
        self.ranks = ranks
        self.min_train_rows = min_train_rows
        self.tune_splits = tune_splits
        self.models_: list[FittedModel] = []

    # ------------------------------------------------------------------ parameters
    @property
    def features(self) -> _FeatureList:
        return self._features

    @features.setter
    def features(self, value: Any) -> None:
        try:
            self._features = _FeatureList(value)
        except TypeError:
            raise ConfigError("The 'features' parameter of SklearnStrategy must be a list of "
                              f"FeatureComputer objects. Got {value!r}.") from None

    def _validate_params(self) -> None:
        import_sklearn("SklearnStrategy")
        from sklearn.base import is_classifier

        from core_engine.features.base import FeatureComputer

        est = self.estimator
        if est is None or not hasattr(est, "fit") or not (hasattr(est, "predict_proba")
                                                           or hasattr(est, "predict")):
            raise ConfigError("The 'estimator' parameter of SklearnStrategy must be a "
                              "scikit-learn estimator or Pipeline such as LogisticRegression(). "
                              f"Got {est!r}.")
        if not self.features or not all(isinstance(f, FeatureComputer) for f in self.features):
            raise ConfigError("The 'features' parameter of SklearnStrategy must be a non-empty "
                              "list of FeatureComputer objects such as [RSI(14)]. Got "
                              f"{list(self.features)!r}.")
        if self.label is not None and not isinstance(self.label, (ForwardReturn, TripleBarrier)):
            raise ConfigError("The 'label' parameter of SklearnStrategy must be ForwardReturn(...) "
                              f"or TripleBarrier(...). Got {self.label!r}.")
        window = self.label_spec.window_ns
        sample = self._ns("sample_every") if self.sample_every is not None else window
        for key in ("retrain_every", "train_window"):
            if self._ns(key) % sample:
                raise ConfigError(f"The {key!r} parameter of SklearnStrategy must be a multiple "
                                  f"of the sample spacing ({self.sample_every or 'the label window'}"
                                  f"). Got {getattr(self, key)!r}.")
        if self._ns("train_window") <= window:
            raise ConfigError("The 'train_window' parameter of SklearnStrategy must be longer "
                              f"than the label's window (purged). Got {self.train_window!r}.")
        threshold = self.threshold
        if threshold == "tune":
            if not is_classifier(est) or not self.label_spec.is_binary:
                raise ConfigError("threshold='tune' needs a classifier and a binary label "
                                  "(hurdle_pct set). Got estimator "
                                  f"{type(est).__name__} and label {self.label_spec!r}.")
        elif threshold is not None and (isinstance(threshold, bool) or not isinstance(
                threshold, (int, float, np.number)) or not np.isfinite(threshold)):
            raise ConfigError("The 'threshold' parameter of SklearnStrategy must be None, a "
                              f"number or 'tune'. Got {threshold!r}.")
        self._check_int("min_train_rows", 1)
        self._check_int("tune_splits", 2)
        _ranked([c for f in self.features for c in f.columns], self.ranks)

    def _ns(self, key: str) -> int:
        value = getattr(self, key)
        try:
            return timeframe_ns(value, name=key)
        except ConfigError:
            raise ConfigError(f"The {key!r} parameter of SklearnStrategy must be a duration "
                              f"such as '30d'. Got {value!r}.") from None

    @property
    def label_spec(self) -> ForwardReturn | TripleBarrier:
        """The label (the default when ``label`` is None)."""
        return self.label if self.label is not None else ForwardReturn(window="4h",
                                                                       hurdle_pct=0.0)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return _canonical(self.get_params()) == _canonical(other.get_params())

    __hash__ = Strategy.__hash__

    def clone(self) -> SklearnStrategy:
        """A new, equal strategy: parameters deep-copied except the estimator, which is
        shared — it is never fitted in place (every fit fits ``sklearn.base.clone`` of it),
        and an estimator has no equality but identity."""
        params = self.get_params()
        estimator = params.pop("estimator")
        return type(self)(estimator=estimator, **copy.deepcopy(params))

    # ------------------------------------------------------------------ scoring
    def score(self, features: Mapping[str, np.ndarray], panel: Panel) -> np.ndarray:
        """The model scores of every row (see the module docstring)."""
        out = np.full((panel.n_times, panel.n_symbols), np.nan)
        columns = [c for f in self.features for c in f.columns]
        values = {c: features[c] for c in columns}
        plan = self._plan(panel)
        self.models_ = []
        if plan is None:
            return out
        X, y, ret, times, ends = self._samples(panel, values, plan)
        from core_engine.optimize.splitters import WalkForward

        splitter = WalkForward(train=self.train_window, test=self.retrain_every,
                               purge=self.purge, embargo=self.embargo)
        utc = pd.DatetimeIndex(times, tz="UTC")
        step = panel.step_ns
        decision = panel.index.asi8 + step
        retrain_ns = self._ns("retrain_every")
        for train, test in splitter.split(utc, label_end=pd.DatetimeIndex(ends, tz="UTC")):
            r = int(times[test].min())
            ok = train[np.isfinite(y[train]) & np.isfinite(X[train]).all(axis=1)]
            fitted = self._fit(X[ok], y[ok], ret[ok], times[ok], ends[ok], r)
            if fitted is None:
                continue
            model, threshold = fitted
            self.models_.append(FittedModel(retrain_time=pd.Timestamp(r, tz="UTC"), model=model,
                                            n_train=len(ok), threshold=threshold,
                                            columns=tuple(feature_columns(values, self.ranks))))
            rows = np.flatnonzero((decision >= r) & (decision < r + retrain_ns))
            rows = rows[rows >= self.lookback]
            if len(rows):
                out[rows] = self._predict(model, threshold, values, rows, panel.n_symbols)
        return out

    def _plan(self, panel: Panel) -> dict | None:
        if not panel.n_times:
            return None
        window = self.label_spec.window_ns
        sample = self._ns("sample_every") if self.sample_every is not None else window
        rows = decision_rows(panel, every=_format_ns(sample), lookback=self.lookback)
        if not len(rows):
            return None
        step = panel.step_ns
        times = panel.index.asi8[rows] + step
        retrain, train = self._ns("retrain_every"), self._ns("train_window")
        first_r = -(-(int(times[0]) + train) // retrain) * retrain
        keep = times >= first_r - train
        if first_r > int(panel.index.asi8[-1]) + step or not keep.any():
            return None
        return {"rows": rows[keep], "times": times[keep]}

    def _samples(self, panel: Panel, values: Mapping[str, np.ndarray], plan: dict
                 ) -> tuple[np.ndarray, ...]:
        n_sym = panel.n_symbols
        rows, times = plan["rows"], plan["times"]
        labels = self.label_spec.compute(panel, pd.DatetimeIndex(times, tz="UTC"))
        X = feature_rows(values, rows, self.ranks)
        return (X, labels.values.reshape(-1), labels.return_pct.reshape(-1),
                np.repeat(times, n_sym), labels.end.reshape(-1))

    def _fit(self, X: np.ndarray, y: np.ndarray, ret: np.ndarray, times: np.ndarray,
             ends: np.ndarray, retrain_time: int) -> tuple[Any, float | None] | None:
        from sklearn.base import is_classifier

        classifier = is_classifier(self.estimator)
        if len(y) < self.min_train_rows or (classifier and len(np.unique(y)) < 2):
            return None
        tune = self.threshold == "tune"
        key = (_canonical(self.estimator), repr(self.label_spec), repr(self.threshold),
               self.tune_splits if tune else None, repr(self.embargo), retrain_time,
               _digest(X, y, *((ret, times, ends) if tune else ())))
        cached = MODEL_CACHE.get(key)
        if cached is not None:
            return None if cached is _NO_MODEL else cached
        fitted = self._fit_tuned(X, y, ret, times, ends) if tune else self._fit_plain(X, y)
        MODEL_CACHE.put(key, fitted if fitted is not None else _NO_MODEL)
        return fitted

    def _fit_plain(self, X: np.ndarray, y: np.ndarray) -> tuple[Any, float | None]:
        from sklearn.base import clone

        model = clone(self.estimator)
        model.fit(X, y)
        threshold = None if self.threshold is None else float(self.threshold)
        return model, threshold

    def _fit_tuned(self, X: np.ndarray, y: np.ndarray, ret: np.ndarray, times: np.ndarray,
                 ends: np.ndarray) -> tuple[Any, float | None] | None:
        import sklearn
        from sklearn.base import clone
        from sklearn.model_selection import TunedThresholdClassifierCV

        from core_engine.optimize.splitters import PurgedKFold

        cv = list(PurgedKFold(n_splits=self.tune_splits, embargo=self.embargo).split(
            pd.DatetimeIndex(times, tz="UTC"), label_end=pd.DatetimeIndex(ends, tz="UTC")))
        with sklearn.config_context(enable_metadata_routing=True):
            model = TunedThresholdClassifierCV(clone(self.estimator), scoring=trading_scorer(),
                                               cv=cv, refit=True)
            try:
                model.fit(X, y, return_pct=ret)
            except ValueError as exc:
                # a model that predicts one probability for every row has no threshold to
                # tune: the period gets no model, like one with a single class
                if "constant predictions" in str(exc):
                    return None
                raise
        return model, float(model.best_threshold_)

    def _predict(self, model: Any, threshold: float | None, values: Mapping[str, np.ndarray],
                 rows: np.ndarray, n_sym: int) -> np.ndarray:
        X = feature_rows(values, rows, self.ranks)
        ok = np.isfinite(X).all(axis=1)
        scores = np.full(len(X), np.nan)
        if ok.any():
            if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
                proba = model.predict_proba(X[ok])
                scores[ok] = proba[:, int(np.argmax(model.classes_))]
            else:
                scores[ok] = np.asarray(model.predict(X[ok]), dtype=np.float64).reshape(-1)
        if threshold is not None:
            with np.errstate(invalid="ignore"):
                scores[~(scores >= threshold)] = np.nan
        return scores.reshape(len(rows), n_sym)

    # ------------------------------------------------------------------ inspection
    def feature_importances(self) -> pd.DataFrame:
        """Per fitted model (rows: retrain times of the last scoring), the importance of each
        column: ``feature_importances_`` of tree models, ``|coef_|`` of linear ones (the
        last step of a Pipeline; the estimator inside a tuned-threshold wrapper)."""
        rows = {}
        for fitted in self.models_:
            model = getattr(fitted.model, "estimator_", fitted.model)
            model = model.steps[-1][1] if hasattr(model, "steps") else model
            if hasattr(model, "feature_importances_"):
                values = np.asarray(model.feature_importances_, dtype=np.float64)
            elif hasattr(model, "coef_"):
                values = np.abs(np.asarray(model.coef_, dtype=np.float64)).reshape(-1, len(
                    fitted.columns)).mean(axis=0)
            else:
                continue
            rows[fitted.retrain_time] = pd.Series(values, index=list(fitted.columns))
        frame = pd.DataFrame(rows).T
        frame.index.name = "retrain_time"
        return frame


def _format_ns(ns: int) -> str:
    from core_engine.data.timeframes import format_timeframe

    return format_timeframe(ns)
