"""A local fake of the Binance spot REST API, for tests: ccxt's real ``binance`` class talks to it.

A threaded HTTP server on 127.0.0.1 answers the endpoints ccxt calls for spot trading
(``exchangeInfo``, ``klines``, ``order`` create/query/cancel, ``openOrders``, ``myTrades``,
``account``), checks the HMAC-SHA256 signature of signed requests the way Binance does
(over the query string followed by the body, key in ``X-MBX-APIKEY``) and keeps a real
account: balances (free/locked), resting orders and trades.

Time is simulated: the exchange sits at the open of one candle of each symbol; ``advance()``
closes that candle, fills resting orders against it (limit buy when the low reaches the price,
at the open on a gap; stop-loss sell when the low reaches the stop; take-profit sell when the
high reaches the target; stops before targets) and moves to the next. Market orders fill at
once at the current candle's open, split into one to three trades. ``max_volume_share`` caps
each candle's fill of a resting limit order (partial fills). Commission: ``fee_rate`` of what
is received, in the received asset (Binance's default without BNB).

Binance behaviours reproduced (codes as in Binance's spot API documentation, classes as ccxt
4.5 maps them): ``-2010 Duplicate order sent.`` for a client id already used by an *open* order
(a client id of a finished order may be reused, as on Binance), ``-2010 Account has
insufficient balance for requested action.``, ``-2010 Stop price would trigger immediately.``,
``-2013 Order does not exist.``, ``-2011 Unknown order sent.``, ``-1013 Filter failure:
LOT_SIZE``, ``-1022`` bad signature, ``-2015`` unknown key, ``-1021`` stale timestamp, HTTP 429 /
418 with ``Retry-After``; ``myTrades`` answers at most the 24 hours from ``startTime`` (or
up to ``endTime``): "The time between startTime and endTime can't be longer than 24 hours."

Faults (scripted with :meth:`FakeBinance.inject`, or at random with a seeded
:meth:`FakeBinance.random_faults`):

* ``timeout_after`` / ``drop_after`` — the request is processed and recorded, then the response
  is delayed past the client's timeout (or the connection is closed without an answer);
* ``timeout_before`` / ``drop_before`` — the request is dropped: nothing is recorded;
* ``http_429`` / ``http_418`` — rate limited / banned with ``Retry-After``;
* ``http_503`` — "Service Unavailable", execution status unknown (processed or not at random);
* ``not_found`` — a lookup answers ``-2013`` even though the order exists (a lagging replica);
* ``insufficient_funds`` — an order create (``POST /api/v3/order`` only) is refused with
  ``-2010 Account has insufficient balance for requested action.`` whatever the balance (the
  funds were taken meanwhile, e.g. by a manual trade): nothing is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import socket
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd

FAULT_KINDS = ("timeout_after", "drop_after", "timeout_before", "drop_before", "http_429",
               "http_418", "http_503", "not_found", "insufficient_funds")
CREATE = ("POST", "/api/v3/order")
INSUFFICIENT = "Account has insufficient balance for requested action."
EIGHT = Decimal("0.00000001")
DAY_MS = 24 * 3600 * 1000


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


def _s(value: Decimal) -> str:
    return format(value.quantize(EIGHT), "f")


class BinanceError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


@dataclass
class Fault:
    kind: str
    method: str | None = None
    path: str | None = None
    remaining: int = 1


@dataclass
class FakeOrder:
    order_id: int
    symbol: str
    client_id: str
    side: str  # BUY / SELL
    type: str  # MARKET, LIMIT, STOP_LOSS, TAKE_PROFIT
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    time_ms: int
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    quote_executed: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)
    update_ms: int = 0
    fills: list[dict] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


class FakeBinance:
    """The fake exchange. Use as a context manager; ``url`` is its base address.

    Parameters
    ----------
    candles : dict of str -> candle frame
        Unified symbol (``"BTC/USDT"``) to candles of one timeframe.
    timeframe : str
        Binance interval of the candles (``"5m"``).
    balances : dict of str -> float
        Opening free balances.
    keys : dict of str -> str
        API key -> secret accepted by the server.
    start : timestamp, optional
        Open time of the first current candle (default: the first candle).
    """

    def __init__(self, candles: dict[str, pd.DataFrame], *, timeframe: str = "5m",
                 balances: dict[str, float] | None = None, keys: dict[str, str] | None = None,
                 start: Any = None, fee_rate: float = 0.001, max_volume_share: float | None = None,
                 step_size: str = "0.00001", timeout_sleep: float = 0.4, seed: int = 0) -> None:
        self.timeframe = timeframe
        self.step_ms = int(pd.Timedelta(timeframe.replace("m", "min")).value // 1_000_000)
        self.candles = {}
        for symbol, frame in candles.items():
            ms = (frame["timestamp"].astype("int64") // 1_000_000).to_numpy()
            self.candles[symbol] = {
                "ms": ms, "index": {int(t): i for i, t in enumerate(ms)},
                "ohlcv": frame[["open", "high", "low", "close", "volume"]].to_numpy(float)}
        first = min(int(c["ms"][0]) for c in self.candles.values())
        self.now_ms = int(pd.Timestamp(start).value // 1_000_000) if start is not None else first
        self.keys = dict(keys or {})
        self.balances: dict[str, dict[str, Decimal]] = defaultdict(
            lambda: {"free": Decimal(0), "locked": Decimal(0)})
        for asset, amount in (balances or {}).items():
            self.balances[asset]["free"] = _d(amount)
        self.fee_rate = _d(fee_rate)
        self.max_volume_share = max_volume_share
        self.step = _d(step_size)
        self.timeout_sleep = timeout_sleep
        self.retry_after = 1  # seconds, the Retry-After of a 429 / 418
        self.orders: list[FakeOrder] = []
        self.trades: list[dict] = []
        self.client_id_count: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self.faults_fired: Counter[str] = Counter()
        self._faults: list[Fault] = []
        self._random_rates: dict[str, float] = {}
        self._random_paths: tuple[str, ...] = ()
        self._rng = random.Random(seed)
        self._split_rng = random.Random(seed + 1)
        self._next_order_id = 1000
        self._next_trade_id: Counter[str] = Counter()
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeBinance:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeBinance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def configure(self, exchange: Any) -> Any:
        """Point a ccxt ``binance`` instance at this server (spot only, no currency call)."""
        return point_ccxt_at(exchange, self.url)

    # -- faults -----------------------------------------------------------------------------

    def inject(self, kind: str, *, method: str | None = None, path: str | None = None,
               times: int = 1) -> None:
        """The next ``times`` requests matching ``method``/``path`` meet fault ``kind``."""
        assert kind in FAULT_KINDS, kind
        with self.lock:
            self._faults.append(Fault(kind, method, path, times))

    def clear_faults(self) -> None:
        """Drop the scripted faults not met yet."""
        with self.lock:
            self._faults = []

    def random_faults(self, rates: dict[str, float], *,
                      paths: tuple[str, ...] = ("/api/v3/order", "/api/v3/openOrders",
                                                "/api/v3/myTrades", "/api/v3/account",
                                                "/api/v3/klines")) -> None:
        """Each request to one of ``paths`` meets fault kind k with probability rates[k]."""
        assert set(rates) <= set(FAULT_KINDS), rates
        with self.lock:
            self._random_rates, self._random_paths = dict(rates), paths

    def _draw_fault(self, method: str, path: str) -> str | None:
        with self.lock:
            create = (method, path) == CREATE
            for fault in self._faults:
                if (fault.method in (None, method) and fault.path in (None, path)
                        and fault.remaining > 0
                        and (create or fault.kind != "insufficient_funds")):
                    fault.remaining -= 1
                    self._faults = [f for f in self._faults if f.remaining > 0]
                    self.faults_fired[fault.kind] += 1
                    return fault.kind
            if path in self._random_paths:
                for kind, rate in self._random_rates.items():
                    if kind == "not_found" and not (path == "/api/v3/order" and method == "GET"):
                        continue
                    if kind == "insufficient_funds" and not create:
                        continue
                    if self._rng.random() < rate:
                        self.faults_fired[kind] += 1
                        return kind
        return None

    # -- the clock and matching -------------------------------------------------------------

    def candle(self, symbol: str, ms: int | None = None) -> np.ndarray | None:
        data = self.candles[symbol]
        i = data["index"].get(self.now_ms if ms is None else ms)
        return None if i is None else data["ohlcv"][i]

    def advance(self, steps: int = 1) -> None:
        """Close the current candle of every symbol (filling resting orders), move on."""
        for _ in range(steps):
            with self.lock:
                for order in [o for o in self.orders if o.is_open]:
                    self._match_resting(order)
                self.now_ms += self.step_ms

    def _match_resting(self, order: FakeOrder) -> None:
        bar = self.candle(order.symbol)
        if bar is None:
            return
        o, h, low = _d(bar[0]), _d(bar[1]), _d(bar[2])
        remaining = order.quantity - order.executed
        if order.type == "LIMIT":
            hit = low <= order.price if order.side == "BUY" else h >= order.price
            if not hit:
                return
            price = min(o, order.price) if order.side == "BUY" else max(o, order.price)
            qty = remaining
            if self.max_volume_share is not None:
                cap = (_d(bar[4]) * _d(self.max_volume_share)).quantize(self.step, ROUND_DOWN)
                qty = min(qty, cap)
            if qty > 0:
                self._execute(order, qty, price, maker=True)
        elif order.type == "STOP_LOSS" and low <= order.stop_price:
            self._execute(order, remaining, min(o, order.stop_price), maker=False)
        elif order.type == "TAKE_PROFIT" and h >= order.stop_price:
            self._execute(order, remaining, max(o, order.stop_price), maker=False)

    def _execute(self, order: FakeOrder, qty: Decimal, price: Decimal, maker: bool) -> None:
        base, quote = order.symbol.split("/")
        quote_qty = (qty * price).quantize(EIGHT)
        trade_id = self._next_trade_id[order.symbol] = self._next_trade_id[order.symbol] + 1
        if order.side == "BUY":
            fee, fee_asset = (qty * self.fee_rate).quantize(EIGHT), base
            spent_from_lock = min(order.locked, quote_qty)
            order.locked -= spent_from_lock
            self.balances[quote]["locked"] -= spent_from_lock
            self.balances[quote]["free"] -= quote_qty - spent_from_lock
            self.balances[base]["free"] += qty - fee
        else:
            fee, fee_asset = (quote_qty * self.fee_rate).quantize(EIGHT), quote
            order.locked -= qty
            self.balances[base]["locked"] -= qty
            self.balances[quote]["free"] += quote_qty - fee
        order.executed += qty
        order.quote_executed += quote_qty
        order.status = "FILLED" if order.executed >= order.quantity else "PARTIALLY_FILLED"
        order.update_ms = self.now_ms
        if order.status == "FILLED" and order.locked > 0 and order.side == "BUY":
            self.balances[quote]["locked"] -= order.locked
            self.balances[quote]["free"] += order.locked
            order.locked = Decimal(0)
        trade = {"symbol": order.symbol.replace("/", ""), "id": trade_id,
                 "orderId": order.order_id, "orderListId": -1, "price": _s(price),
                 "qty": _s(qty), "quoteQty": _s(quote_qty), "commission": _s(fee),
                 "commissionAsset": fee_asset, "time": self.now_ms,
                 "isBuyer": order.side == "BUY", "isMaker": maker, "isBestMatch": True}
        self.trades.append(trade)
        order.fills.append({"price": _s(price), "qty": _s(qty), "commission": _s(fee),
                            "commissionAsset": fee_asset, "tradeId": trade_id})

    # -- request handling -------------------------------------------------------------------

    def _symbol(self, exchange_symbol: str | None) -> str:
        for symbol in self.candles:
            if symbol.replace("/", "") == exchange_symbol:
                return symbol
        raise BinanceError(400, -1121, "Invalid symbol.")

    def exchange_info(self) -> dict:
        symbols = []
        for symbol in self.candles:
            base, quote = symbol.split("/")
            symbols.append({
                "symbol": base + quote, "status": "TRADING", "baseAsset": base,
                "baseAssetPrecision": 8, "quoteAsset": quote, "quotePrecision": 8,
                "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                               "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True, "ocoAllowed": True, "quoteOrderQtyMarketAllowed": True,
                "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.00000001",
                     "maxPrice": "1000000.00000000", "tickSize": "0.00000001"},
                    {"filterType": "LOT_SIZE", "minQty": _s(self.step),
                     "maxQty": "9000000.00000000", "stepSize": _s(self.step)},
                    {"filterType": "NOTIONAL", "minNotional": "1.00000000",
                     "applyMinToMarket": True, "maxNotional": "9000000.00000000"}],
                "permissions": [], "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_MAKER"]})
        return {"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [],
                "exchangeFilters": [], "symbols": symbols}

    def klines(self, q: dict) -> list:
        symbol = self._symbol(q.get("symbol"))
        if q.get("interval") != self.timeframe:
            raise BinanceError(400, -1120, "Invalid interval.")
        limit = min(int(q.get("limit", 500)), 1000)
        data = self.candles[symbol]
        ms = data["ms"]
        keep = ms <= self.now_ms
        if "startTime" in q:
            keep &= ms >= int(q["startTime"])
        if "endTime" in q:
            keep &= ms <= int(q["endTime"])
        rows = []
        for i in np.flatnonzero(keep)[:limit] if "startTime" in q else np.flatnonzero(keep)[-limit:]:
            o, h, low, c, v = data["ohlcv"][i]
            if int(ms[i]) == self.now_ms:  # the forming candle: only its open is known
                h = low = c = o
                v = 0.0
            rows.append([int(ms[i]), _s(_d(o)), _s(_d(h)), _s(_d(low)), _s(_d(c)), _s(_d(v)),
                         int(ms[i]) + self.step_ms - 1, "0", 0, "0", "0", "0"])
        return rows

    def create_order(self, q: dict) -> dict:
        symbol = self._symbol(q.get("symbol"))
        client_id = q.get("newClientOrderId") or f"fake-{self._next_order_id}"
        if any(o.client_id == client_id and o.is_open for o in self.orders):
            raise BinanceError(400, -2010, "Duplicate order sent.")
        kind, side = q.get("type"), q.get("side")
        if kind not in ("MARKET", "LIMIT", "STOP_LOSS", "TAKE_PROFIT") or side not in ("BUY", "SELL"):
            raise BinanceError(400, -1116, "Invalid orderType.")
        quantity = _d(q.get("quantity", "0"))
        if quantity <= 0 or quantity % self.step != 0:
            raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")
        bar = self.candle(symbol)
        if bar is None:
            raise BinanceError(400, -1013, "Market is closed.")
        open_price = _d(bar[0])
        price = _d(q["price"]) if "price" in q else None
        stop = _d(q["stopPrice"]) if "stopPrice" in q else None
        if kind == "LIMIT" and price is None or kind in ("STOP_LOSS", "TAKE_PROFIT") and stop is None:
            raise BinanceError(400, -1102, "Mandatory parameter was not sent, was empty/null, "
                                           "or malformed.")
        if (kind == "STOP_LOSS" and (open_price <= stop if side == "SELL" else open_price >= stop)
                or kind == "TAKE_PROFIT"
                and (open_price >= stop if side == "SELL" else open_price <= stop)):
            raise BinanceError(400, -2010, "Stop price would trigger immediately.")
        base, quote = symbol.split("/")
        immediate = kind == "MARKET" or kind == "LIMIT" and (
            price >= open_price if side == "BUY" else price <= open_price)
        if side == "BUY":
            need = quantity * (open_price if immediate else price if kind == "LIMIT" else open_price)
            asset = quote
        else:
            need, asset = quantity, base
        if self.balances[asset]["free"] < need:
            raise BinanceError(400, -2010, INSUFFICIENT)
        self._next_order_id += 1
        order = FakeOrder(self._next_order_id, symbol, client_id, side, kind, quantity, price,
                          stop, self.now_ms, update_ms=self.now_ms)
        self.orders.append(order)
        self.client_id_count[client_id] += 1
        if immediate:
            self._fill_now(order, open_price)
        else:
            order.locked = need if side == "SELL" or kind == "LIMIT" else Decimal(0)
            if order.locked:
                self.balances[asset]["free"] -= order.locked
                self.balances[asset]["locked"] += order.locked
        return self.order_json(order, full=True)

    def _fill_now(self, order: FakeOrder, price: Decimal) -> None:
        if order.side == "SELL":
            base = order.symbol.split("/")[0]
            self.balances[base]["free"] -= order.quantity
            self.balances[base]["locked"] += order.quantity
            order.locked = order.quantity
        parts = self._split_rng.randint(1, 3)
        left = order.quantity
        for k in range(parts):
            qty = left if k == parts - 1 else (order.quantity / parts).quantize(self.step, ROUND_DOWN)
            if qty <= 0:
                continue
            self._execute(order, qty, price, maker=False)
            left -= qty

    def find(self, q: dict) -> FakeOrder:
        symbol = self._symbol(q.get("symbol"))
        for order in reversed(self.orders):
            if order.symbol == symbol and (
                    ("origClientOrderId" in q and order.client_id == q["origClientOrderId"])
                    or ("orderId" in q and str(order.order_id) == q["orderId"])):
                return order
        raise BinanceError(400, -2013, "Order does not exist.")

    def cancel(self, q: dict) -> dict:
        try:
            order = self.find(q)
        except BinanceError:
            raise BinanceError(400, -2011, "Unknown order sent.") from None
        if not order.is_open:
            raise BinanceError(400, -2011, "Unknown order sent.")
        asset = order.symbol.split("/")[1 if order.side == "BUY" else 0]
        self.balances[asset]["locked"] -= order.locked
        self.balances[asset]["free"] += order.locked
        order.locked = Decimal(0)
        order.status, order.update_ms = "CANCELED", self.now_ms
        return self.order_json(order)

    def order_json(self, order: FakeOrder, full: bool = False) -> dict:
        out = {
            "symbol": order.symbol.replace("/", ""), "orderId": order.order_id, "orderListId": -1,
            "clientOrderId": order.client_id, "price": _s(order.price or Decimal(0)),
            "origQty": _s(order.quantity), "executedQty": _s(order.executed),
            "cummulativeQuoteQty": _s(order.quote_executed), "status": order.status,
            "timeInForce": "GTC", "type": order.type, "side": order.side,
            "stopPrice": _s(order.stop_price or Decimal(0)), "time": order.time_ms,
            "updateTime": order.update_ms, "isWorking": order.type in ("MARKET", "LIMIT"),
            "workingTime": order.time_ms, "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER"}
        if full:
            out["transactTime"] = order.time_ms
            out["fills"] = list(order.fills)
        return out

    def my_trades(self, q: dict) -> list:
        symbol = self._symbol(q.get("symbol")).replace("/", "")
        rows = [t for t in self.trades if t["symbol"] == symbol]
        if "orderId" in q:
            rows = [t for t in rows if str(t["orderId"]) == q["orderId"]]
        if "fromId" in q:
            rows = [t for t in rows if t["id"] >= int(q["fromId"])]
        # "The time between startTime and endTime can't be longer than 24 hours": given
        # one of them, Binance answers the 24 hours from (or up to) it
        start, end = q.get("startTime"), q.get("endTime")
        if start is not None and end is not None and int(end) - int(start) > DAY_MS:
            raise BinanceError(400, -1127, "More than 24 hours between startTime and endTime.")
        if start is not None:
            end = end if end is not None else int(start) + DAY_MS
        elif end is not None:
            start = int(end) - DAY_MS
        if start is not None:
            rows = [t for t in rows if int(start) <= t["time"] <= int(end)]
        return rows[: min(int(q.get("limit", 500)), 1000)]

    def account(self) -> dict:
        return {"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0,
                "sellerCommission": 0, "canTrade": True, "canWithdraw": True,
                "canDeposit": True, "updateTime": self.now_ms, "accountType": "SPOT",
                "balances": [{"asset": a, "free": _s(b["free"]), "locked": _s(b["locked"])}
                             for a, b in sorted(self.balances.items())],
                "permissions": ["SPOT"]}

    def total_balances(self) -> dict[str, float]:
        with self.lock:
            return {a: float(b["free"] + b["locked"]) for a, b in self.balances.items()}

    def duplicate_client_ids(self) -> dict[str, int]:
        with self.lock:
            return {cid: n for cid, n in self.client_id_count.items() if n > 1}

    def route(self, method: str, path: str, q: dict) -> Any:
        with self.lock:
            if method == "GET" and path == "/api/v3/exchangeInfo":
                return self.exchange_info()
            if method == "GET" and path == "/api/v3/time":
                return {"serverTime": int(time.time() * 1000)}
            if method == "GET" and path == "/api/v3/klines":
                return self.klines(q)
            if method == "POST" and path == "/api/v3/order":
                return self.create_order(q)
            if method == "GET" and path == "/api/v3/order":
                return self.order_json(self.find(q))
            if method == "DELETE" and path == "/api/v3/order":
                return self.cancel(q)
            if method == "GET" and path == "/api/v3/openOrders":
                symbol = self._symbol(q["symbol"]) if "symbol" in q else None
                return [self.order_json(o) for o in self.orders
                        if o.is_open and (symbol is None or o.symbol == symbol)]
            if method == "GET" and path == "/api/v3/myTrades":
                return self.my_trades(q)
            if method == "GET" and path == "/api/v3/account":
                return self.account()
            if path == "/control/now":  # the test's clock (never faulted)
                return {"now_ms": self.now_ms}
            if method == "POST" and path == "/control/advance":
                while self.now_ms < int(q["to_ms"]):
                    self.advance()
                return {"now_ms": self.now_ms}
        raise BinanceError(404, -1000, f"No endpoint {method} {path} in the fake.")


def point_ccxt_at(exchange: Any, url: str) -> Any:
    """Point a ccxt ``binance`` instance at a fake at ``url`` (spot only, no currency call)."""
    api = dict(exchange.urls["api"])
    api["public"] = api["private"] = f"{url}/api/v3"
    exchange.urls["api"] = api
    exchange.options["fetchMarkets"] = {"types": ["spot"]}
    exchange.options["fetchCurrencies"] = False
    exchange.options["fetchMargins"] = False
    exchange.options["defaultType"] = "spot"
    exchange.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
    return exchange


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and left (a fault we injected) is not an error."""


