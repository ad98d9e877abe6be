"""Orders: the written status table, fills, client ids, validation."""

from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest

from core_engine.errors import ConfigError, OrderStateError
from core_engine.trading import (
    TRANSITIONS,
    Fill,
    Order,
    OrderStatus,
    check_transition,
    client_order_id,
)

S = OrderStatus


def test_every_transition_is_allowed_or_an_error():
    allowed = {(S.NEW, S.SUBMITTED), (S.NEW, S.REJECTED), (S.NEW, S.UNKNOWN),
               (S.SUBMITTED, S.PARTIALLY_FILLED), (S.SUBMITTED, S.FILLED),
               (S.SUBMITTED, S.CANCELLED), (S.SUBMITTED, S.REJECTED), (S.SUBMITTED, S.UNKNOWN),
               (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED), (S.PARTIALLY_FILLED, S.FILLED),
               (S.PARTIALLY_FILLED, S.CANCELLED), (S.PARTIALLY_FILLED, S.UNKNOWN)}
    allowed |= {(S.UNKNOWN, s) for s in S if s is not S.NEW}
    for old, new in itertools.product(S, S):
        if (old, new) in allowed:
            check_transition(old, new)
        else:
            with pytest.raises(OrderStateError, match=f"cannot go from '{old.value}'"):
                check_transition(old, new, "cid")
    for final in (S.FILLED, S.CANCELLED, S.REJECTED):
        assert TRANSITIONS[final] == frozenset()


def _fill(order, qty, price, fee=0.0, n=1):
    return Fill(trade_id=f"t{n}", client_id=order.client_id, symbol=order.symbol,
                side=order.side, time=pd.Timestamp("2021-01-01", tz="UTC"), price=price,
                quantity=qty, fee=fee)


def test_partial_fills_average_price_and_final_status():
    order = Order(client_id="a", symbol="BTC/USDT", side="buy", quantity=3.0)
    order.transition("submitted")
    order.apply_fill(_fill(order, 1.0, 100.0, fee=0.1))
    assert order.status is S.PARTIALLY_FILLED and order.remaining == pytest.approx(2.0)
    order.apply_fill(_fill(order, 2.0, 103.0, fee=0.2, n=2))
    assert order.status is S.FILLED
    assert order.average_price == pytest.approx((100 + 206) / 3)
    assert order.fees == pytest.approx(0.3)
    with pytest.raises(OrderStateError):  # a filled order takes nothing more
        order.transition("cancelled")


def test_overfill_and_foreign_fill_are_errors():
    order = Order(client_id="a", symbol="BTC/USDT", side="buy", quantity=1.0)
    order.transition("submitted")
    with pytest.raises(OrderStateError, match="exceeds"):
        order.apply_fill(_fill(order, 2.0, 100.0))
    other = Order(client_id="b", symbol="BTC/USDT", side="buy", quantity=1.0)
    with pytest.raises(OrderStateError, match="belongs to order 'b'"):
        order.apply_fill(_fill(other, 1.0, 100.0))


def test_client_order_id_is_deterministic_short_and_distinct():
    a = client_order_id("t1", "2021-01-01 02:00", "BTC/USDT", "entry")
    assert a == client_order_id("t1", pd.Timestamp("2021-01-01T02:00Z"), "BTC/USDT", "entry")
    assert len(a) <= 36 and a.isalnum()
    others = {client_order_id("t1", "2021-01-01 02:00", "BTC/USDT", "stop"),
              client_order_id("t2", "2021-01-01 02:00", "BTC/USDT", "entry"),
              client_order_id("t1", "2021-01-01 02:05", "BTC/USDT", "entry"),
              client_order_id("t1", "2021-01-01 02:00", "ETH/USDT", "entry")}
    assert a not in others and len(others) == 4


@pytest.mark.parametrize("kwargs, match", [
    (dict(quantity=1.0, quote_quantity=10.0), "exactly one of"),
    (dict(quantity=-1.0), "'quantity'"),
    (dict(quantity=1.0, type="limit"), "without a 'limit_price'"),
    (dict(quantity=1.0, type="stop"), "without 'stop_price' or a trail"),
    (dict(quantity=1.0, side="sell", type="stop", trail_pct=2.0), "trail_reference"),
    (dict(quantity=1.0, type="market", limit_price=5.0), "only for limit orders"),
    (dict(quote_quantity=10.0, side="sell"), "for buys"),
    (dict(quantity=1.0, side="hold"), "'side'"),
    (dict(quantity=1.0, time_in_force="fok"), "time_in_force"),
])
def test_bad_orders_name_the_field(kwargs, match):
    base = dict(client_id="x", symbol="BTC/USDT", side="buy")
    base.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        Order(**base)


def test_quote_limit_order_gets_its_quantity_from_the_limit():
    order = Order(client_id="x", symbol="BTC/USDT", side="buy", type="limit", limit_price=50.0,
                  quote_quantity=100.0)
    assert order.quantity == 2.0 and math.isnan(order.average_price)


def test_new_fill_is_the_fill_the_keyword_call_builds():
    """The brokers' fast constructor: the same frozen record, field for field and in order."""
    import dataclasses
    import pickle

    from core_engine.trading.orders import OrderSide, new_fill

    t = pd.Timestamp("2021-01-01 00:05", tz="UTC")
    args = ("sim-7", "c1", "AAA/USDT", OrderSide.SELL, t, 101.5, 0.25, 0.0125, "maker",
            "take_profit", True)
    fast = new_fill(*args)
    slow = Fill(trade_id="sim-7", client_id="c1", symbol="AAA/USDT", side=OrderSide.SELL,
                time=t, price=101.5, quantity=0.25, fee=0.0125, liquidity="maker",
                reason="take_profit", ambiguous=True)
    assert type(fast) is Fill and fast == slow and hash(fast) == hash(slow)
    assert list(vars(fast).items()) == list(vars(slow).items())
    assert fast.to_record() == slow.to_record()
    assert pickle.loads(pickle.dumps(fast)) == slow
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.price = 1.0  # type: ignore[misc]


def test_context_order_refuses_a_bad_side_and_type_as_before():
    """ctx.order maps side and type by dict lookups; what it refuses is unchanged."""
    from core_engine.trading import OrderSide, SimBroker, Trader
    from core_engine.trading.events import PanelView
    from core_engine.trading.trader import Context, Records
    from tests.trading.conftest import make_panel

    panel = make_panel([(100, 101, 99, 100, 10)] * 3)
    broker = SimBroker(panel)
    broker.begin_row(1)
    ctx = Context(broker, PanelView(panel, broker, True, None), Trader(), Records())
    with pytest.raises(ConfigError, match="The 'type' of ctx.buy must be 'market', 'limit' "
                                          "or 'stop'. Got 'twap'."):
        ctx.buy("AAA/USDT", 1.0, type="twap")
    with pytest.raises(ValueError, match="'hold' is not a valid OrderSide"):
        ctx.order("AAA/USDT", "hold", 1.0)
    placed = ctx.order("AAA/USDT", "buy", 1.0, type="limit", price=90.0)
    assert placed.side is OrderSide.BUY and placed.type.value == "limit"
