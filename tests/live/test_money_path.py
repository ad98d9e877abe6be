"""Adversarial money-path tests of the live runner on the fake Binance (ccxt's real code):
each one counts duplicate orders, lost fills, double-counted fills and orders without
intent, and checks the trader heard of every fill of its own orders."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from core_engine.live.runner import Runner
from core_engine.trading import Trader
from core_engine.trading.orders import OrderStatus

from .test_ccxt_broker import _broker
from .test_insufficient_funds import BuyEachBar, FakeTime


class Killed(BaseException):
    """The runner process dying (no handler of the runner runs)."""


class Protected(Trader):
    """Buys once at the market (when flat, nothing open) and protects the entry with an
    exchange-side stop sized to the holdings when the entry's fill arrives."""

    name = "protected"

    kill_after_entry = False  # set on an instance: the test's kill point (not a parameter)

    def __init__(self, symbol="BTC/USDT", quantity=0.01):
        self.symbol = symbol
        self.quantity = quantity

    def on_bar(self, ctx):
        entry = self.state.get("entry")
        if entry is not None:
            order = ctx.broker.fetch_order(entry)
            if order.is_final and order.filled_quantity == 0:  # refused or never placed
                entry = self.state["entry"] = None
        if ctx.position(self.symbol) > 0 or ctx.open_orders(self.symbol) or entry:
            return
        order = ctx.buy(self.symbol, self.quantity, leg="entry", tag="entry")
        self.state["entry"] = order.client_id
        if self.kill_after_entry:
            raise Killed

    def on_fill(self, ctx, fill):
        self.state.setdefault("heard", []).append(fill.trade_id)
        order = ctx.broker.fetch_order(fill.client_id)
        if order.tag == "entry" and order.status is OrderStatus.FILLED:
            price = float(order.average_price) * 0.95
            ctx.sell(self.symbol, ctx.position(self.symbol), type="stop", price=round(price, 2),
                     leg="stop", group=fill.client_id, tag="stop")


def _runner(fake, path, trader, **kw):
    return Runner(trader, _broker(fake), path, clock=FakeTime(fake), symbols=["BTC/USDT"],
                  timeframe="5m", settle="0s", history=30, status_page=False, **kw)


def _killed_after_the_entry(fake, path):
    """A runner of ``Protected`` on ``path`` killed right after its entry's create was
    answered (before the fills were read); returns it (its journal still open)."""
    dying = Protected()
    dying.kill_after_entry = True
    first = _runner(fake, path, dying)
    with pytest.raises(Killed):
        first.run(max_ticks=1)
    return first


def counts(fake, journal):
    """The soak's counts on one journal and the fake exchange."""
    journaled = {o.client_id for o in journal.orders()}
    on_exchange = Counter(o.client_id for o in fake.orders)
    trades = {(t["symbol"], str(t["id"])) for t in fake.trades}
    fills = Counter((f.symbol.replace("/", ""), f.trade_id) for f in journal.fills())
    held = fake.total_balances()
    positions = journal.positions()
    return {
        "duplicates": sorted(c for c, n in on_exchange.items() if n > 1),
        "without_intent": sorted(c for c in on_exchange if c not in journaled),
        "lost": sorted(k for k in trades if k not in fills),
        "double": sorted(k for k, n in fills.items() if n > 1 or k not in trades),
        "base_diff": abs(positions.get("BTC", 0.0) - held.get("BTC", 0.0)),
    }


def assert_clean(fake, journal):
    c = counts(fake, journal)
    assert c["duplicates"] == [] and c["without_intent"] == [], c
    assert c["lost"] == [] and c["double"] == [], c
    assert c["base_diff"] < 1e-10, c


def test_kill_after_the_entry_was_acknowledged_filled_before_its_fills_were_read(
        fake, tmp_path):
    """The create's answer (filled) is journaled, the process dies before the fills are
    read: after the restart the fills are journaled under the entry's client id and the
    trader hears of them, so the stop is placed (not an unprotected position)."""
    path = tmp_path / "j.sqlite"
    first = _killed_after_the_entry(fake, path)
    entry = first.journal.orders()[0]
    assert entry.status is OrderStatus.FILLED and first.journal.fills() == []
    first.journal.close()
    second = _runner(fake, path, Protected())
    second.run(max_ticks=2)
    journal = second.journal
    assert_clean(fake, journal)
    fills = journal.fills()
    assert fills and {f.client_id for f in fills} == {entry.client_id}
    assert sorted(second.trader.state.get("heard", [])) == sorted(f.trade_id for f in fills)
    stops = [o for o in fake.orders if o.type == "STOP_LOSS"]
    assert len(stops) == 1 and stops[0].is_open
    assert float(stops[0].quantity) == pytest.approx(fake.total_balances()["BTC"], abs=1e-5)


