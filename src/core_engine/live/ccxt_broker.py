"""CCXTBroker: the Broker protocol on a real exchange through ccxt (Binance, Kraken, ...).

* Orders carry our client id in the exchange's parameter
  (:func:`core_engine.live.exchange_params.create_call`); they are found and cancelled by it.
* ``market``, ``limit`` and ``stop`` orders; a stop is an exchange-side stop-loss (Binance
  ``STOP_LOSS``, Kraken ``stop-loss``), so a position stays protected while the runner is
  down. :meth:`CCXTBroker.prepare` sizes an order before it is journaled: a quote-amount buy
  becomes a base quantity at the last price (fee on top), a sell is cut to the free balance
  (Binance takes a buy's fee in the bought asset, so a position is a little smaller than the
  entry's quantity), and quantities are rounded down to the market's lot step.
* One exchange-side exit per position: spot exchanges lock the balance of every open sell, so
  when a group (the trader's OCO group) already has an open sell, a second resting sell (a
  take-profit next to the stop) is refused with a clear message and the stop stays. Before a
  market sell of the group (the exit) the runner cancels the group's open sells, journaled
  ("cancelled when the position closes"), and cancels what is left of a group once one of
  its sells has filled.
* Partial fills: an order is ``partially_filled`` while open with fills; fills come from the
  exchange's trade list, one per trade id, with the fee in its own asset
  (:class:`ExchangeFill`).
* Errors as :class:`~core_engine.live.ccxt_session.CCXTSession` maps them; a create or cancel
  whose outcome is unknown raises :class:`~core_engine.errors.BrokerUnavailable` (the runner
  journals the order ``unknown`` and resolves it by client id).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import did_you_mean, keyword_checked
from core_engine._validate import check_instance, check_symbols
from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError, OrderNotFound, OrderRejected, StopWouldTrigger
from core_engine.live.ccxt_session import CCXTSession, to_order, to_trade
from core_engine.live.exchange_params import SUPPORTED_EXCHANGES, create_call, lookup_params
from core_engine.live.keys import KeyRing
from core_engine.trading.orders import Fill, Order, OrderSide, OrderStatus, OrderType

__all__ = ["CCXTBroker", "ExchangeFill"]

_DAY_MS = 24 * 3600 * 1000


@keyword_checked
@dataclass(frozen=True)
class ExchangeFill(Fill):
    """A fill whose fee is paid in ``fee_asset`` (Binance: the received asset); ``order_id``
    is the exchange's id of its order (the runner finds our client id by it when this broker
    did not know the order: placed before a restart, or its create's answer was lost)."""

    fee_asset: str = ""
    order_id: str = ""


