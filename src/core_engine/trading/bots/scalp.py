"""ScalpTrader: small, quick trades on short-term up-moves.

In the trader's words: "On the 5-minute chart, when the fast EMA is above the slow one and
volume is picking up, I jump in, take 0.5 % and get out, or cut it at 0.3 %. Then I wait a
few candles and look again."

.. warning:: **Fees dominate such a bot.** With 10 bps per side a 0.5 % target nets
   about +0.30 % and a 0.3 % stop costs about −0.50 %, so the bot needs to win 62.5 % of
   its trades just to break even (the notebook ``04_bots.ipynb`` shows the same trades
   with and without fees). :meth:`ScalpTrader.breakeven_win_rate` computes it for any
   fee.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core_engine.data.panel import Panel
from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError
from core_engine.features import EMA, VolumeTrend
from core_engine.trading.bots._common import (
    check_int,
    check_number,
    check_symbol,
    closed_candles,
    quote_to_spend,
)
from core_engine.trading.bots._entry import SignalBot, check_rules
from core_engine.trading.trader import Context

__all__ = ["ScalpTrader"]


class ScalpTrader(SignalBot):
    """Enter on a short-term up-move, exit at a small target or a tight stop.

    Parameters
    ----------
    symbol : str
    fast, slow : int
        The EMAs (TA-Lib convention) of the entry: ``EMA(fast) > EMA(slow)`` on the last
        closed candle.
    volume_fast, volume_slow : int
        Rising volume: the mean volume of the last ``volume_fast`` candles above that of the
        last ``volume_slow`` (:class:`~core_engine.features.VolumeTrend` > 0).
    target_pct : float
        Take-profit above the entry fill (default 0.5 %), a resting limit sell.
    stop_pct : float
        Stop-loss below the entry fill (default 0.3 %), a resting stop sell in the same OCO
        group (a candle that reaches both is a loss: the stop is assumed first).
    cooldown : str, optional
        No new entry until this long after an exit (default ``"15m"``).
    amount : float, optional
        Quote value of each entry; all the cash (less the fee) when None.
    rules : PortfolioRules, optional
        Rules around the entry (cooldown, entries per day, exposure caps, minimum order
        value); see :mod:`core_engine.trading.bots._entry`.

    Notes
    -----
    The bot looks at every candle while it is flat (warm-up: ``slow - 1`` candles and
    ``volume_slow - 1``); in a position it waits for its resting exits. Fees: see the
    module warning and :meth:`breakeven_win_rate`.

    Examples
    --------
    >>> round(ScalpTrader().breakeven_win_rate(fee_bps=10), 3)
    0.625
    """

    name = "scalp"

    def __init__(self, symbol: str = "BTC/USDT", fast: int = 9, slow: int = 21,
                 volume_fast: int = 3, volume_slow: int = 20, target_pct: float = 0.5,
                 stop_pct: float = 0.3, cooldown: str | None = "15m",
                 amount: float | None = None, rules: Any = None) -> None:
        self.symbol = symbol
        self.fast = fast
        self.slow = slow
        self.volume_fast = volume_fast
        self.volume_slow = volume_slow
        self.target_pct = target_pct
        self.stop_pct = stop_pct
        self.cooldown = cooldown
        self.amount = amount
        self.rules = rules

    def _validate_params(self) -> None:
        owner = "ScalpTrader"
        check_symbol(owner, self.symbol)
        for name in ("fast", "slow", "volume_fast", "volume_slow"):
            check_int(owner, name, getattr(self, name), minimum=1)
        for a, b in (("fast", "slow"), ("volume_fast", "volume_slow")):
            if not getattr(self, a) < getattr(self, b):
                raise ConfigError(f"The '{a}' parameter of ScalpTrader must be below '{b}' "
                                  f"({getattr(self, b)!r}). Got {getattr(self, a)!r}.")
        check_number(owner, "target_pct", self.target_pct, high=100)
        check_number(owner, "stop_pct", self.stop_pct, high=100)
        if self.cooldown is not None:
            timeframe_ns(self.cooldown, name="cooldown")
        check_number(owner, "amount", self.amount, optional=True)
        check_rules(owner, self.rules)

    def breakeven_win_rate(self, fee_bps: float = 10.0) -> float:
        """The share of winning trades at which the bot breaks even, fees on both sides."""
        fee = fee_bps / 1e4
        win = (1 + self.target_pct / 100) * (1 - fee) / (1 + fee) - 1
        loss = 1 - (1 - self.stop_pct / 100) * (1 - fee) / (1 + fee)
        return loss / (win + loss) if win > 0 else 1.0

    def _signals(self, panel: Panel, col: int) -> dict:
        one = panel.select([panel.symbols[col]])
        fast = EMA(length=self.fast).compute_panel(one)[f"ema_{self.fast}"][:, 0]
        slow = EMA(length=self.slow).compute_panel(one)[f"ema_{self.slow}"][:, 0]
        trend = VolumeTrend(fast=self.volume_fast, slow=self.volume_slow)
        volume = next(iter(trend.compute_panel(one).values()))[:, 0]
        with np.errstate(invalid="ignore"):
            go = (fast > slow) & (volume > 0)
        return {"go": go, "fast": fast, "slow": slow, "volume_trend": volume}

    def entry(self, ctx: Context) -> dict | None:
        candles = closed_candles(ctx, self.symbol, self._signals,
                                 key=f"scalp{self.fast}-{self.slow}-{self.volume_fast}-"
                                     f"{self.volume_slow}")
        row = candles.row
        if row < 0 or not candles.extra["go"][row] or not ctx.tradable(self.symbol):
            return None
        value = quote_to_spend(ctx, self.amount)
        if value <= 0:
            return None
        extra = candles.extra
        return {"value": value, "note": {"close": candles.price,
                                         "ema_fast": float(extra["fast"][row]),
                                         "ema_slow": float(extra["slow"][row]),
                                         "volume_trend": float(extra["volume_trend"][row])}}

    def exit_levels(self) -> dict:
        return {"stop_loss_pct": self.stop_pct, "take_profit_pct": self.target_pct}
