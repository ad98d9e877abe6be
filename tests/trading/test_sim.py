"""SimBroker fill rules on hand-computed candles (every order type, gaps, ambiguity, volume,
cash, missing candles). Prices in the comments are worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.errors import ConfigError, InsufficientFunds, OrderNotFound, OrderRejected
from core_engine.trading import Order, OrderStatus, SimBroker
from tests.trading.conftest import make_panel

SYM = "AAA/USDT"


def order(cid, side="buy", **kw):
    kw.setdefault("quantity", 1.0)
    return Order(client_id=cid, symbol=SYM, side=side, **kw)


def broker_on(rows, **kw):
    kw.setdefault("fee_bps", 0.0)
    kw.setdefault("initial_cash", 1_000.0)
    return SimBroker(make_panel(rows), **kw)


def t(row, close=False):
    return pd.Timestamp("2021-01-01", tz="UTC") + pd.Timedelta(minutes=5 * row + (5 if close else 0))


def test_market_order_fills_at_the_next_open_with_slippage_and_fee():
    b = broker_on([(100, 101, 99, 100, 10), (100, 102, 98, 101, 10)], fee_bps=10,
                  slippage_bps=20)
    b.begin_row(1)
    o = b.place(order("m", quantity=2.0))
    # 100 × 1.002 = 100.2; value 200.4; fee 0.2004
    assert o.status is OrderStatus.FILLED and o.average_price == pytest.approx(100.2)
    assert b.cash == pytest.approx(1_000 - 200.4 - 0.2004)
    assert b.balances() == {"USDT": pytest.approx(799.3996), "AAA": 2.0}
    fill = b.fills()[0]
    assert fill.time == t(1) and fill.liquidity == "taker" and fill.fee == pytest.approx(0.2004)


def test_quote_amount_buy_trades_the_value_fee_on_top():
    b = broker_on([(100, 101, 99, 100, 10), (50, 51, 49, 50, 10)], fee_bps=10)
    b.begin_row(1)
    o = b.place(order("q", quantity=None, quote_quantity=500.0))
    assert o.quantity == pytest.approx(10.0)  # 500 / 50
    assert b.cash == pytest.approx(1_000 - 500 - 0.5)


def test_limit_buy_at_its_price_on_the_low_and_at_the_open_when_opened_through():
    rows = [(100, 101, 99, 100, 10), (100, 102, 98, 101, 10), (97, 99, 96, 98, 10)]
    b = broker_on(rows)
    b.begin_row(1)
    low = b.place(order("low", type="limit", limit_price=99.0))
    through = b.place(order("through", type="limit", limit_price=97.5))
    b.match_row(1)  # low 98 reaches 99: at 99 (the close time); 97.5 not reached
    assert low.status is OrderStatus.FILLED and low.average_price == 99.0
    assert b.fills()[0].time == t(1, close=True) and b.fills()[0].liquidity == "maker"
    assert through.status is OrderStatus.SUBMITTED
    b.begin_row(2)  # opens at 97, below 97.5: filled at the open, before the trader acts
    assert through.status is OrderStatus.FILLED and through.average_price == 97.0
    assert b.fills()[1].time == t(2)


def test_limit_sell_on_the_high_and_stop_sell_on_the_low_and_on_a_gap():
    rows = [(100, 101, 99, 100, 10), (100, 100, 100, 100, 10), (100, 105, 99, 104, 10),
            (104, 104, 95, 96, 10), (90, 91, 88, 89, 10)]
    b = broker_on(rows)
    b.begin_row(1)
    b.place(order("buy", quantity=3.0))
    target = b.place(order("tp", side="sell", type="limit", limit_price=104.0))
    stop = b.place(order("sl", side="sell", type="stop", stop_price=96.0))
    gap = b.place(order("gap", side="sell", type="stop", stop_price=92.0))
    b.match_row(1)
    assert target.is_open and stop.is_open
    b.begin_row(2)
    b.match_row(2)  # high 105 reaches 104
    assert target.average_price == 104.0 and target.reason == "take_profit"
    b.begin_row(3)
    b.match_row(3)  # low 95 reaches the 96 stop: at the level
    assert stop.average_price == 96.0 and stop.reason == "stop_loss"
    b.begin_row(4)  # opens at 90, through the 92 stop: at the open
    assert gap.average_price == 90.0 and gap.status is OrderStatus.FILLED
    assert b.cash == pytest.approx(1_000 - 300 + 104 + 96 + 90)


def test_stop_and_target_in_one_candle_stop_first_and_flagged():
    rows = [(100, 101, 99, 100, 10), (100, 100, 100, 100, 10), (100, 106, 94, 100, 10)]
    b = broker_on(rows)
    b.begin_row(1)
    b.place(order("buy"))
    stop = b.place(order("sl", side="sell", type="stop", stop_price=95.0, group="g"))
    target = b.place(order("tp", side="sell", type="limit", limit_price=105.0, group="g"))
    b.match_row(1)
    b.begin_row(2)
    b.match_row(2)
    assert stop.status is OrderStatus.FILLED and stop.average_price == 95.0
    assert b.fills()[-1].ambiguous and b.fills()[-1].reason == "stop_loss"
    assert target.status is OrderStatus.CANCELLED and target.reason == "oco"
    assert b.position(SYM) == 0.0


def test_trailing_stop_follows_the_highs_of_finished_candles():
    # entry 100, trail 10 %: level 90, then 99 after the 110 high, then fills at 99
    rows = [(100, 100, 100, 100, 10), (100, 100, 100, 100, 10), (100, 110, 100, 108, 10),
            (108, 109, 99.5, 100, 10), (100, 100, 98, 99, 10)]
    b = broker_on(rows)
    b.begin_row(1)
    b.place(order("buy"))
    trail = b.place(order("tr", side="sell", type="stop", trail_pct=10.0, trail_reference=100.0,
                          stop_price=80.0))
    for r in (1, 2, 3):
        b.match_row(r)
        if r < 3:
            b.begin_row(r + 1)
    assert trail.is_open  # the 99.5 low of row 3 is above 99 (the high 110 is from row 2)
    b.begin_row(4)
    b.match_row(4)
    assert trail.average_price == pytest.approx(99.0) and trail.reason == "trailing_stop"


def test_volume_share_fills_partly_and_the_rest_stays_open():
    rows = [(100, 101, 99, 100, 10)] + [(100, 101, 99, 100, 10)] * 3
    b = broker_on(rows, max_volume_share=0.1)  # at most 1 unit per candle
    b.begin_row(1)
    o = b.place(order("big", quantity=2.5))
    assert o.status is OrderStatus.PARTIALLY_FILLED and o.filled_quantity == pytest.approx(1.0)
    b.match_row(1)
    b.begin_row(2)
    assert o.filled_quantity == pytest.approx(2.0)
    b.match_row(2)
    b.begin_row(3)
    assert o.status is OrderStatus.FILLED and [f.quantity for f in b.fills()] == \
        pytest.approx([1.0, 1.0, 0.5])


def test_orders_cash_cannot_cover_are_rejected_and_balances_stay_non_negative():
    b = broker_on([(100, 101, 99, 100, 10), (100, 101, 99, 100, 10)], fee_bps=10)
    b.begin_row(1)
    big = order("big", quantity=10.0)  # 1,000 + 1 fee > 1,000
    with pytest.raises(InsufficientFunds, match="needs"):
        b.place(big)
    assert big.status is OrderStatus.REJECTED and b.fetch_order("big") is big
    with pytest.raises(InsufficientFunds, match="held"):
        b.place(order("naked", side="sell"))
    assert b.cash == 1_000.0 and b.position(SYM) == 0.0


def test_missing_candles_fill_nothing_gtc_waits_ioc_is_cancelled():
    rows = [(100, 101, 99, 100, 10), None, None, (103, 104, 102, 103, 10)]
    b = broker_on(rows)
    b.begin_row(1)
    gtc = b.place(order("gtc"))
    ioc = b.place(order("ioc", time_in_force="ioc"))
    assert ioc.status is OrderStatus.CANCELLED and ioc.reason == "no_candle"
    b.match_row(1)
    b.begin_row(2)
    b.match_row(2)
    assert gtc.status is OrderStatus.SUBMITTED
    b.begin_row(3)
    assert gtc.average_price == 103.0 and b.fills()[0].time == t(3)


def test_idempotent_place_cancel_and_lookups():
    b = broker_on([(100, 101, 99, 100, 10), (100, 101, 99, 100, 10)])
    b.begin_row(1)
    first = b.place(order("lim", type="limit", limit_price=90.0))
    again = order("lim", type="limit", limit_price=90.0)
    assert b.place(again) is first and len(b.open_orders()) == 1
    with pytest.raises(OrderRejected, match="already used"):
        b.place(order("lim", type="limit", limit_price=91.0))
    assert b.cancel("lim").status is OrderStatus.CANCELLED
    assert b.cancel("lim").status is OrderStatus.CANCELLED  # final: unchanged
    with pytest.raises(OrderNotFound):
        b.fetch_order("nope")
    with pytest.raises(OrderRejected, match="not traded here"):
        b.place(Order(client_id="z", symbol="ZZZ/USDT", side="buy", quantity=1.0))


def test_a_filled_quote_amount_buy_sent_again_is_returned_not_refused():
    """A quote-amount market buy gets its quantity when it fills; the same order sent again
    (a retry that does not know it filled) is the same order, not a clash of client ids.
    A different amount under that id is still refused."""
    b = broker_on([(100, 101, 99, 100, 10), (100, 101, 99, 100, 10)])
    b.begin_row(1)
    first = b.place(Order(client_id="q", symbol=SYM, side="buy", quote_quantity=200.0))
    assert first.status is OrderStatus.FILLED and first.quantity == pytest.approx(2.0)
    again = Order(client_id="q", symbol=SYM, side="buy", quote_quantity=200.0)
    assert b.place(again) is first and len(b.fills()) == 1
    with pytest.raises(OrderRejected, match="already used"):
        b.place(Order(client_id="q", symbol=SYM, side="buy", quote_quantity=300.0))
    with pytest.raises(OrderRejected, match="already used"):
        b.place(Order(client_id="q", symbol=SYM, side="buy", quantity=3.0))


def test_candles_are_closed_candles_only():
    b = broker_on([(100, 101, 99, 100, 10), (101, 102, 100, 101, 10), (102, 103, 101, 102, 10)])
    b.begin_row(2)
    frame = b.candles(SYM, "5m")
    assert list(frame["close"]) == [100, 101] and b.now() == t(2)
    with pytest.raises(ConfigError, match="Resample"):
        b.candles(SYM, "1h")


def test_bad_configuration_names_the_parameter():
    with pytest.raises(ConfigError, match="not both"):
        SimBroker(fee_bps=10, maker_bps=2)
    with pytest.raises(ConfigError, match="max_volume_share"):
        SimBroker(max_volume_share=0)
    with pytest.raises(ConfigError, match="stop_fill"):
        SimBroker(stop_fill="worst")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.sampled_from(["market", "limit",
                                                                               "stop"]),
                          st.floats(0.1, 6.0), st.floats(0.9, 1.1)), min_size=1, max_size=25),
       st.integers(0, 2**16))
def test_balances_never_go_negative(actions, seed):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 40)))
    rows = [(c, c * 1.01, c * 0.99, c, 5.0) if rng.random() > 0.1 else None for c in close]
    b = broker_on(rows, fee_bps=10, max_volume_share=0.5)
    for r, (side, kind, qty, factor) in enumerate(actions):
        row = min(r + 1, len(rows) - 1)
        b.begin_row(row)
        ref = close[row - 1] * factor
        kw = {"limit_price": ref} if kind == "limit" else {"stop_price": ref} if kind == "stop" \
            else {}
        try:
            b.place(Order(client_id=f"o{r}", symbol=SYM, side=side, type=kind, quantity=qty, **kw))
        except InsufficientFunds:
            pass
        b.match_row(row)
        assert b.cash >= 0 and b.position(SYM) >= 0
        assert not math.isnan(b.cash)


def test_market_price_is_the_open_while_the_trader_acts_and_nan_otherwise():
    b = broker_on([(100, 101, 99, 100, 10), (104, 105, 103, 104, 10), None])
    b.begin_row(1)
    assert b.market_price(SYM) == 104.0
    b.match_row(1)
    assert math.isnan(b.market_price(SYM))  # inside the candle: no open to trade at
    b.begin_row(2)
    assert math.isnan(b.market_price(SYM))  # missing candle


def test_a_capped_wait_fills_at_the_last_close_before_the_gap():
    """walk_forward's max_exit_delay: a sell placed at row 2 (missing) may wait 2 candles;
    at row 4 it is still waiting, so it fills at the close of row 1 (the last before the
    gap), timed at that candle's close, although row 4 has an open."""
    rows = [(100, 101, 99, 100, 10), (100, 102, 98, 101, 10), None, None,
            (90, 91, 89, 90, 10)]
    b = broker_on(rows, initial_cash=0.0, fee_bps=10)
    b.holdings[0] = 3.0
    b.begin_row(2)
    o = b.place(order("x", side="sell", quantity=3.0))
    b.cap_wait("x", t(4))
    assert o.is_open and b.next_deadline_row() == 4
    b.begin_row(3)
    assert o.is_open
    b.begin_row(4)
    fill = b.fills()[0]
    assert o.status is OrderStatus.FILLED and fill.price == 101.0 and fill.time == t(1, True)
    assert fill.reason == "last_close" and b.cash == pytest.approx(3 * 101 * 0.999)
    # a sell that found its open before the deadline is not touched
    b2 = broker_on(rows[:2] + [None, (95, 96, 94, 95, 10), (90, 91, 89, 90, 10)])
    b2.holdings[0] = 1.0
    b2.begin_row(2)
    o2 = b2.place(order("y", side="sell", quantity=1.0))
    b2.cap_wait("y", t(4))
    b2.begin_row(3)
    assert o2.average_price == 95.0 and b2.next_deadline_row() > 10**9
    with pytest.raises(ConfigError, match="market sells"):
        b2.cap_wait(b2.place(order("z", quantity=1.0, type="limit", limit_price=1.0))
                    .client_id, t(4))


