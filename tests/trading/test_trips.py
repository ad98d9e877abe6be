"""The replay's trades (``trading/trips.py``: fills as columns, round trips in numba) equal a
plain-Python grouping of the broker's Fill objects written here, for random traders that
add to positions, sell in parts, rebalance in parts and note weights, on both the numba
(declared orders) and the Python path."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.trading import FollowUp, SimBroker, Trader, replay
from core_engine.trading._fast import DeclaredPath
from tests.trading.test_declared_review import Chaos
from tests.trading.test_follow_up import _walk_panel

_READY = DeclaredPath.ready


def reference_trades(broker: SimBroker) -> pd.DataFrame:
    """Round trips of ``broker.all_fills()``: per symbol, from the first buy of a flat
    position to the sell that makes it flat; a sell tagged ``rebalance`` that leaves part of
    the position is a trip of its own at average cost; the basis is every buy's value, fees
    and noted weight (``meta["weight"]`` times the share of its order the buy filled), its
    quantity the position's at the first closing sell plus what was bought after it."""
    fills = broker.all_fills()
    orders = {f.client_id: broker.fetch_order(f.client_id) for f in fills}
    open_ = {}  # symbol -> state
    trips = []
    for i, f in enumerate(fills):
        order = orders[f.client_id]
        s = open_.setdefault(f.symbol, {"held": 0.0, "bought": 0.0, "value": 0.0,
                                        "fees": 0.0, "weight": 0.0, "first": None,
                                        "basis": None, "sells": []})
        if f.side.value == "buy":
            w = order.meta.get("weight")
            share = math.nan if w is None or not order.filled_quantity \
                else float(w) * f.quantity / float(order.filled_quantity)
            if s["first"] is None or f.time < fills[s["first"]].time:  # the earliest buy
                s["first"] = i
            s["held"] += f.quantity
            s["bought"] += f.quantity
            s["value"] += f.quantity * f.price
            s["fees"] += f.fee
            s["weight"] += share
            if s["basis"] is not None:  # bought while closing: this trip closes it too
                s["basis"] += f.quantity
            continue
        if order.tag == "rebalance" and s["first"] is not None \
                and s["held"] - f.quantity > s["bought"] * 1e-9:
            part = f.quantity / (s["held"] if s["basis"] is None else s["basis"])
            trips.append((s["first"], i, (f.quantity, s["value"] * part, s["fees"] * part,
                                          s["weight"] * part), [i]))
            s["held"] -= f.quantity
            for key in ("value", "fees", "weight"):
                s[key] *= 1.0 - part
            if s["basis"] is not None:
                s["basis"] -= f.quantity
            continue
        if s["basis"] is None:  # the quantity the closing sells close
            s["basis"] = s["held"]
        s["sells"].append(i)
        s["held"] -= f.quantity
        if s["held"] <= s["bought"] * 1e-9:
            if s["first"] is not None:
                trips.append((s["first"], i, (s["basis"], s["value"], s["fees"], s["weight"]),
                              s["sells"]))
            del open_[f.symbol]
    rows = []
    for first, last, (qty, value, fees, weight), sells in trips:
        sold = sum(fills[k].quantity for k in sells)
        sold_value = sum(fills[k].quantity * fills[k].price for k in sells)
        sold_fees = sum(fills[k].fee for k in sells)
        rows.append({"symbol": fills[first].symbol, "entry_time": fills[first].time,
                     "exit_time": fills[last].time, "quantity": qty, "entry_value": value,
                     "entry_price": value / qty, "exit_price": sold_value / sold,
                     "weight": weight, "fees": fees + sold_fees,
                     "pnl": sold_value - value - fees - sold_fees})
    frame = pd.DataFrame(rows, columns=["symbol", "entry_time", "exit_time", "quantity",
                                        "entry_value", "entry_price", "exit_price", "weight",
                                        "fees", "pnl"])
    return frame.sort_values(["entry_time", "symbol", "exit_time"], kind="stable",
                             ignore_index=True)


