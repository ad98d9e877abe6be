"""The bots on the command line: ``core-engine replay --bot NAME --param key=value ...``.

:func:`bot_from_args` turns ``--bot``, ``--param`` and ``--symbol(s)`` into a bot and the
symbols to load; a live command can reuse it as is (``core-engine live --paper --bot``).
Values are read as JSON where they parse (numbers, ``true``/``false``/``null``, lists,
objects: ``--param 'triggers={"BTC/USDT": {"buy": 30000, "amount": 1000}}'``), else as text.
"""

from __future__ import annotations

import json
from typing import Any

from core_engine.errors import ConfigError
from core_engine.trading.bots import BOTS, make_bot

__all__ = ["bot_from_args", "parse_params"]


def _value(text: str) -> Any:
    if text.lower() in ("none", "null"):
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return tuple(value) if isinstance(value, list) else value


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["low=20000", "spacing=geometric"]`` → ``{"low": 20000, "spacing": "geometric"}``."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param must look like name=value, e.g. low=20000. Got {pair!r}.")
        params[key.strip()] = _value(value.strip())
    return params


def bot_from_args(name: str, pairs: list[str], symbols: list[str] | None
                  ) -> tuple[Any, list[str]]:
    """The bot ``name`` with the ``--param`` pairs, and the symbols it needs.

    A one-pair bot takes its pair from ``--symbol`` (one symbol) unless ``--param
    symbol=...`` is given; the symbols loaded are then the bot's own.
    """
    params = parse_params(pairs)
    cls = BOTS.get(name)
    if cls is not None and "symbol" in cls.param_names() and symbols:
        if len(symbols) != 1:
            raise ConfigError(f"--bot {name} trades one pair; give one --symbol. Got {symbols}.")
        params.setdefault("symbol", symbols[0])
    bot = make_bot(name, **params)
    if hasattr(bot, "symbol"):
        return bot, [bot.symbol]
    return bot, list(symbols or bot.triggers)
