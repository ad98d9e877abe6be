"""DCATrader: dollar-cost averaging — buy a fixed amount every day (or week, or any period).

In the trader's words: "Every day at midnight (or every week) I buy 100 USDT of BTC, no
matter the price. If I want, only when the price is below its 200-candle average. If I set
a take-profit, I sell the whole pile once it is that much above what it cost me on
average, and start again."
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core_engine.data.panel import Panel
from core_engine.data.timeframes import timeframe_ns
from core_engine.trading.bots._common import (
    cadence_due,
    check_int,
    check_number,
    check_symbol,
    closed_candles,
    filled_cost,
    filled_proceeds,
    is_done,
)
from core_engine.trading.orders import Fill, OrderSide
from core_engine.trading.trader import Context, Trader

__all__ = ["DCATrader"]

_NAMED = {"daily": "1d", "weekly": "1w"}


def _moving_average(length: int):
    def compute(panel: Panel, col: int) -> dict:
        close = pd.Series(panel.close[:, col])
        present = close.dropna()
        ma = present.rolling(length, min_periods=length).mean()
        return {"ma": ma.reindex(close.index).ffill().to_numpy()}
    return compute


class DCATrader(Trader):
    """Buy ``amount`` of quote currency of ``symbol`` every ``interval``.

    Parameters
    ----------
    symbol : str
    amount : float
        Quote value of each buy (a market order; the fee is paid on top).
    interval : str
        ``"daily"`` (``"1d"``), ``"weekly"`` (``"1w"``) or any duration such as ``"4h"``. The
        buys happen at the multiples of the interval since the Unix epoch, UTC: daily at
        00:00, weekly on Thursdays 00:00 (1970-01-01 was a Thursday).
    ma_length : int, optional
        Buy only when the last close is below its simple moving average over this many
        closed candles (missing candles skipped); no buy before the average exists.
    take_profit_pct : float, optional
        Rest a limit sell of the whole averaged position at ``average cost × (1 +
        take_profit_pct / 100)`` (average cost with the buy fees; the sell fee comes off the
        proceeds). It moves after each buy; when it fills, a new averaging cycle starts.

    Notes
    -----
    A buy the cash cannot pay (amount plus fee) is skipped and noted, as is a buy above the
    average. :meth:`report` gives the number of buys, the position, its average cost (fees
    included) and average price, and what take-profits realised. Everything it needs is in
    ``self.state``, so a restarted runner resumes the averaging.

    Examples
    --------
    >>> DCATrader(amount=50, interval="weekly").every
    '1w'
    """

    name = "dca"

    def __init__(self, symbol: str = "BTC/USDT", amount: float = 100.0, interval: str = "daily",
                 ma_length: int | None = None, take_profit_pct: float | None = None) -> None:
        self.symbol = symbol
        self.amount = amount
        self.interval = interval
        self.ma_length = ma_length
        self.take_profit_pct = take_profit_pct

    def _validate_params(self) -> None:
        owner = "DCATrader"
        check_symbol(owner, self.symbol)
        check_number(owner, "amount", self.amount)
        timeframe_ns(self.every, name="interval")
        check_int(owner, "ma_length", self.ma_length, minimum=1, optional=True)
        check_number(owner, "take_profit_pct", self.take_profit_pct, optional=True)

    @property
    def every(self) -> str:
        """The cadence of the buys (``interval`` with ``daily``/``weekly`` spelled out)."""
        return _NAMED.get(str(self.interval), str(self.interval))

    def on_start(self, ctx: Context) -> None:
        self.state = {"buys": 0, "quantity": 0.0, "cost": 0.0, "value": 0.0, "position_buys": 0,
                      "skipped": 0, "take_profits": 0, "realized": 0.0, "target": None,
                      "next_due": None}

    def _candles(self, ctx: Context):
        if self.ma_length is None:
            return closed_candles(ctx, self.symbol)
        return closed_candles(ctx, self.symbol, _moving_average(int(self.ma_length)),
                              key=f"sma{self.ma_length}")

    def on_bar(self, ctx: Context) -> None:
        st = self.state
        if not cadence_due(st, ctx.now.value, int(self.every_ns or 0)):
            return
        candles = self._candles(ctx)
        price = candles.price
        if not candles.ready:
            return
        if self.ma_length is not None:
            ma = float(candles.extra["ma"][candles.row])
            if not np.isfinite(ma) or price >= ma:
                st["skipped"] += 1
                ctx.note("no buy: price not below its average", price=price, average=ma)
                return
        if ctx.cash < float(self.amount) * (1.0 + ctx.taker_fee):
            st["skipped"] += 1
            ctx.note("no buy: not enough cash", cash=ctx.cash, amount=self.amount)
            return
        ctx.buy(self.symbol, value=float(self.amount), leg="dca", tag="dca")

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        st = self.state
        order = ctx.broker.fetch_order(fill.client_id)
        if not is_done(order):
            return
        if order.side is OrderSide.BUY and order.tag == "dca":
            st["buys"] += 1
            st["position_buys"] += 1
            st["quantity"] += float(order.filled_quantity)
            st["cost"] += filled_cost(order)
            st["value"] += float(order.filled_quantity * order.average_price)
            if self.take_profit_pct is not None:
                self._move_target(ctx)
        elif order.client_id == st["target"]:
            st["realized"] += filled_proceeds(order) - st["cost"]
            st["take_profits"] += 1
            ctx.note("take-profit", proceeds=filled_proceeds(order), cost=st["cost"],
                     buys=st["position_buys"])
            st.update(quantity=0.0, cost=0.0, value=0.0, position_buys=0, target=None)

    def _move_target(self, ctx: Context) -> None:
        st = self.state
        if st["target"] is not None:
            ctx.cancel(st["target"])
        price = st["cost"] / st["quantity"] * (1.0 + float(self.take_profit_pct) / 100.0)  # type: ignore[arg-type]
        held = ctx.position(self.symbol)
        # at most what is held (a fee taken in the base asset); nothing held is a restart
        # handing a buy's fill over again after the target filled: the same id as the
        # journaled target, which the broker returns instead of sending it again
        quantity = min(st["quantity"], held) if held > 0 else st["quantity"]
        order = ctx.sell(self.symbol, quantity, type="limit", price=price,
                         leg=f"target-{st['buys']}", tag="take_profit")
        st["target"] = order.client_id

    def report(self, price: float) -> dict:
        """The averaging at ``price``: ``buys`` (all), ``position_buys`` (since the last
        take-profit), ``quantity``, ``cost`` (fees included), ``average_cost``,
        ``average_price`` (without fees), ``value`` and ``unrealized_pnl`` at ``price``,
        ``take_profits``, ``realized_pnl``, ``skipped``."""
        st = self.state
        qty = st.get("quantity", 0.0)
        cost = st.get("cost", 0.0)
        value = qty * float(price)
        return {"buys": st.get("buys", 0), "position_buys": st.get("position_buys", 0),
                "quantity": qty, "cost": cost,
                "average_cost": cost / qty if qty else float("nan"),
                "average_price": st.get("value", 0.0) / qty if qty else float("nan"),
                "value": value, "unrealized_pnl": value - cost,
                "take_profits": st.get("take_profits", 0), "realized_pnl": st.get("realized", 0.0),
                "skipped": st.get("skipped", 0)}
