"""Account runs in a sweep: portfolio-mode ``walk_forward`` and trader replays.

A slices-mode run is a set of independent windows; its per-period returns are one per
decision time and the metrics of any set of decision times follow from its trades. An
*account* (``walk_forward(mode="portfolio")``, or :func:`~core_engine.trading.replay` of a
:class:`~core_engine.trading.Trader`) is one compounding pot of cash whose every step
depends on the ones before, so both are defined here.

Per-period returns: daily account returns
-----------------------------------------
The returns a sweep keeps for the overfitting statistics (PBO by CSCV, probabilistic and
deflated Sharpe) are the account's **daily returns**, exactly those its own ``sharpe``
metric is computed from (``mean / std × √365``): for ``walk_forward`` the UTC day's last
mark at or before the next midnight over the previous day's
(:func:`core_engine.backtest.metrics.daily_returns`), for a replay the day's last mark
(``resample("1D").last()``) over the previous one, starting from the initial cash. Why
daily and not per candle or per decision: marks at every 5-minute candle are strongly
autocorrelated and mostly noise, so CSCV blocks and the Sharpe tests would count tens of
thousands of "observations" that are not independent; per-decision returns do not exist
for an account whose positions span several decisions. Daily returns are what the
account metrics already use, do not overlap (``overlap = 1`` in the PSR/DSR), and every
trial of a sweep shares the same calendar, so the returns of different configurations line
up row by row (a day that a trial has not reached yet, after a longer warm-up, is dropped
by CSCV for every trial). Periods per year: 365 (markets trade every day).

Accounts over a set of decision times
-------------------------------------
Walk-forward optimisation measures a configuration on the decision times of a fold, and
trades the chosen configurations on consecutive test folds. For an account this module
runs one **leg** per contiguous block of decision times and carries the cash from leg to
leg (:func:`run_legs`):

* a leg is ``walk_forward(mode="portfolio", start=first decision, end=..., initial_cash=
  the equity the previous leg ended with)`` (the first leg: the configuration's own
  ``initial_cash``, walk_forward's default when it has none);
* the account is **flat at every switch**: a leg ends at the earlier of its last decision
  time + ``window`` and the next leg's first decision time, so each of its positions has
  left (by its exits, the window end, or the run's end for ``hold="until_dropped"``) by
  the time the next leg — possibly another configuration — trades. When the window is
  longer than the shift and two legs are adjacent, the last ``ceil(window / shift) − 1``
  decision times before a switch are therefore not traded (they would still hold
  positions at the switch);
* the equity curve is the legs' marks end to end (a leg's marks from the next leg's first
  decision time on are dropped: the next leg's first mark, its initial cash, is the
  value of the flat account there), with the drawdown from the running peak recomputed;
  trades and blocked picks are concatenated; the metrics are
  :func:`~core_engine.backtest.metrics.account_metrics` of the whole. Idle time between
  legs (a purged gap, a fold without a choice) holds cash and has no marks.

This is the walk-forward a trader runs: one account, re-tuned at each fold boundary, its
money carried over, positions closed before the parameters change. A position held past
its window by an exchange outage (``exit_delayed_by``) still belongs to the leg that
opened it; its cash counts from that leg's end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from core_engine.backtest import BacktestResult, walk_forward
from core_engine.backtest.metrics import account_metrics, daily_returns
from core_engine.errors import ConfigError

__all__ = ["ACCOUNT_PERIODS_PER_YEAR", "DAY_NS", "account_returns", "account_segments",
           "is_trader", "replay_arguments", "run_legs", "run_replay", "stitch_accounts"]

DAY_NS = 86_400 * 10**9
ACCOUNT_PERIODS_PER_YEAR = 365.0


def is_trader(strategy: Any) -> bool:
    """Whether ``strategy`` is a Trader class or instance (evaluated by ``replay``)."""
    from core_engine.trading.trader import Trader

    return (isinstance(strategy, type) and issubclass(strategy, Trader)) \
        or isinstance(strategy, Trader)


def replay_arguments() -> dict[str, Any]:
    """The keyword arguments of :func:`~core_engine.trading.replay` and their defaults."""
    import inspect

    from core_engine.trading.events import replay

    return {p.name: p.default for p in inspect.signature(replay).parameters.values()
            if p.name not in ("trader", "data")}


def run_replay(panel: Any, trader: Any, arguments: Mapping[str, Any]) -> BacktestResult:
    """Replay a fresh clone of ``trader`` on ``panel`` with a fresh clone of the broker."""
    from core_engine.trading.events import replay
    from core_engine.trading.sim import SimBroker

    kwargs = dict(arguments)
    broker = kwargs.pop("broker", None)
    broker = SimBroker() if broker is None else broker.clone()
    return replay(trader.clone(), panel, broker=broker, **kwargs)


# ---------------------------------------------------------------------------- returns
def account_returns(equity: pd.DataFrame, *, engine: str, initial_cash: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Daily returns of an account and the UTC day (int64 ns of its midnight) of each.

    ``engine`` is ``"portfolio"`` (walk_forward's definition) or ``"replay"`` (the event
    engine's); see the module docstring. Their ``mean / std (ddof 1) × √365`` is the
    run's ``sharpe``.
    """
    values = equity["equity"].to_numpy(dtype=np.float64)
    times = pd.DatetimeIndex(equity["time"]).as_unit("ns").asi8
    if engine == "portfolio":
        returns = daily_returns(equity)
        if values.size < 2:
            return np.empty(0, np.int64), returns
        day = (times[1:] - 1) // DAY_NS
        last = np.flatnonzero(np.append(day[1:] != day[:-1], True))
        return day[last] * DAY_NS, returns
    if engine != "replay":
        raise ConfigError(f"account_returns: engine must be 'portfolio' or 'replay'. Got "
                          f"{engine!r}.")
    if not values.size:
        return np.empty(0, np.int64), np.empty(0)
    daily = pd.Series(values, index=pd.DatetimeIndex(times, tz="UTC")).resample("1D").last()
    daily = daily.dropna()
    closes = daily.to_numpy(dtype=np.float64)
    previous = np.concatenate([[float(initial_cash)], closes[:-1]])
    return daily.index.as_unit("ns").asi8.copy(), closes / previous - 1.0


