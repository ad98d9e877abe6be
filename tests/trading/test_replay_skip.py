"""The skipping replay equals the every-candle replay exactly, on drawn ladders, brackets
(OCO stop + target, trailing stops), stop buys, IOC and market orders over candles with
gaps; and the clock a trader reads in ``on_fill`` is the candle being matched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core_engine.data import Panel
from core_engine.trading import SimBroker, Trader, replay
from core_engine.trading.book import RestingBook
from core_engine.trading.orders import Order


def gappy_panel(seed: int, n: int = 400, n_symbols: int = 2, gap_share: float = 0.05,
                outage: bool = True) -> Panel:
    """A random walk per symbol with missing candles (single ones and, with ``outage``,
    one stretch where every symbol is missing)."""
    rng = np.random.default_rng(seed)
    ret = rng.normal(0.0, 0.004, (n, n_symbols))
    close = 100.0 * np.exp(np.cumsum(ret, axis=0))
    open_ = np.vstack([np.full((1, n_symbols), 100.0), close[:-1]])
    # some opens gap away from the last close (gap-through fills at the open)
    jump = rng.random((n, n_symbols)) < 0.03
    open_ = np.where(jump, open_ * (1 + rng.normal(0, 0.01, (n, n_symbols))), open_)
    wick = np.abs(rng.normal(0.0, 0.003, (2, n, n_symbols)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = rng.lognormal(3.0, 1.0, (n, n_symbols))
    missing = rng.random((n, n_symbols)) < gap_share
    missing[:5] = False
    if outage:
        a = int(rng.integers(n // 4, n // 2))
        missing[a:a + int(rng.integers(2, 12))] = True
    arrays = [np.where(missing, np.nan, x) for x in (open_, high, low, close, volume)]
    index = pd.date_range("2022-03-01", periods=n, freq="5min", tz="UTC")
    return Panel(index=index, symbols=tuple(f"S{j}/USDT" for j in range(n_symbols)),
                 timeframe="5m", **dict(zip(("open", "high", "low", "close", "volume"), arrays,
                                            strict=True)))


class Drawn(Trader):
    """A ladder of limit buys (and optionally stop buys) per symbol; each buy fill rests an
    exit drawn from: a take-profit limit, an OCO stop + target bracket, a trailing stop
    (with or without a target), or a market sell; an exit re-arms the level. Every
    ``on_fill`` records what the trader saw: (now, fill time, trade id, client id)."""

    def __init__(self, seed=0, levels=4, step_pct=0.6, value=300.0, stop_buys=False,
                 ioc_share=0.0):
        self.seed = seed
        self.levels = levels
        self.step_pct = step_pct
        self.value = value
        self.stop_buys = stop_buys
        self.ioc_share = ioc_share

    def on_start(self, ctx):
        self.state["rng"] = np.random.default_rng(self.seed)
        self.state["seen"] = []
        self.state["n"] = 0
        for symbol in ctx.symbols:
            ref = float(ctx.candles(symbol, 1)["close"].iloc[-1])
            for k in range(1, self.levels + 1):
                self._arm(ctx, symbol, ref * (1 - k * self.step_pct / 100), k)
            if self.stop_buys:
                ctx.buy(symbol, value=self.value, type="stop",
                        price=ref * (1 + 2 * self.step_pct / 100), meta={"level": 0,
                                                                          "ref": ref})

    def _leg(self) -> str:
        self.state["n"] += 1
        return f"x{self.state['n']}"

    def _arm(self, ctx, symbol, price, k):
        rng = self.state["rng"]
        tif = "ioc" if rng.random() < self.ioc_share else "gtc"
        ctx.buy(symbol, value=self.value, type="limit", price=price, leg=self._leg(),
                time_in_force=tif, meta={"level": k, "ref": price})

    def on_fill(self, ctx, fill):
        self.state["seen"].append((ctx.now, fill.time, fill.trade_id, fill.client_id))
        order = ctx.broker.fetch_order(fill.client_id)
        if order.is_open:
            return
        symbol, meta = order.symbol, order.meta
        if fill.side == "sell":
            if "level" in meta and ctx.broker.position(symbol) <= 1e-12 \
                    and not ctx.open_orders(symbol):
                self._arm(ctx, symbol, meta["ref"], meta["level"])
            return
        qty = order.filled_quantity
        price = order.average_price
        step = self.step_pct / 100
        meta = {"level": meta["level"], "ref": meta["ref"]}
        kind = int(self.state["rng"].integers(0, 4))
        group = f"g{self._leg()}"
        if kind == 0:
            ctx.sell(symbol, qty, type="limit", price=price * (1 + step), leg=self._leg(),
                     meta=meta)
        elif kind == 1:
            ctx.sell(symbol, qty, type="stop", price=price * (1 - 2 * step), group=group,
                     leg=self._leg(), meta=meta)
            ctx.sell(symbol, qty, type="limit", price=price * (1 + step), group=group,
                     leg=self._leg(), meta=meta)
        elif kind == 2:
            ctx.sell(symbol, qty, type="stop", trail_pct=100 * step, trail_reference=price,
                     group=group, leg=self._leg(), meta=meta)
            if self.state["rng"].random() < 0.5:
                ctx.sell(symbol, qty, type="limit", price=price * (1 + 2 * step), group=group,
                         leg=self._leg(), meta=meta)
        else:
            ctx.sell(symbol, qty, leg=self._leg(), meta=meta)


def _both(trader, panel, **broker):
    fast = replay(trader.clone(), panel, SimBroker(**broker), start=panel.index[3])
    slow = replay(trader.clone(), panel, SimBroker(**broker), start=panel.index[3], skip=False)
    return fast, slow


def _assert_same(fast, slow):
    pd.testing.assert_frame_equal(fast.fills, slow.fills)
    pd.testing.assert_frame_equal(fast.orders, slow.orders)
    pd.testing.assert_frame_equal(fast.trades, slow.trades)
    pd.testing.assert_frame_equal(fast.equity, slow.equity)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), levels=st.integers(1, 6),
       step=st.sampled_from([0.2, 0.5, 1.0]), stop_buys=st.booleans(),
       ioc=st.sampled_from([0.0, 0.3]), share=st.sampled_from([None, 0.05, 1.0]),
       slippage=st.sampled_from([0.0, 5.0]), gaps=st.sampled_from([0.0, 0.05, 0.2]))
def test_skipping_equals_every_candle_on_drawn_traders(seed, levels, step, stop_buys, ioc,
                                                       share, slippage, gaps):
    panel = gappy_panel(seed, n=300, gap_share=gaps)
    trader = Drawn(seed=seed, levels=levels, step_pct=step, stop_buys=stop_buys,
                   ioc_share=ioc)
    fast, slow = _both(trader, panel, fee_bps=7, slippage_bps=slippage,
                       max_volume_share=share)
    _assert_same(fast, slow)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_drawn_traders_fill_every_kind_of_exit(seed):
    """The drawn runs are not vacuous: they fill limits, stops, trails, targets, markets."""
    panel = gappy_panel(seed, n=1500, gap_share=0.05)
    fast, slow = _both(Drawn(seed=seed, levels=5, stop_buys=True), panel, fee_bps=5)
    _assert_same(fast, slow)
    reasons = set(fast.fills["reason"])
    assert {"limit", "take_profit", "market"} <= reasons
    assert reasons & {"stop_loss", "trailing_stop"}
    assert len(fast.fills) > 40


def test_on_fill_reads_the_candle_being_matched():
    """``ctx.now`` in ``on_fill`` is the open of the candle the fill happened on: its time
    for a fill at the open, one candle before it for a fill inside the candle (reported
    when that candle is matched) — in both modes, after any jump of the skipping search."""
    panel = gappy_panel(5, n=1200, gap_share=0.05)
    step = pd.Timedelta(panel.step_ns, "ns")
    for skip in (True, False):
        trader = Drawn(seed=5, levels=5, stop_buys=True)
        result = replay(trader, panel, SimBroker(fee_bps=5), start=panel.index[3], skip=skip)
        seen = trader.state["seen"]
        assert len(seen) == len(result.fills) > 40
        at_open = inside = 0
        for now, fill_time, trade_id, _ in seen:
            row = result.fills.set_index("trade_id").loc[trade_id]
            assert row["time"] == fill_time
            # a fill at the open: time == now; inside the candle: its close == now + step
            assert fill_time in (now, now + step), (skip, now, fill_time)
            at_open += fill_time == now
            inside += fill_time == now + step
        assert at_open > 0 and inside > 0


def test_on_fill_now_after_a_long_jump():
    """A ladder far below the price: the search jumps hundreds of candles to the first
    fill, and on_fill reads that candle's time (not the row the search started from)."""
    n = 600
    close = np.full(n, 100.0)
    close[450:] = 90.0
    low = close[:, None] * 0.999
    low[300, 0] = 94.0  # a wick through the buy at 95, inside candle 300
    panel = Panel(index=pd.date_range("2022-01-01", periods=n, freq="5min", tz="UTC"),
                  symbols=("S0/USDT",), timeframe="5m", open=close[:, None].copy(),
                  high=close[:, None] * 1.001, low=low, close=close[:, None].copy(),
                  volume=np.ones((n, 1)))
    for skip in (True, False):
        trader = Drawn(seed=0, levels=1, step_pct=5.0)
        replay(trader, panel, SimBroker(fee_bps=0), start=panel.index[1], skip=skip)
        first = trader.state["seen"][0]
        assert first[0] == panel.index[300] and first[1] == panel.index[301], skip


