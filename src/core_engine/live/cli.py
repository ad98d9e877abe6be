"""``core-engine live ...``: run a live or paper trader, and operate it from another shell.

* ``core-engine live --paper --strategy NAME [--param k=v ...] --symbols A,B --journal PATH``
  paper-trades on live public candles (``--provider``, default binance; no keys needed), or,
  with ``--store DIR``, replays the stored candles on a simulated clock (a dry run of the
  whole live machinery, fast);
* ``--bot NAME [--param k=v ...] [--symbol A]`` runs a bot of :mod:`core_engine.trading.bots`
  instead of a strategy (``core-engine live --paper --bot grid --param low=20000 ...``);
* ``core-engine live --exchange binance --strategy NAME ... --journal PATH`` trades for real
  with the keys of ``CORE_ENGINE_BINANCE_KEY_1`` / ``..._SECRET_1`` (``--sandbox``: testnet);
* ``core-engine live status --journal PATH`` — state, positions, open orders, today's P&L,
  last decisions with their notes, breaker trips and errors;
* ``core-engine live halt|flatten|resume --journal PATH [--reason TEXT]`` — the kill switch as
  a call: the running trader reads its state from the journal at every tick (``halted``: no new
  orders, cancels allowed; ``flatten``: cancel everything and close positions).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import pandas as pd

from core_engine.errors import CoreEngineError
from core_engine.live.state import RunnerState

__all__ = ["add_live_command"]

_TARGET = {"halt": RunnerState.HALTED, "flatten": RunnerState.FLATTEN,
           "resume": RunnerState.RUNNING}


def _existing_journal(path: str) -> str:
    """The operator commands act on a trader's journal: a missing path or a folder is a
    mistake to report, never a new empty journal to create."""
    from core_engine._validate import check_path
    from core_engine.live.journal import JournalError

    where = check_path(path, "--journal", "core-engine live", kind="file", error=JournalError)
    if not where.exists():
        raise JournalError(f"No journal at {path}: it does not exist, and the operator commands "
                           "never create one. Check the --journal path.")
    return path


def _cmd_status(args: argparse.Namespace) -> int:
    from core_engine.live.journal import Journal
    from core_engine.live.status import status_text

    with Journal(_existing_journal(args.journal), readonly=True) as journal:
        print(status_text(journal))
    return 0


def _cmd_switch(args: argparse.Namespace) -> int:
    from core_engine.live.journal import Journal

    target = _TARGET[args.action]
    reason = args.reason or f"operator: core-engine live {args.action}"
    with Journal(_existing_journal(args.journal)) as journal:
        if journal.meta("trader_id") is None and not journal.orders():
            raise CoreEngineError(f"{args.journal} is a new, empty journal: nothing runs on it. "
                                  "Check the --journal path.")
        changed = journal.set_state(target, reason)
        state, why, since = journal.state()
    print(f"{args.journal}: {state.value} since {since} ({why})"
          + ("" if changed else " — unchanged"))
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.action == "status":
        return _cmd_status(args)
    if args.action in _TARGET:
        return _cmd_switch(args)
    return _run(args)


def _trader(args: argparse.Namespace) -> Any:
    from core_engine.risk import ExitRules
    from core_engine.strategies import get_strategy
    from core_engine.trading import RankingTrader
    from core_engine.trading.cli import _params

    exits = ExitRules(stop_loss_pct=args.stop_loss_pct, take_profit_pct=args.take_profit_pct)
    return RankingTrader(get_strategy(args.strategy, **_params(args.param)),
                         exits=exits if exits.active else None, window=args.window,
                         shift=args.shift, max_positions=args.max_positions)


def _notifiers(args: argparse.Namespace) -> list[Any]:
    from core_engine.live.keys import Secret
    from core_engine.live.notify import WebhookNotifier

    out: list[Any] = []
    if args.webhook_env:
        url = os.environ.get(args.webhook_env)
        if not url:
            raise CoreEngineError(f"--webhook-env names {args.webhook_env}, which is not set.")
        out.append(WebhookNotifier(Secret(url, name=args.webhook_env)))
    return out


def _broker_and_clock(args: argparse.Namespace, symbols: list[str]) -> tuple[Any, Any, Any]:
    """(broker, clock, until) for the run's mode."""
    from core_engine.live.paper import PaperBroker, ccxt_candle_source
    from core_engine.live.runner import SimulatedClock, WallClock

    paper_journal = Path(args.journal).with_suffix(".paper.sqlite")
    sim = {"initial_cash": args.initial_cash, "fee_bps": args.fee_bps}
    if args.paper and args.store:
        from core_engine.data import Panel
        from core_engine.data.store import ParquetStore

        panel = Panel.from_store(ParquetStore(args.store), symbols, args.timeframe)
        end = panel.index[-1] + pd.Timedelta(panel.step_ns, unit="ns")
        until = min(end, _utc(args.until)) if args.until else end
        return (PaperBroker(panel, journal_path=paper_journal, **sim),
                SimulatedClock(panel.index[0]), until)
    if args.paper:
        from core_engine.live.ccxt_session import CCXTSession

        public = CCXTSession(args.provider)
        source = ccxt_candle_source(public)
        return (PaperBroker(source=source, symbols=symbols, timeframe=args.timeframe,
                            journal_path=paper_journal, **sim), WallClock(), _utc(args.until))
    from core_engine.live.ccxt_broker import CCXTBroker
    from core_engine.live.keys import KeyRing

    clock = WallClock()
    broker = CCXTBroker(args.exchange, keys=KeyRing.from_env(args.exchange),
                        sandbox=args.sandbox, symbols=symbols, clock=clock,
                        price_timeframe=args.timeframe)
    return broker, clock, _utc(args.until)