def test_open_orders_restored_from_a_save_still_hold_their_cash():
    """A paper account restored by replacing the broker's order book (as the live layer's
    PaperBroker does) keeps reserving the cash of its open buys."""
    rows = [(100, 101, 99, 100, 10), (100, 102, 98, 101, 10), (100, 102, 98, 101, 10)]
    a = broker_on(rows)
    a.begin_row(1)
    a.place(order("lim", quantity=8.0, type="limit", limit_price=90.0))  # holds 720
    b = broker_on(rows)
    b.begin_row(1)
    for name in ("cash", "holdings", "_orders", "_live", "_placed_row", "_highest"):
        setattr(b, name, getattr(a, name))
    with pytest.raises(InsufficientFunds):
        b.place(order("more", quantity=3.0, type="limit", limit_price=99.0))  # 297 > 280
    assert b.free_cash() == pytest.approx(280.0)


def test_a_market_order_restored_from_a_save_is_seen_waiting_at_the_first_ask():
    """The first question after a restore rebuilds the indexes of the open orders; it read
    the index before the rebuild (the stale, empty one): a restored paper account said no
    market order waited, and a run restarted after its end left its exit unsold."""
    rows = [(100, 101, 99, 100, 10), (np.nan,) * 5, (100, 102, 98, 101, 10)]
    a = broker_on(rows)
    a.begin_row(1)  # a missing candle: the market buy waits for the next open
    a.place(order("mkt", quantity=1.0))
    assert a.market_orders_waiting()
    b = broker_on(rows)
    b.begin_row(1)
    for name in ("cash", "holdings", "_orders", "_live", "_placed_row", "_highest"):
        setattr(b, name, getattr(a, name))
    assert b.market_orders_waiting()


