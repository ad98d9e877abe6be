"""``core-engine live ...``: run a live or paper trader, and operate it from another shell.

* ``core-engine live status --journal PATH`` — state, positions, open orders, today's P&L,
  last decisions with their notes, breaker trips and errors;
* ``core-engine live halt|flatten|resume --journal PATH [--reason TEXT]`` — the kill switch as
  a call: the running trader reads its state from the journal at every tick (``halted``: no new
  orders, cancels allowed; ``flatten``: cancel everything and close positions).
"""

from __future__ import annotations

import argparse

from core_engine.errors import CoreEngineError
from core_engine.live.journal import Journal
from core_engine.live.state import RunnerState
from core_engine.live.status import status_text

__all__ = ["add_live_command"]

_TARGET = {"halt": RunnerState.HALTED, "flatten": RunnerState.FLATTEN,
           "resume": RunnerState.RUNNING}


def _cmd_status(args: argparse.Namespace) -> int:
    with Journal(args.journal, readonly=True) as journal:
        print(status_text(journal))
    return 0


def _cmd_switch(args: argparse.Namespace) -> int:
    target = _TARGET[args.action]
    reason = args.reason or f"operator: core-engine live {args.action}"
    with Journal(args.journal) as journal:
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


def _run(args: argparse.Namespace) -> int:
    raise CoreEngineError("core-engine live: give an action: status, halt, flatten or resume.")


def add_live_command(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``live`` on the ``core-engine`` sub-command parser."""
    live = commands.add_parser(
        "live", help="live or paper trading, and its kill switch (status, halt, flatten)")
    live.add_argument("action", nargs="?", default="run",
                      choices=["run", "status", "halt", "flatten", "resume"],
                      help="run (default) or operate the trader writing --journal")
    live.add_argument("--journal", required=True, help="the trader's SQLite journal")
    live.add_argument("--reason", help="why (halt/flatten/resume), kept in the journal")
    live.set_defaults(func=_dispatch)
    return live
