"""walk_forward: the slices-mode evaluation of a strategy over a panel (DESIGN.md §1, §6).

Order of work, each step once for the whole panel:

1. features of the strategy, gates, allocator (and ATR when exits use ATR) computed once,
   causally, on the whole panel (:func:`core_engine.features.cache.compute_features`);
2. the strategy's ``(T, N)`` scores; the gates' ``(T, N)`` eligibility;
3. the decision schedule (:mod:`core_engine.backtest.schedule`): multiples of ``shift``
   since the epoch in ``[start, end − window]`` after the warm-up, mapped to the rows whose
   candle closes at ``t``;
4. the allocator picks on the decision rows only;
5. the numba kernel simulates every pick (:mod:`core_engine.backtest.simulate`);
6. trades, equity, metrics and the data-quality section are assembled into an immutable
   :class:`~core_engine.backtest.results.BacktestResult`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

import core_engine
from core_engine.backtest._kernels import close_quality_2d
from core_engine.backtest.audit import audit_lookahead
from core_engine.backtest.data_quality import discontinuity_quality
from core_engine.backtest.inputs import (
    allocate_at,
    compute_inputs,
    scores_at,
    warm_up,
)
from core_engine.backtest.metrics import compute_metrics, equity_curve
from core_engine.backtest.portfolio import assemble_portfolio, portfolio_options, run_portfolio
from core_engine.backtest.results import BacktestResult
from core_engine.backtest.schedule import decision_schedule
from core_engine.backtest.simulate import records_to_frame, simulate_picks
from core_engine.data.candles import DEFAULT_DISCONTINUITY_FACTOR
from core_engine.data.panel import Panel
from core_engine.data.timeframes import format_timeframe, timeframe_ns, to_utc_timestamp
from core_engine.errors import ConfigError
from core_engine.risk.allocation import Allocator, TopNEqual
from core_engine.risk.exits import ExitRules
from core_engine.risk.gates import Gate
from core_engine.risk.rules import PortfolioRules
from core_engine.risk.sizing import Sizing

# compute_inputs, allocate_at, scores_at and warm_up live in backtest.inputs (the audit uses
# them too); they stay importable from here and from core_engine.backtest.
__all__ = ["MODES", "allocate_at", "compute_inputs", "load_panel", "scores_at", "walk_forward",
           "warm_up"]

MODES = ("slices", "portfolio")


def _duration(value: Any, name: str, example: str) -> int:
    try:
        ns = timeframe_ns(value, name=name)
    except ConfigError:
        raise ConfigError(
            f"The '{name}' parameter of walk_forward must be a positive duration such as "
            f"'{example}'. Got {value!r}."
        ) from None
    return ns


def _number(value: Any, name: str, upper: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0 or value >= upper:
        raise ConfigError(
            f"The '{name}' parameter of walk_forward must be a number in [0, {upper:g}) basis "
            f"points. Got {value!r}."
        )
    return float(value)


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(
            f"The '{name}' parameter of walk_forward must be an integer >= {minimum}. Got {value!r}."
        )
    return int(value)


def _exit_delay(value: Any, step_ns: int) -> int | None:
    """``max_exit_delay`` in candles: None, an integer >= 0 (candles) or a duration."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0:
        return int(value)
    expected = ("The 'max_exit_delay' parameter of walk_forward must be None (wait for the "
                "first price after an outage), a number of candles >= 0 or a duration such "
                "as '1h' (a multiple of the panel's timeframe).")
    if isinstance(value, (bool, int, np.integer, float, np.floating)):
        raise ConfigError(f"{expected} Got {value!r}.")
    try:
        ns = timeframe_ns(value, name="max_exit_delay")
    except ConfigError:
        raise ConfigError(f"{expected} Got {value!r}.") from None
    if ns % step_ns:
        raise ConfigError(f"{expected} Got {value!r}, not a multiple of "
                          f"{format_timeframe(step_ns)}.")
    return ns // step_ns