SIGNED = {"/api/v3/order", "/api/v3/openOrders", "/api/v3/myTrades", "/api/v3/account"}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeBinance
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def setup(self) -> None:
        super().setup()
        # headers and body leave in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK stall every keep-alive response by ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _send(self, status: int, payload: Any, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _hang_up(self, sleep: float) -> None:
        if sleep:
            time.sleep(sleep)
        self.close_connection = True

    def _handle(self, method: str) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        path = parts.path
        fake.requests[f"{method} {path}"] += 1
        fault = fake._draw_fault(method, path)
        if fault in ("timeout_before", "drop_before"):
            return self._hang_up(fake.timeout_sleep if fault == "timeout_before" else 0)
        if fault in ("http_429", "http_418"):
            status = 429 if fault == "http_429" else 418
            return self._send(status, {"code": -1003, "msg": "Too many requests; current limit "
                                       "of IP is 6000 request weight per 1 MINUTE."},
                              {"Retry-After": str(fake.retry_after)})
        if fault == "http_503" and fake._rng.random() < 0.5:
            return self._send(503, {"code": -1007, "msg": "Timeout waiting for response from "
                                    "backend server. Send status unknown; execution status "
                                    "unknown."})
        raw = parts.query + body
        try:
            q = self._authenticate(path, raw)
            if fault == "not_found":
                raise BinanceError(400, -2013, "Order does not exist.")
            if fault == "insufficient_funds":
                raise BinanceError(400, -2010, INSUFFICIENT)
            result = fake.route(method, path, q)
        except BinanceError as exc:
            return self._send(exc.status, {"code": exc.code, "msg": exc.msg})
        if fault in ("timeout_after", "drop_after"):
            return self._hang_up(fake.timeout_sleep if fault == "timeout_after" else 0)
        if fault == "http_503":
            return self._send(503, {"code": -1007, "msg": "Timeout waiting for response from "
                                    "backend server. Send status unknown; execution status "
                                    "unknown."})
        self._send(200, result)

    def _authenticate(self, path: str, raw: str) -> dict:
        q = dict(parse_qsl(raw, keep_blank_values=True))
        if path not in SIGNED:
            return q
        key = self.headers.get("X-MBX-APIKEY")
        secret = self.fake.keys.get(key or "")
        if secret is None:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload, sep, signature = raw.rpartition("&signature=")
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not sep or not hmac.compare_digest(expected, signature):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        window = int(q.get("recvWindow", 5000))
        if abs(int(q.get("timestamp", 0)) - time.time() * 1000) > window:
            raise BinanceError(400, -1021, "Timestamp for this request is outside of the "
                                           "recvWindow.")
        q.pop("signature", None)
        return q
