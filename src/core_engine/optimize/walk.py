"""Walk-forward optimisation: choose on each training fold, trade the next test fold.

``walk_forward_optimize(sweep, splitter, select="sharpe")``:

1. the decision times of the sweep are split by ``splitter`` (purged by each decision's
   label end, ``t + window``, and embargoed as the splitter says);
2. every configuration is evaluated once over the whole span, and its metrics are measured
   on every fold's training and test decisions (slices mode: every window is independent,
   so a fold's metrics equal a backtest of that fold alone); an optuna search runs one
   study per fold on the training metric instead;
3. on each fold the configuration with the best training value of ``select`` is chosen and
   traded on the fold's test decisions;
4. the test folds are stitched, in time order, into one out-of-sample
   :class:`~core_engine.backtest.BacktestResult` per backtest path (one for a walk-forward
   or a purged k-fold; ``φ`` for combinatorial purged CV), each fold a ``walk_forward`` call
   of its chosen configuration over the fold's decisions, equity and metrics recomputed over
   the whole path.

Portfolio mode (one account)
----------------------------
A portfolio sweep is measured and stitched as the account a trader would run
(:mod:`core_engine.optimize.account`): a fold's training and test values of ``select``
are the account metrics of the configuration traded on that fold's decisions alone,
starting from ``initial_cash``; the out-of-sample run is **one account** that trades each
test fold with the configuration chosen for it, the cash it ended the previous fold with
carried into the next (compounding across folds), and every position closed before the
configuration changes: a fold's run ends at the earlier of its last decision + ``window``
and the next fold's first decision (so with ``window > shift`` the last
``ceil(window / shift) − 1`` decisions of a fold that another fold follows directly are not
traded, and a fold's stitched piece can then differ from its ``out_of_sample`` value, which
trades the whole fold). The stitched account's equity is marked at every candle; its
metrics are the account metrics (daily Sharpe, CAGR, drawdown, ...) of the whole, and its
per-period returns for the overfitting report are its daily returns. A trader sweep has
no decision times to split and is refused.

Every trial's per-period returns over the whole span are kept (``.returns``), for the
overfitting report and for any later analysis.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine.backtest import (
    TRADE_DTYPE,
    BacktestResult,
    compute_metrics,
    equity_curve,
    walk_forward,
)
from core_engine.backtest.simulate import Picks, records_to_frame
from core_engine.errors import ConfigError
from core_engine.optimize.account import account_returns, account_segments, run_legs
from core_engine.optimize.evaluate import ALL
from core_engine.optimize.executors import Executor
from core_engine.optimize.splitters import _PurgedSplitter
from core_engine.optimize.sweep import Sweep, SweepResult, _optuna_search, _Run

__all__ = ["WalkForwardOptimization", "walk_forward_optimize"]


def walk_forward_optimize(sweep: Sweep, splitter: Any, *, select: str | None = None,
                          direction: str | None = None, executor: Executor | None = None,
                          results: Any = None, progress: bool | None = None,
                          callback: Callable[[int, int], None] | None = None
                          ) -> WalkForwardOptimization:
    """Optimise ``sweep`` on every training fold of ``splitter`` and stitch the test folds.

    Parameters
    ----------
    sweep : Sweep
        Strategy, space, data and backtest arguments (slices or portfolio mode).
    splitter : WalkForward, PurgedKFold or CombinatorialPurgedCV
        Splits the sweep's decision times; its purge is at least the sweep's ``window``.
    select : str, optional
        The metric chosen on (default: the sweep's metric).
    direction : {"maximize", "minimize"}, optional
        Default: the sweep's direction.
    executor, results, progress, callback
        As in :meth:`Sweep.run`.

    Returns
    -------
    WalkForwardOptimization

    Raises
    ------
    ConfigError
        If the sweep is a trader's, the splitter leaves no fold, ``select`` is not a metric
        of the runs, or (portfolio mode) no fold could choose a configuration.
    """
    if not isinstance(sweep, Sweep):
        raise ConfigError(f"walk_forward_optimize needs a Sweep. Got {type(sweep).__name__}.")
    if not isinstance(splitter, _PurgedSplitter):
        raise ConfigError("walk_forward_optimize needs a WalkForward, PurgedKFold or "
                          f"CombinatorialPurgedCV splitter. Got {splitter!r}.")
    if sweep.kind == "trader":
        raise ConfigError(
            f"walk_forward_optimize splits the decision times of a strategy; a trader "
            f"({type(sweep.strategy).__name__}) acts on its own clock. Run Sweep.run() over "
            "one span, or sweep its strategy in portfolio mode."
        )
    select = select or sweep.metric
    direction = direction or sweep.direction
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"The 'direction' parameter must be 'maximize' or 'minimize'. "
                          f"Got {direction!r}.")
    times = sweep.decision_times()
    label_end = times + pd.Timedelta(sweep.window_ns, unit="ns")
    splits = list(splitter.split(times, label_end=label_end))
    if not splits:
        raise ConfigError(f"{splitter!r} leaves no fold on the {len(times)} decision times "
                          f"{_span(times)}; shorten its periods or give more data.")
    token = _token(splitter, times, sweep.window_ns)
    positions = {f"{token}/{k}/{side}": pos for k, (train, test) in enumerate(splits)
                 for side, pos in (("train", train), ("test", test))}
    scopes = {name: times[pos].as_unit("ns").asi8 for name, pos in positions.items()}
    segments = {name: tuple((start, end) for _, start, end in
                            account_segments([pos], times, sweep.window_ns))
                for name, pos in positions.items()} if sweep.account else {}
    with _Run(sweep, executor, results, progress, callback) as run:
        if sweep.search == "optuna":
            ids: list[str] = []
            for k in range(len(splits)):
                fold = {ALL: None, f"{token}/{k}/train": scopes[f"{token}/{k}/train"],
                        f"{token}/{k}/test": scopes[f"{token}/{k}/test"]}
                ids += _optuna_search(sweep, run, scope=f"{token}/{k}/train", scopes=fold,
                                      segments=segments)
        else:
            ids = run.evaluate(sweep.points(), {ALL: None, **scopes}, segments)
        frame = run.store.frame()
        trials = SweepResult(sweep, frame, ids, run.evaluated, run.skipped)
    if select not in trials.table:
        raise ConfigError(f"walk_forward_optimize: 'select' {select!r} is not a metric of the "
                          "runs.")
    folds = _choose(trials, splits, times, token, select, direction)
    stitch = _stitch_account if sweep.account else _stitch
    paths = [stitch(sweep, folds, path, times, splitter, select, j)
             for j, path in enumerate(splitter.backtest_paths(times, label_end=label_end))]
    return WalkForwardOptimization(sweep=sweep, splitter=splitter, select=select,
                                   direction=direction, folds=folds, paths=paths, trials=trials)


def _span(times: pd.DatetimeIndex) -> str:
    return f"({times[0]} .. {times[-1]})" if len(times) else "(none)"


def _token(splitter: Any, times: pd.DatetimeIndex, window_ns: int) -> str:
    digest = hashlib.sha256(repr(splitter).encode())
    digest.update(np.ascontiguousarray(times.as_unit("ns").asi8).tobytes())
    digest.update(str(window_ns).encode())
    return digest.hexdigest()[:10]


def _choose(trials: SweepResult, splits: Sequence[tuple[np.ndarray, np.ndarray]],
            times: pd.DatetimeIndex, token: str, select: str, direction: str) -> pd.DataFrame:
    rows = trials.rows.loc[trials.rows["error"].isna()]
    records = []
    for k, (train, test) in enumerate(splits):
        scored = rows.loc[rows["scope"] == f"{token}/{k}/train"].set_index("config_id")
        values = pd.to_numeric(scored[select], errors="coerce") if select in scored \
            else pd.Series(dtype=float)
        values = values.dropna()
        chosen = None
        if len(values):
            chosen = str(values.idxmin() if direction == "minimize" else values.idxmax())
        tested = rows.loc[(rows["scope"] == f"{token}/{k}/test")
                          & (rows["config_id"] == chosen)]
        oos = float(tested[select].iloc[0]) if len(tested) and select in tested else math.nan
        records.append({
            "fold": k, "train_start": times[train[0]], "train_end": times[train[-1]],
            "test_start": times[test[0]], "test_end": times[test[-1]],
            "n_train": len(train), "n_test": len(test), "config_id": chosen,
            "params": None if chosen is None else trials.table.at[chosen, "params"],
            "in_sample": float(values[chosen]) if chosen is not None else math.nan,
            "out_of_sample": oos, "candidates": len(values)})
    frame = pd.DataFrame(records).set_index("fold")
    frame.attrs["metric"] = select
    return frame


def _stitch(sweep: Sweep, folds: pd.DataFrame, path: Sequence[tuple[int, np.ndarray]],
            times: pd.DatetimeIndex, splitter: Any, select: str, number: int) -> BacktestResult:
    """One out-of-sample BacktestResult from the test folds of ``path``, in time order."""
    window = pd.Timedelta(sweep.window_ns, unit="ns")
    trades, decided, pieces = [], [], []
    for split, positions in sorted(path, key=lambda item: times[item[1][0]]):
        fold_times = times[positions]
        if not _has_choice(folds.at[split, "config_id"]):
            decided.append(fold_times)
            continue
        spec = sweep.build(json.loads(folds.at[split, "params"]))
        kwargs = {**spec.backtest, "start": fold_times[0], "end": fold_times[-1] + window}
        result = walk_forward(sweep.panel, spec.strategy, **kwargs)
        pieces.append((split, spec, result))
        trades.append(result.trades)
        decided.append(pd.DatetimeIndex(result.equity["decision_time"]))
    all_times = decided[0].append(decided[1:]) if decided else pd.DatetimeIndex([], tz="UTC")
    frame = pd.concat(trades, ignore_index=True) if trades else _empty_trades(sweep.panel)
    equity = equity_curve(frame, all_times, window_ns=sweep.window_ns, shift_ns=sweep.shift_ns)
    metrics = compute_metrics(frame, equity, window_ns=sweep.window_ns, shift_ns=sweep.shift_ns)
    config, quality = _describe(sweep, pieces, splitter, select, number, all_times)
    return BacktestResult(trades=frame, equity=equity, metrics=metrics, config=config,
                          data_quality=quality, panel=sweep.panel)


def _stitch_account(sweep: Sweep, folds: pd.DataFrame, path: Sequence[tuple[int, np.ndarray]],
                    times: pd.DatetimeIndex, splitter: Any, select: str, number: int
                    ) -> BacktestResult:
    """One out-of-sample account from the test folds of ``path``: each fold traded by its
    chosen configuration, the cash carried over (see the module docstring)."""
    ordered = sorted(path, key=lambda item: times[item[1][0]])
    legs, owners = [], []
    for group, start, end in account_segments([pos for _, pos in ordered], times,
                                              sweep.window_ns):
        split = ordered[group][0]
        if not _has_choice(folds.at[split, "config_id"]):
            continue  # no configuration for this fold: the account holds its cash
        spec = sweep.build(json.loads(folds.at[split, "params"]))
        legs.append((spec.strategy, spec.backtest, start, end))
        owners.append((split, spec))
    if not legs:
        raise ConfigError(f"walk_forward_optimize: no test fold of path {number} has a chosen "
                          f"configuration (no trial has a training value of {select!r}).")
    account, runs = run_legs(sweep.panel, legs)
    window = pd.Timedelta(sweep.window_ns, unit="ns")
    traded = [times[(times >= pd.Timestamp(start, tz="UTC"))
                    & (times <= pd.Timestamp(end, tz="UTC") - window)]
              for _, _, start, end in legs]
    all_times = traded[0].append(traded[1:])
    pieces = [(split, spec, run) for (split, spec), run in zip(owners, runs, strict=True)]
    config, quality = _describe(sweep, pieces, splitter, select, number, all_times)
    return BacktestResult(trades=account["trades"], equity=account["equity"],
                          metrics=account["metrics"], config=config, data_quality=quality,
                          panel=sweep.panel, blocked=account["blocked"])


def _has_choice(chosen: Any) -> bool:
    return chosen is not None and not (isinstance(chosen, float) and math.isnan(chosen))


def _empty_trades(panel: Any) -> pd.DataFrame:
    """The engine's trades frame with no row (a path on which no fold traded)."""
    return records_to_frame(np.zeros(0, dtype=TRADE_DTYPE), Picks.empty(), panel)


def _describe(sweep: Sweep, pieces: Sequence[tuple[int, Any, BacktestResult]], splitter: Any,
              select: str, number: int, all_times: pd.DatetimeIndex) -> tuple[dict, dict]:
    strategy = sweep.strategy
    base = pieces[0][2] if pieces else None
    config: dict[str, Any] = dict(base.config) if base is not None else {}
    chosen: dict[str, list[Any]] = {name: [] for name in sweep.space.names}
    for _, spec, _ in pieces:
        for name in chosen:
            chosen[name].append(spec.params.get(name))
    config["strategy"] = {"name": f"{strategy.name} (walk-forward optimised)",
                          "class": f"{type(strategy).__module__}:{type(strategy).__qualname__}",
                          "params": chosen, "repr": repr(strategy)}
    config["start"] = str(all_times[0]) if len(all_times) else None
    config["end"] = str(all_times[-1] + pd.Timedelta(sweep.window_ns, unit="ns")) \
        if len(all_times) else None
    config["optimization"] = {
        "splitter": repr(splitter), "select": select, "direction": sweep.direction,
        "search": sweep.search, "space": {k: repr(v) for k, v in sweep.space.dimensions.items()},
        "path": number,
        "folds": [{"split": int(split), "config_id": spec.config_id, "params": spec.params,
                   "start": r.config["start"], "end": r.config["end"]}
                  for split, spec, r in pieces]}
    quality: dict[str, Any] = dict(base.data_quality) if base is not None else {}
    if pieces:
        for key in ("decision_times_scheduled", "decision_times_evaluated", "picks",
                    "picks_without_entry_candle", "picks_blocked", "trades_with_gaps",
                    "trades_exit_at_last_close", "trades_exit_delayed",
                    "trades_exit_delay_capped", "trades_across_discontinuity"):
            if key in quality:
                quality[key] = int(sum(r.data_quality.get(key, 0) for _, _, r in pieces))
        if "exit_delay_candles_max" in quality:
            quality["exit_delay_candles_max"] = max(
                int(r.data_quality.get("exit_delay_candles_max", 0)) for _, _, r in pieces)
        skipped: dict[str, int] = {}
        for _, _, r in pieces:
            for reason, count in r.data_quality.get("skipped_decision_times", {}).items():
                skipped[reason] = skipped.get(reason, 0) + int(count)
        quality["skipped_decision_times"] = skipped
        quality["first_decision_time"] = str(all_times[0])
        quality["last_decision_time"] = str(all_times[-1])
    return config, quality


@keyword_checked
class WalkForwardOptimization:
    """The outcome of :func:`walk_forward_optimize`.

    Attributes
    ----------
    result : BacktestResult
        The stitched out-of-sample run (the first backtest path).
    paths : list of BacktestResult
        Every backtest path (``φ`` of them for combinatorial purged CV).
    folds : pandas.DataFrame
        Per fold: training and test spans, the chosen ``config_id`` and ``params``, its
        training (``in_sample``) and test (``out_of_sample``) value of ``select``, and how
        many configurations had a value to choose from.
    trials : SweepResult
        Every configuration evaluated (the true number of trials is ``trials.n_trials``),
        with its metrics over the whole span (``trials.table``) and its per-period returns
        (``trials.returns``); ``trials.rows`` holds the per-fold metrics too.
    """

    def __init__(self, *, sweep: Sweep, splitter: Any, select: str, direction: str,
                 folds: pd.DataFrame, paths: list[BacktestResult], trials: SweepResult) -> None:
        self.sweep, self.splitter, self.select, self.direction = sweep, splitter, select, direction
        self.folds, self.paths, self.trials = folds, paths, trials

    @property
    def result(self) -> BacktestResult:
        return self.paths[0]

    @property
    def returns(self) -> pd.DataFrame:
        """Every trial's per-period returns over the whole span (fractions)."""
        return self.trials.returns

    @property
    def n_trials(self) -> int:
        return self.trials.n_trials

    def fold_metrics(self, metric: str | None = None) -> pd.DataFrame:
        """Every trial's value of ``metric`` on every fold: rows = config ids, columns =
        ``(fold, "train" | "test")``."""
        metric = metric or self.select
        rows = self.trials.rows
        rows = rows.loc[rows["scope"] != ALL]
        parts = rows["scope"].str.split("/", expand=True)
        frame = pd.DataFrame({"config_id": rows["config_id"], "fold": parts[1].astype(int),
                              "side": parts[2], "value": pd.to_numeric(rows[metric],
                                                                       errors="coerce")})
        return frame.pivot_table(index="config_id", columns=["fold", "side"], values="value",
                                 aggfunc="first", dropna=False)

    def overfitting_report(self, n_blocks: int = 16):
        """PBO over every trial's returns, and PSR/DSR of the stitched out-of-sample returns
        with the true number of trials; the fold-level in/out-of-sample values are drawn on
        the ``"is_oos"`` figure."""
        from core_engine.optimize.overfitting import overfitting_report

        returns = self.trials.returns
        if self.sweep.account:
            _, stitched = account_returns(self.result.equity, engine="portfolio",
                                          initial_cash=self.result.metrics["initial_cash"])
        else:
            stitched = self.result.equity["period_return_pct"].to_numpy() / 100.0
        fold_is_oos = self.folds[["in_sample", "out_of_sample"]].dropna()
        fold_is_oos.attrs["metric"] = self.select
        return overfitting_report(returns, selected="walk-forward out-of-sample",
                                  n_trials=self.n_trials,
                                  n_blocks=n_blocks,
                                  overlap=self.sweep.overlap,
                                  periods_per_year=self.sweep.periods_per_year,
                                  selected_returns=stitched, fold_is_oos=fold_is_oos)

    def __repr__(self) -> str:
        return (f"WalkForwardOptimization({self.splitter!r}, {len(self.folds)} folds, "
                f"{self.n_trials} trials, select {self.select!r})")
