"""What open orders hold of the cash and of the base, as the SimBroker keeps it per order
(``_open_buys``, ``_sell_holds``), equals the sum over the open orders computed afresh, bit
for bit, after any sequence of placements, cancellations, full and partial fills (with
``max_volume_share``) and an account replaced wholesale (a PaperBroker restored)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core_engine.data import Panel
from core_engine.errors import OrderRejected
from core_engine.live.paper import _ACCOUNT
from core_engine.trading import Order, OrderSide, SimBroker

SYMBOLS = ("AAA/USDT", "BBB/USDT")


def panel(seed: int, n: int = 40, volume: float | None = None) -> Panel:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (n, 2)), axis=0))
    open_ = np.vstack([np.full((1, 2), 100.0), close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.005, (n, 2))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.005, (n, 2))))
    volume = rng.uniform(1.0, 20.0, (n, 2)) if volume is None else np.full((n, 2), volume)
    for field in (open_, high, low, close, volume):  # a missing candle
        field[n // 2, 1] = np.nan
    index = pd.date_range("2021-01-01", periods=n, freq="5min", tz="UTC")
    return Panel(index=index, symbols=SYMBOLS, timeframe="5m", open=open_, high=high, low=low,
                 close=close, volume=volume)


def resummed_cash(b: SimBroker, exclude: str | None) -> float:
    """The cash the open buys hold, summed afresh in placement order (the former code)."""
    return sum(b._cost(o, b._cols[o.symbol]) for o in b.open_orders()
               if o.side is OrderSide.BUY and o.client_id != exclude)


def resummed_base(b: SimBroker, col: int) -> float:
    """The base the open sells of ``col`` hold, afresh (the former code)."""
    groups: dict[str, float] = {}
    total = 0.0
    for o in b.open_orders():
        if o.side is OrderSide.SELL and b._cols[o.symbol] == col:
            if o.group is None:
                total += o.remaining
            else:
                groups[o.group] = max(groups.get(o.group, 0.0), o.remaining)
    return total + sum(groups.values())


def check_holds(b: SimBroker) -> None:
    buys = [o.client_id for o in b.open_orders() if o.side is OrderSide.BUY]
    for exclude in [None, "nobody", *buys[:2]]:
        assert b._reserved_cash(exclude) == resummed_cash(b, exclude)
    for col in range(len(SYMBOLS)):
        assert b._reserved_base(col, None) == resummed_base(b, col)


OPS = st.lists(st.tuples(
    st.sampled_from(["limit_buy", "quote_limit_buy", "stop_buy", "market_buy", "quote_buy",
                     "limit_sell", "stop_sell", "trail_sell", "oco", "cancel", "step",
                     "step", "step", "step", "save", "restore"]),
    st.integers(0, 1),                       # symbol
    st.floats(0.9, 1.1),                     # price factor from the last close
    st.floats(0.2, 8.0),                     # quantity
    st.integers(0, 50),                      # which open order (cancel)
), min_size=8, max_size=60)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), ops=OPS, share=st.sampled_from([None, 0.05, 0.3, 1.0]),
       fee=st.sampled_from([0.0, 10.0]))
def test_held_cash_and_base_equal_the_open_orders_summed_afresh(seed, ops, share, fee):
    b = SimBroker(panel(seed), initial_cash=5_000.0, fee_bps=fee, max_volume_share=share)
    row = 1
    b.begin_row(row)
    saved = pickle.dumps({name: getattr(b, name) for name in _ACCOUNT})
    for i, (op, j, factor, qty, pick) in enumerate(ops):
        symbol = SYMBOLS[j]
        ref = b.last_prices()[j]
        price = float((ref if np.isfinite(ref) else 100.0) * factor)
        kw: dict = {"client_id": f"o{i}", "symbol": symbol}
        if op == "cancel":
            open_ = b.open_orders()
            if open_:
                b.cancel(open_[pick % len(open_)].client_id)
        elif op == "step":
            b.match_row(row)
            row += 1
            if row >= b.panel.n_times:
                break
            b.begin_row(row)
        elif op == "save":  # as PaperBroker._save
            saved = pickle.dumps({name: getattr(b, name) for name in _ACCOUNT})
        elif op == "restore":  # the account replaced wholesale (PaperBroker._restore)
            for name, value in pickle.loads(saved).items():
                setattr(b, name, value)
        else:
            if op == "limit_buy":
                kw.update(side="buy", type="limit", limit_price=price, quantity=qty)
            elif op == "quote_limit_buy":
                kw.update(side="buy", type="limit", limit_price=price, quote_quantity=qty * 50)
            elif op == "stop_buy":
                kw.update(side="buy", type="stop", stop_price=price, quantity=qty)
            elif op == "market_buy":
                kw.update(side="buy", quantity=qty)
            elif op == "quote_buy":
                kw.update(side="buy", quote_quantity=qty * 50)
            elif op == "limit_sell":
                kw.update(side="sell", type="limit", limit_price=price, quantity=qty)
            elif op == "stop_sell":
                kw.update(side="sell", type="stop", stop_price=price, quantity=qty)
            elif op == "trail_sell":
                kw.update(side="sell", type="stop", trail_pct=1.0, trail_reference=price,
                          quantity=qty)
            else:  # an OCO pair: a stop below and a target above
                b_kw = dict(kw, client_id=f"o{i}t", side="sell", type="limit",
                            limit_price=price * 1.05, quantity=qty, group=f"g{i}")
                kw.update(side="sell", type="stop", stop_price=price * 0.95, quantity=qty / 2,
                          group=f"g{i}")
                try:
                    b.place(Order(**b_kw))
                except OrderRejected:
                    pass
            try:
                b.place(Order(**kw))
            except OrderRejected:  # InsufficientFunds included
                pass
        check_holds(b)


def test_partly_filled_buys_and_sells_hold_what_remains():
    """The cases the property must meet: a buy and a sell partly filled (volume 4, share
    0.05: 0.2 per candle), each checked while it stays open."""
    b = SimBroker(panel(3, volume=4.0), initial_cash=5_000.0, fee_bps=10.0,
                  max_volume_share=0.05)
    b.begin_row(1)
    buy = b.place(Order(client_id="b", symbol="AAA/USDT", side="buy", type="limit",
                        limit_price=200.0, quantity=3.0))
    b.match_row(1)
    b.begin_row(2)
    assert buy.status.value == "partially_filled" and buy.remaining == 2.6
    check_holds(b)
    assert b._reserved_cash(None) == 2.6 * 200.0 * (1 + 0.001)
    b.cancel("b")
    sell = b.place(Order(client_id="s", symbol="AAA/USDT", side="sell", type="limit",
                         limit_price=1.0, quantity=0.3))
    b.match_row(2)  # the buy took row 2's share at the open: the sell waits
    b.begin_row(3)
    assert sell.status.value == "partially_filled" and sell.remaining == 0.3 - 0.2
    check_holds(b)
    assert b._reserved_base(0, None) == 0.3 - 0.2