class Weighted(Trader):
    """Limit buys noting a weight (some none), some adding to a position, with follow-ups;
    sells of parts, some tagged ``rebalance``, on a cadence."""

    def __init__(self, seed=0, every="1h"):
        self.seed = seed
        self.every = every

    def on_start(self, ctx):
        self.on_bar(ctx)

    def on_bar(self, ctx):
        rng = np.random.default_rng([self.seed, ctx.now.value % (2**62)])
        for sym in ctx.symbols:
            last = ctx.candles(sym, 1)
            if not len(last):
                continue
            ref = float(last["close"].iloc[-1])
            for k in range(int(rng.integers(0, 3))):
                price = ref * (1 - (k + 1) * float(rng.choice([0.2, 0.5])) / 100)
                meta = {} if rng.random() < 0.2 else {"weight": float(rng.uniform(0.01, 0.3))}
                then = None if rng.random() < 0.3 else FollowUp(
                    price=price * 1.004, repeat=bool(rng.random() < 0.5))
                ctx.buy(sym, value=float(rng.choice([50.0, 120.0])), type="limit", price=price,
                        meta=meta, then=then, leg=f"b{k}")
            held = ctx.position(sym)
            if held > 0 and rng.random() < 0.5:
                part = held * float(rng.choice([0.3, 0.5, 1.0]))
                ctx.sell(sym, part, type="limit", price=ref * 1.002, leg="s",
                         tag="rebalance" if rng.random() < 0.5 else "")


def _replay(make, panel, numba, **kwargs):
    broker = SimBroker(initial_cash=2_000.0, maker_bps=2.0, taker_bps=5.0)
    with mock.patch.object(DeclaredPath, "ready", lambda self: numba and _READY(self)):
        res = replay(make(), panel, broker, start=panel.index[1], **kwargs)
    return res, broker


def _check(res, broker):
    want = reference_trades(broker)
    got = res.trades
    assert len(got) == len(want)
    for col in ("symbol", "entry_time", "exit_time"):
        assert got[col].tolist() == want[col].tolist(), col
    for col in ("quantity", "entry_value", "entry_price", "exit_price", "weight", "fees",
                "pnl"):
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float),
                                   rtol=1e-12, atol=1e-12, err_msg=col)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), symbols=st.integers(1, 3),
       gaps=st.sampled_from([0.0, 0.05]), numba=st.booleans(),
       every=st.sampled_from(["30min", "2h"]))
def test_the_trades_equal_a_plain_grouping_of_the_fills(seed, symbols, gaps, numba, every):
    panel = _walk_panel(200, seed, symbols, gaps)
    res, broker = _replay(lambda: Weighted(seed=seed, every=every), panel, numba)
    _check(res, broker)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), symbols=st.integers(1, 3), numba=st.booleans())
def test_the_trades_of_a_chaotic_trader_equal_the_plain_grouping(seed, symbols, numba):
    panel = _walk_panel(160, seed, symbols, 0.03)
    res, broker = _replay(lambda: Chaos(seed=seed, every="1h", sells=0.6), panel, numba)
    _check(res, broker)


def hand_trades(fills: list[dict]) -> pd.DataFrame:
    """The trades of hand-made fills of ``A/USDT`` on flat candles (open and close 100, low
    90, high 125) from 10:00: each fill a dict of ``side``, ``q``, ``price`` and optionally
    ``at`` (its candle row; by default its position + 1), ``fee``, ``tag``, ``meta``,
    ``type`` (``limit``), ``reason`` (``limit`` / ``take_profit``), ``at_open``."""
    from core_engine.data.panel import Panel
    from core_engine.trading import Order
    from core_engine.trading.orders import Fill, OrderSide
    from core_engine.trading.trips import FillTable, _Orders, trades_frame

    n = len(fills) + 2
    index = pd.date_range("2024-01-01 10:00", periods=n, freq="5min", tz="UTC")
    flat = np.full((n, 1), 100.0)
    panel = Panel(index=index, symbols=("A/USDT",), timeframe="5m", open=flat, high=flat + 25,
                  low=flat - 10, close=flat, volume=np.ones((n, 1)))
    broker = SimBroker()
    broker.bind(panel, 10_000.0)
    orders = _Orders(broker)
    for k, spec in enumerate(fills):
        cid, side, q, at = f"o{k}", spec["side"], spec["q"], spec.get("at", k + 1)
        kind = spec.get("type", "limit")
        order = Order(client_id=cid, symbol="A/USDT", side=side, type=kind, quantity=q,
                      limit_price=spec["price"] if kind == "limit" else None,
                      tag=spec.get("tag", ""), meta=spec.get("meta", {}))
        order.filled_quantity = q
        orders[cid] = broker._orders[cid] = order
        reason = spec.get("reason", "limit" if side == "buy" else "take_profit")
        fill = Fill(trade_id=f"t{k}", client_id=cid, symbol="A/USDT", side=OrderSide(side),
                    time=index[at], price=spec["price"], quantity=q, fee=spec.get("fee", 0.0),
                    liquidity="maker", reason=reason)
        broker._fills.append(fill)
        broker._fill_rows[fill.trade_id] = (at, spec.get("at_open", False))
    return trades_frame(FillTable(broker, orders), orders, broker, panel)