def load_panel(data: Any) -> Panel:
    """Return the Panel of ``data``: a Panel, a dict of candle frames, or
    ``(store, symbols, timeframe)`` with a ParquetStore-like ``store`` (``.read``).

    Raises
    ------
    ConfigError
        If ``data`` is none of those.
    """
    if isinstance(data, Panel):
        return data
    if isinstance(data, Mapping):
        return Panel.from_frames(dict(data))
    if isinstance(data, tuple) and len(data) == 3 and hasattr(data[0], "read"):
        store, symbols, timeframe = data
        return Panel.from_store(store, symbols, timeframe)
    raise ConfigError(
        "The 'data' argument of walk_forward must be a Panel, a dict of symbol -> candle frame, "
        f"or (store, symbols, timeframe). Got {type(data).__name__}."
    )


def _resolve_strategy(strategy: Any):
    from core_engine.strategies import Strategy, get_strategy

    if isinstance(strategy, str):
        return get_strategy(strategy)
    if isinstance(strategy, Strategy):
        return strategy
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        raise ConfigError(
            "The 'strategy' parameter of walk_forward must be a Strategy instance. Got the class "
            f"{strategy.__name__}; pass {strategy.__name__}() instead."
        )
    raise ConfigError(
        "The 'strategy' parameter of walk_forward must be a Strategy or a registry name such as "
        f"'macd_rsi_confluence'. Got {type(strategy).__name__} {strategy!r}."
    )


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def _validate(window, shift, start, end, fee_bps, slippage_bps, max_positions, allocator,
              gates, exits, mode, audit, max_exit_delay=None) -> dict:
    window_ns = _duration(window, "window", "4h")
    shift_ns = _duration(shift, "shift", "2h")
    start_ts = None if start is None else to_utc_timestamp(start, name="start")
    end_ts = None if end is None else to_utc_timestamp(end, name="end")
    if start_ts is not None and end_ts is not None and end_ts <= start_ts:
        raise ConfigError(
            f"The 'end' parameter of walk_forward must be after 'start'. Got start={start_ts}, "
            f"end={end_ts}."
        )
    fee = _number(fee_bps, "fee_bps", 10_000)
    slip = _number(slippage_bps, "slippage_bps", 10_000)
    max_positions = _positive_int(max_positions, "max_positions")
    if allocator is not None and not isinstance(allocator, Allocator):
        raise ConfigError(
            "The 'allocator' parameter of walk_forward must be an Allocator such as "
            f"TopNEqual(n=3) or None. Got {allocator!r}."
        )
    if gates is None:
        gates = ()
    if isinstance(gates, Gate):
        gates = (gates,)
    try:
        gates = tuple(gates)
    except TypeError:
        raise ConfigError(
            f"The 'gates' parameter of walk_forward must be a list of Gate objects. Got {gates!r}."
        ) from None
    for gate in gates:
        if not isinstance(gate, Gate):
            raise ConfigError(
                f"The 'gates' parameter of walk_forward must hold Gate objects. Got {gate!r}."
            )
    if exits is not None and not isinstance(exits, ExitRules):
        raise ConfigError(
            "The 'exits' parameter of walk_forward must be ExitRules(...) or None. "
            f"Got {exits!r}."
        )
    if mode not in MODES:
        raise ConfigError(f"The 'mode' parameter of walk_forward must be one of {list(MODES)}. "
                          f"Got {mode!r}.")
    audit = _positive_int(audit, "audit", minimum=0)
    _exit_delay(max_exit_delay, 1)  # its form, before any data is loaded
    return {"window_ns": window_ns, "shift_ns": shift_ns, "start": start_ts, "end": end_ts,
            "fee_bps": fee, "slippage_bps": slip, "max_positions": max_positions,
            "allocator": allocator if allocator is not None else TopNEqual(n=max_positions),
            "gates": gates, "exits": exits, "audit": audit,
            "max_exit_delay": None}  # in candles: set by walk_forward once the grid is known


