"""The ``core-engine`` command: ingest candles, inspect a store, run a walk-forward backtest.

Every subcommand is a thin layer over the library's public API, so anything the command does
a notebook can do the same way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pandas as pd

from core_engine import __version__
from core_engine.errors import CoreEngineError

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
        frames = {s: provider.fetch_ohlcv(s, args.timeframe) for s in symbols}
        firsts = [f["timestamp"].iloc[0] for f in frames.values() if len(f)]
        lasts = [f["timestamp"].iloc[-1] for f in frames.values() if len(f)]
        start = start or min(firsts)
        end = end or max(lasts) + pd.Timedelta(args.timeframe.replace("m", "min"))
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``core-engine`` command."""
    parser = argparse.ArgumentParser(
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

    try:
        from core_engine.backtest.cli import add_backtest_command
    except ImportError:  # the backtest layer is optional for data-only installs
        pass
    else:
        add_backtest_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``core-engine`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CoreEngineError as exc:
        print(f"core-engine: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
