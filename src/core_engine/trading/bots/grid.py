"""GridTrader: buy low, sell one level higher, over and over, inside a price range.

In the trader's words: "Between 20,000 and 40,000 I put 20 price levels. Below the price I
rest a limit buy at every level, above it a limit sell (bought at the start). When a buy
fills I rest a sell one level up; when a sell fills I rest a buy one level down. Each
buy-then-sell is one grid profit. If the price breaks out of the range I stop (and, if I
said so, sell what the grid holds)."

The bot trades only through resting orders, so a replay jumps from fill to fill.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from core_engine._validate import check_integer, check_real
from core_engine.errors import ConfigError
from core_engine.trading.bots._common import (
    ActsOnKnownFills,
    check_choice,
    check_int,
    check_number,
    check_symbol,
    closed_candles,
    fees,
    filled_cost,
    filled_proceeds,
    is_done,
)
from core_engine.trading.orders import OrderSide
from core_engine.trading.trader import Context, Trader

__all__ = ["GridTrader", "grid_levels"]

SPACINGS = ("arithmetic", "geometric")
ON_EXIT = ("stop", "liquidate", "continue")
#: The most levels a grid may have (it sizes an array; more is certainly a mistake).
MAX_LEVELS = 100_000


def grid_levels(low: float, high: float, levels: int, spacing: str = "arithmetic") -> np.ndarray:
    """The ``levels`` prices of a grid from ``low`` to ``high`` (both included): equal steps
    (``arithmetic``) or equal ratios (``geometric``).

    >>> grid_levels(100, 200, 3).tolist()
    [100.0, 150.0, 200.0]
    >>> grid_levels(100, 400, 3, "geometric").round(6).tolist()
    [100.0, 200.0, 400.0]
    """
    low = check_real(low, "low", "grid_levels")
    high = check_real(high, "high", "grid_levels")
    levels = check_integer(levels, "levels", "grid_levels", low=2, high=MAX_LEVELS)
    check_choice("grid_levels", "spacing", spacing, SPACINGS)
    if spacing == "geometric" and not 0 < low <= high:
        raise ConfigError("A geometric grid needs 0 < 'low' <= 'high'. "
                          f"Got low={low!r}, high={high!r}.")
    k = np.arange(levels, dtype=np.float64) / (levels - 1)
    if spacing == "geometric":
        out = low * (high / low) ** k
    else:
        out = low + (high - low) * k
    out[0], out[-1] = low, high
    return out


class GridTrader(ActsOnKnownFills, Trader):
    """A spot grid on one pair: resting limit buys below the price, sells above it.

    Parameters
    ----------
    symbol : str
        The pair, e.g. ``"BTC/USDT"``.
    low, high : float
        The range: the lowest and the highest grid level (required).
    levels : int
        Number of price levels from ``low`` to ``high`` included (at least 2); the grid has
        ``levels - 1`` slots, each a buy at one level and a sell at the next.
    spacing : {"arithmetic", "geometric"}
        Equal price steps or equal ratios between levels.
    amount_per_level : float
        Quote value of each slot: a slot at level ``p`` trades ``amount_per_level / p`` base
        units (the same quantity for its buy and its sell; the fee is on top).
    on_exit : {"stop", "liquidate", "continue"}
        When the price leaves the range: cancel every grid order (``stop``), also sell what
        the grid holds at the next open (``liquidate``), or keep trading (``continue``).

    Notes
    -----
    **Start.** At the first open after a candle has closed, with the last close ``P``
    inside ``[low, high]``: every slot whose buy level is below ``P`` rests a limit buy
    there; the others (buy level at or above ``P``) are bought at once with one market
    order and rest their sell one level up. So the level just above ``P`` has no order, as
    on the exchanges' grid bots. The account must hold the cash for all of it, else
    :class:`ConfigError` (the price outside the range, too).

    **Cycles.** A filled buy at level ``i`` is replaced by a sell of the same quantity at
    level ``i + 1``; a filled sell by a buy at level ``i``. A slot's profit per cycle is
    ``q × (p[i+1] − p[i])`` less both fees (maker on limit orders); a grid whose step does
    not cover two fees loses on every cycle (a warning says so). Orders are replaced when
    completely filled.

    **Range exit.** After the grid's outermost order fills (the buy at ``low`` or the sell
    at ``high``), the bot reads the close of the candle where it filled: below ``low`` or
    above ``high``, the price has left the range and ``on_exit`` applies at the next open.
    (A price that later drifts out without taking an outermost order is not watched:
    nothing rests there, and the grid simply waits with its orders in place.)

    **Fills inside a candle** are acted on at the next open, when the candle has closed
    (as a live runner learns of them); fills at an open are acted on at once.

    **Reports.** :meth:`report` separates the *grid profit* (every completed buy-then-sell
    of a slot, fees of both legs deducted; the start's market buy counts as the buy of the
    slots it filled) from the *inventory*: the base the grid holds, its cost (fees
    included) and its value at a price, plus what a liquidation realised. Their sum is the
    account's change.

    **Restarts.** Everything the bot needs lives in ``self.state`` (levels, quantities, the
    client id and cost of each slot's order, profits), so a runner that restores it with
    :meth:`set_state` resumes the grid with the orders still resting at the exchange.

    Examples
    --------
    >>> GridTrader(low=20_000, high=40_000, levels=21)
    GridTrader(low=20000, high=40000, levels=21)
    """

    name = "grid"

    def __init__(self, symbol: str = "BTC/USDT", low: float | None = None,
                 high: float | None = None, levels: int = 10, spacing: str = "arithmetic",
                 amount_per_level: float = 100.0, on_exit: str = "stop") -> None:
        self.symbol = symbol
        self.low = low
        self.high = high
        self.levels = levels
        self.spacing = spacing
        self.amount_per_level = amount_per_level
        self.on_exit = on_exit

    def _validate_params(self) -> None:
        owner = "GridTrader"
        check_symbol(owner, self.symbol)
        if self.low is None or self.high is None:
            raise ConfigError("GridTrader needs its range: give 'low' and 'high' (prices). Got "
                              f"low={self.low!r}, high={self.high!r}.")
        check_number(owner, "low", self.low)
        check_number(owner, "high", self.high)
        if not self.high > self.low:
            raise ConfigError(f"The 'high' parameter of GridTrader must be above 'low' "
                              f"({self.low!r}). Got {self.high!r}.")
        check_int(owner, "levels", self.levels, minimum=2)
        check_choice(owner, "spacing", self.spacing, SPACINGS)
        check_number(owner, "amount_per_level", self.amount_per_level)
        check_choice(owner, "on_exit", self.on_exit, ON_EXIT)

    @property
    def every_ns(self) -> int | None:
        """No cadence: the grid acts on fills and on the wake-ups it asks for."""
        return 0

    # ------------------------------------------------------------------ set-up
    def on_start(self, ctx: Context) -> None:
        self.state = {"status": "waiting", "grid_profit": 0.0, "cycles": 0, "exit_pnl": 0.0,
                      "fees": 0.0}
        self._setup(ctx)

    def _setup(self, ctx: Context) -> None:
        candles = closed_candles(ctx, self.symbol)
        if not candles.ready:  # nothing has closed yet: start at the next open
            ctx.wake_at(ctx.now + pd.Timedelta(candles.step, "ns"))
            return
        price = candles.price
        low, high = float(self.low or 0), float(self.high or 0)  # set: validated
        if not low <= price <= high:
            raise ConfigError(f"GridTrader: the price of {self.symbol} at {ctx.now} is "
                              f"{price:,.8g}, outside the range [low={low:,.8g}, "
                              f"high={high:,.8g}]; set a range around the price.")
        prices = grid_levels(low, high, int(self.levels), self.spacing).tolist()
        qty = [float(self.amount_per_level) / p for p in prices[:-1]]
        sell_side = [i for i in range(len(qty)) if prices[i] >= price]
        maker, taker = fees(ctx)
        self._check_cash(ctx, price, qty, sell_side, maker, taker)
        self._warn_fees(ctx, prices, maker)
        st = self.state
        st.update(status="running", prices=prices, qty=qty, orders={},
                  slots=[{"side": "buy", "n": 0, "order": None, "cost": 0.0} for _ in qty])
        ctx.note("grid placed", price=price, levels=len(prices), buys=len(qty) - len(sell_side),
                 sells=len(sell_side))
        if sell_side:
            order = ctx.buy(self.symbol, quantity=sum(qty[i] for i in sell_side),
                            leg="inventory", tag="grid_inventory")
            self._require_placed(order)
            st["inventory"] = {"order": order.client_id, "slots": sell_side}
        for i in range(len(qty)):
            if i not in sell_side:
                self._place(ctx, i, OrderSide.BUY)

    def _check_cash(self, ctx: Context, price: float, qty: list[float], sell_side: list[int],
                    maker: float, taker: float) -> None:
        need = sum(float(self.amount_per_level) * (1 + maker) for i in range(len(qty))
                   if i not in sell_side)
        need += sum(qty[i] for i in sell_side) * price * (1 + taker) * 1.02  # the open may move
        if ctx.cash < need:
            raise ConfigError(
                f"GridTrader: the grid needs about {need:,.2f} of cash ({len(qty)} slots of "
                f"amount_per_level={self.amount_per_level!r}, fees included); the account has "
                f"{ctx.cash:,.2f}. Lower 'amount_per_level' or 'levels'.")

    def _warn_fees(self, ctx: Context, prices: list[float], maker: float) -> None:
        step = min(b / a for a, b in zip(prices[:-1], prices[1:], strict=True)) - 1.0
        if step <= 2 * maker / (1 - maker):
            text = (f"GridTrader: the smallest grid step ({step:.4%}) does not cover the two "
                    f"maker fees of a cycle ({2 * maker:.4%}); every cycle loses money.")
            ctx.note(text)
            warnings.warn(text, stacklevel=3)

    @staticmethod
    def _require_placed(order: Any) -> None:
        if order.status.value == "rejected":
            raise ConfigError(f"GridTrader: order {order.client_id} ({order.side.value} "
                              f"{order.quantity:,.8g} {order.symbol}) was rejected "
                              f"({order.reason}); the account cannot carry the grid.")

    def _place(self, ctx: Context, i: int, side: OrderSide) -> None:
        st = self.state
        slot = st["slots"][i]
        slot["n"] += 1
        level = i if side is OrderSide.BUY else i + 1
        order = ctx.order(self.symbol, side.value, st["qty"][i], type="limit",
                          price=st["prices"][level], leg=f"{side.value}{i}-{slot['n']}",
                          tag=f"grid_{side.value}")
        self._require_placed(order)
        slot.update(side=side.value, order=order.client_id)
        st["orders"][order.client_id] = i

    # ------------------------------------------------------------------ events
    def on_known_fill(self, ctx: Context, client_id: str, closed: bool) -> None:
        st = self.state
        order = ctx.broker.fetch_order(client_id)
        if not is_done(order):
            return
        inventory = st.get("inventory")
        if inventory is not None and client_id == inventory["order"]:
            st["fees"] += float(order.fees)
            self._inventory_filled(ctx, order)
            return
        if client_id == st.get("exit_order"):
            st["fees"] += float(order.fees)
            st["exit_pnl"] += filled_proceeds(order) - st.pop("exit_cost")
            return
        i = st.get("orders", {}).pop(client_id, None)
        if i is None:
            return
        st["fees"] += float(order.fees)
        slot = st["slots"][i]
        running = st["status"] == "running"
        if order.side is OrderSide.BUY:
            slot.update(side="sell", cost=filled_cost(order), order=None)
            edge = "low" if i == 0 else None
        else:
            profit = filled_proceeds(order) - slot["cost"]
            st["grid_profit"] += profit
            st["cycles"] += 1
            slot.update(side="buy", cost=0.0, order=None)
            ctx.note("grid cycle", slot=i, profit=profit)
            edge = "high" if i == len(st["slots"]) - 1 else None
        if not running:  # filled while the grid stopped: counted, not replaced
            return
        self._place(ctx, i, OrderSide.SELL if order.side is OrderSide.BUY else OrderSide.BUY)
        if edge is not None and self.on_exit != "continue":
            self._watch(ctx, edge, closed)

    def _watch(self, ctx: Context, edge: str, closed: bool) -> None:
        """Check the close of the candle where the outermost order filled: at once when it
        has closed (after every fill known now is handled), else (a fill at this open) at
        the next open."""
        step = 0 if closed else closed_candles(ctx, self.symbol).step
        self.state["watch"] = {"edge": edge, "at": ctx.now.value + step}
        ctx.wake_at(ctx.now + pd.Timedelta(step, "ns"))

    def _inventory_filled(self, ctx: Context, order: Any) -> None:
        st = self.state
        slots = st.pop("inventory")["slots"]
        total = sum(st["qty"][i] for i in slots)
        cost = filled_cost(order)
        for i in slots:
            st["slots"][i]["cost"] = cost * st["qty"][i] / total
            self._place(ctx, i, OrderSide.SELL)

    def on_bar(self, ctx: Context) -> None:
        st = self.state
        if st.get("status") == "waiting":
            self._setup(ctx)
            return
        self.flush_fills(ctx)
        watch = st.get("watch")
        if watch is None or ctx.now.value < watch["at"]:
            return
        del st["watch"]
        self._check_range(ctx, watch["edge"])

    def _check_range(self, ctx: Context, edge: str) -> None:
        st = self.state
        if st.get("status") != "running":
            return
        close = closed_candles(ctx, self.symbol).price
        low, high = st["prices"][0], st["prices"][-1]
        if (edge == "high" and close > high) or (edge == "low" and close < low):
            self._exit(ctx, close, edge)

    def _exit(self, ctx: Context, close: float, edge: str) -> None:
        st = self.state
        st["status"] = "stopped"
        for cid in list(st["orders"]):
            ctx.cancel(cid)
        st["orders"] = {}
        held = [s for s in st["slots"] if s["side"] == "sell"]
        quantity = sum(st["qty"][i] for i, s in enumerate(st["slots"]) if s["side"] == "sell")
        ctx.note("range exit", close=close, edge=edge, held=quantity, action=self.on_exit)
        if self.on_exit == "liquidate" and quantity > 0:
            quantity = min(quantity, ctx.position(self.symbol))
            order = ctx.sell(self.symbol, quantity, leg="exit", tag="grid_exit")
            st["exit_order"] = order.client_id
            st["exit_cost"] = sum(s["cost"] for s in held)
            for s in held:
                s.update(side="buy", cost=0.0)
        for s in st["slots"]:
            s["order"] = None

    # ------------------------------------------------------------------ report
    def report(self, price: float) -> dict:
        """Grid profit apart from the inventory, the inventory marked at ``price``.

        Returns
        -------
        dict
            ``grid_profit`` and ``cycles`` (completed buy-then-sell cycles), ``inventory``
            (base held by the grid), ``inventory_cost`` (what it cost, fees included),
            ``inventory_value`` (at ``price``), ``exit_pnl`` (realised by a liquidation),
            ``inventory_pnl`` (value − cost + exit_pnl), ``total_pnl`` (grid profit +
            inventory P&L), ``fees`` (every fee the grid paid) and ``status``.
        """
        st = self.state
        slots = st.get("slots", [])
        held = sum(st["qty"][i] for i, s in enumerate(slots) if s["side"] == "sell")
        cost = sum(s["cost"] for s in slots if s["side"] == "sell")
        value = held * float(price) if held else 0.0
        inventory_pnl = value - cost + st.get("exit_pnl", 0.0)
        return {"status": st.get("status", "new"), "grid_profit": st.get("grid_profit", 0.0),
                "cycles": st.get("cycles", 0), "inventory": held, "inventory_cost": cost,
                "inventory_value": value, "exit_pnl": st.get("exit_pnl", 0.0),
                "inventory_pnl": inventory_pnl,
                "total_pnl": st.get("grid_profit", 0.0) + inventory_pnl,
                "fees": st.get("fees", 0.0)}