class _Progress:
    """A stage progress bar (tqdm, via :func:`core_engine.progress.progress_bar`): each call
    marks one stage done and shows what it was."""

    def __init__(self, enabled: bool | None, stages: int) -> None:
        from core_engine.progress import progress_bar

        self.bar = progress_bar(total=stages, desc="walk_forward", enabled=enabled, leave=False)

    def __call__(self, stage: str) -> None:
        self.bar.set_postfix_str(stage, refresh=False)
        self.bar.update(1)
        if self.bar.n >= self.bar.total:
            self.bar.close()


def walk_forward(data: Any, strategy: Any, *, window: str = "4h", shift: str = "2h",
                 start: Any = None, end: Any = None, fee_bps: float = 10, slippage_bps: float = 0,
                 max_positions: int = 3, allocator: Allocator | None = None,
                 gates: Iterable[Gate] = (), exits: ExitRules | None = None,
                 mode: str = "slices", audit: int = 0, cache: Any = None,
                 progress: bool | None = False, max_exit_delay: Any = None,
                 initial_cash: float | None = None, sizing: Sizing | None = None,
                 rules: PortfolioRules | None = None, hold: str = "window",
                 rebalance: bool = False) -> BacktestResult:
    """Evaluate ``strategy`` on every decision time of ``data`` (slices or portfolio mode).

    Parameters
    ----------
    data : Panel, dict of candle frames, or (store, symbols, timeframe)
        The candles. Features use all history before ``start`` for their warm-up.
    strategy : Strategy or str
        A strategy instance or a registry name (default parameters).
    window, shift : str
        Holding window and decision cadence, multiples of the panel's timeframe.
    start, end : time, optional
        Decision times ``t`` satisfy ``start <= t <= end − window``; default: the whole panel.
    fee_bps, slippage_bps : float
        Fee per side and adverse slippage per side, in basis points (10 = 0.1 %).
    max_positions : int
        Picks per decision time of the default allocator ``TopNEqual(n=max_positions)``;
        ignored when ``allocator`` is given.
    allocator : Allocator, optional
        Picks and weights (see :mod:`core_engine.risk.allocation`).
    gates : iterable of Gate
        Eligibility rules, AND-combined.
    exits : ExitRules, optional
        Stop/target/trailing; ATR rules make symbols without a finite ATR at the decision
        row ineligible.
    mode : {"slices", "portfolio"}
        ``"slices"``: every window independent, no compounding. ``"portfolio"``: one
        compounding cash account, sized positions and portfolio rules; every rule is stated
        in :mod:`core_engine.backtest.portfolio`.
    audit : int
        Re-run that many random decision times on truncated and poisoned data and raise
        :class:`~core_engine.errors.LookaheadError` on any difference (0 = off).
    cache : optional
        A feature cache passed to ``compute_features``.
    progress : bool, optional
        Show a progress bar over the run's stages (features and scores, schedule and
        allocation, simulation, audit, results). ``None`` shows it only in a notebook or an
        interactive terminal, never in CI; the default ``False`` keeps the call silent.
    max_exit_delay : int or str, optional
        How long a time exit may wait for a price when its exit candle falls in an outage:
        a number of candles or a duration (``"1h"``). ``None`` (default): hold to the first
        open after the outage, however late. Past the cap the position exits at the last
        close before the gap (``exit_delay_capped`` in the trades, counted in
        ``data_quality``). Every trade held past its window has ``exit_delayed_by > 0``.
    initial_cash : float, optional
        Portfolio mode: the account's starting cash in the quote currency (default 10,000).
    sizing : Sizing, optional
        Portfolio mode: how a pick is sized (:mod:`core_engine.risk.sizing`); default
        ``EqualSlots()`` (``1 / max_positions`` of equity per position).
    rules : PortfolioRules, optional
        Portfolio mode: cooldown, daily entries, daily loss limit, drawdown halt, exposure
        caps, correlation, minimum order value (:mod:`core_engine.risk.rules`).
    hold : {"window", "until_dropped"}
        Portfolio mode: exit at ``t + window`` (a re-pick moves it), or hold while the
        symbol stays among the picks.
    rebalance : bool
        Portfolio mode: a re-picked position trades the difference to its new target.

    Returns
    -------
    BacktestResult

    Raises
    ------
    ConfigError
        On any invalid parameter (the message names it, the expected form and the value).
    StrategyError
        When the strategy's hooks fail or return malformed scores.
    LookaheadError
        When ``audit > 0`` finds a decision that depends on data after its time.

    Notes
    -----
    Cost model (used everywhere): ``entry_price = open × (1 + slippage)``,
    ``exit_price = raw_exit × (1 − slippage)``,
    ``return = exit_price × (1 − fee) / (entry_price × (1 + fee)) − 1``; ``return_pct`` and
    ``max_drawdown`` are in percent (1.0 = 1 %). Entry at the open of the candle starting at
    ``t``; exit at the open of the candle starting at ``t + window`` unless a stop, target or
    trailing stop fires first (stop assumed first when one candle touches both; see
    :mod:`core_engine.backtest.simulate` for every rule). Warm-up: the first decision row is
    the largest ``lookback`` of the strategy, gates, allocator and ATR exits. Missing candles
    stay missing: a pick without its entry candle is not traded (counted in
    ``data_quality["picks_without_entry_candle"]``), a gap inside a window is skipped and
    counted. Windows overlap and are independent (no compounding); the equity curve splits
    capital into ``ceil(window / shift)`` sleeves (:mod:`core_engine.backtest.metrics`).
    Prices are never adjusted: a close more than ×5 away from the previous one (a
    redenomination, a bad tick) is counted in ``data_quality["price_discontinuities"]``, the
    trades held across one in ``data_quality["trades_across_discontinuity"]``, and
    ``summary()`` names them (split such a series with
    :func:`~core_engine.data.split_at_discontinuities`).

    Examples
    --------
    >>> from core_engine.data import Panel
    >>> from core_engine.data.providers import load_sample
    >>> panel = Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT"], "2021-01-01",
    ...                                       "2021-01-08"), "5m")
    >>> result = walk_forward(panel, "macd_rsi_confluence", window="4h", shift="2h")
    >>> result.metrics["decisions"], result.data_quality["skipped_decision_times"]["warm_up"]
    (81, 2)
    """
    cfg = _validate(window, shift, start, end, fee_bps, slippage_bps, max_positions, allocator,
                    gates, exits, mode, audit, max_exit_delay)
    cfg["portfolio"] = portfolio_options(mode, initial_cash=initial_cash, sizing=sizing,
                                         rules=rules, hold=hold, rebalance=rebalance)
    if cfg["portfolio"] is not None:
        cfg["portfolio"].check_exits(cfg["exits"])
    strategy = _resolve_strategy(strategy)
    panel = load_panel(data)
    step = panel.step_ns
    if panel.n_times and panel.index.asi8[0] % step:
        raise ConfigError(
            f"walk_forward needs candles on the {panel.timeframe} grid since 1970-01-01 00:00 "
            f"UTC (decision times are multiples of the shift since the epoch). The panel "
            f"starts at {panel.index[0]}, off that grid; build it with Panel.from_frames, "
            "which validates the timestamps."
        )
    for name, ns in (("window", cfg["window_ns"]), ("shift", cfg["shift_ns"])):
        if ns % step:
            raise ConfigError(
                f"The '{name}' parameter of walk_forward must be a multiple of the panel's "
                f"{panel.timeframe} timeframe. Got {format_timeframe(ns)!r}."
            )
    _check_candles_in_range(panel, cfg["start"], cfg["end"])
    cfg["max_exit_delay"] = _exit_delay(max_exit_delay, step)
    tick = _Progress(progress, stages=5 if cfg["audit"] else 4)
    run = _evaluate(panel, strategy, cfg, cache, tick)
    if cfg["audit"]:
        audit_lookahead(panel, strategy, run["schedule"].rows, k=cfg["audit"],
                        gates=cfg["gates"], allocator=cfg["allocator"], exits=cfg["exits"],
                        reference=run)
        tick(f"audit of {cfg['audit']} decision times passed")
    result = _assemble(panel, strategy, cfg, run, mode)
    tick("done")
    return result