def test_stop_buy_on_the_high_at_its_level_and_at_the_open_on_a_gap_up():
    rows = [(100, 101, 99, 100, 10), (100, 102, 99, 101, 10), (101, 104, 100, 103, 10),
            (108, 109, 107, 108, 10)]
    b = broker_on(rows)
    b.begin_row(1)
    inside = b.place(order("in", type="stop", stop_price=103.0))
    gap = b.place(order("gap", type="stop", stop_price=106.0))
    b.match_row(1)  # high 102 does not reach 103
    assert inside.status is OrderStatus.SUBMITTED and gap.status is OrderStatus.SUBMITTED
    b.begin_row(2)
    b.match_row(2)  # high 104 reaches 103: at the level, stamped at the close
    assert inside.status is OrderStatus.FILLED and inside.average_price == 103.0
    assert b.fills()[0].time == t(2, close=True) and b.fills()[0].liquidity == "taker"
    assert gap.status is OrderStatus.SUBMITTED  # 104 < 106
    b.begin_row(3)  # opens at 108, above 106: at the open, before the trader acts
    assert gap.status is OrderStatus.FILLED and gap.average_price == 108.0
    assert b.fills()[1].time == t(3)
    assert b.cash == pytest.approx(1_000 - 103 - 108) and b.position(SYM) == 2.0


