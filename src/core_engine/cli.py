"""The ``core-engine`` command: ingest candles, inspect a store, run a walk-forward backtest.

Every subcommand is a thin layer over the library's public API, so anything the command does
a notebook can do the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

import pandas as pd

from core_engine import __version__
from core_engine.errors import CoreEngineError
from core_engine.optimize.cli import add_sweep_command

DEFAULT_STORE = "core-engine-store"


def _symbols(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [s.strip() for s in text.split(",") if s.strip()]


def _provider(args: argparse.Namespace):
    from core_engine.data.providers import get_provider

    name = args.provider
    if name.startswith("file:"):
        return get_provider("file", path_or_dir=name[len("file:"):])
    if name == "synthetic":
        return get_provider("synthetic", seed=args.seed)
    return get_provider(name)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from core_engine.data.store import ParquetStore

    provider = _provider(args)
    symbols = _symbols(args.symbols)
    if symbols is None:
        if not hasattr(provider, "symbols"):
            raise CoreEngineError(f"--symbols is required for provider {args.provider!r}.")
        symbols = provider.symbols()
    start, end = args.start, args.end
    if args.provider == "sample" and (start is None or end is None):
        from core_engine.data.timeframes import parse_timeframe

        frames = {s: provider.fetch_ohlcv(s, args.timeframe) for s in symbols}
        firsts = [f["timestamp"].iloc[0] for f in frames.values() if len(f)]
        lasts = [f["timestamp"].iloc[-1] for f in frames.values() if len(f)]
        if firsts:
            start = start or min(firsts)
            end = end or max(lasts) + parse_timeframe(args.timeframe)
    if start is None or end is None:
        raise CoreEngineError("--start and --end are required for this provider (UTC, end exclusive).")
    store = ParquetStore(args.store)
    report = store.ingest(provider, symbols, args.timeframe, start, end)
    print(report)
    print()
    _print_info(store, args.timeframe)
    return 0


def _print_info(store, timeframe: str | None) -> None:
    coverage = store.coverage(timeframe)
    if coverage.empty:
        print(f"{store.root}: no candles stored" + (f" at {timeframe}" if timeframe else ""))
        return
    with pd.option_context("display.width", 140, "display.max_columns", 20):
        print(f"store {store.root}")
        print(coverage.to_string(index=False))


def _cmd_data_info(args: argparse.Namespace) -> int:
    from core_engine.data.store import ParquetStore

    _print_info(ParquetStore(args.store), args.timeframe)
    return 0


class UsageError(CoreEngineError, ValueError):
    """The command line itself is wrong (an unknown option, a missing or malformed value)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are a :class:`UsageError`, not a usage dump and exit.

    ``main`` prints every user error the same way (one line, exit code 2); sub-parsers are
    built by ``add_subparsers`` with the parent's class, so they raise the same way.
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help).")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``core-engine`` command."""
    parser = _Parser(
        prog="core-engine",
        description="Leakage-proof walk-forward research for crypto universes.",
    )
    parser.add_argument("--version", action="version", version=f"core-engine {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", help="fetch candles into a Parquet store (only what is missing)")
    ingest.add_argument("--provider", default="sample",
                        help="sample (default), synthetic, file:PATH, nobitex, ccxt:EXCHANGE (e.g. ccxt:binance)")
    ingest.add_argument("--store", default=DEFAULT_STORE, help=f"store directory (default ./{DEFAULT_STORE})")
    ingest.add_argument("--symbols", help="comma-separated, e.g. BTC/USDT,ETH/USDT (default: all the provider has)")
    ingest.add_argument("--timeframe", default="5m")
    ingest.add_argument("--start", help="UTC start, e.g. 2021-01-01")
    ingest.add_argument("--end", help="UTC end (exclusive)")
    ingest.add_argument("--seed", type=int, default=0, help="seed of the synthetic provider")
    ingest.set_defaults(func=_cmd_ingest)

    data = commands.add_parser("data", help="inspect stored data")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    info = data_commands.add_parser("info", help="coverage and gaps of every stored series")
    info.add_argument("--store", default=DEFAULT_STORE)
    info.add_argument("--timeframe", default=None)
    info.set_defaults(func=_cmd_data_info)

    _add_backtest_command(commands)
    __import__("core_engine.trading.cli", fromlist=["_"]).add_replay_command(commands)
    __import__("core_engine.live.cli", fromlist=["_"]).add_live_command(commands)
    add_sweep_command(commands)
    return parser