class CCXTBroker:
    """A :class:`~core_engine.trading.broker.Broker` on an exchange through ccxt.

    Parameters
    ----------
    exchange_id : str
        ``"binance"`` or ``"kraken"`` (the exchanges whose order parameters are written and
        tested, :mod:`core_engine.live.exchange_params`).
    keys : KeyRing, optional
        Default: ``KeyRing.from_env(exchange_id)``.
    sandbox : bool, default False
        The exchange's testnet (ccxt ``set_sandbox_mode``).
    symbols : list of str
        The universe (fills and open orders are read per symbol).
    clock : object with ``now()``, optional
        Default: the wall clock.
    price_timeframe : str, default "1m"
        Candles whose last close prices a quote-amount order.
    session : CCXTSession, optional
        A prepared session (tests point one at a local fake exchange).
    **session_options
        Passed to :class:`CCXTSession` (``config``, ``configure``, ``read_retries``, ...).
    """

    handles_groups = False
    exit_cancels_group = True  # the runner cancels a group's resting sells before its exit

    def __init__(self, exchange_id: str, *, keys: KeyRing | None = None, sandbox: bool = False,
                 symbols: list[str], clock: Any = None, session: CCXTSession | None = None,
                 price_timeframe: str = "1m", **session_options: Any) -> None:
        # checked before a key is read or a ccxt object is built; 'keys' is named by its type
        # only (a user who passes a dict of keys must not see them printed)
        where = "CCXTBroker"
        if not isinstance(exchange_id, str) or exchange_id not in SUPPORTED_EXCHANGES:
            hint = did_you_mean(exchange_id, SUPPORTED_EXCHANGES) if isinstance(
                exchange_id, str) else ""
            raise ConfigError(f"The 'exchange_id' parameter of {where} must be one of "
                              f"{list(SUPPORTED_EXCHANGES)} (the exchanges whose order "
                              f"parameters are written). Got {exchange_id!r:.80}.{hint}")
        check_instance(keys, KeyRing, "keys", where, optional=True, show_value=False,
                       expected="a KeyRing (KeyRing.from_env(exchange_id))")
        check_instance(session, CCXTSession, "session", where, optional=True)
        if session is not None and session.exchange_id != exchange_id:
            raise ConfigError(f"The 'session' parameter of {where} is a session of "
                              f"{session.exchange_id!r}, not of {exchange_id!r}.")
        if session is not None and (keys is not None or sandbox or session_options):
            given = [n for n, v in (("keys", keys is not None), ("sandbox", sandbox),
                                    *((k, True) for k in session_options)) if v]
            raise ConfigError(f"The {given} parameter(s) of {where} configure the session it "
                              "builds, so they cannot go with a 'session' (which has its own): "
                              "pass them to CCXTSession, or drop 'session'.")
        if not symbols:
            raise ConfigError("CCXTBroker needs its 'symbols' (the universe it trades).")
        symbols = check_symbols(symbols, "symbols", where)
        if any(symbol.count("/") != 1 for symbol in symbols):
            raise ConfigError(f"The 'symbols' parameter of {where} must hold symbols such as "
                              f"'BTC/USDT'. Got {symbols!r:.80}.")
        if clock is not None and not callable(getattr(clock, "now", None)):
            raise ConfigError(f"The 'clock' parameter of {where} must have a now() method (a "
                              f"WallClock or SimulatedClock) or be None. Got {type(clock).__name__}.")
        timeframe_ns(price_timeframe, name="price_timeframe")
        self.exchange_id = exchange_id
        if session is None:
            session = CCXTSession(exchange_id, keys=keys or KeyRing.from_env(exchange_id),
                                  sandbox=sandbox, **session_options)
        self.session = session
        self.exchange = session.exchange
        self.symbols = list(symbols)
        self.clock = clock
        self.price_timeframe = price_timeframe
        self.quote = self.symbols[0].split("/")[1]
        self._orders: dict[str, Order] = {}
        self._by_exchange_id: dict[str, str] = {}
        self._markets_loaded = False
        self._balance: dict[str, Any] | None = None

    def invalidate(self) -> None:
        """Forget the cached balance (the runner calls it at each tick; writes do too)."""
        self._balance = None

    def _fetch_balance(self) -> dict[str, Any]:
        if self._balance is None:
            self._balance = self._call("balance", "fetch_balance")
        return self._balance

    def __repr__(self) -> str:
        return f"CCXTBroker({self.exchange_id!r}, symbols={self.symbols!r})"

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, what: str, method: str, *args: Any, write: bool = False) -> Any:
        if write:
            self._balance = None
        if not self._markets_loaded:
            self.session.call("load_markets", self.exchange.load_markets)
            self._markets_loaded = True
        return self.session.call(what, getattr(self.exchange, method), *args, write=write)

    def market(self, symbol: str) -> dict[str, Any]:
        if not self._markets_loaded:
            self._call("load_markets", "load_markets")
        return self.exchange.market(symbol)

    @property
    def taker_fee(self) -> float:
        return float(self.market(self.symbols[0]).get("taker") or 0.001)

    def tradable(self, symbol: str) -> bool:
        return bool(self.market(symbol).get("active", True))

    def now(self) -> pd.Timestamp:
        return self.clock.now() if self.clock is not None else pd.Timestamp.now(tz="UTC")

    def track(self, order: Order) -> None:
        """Know an order placed before a restart (the runner rebuilds it from the journal)."""
        self._orders.setdefault(order.client_id, order)
        if order.exchange_id:
            self._by_exchange_id[str(order.exchange_id)] = order.client_id

    # -- sizing -----------------------------------------------------------------------------

    def _floor(self, symbol: str, quantity: float) -> float:
        """``quantity`` rounded down to the lot step (0.0 when below one step)."""
        import ccxt

        if quantity <= 0:
            return 0.0
        try:
            return float(self.exchange.amount_to_precision(symbol, quantity))
        except ccxt.InvalidOrder:  # below the smallest step
            return 0.0

    def prepare(self, order: Order) -> Order:
        """The order as it will be sent: a base quantity within the balance and lot step.

        Raises
        ------
        OrderRejected
            A trailing stop (not placed on exchanges yet), a second resting sell in a group,
            or a quantity below the market's minimum after rounding.
        """
        if order.trail_pct is not None or order.trail_offset is not None:
            raise OrderRejected(f"Order {order.client_id}: trailing stops are not placed on "
                                f"{self.exchange_id} by CCXTBroker; use a fixed stop_price.")
        market = self.market(order.symbol)
        quantity = order.quantity
        if order.quote_quantity is not None:
            price = order.limit_price or self._last_price(order.symbol)
            quantity = order.quote_quantity / (price * (1.0 + self.taker_fee))
        assert quantity is not None
        if order.side is OrderSide.SELL:
            free = float(self._fetch_balance()["free"].get(market["base"], 0.0) or 0.0)
            quantity = min(quantity, free)
        quantity = self._floor(order.symbol, quantity)
        minimum = float((market.get("limits", {}).get("amount") or {}).get("min") or 0.0)
        if quantity <= 0 or quantity < minimum:
            raise OrderRejected(f"Order {order.client_id}: quantity {quantity:g} of "
                                f"{order.symbol} is below the market minimum {minimum:g} "
                                "(after rounding to the lot step and the free balance).")
        return replace(order, quantity=quantity, quote_quantity=None)

    def _last_price(self, symbol: str) -> float:
        rows = self._call("ohlcv", "fetch_ohlcv", symbol, self.price_timeframe, None, 2)
        if not rows:
            raise OrderRejected(f"No recent price for {symbol} on {self.exchange_id}.")
        return float(rows[-1][4])

    # -- the Broker protocol ----------------------------------------------------------------

    def _group_sells(self, order: Order) -> list[Order]:
        return [o for o in self._orders.values()
                if o.group and o.group == order.group and o.side is OrderSide.SELL
                and o.type is not OrderType.MARKET  # (an exit in doubt does not rest)
                and o.client_id != order.client_id and not o.is_final]

    def place(self, order: Order) -> Order:
        if order.quantity is None or order.quote_quantity is not None:
            order = self.prepare(order)
        if order.side is OrderSide.SELL and order.group:
            resting = self._group_sells(order)
            if resting and order.type is not OrderType.MARKET:
                order.status, order.reason = OrderStatus.REJECTED, "one_exit_per_position"
                raise OrderRejected(
                    f"Order {order.client_id}: group {order.group} already has the open sell "
                    f"{resting[0].client_id} on {self.exchange_id}; a spot exchange locks the "
                    "balance of each open sell, so one exchange-side exit is kept per position.")
        kind = {OrderType.MARKET: "market", OrderType.LIMIT: "limit",
                OrderType.STOP: "stop"}[order.type]
        call = create_call(self.exchange_id, client_id=order.client_id, symbol=order.symbol,
                           side=order.side.value, order_type=kind,
                           quantity=float(order.quantity or 0.0),
                           limit_price=order.limit_price, stop_price=order.stop_price)
        self._orders[order.client_id] = order
        try:
            raw = self._call("create_order", "create_order", *call.kwargs().values(), write=True)
        except StopWouldTrigger:
            if order.type is not OrderType.STOP:
                order.status, order.reason = OrderStatus.REJECTED, "would_trigger_immediately"
                raise
            raw = self._stop_at_market(order)
        except OrderRejected as exc:
            order.status, order.reason = OrderStatus.REJECTED, str(exc)
            raise
        return self._update(order, raw)

    def _stop_at_market(self, order: Order) -> dict[str, Any]:
        """A stop the market has already passed is refused by the exchange; the SimBroker
        fills it at the next open, so here it becomes a market order of its side and
        quantity under its own client id (the refused create never existed, so the id is
        free and a retry after a timeout is still found by it). Its ``reason`` says so."""
        call = create_call(self.exchange_id, client_id=order.client_id, symbol=order.symbol,
                           side=order.side.value, order_type="market",
                           quantity=float(order.quantity or 0.0))
        try:
            raw = self._call("create_order", "create_order", *call.kwargs().values(),
                             write=True)
        except OrderRejected as exc:
            order.status, order.reason = OrderStatus.REJECTED, str(exc)
            raise
        order.reason = "stop_through_when_placed"
        return raw

    def _update(self, order: Order, raw: dict[str, Any]) -> Order:
        seen = to_order(raw)
        order.exchange_id = seen.exchange_id
        self._by_exchange_id[seen.exchange_id] = order.client_id
        order.filled_quantity = seen.filled
        if seen.average_price is not None:
            order.average_price = seen.average_price
        if seen.status is not OrderStatus.UNKNOWN:
            order.status = seen.status
        return order

    def _symbol_of(self, client_id: str) -> list[str]:
        order = self._orders.get(client_id)
        return [order.symbol] if order is not None else list(self.symbols)

    def fetch_order(self, client_id: str) -> Order:
        for symbol in self._symbol_of(client_id):
            try:
                raw = self._call("fetch_order", "fetch_order", None, symbol,
                                 lookup_params(self.exchange_id, client_id))
            except OrderNotFound:
                continue
            order = self._orders.get(client_id) or _order_from_raw(client_id, raw)
            self._orders[client_id] = order
            return self._update(order, raw)
        raise OrderNotFound(f"{self.exchange_id} has no order with client id {client_id!r}.")

    def order_by_exchange_id(self, symbol: str, exchange_id: str) -> Order | None:
        """The order the exchange calls ``exchange_id`` (with our client id), or None when
        it is not found or carries no client id (the runner asks for the order of a trade
        it cannot attribute)."""
        try:
            raw = self._call("fetch_order", "fetch_order", str(exchange_id), symbol)
        except OrderNotFound:
            return None
        cid = raw.get("clientOrderId")
        if not cid:
            return None
        order = self._orders.get(cid) or _order_from_raw(cid, raw)
        self._orders[cid] = order
        return self._update(order, raw)

    def cancel(self, client_id: str) -> Order:
        symbols = self._symbol_of(client_id)
        try:
            raw = self._call("cancel_order", "cancel_order", None, symbols[0],
                             lookup_params(self.exchange_id, client_id), write=True)
        except OrderNotFound:  # already final (filled or cancelled): read its status
            return self.fetch_order(client_id)
        order = self._orders.get(client_id) or _order_from_raw(client_id, raw)
        self._orders[client_id] = order
        order = self._update(order, raw)
        if order.status is not OrderStatus.CANCELLED:
            order.status = OrderStatus.CANCELLED
        return order

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        out = []
        for raw in self._call("open_orders", "fetch_open_orders", symbol):
            cid = raw.get("clientOrderId")
            if not cid:
                continue
            order = self._orders.get(cid) or _order_from_raw(cid, raw)
            self._orders[cid] = order
            out.append(self._update(order, raw))
        return out

    def fills(self, since: Any = None) -> list[Fill]:
        since_ms = None if since is None else int(pd.Timestamp(since).value // 1_000_000)
        out: list[Fill] = []
        for symbol in self.symbols:
            for raw in self._trades(symbol, since_ms):
                trade = to_trade(raw)
                out.append(ExchangeFill(
                    trade_id=trade.trade_id,
                    client_id=self._by_exchange_id.get(trade.order_exchange_id, ""),
                    symbol=symbol, side=OrderSide(trade.side),
                    time=pd.Timestamp(trade.time_ms, unit="ms", tz="UTC"),
                    price=trade.price, quantity=trade.quantity, fee=trade.fee,
                    liquidity=trade.liquidity or "taker", fee_asset=trade.fee_asset,
                    order_id=trade.order_exchange_id))
        return sorted(out, key=lambda f: (f.time, f.symbol, _numeric(f.trade_id)))

    def _trades(self, symbol: str, since_ms: int | None) -> list[dict[str, Any]]:
        """The raw trades of ``symbol`` since ``since_ms`` (the latest ones without it), read
        in windows of at most a day (Binance answers no more than 24 hours from a start
        time) and pages of 1000."""
        if since_ms is None:
            return list(self._call("my_trades", "fetch_my_trades", symbol, None, 1000))
        out: list[dict[str, Any]] = []
        now_ms = int(self.now().value // 1_000_000)
        start = since_ms
        while start <= now_ms:
            end = start + _DAY_MS - 1  # the last window reaches past now (a clock skew)
            batch = self._call("my_trades", "fetch_my_trades", symbol, start, 1000,
                               {"until": end})
            out.extend(batch)
            if len(batch) >= 1000:  # a full page: the rest of this window from its last
                start = int(batch[-1]["timestamp"]) + 1
            else:
                start = end + 1
        return out

    def balances(self) -> dict[str, float]:
        total = self._fetch_balance()["total"]
        return {asset: float(v) for asset, v in total.items() if v}

    def candles(self, symbol: str, timeframe: str, since: Any = None,
                limit: int | None = None) -> pd.DataFrame:
        since_ms = None if since is None else int(pd.Timestamp(since).value // 1_000_000)
        # one more than asked: the exchange's last candle is usually the forming one
        rows = self._call("ohlcv", "fetch_ohlcv", symbol, timeframe, since_ms,
                          min((limit or 999) + 1, 1000))
        values = np.asarray(rows, dtype=float).reshape(-1, 6)
        step_ms = timeframe_ns(timeframe) // 1_000_000
        now_ms = self.now().value // 1_000_000
        values = values[values[:, 0] + step_ms <= now_ms]  # never the forming candle
        if limit is not None and since is None:
            values = values[-int(limit):]
        closed = pd.DataFrame({
            "timestamp": pd.to_datetime(values[:, 0].astype(np.int64), unit="ms", utc=True),
            "open": values[:, 1], "high": values[:, 2], "low": values[:, 3],
            "close": values[:, 4], "volume": values[:, 5]})
        return closed.reset_index(drop=True)


def _numeric(trade_id: str) -> float:
    try:
        return float(trade_id)
    except ValueError:
        return math.inf


def _order_from_raw(client_id: str, raw: dict[str, Any]) -> Order:
    kind = OrderType.STOP if raw.get("triggerPrice") else OrderType(
        "limit" if raw.get("type") == "limit" else "market")
    return Order(client_id=client_id, symbol=raw["symbol"], side=OrderSide(raw["side"]),
                 type=kind, quantity=float(raw.get("amount") or 0.0) or 1e-12,
                 limit_price=float(raw["price"]) if kind is OrderType.LIMIT and raw.get("price")
                 else None,
                 stop_price=float(raw["triggerPrice"]) if kind is OrderType.STOP else None)
