"""Evaluating configurations: the work an executor runs, in a worker process or inline.

A *unit* is a list of configurations evaluated together:

* **batched** — the configurations share everything the engine computes before the
  simulation (strategy and parameters, gates, allocator, window, shift, span, costs, and
  whether exits read ATR), so they share features, scores, the decision schedule and the
  picks, and differ only in their exit rules. The first runs through
  :func:`~core_engine.backtest.walk_forward` (its validation, schedule, scores and
  allocation exactly as the engine makes them); the picks it traded are then simulated
  under every configuration's exits at once (one kernel call, each copy of the picks with
  its rule's per-pick exit distances: :func:`simulate_exit_variants`), and each
  configuration's trades, equity and metrics are assembled with the engine's own public
  functions. Picks that found no entry candle never trade under any exit rule, so the
  traded picks are all there is to re-simulate; the result equals an independent
  ``walk_forward`` call exactly.
* **solo** — a configuration with anything the batched path does not model (portfolio
  mode, an audit, an argument of a newer engine) runs through ``walk_forward`` alone; a
  :class:`~core_engine.trading.Trader` through :func:`~core_engine.trading.replay`.

Features are computed once per worker process and data set: a :class:`SweepFeatureCache`
keyed by feature parameters and the data fingerprint (given by the sweep, so a worker never
re-hashes the panel).

Every configuration yields one row per *scope* (a set of decision times): its metrics over
those decisions (trades decided there, the equity of those decisions, by
:func:`~core_engine.backtest.compute_metrics`), and for the scope ``"all"`` its per-period
returns. In slices mode every window is independent, so the metrics of a contiguous scope
equal those of ``walk_forward(start=first, end=last + window)``. An account (portfolio mode,
a replay) is measured on a scope by running it there, one leg per contiguous block with
the cash carried over (:mod:`core_engine.optimize.account`, the legs given by the task's
``segments``), and its per-period returns are daily account returns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core_engine.backtest import compute_metrics, equity_curve, walk_forward
from core_engine.backtest.simulate import (
    DISTANCE_KEYS,
    Picks,
    records_to_frame,
    resolve_exit_distances,
    simulate_picks,
)
from core_engine.data.panel import Panel
from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError, CoreEngineError
from core_engine.features.cache import FeatureCache
from core_engine.optimize.account import account_returns, is_trader, run_legs, run_replay
from core_engine.optimize.results import canonical
from core_engine.risk import ExitRules
from core_engine.strategies.base import Strategy

__all__ = ["ALL", "BATCHABLE", "RunSpec", "SharedData", "SweepFeatureCache", "Task", "Unit",
           "batch_key", "error_rows", "run_task", "scope_metrics", "simulate_exit_variants"]

#: walk_forward arguments the batched path models; any other one makes a configuration solo.
BATCHABLE = frozenset({"window", "shift", "start", "end", "fee_bps", "slippage_bps",
                       "max_positions", "allocator", "gates", "exits", "mode", "audit"})
ALL = "all"


class SweepFeatureCache(FeatureCache):
    """A :class:`~core_engine.features.cache.FeatureCache` whose data fingerprint is given,
    not computed: the sweep hashes the panel once and every worker reuses that hash."""

    def __init__(self, fingerprint: str, max_bytes: int = 2 * 1024**3) -> None:
        super().__init__(max_bytes=max_bytes)
        self.fingerprint = fingerprint

    def key(self, feature: Any, panel: Panel) -> tuple:  # type: ignore[override]
        cls = type(feature)
        return (f"{cls.__module__}.{cls.__qualname__}", repr(feature), self.fingerprint)


@dataclass(frozen=True)
class SharedData:
    """What every task reads: the panel and its fingerprint (scattered once per sweep)."""

    panel: Panel
    fingerprint: str


@dataclass(frozen=True)
class RunSpec:
    """One configuration: its id, its point of the space and the built objects."""

    config_id: str
    params: dict[str, Any]
    strategy: Any
    backtest: dict[str, Any]


@dataclass(frozen=True)
class Unit:
    """Configurations evaluated together (see the module docstring)."""

    specs: tuple[RunSpec, ...]
    batched: bool

    def __len__(self) -> int:
        return len(self.specs)

    def split(self, size: int) -> list[Unit]:
        """Chunks of at most ``size`` configurations (each chunk shares its own picks)."""
        return [Unit(self.specs[i:i + size], self.batched)
                for i in range(0, len(self.specs), size)]


@dataclass(frozen=True)
class Task:
    """What one executor call evaluates: units and the scopes to measure.

    ``scopes`` maps a scope name to its decision times (int64 ns; None = the whole run);
    ``segments`` maps it to the ``(start_ns, end_ns)`` legs an account runs there
    (:func:`~core_engine.optimize.account.account_segments`; slices mode ignores them).
    """

    units: tuple[Unit, ...]
    scopes: Mapping[str, np.ndarray | None] = field(default_factory=lambda: {ALL: None})
    keep_trades: bool = False
    segments: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(u) for u in self.units)


def batch_key(strategy: Any, backtest: Mapping[str, Any]) -> str | None:
    """The key shared by configurations that can be simulated together, or None (solo)."""
    if not isinstance(strategy, Strategy) or not set(backtest) <= BATCHABLE \
            or backtest.get("mode", "slices") != "slices" or backtest.get("audit", 0):
        return None
    shared = {k: v for k, v in backtest.items() if k != "exits"}
    exits = backtest.get("exits")
    shared["_atr"] = exits.atr_length if exits is not None and exits.uses_atr else None
    return json.dumps({"strategy": canonical(strategy), "backtest": canonical(shared)},
                      sort_keys=True)


# ---------------------------------------------------------------------------- worker state
_CACHES: dict[str, SweepFeatureCache] = {}


def _cache(fingerprint: str) -> SweepFeatureCache:
    """The process's feature cache of this data set (one data set at a time)."""
    cache = _CACHES.get(fingerprint)
    if cache is None:
        _CACHES.clear()
        cache = _CACHES[fingerprint] = SweepFeatureCache(fingerprint)
    return cache