@pytest.mark.parametrize("fault", ["timeout_after", "drop_after"])
def test_entry_whose_create_timed_out_but_executed_is_protected_once_resolved(
        fake, tmp_path, fault):
    """The create executed, its answer was lost: the order is ``unknown`` and its trades,
    read in the same tick, belong to no order we know yet. Once the lookup by client id
    resolves it, those fills are attributed to it and the trader hears of them (once): the
    stop is placed."""
    runner = _runner(fake, tmp_path / "j.sqlite", Protected())
    fake.inject(fault, method="POST", path="/api/v3/order")
    runner.run(max_ticks=1)
    entry = runner.journal.orders()[0]
    assert entry.status is OrderStatus.UNKNOWN and fake.trades
    runner.run(max_ticks=2)
    journal = runner.journal
    assert_clean(fake, journal)
    assert journal.order(entry.client_id).status is OrderStatus.FILLED
    fills = journal.fills()
    assert {f.client_id for f in fills} == {entry.client_id}
    heard = runner.trader.state.get("heard", [])
    assert sorted(heard) == sorted(f.trade_id for f in fills)  # each fill heard once
    stops = [o for o in fake.orders if o.type == "STOP_LOSS"]
    assert len(stops) == 1 and stops[0].is_open


def test_restart_refuses_on_a_deposit_before_the_trader_hears_of_missed_fills(
        fake, tmp_path):
    """Killed after the entry filled, before the trader heard of its fills; while down, a
    deposit. The restart imports the missed fills, finds the balances off and refuses: it
    must send nothing — not even the stop the trader would place on hearing of the fill."""
    from decimal import Decimal

    from core_engine.live.runner import ReconciliationError

    path = tmp_path / "j.sqlite"
    first = _killed_after_the_entry(fake, path)
    entry = first.journal.orders()[0].client_id
    first.journal.close()
    creates = fake.requests["POST /api/v3/order"]
    fake.balances["USDT"]["free"] += Decimal("50")  # a deposit while the runner was down
    second = _runner(fake, path, Protected())
    with pytest.raises(ReconciliationError, match="USDT"):
        second.run(max_ticks=1)
    assert fake.requests["POST /api/v3/order"] == creates  # nothing sent
    assert fake.requests["DELETE /api/v3/order"] == 0
    assert len(fake.orders) == 1 and second.trader.state.get("heard") is None
    # the fills missed while down are journaled (under the entry) all the same
    assert [f.client_id for f in second.journal.fills()] == [entry] * len(fake.trades)


def test_a_fill_whose_on_fill_met_an_exchange_outage_is_handed_again(fake, tmp_path):
    """The entry fills; while the trader handles its fill (reads its position to size the
    stop) the exchange's account endpoint is down through every retry. The fill is handed to
    ``on_fill`` again at the next tick (not skipped by the cursor), so the stop is placed —
    once."""

    class Outage(Protected):
        def on_bar(self, ctx):
            super().on_bar(ctx)
            if self.state.get("entry") and not self.state.get("outage"):
                self.state["outage"] = True  # the next balance reads all fail
                fake.inject("drop_before", method="GET", path="/api/v3/account", times=4)

    runner = _runner(fake, tmp_path / "j.sqlite", Outage())
    runner.run(max_ticks=1)
    assert fake.faults_fired["drop_before"] == 4
    assert [e["source"] for e in runner.journal.errors()] == ["trader"]
    assert not [o for o in fake.orders if o.type == "STOP_LOSS"]
    runner.run(max_ticks=1)
    assert_clean(fake, runner.journal)
    stops = [o for o in fake.orders if o.type == "STOP_LOSS"]
    assert len(stops) == 1 and stops[0].is_open
    assert float(stops[0].quantity) == pytest.approx(fake.total_balances()["BTC"], abs=1e-5)
    fills = runner.journal.fills()
    # every fill heard; the one whose handling failed heard again
    assert set(runner.trader.state["heard"]) == {f.trade_id for f in fills}