def _check_candles_in_range(panel: Panel, start: Any, end: Any) -> None:
    """Some candle must start at or after ``start`` and close by ``end`` (as ``replay``
    requires): a run over no candle is a mistake in the range, not an empty result."""
    index = panel.index.asi8
    lo = 0 if start is None else int(np.searchsorted(index, start.value, "left"))
    hi = len(index) if end is None else int(np.searchsorted(index, end.value - panel.step_ns,
                                                            "right"))
    if hi <= lo:
        cover = (f"the data cover {panel.index[0]} .. {panel.index[-1]}" if len(index)
                 else "the data hold no candle")
        raise ConfigError(f"walk_forward: no candle between start={start} and end={end}; "
                          f"{cover}.")


def _evaluate(panel: Panel, strategy: Any, cfg: dict, cache: Any, tick) -> dict:
    sched = decision_schedule(
        panel.index.asi8, panel.step_ns, window_ns=cfg["window_ns"], shift_ns=cfg["shift_ns"],
        start_ns=None if cfg["start"] is None else cfg["start"].value,
        end_ns=None if cfg["end"] is None else cfg["end"].value,
        lookback=warm_up(strategy, cfg["gates"], cfg["allocator"], cfg["exits"]),
        entry_open=panel.open)
    inputs = compute_inputs(panel, strategy, gates=cfg["gates"], allocator=cfg["allocator"],
                            exits=cfg["exits"], cache=cache, rows=sched.rows)
    tick("features, scores and gates computed")
    if len(sched.times) == 0:
        warnings.warn(
            f"walk_forward evaluated no decision time: {panel.n_times:,} {panel.timeframe} "
            f"candles between start and end do not hold the warm-up of {inputs['lookback']} "
            f"candles plus one {format_timeframe(cfg['window_ns'])} window on the "
            f"{format_timeframe(cfg['shift_ns'])} grid.", stacklevel=3)
    picks = allocate_at(inputs, sched.rows, cfg["allocator"], panel.symbols)
    tick(f"{len(sched.times):,} decision times, {len(picks):,} picks")
    if cfg.get("portfolio") is not None:
        account = run_portfolio(panel, strategy, cfg, sched, picks, inputs, cache)
        tick("account simulated")
        return {"inputs": inputs, "schedule": sched, "picks": picks, "portfolio": account}
    records = simulate_picks(panel, picks, window_candles=sched.window_candles,
                             fee_bps=cfg["fee_bps"], slippage_bps=cfg["slippage_bps"],
                             exits=cfg["exits"], atr=inputs["atr"],
                             max_exit_delay=cfg["max_exit_delay"])
    tick("simulated")
    return {"inputs": inputs, "schedule": sched, "picks": picks, "records": records}


