"""The traders' own bots, as :class:`~core_engine.trading.Trader` objects (DESIGN.md §7).

Each bot is backtested by :func:`~core_engine.trading.replay`, paper-traded and run live
by the same code:

========================  ===============================================================
:class:`CycleTrader`      buy a dip when the 1h/4h trends are not falling, sell on a trail
                          once in profit after both fees, or on a hard stop
:class:`DCATrader`        buy a fixed amount every day/week, optionally below the average,
                          optional take-profit on the averaged position
:class:`GridTrader`       resting limit buys and sells on a price grid; stops on a range exit
:class:`PriceTriggerTrader`  manual buy / sell / stop-loss / take-profit levels, each once
:class:`ScalpTrader`      EMA up-move with rising volume, 0.5 % target, 0.3 % stop, cooldown
:class:`BreakoutTrader`   the Breakout strategy sized by its confirmations, stop, target and
                          trail resting right after the fill
========================  ===============================================================

:func:`make_bot` builds one by name (``"grid"``, ``"dca"``, ...) from keyword parameters,
as ``core-engine replay --bot NAME --param key=value`` does.

Restarts: every bot keeps what it must remember in ``self.state`` (JSON-able), read by
:meth:`~core_engine.trading.Trader.get_state` and restored by
:meth:`~core_engine.trading.Trader.set_state`; a restored bot is not started again
(``on_start`` is the first start only) and carries on with its orders still resting.

>>> from core_engine.trading.bots import make_bot
>>> make_bot("grid", low=20000, high=40000, levels=21)
GridTrader(low=20000, high=40000, levels=21)
"""

from __future__ import annotations

from typing import Any

from core_engine.errors import ConfigError
from core_engine.strategies.base import did_you_mean
from core_engine.trading.bots.breakout import BreakoutTrader
from core_engine.trading.bots.cycle import CycleTrader
from core_engine.trading.bots.dca import DCATrader
from core_engine.trading.bots.grid import GridTrader, grid_levels
from core_engine.trading.bots.scalp import ScalpTrader
from core_engine.trading.bots.triggers import PriceTriggerTrader
from core_engine.trading.trader import Trader

__all__ = ["BOTS", "BreakoutTrader", "CycleTrader", "DCATrader", "GridTrader",
           "PriceTriggerTrader", "ScalpTrader", "grid_levels", "make_bot"]

#: The bots by name.
BOTS: dict[str, type[Trader]] = {"cycle": CycleTrader, "dca": DCATrader, "grid": GridTrader,
                         "triggers": PriceTriggerTrader, "scalp": ScalpTrader,
                         "breakout": BreakoutTrader}


def make_bot(name: str, **params: Any) -> Any:
    """The bot called ``name`` with ``params``.

    For ``"breakout"``, parameters of :class:`~core_engine.strategies.Breakout`
    (``length``, ``min_confirmations``, ...) go to its strategy.

    Raises
    ------
    ConfigError
        On an unknown bot (with a did-you-mean hint) or a bad parameter.
    """
    cls = BOTS.get(name) if isinstance(name, str) else None
    if cls is None:
        hint = did_you_mean(name, sorted(BOTS)) if isinstance(name, str) else ""
        raise ConfigError(f"Unknown bot {name!r}: the 'name' parameter of make_bot must be one "
                          f"of {sorted(BOTS)}.{hint}")
    if cls is BreakoutTrader:
        from core_engine.strategies.breakout import Breakout

        own = set(BreakoutTrader.param_names())
        strategy = {k: params.pop(k) for k in list(params) if k not in own}
        if strategy:
            params["strategy"] = Breakout(**strategy)
    return cls(**params)