def _utc(text: str | None) -> pd.Timestamp | None:
    if text is None:
        return None
    stamp = pd.Timestamp(text)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _run(args: argparse.Namespace) -> int:
    from core_engine.live.runner import Breakers, Runner
    from core_engine.live.status import status_text

    if args.paper == bool(args.exchange):
        raise CoreEngineError("core-engine live: give --paper or --exchange NAME (one of them).")
    symbols = [s.strip() for s in (args.symbols or "").split(",") if s.strip()]
    if args.bot:  # a bot of core_engine.trading.bots instead of a ranking strategy
        from core_engine.trading.bots.cli import bot_from_args

        trader, symbols = bot_from_args(args.bot, args.param, symbols or None)
    elif not symbols:
        raise CoreEngineError("core-engine live needs --symbols, e.g. BTC/USDT,ETH/USDT.")
    else:
        trader = _trader(args)
    broker, clock, until = _broker_and_clock(args, symbols)
    breakers = Breakers(max_drawdown_pct=args.max_drawdown_pct,
                        daily_loss_limit_pct=args.daily_loss_pct,
                        liquidate_on_drawdown=args.liquidate,
                        liquidate_on_daily_loss=args.liquidate)
    runner = Runner(trader, broker, args.journal, clock=clock, symbols=symbols,
                    timeframe=args.timeframe, settle=args.settle, history=args.history,
                    rules=breakers, notifiers=_notifiers(args),
                    end=until if args.paper and args.store else None)
    ticks = runner.run(until=until, max_ticks=args.max_ticks)
    print(f"{ticks} ticks; status page {runner.journal.path.with_suffix('.html')}")
    print(status_text(runner.journal))
    return 0


def add_live_command(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``live`` on the ``core-engine`` sub-command parser."""
    live = commands.add_parser(
        "live", help="live or paper trading, and its kill switch (status, halt, flatten)")
    live.add_argument("action", nargs="?", default="run",
                      choices=["run", "status", "halt", "flatten", "resume"],
                      help="run (default) or operate the trader writing --journal")
    live.add_argument("--journal", required=True, help="the trader's SQLite journal")
    live.add_argument("--reason", help="why (halt/flatten/resume), kept in the journal")
    mode = live.add_argument_group("run")
    mode.add_argument("--paper", action="store_true", help="paper trading (simulated fills)")
    mode.add_argument("--exchange", help="trade on this exchange through ccxt (binance, kraken)")
    mode.add_argument("--sandbox", action="store_true", help="the exchange's testnet")
    mode.add_argument("--provider", default="binance",
                      help="exchange whose public candles feed --paper (default binance)")
    mode.add_argument("--store", help="--paper over the candles of this store, simulated clock")
    mode.add_argument("--strategy", default="macd_rsi_confluence",
                      help="registry name or module:Class")
    mode.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                      help="strategy (or --bot) parameter, repeatable")
    mode.add_argument("--bot", help="run a bot of core_engine.trading.bots (grid, dca, cycle, "
                                    "triggers, scalp, breakout) instead of --strategy")
    mode.add_argument("--symbols", "--symbol", help="comma-separated universe, e.g. BTC/USDT,ETH/USDT")
    mode.add_argument("--timeframe", default="5m")
    mode.add_argument("--window", default="4h")
    mode.add_argument("--shift", default="2h")
    mode.add_argument("--max-positions", type=int, default=3)
    mode.add_argument("--stop-loss-pct", type=float)
    mode.add_argument("--take-profit-pct", type=float)
    mode.add_argument("--initial-cash", type=float, default=10_000.0, help="paper account")
    mode.add_argument("--fee-bps", type=float, default=10.0, help="paper fee per fill")
    mode.add_argument("--max-drawdown-pct", type=float, help="breaker: halt at this drawdown")
    mode.add_argument("--daily-loss-pct", type=float, help="breaker: halt for the UTC day")
    mode.add_argument("--liquidate", action="store_true", help="breakers flatten, not halt")
    mode.add_argument("--webhook-env", metavar="VAR",
                      help="environment variable holding a webhook URL for notifications")
    mode.add_argument("--settle", default="2s", help="wait after each bar close")
    mode.add_argument("--history", type=int, default=500, help="candles read per tick")
    mode.add_argument("--until", help="stop after this UTC time")
    mode.add_argument("--max-ticks", type=int, help="stop after this many ticks")
    live.set_defaults(func=_dispatch)
    return live
