"""GridTrader on hand-worked candles: start (market buy of the levels above, limit buys
below), cycles, a gap through two levels, the range exit up (stop) and down (liquidate), a
restart in the middle of the grid, and its report. Fees 10 bps on every fill."""

from __future__ import annotations

import pytest

from core_engine.errors import ConfigError
from core_engine.trading import SimBroker, replay
from core_engine.trading.bots import GridTrader, grid_levels
from tests.trading.bots.conftest import SYM, candles, fills_of, restart_runs, t

FEE = 0.001
Q = [100 / 90, 100 / 95, 1.0, 100 / 105]  # amount_per_level / level of slots 0..3


def grid(**kw):
    kw = {"symbol": SYM, "low": 90, "high": 110, "levels": 5, "amount_per_level": 100.0, **kw}
    return GridTrader(**kw)


def broker():
    return SimBroker(fee_bps=10, initial_cash=1_000.0)


# levels 90 95 100 105 110; the setup sees the close 101 of candle 0
UP = candles([
    (101.0, 101.5, 100.5, 101.0),   # 0: nothing has closed at its open: the bot waits
    (101.2, 101.8, 100.6, 101.5),   # 1: setup — market buy of slot 3 (105→110) at 101.2
    (101.0, 101.0, 99.0, 99.5),     # 2: buy 100 (slot 2)
    (99.5, 106.0, 99.4, 105.5),     # 3: sell 105 (slot 2): first cycle
    (93.0, 94.0, 92.0, 93.5),       # 4: gap down through 100 and 95: both buys at the open 93
    (93.5, 100.5, 93.0, 100.2),     # 5: sell 100 (slot 1)
    (100.2, 111.0, 100.0, 110.5),   # 6: sell 110 (slot 3, the top) and sell 105 (slot 2)
    (110.5, 111.0, 110.0, 110.8),   # 7: candle 6 closed above 110: range exit, grid stopped
    (105.0, 106.0, 99.0, 100.0),    # 8: stopped: the buys at 100/95 are gone, nothing fills
])

# the hand-worked profits of the four cycles (sell × (1 − fee) − buy × (1 + fee))
CYCLE_1 = 1.0 * 105 * (1 - FEE) - 1.0 * 100 * (1 + FEE)              # slot 2: 4.795
CYCLE_2 = Q[1] * 100 * (1 - FEE) - Q[1] * 93 * (1 + FEE)              # slot 1 after the gap
CYCLE_3 = Q[3] * 110 * (1 - FEE) - Q[3] * 101.2 * (1 + FEE)           # slot 3, start inventory
CYCLE_4 = 1.0 * 105 * (1 - FEE) - 1.0 * 93 * (1 + FEE)                # slot 2 after the gap


def test_grid_levels_arithmetic_and_geometric():
    assert grid_levels(90, 110, 5).tolist() == [90, 95, 100, 105, 110]
    geo = grid_levels(100, 400, 5, "geometric")
    assert geo.tolist() == pytest.approx([100, 100 * 2 ** 0.5, 200, 200 * 2 ** 0.5, 400])


def test_grid_cycles_gap_and_range_exit_up():
    bot = grid()
    result = replay(bot, UP, broker())
    assert fills_of(result) == [
        ("buy", t(1), 101.2, round(Q[3], 9), round(Q[3] * 101.2 * FEE, 9), "market"),
        ("buy", t(3), 100.0, 1.0, 0.1, "limit"),
        ("sell", t(4), 105.0, 1.0, round(105 * FEE, 9), "take_profit"),
        ("buy", t(4), 93.0, round(Q[1], 9), round(Q[1] * 93 * FEE, 9), "limit"),
        ("buy", t(4), 93.0, 1.0, 0.093, "limit"),
        ("sell", t(6), 100.0, round(Q[1], 9), round(Q[1] * 100 * FEE, 9), "take_profit"),
        ("sell", t(7), 110.0, round(Q[3], 9), round(Q[3] * 110 * FEE, 9), "take_profit"),
        ("sell", t(7), 105.0, 1.0, round(105 * FEE, 9), "take_profit"),
    ]
    orders = result.orders
    # the 4 buys resting at the exit (90, 95, 100, 105) were cancelled at the open of candle 7
    cancelled = orders[orders.status == "cancelled"]
    assert sorted(cancelled.limit_price) == [90, 95, 100, 105]
    assert set(cancelled.updated_at) == {t(7)}
    assert (orders.status == "submitted").sum() == 0
    # a fill inside candle r is acted on at its close (the open of r + 1), a fill at an open
    # at once: the sell after the buy at 100 in candle 2 is placed at 00:15, the two sells
    # after the gap buys at the open of candle 4 at 00:20
    sells = orders[orders.tag == "grid_sell"]
    assert list(zip(sells.limit_price, sells.created_at, strict=True)) == [
        (110.0, t(1)), (105.0, t(3)), (100.0, t(4)), (105.0, t(4))]
    profit = CYCLE_1 + CYCLE_2 + CYCLE_3 + CYCLE_4
    report = bot.report(price=100.0)
    assert report["status"] == "stopped" and report["cycles"] == 4
    assert report["grid_profit"] == pytest.approx(profit, rel=1e-12)
    assert report["inventory"] == 0 and report["total_pnl"] == pytest.approx(profit)
    assert result.metrics["final_equity"] == pytest.approx(1_000 + profit, rel=1e-12)
    notes = result.notes
    assert list(notes.text[notes.text != "grid cycle"]) == ["grid placed", "range exit"]
    exit_note = notes[notes.text == "range exit"].iloc[0]
    assert exit_note.time == t(7) and exit_note["values"]["edge"] == "high"