def test_limit_sell_opened_through_fills_at_the_better_open():
    rows = [(100, 101, 99, 100, 10), (100, 101, 99, 100, 10), (107, 108, 106, 107, 10)]
    b = broker_on(rows)
    b.begin_row(1)
    b.place(order("buy", quantity=2.0))
    target = b.place(order("tp", side="sell", quantity=2.0, type="limit", limit_price=105.0))
    b.match_row(1)  # high 101 < 105
    assert target.is_open
    b.begin_row(2)  # opens at 107 above the 105 limit: the open, better than the limit
    assert target.status is OrderStatus.FILLED and target.average_price == 107.0
    assert b.fills()[-1].time == t(2) and b.fills()[-1].liquidity == "maker"
    assert b.cash == pytest.approx(1_000 - 200 + 214)


def test_maker_and_taker_fees_by_order_type():
    rows = [(100, 101, 99, 100, 10), (100, 102, 98, 101, 10), (101, 106, 100, 105, 10)]
    b = broker_on(rows, fee_bps=None, maker_bps=2.0, taker_bps=10.0)
    b.begin_row(1)
    b.place(order("mkt", quantity=1.0))  # taker at the open 100: fee 100 × 10 bp = 0.10
    lim = b.place(order("lim", quantity=1.0, type="limit", limit_price=99.0))
    b.match_row(1)  # maker at 99: fee 99 × 2 bp = 0.0198
    assert lim.status is OrderStatus.FILLED
    b.begin_row(2)
    b.place(order("tp", side="sell", quantity=2.0, type="limit", limit_price=105.0))
    b.match_row(2)  # maker at 105 on the high 106: fee 210 × 2 bp = 0.042
    fees = [(f.client_id, f.liquidity, f.fee) for f in b.fills()]
    assert fees == [("mkt", "taker", pytest.approx(0.10)), ("lim", "maker", pytest.approx(0.0198)),
                    ("tp", "maker", pytest.approx(0.042))]
    assert b.cash == pytest.approx(1_000 - 100.10 - 99.0198 + 210 - 0.042)