def _param_value(text: str):
    """Read ``--param`` values as int, float, bool or None where they look like one."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _strategy_params(pairs: list[str]) -> dict:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CoreEngineError(f"--param must look like name=value, e.g. rsi_low=45. Got {pair!r}.")
        params[key.strip()] = _param_value(value.strip())
    return params


def _cmd_backtest(args: argparse.Namespace) -> int:
    from core_engine.backtest import walk_forward
    from core_engine.backtest.portfolio_cli import portfolio_kwargs
    from core_engine.data import Panel
    from core_engine.data.providers import load_sample
    from core_engine.data.store import ParquetStore
    from core_engine.risk import ExitRules
    from core_engine.strategies import get_strategy

    symbols = _symbols(args.symbols)
    if args.store:
        source = f"store {args.store}"
        panel = Panel.from_store(ParquetStore(args.store), symbols, args.timeframe)
    else:
        source = "the bundled real Binance sample"
        panel = Panel.from_frames(load_sample(symbols), "5m")
    strategy = get_strategy(args.strategy, **_strategy_params(args.param))
    exits = ExitRules(stop_loss_pct=args.stop_loss_pct, take_profit_pct=args.take_profit_pct,
                      trailing_pct=args.trailing_pct, stop_fill=args.stop_fill,
                      stop_fill_range=args.stop_fill_range)
    result = walk_forward(
        panel, strategy, window=args.window, shift=args.shift, start=args.start, end=args.end,
        fee_bps=args.fee_bps, slippage_bps=args.slippage_bps, max_positions=args.max_positions,
        exits=exits if exits.active else None, audit=args.audit,
        max_exit_delay=_param_value(args.max_exit_delay) if args.max_exit_delay else None,
        **portfolio_kwargs(args),
    )
    print(f"data: {source}")
    print(result.summary())
    if args.out != "-":
        out = args.out or f"runs/{strategy.name}-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"
        print(f"\nsaved run: {result.save(out, overwrite=args.overwrite)}")
    return 0


def _add_backtest_command(commands) -> None:
    bt = commands.add_parser(
        "backtest", help="walk-forward backtest (default: baseline strategy on the bundled real sample)")
    bt.add_argument("--store", help="read candles from this store instead of the bundled sample")
    bt.add_argument("--symbols", help="comma-separated symbols (default: all)")
    bt.add_argument("--timeframe", default="5m", help="base timeframe in the store (default 5m)")
    bt.add_argument("--start", help="first decision time, UTC (default: after the warm-up)")
    bt.add_argument("--end", help="last data time, UTC (decisions end one window before)")
    bt.add_argument("--strategy", default="macd_rsi_confluence", help="registry name or module:Class")
    bt.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="strategy parameter, repeatable (e.g. --param rsi_low=45)")
    bt.add_argument("--window", default="4h")
    bt.add_argument("--shift", default="2h")
    bt.add_argument("--fee-bps", type=float, default=10.0, help="fee per side in bps (default 10)")
    bt.add_argument("--slippage-bps", type=float, default=0.0, help="adverse slippage per side in bps")
    bt.add_argument("--max-positions", type=int, default=3)
    bt.add_argument("--stop-loss-pct", type=float)
    bt.add_argument("--take-profit-pct", type=float)
    bt.add_argument("--trailing-pct", type=float)
    bt.add_argument("--stop-fill", default="level", choices=("level", "low", "range"),
                    help="fill of a stop reached inside a candle: its level (default), the "
                         "candle's low, or the level less a share of the candle's range")
    bt.add_argument("--stop-fill-range", type=float,
                    help="share of the candle's range lost with --stop-fill range (default 0.5)")
    bt.add_argument("--max-exit-delay", metavar="CANDLES|DURATION",
                    help="cap on how long a time exit waits for a price after an outage, "
                         "e.g. 12 or 1h (default: wait for the first open)")
    bt.add_argument("--audit", type=int, default=0, help="lookahead audit of K random decision times")
    bt.add_argument("--out", help="directory for the saved run (default runs/<strategy>-<time>; '-' to skip)")
    bt.add_argument("--overwrite", action="store_true", help="replace a run already saved in --out")
    from core_engine.backtest.portfolio_cli import add_portfolio_arguments

    add_portfolio_arguments(bt)
    bt.set_defaults(func=_cmd_backtest)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``core-engine`` console script.

    Returns 0 on success and 2 on a user error (a bad option, value, path or name), printed
    as one line on stderr without a traceback; 141 when the reader of stdout went away
    (``core-engine ... | head``), quietly; 130 on Ctrl-C.
    """
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # e.g. a broken store file left out: one line
            args = build_parser().parse_args(argv)
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # a closed pipe shows here, not in Python's exit-time flush
            return code
    except CoreEngineError as exc:
        return _fail(str(exc))
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            return _quiet_broken_pipe()
        # a path the user named cannot be read or written (missing, a folder, no permission)
        return _fail(f"{exc.strerror or exc}: {exc.filename!r}." if exc.filename else str(exc))
    except KeyboardInterrupt:
        print("core-engine: interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    line = " ".join(message.split())  # one line, even for a message that spans several
    print(line if line.startswith("core-engine") else f"core-engine: error: {line}",
          file=sys.stderr)
    return 2


def _quiet_broken_pipe() -> int:
    """stdout's reader closed it: stop without a traceback, and keep Python's exit-time
    flush of stdout from failing again (the recipe of the Python docs on SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced by a non-file (tests)
        pass
    return 141


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"core-engine: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