class HoldADay(Trader):
    """Buys at the first decision, sells everything 26 hours later (hourly decisions)."""

    name = "hold-a-day"

    def __init__(self, every="1h"):
        self.every = every

    def on_bar(self, ctx):
        if "bought" not in self.state:
            ctx.buy("BTC/USDT", 0.01, leg="entry")
            self.state["bought"] = ctx.now.isoformat()
        elif "sold" not in self.state and \
                ctx.now - pd.Timestamp(self.state["bought"]) >= pd.Timedelta("26h"):
            ctx.sell("BTC/USDT", ctx.position("BTC/USDT"), leg="exit")
            self.state["sold"] = ctx.now.isoformat()

    def on_fill(self, ctx, fill):
        self.state.setdefault("heard", []).append(fill.trade_id)


def test_fills_more_than_a_day_after_the_last_one_are_read(make_candles, tmp_path):
    """Binance answers at most 24 hours of trades from ``startTime``: an exit filled 26 hours
    after the last fill must still be journaled (not lost), and heard by the trader."""
    from .conftest import API_KEY, API_SECRET
    from .fake_binance import FakeBinance

    candles = {"BTC/USDT": make_candles(420, seed=3, price=30000.0),
               "ETH/USDT": make_candles(420, seed=4, price=2000.0)}
    start = candles["BTC/USDT"]["timestamp"].iloc[12]
    with FakeBinance(candles, balances={"USDT": 10000.0}, keys={API_KEY: API_SECRET},
                     start=start) as fake:
        runner = Runner(HoldADay(), _broker(fake), tmp_path / "j.sqlite", clock=FakeTime(fake),
                        symbols=["BTC/USDT"], timeframe="5m", settle="0s", history=30,
                        status_page=False)
        runner.run(until=start + pd.Timedelta("28h"))
        assert "sold" in runner.trader.state
        assert_clean(fake, runner.journal)
        assert {f.side for f in runner.journal.fills()} == {"buy", "sell"}
        assert sorted(runner.trader.state["heard"]) == sorted(
            f.trade_id for f in runner.journal.fills())
        assert fake.total_balances()["BTC"] == pytest.approx(0.0, abs=1e-12)


class Dip(Trader):
    """Keeps one resting limit buy 3 % under the last close; places a new one (a new leg)
    when its order ends unfilled (refused, or found never placed)."""

    name = "dip"

    def on_bar(self, ctx):
        cid = self.state.get("cid")
        if cid is not None:
            order = ctx.broker.fetch_order(cid)
            if not (order.is_final and order.filled_quantity == 0):
                return
        n = self.state.get("n", 0) + 1
        price = round(float(ctx.candles("BTC/USDT", 1)["close"].iloc[-1]) * 0.97, 2)
        order = ctx.buy("BTC/USDT", 0.01, type="limit", price=price, leg=f"dip-{n}")
        self.state.update(cid=order.client_id, n=n)


def test_an_order_listed_open_is_not_declared_never_placed(fake, tmp_path):
    """The create of a resting limit buy executed but its answer was lost; lookups by client
    id then miss (a lagging replica) while the open-orders list shows it at every tick. It
    must not be declared never placed: the trader would place a second buy (twice the
    exposure) while the journal calls the resting one rejected."""
    runner = _runner(fake, tmp_path / "j.sqlite", Dip(), max_misses=3)
    fake.inject("timeout_after", method="POST", path="/api/v3/order")
    fake.inject("not_found", method="GET", path="/api/v3/order", times=20)
    runner.run(max_ticks=5)
    assert_clean(fake, runner.journal)
    resting = [o for o in fake.orders if o.is_open]
    assert len(fake.orders) == 1 and len(resting) == 1, [o.client_id for o in fake.orders]
    row = runner.journal.order(resting[0].client_id)
    assert row.status is OrderStatus.SUBMITTED and row.exchange_order_id == str(
        resting[0].order_id)
    assert "not_placed" not in [e for e, _ in runner.journal.order_events(row.client_id)]


def test_first_start_on_an_account_that_traded_before_the_journal(fake, tmp_path):
    """The account bought BTC by hand before the runner's first start: that trade is in the
    opening balances, so it must not be journaled again as a fill (the journal would hold
    twice the BTC and the runner would refuse to trade at its next start, or trade on a
    position it does not have)."""
    from .conftest import make_client

    manual = make_client(fake)
    manual.load_markets()
    manual.create_order("BTC/USDT", "market", "buy", 0.02, None, {"newClientOrderId": "hand"})
    fake.advance(3)
    runner = _runner(fake, tmp_path / "j.sqlite", BuyEachBar())
    runner.run(max_ticks=2)
    journal = runner.journal
    fills = journal.fills()
    assert fills and all(f.client_id is not None for f in fills)  # not the hand trade
    held = fake.total_balances()
    assert journal.positions()["BTC"] == pytest.approx(held["BTC"], abs=1e-12)
    assert journal.positions()["USDT"] == pytest.approx(held["USDT"], abs=1e-6)
    runner.journal.close()
    again = _runner(fake, tmp_path / "j.sqlite", BuyEachBar())
    again.run(max_ticks=1)  # reconciles: no ReconciliationError


