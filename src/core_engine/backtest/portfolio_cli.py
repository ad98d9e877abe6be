"""The ``--mode portfolio`` options of ``core-engine backtest`` (kept here so the shared
``core_engine/cli.py`` only registers them).

    core-engine backtest --mode portfolio --initial-cash 10000 --sizing risk:1 \\
        --stop-loss-pct 2 --rule daily_loss_limit_pct=3 --rule cooldown=2h

``--rule NAME=VALUE`` is repeatable like ``--param``; the names are the parameters of
:class:`~core_engine.risk.PortfolioRules` (an unknown name fails with a did-you-mean).
"""

from __future__ import annotations

import argparse
from typing import Any

from core_engine.errors import ConfigError

__all__ = ["add_portfolio_arguments", "portfolio_kwargs"]


def add_portfolio_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--mode``, ``--initial-cash``, ``--sizing``, ``--rule``, ``--hold`` and
    ``--rebalance`` to the ``backtest`` subcommand."""
    parser.add_argument("--mode", default="slices", choices=("slices", "portfolio"),
                        help="slices (default) or portfolio: one compounding account")
    parser.add_argument("--initial-cash", type=float,
                        help="portfolio: starting cash in the quote currency (default 10000)")
    parser.add_argument("--sizing", metavar="NAME[:VALUE]",
                        help="portfolio: equal[:slots], fixed:PCT, risk:PCT, "
                             "confidence:FULL, invvol:PCT (default equal)")
    parser.add_argument("--rule", action="append", default=[], metavar="NAME=VALUE",
                        help="portfolio rule, repeatable (e.g. --rule daily_loss_limit_pct=3 "
                             "--rule cooldown=2h)")
    parser.add_argument("--hold", choices=("window", "until_dropped"),
                        help="portfolio: exit at the window end (default) or hold while picked")
    parser.add_argument("--rebalance", action="store_true",
                        help="portfolio: re-picked positions trade to their new target")


def _rule_value(text: str) -> Any:
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


def portfolio_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The ``walk_forward`` keyword arguments of the portfolio options in ``args``.

    Raises
    ------
    ConfigError
        On a malformed ``--rule``, a bad sizing, or a portfolio option without
        ``--mode portfolio``.
    """
    from core_engine.risk import PortfolioRules, parse_sizing

    if args.mode != "portfolio":
        given = [flag for flag, value in (("--initial-cash", args.initial_cash),
                                           ("--sizing", args.sizing), ("--rule", args.rule),
                                           ("--hold", args.hold),
                                           ("--rebalance", args.rebalance)) if value]
        if given:
            raise ConfigError(f"{', '.join(given)}: these options apply to --mode portfolio only.")
        return {}
    params: dict[str, Any] = {}
    for pair in args.rule:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--rule must look like name=value, e.g. daily_loss_limit_pct=3. "
                              f"Got {pair!r}.")
        value = value.strip()
        # durations stay text ("2h"); plain numbers become numbers
        params[key.strip()] = value if key.strip() in ("cooldown", "drawdown_halt_for") \
            else _rule_value(value)
    out: dict[str, Any] = {"mode": "portfolio", "rules": PortfolioRules(**params)}
    if args.initial_cash is not None:
        out["initial_cash"] = args.initial_cash
    if args.sizing:
        out["sizing"] = parse_sizing(args.sizing)
    if args.hold:
        out["hold"] = args.hold
    if args.rebalance:
        out["rebalance"] = True
    return out
