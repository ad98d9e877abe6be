"""``core-engine replay``: a ranking strategy replayed as an event trader (RankingTrader).

Registered in :mod:`core_engine.cli` by :func:`add_replay_command`. The replay equals
``core-engine backtest --mode portfolio`` trade for trade, with the same portfolio options
(``--initial-cash``, ``--sizing``, ``--rule``, ``--hold``, ``--rebalance``: the helpers of
:mod:`core_engine.backtest.portfolio_cli`), exits (``--stop-loss-pct``, ``--stop-fill``, ...)
and ``--max-exit-delay``; it also prints the order flow. With ``--bot NAME`` it replays a bot
of :mod:`core_engine.trading.bots` instead.

    core-engine replay --strategy momentum_rank --mode portfolio --sizing risk:1 \\
        --stop-loss-pct 2 --rule cooldown=2h --hold until_dropped
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_replay_command"]


def _value(text: str) -> Any:
    """``--param`` values as int, float, bool or None where they look like one (as the
    ``backtest`` command reads them)."""
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


def _params(pairs: list[str]) -> dict:
    from core_engine.errors import ConfigError

    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param must look like name=value, e.g. rsi_low=45. Got {pair!r}.")
        params[key.strip()] = _value(value.strip())
    return params


def _cmd_replay(args: argparse.Namespace) -> int:
    import pandas as pd

    from core_engine.backtest.portfolio_cli import portfolio_kwargs
    from core_engine.data import Panel
    from core_engine.data.providers import load_sample
    from core_engine.data.store import ParquetStore
    from core_engine.errors import ConfigError
    from core_engine.risk import ExitRules
    from core_engine.strategies import get_strategy
    from core_engine.trading import RankingTrader, SimBroker, replay

    if args.mode != "portfolio":
        raise ConfigError(f"core-engine replay runs --mode portfolio (one account). Got "
                          f"{args.mode!r}.")
    portfolio = portfolio_kwargs(args)  # the options of backtest --mode portfolio
    symbols = None if args.symbols is None else \
        [x.strip() for x in args.symbols.split(",") if x.strip()]
    bot = None
    if args.bot:  # a bot of core_engine.trading.bots instead of a ranking strategy
        from core_engine.trading.bots.cli import bot_from_args

        bot, symbols = bot_from_args(args.bot, args.param, symbols)
    if args.store:
        source = f"store {args.store}"
        panel = Panel.from_store(ParquetStore(args.store), symbols, args.timeframe)
    else:
        source = "the bundled real Binance sample"
        panel = Panel.from_frames(load_sample(symbols), "5m")
    exits = ExitRules(stop_loss_pct=args.stop_loss_pct, take_profit_pct=args.take_profit_pct,
                      trailing_pct=args.trailing_pct, stop_fill=args.stop_fill,
                      stop_fill_range=args.stop_fill_range)
    if bot is not None:
        trader, name = bot, bot.name
    else:
        strategy = get_strategy(args.strategy, **_params(args.param))
        trader = RankingTrader(strategy, exits=exits if exits.active else None,
                               sizing=portfolio.get("sizing"), rules=portfolio["rules"],
                               window=args.window, shift=args.shift,
                               hold=portfolio.get("hold", "window"),
                               rebalance=portfolio.get("rebalance", False),
                               max_positions=args.max_positions,
                               max_exit_delay=_value(args.max_exit_delay)
                               if args.max_exit_delay else None)
        name = strategy.name
    broker = SimBroker(fee_bps=args.fee_bps, slippage_bps=args.slippage_bps,
                       max_volume_share=args.max_volume_share, stop_fill=args.stop_fill,
                       stop_fill_frac=exits.stop_fill_range or 0.0)
    result = replay(trader, panel, broker, start=args.start, end=args.end,
                    initial_cash=portfolio.get("initial_cash", 10_000.0))
    print(f"data: {source}")
    print(result.summary())
    if args.out != "-":
        out = args.out or f"runs/replay-{name}-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"
        print(f"\nsaved run: {result.save(out)}")
    return 0


def add_replay_command(commands: Any) -> None:
    """Add the ``replay`` subcommand to the ``core-engine`` parser's subcommands."""
    rp = commands.add_parser(
        "replay", help="event replay of a ranking strategy as a trader (one account, orders, "
                       "fills; equals backtest --mode portfolio)")
    rp.add_argument("--store", help="read candles from this store instead of the bundled sample")
    rp.add_argument("--symbols", "--symbol", help="comma-separated symbols (default: all)")
    rp.add_argument("--timeframe", default="5m")
    rp.add_argument("--start", help="first time the trader acts, UTC")
    rp.add_argument("--end", help="end of the replay, UTC")
    rp.add_argument("--strategy", default="macd_rsi_confluence", help="registry name or module:Class")
    rp.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="strategy (or --bot) parameter, repeatable")
    rp.add_argument("--bot", help="replay a bot of core_engine.trading.bots (grid, dca, cycle, "
                                  "triggers, scalp, breakout) instead of --strategy")
    rp.add_argument("--window", default="4h")
    rp.add_argument("--shift", default="2h")
    rp.add_argument("--max-positions", type=int, default=3)
    rp.add_argument("--fee-bps", type=float, default=10.0)
    rp.add_argument("--slippage-bps", type=float, default=0.0)
    rp.add_argument("--max-volume-share", type=float, default=None,
                    help="cap each fill at this share of the candle's volume (partial fills)")
    rp.add_argument("--stop-loss-pct", type=float)
    rp.add_argument("--take-profit-pct", type=float)
    rp.add_argument("--trailing-pct", type=float)
    rp.add_argument("--stop-fill", default="level", choices=("level", "low", "range"),
                    help="fill of a stop reached inside a candle: its level (default), the "
                         "candle's low, or the level less a share of the candle's range")
    rp.add_argument("--stop-fill-range", type=float,
                    help="share of the candle's range lost with --stop-fill range (default 0.5)")
    rp.add_argument("--max-exit-delay", metavar="CANDLES|DURATION",
                    help="cap on how long a time exit waits for a price after an outage, "
                         "e.g. 12 or 1h (default: wait for the first open)")
    rp.add_argument("--out", help="directory for the saved run (default runs/replay-...; '-' to skip)")
    from core_engine.backtest.portfolio_cli import add_portfolio_arguments

    add_portfolio_arguments(rp)  # --mode, --initial-cash, --sizing, --rule, --hold, --rebalance
    # argparse has no public setter for the help of an added option; a replay is portfolio
    rp._option_string_actions["--mode"].help = "portfolio (the default and only mode of a replay)"
    rp.set_defaults(func=_cmd_replay, mode="portfolio")