KILL_POINTS = ["after_intent", "after_write", "after_answer", "after_fill",
               "before_checkpoint", "after_checkpoint"]


def _arm(runner, point):
    """Make ``runner`` die (raise :class:`Killed`) at the first ``point`` it reaches."""
    journal, session = runner.journal, runner.broker.broker.session

    def once(fn, when=lambda *a, **k: True, before=False):
        def wrapped(*args, **kw):
            if before and when(*args, **kw):
                raise Killed
            out = fn(*args, **kw)
            if not before and when(*args, **kw, out=out):
                raise Killed
            return out
        return wrapped

    if point == "after_intent":
        journal.record_intent = once(journal.record_intent)
    elif point == "after_write":
        session.call = once(session.call, lambda *a, write=False, **k: write)
    elif point == "after_answer":
        journal.update_order = once(journal.update_order,
                                    lambda *a, event="", **k: event != "restart")
    elif point == "after_fill":
        journal.record_fill = once(journal.record_fill, lambda *a, out=None, **k: out)
    elif point == "before_checkpoint":
        journal.record_checkpoint = once(journal.record_checkpoint, before=True)
    else:
        journal.record_checkpoint = once(journal.record_checkpoint)


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_at_each_point_of_the_entry_tick_then_restarted(fake, tmp_path, point):
    """Killed at ``point`` of the tick that enters, restarted (a new process: new runner,
    broker and session on the same journal): one entry on the exchange, its stop resting
    for what is held, every fill journaled once and heard, nothing sent without intent."""
    path = tmp_path / "j.sqlite"
    first = _runner(fake, path, Protected())
    _arm(first, point)
    with pytest.raises(Killed):
        first.run(max_ticks=1)
    first.journal.close()
    second = _runner(fake, path, Protected())
    second.run(max_ticks=5)  # (a lost intent takes 3 lookups to be declared not placed)
    journal = second.journal
    assert_clean(fake, journal)
    buys = [o for o in fake.orders if o.side == "BUY"]
    assert len(buys) == 1 and buys[0].status == "FILLED", [o.client_id for o in buys]
    stops = [o for o in fake.orders if o.type == "STOP_LOSS"]
    assert len(stops) == 1 and stops[0].is_open
    assert float(stops[0].quantity) == pytest.approx(fake.total_balances()["BTC"], abs=1e-5)
    fills = journal.fills()
    assert fills and all(f.client_id == buys[0].client_id for f in fills)
    heard = second.trader.state.get("heard", [])
    assert {f.trade_id for f in fills} <= set(heard)
    assert journal.orders(final=False)[-1].client_id == stops[0].client_id


def test_a_fill_whose_on_fill_always_fails_does_not_block_the_next_ones(fake, tmp_path):
    """A fill is handed again after an exchange failure, a bounded number of times
    (``max_misses``): an ``on_fill`` that always fails on one fill (here: it looks up an
    order no one placed) gives up on it, journaled, and the next fills are heard."""

    class Stubborn(BuyEachBar):
        def on_fill(self, ctx, fill):
            heard = self.state.setdefault("heard", [])
            heard.append(fill.trade_id)
            if fill.trade_id == "1":
                ctx.broker.fetch_order("ce-nobody")  # OrderNotFound, every time

    runner = _runner(fake, tmp_path / "j.sqlite", Stubborn(), max_misses=3)
    runner.run(max_ticks=6)
    assert_clean(fake, runner.journal)
    heard = runner.trader.state["heard"]
    assert heard.count("1") == 3  # tried max_misses times
    assert {f.trade_id for f in runner.journal.fills()} == set(heard)  # the others heard
    assert any("gave up" in e["message"] for e in runner.journal.errors())