def test_grid_range_exit_down_liquidates_the_inventory():
    down = candles([
        (101.0, 101.5, 100.5, 101.0),
        (101.2, 101.8, 100.6, 101.5),   # 1: setup as above
        (100.5, 100.8, 96.0, 96.5),     # 2: buy 100
        (96.5, 97.0, 89.0, 89.5),       # 3: buys 95 and 90 (the bottom); closes below 90
        (88.0, 88.5, 87.0, 87.5),       # 4: range exit: every sell cancelled, all sold at 88
        (87.5, 120.0, 87.0, 100.0),     # 5: nothing left to fill
    ])
    bot = grid(on_exit="liquidate")
    result = replay(bot, down, broker())
    held = sum(Q)
    assert fills_of(result)[-1] == ("sell", t(4), 88.0, round(held, 9),
                                    round(held * 88 * FEE, 9), "market")
    cost = Q[3] * 101.2 * (1 + FEE) + 3 * 100 * (1 + FEE)  # each limit buy cost 100 + fee
    exit_pnl = held * 88 * (1 - FEE) - cost
    report = bot.report(price=100.0)
    assert report["grid_profit"] == 0 and report["cycles"] == 0
    assert report["exit_pnl"] == pytest.approx(exit_pnl, rel=1e-12)
    assert report["inventory"] == 0 and report["total_pnl"] == pytest.approx(exit_pnl)
    assert result.metrics["final_equity"] == pytest.approx(1_000 + exit_pnl, rel=1e-12)
    assert result.orders.status.value_counts().to_dict() == {"filled": 5, "cancelled": 4}


def test_grid_that_stops_without_liquidating_keeps_its_inventory():
    down = candles([(101.0, 101.5, 100.5, 101.0), (101.2, 101.8, 100.6, 101.5),
                    (100.5, 100.8, 96.0, 96.5), (96.5, 97.0, 89.0, 89.5),
                    (88.0, 88.5, 87.0, 87.5)])
    bot = grid()
    result = replay(bot, down, broker())
    report = bot.report(price=87.5)
    assert report["status"] == "stopped" and report["inventory"] == pytest.approx(sum(Q))
    cost = Q[3] * 101.2 * (1 + FEE) + 3 * 100 * (1 + FEE)
    assert report["inventory_cost"] == pytest.approx(cost)
    assert report["inventory_pnl"] == pytest.approx(sum(Q) * 87.5 - cost)
    assert result.metrics["final_equity"] == pytest.approx(1_000 + sum(Q) * 87.5 - cost)


def test_grid_touching_the_top_and_closing_inside_keeps_trading():
    rows = [(101.0, 101.5, 100.5, 101.0), (101.2, 101.8, 100.6, 101.5),
            (101.5, 110.5, 101.0, 107.0),   # 2: sell 110 fills, close 107 inside: no exit
            (107.0, 107.5, 104.0, 104.5)]   # 3: the buy at 105 (slot 3) fills
    bot = grid()
    result = replay(bot, candles(rows), broker())
    assert bot.report(100.0)["status"] == "running"
    assert fills_of(result)[-1][:3] == ("buy", t(4), 105.0)


def test_grid_restart_in_the_middle_resumes_with_the_same_orders():
    (plain, _), (restarted, wrapper) = restart_runs(grid(), UP, 4, broker)
    assert wrapper.restored
    assert fills_of(restarted) == fills_of(plain)
    assert list(restarted.orders.status) == list(plain.orders.status)
    assert restarted.metrics["final_equity"] == plain.metrics["final_equity"]
    assert wrapper.bot.report(100.0)["grid_profit"] == pytest.approx(
        CYCLE_1 + CYCLE_2 + CYCLE_3 + CYCLE_4, rel=1e-12)


def test_grid_errors_name_the_parameter():
    with pytest.raises(ConfigError, match="give 'low' and 'high'"):
        GridTrader(symbol=SYM, low=90)
    with pytest.raises(ConfigError, match="'high' parameter of GridTrader must be above"):
        GridTrader(low=100, high=90)
    with pytest.raises(ConfigError, match="'levels' parameter of GridTrader"):
        GridTrader(low=90, high=100, levels=1)
    with pytest.raises(ConfigError, match="'spacing'.*Got 'log'"):
        GridTrader(low=90, high=100, spacing="log")
    with pytest.raises(ConfigError, match="outside the range"):
        replay(grid(low=50, high=60), UP, broker())
    with pytest.raises(ConfigError, match="needs about .* of cash"):
        replay(grid(amount_per_level=400), UP, broker())
    with pytest.raises(ConfigError, match="'ZZZ/USDT', which is not in the data"):
        replay(grid(symbol="ZZZ/USDT"), UP, broker())


def test_grid_whose_step_does_not_cover_the_fees_warns():
    with pytest.warns(UserWarning, match="does not cover the two maker fees"):
        result = replay(grid(low=100.9, high=101.1, levels=3), UP, broker())
    assert "every cycle loses money" in result.notes.text.iloc[0]
