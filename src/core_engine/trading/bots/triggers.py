"""PriceTriggerTrader: manual trading by price levels, each firing once.

In the trader's words: "Buy 1,000 USDT of BTC if it comes down to 30,000. Once I have it,
get me out at 28,000 if it breaks down, or at 36,000 if it runs. For ETH I already hold
some: sell it all at 2,500." Every level rests at the broker as an order, so nothing is
missed between two looks at the chart and a replay jumps from one trigger to the next.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from core_engine.errors import ConfigError
from core_engine.strategies.base import did_you_mean
from core_engine.trading.bots._common import (
    ActsOnKnownFills,
    check_number,
    check_symbol,
    closed_candles,
    is_done,
    iso,
)
from core_engine.trading.orders import OrderSide
from core_engine.trading.trader import Context, Trader

__all__ = ["PriceTriggerTrader"]

KEYS = ("buy", "amount", "quantity", "sell", "stop_loss", "take_profit")
EXITS = ("stop_loss", "sell", "take_profit")  # placed in this order: the stop is matched first


def _check_levels(symbol: str, levels: Any) -> None:
    where = f"PriceTriggerTrader triggers[{symbol!r}]"
    if not isinstance(levels, dict) or not levels:
        raise ConfigError(f"{where} must be a non-empty dict of levels such as "
                          f"{{'buy': 30000, 'amount': 1000}}. Got {levels!r}.")
    for key in levels:
        if key not in KEYS:
            raise ConfigError(f"{where} has an unknown key {key!r}; valid keys are "
                              f"{list(KEYS)}.{did_you_mean(str(key), KEYS)}")
    for key in KEYS:
        check_number(where, key, levels.get(key), optional=True)
    if levels.get("buy") is not None and (levels.get("amount") is None) == \
            (levels.get("quantity") is None):
        raise ConfigError(f"{where}: a 'buy' level needs exactly one of 'amount' (quote) and "
                          f"'quantity' (base). Got amount={levels.get('amount')!r}, "
                          f"quantity={levels.get('quantity')!r}.")
    stop, target, buy = levels.get("stop_loss"), levels.get("take_profit"), levels.get("buy")
    if stop is not None and target is not None and not stop < target:
        raise ConfigError(f"{where}: 'stop_loss' ({stop!r}) must be below 'take_profit' "
                          f"({target!r}).")
    if buy is not None and stop is not None and not stop < buy:
        raise ConfigError(f"{where}: 'stop_loss' ({stop!r}) must be below the 'buy' level "
                          f"({buy!r}), or it would fire at once.")
    if buy is not None and target is not None and not buy < target:
        raise ConfigError(f"{where}: 'take_profit' ({target!r}) must be above the 'buy' level "
                          f"({buy!r}).")


class PriceTriggerTrader(ActsOnKnownFills, Trader):
    """User-set buy, sell, stop-loss and take-profit levels per symbol, each firing once.

    Parameters
    ----------
    triggers : dict
        ``{symbol: levels}``; ``levels`` holds any of:

        * ``buy`` — the price to buy at: a limit buy when it is below the last close, a
          stop buy (buy when the price rises to it) otherwise; with ``amount`` (quote
          value, fee on top) or ``quantity`` (base units);
        * ``stop_loss`` — sell the position when the price falls to it (stop order);
        * ``take_profit`` — sell the position when the price rises to it (limit order);
        * ``sell`` — sell the position at this price (a limit above the last close, a stop
          below it).

        The exits protect the position the ``buy`` opened, or, without ``buy``, the
        position already held at the start. They rest together in one OCO group once there
        is a position: the first to fill cancels the others.

    Notes
    -----
    Levels fill with the SimBroker rules (at the level, or at the open when the price gaps
    through it; the stop first when a candle reaches the stop and the target). What fired,
    when and at what price is in ``self.state`` (and in :meth:`report`); a restarted runner
    resumes with the same levels resting.

    Examples
    --------
    >>> PriceTriggerTrader({"BTC/USDT": {"buy": 30_000, "amount": 1_000, "stop_loss": 28_000}})
    PriceTriggerTrader(triggers={'BTC/USDT': {'buy': 30000, 'amount': 1000, 'stop_loss': 28000}})
    """

    name = "triggers"

    def __init__(self, triggers: dict | None = None) -> None:
        self.triggers = triggers

    def _validate_params(self) -> None:
        if not isinstance(self.triggers, dict) or not self.triggers:
            raise ConfigError("The 'triggers' parameter of PriceTriggerTrader must be a "
                              "non-empty dict {symbol: {level: price}}. Got "
                              f"{self.triggers!r}.")
        for symbol, levels in self.triggers.items():
            check_symbol("PriceTriggerTrader", symbol, name="triggers")
            _check_levels(symbol, levels)

    @property
    def every_ns(self) -> int | None:
        """No cadence: the levels rest as orders; the bot acts on fills."""
        return 0

    def on_start(self, ctx: Context) -> None:
        self.state = {symbol: {"status": "waiting", "orders": {}, "fired": []}
                      for symbol in self.triggers}  # type: ignore[union-attr]
        self.on_bar(ctx)

    def on_bar(self, ctx: Context) -> None:
        self.flush_fills(ctx)
        for symbol, levels in self.triggers.items():  # type: ignore[union-attr]
            if self.state[symbol]["status"] == "waiting":
                self._arm(ctx, symbol, levels)

    def _arm(self, ctx: Context, symbol: str, levels: dict) -> None:
        candles = closed_candles(ctx, symbol)
        if not candles.ready:  # no price yet to tell a limit from a stop
            ctx.wake_at(ctx.now + pd.Timedelta(candles.step, "ns"))
            return
        st = self.state[symbol]
        price = candles.price
        st["status"] = "armed"
        if levels.get("buy") is not None:
            buy = float(levels["buy"])
            kind = "limit" if buy < price else "stop"
            size = ({"value": float(levels["amount"])} if levels.get("amount") is not None
                    else {"quantity": float(levels["quantity"])})
            order = ctx.buy(symbol, type=kind, price=buy, leg="buy", tag="buy", **size)
            if order.status.value == "rejected":  # the account cannot pay it: say so, stop
                st["status"] = "done"
                ctx.note("buy level rejected", symbol=symbol, reason=order.reason)
                return
            st["orders"][order.client_id] = "buy"
            ctx.note("buy level placed", symbol=symbol, level=buy, kind=kind, price=price)
        elif ctx.position(symbol) > 0:
            self._arm_exits(ctx, symbol, ctx.position(symbol), price)
        else:
            st["status"] = "done"
            ctx.note("no buy level and nothing held: the exits have no position",
                     symbol=symbol)

    def _arm_exits(self, ctx: Context, symbol: str, quantity: float, price: float) -> None:
        levels = self.triggers[symbol]  # type: ignore[index]
        st = self.state[symbol]
        group = f"exits-{symbol}"
        for key in EXITS:
            level = levels.get(key)
            if level is None:
                continue
            level = float(level)
            kind = {"stop_loss": "stop", "take_profit": "limit"}.get(
                key, "limit" if level > price else "stop")
            order = ctx.sell(symbol, quantity, type=kind, price=level, group=group, leg=key,
                             tag=key)
            st["orders"][order.client_id] = key
        if not st["orders"]:
            st["status"] = "done"

    def on_known_fill(self, ctx: Context, client_id: str, closed: bool) -> None:
        order = ctx.broker.fetch_order(client_id)
        if not is_done(order):
            return
        for symbol, st in self._symbols():
            key = st["orders"].pop(client_id, None)
            if key is None:
                continue
            st["fired"].append({"level": key, "time": iso(order.updated_at.value),
                                "price": float(order.average_price),
                                "quantity": float(order.filled_quantity)})
            ctx.note(f"{key} fired", symbol=symbol, price=float(order.average_price))
            if order.side is OrderSide.BUY:
                self._arm_exits(ctx, symbol, float(order.filled_quantity),
                                float(order.average_price))
            else:  # one exit fired: the broker cancelled its OCO siblings
                st["orders"] = {}
                st["status"] = "done"
            return

    def report(self) -> dict:
        """Per symbol: ``status`` (waiting, armed, done), the levels still resting and the
        ``fired`` ones with time, price and quantity."""
        return {symbol: {"status": st["status"], "resting": sorted(st["orders"].values()),
                         "fired": list(st["fired"])} for symbol, st in self._symbols()}

    def _symbols(self) -> list[tuple[str, dict]]:
        return [(s, self.state[s]) for s in self.triggers or {} if s in self.state]