def test_an_order_wrongly_declared_never_placed_is_found_by_its_trades(fake, tmp_path):
    """The entry's create executed but its answer was lost, and every lookup by client id
    missed (a lagging replica) until the order was declared never placed. Its trades are on
    the account: the runner finds their order by the exchange's order id, corrects the
    verdict in the journal (journaled, not silently), attributes the fills and the trader
    hears of them — the position gets its stop instead of staying unprotected."""
    runner = _runner(fake, tmp_path / "j.sqlite", Protected(), max_misses=3)
    fake.inject("timeout_after", method="POST", path="/api/v3/order")
    fake.inject("not_found", method="GET", path="/api/v3/order", times=50)
    journal = runner.journal
    for _ in range(8):  # every lookup misses until the verdict
        runner.run(max_ticks=1)
        if journal.order_events(journal.orders()[0].client_id)[-1][0] == "not_placed":
            break
    fake.clear_faults()  # the exchange answers again
    runner.run(max_ticks=12)  # (trades are read again at least every 12 ticks)
    assert_clean(fake, journal)
    entry = [o for o in fake.orders if o.side == "BUY"]
    assert len(entry) == 1  # one entry: the trader did not buy again
    row = journal.order(entry[0].client_id)
    assert row.status is OrderStatus.FILLED
    events = [e for e, _ in journal.order_events(row.client_id)]
    assert "not_placed" in events and events[-1] == "found_late", events
    assert {f.client_id for f in journal.fills()} == {row.client_id}
    assert set(runner.trader.state["heard"]) == {f.trade_id for f in journal.fills()}
    stops = [o for o in fake.orders if o.type == "STOP_LOSS"]
    assert len(stops) == 1 and stops[0].is_open
    assert any("declared never placed" in e["message"] for e in journal.errors())


class ExitsOnce(Protected):
    """:class:`Protected`, then at the next decision with the stop resting: a market exit of
    the whole position in the stop's group (the runner cancels the stop before sending it:
    a spot exchange locks the balance of a resting sell)."""

    def on_bar(self, ctx):
        entry = self.state.get("entry")
        if entry and "exit" not in self.state and ctx.position(self.symbol) > 0 \
                and ctx.open_orders(self.symbol):
            order = ctx.sell(self.symbol, ctx.position(self.symbol), leg="exit", group=entry,
                             tag="exit")
            self.state.update(exit=order.client_id, exit_status=order.status.value)
            return
        super().on_bar(ctx)


def _resting_stops(fake):
    return [o for o in fake.orders if o.type == "STOP_LOSS" and o.is_open]


@pytest.mark.parametrize("fault", ["insufficient_funds", "http_429"])
def test_an_exit_refused_after_its_stop_was_cancelled_restores_the_stop_at_once(
        fake, tmp_path, fault):
    """The exit is refused (insufficient funds, a rate limit) after the runner cancelled the
    position's stop to free the balance: the stop is placed again in the same tick (under a
    deterministic client id, journaled), not left off until the trader's next decision (a
    position without a stop through a crash)."""
    runner = _runner(fake, tmp_path / "j.sqlite", ExitsOnce())
    runner.run(max_ticks=1)
    assert len(_resting_stops(fake)) == 1
    fake.inject(fault, method="POST", path="/api/v3/order")
    runner.run(max_ticks=1)
    journal = runner.journal
    assert runner.trader.state["exit_status"] == "rejected"
    assert journal.order(runner.trader.state["exit"]).status is OrderStatus.REJECTED
    assert_clean(fake, journal)
    stops = _resting_stops(fake)
    assert len(stops) == 1, [(o.client_id, o.status) for o in fake.orders]
    assert float(stops[0].quantity) == pytest.approx(fake.total_balances()["BTC"], abs=1e-5)
    first = [o for o in fake.orders if o.type == "STOP_LOSS"][0]
    assert first.status == "CANCELED" and stops[0].client_id != first.client_id
    assert float(stops[0].stop_price) == float(first.stop_price)
    row = journal.order(stops[0].client_id)  # journaled in the stop's group, before it went
    assert row.status is OrderStatus.SUBMITTED and row.parent_client_id == \
        journal.order(first.client_id).parent_client_id
    assert [e for e, _ in journal.order_events(row.client_id)][0] == "intent"
    runner.run(max_ticks=2)  # nothing more is sent for it
    assert len(_resting_stops(fake)) == 1 and len(
        [o for o in fake.orders if o.type == "STOP_LOSS"]) == 2