def test_resting_book_keeps_placement_order_and_group_targets():
    cols = {"A/USDT": 0}
    orders = [Order(client_id=f"c{k}", symbol="A/USDT", side="sell", type="limit",
                    quantity=1.0, limit_price=100.0 + k) for k in range(200)]
    book = RestingBook(cols)
    for o in orders:
        book.add(o)
    for o in orders[:190]:
        book.remove(o)
    book.add(Order(client_id="stop", symbol="A/USDT", side="sell", type="stop", quantity=1.0,
                   stop_price=90.0, group="g"))
    assert [o.client_id for o in book.orders if o is not None] == \
        [o.client_id for o in orders[190:]] + ["stop"]
    assert book.n == 11  # compacted while adding
    k = book.slots["stop"]
    assert np.isnan(book.records[k]["target"])
    target = Order(client_id="tp", symbol="A/USDT", side="sell", type="limit", quantity=1.0,
                   limit_price=120.0, group="g")
    book.add(target)
    assert book.records[book.slots["stop"]]["target"] == 120.0
    book.remove(target)
    assert np.isnan(book.records[book.slots["stop"]]["target"])
    assert [int(r["kind"]) for r in book.records[: book.n] if r["kind"] >= 0] == [1] * 10 + [2]


def _brute_next_event(open_, high, low, records, start, stop):
    """The first row where an order triggers, order by order (the search's definition)."""
    from core_engine.trading._kernels import order_triggers

    recs = records.copy()
    for r in range(start, stop):
        for rec in recs:
            if rec["kind"] < 0 or np.isnan(open_[r, rec["col"]]):
                continue
            c = rec["col"]
            if order_triggers(rec["side"], rec["kind"], rec["level"], rec["target"],
                              rec["trail_frac"], rec["trail_dist"], rec["highest"],
                              open_[r, c], high[r, c], low[r, c]):
                return r, recs
        for rec in recs:
            trail = not (np.isnan(rec["trail_frac"]) and np.isnan(rec["trail_dist"]))
            if rec["kind"] >= 0 and trail and high[r, rec["col"]] > rec["highest"]:
                rec["highest"] = high[r, rec["col"]]
    return stop, recs


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 100_000), m=st.integers(1, 12))
def test_search_bounds_equal_checking_every_order(seed, m):
    """The per-symbol bounds of ``next_event_row`` find exactly the row a check of every
    order on every candle finds (limit/stop buys, limit sells, fixed and trailing stops with
    and without OCO targets, market orders, free slots, missing candles)."""
    from core_engine.trading._kernels import next_event_row
    from core_engine.trading.orders import RESTING_DTYPE

    rng = np.random.default_rng(seed)
    n, cols = 200, 3
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, (n, cols)), axis=0))
    open_ = close * (1 + rng.normal(0, 0.002, (n, cols)))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.002, (n, cols))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.002, (n, cols))))
    gone = rng.random((n, cols)) < 0.1
    open_, high, low = (np.where(gone, np.nan, x) for x in (open_, high, low))
    recs = np.zeros(m, dtype=RESTING_DTYPE)
    nan = np.nan
    for k in range(m):
        c = int(rng.integers(0, cols))
        ref = close[0, c] * (1 + rng.normal(0, 0.02))
        kind = int(rng.choice([0, 1, 1, 2, 2, 2, 3, -1]))  # 3: a trailing stop
        trail = kind == 3
        side = int(rng.integers(0, 2)) if kind in (1, 2) else 1
        recs[k] = (c, side, 2 if trail else kind, nan if trail and rng.random() < 0.5 else ref,
                   ref * 1.04 if kind in (2, 3) and side == 1 and rng.random() < 0.5 else nan,
                   0.01 if trail else nan, 0.05 if trail and rng.random() < 0.3 else nan,
                   close[0, c] if trail else nan)
        if kind == 0 and rng.random() < 0.8:
            recs[k]["kind"] = -1  # mostly no market order (it triggers at once)
    start = int(rng.integers(0, 50))
    want, want_recs = _brute_next_event(open_, high, low, recs, start, n)
    got_recs = recs.copy()
    got = next_event_row(open_, high, low, got_recs, m, start, n)
    assert got == want
    trails = ~(np.isnan(recs["trail_frac"]) & np.isnan(recs["trail_dist"])) & (recs["kind"] >= 0)
    np.testing.assert_array_equal(got_recs["highest"][trails], want_recs["highest"][trails])