# ---------------------------------------------------------------------------- legs
def account_segments(groups: Sequence[np.ndarray], times: Any, window_ns: int
                     ) -> list[tuple[int, int, int]]:
    """The legs of an account over groups of decision times: ``(group, start, end)``.

    ``groups`` are arrays of positions into ``times`` (the sweep's decision schedule), in
    the order the account trades them (each group one configuration, e.g. one fold); a
    group is cut where its positions skip one. A leg starts at its first decision time and
    ends (``walk_forward``'s ``end``, int64 ns) at the earlier of its last decision time +
    ``window_ns`` and the next leg's first decision time. Legs in which no decision fits
    (``end − window < start``) are left out.
    """
    ns = pd.DatetimeIndex(times).as_unit("ns").asi8
    blocks: list[tuple[int, np.ndarray]] = []
    for g, positions in enumerate(groups):
        positions = np.asarray(positions, dtype=np.int64)
        if not positions.size:
            continue
        cuts = np.flatnonzero(np.diff(positions) != 1) + 1
        blocks += [(g, block) for block in np.split(positions, cuts)]
    out = []
    for b, (g, block) in enumerate(blocks):
        start, end = int(ns[block[0]]), int(ns[block[-1]]) + int(window_ns)
        if b + 1 < len(blocks):
            end = min(end, int(ns[blocks[b + 1][1][0]]))
        if end - window_ns >= start:
            out.append((g, start, end))
    return out


def run_legs(panel: Any, legs: Sequence[tuple[Any, Mapping[str, Any], int, int]], *,
             cache: Any = None) -> tuple[dict[str, Any], list[BacktestResult]]:
    """Run ``(strategy, walk_forward arguments, start_ns, end_ns)`` legs as one account
    (the cash carried from leg to leg; see the module docstring).

    Returns
    -------
    (dict, list of BacktestResult)
        ``trades, blocked, equity, metrics`` of the account, and each leg's run.
    """
    if not legs:
        raise ConfigError("An account over decision times needs at least one leg. Got none.")
    cash: float | None = None  # the first leg starts with its own (or the engine's default)
    runs: list[BacktestResult] = []
    for strategy, arguments, start, end in legs:
        kwargs = {**arguments, "start": pd.Timestamp(start, tz="UTC"),
                  "end": pd.Timestamp(end, tz="UTC")}
        if cash is not None:
            kwargs["initial_cash"] = cash
        result = walk_forward(panel, strategy, **kwargs, cache=cache)
        runs.append(result)
        cash = float(result.metrics["final_equity"])
    initial = float(runs[0].metrics["initial_cash"])
    return stitch_accounts(runs, initial_cash=initial), runs


def stitch_accounts(runs: Sequence[BacktestResult], *, initial_cash: float) -> dict[str, Any]:
    """Trades, blocked picks, equity and account metrics of consecutive account runs, each
    started with the cash the previous one ended with (see the module docstring)."""
    if len(runs) == 1:  # one leg is its own account (the same account_metrics call)
        run = runs[0]
        return {"trades": run.trades, "blocked": run.blocked, "equity": run.equity,
                "metrics": dict(run.metrics)}
    pieces = []
    for k, run in enumerate(runs):
        equity = run.equity
        if k + 1 < len(runs) and len(runs[k + 1].equity):
            following = runs[k + 1].equity["time"].iloc[0]
            equity = equity.loc[equity["time"] < following]
        pieces.append(equity)
    equity = pd.concat(pieces, ignore_index=True) if pieces else runs[0].equity.iloc[:0]
    values = equity["equity"].to_numpy(dtype=np.float64)
    peak = np.maximum.accumulate(values) if values.size else values
    with np.errstate(invalid="ignore", divide="ignore"):
        equity["drawdown_pct"] = np.where(peak > 0, (1.0 - values / peak) * 100.0, 0.0)
    trades = pd.concat([r.trades for r in runs], ignore_index=True)
    blocked = pd.concat([r.blocked for r in runs], ignore_index=True)
    decisions = int(sum(r.metrics["decisions"] for r in runs))
    metrics = account_metrics(trades, equity, blocked, decisions=decisions,
                              initial_cash=initial_cash)
    return {"trades": trades, "blocked": blocked, "equity": equity, "metrics": metrics}