def run_task(shared: SharedData, task: Task) -> dict[str, Any]:
    """Evaluate every unit of ``task`` on ``shared.panel``: the executors' work function.

    Returns
    -------
    dict
        ``rows`` (one dict per configuration and scope, ready for the result store),
        ``configs`` (how many configurations), ``elapsed`` (seconds) and, with
        ``keep_trades``, ``trades`` ({config_id: trades DataFrame}).
    """
    start = time.perf_counter()
    cache = _cache(shared.fingerprint)
    rows: list[dict[str, Any]] = []
    trades: dict[str, pd.DataFrame] = {}
    for unit in task.units:
        began = time.perf_counter()
        try:
            outcomes = (_evaluate_batched if unit.batched and len(unit) > 1 else _evaluate_solo)(
                shared.panel, unit.specs, cache)
        except CoreEngineError as exc:
            outcomes = [(spec, exc) for spec in unit.specs]
        each = (time.perf_counter() - began) / max(len(unit), 1)
        for spec, outcome in outcomes:
            if isinstance(outcome, BaseException):
                rows += error_rows(spec, outcome, task.scopes, each)
                continue
            rows += _scope_rows(spec, outcome, task, shared.panel, cache, each)
            if task.keep_trades:
                trades[spec.config_id] = outcome["trades"]
    result: dict[str, Any] = {"rows": rows, "configs": task.size,
                              "elapsed": time.perf_counter() - start}
    if task.keep_trades:
        result["trades"] = trades
    return result


# ---------------------------------------------------------------------------- evaluation
def _evaluate_solo(panel: Panel, specs: Sequence[RunSpec], cache: FeatureCache) -> list:
    out: list[tuple[RunSpec, Any]] = []
    for spec in specs:
        try:
            if is_trader(spec.strategy):
                result = run_replay(panel, spec.strategy, spec.backtest)
            else:
                result = walk_forward(panel, spec.strategy, **spec.backtest, cache=cache)
        except CoreEngineError as exc:
            out.append((spec, exc))
            continue
        config = result.config
        outcome = {"trades": result.trades, "equity": result.equity,
                   "metrics": dict(result.metrics), "engine": _engine(spec, config)}
        if outcome["engine"] == "slices":
            outcome.update(window_ns=timeframe_ns(config["window"]),
                           shift_ns=timeframe_ns(config["shift"]))
        out.append((spec, outcome))
    return out


def _engine(spec: RunSpec, config: Mapping[str, Any]) -> str:
    """``"slices"``, ``"portfolio"`` (an account by walk_forward) or ``"replay"``."""
    if is_trader(spec.strategy):
        return "replay"
    return "portfolio" if config.get("mode") == "portfolio" else "slices"


