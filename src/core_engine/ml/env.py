"""TradingEnv: a gymnasium environment on the engine's time rule and portfolio simulator.

**Time.** One step is one decision time ``t`` (the multiples of ``shift`` since the epoch,
after the features' warm-up, skipping times without any entry candle: the engine's
:func:`~core_engine.backtest.decision_schedule`). The observation is made at ``t`` from
candles closed by ``t``; the action is executed at the open of the candle starting at
``t`` (plus slippage, fees on both sides) by the portfolio simulator of
``walk_forward(mode="portfolio")`` (:func:`core_engine.backtest.portfolio.simulate_portfolio`),
which marks the account at every candle close. The reward of the step is read from the mark
at the next decision time.

**Actions.** ``action="discrete"``: ``Discrete(n_symbols + 1)``, 0 = flat, ``j + 1`` = all
in symbol ``j``. ``action="weights"``: ``Box(0, 1, (n_symbols,))`` target weights of
equity (weights below ``min_weight`` count as 0, then the rest is scaled down to sum to 1
when it sums to more). Positions are held while their symbol keeps a weight (``hold="until_dropped"``) and,
with weights, re-sized to the new target at each step (``rebalance=True``); a pick the cash
cannot cover shrinks, exactly as in the engine.

**Masks.** ``info["action_mask"]`` (and :meth:`TradingEnv.action_masks`, the convention of
maskable PPO implementations) says which actions can enter at the next step: symbols the
gates make ineligible at ``t``, symbols without any price yet, and — with ``rules`` — symbols
a portfolio rule blocks at ``t`` (cooldown, entries per day, daily loss, drawdown halt,
correlation). The rules are asked of the simulator itself: a trial decision at ``t`` with a
zero weight for every symbol, on the known candles (the open at ``t`` is not read: it is
replaced by the last close), reports each pick's blocking rule. A masked action is still
accepted; the simulator blocks it as the engine would (``info["blocked"]``).

**Reward** ``log(E_{t'} / E_t)`` of the equity marked at consecutive decision times, minus
``drawdown_penalty × (1 − E_{t'} / peak)`` and ``turnover_penalty × Σ|w_target − w_held|``.
**Termination**: equity at or below ``ruin_pct`` % of the initial cash, or the drawdown
circuit breaker of ``rules`` halting for good. **Truncation** at the end of the data (or
after ``episode_steps``). At either end the positions are sold at the next open, the
engine's end-of-run rule, and the last reward includes those costs; the final equity is
then the final equity of ``walk_forward(**env.walk_forward_kwargs())`` with
``ScheduledWeights(env.episode_weights())`` — the replay check of the tests.

**Cost.** The simulator has no pause/resume interface, so each step re-runs the account
from the episode's first decision (cost grows with the episode's length; a few thousand
steps take seconds). A resumable kernel would make steps constant-time.

gymnasium is an optional extra (``pip install 'core-engine[ml]'``). stable-baselines3's PPO
or DQN accept this environment as is (DQN with ``action="discrete"``); they are not
dependencies of core_engine.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import check_items, check_real
from core_engine.errors import ConfigError

try:
    import gymnasium as gym
    from gymnasium import spaces
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ConfigError(
        "TradingEnv needs gymnasium, which is not installed. Install it with "
        "pip install 'core-engine[ml]' (or pip install gymnasium)."
    ) from exc

from core_engine.backtest._portfolio_kernels import BLOCK_REASON_NAMES, PORTFOLIO_EXIT_REASON_NAMES
from core_engine.backtest.engine import load_panel
from core_engine.backtest.inputs import compute_inputs, warm_up
from core_engine.backtest.portfolio import PortfolioOptions, simulate_portfolio, sizing_weights
from core_engine.backtest.schedule import decision_schedule
from core_engine.backtest.simulate import Picks
from core_engine.data.panel import Panel
from core_engine.data.timeframes import format_timeframe, timeframe_ns, to_utc_timestamp
from core_engine.features.base import FeatureComputer
from core_engine.ml.replay import ScheduledWeights
from core_engine.risk.allocation import TopNEqual
from core_engine.risk.gates import Gate
from core_engine.risk.sizing import ConfidenceSizing
from core_engine.strategies.base import rank_candidates

__all__ = ["ACTIONS", "TradingEnv"]

ACTIONS = ("discrete", "weights")
_SIZING = ConfidenceSizing(full_confidence=1.0, slots=1)
_REBALANCE = PORTFOLIO_EXIT_REASON_NAMES.index("rebalance")
_SIZING_BLOCK = BLOCK_REASON_NAMES.index("sizing")


def _ffill(values: np.ndarray) -> np.ndarray:
    """Last finite value at or before each row, per column (NaN before the first)."""
    out = np.array(values, dtype=np.float64)
    rows = np.where(np.isfinite(out), np.arange(out.shape[0])[:, None], 0)
    np.maximum.accumulate(rows, axis=0, out=rows)
    filled = out[rows, np.arange(out.shape[1])[None, :]]
    return filled


@keyword_checked
class TradingEnv(gym.Env):
    """A trading environment over a panel (see the module docstring for every rule).

    Parameters
    ----------
    data : Panel or dict of candle frames
    features : list of FeatureComputer
        The observation's features, computed once on the whole panel (causal).
    action : {"discrete", "weights"}
    shift : str
        Decision cadence (one step), a multiple of the timeframe.
    observation_window : int
        Feature rows per observation: the candles closing at ``t`` and before it.
    fee_bps, slippage_bps, initial_cash, rules, gates, exits
        As in ``walk_forward(mode="portfolio")``.
    drawdown_penalty, turnover_penalty : float
        Reward penalties (0 = off).
    ruin_pct : float
        Terminate when equity falls to this percent of the initial cash.
    episode_steps : int, optional
        Episode length; each reset then starts at a random decision time (seeded).
        Default: one episode over the whole data.
    start, end : time, optional
        Restrict the decision times as ``walk_forward`` does.
    min_weight : float
        Target weights below it count as 0 (``action="weights"``).

    Examples
    --------
    >>> from core_engine.data import Panel
    >>> from core_engine.data.providers import load_sample
    >>> from core_engine.features import RSI
    >>> panel = Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT"], "2021-01-01",
    ...                                       "2021-01-04"), "5m")
    >>> env = TradingEnv(panel, [RSI(14)], shift="1h")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.action_space, info["action_mask"].tolist()
    ((6,), Discrete(3), [True, True, True])
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, data: Any, features: list, *, action: str = "discrete",
                 shift: str = "1h", observation_window: int = 1, fee_bps: float = 10.0,
                 slippage_bps: float = 0.0, initial_cash: float = 10_000.0, rules: Any = None,
                 gates: Any = (), exits: Any = None, drawdown_penalty: float = 0.0,
                 turnover_penalty: float = 0.0, ruin_pct: float = 50.0,
                 episode_steps: int | None = None, start: Any = None, end: Any = None,
                 min_weight: float = 0.01) -> None:
        from core_engine.features.cache import compute_features

        self.panel: Panel = load_panel(data)
        if action not in ACTIONS:
            raise ConfigError(f"The 'action' parameter of TradingEnv must be one of "
                              f"{list(ACTIONS)}. Got {action!r}.")
        self.action = action
        self.computers = check_items(features, "features", "TradingEnv", kinds=FeatureComputer,
                                     non_empty=True,
                                     expected="a list of at least one FeatureComputer, such as "
                                              "[RSI(14)]")
        for name, value in (("observation_window", observation_window),):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"The '{name}' parameter of TradingEnv must be an integer "
                                  f">= 1. Got {value!r}.")
        self.observation_window = int(observation_window)
        where = "TradingEnv"
        self.costs = {"fee_bps": check_real(fee_bps, "fee_bps", where, low=0.0, high=10_000.0),
                      "slippage_bps": check_real(slippage_bps, "slippage_bps", where, low=0.0,
                                                 high=10_000.0)}
        self.rules, self.exits = rules, exits
        self.gates = (gates,) if isinstance(gates, Gate) else tuple(check_items(
            () if gates is None else gates, "gates", where, kinds=Gate,
            expected="a Gate or a list of Gate objects such as [MaxATRPct(max_atr_pct=2.0)]"))
        self.penalties = (check_real(drawdown_penalty, "drawdown_penalty", where, low=0.0),
                          check_real(turnover_penalty, "turnover_penalty", where, low=0.0))
        self.ruin_pct = check_real(ruin_pct, "ruin_pct", where, low=0.0, high=100.0)
        self.min_weight = check_real(min_weight, "min_weight", where, low=0.0, high=1.0)
        self.options = PortfolioOptions(initial_cash=initial_cash, sizing=_SIZING, rules=rules,
                                        hold="until_dropped", rebalance=action == "weights")
        self.options.check_exits(exits)
        self.allocator = TopNEqual(n=self.panel.n_symbols)
        values = compute_features(self.computers, self.panel)
        self.columns = list(values)
        stacked = np.stack([values[c] for c in self.columns], axis=2)
        self._obs_features = np.nan_to_num(stacked, nan=0.0, posinf=0.0,
                                           neginf=0.0).astype(np.float32)
        self._schedule(shift, start, end)
        self._inputs = compute_inputs(self.panel, ScheduledWeights(pd.DataFrame(
            index=pd.DatetimeIndex([], tz="UTC"))), gates=self.gates, allocator=self.allocator,
            exits=exits)
        self._marks = _ffill(self.panel.close)
        self._trial_open = np.array(self.panel.open, order="F")
        self._trial_panel = self.panel.with_fields(open=self._trial_open)
        self._setup_episodes(episode_steps)
        n_sym = self.panel.n_symbols
        size = self.observation_window * n_sym * len(self.columns) + n_sym + 2
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
        self.action_space = spaces.Discrete(n_sym + 1) if action == "discrete" else \
            spaces.Box(0.0, 1.0, shape=(n_sym,), dtype=np.float32)
        self._done = True

    # ------------------------------------------------------------------ set-up
    def _schedule(self, shift: Any, start: Any, end: Any) -> None:
        panel = self.panel
        step = panel.step_ns
        shift_ns = timeframe_ns(shift, name="shift")
        if shift_ns % step:
            raise ConfigError(f"The 'shift' parameter of TradingEnv must be a multiple of the "
                              f"panel's {panel.timeframe} timeframe. Got {shift!r}.")
        self.shift_ns = shift_ns
        lookback = max(max(int(c.lookback) for c in self.computers) + self.observation_window - 1,
                       warm_up(ScheduledWeights(pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"))),
                               self.gates, self.allocator, self.exits))
        bounds = {"start_ns": None if start is None else to_utc_timestamp(start).value,
                  "end_ns": None if end is None else to_utc_timestamp(end).value}
        window_ns = shift_ns
        for _ in range(3):  # the hold window must reach the next decision, across outages
            sched = decision_schedule(panel.index.asi8, step, window_ns=window_ns,
                                      shift_ns=shift_ns, lookback=lookback,
                                      entry_open=panel.open, **bounds)
            gap = int(np.diff(sched.rows).max()) * step if len(sched.rows) > 1 else window_ns
            if gap <= window_ns:
                break
            window_ns = gap
        if len(sched.rows) < 2:
            raise ConfigError(f"TradingEnv needs at least two decision times; {panel!r} with "
                              f"shift {shift!r} and a warm-up of {lookback} candles has "
                              f"{len(sched.rows)}.")
        self.window_ns = window_ns
        self.times = sched.times
        self.rows = sched.rows

    def _setup_episodes(self, episode_steps: Any) -> None:
        last = len(self.rows) - 1
        if episode_steps is None:
            self.episode_steps = last
            return
        if isinstance(episode_steps, bool) or not isinstance(episode_steps, (int, np.integer)) \
                or not 1 <= episode_steps <= last:
            raise ConfigError(f"The 'episode_steps' parameter of TradingEnv must be an integer "
                              f"in [1, {last}] (decision times of the data less one). Got "
                              f"{episode_steps!r}.")
        self.episode_steps = int(episode_steps)

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None
              ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        spare = len(self.rows) - 1 - self.episode_steps
        self._p0 = int(self.np_random.integers(0, spare + 1)) if spare > 0 else 0
        self._k = self._p0
        self._parts: list[tuple[int, int, int, float]] = []
        self._targets: dict[pd.Timestamp, np.ndarray] = {}
        self._equity = self._peak = self.options.initial_cash
        self._held = np.zeros(self.panel.n_symbols)
        self._done = False
        row = int(self.rows[self._k])
        self._mask = self._next_mask(row)
        info = {"time": self.times[self._k], "equity": self._equity,
                "action_mask": self.action_masks()}
        return self._observation(row, self._held, 1.0, 0.0), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._done:
            raise ConfigError("TradingEnv.step was called on a finished episode; call reset().")
        k, row = self._k, int(self.rows[self._k])
        target = self._target(action)
        self._targets[self.times[k]] = target
        n_new = self._choose(row, target)
        run, all_picks = self._run(k)
        nxt = int(self.rows[k + 1])
        eq = run.equity[nxt - run.first_row]
        equity, cash, exposure = float(eq[0]), float(eq[1]), float(eq[2])
        held = self._positions(run, nxt, equity)
        self._peak = max(self._peak, equity)
        terminated = equity <= self.options.initial_cash * self.ruin_pct / 100.0 \
            or self._breaker(run, nxt)
        truncated = not terminated and k + 1 - self._p0 >= self.episode_steps
        done = terminated or truncated
        final = float(run.equity[-1, 0]) if done else equity
        reward = float(np.log(max(final, 1e-12) / max(self._equity, 1e-12)))
        reward -= self.penalties[0] * (1.0 - equity / self._peak)
        reward -= self.penalties[1] * float(np.abs(target - self._held).sum())
        blocked = run.blocked[run.blocked["pick"] >= len(all_picks) - n_new]
        info = {"time": self.times[k + 1], "equity": equity, "cash": cash,
                "exposure": exposure, "target": target,
                "blocked": [(self.panel.symbols[int(all_picks.cols[b["pick"]])],
                             BLOCK_REASON_NAMES[int(b["reason"])]) for b in blocked]}
        if done:
            info["final_equity"] = final
        self._k, self._equity, self._held, self._done = k + 1, equity, held, done
        self._mask = self._next_mask(nxt)
        info["action_mask"] = self.action_masks()
        obs = self._observation(nxt, held, cash / equity if equity > 0 else 0.0,
                                exposure / equity if equity > 0 else 0.0)
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """The actions that can enter at the current decision time (see the module
        docstring); for ``"discrete"`` the first entry (flat) is always True."""
        if self.action == "discrete":
            return np.concatenate([[True], self._mask])
        return self._mask.copy()

    # ------------------------------------------------------------------ replay
    def episode_weights(self) -> pd.DataFrame:
        """The target weights executed at each step of the current episode (rows: decision
        times, columns: symbols)."""
        times = pd.DatetimeIndex(list(self._targets), tz="UTC") if self._targets else \
            pd.DatetimeIndex([], tz="UTC")
        values = np.array(list(self._targets.values())).reshape(len(times), self.panel.n_symbols)
        return pd.DataFrame(values, index=times, columns=list(self.panel.symbols))

    def walk_forward_kwargs(self) -> dict[str, Any]:
        """The ``walk_forward`` arguments that trade :meth:`episode_weights` like this
        environment (with ``strategy=ScheduledWeights(env.episode_weights())``)."""
        last = self.times[self._k - 1] if self._k > self._p0 else self.times[self._p0]
        window = pd.Timedelta(self.window_ns, "ns")
        return {"window": format_timeframe(self.window_ns),
                "shift": format_timeframe(self.shift_ns), "start": self.times[self._p0],
                "end": last + window, "mode": "portfolio", "hold": "until_dropped",
                "rebalance": self.action == "weights", "sizing": _SIZING,
                "allocator": self.allocator, "max_positions": self.panel.n_symbols,
                "initial_cash": self.options.initial_cash, "rules": self.rules,
                "gates": self.gates, "exits": self.exits, **self.costs}

    # ------------------------------------------------------------------ internals
    def _target(self, action: Any) -> np.ndarray:
        n_sym = self.panel.n_symbols
        target = np.zeros(n_sym)
        if self.action == "discrete":
            a = int(np.asarray(action).reshape(-1)[0])
            if not 0 <= a <= n_sym:
                raise ConfigError(f"TradingEnv action must be in [0, {n_sym}]. Got {action!r}.")
            if a:
                target[a - 1] = 1.0
            return target
        weights = np.asarray(action, dtype=np.float64).reshape(-1)
        if weights.shape != (n_sym,) or not np.isfinite(weights).all():
            raise ConfigError(f"TradingEnv action must be {n_sym} finite weights in [0, 1]. "
                              f"Got {action!r}.")
        weights = np.clip(weights, 0.0, 1.0)
        weights[weights < self.min_weight] = 0.0
        total = weights.sum()
        return weights / total if total > 1.0 else weights

    def _choose(self, row: int, target: np.ndarray) -> int:
        """Record the picks of ``target`` at decision ``row``: the eligible symbols with a
        positive weight, best first, ties by symbol name — the order of ``TopNEqual`` (the
        allocator of :meth:`walk_forward_kwargs`), without waking its parallel kernel for
        one row. Returns the number of picks."""
        scores = np.where((target > 0) & self._inputs["eligible"][row], target, np.nan)
        order = rank_candidates(scores, self.panel.symbols)
        for rank, symbol in enumerate(order, start=1):
            j = self.panel.symbols.index(symbol)
            self._parts.append((row, j, rank, float(scores[j])))
        return len(order)

    def _picks(self, extra: Picks | None = None) -> Picks:
        parts = np.array(self._parts, dtype=np.float64).reshape(-1, 4)
        picks = Picks(rows=parts[:, 0], cols=parts[:, 1], ranks=parts[:, 2],
                      weights=np.full(len(parts), 1.0 / self.panel.n_symbols),
                      scores=parts[:, 3])
        if extra is None:
            return picks
        return Picks(**{name: np.concatenate([getattr(picks, name), getattr(extra, name)])
                        for name in ("rows", "cols", "weights", "ranks", "scores")})

    def _run(self, k: int, *, panel: Panel | None = None, extra: Picks | None = None,
             extra_row: int | None = None) -> tuple[Any, Picks]:
        picks = self._picks(extra)
        rows = self.rows[self._p0:k + 1]
        if extra_row is not None:
            rows = np.append(rows, extra_row)
        weights = sizing_weights(_SIZING, picks, self.panel.n_symbols,
                                 confidence=np.minimum(picks.scores, 1.0))
        run = simulate_portfolio(panel or self.panel, picks, rows,
                                 window_candles=self.window_ns // self.panel.step_ns,
                                 options=self.options, weights=weights, exits=self.exits,
                                 atr=self._inputs["atr"], fee_bps=self.costs["fee_bps"],
                                 slippage_bps=self.costs["slippage_bps"])
        return run, picks

    def _positions(self, run: Any, row: int, equity: float) -> np.ndarray:
        """Weights of the positions open at the close of ``row`` (they leave at or after the
        next open), marked at their last close."""
        rec = run.trades
        open_ = rec[(rec["exit_row"] >= row + 1) & (rec["exit_reason"] != _REBALANCE)]
        held = np.zeros(self.panel.n_symbols)
        for r in open_:
            j = int(r["col"])
            held[j] += float(r["quantity"]) * float(self._marks[row, j])
        return held / equity if equity > 0 else held

    def _breaker(self, run: Any, row: int) -> bool:
        rules = self.rules
        if rules is None or rules.max_drawdown_pct is None or rules.drawdown_halt_for is not None:
            return False
        marks = run.equity[: row - run.first_row + 1, 0]
        peak = np.maximum.accumulate(marks)
        return bool(np.any(marks <= peak * (1.0 - rules.max_drawdown_pct / 100.0)))

    def _next_mask(self, row: int) -> np.ndarray:
        mask = self._inputs["eligible"][row] & np.isfinite(self._marks[row])
        if self.rules is None or self._done:
            return np.asarray(mask, dtype=bool)
        n_sym = self.panel.n_symbols
        trial = Picks(rows=np.full(n_sym, row), cols=np.arange(n_sym), weights=np.zeros(n_sym),
                      ranks=np.arange(1, n_sym + 1), scores=np.zeros(n_sym))
        entry = row + 1
        self._trial_open[entry] = self._marks[row]  # the open at t is not known at t
        try:
            if self._parts:  # the decisions taken so far, then the trial one
                trial_run, picks = self._run(self._k - 1, panel=self._trial_panel, extra=trial,
                                             extra_row=row)
            else:
                trial_run = simulate_portfolio(
                    self._trial_panel, trial, np.array([row]),
                    window_candles=self.window_ns // self.panel.step_ns, options=self.options,
                    weights=np.zeros(n_sym), exits=self.exits, atr=self._inputs["atr"],
                    fee_bps=self.costs["fee_bps"], slippage_bps=self.costs["slippage_bps"])
                picks = trial
        finally:
            self._trial_open[entry] = self.panel.open[entry]
        first = len(picks) - n_sym
        blocked = trial_run.blocked[trial_run.blocked["pick"] >= first]
        for b in blocked:
            if int(b["reason"]) != _SIZING_BLOCK:
                mask[int(picks.cols[b["pick"]])] = False
        return np.asarray(mask, dtype=bool)

    def _observation(self, row: int, held: np.ndarray, cash: float, exposure: float
                     ) -> np.ndarray:
        lo = row - self.observation_window + 1
        window = self._obs_features[lo:row + 1].reshape(-1)
        tail = np.concatenate([held, [cash, exposure]]).astype(np.float32)
        return np.concatenate([window, tail]).astype(np.float32)
