"""Sweeps: evaluate many configurations of a strategy, fast, resumably, anywhere.

>>> from core_engine.optimize import Sweep                                  # doctest: +SKIP
>>> sweep = Sweep("macd_rsi_confluence", {"rsi_low": "35:50:5",
...               "exits.stop_loss_pct": [1.0, 2.0]}, panel, window="4h", shift="2h")
>>> result = sweep.run(results="runs/rsi.parquet")                         # doctest: +SKIP
>>> result.table.head(), result.best_params                                # doctest: +SKIP

How a sweep stays fast (DESIGN.md §9):

* configurations that share features compute them once per worker process (a feature
  cache keyed by feature parameters and the data fingerprint);
* configurations that share features *and* scores — everything but their exit rules — are
  one unit: scored, allocated and simulated together (:mod:`core_engine.optimize.evaluate`);
* units go to an executor (:class:`LocalExecutor` processes by default, or
  :class:`DaskExecutor`) in tasks of at least ~100 ms, and results stream back into a
  Parquet file keyed by a hash of each configuration, so re-running skips what is done.

Searches: ``"grid"`` (every point), ``"random"`` (``n_trials`` points, without replacement
on a discrete space) and ``"optuna"`` (ask/tell with a seeded TPE sampler, in batches of
about two configurations per worker; needs ``pip install 'core-engine[optuna]'``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import check_frame, check_instance, check_integer, check_items
from core_engine.backtest import load_panel, walk_forward
from core_engine.backtest.inputs import warm_up
from core_engine.backtest.schedule import decision_schedule
from core_engine.data.timeframes import timeframe_ns, to_utc_timestamp
from core_engine.errors import ConfigError, CoreEngineError
from core_engine.optimize.account import (
    ACCOUNT_PERIODS_PER_YEAR,
    is_trader,
    replay_arguments,
    run_replay,
)
from core_engine.optimize.evaluate import (
    ALL,
    RunSpec,
    SharedData,
    Task,
    Unit,
    batch_key,
    error_rows,
    run_task,
)
from core_engine.optimize.executors import Executor, LocalExecutor
from core_engine.optimize.results import ResultStore, canonical, config_id
from core_engine.optimize.space import MAX_GRID, Space, apply_point, resolve_names

__all__ = ["SEARCHES", "Sweep", "SweepResult", "import_optuna"]

SEARCHES = ("grid", "random", "optuna")
#: walk_forward arguments a sweep sets itself.
_RESERVED = ("cache", "progress")


def import_optuna() -> Any:
    """Import optuna or raise a :class:`ConfigError` naming the extra."""
    try:
        import optuna
    except ImportError as exc:
        raise ConfigError(
            "search='optuna' needs optuna, which is not installed. Install it with "
            "pip install 'core-engine[optuna]' (or pip install optuna)."
        ) from exc
    return optuna


def _strategy_instance(strategy: Any) -> Any:
    """The base of every point: a Strategy instance, or a Trader class or instance."""
    from core_engine.strategies import Strategy, get_strategy

    if isinstance(strategy, str):
        return get_strategy(strategy)
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy()
    if isinstance(strategy, Strategy):
        return strategy.clone()
    if is_trader(strategy):
        # a class stays a class: its required parameters (a grid's range) come from the
        # points, each built and validated by the trader's own constructor
        return strategy if isinstance(strategy, type) else strategy.clone()
    raise ConfigError(
        "The 'strategy' parameter of Sweep must be a Strategy class, a Strategy instance (its "
        "parameters are the base of every point), a registry name, or a Trader class or "
        f"instance (evaluated by replay). Got {strategy!r}."
    )


def _broker_identity(broker: Any) -> dict[str, Any]:
    """What identifies a replay's broker in a configuration id: its class and its public
    settings (fees, slippage, fill model, cash, ...)."""
    from core_engine.trading.sim import SimBroker

    broker = SimBroker() if broker is None else broker
    settings = {k: v for k, v in vars(broker).items() if not k.startswith("_")
                and (v is None or isinstance(v, (bool, int, float, str)))}
    return {"__class__": f"{type(broker).__module__}.{type(broker).__qualname__}", **settings}


def _check_broker(broker: Any) -> None:
    from core_engine.trading.sim import SimBroker

    if broker is None:
        return
    if not isinstance(broker, SimBroker):
        raise ConfigError(f"A trader sweep replays with a SimBroker. Got broker="
                          f"{type(broker).__name__}.")
    if broker.panel is not None:
        raise ConfigError("A trader sweep needs an unbound SimBroker (its fees and fill "
                          "model): every run binds a fresh clone to the sweep's data. Got a "
                          "SimBroker bound to candles; pass SimBroker(fee_bps=...) without "
                          "candles.")


@keyword_checked
class Sweep:
    """A search over strategy, exit, sizing and rule parameters of a walk-forward backtest.

    Parameters
    ----------
    strategy : Strategy class, Strategy instance, str, or Trader class or instance
        What to sweep; an instance's parameters are the defaults of every point. A
        :class:`~core_engine.trading.Trader` (e.g. ``GridTrader``) is evaluated by
        :func:`~core_engine.trading.replay`; a Trader class is built from each point's
        parameters alone (give its required ones as single values in the space).
    space : dict
        Name -> values (see :mod:`core_engine.optimize.space` for names and value forms).
    data : Panel, dict of candle frames, or (store, symbols, timeframe)
        The candles.
    metric : str
        The metric to optimise, a key of ``BacktestResult.metrics`` (default ``"sharpe"``).
    direction : {"maximize", "minimize"}
    search : {"grid", "random", "optuna"}
    n_trials : int, optional
        Points of a random or optuna search.
    seed : int
        Seed of the random sampler and of optuna's TPE sampler.
    **backtest
        Arguments of :func:`~core_engine.backtest.walk_forward` (``window``, ``shift``,
        ``fee_bps``, ``exits``, ``max_positions``, ``mode``, ``sizing``, ``rules``, ...) —
        for a trader those of :func:`~core_engine.trading.replay` (``broker`` an unbound
        ``SimBroker``, cloned for every run; ``initial_cash``, ``start``, ``end``) — passed
        through unchanged; swept names override them per point.

    Notes
    -----
    What a configuration's metrics and per-period returns are depends on what runs it:
    slices mode gives one return per decision time; portfolio mode and traders are
    accounts, measured by their account metrics and daily returns
    (:mod:`core_engine.optimize.account`). One sweep runs one mode (``mode`` cannot be a
    swept name).
    """

    def __init__(self, strategy: Any, space: Mapping[str, Any] | Space, data: Any, *,
                 metric: str = "sharpe", direction: str = "maximize", search: str = "grid",
                 n_trials: int | None = None, seed: int = 0, **backtest: Any) -> None:
        self.strategy = _strategy_instance(strategy)
        self.kind = "trader" if is_trader(self.strategy) else "strategy"
        self.space = Space(space)
        self.panel = load_panel(data)
        runner = "replay" if self.kind == "trader" else "walk_forward"
        if self.kind == "trader":
            self._defaults = replay_arguments()
            reserved: tuple[str, ...] = ()
        else:
            self._defaults = {p.name: p.default for p in
                              inspect.signature(walk_forward).parameters.values()
                              if p.kind is p.KEYWORD_ONLY and p.name not in _RESERVED}
            reserved = _RESERVED
        arguments = [*self._defaults, *reserved]
        for key in backtest:
            if key in reserved or key not in arguments:
                from core_engine.strategies.base import did_you_mean

                raise ConfigError(
                    f"Sweep got {key!r}, which is not a {runner} argument it passes on "
                    f"(a sweep manages {list(reserved)} itself).{did_you_mean(key, arguments)}"
                )
        self.backtest = dict(backtest)
        if self.kind == "trader":
            _check_broker(self.backtest.get("broker"))
        self.names = resolve_names(self.space.names, self.strategy.param_names(),
                                   list(self._defaults), self.backtest, runner=runner)
        if any(target == "mode" for kind, target in self.names.values() if kind == "backtest"):
            raise ConfigError("A sweep runs one mode: 'mode' cannot be a swept name (slices "
                              "and portfolio runs have different returns and metrics). Run "
                              "one sweep per mode, with mode=... as a fixed argument.")
        self.mode = "replay" if self.kind == "trader" else str(self.backtest.get("mode",
                                                                                   "slices"))
        if direction not in ("maximize", "minimize"):
            raise ConfigError(f"The 'direction' parameter of Sweep must be 'maximize' or "
                              f"'minimize'. Got {direction!r}.")
        if search not in SEARCHES:
            raise ConfigError(f"The 'search' parameter of Sweep must be one of {list(SEARCHES)}. "
                              f"Got {search!r}.")
        if search != "grid" and (isinstance(n_trials, bool) or not isinstance(n_trials, int)
                                 or n_trials < 1):
            raise ConfigError(f"search={search!r} needs n_trials, a positive integer. "
                              f"Got {n_trials!r}.")
        if search == "optuna":
            import_optuna()
        if search == "grid" and len(self.space) > MAX_GRID:  # a continuous one fails in len
            self.space.grid()  # raises, naming the size of each dimension
        if not isinstance(metric, str) or not metric:
            raise ConfigError(f"The 'metric' parameter of Sweep must be a metric name such as "
                              f"'sharpe'. Got {metric!r}.")
        self.metric, self.direction, self.search = metric, direction, search
        self.n_trials, self.seed = n_trials, seed
        self._fingerprint: str | None = None

    # ------------------------------------------------------------------ points
    @property
    def fingerprint(self) -> str:
        """The panel's fingerprint (hashed once)."""
        if self._fingerprint is None:
            self._fingerprint = self.panel.fingerprint()
        return self._fingerprint

    def points(self) -> list[dict[str, Any]]:
        """The points of a grid or random search (an optuna search chooses them as it goes)."""
        if self.search == "grid":
            return self.space.grid()
        if self.search == "random":
            assert self.n_trials is not None  # checked in __init__
            return self.space.sample(self.n_trials, self.seed)
        raise ConfigError("An optuna search has no fixed points; they are asked as it runs.")

    def build(self, point: Mapping[str, Any]) -> RunSpec:
        """The configuration of one point: id, strategy instance and walk_forward arguments.

        Raises
        ------
        ConfigError
            When the point is invalid (e.g. ``rsi_low`` above ``rsi_high``).
        """
        strategy, kwargs = apply_point(self.strategy, self.backtest, point, self.names)
        full = {**self._defaults, **kwargs}
        if self.kind == "trader":
            full["broker"] = _broker_identity(full.get("broker"))
        return RunSpec(config_id=config_id(strategy, full, self.fingerprint), params=dict(point),
                       strategy=strategy, backtest=kwargs)

    def _invalid_id(self, point: Mapping[str, Any]) -> str:
        text = json.dumps({"invalid": canonical(dict(point)), "strategy": canonical(self.strategy),
                           "backtest": canonical(self.backtest), "data": self.fingerprint},
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def decision_times(self) -> pd.DatetimeIndex:
        """The decision times every configuration shares: the schedule of ``window``,
        ``shift``, ``start`` and ``end`` after the longest warm-up among the points (the
        base configuration's for an optuna search).

        Raises
        ------
        ConfigError
            For a trader sweep (a trader acts on its own clock, not on decision times).
        """
        if self.kind == "trader":
            raise ConfigError(f"A trader ({type(self.strategy).__name__}) acts on its own "
                              "clock and has no decision times to split; sweep it over one "
                              "span with Sweep.run().")
        kwargs = {**self._defaults, **self.backtest}
        points = self.points() if self.search != "optuna" else [{}]
        lookback = 0
        for point in points:
            try:
                spec = self.build(point)
            except CoreEngineError:
                continue
            b = {**self._defaults, **spec.backtest}
            allocator = b.get("allocator")
            if allocator is None:
                from core_engine.risk import TopNEqual

                allocator = TopNEqual(n=b.get("max_positions", 3))
            lookback = max(lookback, warm_up(spec.strategy, tuple(b.get("gates") or ()),
                                             allocator, b.get("exits")))
        panel = self.panel
        schedule = decision_schedule(
            panel.index.asi8, panel.step_ns, window_ns=timeframe_ns(kwargs["window"]),
            shift_ns=timeframe_ns(kwargs["shift"]),
            start_ns=None if kwargs.get("start") is None else to_utc_timestamp(kwargs["start"]).value,
            end_ns=None if kwargs.get("end") is None else to_utc_timestamp(kwargs["end"]).value,
            lookback=lookback, entry_open=panel.open)
        return schedule.times

    @property
    def window_ns(self) -> int:
        return timeframe_ns({**self._defaults, **self.backtest}["window"])

    @property
    def shift_ns(self) -> int:
        return timeframe_ns({**self._defaults, **self.backtest}["shift"])

    @property
    def account(self) -> bool:
        """Whether runs are accounts (portfolio mode, replays): daily returns, account
        metrics."""
        return self.mode != "slices"

    @property
    def periods_per_year(self) -> float:
        """Per-period returns per year: 365 daily account returns, else one per holding
        window (``365 days / max(window, shift)``, as the slices metrics annualise)."""
        if self.account:
            return ACCOUNT_PERIODS_PER_YEAR
        return 365 * 24 * 3600 * 1e9 / max(self.window_ns, self.shift_ns)

    @property
    def overlap(self) -> float:
        """Periods per independent observation: ``ceil(window / shift)`` for overlapping
        slices windows, 1 for daily account returns."""
        return 1.0 if self.account else float(math.ceil(self.window_ns / self.shift_ns))

    # ------------------------------------------------------------------ running
    def run(self, *, executor: Executor | None = None, results: Any = None,
            progress: bool | None = None,
            callback: Callable[[int, int], None] | None = None) -> SweepResult:
        """Evaluate the sweep and return its :class:`SweepResult`.

        Parameters
        ----------
        executor : Executor, optional
            Default: ``LocalExecutor()`` (a process per core).
        results : str or Path, optional
            Parquet file of the results; re-running with the same file skips every
            configuration already in it.
        progress : bool, optional
            Progress bar over configurations (None: only where a person watches).
        callback : callable, optional
            Called as ``callback(done, total)`` after every finished task.
        """
        with _Run(self, executor, results, progress, callback) as run:
            if self.search == "optuna":
                ids = _optuna_search(self, run, scope=ALL)
            else:
                ids = run.evaluate(self.points(), {ALL: None})
            return SweepResult(self, run.store.frame(), ids, run.evaluated, run.skipped)


class _Run:
    """One run of a sweep: the executor session, the result store, the progress bar."""

    def __init__(self, sweep: Sweep, executor: Executor | None, results: Any,
                 progress: bool | None, callback: Callable[[int, int], None] | None) -> None:
        self.sweep = sweep
        self.executor = LocalExecutor() if executor is None else executor
        if not isinstance(self.executor, Executor):
            raise ConfigError(f"The 'executor' parameter must be a LocalExecutor or a "
                              f"DaskExecutor. Got {executor!r}.")
        self.store = results if isinstance(results, ResultStore) else ResultStore(results)
        self.progress, self.callback = progress, callback
        self.evaluated = self.skipped = 0

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.store.finish()
        finally:
            if not self.executor.held:
                self.executor.stop()

    def evaluate(self, points: Iterable[Mapping[str, Any]],
                 scopes: Mapping[str, np.ndarray | None],
                 segments: Mapping[str, tuple[tuple[int, int], ...]] | None = None
                 ) -> list[str]:
        """Evaluate ``points`` on ``scopes`` (skipping what the store holds); return their
        config ids in order. ``segments``: the account legs of each scope (portfolio mode)."""
        from core_engine.progress import progress_bar

        ids: list[str] = []
        specs: dict[str, RunSpec] = {}
        invalid: list[tuple[RunSpec, CoreEngineError]] = []
        for point in points:
            try:
                spec = self.sweep.build(point)
            except CoreEngineError as exc:
                spec = RunSpec(self.sweep._invalid_id(point), dict(point), None, {})
                invalid.append((spec, exc))
            ids.append(spec.config_id)
            specs.setdefault(spec.config_id, spec)
        done = self.store.done()
        todo = [s for s in specs.values() if s.strategy is not None
                and not all((s.config_id, name) in done for name in scopes)]
        self.skipped += sum(s.strategy is not None for s in specs.values()) - len(todo)
        self.store.append(row for spec, exc in invalid if (spec.config_id, ALL) not in done
                          for row in error_rows(spec, exc, scopes, 0.0))
        if not todo:
            return ids
        self.executor.start(run_task, SharedData(self.sweep.panel, self.sweep.fingerprint))
        bar = progress_bar(total=len(todo), desc="sweep", enabled=self.progress, unit="config")
        finished = 0
        try:
            for result in self.executor.run(_units(todo),
                                            lambda units: Task(units, dict(scopes),
                                                               segments=dict(segments or {}))):
                self._check_metric(result["rows"])
                self.store.append(result["rows"])
                finished += result["configs"]
                bar.update(result["configs"])
                if self.callback is not None:
                    self.callback(finished, len(todo))
        finally:
            bar.close()
        self.evaluated += finished
        return ids

    def _check_metric(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            if row.get("error") is None and row["scope"] == ALL:
                if self.sweep.metric not in row:
                    from core_engine.strategies.base import did_you_mean

                    keys = [k for k in row if k not in ("config_id", "scope", "params", "error",
                                                        "elapsed_s", "period_times",
                                                        "period_returns")]
                    raise ConfigError(
                        f"The sweep's metric {self.sweep.metric!r} is not a metric of the "
                        f"runs; they have {keys}.{did_you_mean(self.sweep.metric, keys)}"
                    )
                return


def _units(specs: Sequence[RunSpec]) -> list[Unit]:
    """Group configurations that share picks; similar feature sets stay adjacent."""
    groups: dict[str, list[RunSpec]] = {}
    solo: list[Unit] = []
    for spec in specs:
        key = batch_key(spec.strategy, spec.backtest)
        if key is None:
            solo.append(Unit((spec,), batched=False))
        else:
            groups.setdefault(key, []).append(spec)
    units = [Unit(tuple(g), batched=True) for g in groups.values()] + solo
    return sorted(units, key=lambda u: _features_key(u.specs[0].strategy))


def _features_key(strategy: Any) -> str:
    features = getattr(strategy, "features", None)
    return repr(sorted(repr(f) for f in features())) if callable(features) else ""


def _optuna_search(sweep: Sweep, run: _Run, *, scope: str,
                   scopes: Mapping[str, np.ndarray | None] | None = None,
                   segments: Mapping[str, tuple[tuple[int, int], ...]] | None = None
                   ) -> list[str]:
    """Ask/tell optuna in batches; the value of a trial is ``sweep.metric`` on ``scope``."""
    optuna = import_optuna()
    scopes = {ALL: None} if scopes is None else scopes
    study = optuna.create_study(direction=sweep.direction,
                                sampler=optuna.samplers.TPESampler(seed=sweep.seed))
    distributions = sweep.space.optuna_distributions()
    batch = max(2, 2 * run.executor.n_workers)
    ids: list[str] = []
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        assert sweep.n_trials is not None  # checked in Sweep.__init__
        while len(ids) < sweep.n_trials:
            trials = [study.ask(distributions)
                      for _ in range(min(batch, sweep.n_trials - len(ids)))]
            points = [{name: t.params[name] for name in sweep.space.names} for t in trials]
            batch_ids = run.evaluate(points, scopes, segments)
            values = _metric_values(run.store.frame(), batch_ids, scope, sweep.metric)
            for trial, value in zip(trials, values, strict=True):
                if math.isfinite(value):
                    study.tell(trial, value)
                else:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
            ids += batch_ids
    finally:
        optuna.logging.set_verbosity(verbosity)
    return ids


def _metric_values(frame: pd.DataFrame, ids: Sequence[str], scope: str, metric: str
                   ) -> list[float]:
    rows = frame.loc[frame["scope"] == scope].set_index("config_id")
    out = []
    for cid in ids:
        value = rows[metric].get(cid, math.nan) if metric in rows else math.nan
        out.append(float(value) if value is not None and pd.notna(value) else math.nan)
    return out


# ---------------------------------------------------------------------------- results
@keyword_checked
class SweepResult:
    """The evaluated configurations of a sweep.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per configuration (index ``config_id``, in the order evaluated): the swept
        parameters, every metric over the whole span, ``error`` (why a configuration could
        not run, else None) and ``elapsed_s``.
    returns : pandas.DataFrame
        Per-period returns (fractions) of every configuration that ran, columns = config
        ids: one per decision time in slices mode (index ``decision_time``), daily account
        returns in portfolio mode and for traders (index ``day``, UTC midnight).
    n_trials : int
        Configurations that ran (the true number of trials for the deflated Sharpe ratio).
    evaluated, skipped : int
        Configurations computed by this run, and found done in the results file.

    Notes
    -----
    Built by :meth:`Sweep.run` and :func:`walk_forward_optimize`, not by users; the
    arguments are still checked (by type, once per sweep) so a wrong call is a
    :class:`~core_engine.errors.ConfigError` naming the parameter.
    """

    def __init__(self, sweep: Sweep, frame: pd.DataFrame, ids: Sequence[str], evaluated: int,
                 skipped: int) -> None:
        where = "SweepResult"
        check_instance(sweep, Sweep, "sweep", where)
        check_frame(frame, "frame", where, columns=("config_id",), error=ConfigError,
                    expected="the pandas DataFrame of the sweep's rows")
        ids = check_items(ids, "ids", where, kinds=str, expected="a list of config ids")
        evaluated = check_integer(evaluated, "evaluated", where, low=0)
        skipped = check_integer(skipped, "skipped", where, low=0)
        self.sweep = sweep
        self.metric, self.direction = sweep.metric, sweep.direction
        order = list(dict.fromkeys(ids))
        self.rows = frame.loc[frame["config_id"].isin(order)].reset_index(drop=True)
        self.table = _table(self.rows, order, sweep.space.names)
        self.returns = _returns(self.rows, order, "day" if sweep.account else "decision_time")
        self.evaluated, self.skipped = evaluated, skipped

    @property
    def n_trials(self) -> int:
        return int(self.table["error"].isna().sum())

    def ranked(self, metric: str | None = None, direction: str | None = None) -> pd.DataFrame:
        """The table sorted best first by ``metric`` (NaN last)."""
        metric = metric or self.metric
        if metric not in self.table:
            raise ConfigError(f"No metric {metric!r} in the sweep table.")
        ascending = (direction or self.direction) == "minimize"
        return self.table.sort_values(metric, ascending=ascending, na_position="last",
                                      kind="stable")

    @property
    def best_config_id(self) -> str:
        best = self.ranked()
        if best[self.metric].isna().all():
            raise ConfigError(f"No configuration of the sweep has a value of {self.metric!r}.")
        return str(best.index[0])

    @property
    def best_params(self) -> dict[str, Any]:
        """The point of the best configuration."""
        return dict(json.loads(self.table.loc[self.best_config_id, "params"]))

    def best_result(self):
        """Re-run the best configuration (``walk_forward``, or ``replay`` for a trader) and
        return its BacktestResult."""
        spec = self.sweep.build(self.best_params)
        if self.sweep.kind == "trader":
            return run_replay(self.sweep.panel, spec.strategy, spec.backtest)
        return walk_forward(self.sweep.panel, spec.strategy, **spec.backtest)

    def overfitting_report(self, n_blocks: int = 16):
        """PBO (CSCV with ``n_blocks``), PSR and DSR of the best configuration, with the
        true number of trials; see :func:`~core_engine.optimize.overfitting_report`."""
        from core_engine.optimize.overfitting import overfitting_report

        return overfitting_report(self.returns, selected=self.best_config_id,
                                  n_trials=self.n_trials, n_blocks=n_blocks,
                                  overlap=self.sweep.overlap,
                                  periods_per_year=self.sweep.periods_per_year)

    def __repr__(self) -> str:
        return (f"SweepResult({len(self.table)} configurations, {self.n_trials} ran, "
                f"metric {self.metric!r})")


def _table(rows: pd.DataFrame, order: Sequence[str], names: Sequence[str]) -> pd.DataFrame:
    rows = rows.loc[rows["scope"] == ALL].set_index("config_id")
    rows = rows.reindex([c for c in order if c in rows.index])
    params = pd.DataFrame([json.loads(p) for p in rows["params"]], index=rows.index,
                          columns=list(names))
    metrics = rows.drop(columns=[c for c in ("scope", "period_times", "period_returns")
                                 if c in rows])
    return pd.concat([params, metrics], axis=1)


def _returns(rows: pd.DataFrame, order: Sequence[str], index_name: str) -> pd.DataFrame:
    rows = rows.loc[(rows["scope"] == ALL) & rows["error"].isna()].set_index("config_id")
    columns = {}
    for cid in order:
        if cid in rows.index and rows.at[cid, "period_times"] is not None:
            times = pd.DatetimeIndex(np.asarray(rows.at[cid, "period_times"], dtype=np.int64),
                                     tz="UTC")
            columns[cid] = pd.Series(np.asarray(rows.at[cid, "period_returns"], dtype=np.float64),
                                     index=times)
    frame = pd.DataFrame(columns)
    frame.index.name = index_name
    return frame.sort_index()