def _evaluate_batched(panel: Panel, specs: Sequence[RunSpec], cache: FeatureCache) -> list:
    first = specs[0]
    base = walk_forward(panel, first.strategy, **first.backtest, cache=cache)
    config = base.config
    window_ns, shift_ns = timeframe_ns(config["window"]), timeframe_ns(config["shift"])
    picks = _picks_from_trades(base.trades, panel)
    times = pd.DatetimeIndex(base.equity["decision_time"])
    exits = [spec.backtest.get("exits") for spec in specs]
    atr = _atr(panel, exits, cache)
    records = simulate_exit_variants(panel, picks, exits, window_candles=window_ns // panel.step_ns,
                                     fee_bps=config["fee_bps"],
                                     slippage_bps=config["slippage_bps"], atr=atr)
    out = []
    for spec, rec in zip(specs, records, strict=True):
        trades = records_to_frame(rec, picks, panel)
        equity = equity_curve(trades, times, window_ns=window_ns, shift_ns=shift_ns)
        out.append((spec, {"trades": trades, "equity": equity,
                           "metrics": compute_metrics(trades, equity, window_ns=window_ns,
                                                      shift_ns=shift_ns),
                           "engine": "slices", "window_ns": window_ns, "shift_ns": shift_ns}))
    return out


def _ns(times: Any) -> np.ndarray:
    """int64 nanoseconds of times, whatever the unit pandas stored them in."""
    return np.asarray(pd.DatetimeIndex(times).as_unit("ns").asi8, dtype=np.int64)


def _picks_from_trades(trades: pd.DataFrame, panel: Panel) -> Picks:
    """The traded picks of a run, in its order (decision row = the candle closing at t)."""
    decided = _ns(trades["decision_time"])
    rows = (decided - int(panel.index.asi8[0])) // panel.step_ns - 1
    column = {symbol: j for j, symbol in enumerate(panel.symbols)}
    return Picks(rows=rows, cols=trades["symbol"].map(column).to_numpy(dtype=np.int64),
                 weights=trades["weight"].to_numpy(), ranks=trades["rank"].to_numpy(),
                 scores=trades["score"].to_numpy())


def _atr(panel: Panel, exits: Sequence[Any], cache: FeatureCache) -> np.ndarray | None:
    atr_rules = [e for e in exits if e is not None and e.uses_atr]
    if not atr_rules:
        return None
    from core_engine.features import ATR
    from core_engine.features.cache import compute_features

    computer = ATR(length=atr_rules[0].atr_length)
    return compute_features([computer], panel, cache=cache)[computer.columns[0]]


def simulate_exit_variants(panel: Panel, picks: Picks, exits: Sequence[Any], *,
                           window_candles: int, fee_bps: float, slippage_bps: float,
                           atr: np.ndarray | None) -> list[np.ndarray]:
    """Simulate the same picks under several exit rules; one record array per rule.

    The picks are stacked once per distinct rule, each copy with that rule's per-pick exit
    distances (:func:`~core_engine.backtest.resolve_exit_distances`), and simulated in one
    :func:`~core_engine.backtest.simulate_picks` call (``distances=``) per stop-fill model
    (``stop_fill``, ``stop_fill_range``: one call in the usual sweep). Identical rules are
    simulated once. Each rule's records equal a ``simulate_picks(exits=rule)`` call.
    """
    distinct: dict[str, int] = {}
    order = [distinct.setdefault(repr(e), len(distinct)) for e in exits]
    unique = [exits[order.index(k)] for k in range(len(distinct))]
    fills: dict[tuple[str, float | None], list[int]] = {}
    for k, rule in enumerate(unique):
        fill = ("level", None) if rule is None else (rule.stop_fill, rule.stop_fill_range)
        fills.setdefault(fill, []).append(k)
    n = len(picks)
    results: list[np.ndarray] = [np.zeros(0)] * len(unique)
    for (stop_fill, stop_fill_range), members in fills.items():
        parts = [resolve_exit_distances(unique[k], picks, atr) for k in members]
        stacked = Picks(**{key: np.tile(getattr(picks, key), len(members))
                           for key in ("rows", "cols", "weights", "ranks", "scores")})
        distances = {key: np.concatenate([p[key] for p in parts]) for key in DISTANCE_KEYS}
        model: ExitRules | None = None if stop_fill == "level" else ExitRules(
            stop_fill=stop_fill, stop_fill_range=stop_fill_range)
        records = simulate_picks(panel, stacked, window_candles=int(window_candles),
                                 fee_bps=fee_bps, slippage_bps=slippage_bps, exits=model,
                                 distances=distances)
        for position, k in enumerate(members):
            block = records[position * n:(position + 1) * n].copy()
            block["pick"] -= position * n  # each block numbers its own picks
            results[k] = block
    return [results[k] for k in order]