@pytest.mark.parametrize("fault", ["timeout_before", "timeout_after"])
def test_an_exit_whose_outcome_is_unknown_after_its_stop_was_cancelled(fake, tmp_path, fault):
    """The exit's create times out after the stop was cancelled. Not sent (``timeout_before``):
    the base is still held, so the stop is placed again in the same tick (not after the
    lookups that declare the exit never placed, ticks later). Executed (``timeout_after``):
    nothing is held, nothing is placed. Either way no duplicate and no stop left behind."""
    runner = _runner(fake, tmp_path / "j.sqlite", ExitsOnce(), max_misses=3)
    runner.run(max_ticks=1)
    fake.inject(fault, method="POST", path="/api/v3/order")
    runner.run(max_ticks=1)
    journal = runner.journal
    assert runner.trader.state["exit_status"] == "unknown"
    held = fake.total_balances()["BTC"]
    stops = _resting_stops(fake)
    if fault == "timeout_before":
        assert held > 0 and len(stops) == 1
        assert float(stops[0].quantity) == pytest.approx(held, abs=1e-5)
    else:
        assert held == pytest.approx(0.0, abs=1e-12) and stops == []
    runner.run(max_ticks=4)  # the exit is resolved (found, or declared never placed)
    assert_clean(fake, journal)
    exit_row = journal.order(runner.trader.state["exit"])
    assert exit_row.status is (OrderStatus.REJECTED if fault == "timeout_before"
                               else OrderStatus.FILLED)
    assert len(_resting_stops(fake)) == len(stops)
    assert len([o for o in fake.orders if o.type == "STOP_LOSS"]) == 1 + len(stops)


@pytest.mark.parametrize("fault", ["http_503", "http_429"])
def test_a_restart_meeting_a_transient_exchange_failure_tries_again(fake, tmp_path, fault):
    """Killed after the entry filled; at the restart the account endpoint fails (every read
    retry) a few times while the runner reconciles. ``start`` is tried again after a back-off
    (each failure journaled) instead of ending the process: the missed fills are heard, the
    stop placed, once."""
    path = tmp_path / "j.sqlite"
    first = _killed_after_the_entry(fake, path)
    first.journal.close()
    fake.retry_after = 0
    fake.inject(fault, method="GET", path="/api/v3/account", times=7)
    second = _runner(fake, path, Protected())
    second.start_backoff = 0.01
    assert second.run(max_ticks=2) == 2
    assert fake.faults_fired[fault] == 7
    assert "start" in [e["source"] for e in second.journal.errors()]
    assert_clean(fake, second.journal)
    assert len(_resting_stops(fake)) == 1 and len(
        [o for o in fake.orders if o.type == "STOP_LOSS"]) == 1
    assert set(second.trader.state["heard"]) == {f.trade_id for f in second.journal.fills()}


def test_a_start_that_keeps_failing_raises_one_clear_error_and_sends_nothing(fake, tmp_path):
    from core_engine.errors import BrokerUnavailable

    fake.inject("http_503", method="GET", path="/api/v3/account", times=10**6)
    runner = _runner(fake, tmp_path / "j.sqlite", Protected())
    runner.start_backoff = 0.01
    with pytest.raises(BrokerUnavailable, match="could not start: the exchange failed 6 times"):
        runner.run(max_ticks=2)
    assert [e["source"] for e in runner.journal.errors()].count("start") == 6
    assert fake.requests["POST /api/v3/order"] == 0 and fake.orders == []


def test_killed_between_a_refused_exit_and_the_restore_of_its_stop(fake, tmp_path):
    """The process dies right after the exit's refusal is journaled, before the cancelled
    stop is placed again: the restarted runner places it at its first tick (the journal
    says which stop was cancelled for which exit), once."""
    path = tmp_path / "j.sqlite"
    first = _runner(fake, path, ExitsOnce())
    first.run(max_ticks=1)
    journal = first.journal
    update = journal.update_order

    def dies_on_refusal(*args, **kw):
        row = update(*args, **kw)
        if kw.get("event") == "rejected":
            raise Killed
        return row

    journal.update_order = dies_on_refusal
    fake.inject("insufficient_funds", method="POST", path="/api/v3/order")
    with pytest.raises(Killed):
        first.run(max_ticks=1)
    assert _resting_stops(fake) == []  # the position is bare
    journal.close()
    second = _runner(fake, path, ExitsOnce())
    second.run(max_ticks=1)
    assert_clean(fake, second.journal)
    stops = _resting_stops(fake)
    assert len(stops) == 1
    assert float(stops[0].quantity) == pytest.approx(fake.total_balances()["BTC"], abs=1e-5)
    second.run(max_ticks=2)
    assert len([o for o in fake.orders if o.type == "STOP_LOSS"]) == 2