def test_a_partial_rebalancing_sale_is_a_trip_of_its_own_by_hand():
    """Hand-worked: buy 2 @ 100 (weight 0.2, fee 0.1), rebalance-sell 0.5 @ 110 (fee 0.05),
    then sell 1.5 @ 120 (fee 0.2): two trips, the first a quarter of the position."""
    market = {"type": "market", "reason": "market", "at_open": True}
    trades = hand_trades([
        {"side": "buy", "q": 2.0, "price": 100.0, "fee": 0.1, "meta": {"weight": 0.2},
         **market},
        {"side": "sell", "q": 0.5, "price": 110.0, "fee": 0.05, "tag": "rebalance", **market},
        {"side": "sell", "q": 1.5, "price": 120.0, "fee": 0.2, **market}])
    assert trades["quantity"].tolist() == [0.5, 1.5]
    np.testing.assert_allclose(trades["entry_value"], [50.0, 150.0])
    np.testing.assert_allclose(trades["weight"], [0.05, 0.15])
    np.testing.assert_allclose(trades["fees"], [0.025 + 0.05, 0.075 + 0.2])
    np.testing.assert_allclose(trades["pnl"], [55.0 - 50.0 - 0.075, 180.0 - 150.0 - 0.275])
    assert trades["exit_reason"].tolist() == ["rebalance", "market"]


def test_a_grid_that_buys_again_before_it_is_flat_counts_every_buy_by_hand():
    """Hand-worked: buy 1 @ 100, buy 1 @ 98, sell 1 @ 101, buy 1 @ 97, sell 2 @ 99 (no
    fee): one trip of 3 bought for 295 and sold for 299, pnl 4 (the basis frozen at the
    first sale counted 198 of cost against 299 of sales: pnl 101)."""
    trades = hand_trades([{"side": side, "q": q, "price": price} for side, q, price in [
        ("buy", 1.0, 100.0), ("buy", 1.0, 98.0), ("sell", 1.0, 101.0), ("buy", 1.0, 97.0),
        ("sell", 2.0, 99.0)]])
    assert len(trades) == 1
    row = trades.iloc[0]
    assert row["quantity"] == 3.0 and row["entry_value"] == 295.0
    assert row["pnl"] == 4.0
    assert row["exit_price"] == 299.0 / 3.0 and row["entry_price"] == 295.0 / 3.0


def test_the_entry_is_the_earliest_buy_when_a_fill_at_an_open_follows_one_inside():
    """In one candle's matching, an older order filled inside the candle (stamped its close,
    10:10) can be made before a limit buy placed at its open that the open crosses (stamped
    the open, 10:05). By hand, fills made in the order 10:10, 10:05 (one trip): the trade
    enters at 10:05, the earlier buy, and reads that buy's order (its rank)."""
    trades = hand_trades([
        {"side": "buy", "q": 1.0, "price": 99.0, "at": 2, "meta": {"rank": 1}},
        {"side": "buy", "q": 1.0, "price": 98.0, "at": 1, "meta": {"rank": 2}},
        {"side": "sell", "q": 2.0, "price": 101.0, "at": 3}])
    assert len(trades) == 1
    assert trades["entry_time"].iloc[0] == pd.Timestamp("2024-01-01 10:05", tz="UTC")
    assert trades["rank"].iloc[0] == 2 and trades["entry_value"].iloc[0] == 197.0
