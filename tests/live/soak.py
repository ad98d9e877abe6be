"""The soak's runner side: a trader, a fork-server and the kill points (test code only).

The test process runs the fake exchange. This module runs as a separate process (the
"zygote", started once so the imports are paid once); for each runner session it forks a
child that runs the real Runner + CCXTBroker + ccxt against the fake, and that child may be
SIGKILLed — by itself at the kill points below, or by the test at a random moment:

* ``after_intent`` — the order intent is committed to the journal, the create not yet sent;
* ``after_write`` — the exchange has executed a create or cancel, its answer not journaled;
* ``after_fill`` — a fill is journaled, ``on_fill`` not yet called, no checkpoint;
* ``after_answer`` — an order's new status (a create's or a cancel's answer, a lookup) is
  journaled, its fills not yet read (an entry acknowledged filled, its stop not yet placed;
  a stop cancelled, the exit that replaces it not yet sent).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import traceback
from typing import Any

import pandas as pd
import requests

STEP_NS = 5 * 60 * 10**9


class FakeClock:
    """The fake exchange's simulated time, read and moved through its control endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self._ms: int | None = None  # only this process moves the fake's clock

    def now(self) -> pd.Timestamp:
        if self._ms is None:
            self._ms = self.http.get(f"{self.url}/control/now", timeout=5).json()["now_ms"]
        return pd.Timestamp(self._ms, unit="ms", tz="UTC")

    def sleep_until(self, t: pd.Timestamp) -> None:
        ms = int(pd.Timestamp(t).value // 1_000_000)
        answer = self.http.post(f"{self.url}/control/advance?to_ms={ms}", timeout=5)
        self._ms = answer.json()["now_ms"]


def make_trader() -> Any:
    from core_engine.trading.orders import OrderSide, OrderStatus
    from core_engine.trading.trader import Trader

    class SoakTrader(Trader):
        """Enters each symbol every few bars with a quote amount, protects the position with
        an exchange-side stop-loss, exits at market after ``hold`` bars (cancelling the stop),
        and rests small limit buys (partial fills) that it cancels when stale."""

        name = "soak"

        def __init__(self, symbols: tuple = ("BTC/USDT", "ETH/USDT"), value: float = 400.0,
                     hold: int = 6, stop_pct: float = 0.4, dip_qty: float = 0.003) -> None:
            self.symbols = symbols
            self.value = value
            self.hold = hold
            self.stop_pct = stop_pct
            self.dip_qty = dip_qty

        def _price(self, ctx: Any, symbol: str) -> float:
            frame = ctx.candles(symbol, 1)
            return float(frame["close"].iloc[-1])

        def on_bar(self, ctx: Any) -> None:
            t = ctx.now.value
            bar = t // STEP_NS
            for i, symbol in enumerate(self.symbols):
                st = self.state.setdefault(symbol, {"phase": "flat"})
                held = ctx.position(symbol)
                if st["phase"] == "entering":
                    order = ctx.broker.fetch_order(st["entry"])
                    if order.is_final and order.filled_quantity == 0:
                        st.clear()
                        st["phase"] = "flat"
                    elif order.status is OrderStatus.FILLED and t - st["since"] > STEP_NS:
                        st["phase"] = "long"  # its fill was handled (or it had no stop)
                if st["phase"] == "exiting":
                    order = ctx.broker.fetch_order(st["exit"])
                    if order.status is OrderStatus.FILLED or held < 1e-5:
                        st.clear()
                        st["phase"] = "flat"
                    elif order.is_final:
                        st["phase"] = "long"  # retry the exit with a new leg
                if st["phase"] == "flat" and (bar + 3 * i) % 6 == 0:
                    order = ctx.buy(symbol, value=self.value, leg="entry", tag="entry")
                    st.update(phase="entering", entry=order.client_id, since=t)
                elif st["phase"] == "long" and t - st["since"] >= self.hold * STEP_NS:
                    if held >= 1e-5:
                        order = ctx.sell(symbol, held, leg=f"exit-{bar}", group=st["entry"],
                                         tag="exit")
                        st.update(phase="exiting", exit=order.client_id)
                    else:
                        st.clear()
                        st["phase"] = "flat"
                elif st["phase"] in ("entering", "long") and held >= 1e-5:
                    self._protect(ctx, symbol, st, bar, held)
            self._dip(ctx, t, bar)

        def _protect(self, ctx: Any, symbol: str, st: dict, bar: int, held: float) -> None:
            """A filled entry with no sell of its group open gets its stop again: the stop
            was refused, or its fill was handed before a restart replayed the decision that
            made the entry (the trader did not know the order yet)."""
            entry = ctx.broker.fetch_order(st["entry"])
            if entry.status is not OrderStatus.FILLED or any(
                    o.side is OrderSide.SELL and o.group == st["entry"]
                    for o in ctx.open_orders(symbol)):
                return
            stop = float(entry.average_price) * (1 - self.stop_pct / 100)
            ctx.sell(symbol, held, type="stop", price=round(stop, 2), leg=f"stop-{bar}",
                     group=st["entry"], tag="stop")

        def _dip(self, ctx: Any, t: int, bar: int) -> None:
            symbol = self.symbols[0]
            dip = self.state.setdefault("dip", {})
            if dip.get("cid"):
                order = ctx.broker.fetch_order(dip["cid"])
                if order.is_final or t - dip["since"] >= 4 * STEP_NS:
                    if order.is_open:
                        ctx.cancel(dip["cid"])
                    dip.clear()
            elif bar % 9 == 0:
                price = round(self._price(ctx, symbol) * 0.9995, 2)
                order = ctx.buy(symbol, self.dip_qty, type="limit", price=price, leg="dip",
                                tag="dip")
                dip.update(cid=order.client_id, since=t)

        def on_fill(self, ctx: Any, fill: Any) -> None:
            st = self.state.setdefault(fill.symbol, {"phase": "flat"})
            order = ctx.broker.fetch_order(fill.client_id)
            if (order.tag == "entry" and order.status is OrderStatus.FILLED
                    and st.get("entry") == fill.client_id and st.get("phase") == "entering"):
                st["phase"] = "long"
                held = ctx.position(fill.symbol)
                stop = float(order.average_price) * (1 - self.stop_pct / 100)
                if held >= 1e-5:
                    ctx.sell(fill.symbol, held, type="stop", price=round(stop, 2), leg="stop",
                             group=fill.client_id, tag="stop")
            elif fill.side is OrderSide.SELL and order.tag in ("stop", "exit") \
                    and ctx.position(fill.symbol) < 1e-5:
                st.clear()
                st["phase"] = "flat"

    return SoakTrader()


def _die(log: str, point: str) -> None:
    with open(log, "a") as out:
        out.write(point + "\n")
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill_points(rng: random.Random, rates: dict[str, float], log: str) -> None:
    from core_engine.live.ccxt_session import CCXTSession
    from core_engine.live.journal import Journal

    record_intent, call, record_fill = Journal.record_intent, CCXTSession.call, Journal.record_fill
    update_order = Journal.update_order

    def answer(self: Any, *args: Any, **kw: Any) -> Any:
        row = update_order(self, *args, **kw)
        if kw.get("event") != "restart" and rng.random() < rates.get("after_answer", 0):
            _die(log, "after_answer")
        return row

    def intent(self: Any, **kw: Any) -> Any:
        row = record_intent(self, **kw)
        if rng.random() < rates.get("after_intent", 0):
            _die(log, "after_intent")
        return row

    def session_call(self: Any, what: str, fn: Any, *args: Any, write: bool = False,
                     **kw: Any) -> Any:
        out = call(self, what, fn, *args, write=write, **kw)
        if write and rng.random() < rates.get("after_write", 0):
            _die(log, "after_write")
        return out

    def fill(self: Any, **kw: Any) -> Any:
        new = record_fill(self, **kw)
        if new and rng.random() < rates.get("after_fill", 0):
            _die(log, "after_fill")
        return new

    Journal.record_intent = intent  # type: ignore[method-assign]
    CCXTSession.call = session_call  # type: ignore[method-assign]
    Journal.record_fill = fill  # type: ignore[method-assign]
    Journal.update_order = answer  # type: ignore[method-assign]


def session(args: dict[str, Any]) -> int:
    """One runner session (a forked child). Exit 0 at ``until``, 3 on ReconciliationError."""
    from core_engine.live.ccxt_broker import CCXTBroker
    from core_engine.live.ccxt_session import CCXTSession
    from core_engine.live.keys import KeyRing
    from core_engine.live.runner import ReconciliationError, Runner

    from .fake_binance import point_ccxt_at

    rng = random.Random(args["seed"])
    install_kill_points(rng, args.get("kills", {}), args["kill_log"])
    url = args["url"]
    clock = FakeClock(url)
    ring = KeyRing.from_env("binance")
    ccxt_session = CCXTSession("binance", keys=ring, config={"timeout": args["timeout_ms"],
                                                            "enableRateLimit": False},
                               configure=lambda ex: point_ccxt_at(ex, url), read_retries=2,
                               backoff_base=0.001, backoff_cap=0.01, seed=args["seed"])
    symbols = list(args["symbols"])
    broker = CCXTBroker("binance", session=ccxt_session, symbols=symbols, clock=clock,
                        price_timeframe="5m")
    runner = Runner(make_trader(), broker, args["journal"], clock=clock, symbols=symbols,
                    timeframe="5m", settle="0s", history=30, max_misses=3,
                    min_miss_age="10min", status_page=args.get("status_page", True))
    try:
        if args.get("reconcile_only"):
            runner.now = clock.now()
            runner.start()
        else:
            runner.run(until=pd.Timestamp(args["until"]))
    except ReconciliationError:
        traceback.print_exc()
        return 3
    return 0


def zygote() -> None:
    """Read one JSON line per session from stdin; fork it; report ``pid`` and ``exit``."""
    import tempfile

    import ccxt

    import core_engine.live.ccxt_broker  # noqa: F401  (pay the imports once)
    from core_engine.live.journal import Journal
    from core_engine.live.runner import Runner  # noqa: F401
    from core_engine.live.status import write_status_page

    ccxt.binance()  # ccxt loads its exchange modules lazily
    make_trader()
    pd.to_datetime([0], unit="ms", utc=True)
    with tempfile.TemporaryDirectory() as scratch, Journal(f"{scratch}/warm.sqlite") as warm:
        write_status_page(warm)

    for line in sys.stdin:
        args = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                with open(args["log"], "a") as log:
                    os.dup2(log.fileno(), 2)
                    os.dup2(log.fileno(), 1)
                code = session(args)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(f"exit {pid} {code}", flush=True)


if __name__ == "__main__":
    zygote()