def _slices_outcome(panel: Panel, cfg: dict, run: dict) -> dict:
    """Trades, equity, metrics and data-quality counts of a slices run."""
    sched, picks, records = run["schedule"], run["picks"], run["records"]
    trades = records_to_frame(records, picks, panel)
    equity = equity_curve(trades, sched.times, window_ns=cfg["window_ns"], shift_ns=cfg["shift_ns"])
    metrics = compute_metrics(trades, equity, window_ns=cfg["window_ns"], shift_ns=cfg["shift_ns"])
    traded = records["status"] == 0
    counts = {
        "picks_without_entry_candle": int((records["status"] == 1).sum()),
        "trades_with_gaps": int((records["gaps_in_window"][traded] > 0).sum()),
        "trades_exit_at_last_close": int(records["exit_at_last_close"].sum()),
        "trades_exit_delayed": int((records["exit_delayed_by"] > 0).sum()),
        "exit_delay_candles_max": int(records["exit_delayed_by"].max()) if len(records) else 0,
        "trades_exit_delay_capped": int(records["exit_delay_capped"].sum()),
    }
    held = (picks.cols[traded], records["entry_row"][traded], records["exit_row"][traded])
    return {"trades": trades, "equity": equity, "metrics": metrics, "blocked": None,
            "counts": counts, "held": held}


