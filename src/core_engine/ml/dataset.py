"""Datasets for scikit-learn: features × (decision time, symbol), causally aligned.

Row ``(t, symbol)`` holds the feature values of the panel row whose candle closes at ``t``
(computed by the engine's feature machinery, :func:`core_engine.features.compute_features`,
on the whole panel: every built-in feature reads rows ``<= i`` only), optionally their
cross-sectional ranks at ``t`` (:func:`core_engine.features.cross_sectional_rank`), the
label of the trade decided at ``t`` (:mod:`core_engine.ml.labels`), the time that label
ends, and a group id per decision time. Nothing in row ``(t, ·)`` of ``X`` reads data after
``t``; ``y`` and ``label_end`` read data up to ``label_end`` and no further.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import check_instance, check_items
from core_engine.data.panel import Panel
from core_engine.errors import ConfigError
from core_engine.ml.labels import ForwardReturn, Labels, TripleBarrier, decision_rows

__all__ = ["Dataset", "feature_columns", "feature_rows", "make_dataset"]


@keyword_checked
@keyword_checked
@dataclass(frozen=True, eq=False)
class Dataset:
    """What :func:`make_dataset` returns.

    Attributes
    ----------
    X : pandas.DataFrame
        Feature columns; index ``(decision_time, symbol)``, time-major.
    y : pandas.Series
        The label of each row (same index).
    label_end : pandas.Series
        When each label is known (UTC), for purging (``splitter.split(X, label_end=...)``).
    return_pct : pandas.Series
        The net return of the trade behind each label, in percent.
    groups : numpy.ndarray
        int64 id of each row's decision time (rows sharing a time share a group).
    """

    X: pd.DataFrame
    y: pd.Series
    label_end: pd.Series
    return_pct: pd.Series
    groups: np.ndarray

    def __len__(self) -> int:
        return len(self.X)

    def __repr__(self) -> str:
        times = self.X.index.get_level_values(0)
        span = f"{times.min():%Y-%m-%d %H:%M} .. {times.max():%Y-%m-%d %H:%M} UTC" \
            if len(times) else "empty"
        return (f"Dataset({len(self):,} rows × {self.X.shape[1]} features, "
                f"{len(np.unique(self.groups)):,} decision times, {span})")


def feature_columns(features: Mapping[str, np.ndarray], ranks: Any = False) -> list[str]:
    """The column names of a dataset: every feature column, then ``<column>_rank`` for the
    ranked ones (``ranks=True``: all; a list: those)."""
    columns = list(features)
    return columns + [f"{c}_rank" for c in _ranked(columns, ranks)]


def _ranked(columns: Sequence[str], ranks: Any) -> list[str]:
    if ranks is False or ranks is None:
        return []
    if ranks is True:
        return list(columns)
    if isinstance(ranks, str) or not isinstance(ranks, Iterable):
        raise ConfigError(f"The 'ranks' parameter must be True, False or a list of feature "
                          f"columns. Got {ranks!r}.")
    wanted = list(ranks)
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise ConfigError(f"The 'ranks' parameter names {missing}, which are not feature "
                          f"columns; the columns are {list(columns)}.")
    return wanted


def feature_rows(features: Mapping[str, np.ndarray], rows: np.ndarray, ranks: Any = False
                 ) -> np.ndarray:
    """``(len(rows) × n_symbols, n_columns)`` float64: the feature values (and ranks) of
    panel ``rows``, time-major (row ``r``, then every symbol)."""
    from core_engine.features.cross_section import cross_sectional_rank

    columns = list(features)
    blocks = [np.asarray(features[c], dtype=np.float64)[rows] for c in columns]
    blocks += [cross_sectional_rank(np.asarray(features[c], dtype=np.float64)[rows])
               for c in _ranked(columns, ranks)]
    if not blocks:
        raise ConfigError("A dataset needs at least one feature column. Got none.")
    return np.stack([b.reshape(-1) for b in blocks], axis=1)


def _lookback(computers: Sequence[Any]) -> int:
    return max((int(c.lookback) for c in computers), default=0)


def make_dataset(panel: Any, features: Sequence[Any], label: Any,
                 decision_times: Any = None, *, ranks: Any = False, dropna: bool = True,
                 cache: Any = None) -> Dataset:
    """Features at each decision time and the label of the trade decided there.

    Parameters
    ----------
    panel : Panel or dict of candle frames
    features : sequence of FeatureComputer
        Computed on the whole panel, read at each decision row.
    label : ForwardReturn, TripleBarrier or Labels
        A label spec (computed here on ``panel``), or labels computed on the same panel.
    decision_times : DatetimeIndex, DecisionSchedule or str, optional
        The rows' times, on the panel's grid; a duration (``"4h"``) means every multiple of
        it since the epoch after the features' warm-up. Default: the label's window
        (labels that do not overlap in time).
    ranks : bool or list of str
        Add the cross-sectional rank (in ``(0, 1]``) of all or some feature columns.
    dropna : bool
        Drop rows whose label or any feature is NaN (warm-up, missing candles, labels
        not known yet). With False every (time, symbol) pair is kept.
    cache : FeatureCache, optional
        Passed to ``compute_features``.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> from core_engine.data import Panel
    >>> from core_engine.data.providers import load_sample
    >>> from core_engine.features import RSI, Momentum
    >>> panel = Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT"], "2021-01-01",
    ...                                       "2021-01-08"), "5m")
    >>> ds = make_dataset(panel, [RSI(14), Momentum(12)], ForwardReturn(window="4h"),
    ...                   ranks=True)
    >>> list(ds.X.columns), list(ds.X.index.names), len(ds) > 0
    (['rsi_14', 'return_12', 'rsi_14_rank', 'return_12_rank'], ['decision_time', 'symbol'], True)
    """
    from core_engine.backtest.engine import load_panel
    from core_engine.features.base import FeatureComputer
    from core_engine.features.cache import FeatureCache, compute_features

    panel = load_panel(panel)
    computers = check_items(features, "features", "make_dataset", kinds=FeatureComputer,
                            expected="a list of features such as [RSI(14)]")
    if isinstance(label, (ForwardReturn, TripleBarrier)):
        window = label.window
    elif isinstance(label, Labels):
        window = None
    else:
        raise ConfigError("The 'label' argument of make_dataset must be ForwardReturn(...), "
                          f"TripleBarrier(...) or Labels. Got {type(label).__name__}.")
    check_instance(cache, FeatureCache, "cache", "make_dataset", optional=True,
                   expected="a FeatureCache")
    check_instance(dropna, (bool, np.bool_), "dropna", "make_dataset", expected="True or False")
    if ranks is not None and not isinstance(ranks, (bool, np.bool_)):
        check_items(ranks, "ranks", "make_dataset", kinds=str,
                    expected="True, False or a list of feature column names")
    values = compute_features(computers, panel, cache=cache)
    if decision_times is None or isinstance(decision_times, str):
        every = decision_times if decision_times is not None else window
        if every is None:
            rows = label.rows
        else:
            rows = decision_rows(panel, every=every, lookback=_lookback(computers))
    else:
        rows = decision_rows(panel, decision_times)
    if isinstance(label, Labels):
        labels = _select(label, panel, rows)
    else:
        labels = label.compute(panel, panel.index[rows] + pd.Timedelta(panel.step_ns, "ns"))
    return _assemble(panel, values, labels, rows, ranks=ranks, dropna=dropna)


def _select(labels: Labels, panel: Panel, rows: np.ndarray) -> Labels:
    if tuple(labels.symbols) != tuple(panel.symbols) or labels.step_ns != panel.step_ns:
        raise ConfigError("The labels given to make_dataset were computed on another panel "
                          f"(symbols {list(labels.symbols)}); compute them on this one.")
    pos = np.searchsorted(labels.rows, rows)
    ok = (pos < len(labels.rows)) & (labels.rows[np.minimum(pos, len(labels.rows) - 1)] == rows)
    if not ok.all():
        t = panel.index[rows[int(np.flatnonzero(~ok)[0])]] + pd.Timedelta(panel.step_ns, "ns")
        raise ConfigError(f"The labels given to make_dataset have no label at the decision "
                          f"time {t}.")
    return Labels(rows=rows, times=labels.times[pos], symbols=labels.symbols,
                  values=labels.values[pos], return_pct=labels.return_pct[pos],
                  end=labels.end[pos], exit_time=labels.exit_time[pos],
                  exit_reason=labels.exit_reason[pos], name=labels.name,
                  window_ns=labels.window_ns, step_ns=labels.step_ns)


def _assemble(panel: Panel, values: Mapping[str, np.ndarray], labels: Labels,
              rows: np.ndarray, *, ranks: Any, dropna: bool) -> Dataset:
    n_sym = panel.n_symbols
    matrix = feature_rows(values, rows, ranks)
    times = labels.times
    index = pd.MultiIndex.from_arrays(
        [times.repeat(n_sym), np.tile(np.asarray(panel.symbols, dtype=object), len(rows))],
        names=["decision_time", "symbol"])
    y = labels.values.reshape(-1)
    keep = np.ones(len(y), dtype=bool)
    if dropna:
        keep = np.isfinite(y) & np.isfinite(matrix).all(axis=1)
    index = index[keep]
    X = pd.DataFrame(matrix[keep], index=index, columns=feature_columns(values, ranks))
    return Dataset(
        X=X,
        y=pd.Series(y[keep], index=index, name=labels.name),
        label_end=pd.Series(pd.DatetimeIndex(labels.end.reshape(-1)[keep], tz="UTC"),
                            index=index, name="label_end"),
        return_pct=pd.Series(labels.return_pct.reshape(-1)[keep], index=index,
                             name="return_pct"),
        groups=np.repeat(np.arange(len(rows), dtype=np.int64), n_sym)[keep])
