"""Follow-up orders (``then=FollowUp(...)``, one-triggers-the-other): placed by the context
when an order has filled completely, before ``on_fill``; the same in a replay, every candle
or skipping, and in a paper runner, restarts included. Prices in comments are worked by hand."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.data import Panel
from core_engine.errors import ConfigError
from core_engine.trading import FollowUp, Order, SimBroker, Trader, client_order_id, replay
from core_engine.trading._fast import DeclaredPath
from tests.trading.conftest import make_panel

SYM = "AAA/USDT"

# row 1: low 94 reaches the buy at 95 (filled at the close, 00:10); row 3: high 106 reaches
# the sell at 105 (00:20); row 4: low 94.5 reaches the buy again (00:25)
ROWS = [(100, 101, 99, 100, 10), (100, 100.5, 94, 96, 10), (96, 100, 95.5, 99, 10),
        (99, 106, 98, 104, 10), (104, 104, 94.5, 95, 10), (95.5, 96, 95.2, 95.5, 10)]


def t(minutes: int) -> pd.Timestamp:
    return pd.Timestamp("2021-01-01", tz="UTC") + pd.Timedelta(minutes=minutes)


class OneLevel(Trader):
    def __init__(self, quantity=1.0, buy=95.0, sell=105.0, repeat=False, cancel_partial=False):
        self.quantity = quantity
        self.buy = buy
        self.sell = sell
        self.repeat = repeat
        self.cancel_partial = cancel_partial

    def on_start(self, ctx):
        ctx.buy(SYM, self.quantity, type="limit", price=self.buy, leg="level",
                meta={"level": 0}, then=FollowUp(price=self.sell, repeat=self.repeat))

    def on_fill(self, ctx, fill):
        order = ctx.broker.fetch_order(fill.client_id)
        if self.cancel_partial and order.is_open:
            ctx.cancel(order)


def _run(trader, rows=ROWS, **broker):
    broker.setdefault("fee_bps", 0.0)
    panel = make_panel(rows)
    return replay(trader, panel, SimBroker(initial_cash=1_000.0, **broker), start=panel.index[1])


def _fills(result):
    return [(f.time, f.side, f.price, f.quantity) for f in result.fills.itertuples()]


def test_a_filled_buy_places_its_sell_for_the_filled_quantity():
    res = _run(OneLevel())
    assert _fills(res) == [(t(10), "buy", 95.0, 1.0), (t(20), "sell", 105.0, 1.0)]
    orders = res.orders.set_index("client_id")
    first = client_order_id(OneLevel().trader_id, t(5), SYM, "level")
    second = client_order_id(OneLevel().trader_id, pd.Timestamp(0, tz="UTC"), SYM,
                             "then:" + first)
    assert list(orders.index) == [first, second]
    assert orders.loc[second, "side"] == "sell" and orders.loc[second, "limit_price"] == 105.0
    # placed when the buy filled (the fill of 00:05-00:10 is handed at 00:05, the step)
    assert orders.loc[second, "created_at"] == t(5)
    assert res.equity["equity"].iloc[-1] == pytest.approx(1_000.0 + 10.0)


def test_with_repeat_the_level_buys_again_after_its_sell():
    res = _run(OneLevel(repeat=True))
    assert _fills(res) == [(t(10), "buy", 95.0, 1.0), (t(20), "sell", 105.0, 1.0),
                           (t(25), "buy", 95.0, 1.0)]
    assert len(res.orders) == 4  # the third buy rests at the end
    last = res.orders.iloc[-1]
    assert last["side"] == "sell" and last["status"] == "submitted"


def test_meta_of_a_follow_up_is_the_filled_orders_with_what_it_follows():
    class Peek(OneLevel):
        def on_fill(self, ctx, fill):
            order = ctx.broker.fetch_order(fill.client_id)
            # the follow-up is placed before on_fill: it is among the open orders
            self.state.setdefault("seen", []).append(
                [(o.side.value, o.meta) for o in ctx.open_orders(SYM)])
            assert order.is_final

    trader = Peek()
    res = _run(trader)
    buy_id = res.orders["client_id"].iloc[0]
    assert trader.state["seen"][0] == [("sell", {"level": 0, "after": buy_id})]


def test_a_partly_filled_order_is_followed_once_complete_for_all_it_filled():
    # the volume cap (10 % of 10 = 1 per candle) fills the buy of 2 over rows 1 and 2
    rows = [(100, 101, 99, 100, 10), (100, 100, 94, 96, 10), (96, 97, 94.5, 96, 10),
            (96, 106, 95.5, 104, 10), (104, 107, 103, 105, 10), (105, 106, 104, 105, 10)]
    res = _run(OneLevel(quantity=2.0), rows, max_volume_share=0.1)
    assert _fills(res) == [(t(10), "buy", 95.0, 1.0), (t(15), "buy", 95.0, 1.0),
                           (t(20), "sell", 105.0, 1.0), (t(25), "sell", 105.0, 1.0)]
    sell = res.orders.iloc[1]
    assert sell["quantity"] == 2.0 and sell["created_at"] == t(10)


def test_a_partly_filled_order_cancelled_has_no_follow_up():
    rows = [(100, 101, 99, 100, 10), (100, 100, 94, 96, 10), (96, 97, 94.5, 96, 10),
            (96, 106, 95.5, 104, 10)]
    res = _run(OneLevel(quantity=2.0, cancel_partial=True), rows, max_volume_share=0.1)
    assert _fills(res) == [(t(10), "buy", 95.0, 1.0)]
    assert list(res.orders["status"]) == ["cancelled"]


def test_a_follow_up_cash_cannot_cover_is_rejected_and_reported():
    class SellThenBuy(Trader):
        def on_start(self, ctx):
            ctx.buy(SYM, 1.0)  # at the open of row 1, 100: 50 of 150 left
            ctx.sell(SYM, 1.0, type="limit", price=100.2,
                     then=FollowUp(price=200.0, type="stop"))

    rows = [(100, 101, 99, 100, 10), (100, 100.5, 99, 100, 10), (100, 101, 99, 100, 10)]
    panel = make_panel(rows)
    res = replay(SellThenBuy(), panel, SimBroker(initial_cash=150.0, fee_bps=0.0),
                 start=panel.index[1])
    stop = res.orders[res.orders["type"] == "stop"]  # a stop buy of 1 at 200: 150.2 is free
    assert len(stop) == 1 and stop["side"].iloc[0] == "buy"
    assert stop["quantity"].iloc[0] == 1.0 and stop["stop_price"].iloc[0] == 200.0
    assert stop["status"].iloc[0] == "rejected" and stop["reason"].iloc[0] == "insufficient_funds"
    assert res.equity["cash"].iloc[-1] == pytest.approx(150.2)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"price": -1.0}, "price"), ({"price": None}, "price"), ({"type": "limt", "price": 1.0},
                                                             "type"),
    ({"type": "market", "price": 1.0}, "no 'price'"), ({"price": 1.0, "repeat": "yes"},
                                                      "repeat"),
    ({"price": 1.0, "side": "buy"}, "side"),
])
def test_bad_follow_ups_are_refused_naming_the_parameter(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FollowUp(**kwargs)


def test_an_order_refuses_a_follow_up_of_another_type():
    with pytest.raises(ConfigError, match="then"):
        Order(client_id="a", symbol=SYM, side="buy", quantity=1.0, then={"price": 1.0})


# ---------------------------------------------------------------- equality with on_fill


def _walk(n: int, seed: int, step_pct: float) -> Panel:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, step_pct / 100, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0.0, step_pct / 150, (2, n)))
    rows = [(o, max(o, c) * (1 + a), min(o, c) * (1 - b), c, v) for o, c, a, b, v in
            zip(open_, close, wick[0], wick[1], rng.lognormal(3.0, 1.0, n), strict=True)]
    return make_panel(rows)


class Ladder(Trader):
    """``levels`` limit buys ``step`` % apart below the first close, each with its sell one
    step up, repeating, declared with ``then`` (no ``on_fill``: replay plays it in numba)."""

    def __init__(self, levels=8, step=0.5, value=100.0):
        self.levels = levels
        self.step = step
        self.value = value

    def on_start(self, ctx):
        ref = float(ctx.candles(SYM, 1)["close"].iloc[-1])
        for k in range(1, self.levels + 1):
            price = ref * (1 - k * self.step / 100)
            ctx.buy(SYM, value=self.value, type="limit", price=price, leg=f"b{k}",
                    then=self.then(price * (1 + self.step / 100)),
                    meta={"buy": price, "sell": price * (1 + self.step / 100)})

    def then(self, price):
        return FollowUp(price=price, repeat=True)


class HandLadder(Ladder):
    """The same ladder written in ``on_fill`` (the Python path)."""

    def then(self, price):
        return None

    def on_fill(self, ctx, fill):
        order = ctx.broker.fetch_order(fill.client_id)
        if order.is_open:
            return
        q = order.filled_quantity
        if fill.side == "buy":
            ctx.sell(SYM, q, type="limit", price=order.meta["sell"], meta=order.meta)
        else:
            ctx.buy(SYM, q, type="limit", price=order.meta["buy"], meta=order.meta)


def test_the_numba_path_plays_the_stretches_between_wake_ups():
    panel = _walk(2_000, 3, 0.5)
    broker = SimBroker(initial_cash=10_000.0, fee_bps=2.0)
    res = replay(Ladder(levels=10, step=0.3), panel, broker, start=panel.index[1])
    in_segments = sum(len(s.fill_order) for s in broker._segments)
    assert len(res.fills) > 100 and in_segments >= 0.9 * len(res.fills)
    assert len(broker._fills) + in_segments == len(res.fills)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), step=st.sampled_from([0.2, 0.5, 1.0]),
       levels=st.integers(1, 12), fee=st.sampled_from([0.0, 2.0, 10.0]),
       slippage=st.sampled_from([0.0, 5.0]), cash=st.sampled_from([300.0, 10_000.0]))
def test_a_declared_ladder_trades_as_one_written_in_on_fill(seed, step, levels, fee, slippage,
                                                            cash):
    """The declared ladder, played in numba while skipping, equals itself played candle by
    candle in Python — every table — and the ladder written in ``on_fill`` (fills, equity,
    statuses); a small account runs out of cash for some levels (rejections) alike."""
    panel = _walk(600, seed, step)

    def run(kind, skip):
        broker = SimBroker(initial_cash=cash, fee_bps=fee, slippage_bps=slippage)
        res = replay(kind(levels=levels, step=step), panel, broker, start=panel.index[1],
                     skip=skip)
        return res, broker

    fast, broker = run(Ladder, True)
    slow, _ = run(Ladder, False)
    for name in ("fills", "orders", "equity", "trades", "notes"):
        pd.testing.assert_frame_equal(getattr(fast, name), getattr(slow, name))
    # (metrics count the calls of on_bar: every candle, or none)
    assert str({**fast.metrics, "decisions": 0}) == str({**slow.metrics, "decisions": 0})
    cols = ["time", "side", "price", "quantity", "fee"]
    for res in (run(HandLadder, False)[0], run(HandLadder, True)[0]):
        assert len(res.fills) == len(fast.fills)
        if len(fast.fills):
            pd.testing.assert_frame_equal(res.fills[cols], fast.fills[cols])
        pd.testing.assert_frame_equal(res.equity, fast.equity)
        assert list(res.orders["status"]) == list(fast.orders["status"])


class PanelLadder(Trader):
    """A declared ladder on every symbol, woken hourly to re-centre the levels of a symbol
    with nothing open (cancel-free: it only adds), so stretches end at wake-ups."""

    def __init__(self, levels=4, step=0.5, value=150.0, every="1h"):
        self.levels = levels
        self.step = step
        self.value = value
        self.every = every

    def on_start(self, ctx):
        self.on_bar(ctx)

    def on_bar(self, ctx):
        for symbol in ctx.symbols:
            if ctx.open_orders(symbol):
                continue
            last = ctx.candles(symbol, 1)
            if not len(last):
                continue
            ref = float(last["close"].iloc[-1])
            for k in range(1, self.levels + 1):
                price = ref * (1 - k * self.step / 100)
                ctx.buy(symbol, value=self.value, type="limit", price=price,
                        then=FollowUp(price=price * (1 + self.step / 100), repeat=k % 2 == 1))


def _walk_panel(n: int, seed: int, symbols: int, gaps: float) -> Panel:
    rng = np.random.default_rng(seed)
    fields = {f: np.full((n, symbols), np.nan) for f in ("open", "high", "low", "close",
                                                          "volume")}
    for j in range(symbols):
        one = _walk(n, seed * 7 + j, 0.4)
        for f in fields:
            fields[f][:, j] = getattr(one, f)[:, 0]
    missing = rng.random((n, symbols)) < gaps
    missing[0] = False
    for f in fields:
        fields[f][missing] = np.nan
    return Panel(index=pd.date_range("2021-01-01", periods=n, freq="5min", tz="UTC"),
                 symbols=tuple(f"S{j}/USDT" for j in range(symbols)), timeframe="5m",
                 **fields)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), symbols=st.integers(1, 3),
       gaps=st.sampled_from([0.0, 0.05]), cash=st.sampled_from([500.0, 5_000.0]),
       fee=st.sampled_from([0.0, 10.0]), end=st.integers(300, 700))
def test_declared_orders_on_several_symbols_with_gaps_and_wake_ups_equal_the_python_path(
        seed, symbols, gaps, cash, fee, end):
    panel = _walk_panel(700, seed, symbols, gaps)

    def run(numba):
        broker = SimBroker(initial_cash=cash, fee_bps=fee, slippage_bps=3.0)
        with mock.patch.object(DeclaredPath, "ready", lambda self: numba and ready(self)):
            return replay(PanelLadder(), panel, broker, start=panel.index[12],
                          end=panel.index[end - 1]), broker

    ready = DeclaredPath.ready
    (fast, broker), (slow, python) = run(True), run(False)
    assert not python._segments
    for name in ("fills", "orders", "equity", "trades"):
        pd.testing.assert_frame_equal(getattr(fast, name), getattr(slow, name))
    assert [f.trade_id for f in broker.fills()] == list(fast.fills.get("trade_id", []))
    for cid in fast.orders["client_id"]:
        assert broker.fetch_order(cid).client_id == cid


class PeekingLadder(HandLadder):
    """Re-arms a level only when the close an hour ahead is higher: it reads a captured
    frame of every candle (a leak check_trader must catch by the orders, not by a client id
    that changed with the cut frame)."""

    def __init__(self, levels=8, step=0.5, value=100.0, future=None):
        super().__init__(levels=levels, step=step, value=value)
        self.future = future

    def on_fill(self, ctx, fill):
        order = ctx.broker.fetch_order(fill.client_id)
        if order.is_open or fill.side == "buy":
            return super().on_fill(ctx, fill)
        ahead = self.future.loc[self.future["timestamp"] > ctx.now, "close"]
        if len(ahead) > 12 and ahead.iloc[12] > ahead.iloc[0]:
            super().on_fill(ctx, fill)


def test_check_trader_passes_honest_follow_ups_and_catches_a_peek():
    """An order placed at t in answer to a fill inside candle t depends on that candle,
    which the cut at t does not have; check_trader leaves those out at t (``inside_candle``),
    for declared and on_fill follow-ups alike, and still catches a trader that peeks."""
    from core_engine.errors import LookaheadError
    from core_engine.testing import check_trader

    panel = _walk(400, 3, 0.5)
    check_trader(Ladder(), panel, start=panel.index[1], n_times=8)
    check_trader(HandLadder(), panel, start=panel.index[1], n_times=8)
    res = replay(HandLadder(), panel, SimBroker(), start=panel.index[1])
    assert res.orders["inside_candle"].any() and not res.orders["inside_candle"].all()
    frame = panel.frame(SYM)
    with pytest.raises(LookaheadError):
        check_trader(PeekingLadder(future=frame), panel, start=panel.index[1], n_times=40)


def test_the_take_profit_of_an_ioc_entry_rests_until_it_fills():
    """An IOC limit buy the open crosses fills at once; its follow-up rests (gtc), fills at
    105 two candles later, and its repeat buys again: follow-ups do not copy the IOC."""
    class IocEntry(OneLevel):
        def on_start(self, ctx):
            ctx.buy(SYM, 1.0, type="limit", price=100.5, leg="entry", time_in_force="ioc",
                    then=FollowUp(price=105.0, repeat=True))

    res = _run(IocEntry())
    assert _fills(res)[:2] == [(t(5), "buy", 100.0, 1.0), (t(20), "sell", 105.0, 1.0)]
    orders = res.orders
    assert orders["time_in_force"].tolist()[:3] == ["ioc", "gtc", "gtc"]
    assert orders["status"].tolist()[:2] == ["filled", "filled"]
