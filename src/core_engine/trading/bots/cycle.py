"""CycleTrader: the buy/sell cycle of an ETH/USDT script, as a library object.

In the trader's words: "I watch the price. When it has dropped 2 % from the highest price I
have seen, and neither the last hour nor the last four hours are going down, I buy. Then I
follow the price up; once I am at least 0.5 % in profit *after paying the fee on both
sides*, I sell when it falls 1 % from the top. If it goes 5 % against me, I cut it. Then I
start watching for the next dip."
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError
from core_engine.trading.bots._common import (
    Candles,
    cadence_due,
    check_number,
    check_symbol,
    closed_candles,
    filled_cost,
    filled_proceeds,
    is_done,
    iso,
    net_return,
    quote_to_spend,
)
from core_engine.trading.orders import Fill, OrderSide
from core_engine.trading.trader import Context, Trader

__all__ = ["CycleTrader"]


class CycleTrader(Trader):
    """Alternate buy and sell cycles on one pair, deciding on closed candles.

    Parameters
    ----------
    symbol : str
    buy_drop_pct : float
        Buy when the last close is at least this far below the tracked high (the highest
        close since the cycle began: the start, or the last sale).
    trend_lookbacks : tuple of str
        Look-backs of the trend filter (default 1h and 4h): the buy also needs, for each,
        ``close now / close one look-back ago − 1 >= −trend_tolerance_pct / 100`` (on closed
        candles; not enough history = no buy).
    trend_tolerance_pct : float
        How much fall a look-back may show and still count as "not falling" (default 0).
    trailing_pct : float
        Sell when the last close is this far below the tracked high since the buy ...
    min_profit_pct : float
        ... and selling at that close would return at least this much **after the fee on
        both sides**: ``quantity × close × (1 − fee) / (what the buy cost, fee included)
        − 1 >= min_profit_pct / 100``.
    stop_loss_pct : float, optional
        Sell when the last close is this far below the entry price, whatever the profit.
    amount : float, optional
        Quote value of each buy; all the cash (less the fee) when None.
    every : str
        How often the bot looks (default ``"15m"``); orders fill at the next open.

    Notes
    -----
    The tracked high and low, the entry, the pending order and the last buy and sale are
    kept in ``self.state`` (JSON), so a restarted runner resumes the cycle where it was.
    :meth:`report` gives the cycles done and the realised profit.

    Examples
    --------
    >>> CycleTrader(symbol="ETH/USDT", buy_drop_pct=3)
    CycleTrader(buy_drop_pct=3)
    """

    name = "cycle"

    def __init__(self, symbol: str = "ETH/USDT", buy_drop_pct: float = 2.0,
                 trend_lookbacks: tuple = ("1h", "4h"), trend_tolerance_pct: float = 0.0,
                 trailing_pct: float = 1.0, min_profit_pct: float = 0.5,
                 stop_loss_pct: float | None = 5.0, amount: float | None = None,
                 every: str = "15m") -> None:
        self.symbol = symbol
        self.buy_drop_pct = buy_drop_pct
        self.trend_lookbacks = trend_lookbacks
        self.trend_tolerance_pct = trend_tolerance_pct
        self.trailing_pct = trailing_pct
        self.min_profit_pct = min_profit_pct
        self.stop_loss_pct = stop_loss_pct
        self.amount = amount
        self.every = every

    def _validate_params(self) -> None:
        owner = "CycleTrader"
        check_symbol(owner, self.symbol)
        check_number(owner, "buy_drop_pct", self.buy_drop_pct, high=100)
        if isinstance(self.trend_lookbacks, str) or not isinstance(self.trend_lookbacks,
                                                                    (tuple, list)):
            raise ConfigError("The 'trend_lookbacks' parameter of CycleTrader must be a tuple "
                              f"of durations such as ('1h', '4h'). Got {self.trend_lookbacks!r}.")
        self._lookbacks_ns = [timeframe_ns(v, name="trend_lookbacks") for v in self.trend_lookbacks]
        check_number(owner, "trend_tolerance_pct", self.trend_tolerance_pct, low_open=False)
        check_number(owner, "trailing_pct", self.trailing_pct, high=100)
        check_number(owner, "min_profit_pct", self.min_profit_pct, low_open=False)
        check_number(owner, "stop_loss_pct", self.stop_loss_pct, high=100, optional=True)
        check_number(owner, "amount", self.amount, optional=True)
        timeframe_ns(self.every, name="every")

    def on_start(self, ctx: Context) -> None:
        self.state = {"phase": "buy", "high": None, "low": None, "seen": None, "pending": None,
                      "quantity": 0.0, "cost": 0.0, "entry_price": None, "last_buy": None,
                      "last_sell": None, "cycles": 0, "realized": 0.0, "next_due": None}

    # ------------------------------------------------------------------ decisions
    def on_bar(self, ctx: Context) -> None:
        st = self.state
        if not cadence_due(st, ctx.now.value, int(self.every_ns or 0)):
            return
        candles = closed_candles(ctx, self.symbol)
        if not candles.ready or self._waiting(ctx):
            return
        self._track(candles)
        price = candles.price
        if st["phase"] == "buy":
            self._maybe_buy(ctx, candles, price)
        else:
            self._maybe_sell(ctx, price)

    def _waiting(self, ctx: Context) -> bool:
        """An order sent earlier that has not filled yet (live: fills arrive later)."""
        cid = self.state["pending"]
        if cid is None:
            return False
        order = ctx.broker.fetch_order(cid)
        if order.is_open:
            return True
        if not is_done(order):  # rejected or cancelled: the decision is void
            self.state["pending"] = None
        return False

    def _track(self, candles: Candles) -> None:
        """Raise the tracked high (and move the low) with every close since the last look."""
        st = self.state
        start = candles.row if st["seen"] is None else candles.row_at(st["seen"]) + 1
        for close in candles.close[max(start, 0): candles.row + 1]:
            if not math.isfinite(close):
                continue
            if st["high"] is None or close > st["high"]:
                st["high"] = st["low"] = float(close)
            elif close < st["low"]:
                st["low"] = float(close)
        st["seen"] = int(candles.time[candles.row] + candles.step)

    def _trends(self, candles: Candles) -> list[float] | None:
        """The change of the close over each look-back (None: not enough history)."""
        now = int(candles.time[candles.row] + candles.step)
        out = []
        for lookback in self._lookbacks_ns:
            r = candles.row_at(now - lookback)
            if r < 0 or not np.isfinite(candles.last[r]):
                return None
            out.append(candles.price / float(candles.last[r]) - 1.0)
        return out

    def _maybe_buy(self, ctx: Context, candles: Candles, price: float) -> None:
        st = self.state
        drop = 1.0 - price / st["high"]
        if drop < float(self.buy_drop_pct) / 100.0 - 1e-12:
            return
        trends = self._trends(candles)
        floor = -float(self.trend_tolerance_pct) / 100.0
        if trends is None or any(change < floor for change in trends):
            ctx.note("dip, but the trend is falling", price=price, high=st["high"],
                     trends=trends)
            return
        value = quote_to_spend(ctx, self.amount)
        if value <= 0:
            return
        order = ctx.buy(self.symbol, value=value, leg="buy", tag="cycle_buy")
        st["pending"] = order.client_id
        ctx.note("buy the dip", price=price, high=st["high"], drop_pct=drop * 100,
                 trends=trends)

    def _maybe_sell(self, ctx: Context, price: float) -> None:
        st = self.state
        if self.stop_loss_pct is not None and \
                price <= st["entry_price"] * (1.0 - float(self.stop_loss_pct) / 100.0):
            self._sell(ctx, price, "stop_loss")
            return
        below_top = price <= st["high"] * (1.0 - float(self.trailing_pct) / 100.0)
        net = net_return(st["cost"], st["quantity"], price, ctx.taker_fee)
        if below_top and net >= float(self.min_profit_pct) / 100.0 - 1e-12:
            self._sell(ctx, price, "trailing_stop", net_pct=net * 100)

    def _sell(self, ctx: Context, price: float, why: str, **values: float) -> None:
        st = self.state
        quantity = min(st["quantity"], ctx.position(self.symbol))
        order = ctx.sell(self.symbol, quantity, leg="sell", tag=why)
        st["pending"] = order.client_id
        ctx.note(why, price=price, high=st["high"], entry=st["entry_price"], **values)

    # ------------------------------------------------------------------ fills
    def on_fill(self, ctx: Context, fill: Fill) -> None:
        st = self.state
        order = ctx.broker.fetch_order(fill.client_id)
        if not self._own(order) or not is_done(order):
            return
        st["pending"] = None
        price = float(order.average_price)
        if order.side is OrderSide.BUY:
            st.update(phase="sell", quantity=float(order.filled_quantity),
                      cost=filled_cost(order), entry_price=price, high=price, low=price,
                      last_buy={"time": iso(fill.time.value), "price": price})
        else:
            profit = filled_proceeds(order) - st["cost"]
            st.update(phase="buy", quantity=0.0, cost=0.0, entry_price=None, high=price,
                      low=price, cycles=st["cycles"] + 1, realized=st["realized"] + profit,
                      last_sell={"time": iso(fill.time.value), "price": price,
                                 "profit": profit})

    def _own(self, order: Any) -> bool:
        """Whether a filled order is this cycle's buy or sell: the pending one, or — when the
        saved state knows of none (a restart from the state of the tick before the order
        was sent, the runner handing its fill over again) — an order of this symbol with the
        side and tag of the current phase."""
        st = self.state
        if order.client_id == st["pending"]:
            return True
        if st["pending"] is not None or order.symbol != self.symbol:
            return False
        if st["phase"] == "buy":
            return order.side is OrderSide.BUY and order.tag == "cycle_buy"
        return order.side is OrderSide.SELL and order.tag in ("stop_loss", "trailing_stop")

    def report(self, price: float) -> dict:
        """``phase``, ``cycles``, ``realized_pnl``, the open position (``quantity``,
        ``cost``, ``unrealized_pnl`` at ``price``), ``tracked_high``/``tracked_low``,
        ``last_buy``/``last_sell``."""
        st = self.state
        qty = st.get("quantity", 0.0)
        return {"phase": st.get("phase"), "cycles": st.get("cycles", 0),
                "realized_pnl": st.get("realized", 0.0), "quantity": qty,
                "cost": st.get("cost", 0.0),
                "unrealized_pnl": qty * float(price) - st.get("cost", 0.0) if qty else 0.0,
                "tracked_high": st.get("high"), "tracked_low": st.get("low"),
                "last_buy": st.get("last_buy"), "last_sell": st.get("last_sell")}
