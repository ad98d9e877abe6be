"""BreakoutTrader: buy the breakout of the built-in Breakout strategy, protected at once.

In the trader's words: "When the close breaks the 20-candle high and the EMAs, the RSI and
the volume agree, I buy — more when more of them agree. The moment I am filled, my
stop-loss and take-profit go on the exchange, and the stop trails the price up."
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core_engine.data.panel import Panel
from core_engine.errors import ConfigError
from core_engine.risk.sizing import ConfidenceSizing, Sizing
from core_engine.strategies.breakout import Breakout
from core_engine.trading.bots._common import check_number, check_symbol, closed_candles
from core_engine.trading.bots._entry import SignalBot, check_rules
from core_engine.trading.trader import Context

__all__ = ["BreakoutTrader"]


class BreakoutTrader(SignalBot):
    """The :class:`~core_engine.strategies.Breakout` signal on one pair, as a bot.

    Parameters
    ----------
    symbol : str
    strategy : Breakout, optional
        The breakout and its confirmations (trend ``EMA(ema_fast) > EMA(ema_slow)``,
        ``RSI < rsi_overbought``, volume z-score ``> volume_spike``) and
        ``min_confirmations``; default ``Breakout()``. The bot enters at the open after a
        candle that is a candidate of the strategy.
    sizing : Sizing, optional
        A sizing object of :mod:`core_engine.risk.sizing` whose fraction is known at the
        decision (``ConfidenceSizing``, ``FixedFraction``, ``EqualSlots``; one slot). The
        default ``ConfidenceSizing(full_confidence=3)`` buys ``confirmations / 3`` of the
        equity marked at the last close (capped by the cash, fee included).
    stop_loss_pct, take_profit_pct, trailing_pct : float, optional
        The exits, from the entry fill: rested as orders right after it fills (a stop at the
        higher of the fixed stop and the trail, a take-profit limit, one OCO group; on a
        live exchange they are exchange-side orders). At least one is needed.
    rules : PortfolioRules, optional
        Rules around the entry (cooldown, entries per day, exposure caps, minimum order
        value); see :mod:`core_engine.trading.bots._entry`.

    Notes
    -----
    Warm-up: the strategy's :attr:`~core_engine.strategies.Breakout.lookback`. One position
    at a time; the next breakout is taken once the exits closed it.

    Examples
    --------
    >>> BreakoutTrader(strategy=Breakout(length=30), take_profit_pct=None)
    BreakoutTrader(strategy=Breakout(length=30), take_profit_pct=None)
    """

    name = "breakout"

    def __init__(self, symbol: str = "BTC/USDT", strategy: Breakout | None = None,
                 sizing: Sizing | None = None, stop_loss_pct: float | None = 2.0,
                 take_profit_pct: float | None = 4.0, trailing_pct: float | None = 1.5,
                 rules: Any = None) -> None:
        self.symbol = symbol
        self.strategy = strategy
        self.sizing = sizing
        self.stop_loss_pct = stop_loss_pct
        self.take_profit_pct = take_profit_pct
        self.trailing_pct = trailing_pct
        self.rules = rules

    def _validate_params(self) -> None:
        owner = "BreakoutTrader"
        check_symbol(owner, self.symbol)
        check_rules(owner, self.rules)
        if self.strategy is not None and not isinstance(self.strategy, Breakout):
            raise ConfigError("The 'strategy' parameter of BreakoutTrader must be a Breakout(...) "
                              f"or None. Got {self.strategy!r}.")
        self._strategy = self.strategy if self.strategy is not None else Breakout()
        sizing = self.sizing if self.sizing is not None else ConfidenceSizing(full_confidence=3)
        if not isinstance(sizing, Sizing) or sizing.kind != "weight" \
                or not set(sizing.needs()) <= {"confidence"}:
            raise ConfigError("The 'sizing' parameter of BreakoutTrader must be a sizing object "
                              "known at the decision (ConfidenceSizing, FixedFraction, "
                              f"EqualSlots) or None. Got {self.sizing!r}.")
        self._sizing = sizing
        for name in ("stop_loss_pct", "take_profit_pct", "trailing_pct"):
            check_number(owner, name, getattr(self, name), high=100, optional=True)
        if self.stop_loss_pct is None and self.take_profit_pct is None \
                and self.trailing_pct is None:
            raise ConfigError("BreakoutTrader needs at least one exit: 'stop_loss_pct', "
                              "'take_profit_pct' or 'trailing_pct'. Got none.")

    def _signals(self, panel: Panel, col: int) -> dict:
        one = panel.select([panel.symbols[col]])
        features = self._strategy.compute_features(one)
        confidence = self._strategy.confidence_panel(one, features=features)
        scores = self._strategy.score_panel(one, features=features)
        return {"confidence": np.asarray(confidence)[:, 0], "score": scores[:, 0]}

    def entry(self, ctx: Context) -> dict | None:
        candles = closed_candles(ctx, self.symbol, self._signals,
                                 key=f"breakout:{self._strategy!r}")
        row = candles.row
        if row < 0:
            return None
        confidence = float(candles.extra["confidence"][row])
        if not np.isfinite(confidence) or not ctx.tradable(self.symbol):
            return None
        weight = float(self._sizing.weights(1, 1, confidence=np.array([confidence]))[0])
        weight = min(weight, self._sizing.max_position_pct / 100.0)
        value = min(ctx.mark_equity * weight, ctx.cash / (1.0 + ctx.taker_fee))
        if not weight > 0 or value <= 0:
            ctx.note("breakout not sized", confirmations=confidence, weight=weight)
            return None
        return {"value": value,
                "note": {"close": candles.price, "confirmations": confidence, "weight": weight,
                         "strength": float(candles.extra["score"][row])},
                "meta": {"confirmations": confidence, "weight": weight}}

    def exit_levels(self) -> dict:
        return {"stop_loss_pct": self.stop_loss_pct, "take_profit_pct": self.take_profit_pct,
                "trailing_pct": self.trailing_pct}