def _assemble(panel: Panel, strategy: Any, cfg: dict, run: dict, mode: str) -> BacktestResult:
    sched, picks = run["schedule"], run["picks"]
    out = assemble_portfolio(panel, cfg, run) if "portfolio" in run \
        else _slices_outcome(panel, cfg, run)
    # missing candles, gap candles and price discontinuities per symbol, in one pass
    missing = close_quality_2d(panel.close, DEFAULT_DISCONTINUITY_FACTOR)
    index = panel.index
    data_quality = {
        "symbols": list(panel.symbols),
        "n_symbols": panel.n_symbols,
        "timeframe": panel.timeframe,
        "candles": panel.n_times,
        "start": str(index[0]) if panel.n_times else None,
        "end": str(index[-1]) if panel.n_times else None,
        "missing_candles": int(missing[0].sum()),
        "missing_candles_by_symbol": {s: int(m) for s, m in zip(panel.symbols, missing[0],
                                                                strict=True)},
        "gap_candles": int(missing[1].sum()),
        "gap_candles_by_symbol": {s: int(m) for s, m in zip(panel.symbols, missing[1],
                                                            strict=True)},
        "warm_up_candles": int(run["inputs"]["lookback"]),
        "decision_times_scheduled": int(len(sched.times) + len(sched.skipped)),
        "decision_times_evaluated": int(len(sched.times)),
        "skipped_decision_times": sched.skip_counts,
        "first_decision_time": str(sched.times[0]) if len(sched.times) else None,
        "last_decision_time": str(sched.times[-1]) if len(sched.times) else None,
        "picks": len(picks),
        **out["counts"],
        **discontinuity_quality(panel, *out["held"], per_symbol=missing[2]),
    }
    params = strategy.get_params() if hasattr(strategy, "get_params") else {}
    config = {
        "strategy": {"name": str(getattr(strategy, "name", type(strategy).__name__)),
                     "class": f"{type(strategy).__module__}:{type(strategy).__qualname__}",
                     "params": _jsonable(params), "repr": repr(strategy)},
        "window": format_timeframe(cfg["window_ns"]),
        "shift": format_timeframe(cfg["shift_ns"]),
        "start": None if cfg["start"] is None else str(cfg["start"]),
        "end": None if cfg["end"] is None else str(cfg["end"]),
        "fee_bps": cfg["fee_bps"],
        "slippage_bps": cfg["slippage_bps"],
        "max_positions": cfg["max_positions"],
        "allocator": repr(cfg["allocator"]),
        "gates": [repr(g) for g in cfg["gates"]],
        "exits": None if cfg["exits"] is None else cfg["exits"].to_dict(),
        "mode": mode,
        "max_exit_delay": cfg["max_exit_delay"],
        **({} if cfg.get("portfolio") is None else {"portfolio": cfg["portfolio"].to_dict()}),
        "audit": cfg["audit"],
        "timeframe": panel.timeframe,
        "symbols": list(panel.symbols),
        "library_version": core_engine.__version__,
    }
    return BacktestResult(trades=out["trades"], equity=out["equity"], metrics=out["metrics"],
                          config=config, data_quality=data_quality, panel=panel,
                          blocked=out["blocked"])