# ---------------------------------------------------------------------------- rows
def scope_metrics(trades: pd.DataFrame, times: pd.DatetimeIndex, scope: np.ndarray | None, *,
                  window_ns: int, shift_ns: int) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics and equity of the decisions of ``times`` that lie in ``scope`` (int64 ns
    decision times; None = all), with the trades decided there."""
    if scope is not None:
        keep = np.isin(_ns(times), scope)
        times = times[keep]
        trades = trades.loc[np.isin(_ns(trades["decision_time"]), scope)]
    equity = equity_curve(trades, times, window_ns=window_ns, shift_ns=shift_ns)
    if not len(times):
        return {}, equity
    return compute_metrics(trades, equity, window_ns=window_ns, shift_ns=shift_ns), equity


def _flatten(metrics: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            out.update({f"{key}_{k}" if key != "exit_reasons" else f"exit_{k}": v
                        for k, v in value.items()})
        else:
            out[key] = value
    return out


def _base_row(spec: RunSpec, scope: str, elapsed: float) -> dict[str, Any]:
    return {"config_id": spec.config_id, "scope": scope,
            "params": json.dumps(spec.params, default=repr),
            "error": None, "elapsed_s": elapsed}


def _scope_rows(spec: RunSpec, outcome: Mapping[str, Any], task: Task, panel: Panel,
                cache: FeatureCache, elapsed: float) -> list[dict[str, Any]]:
    rows = []
    equity = outcome["equity"]
    engine = outcome["engine"]
    for name, scope in task.scopes.items():
        row = _base_row(spec, name, elapsed)
        if name == ALL and scope is None:
            row.update(_flatten(outcome["metrics"]))
            row["period_times"], row["period_returns"] = _period_returns(outcome)
        elif engine == "slices":
            decided = pd.DatetimeIndex(equity["decision_time"])
            metrics, _ = scope_metrics(outcome["trades"], decided, scope,
                                       window_ns=outcome["window_ns"],
                                       shift_ns=outcome["shift_ns"])
            row.update(_flatten(metrics))
        else:
            try:
                row.update(_flatten(_account_scope_metrics(spec, task.segments.get(name),
                                                           name, panel, cache)))
            except CoreEngineError as exc:
                row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    return rows


def _account_scope_metrics(spec: RunSpec, segments: Sequence[tuple[int, int]] | None,
                           name: str, panel: Panel, cache: FeatureCache) -> dict[str, Any]:
    """The account metrics of ``spec`` traded on a scope's legs alone (cash carried)."""
    if is_trader(spec.strategy):
        raise ConfigError(f"A trader's replay has no decision times to measure on scope "
                          f"{name!r}; only the whole run ('all') is measured.")
    if segments is None:
        raise ConfigError(f"The account scope {name!r} comes without its legs (segments); "
                          "build the task with account_segments.")
    if not segments:
        return {}
    legs = [(spec.strategy, spec.backtest, start, end) for start, end in segments]
    account, _ = run_legs(panel, legs, cache=cache)
    return dict(account["metrics"])


def _period_returns(outcome: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-period returns and their times (int64 ns): one per decision time in slices mode
    (fractions of ``period_return_pct``), daily account returns otherwise."""
    equity = outcome["equity"]
    if outcome["engine"] == "slices":
        return (_ns(equity["decision_time"]).copy(),
                equity["period_return_pct"].to_numpy(dtype=np.float64) / 100.0)
    return account_returns(equity, engine=outcome["engine"],
                           initial_cash=float(outcome["metrics"]["initial_cash"]))


def error_rows(spec: RunSpec, error: BaseException, scopes: Mapping[str, Any],
               elapsed: float) -> list[dict[str, Any]]:
    """One row per scope recording why ``spec`` could not run (its metrics stay empty)."""
    rows = []
    for name in scopes:
        row = _base_row(spec, name, elapsed)
        row["error"] = f"{type(error).__name__}: {error}"
        rows.append(row)
    return rows
