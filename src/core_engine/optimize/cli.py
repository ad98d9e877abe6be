"""The ``core-engine sweep`` command: a parameter sweep, optionally walk-forward optimised,
with its overfitting report.

    core-engine sweep --strategy macd_rsi_confluence --space rsi_low=35:50:5 \\
        --space max_atr_pct=1,1.5,2 --splitter walk-forward --train 60d --test 14d \\
        [--dask-scheduler tcp://10.0.0.5:8786]
    core-engine sweep --mode portfolio --initial-cash 5000 --space rules.cooldown=2h,8h \\
        --space sizing.slots=2,3 --splitter walk-forward --train 21d --test 7d

A thin layer over :class:`~core_engine.optimize.Sweep` and
:func:`~core_engine.optimize.walk_forward_optimize`: what it does a notebook does the same
way. Heavy imports happen when the command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core_engine.errors import ConfigError

__all__ = ["add_sweep_command"]

SPLITTERS = ("none", "walk-forward", "purged-kfold", "cpcv")


def _space(pairs: list[str]) -> dict[str, str]:
    space: dict[str, str] = {}
    for pair in pairs:
        name, sep, spec = pair.partition("=")
        if not sep or not name.strip() or not spec.strip():
            raise ConfigError(f"--space must look like name=spec, e.g. rsi_low=35:50:5 or "
                              f"max_atr_pct=1,1.5,2. Got {pair!r}.")
        space[name.strip()] = spec.strip()
    if not space:
        raise ConfigError("core-engine sweep needs at least one --space name=spec.")
    return space


def _params(pairs: list[str]) -> dict[str, Any]:
    from core_engine.optimize.space import parse_value

    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param must look like name=value, e.g. rsi_high=70. Got {pair!r}.")
        params[key.strip()] = parse_value(value)
    return params


def _panel(args: argparse.Namespace) -> tuple[Any, str]:
    from core_engine.data import Panel
    from core_engine.data.providers import load_sample
    from core_engine.data.store import ParquetStore

    symbols = None if args.symbols is None else [s.strip() for s in args.symbols.split(",")
                                                 if s.strip()]
    if args.store:
        return Panel.from_store(ParquetStore(args.store), symbols, args.timeframe), \
            f"store {args.store}"
    return Panel.from_frames(load_sample(symbols), "5m"), "the bundled real Binance sample"


def _splitter(args: argparse.Namespace) -> Any:
    from core_engine.optimize import CombinatorialPurgedCV, PurgedKFold, WalkForward

    embargo = args.embargo
    if args.splitter == "walk-forward":
        return WalkForward(train=args.train, test=args.test, anchored=args.anchored,
                           embargo=embargo)
    if args.splitter == "purged-kfold":
        return PurgedKFold(args.n_splits, embargo=embargo)
    if args.splitter == "cpcv":
        return CombinatorialPurgedCV(args.n_splits, args.n_test_splits, embargo=embargo)
    return None


def _executor(args: argparse.Namespace) -> tuple[Any, Any]:
    from core_engine.optimize import DaskExecutor, LocalExecutor
    from core_engine.optimize.executors import import_distributed

    if args.dask_scheduler:
        client = import_distributed().Client(args.dask_scheduler)
        return DaskExecutor(client), client
    return LocalExecutor(args.workers), None


def _cmd_sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from core_engine.optimize import Sweep, walk_forward_optimize
    from core_engine.risk import ExitRules
    from core_engine.strategies import get_strategy

    panel, source = _panel(args)
    strategy = get_strategy(args.strategy, **_params(args.param))
    exits = ExitRules(stop_loss_pct=args.stop_loss_pct, take_profit_pct=args.take_profit_pct,
                      trailing_pct=args.trailing_pct)
    backtest = {"window": args.window, "shift": args.shift, "fee_bps": args.fee_bps,
                "slippage_bps": args.slippage_bps, "max_positions": args.max_positions,
                "start": args.start, "end": args.end, "exits": exits}
    if args.mode == "portfolio":
        backtest.update(mode="portfolio", initial_cash=args.initial_cash)
    elif args.initial_cash is not None:
        raise ConfigError("--initial-cash applies to --mode portfolio (one account) only.")
    sweep = Sweep(strategy, _space(args.space), panel, metric=args.metric,
                  direction=args.direction, search=args.search, n_trials=args.n_trials,
                  seed=args.seed, **backtest)
    splitter = _splitter(args)
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S")
    results = Path(args.results or f"runs/sweep-{strategy.name}-{stamp}.parquet")
    executor, client = _executor(args)
    print(f"data: {source}, {panel.n_symbols} symbols × {panel.n_times:,} {panel.timeframe} "
          f"candles")
    print(f"sweep: {sweep.search} search over {list(sweep.space.names)}, metric "
          f"{args.metric} ({args.direction}), executor {executor!r}")
    outcome: Any = None
    try:
        if splitter is None:
            trials = report_of = sweep.run(executor=executor, results=results,
                                           progress=args.progress)
        else:
            outcome = walk_forward_optimize(sweep, splitter, executor=executor, results=results,
                                            progress=args.progress)
            trials, report_of = outcome.trials, outcome
    finally:
        if client is not None:
            client.close()
    _print_table(trials, args.metric, args.top)
    print(f"\n{trials.n_trials} configurations ran ({trials.evaluated} computed now, "
          f"{trials.skipped} found in {results})")
    if outcome is not None:
        _print_folds(outcome, splitter)
    try:
        print("\n" + report_of.overfitting_report(n_blocks=args.blocks).summary())
    except ConfigError as exc:
        print(f"\noverfitting report skipped: {exc}")
    if outcome is not None and args.out != "-":
        out = args.out or f"runs/walk-forward-{strategy.name}-{stamp}"
        print(f"\nsaved out-of-sample run: {outcome.result.save(out, overwrite=args.overwrite)}")
    print(f"results: {results}")
    return 0


def _print_table(trials: Any, metric: str, top: int) -> None:
    import pandas as pd

    columns = [*trials.sweep.space.names] + [c for c in (metric, "trades", "total_return_pct",
                                                          "error") if c in trials.table]
    with pd.option_context("display.width", 160, "display.max_columns", 30):
        print(f"\nbest {min(top, len(trials.table))} of {len(trials.table)} by {metric}:")
        print(trials.ranked()[list(dict.fromkeys(columns))].head(top).to_string())


def _print_folds(wfo: Any, splitter: Any) -> None:
    import pandas as pd

    folds = wfo.folds[["test_start", "test_end", "params", "in_sample", "out_of_sample"]]
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(f"\n{splitter!r}: {len(folds)} folds, chosen on training, scored on test "
              f"({wfo.select})")
        print(folds.to_string())
    print("\n" + wfo.result.summary())


def add_sweep_command(commands: Any) -> None:
    """Add ``sweep`` to the ``core-engine`` subcommands."""
    sweep = commands.add_parser(
        "sweep", help="parameter sweep or walk-forward optimisation, with an overfitting report")
    sweep.add_argument("--strategy", default="macd_rsi_confluence",
                       help="registry name or module:Class")
    sweep.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="fixed strategy parameter, repeatable")
    sweep.add_argument("--space", action="append", default=[], metavar="NAME=SPEC",
                       help="swept parameter, repeatable: start:stop:step (inclusive) or a,b,c; "
                            "nested fields as exits.stop_loss_pct=1,2")
    sweep.add_argument("--search", choices=("grid", "random", "optuna"), default="grid")
    sweep.add_argument("--n-trials", type=int, help="points of a random or optuna search")
    sweep.add_argument("--seed", type=int, default=0)
    sweep.add_argument("--metric", default="sharpe", help="metric to optimise (default sharpe)")
    sweep.add_argument("--direction", choices=("maximize", "minimize"), default="maximize")
    sweep.add_argument("--splitter", choices=SPLITTERS, default="none",
                       help="walk-forward optimisation with this splitter (default: one span)")
    sweep.add_argument("--train", default="60d", help="walk-forward training period")
    sweep.add_argument("--test", default="14d", help="walk-forward test period")
    sweep.add_argument("--anchored", action="store_true", help="expanding training window")
    sweep.add_argument("--n-splits", type=int, default=5,
                       help="folds of purged k-fold / groups of CPCV")
    sweep.add_argument("--n-test-splits", type=int, default=2, help="test groups of CPCV")
    sweep.add_argument("--embargo", help="embargo after each test period, e.g. 1d")
    sweep.add_argument("--blocks", type=int, default=16, help="CSCV blocks of the PBO (even)")
    sweep.add_argument("--store", help="read candles from this store instead of the sample")
    sweep.add_argument("--symbols", help="comma-separated symbols (default: all)")
    sweep.add_argument("--timeframe", default="5m")
    sweep.add_argument("--start", help="first decision time, UTC")
    sweep.add_argument("--end", help="last data time, UTC")
    sweep.add_argument("--mode", choices=("slices", "portfolio"), default="slices",
                       help="portfolio: one compounding account (sweep rules.* and sizing.* "
                            "fields, e.g. --space rules.cooldown=2h,8h --space "
                            "sizing.slots=2,3)")
    sweep.add_argument("--initial-cash", type=float,
                       help="portfolio mode: the account's starting cash (default 10000)")
    sweep.add_argument("--window", default="4h")
    sweep.add_argument("--shift", default="2h")
    sweep.add_argument("--fee-bps", type=float, default=10.0)
    sweep.add_argument("--slippage-bps", type=float, default=0.0)
    sweep.add_argument("--max-positions", type=int, default=3)
    sweep.add_argument("--stop-loss-pct", type=float)
    sweep.add_argument("--take-profit-pct", type=float)
    sweep.add_argument("--trailing-pct", type=float)
    sweep.add_argument("--workers", type=int, help="local worker processes (default: cores)")
    sweep.add_argument("--dask-scheduler", metavar="ADDRESS",
                       help="run on a dask.distributed cluster, e.g. tcp://host:8786")
    sweep.add_argument("--results", help="Parquet file of the results (re-running resumes)")
    sweep.add_argument("--out", help="directory of the saved out-of-sample run ('-' to skip)")
    sweep.add_argument("--overwrite", action="store_true",
                       help="replace an out-of-sample run already saved in --out")
    sweep.add_argument("--top", type=int, default=10, help="configurations to print")
    sweep.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar (default: only on a terminal)")
    sweep.set_defaults(func=_cmd_sweep)
