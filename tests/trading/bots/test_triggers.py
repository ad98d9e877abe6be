"""PriceTriggerTrader on hand-worked candles: a limit buy level reached through a gap, the
stop and target resting right after it, the target filling and cancelling the stop; a stop
buy above the price and a stop gapped through; a candle reaching the stop and the target
(the stop first); each level firing once; a restart while the exits rest."""

from __future__ import annotations

import pytest

from core_engine.errors import ConfigError
from core_engine.trading import SimBroker, replay
from core_engine.trading.bots import PriceTriggerTrader
from tests.trading.bots.conftest import SYM, candles, fills_of, flat, restart_runs, t

FEE = 0.001


def broker():
    return SimBroker(fee_bps=10, initial_cash=10_000.0)


GAP = candles(flat(100, 2) + [(99, 99, 96, 97),
                              (94, 96, 93, 95),        # 3: opens through 95: bought at 94
                              (95, 106, 94, 104),      # 4: take-profit 105 fills
                              (104, 104, 85, 86)])     # 5: below 95 and 90 again: nothing fires


def test_buy_level_through_a_gap_then_take_profit_cancels_the_stop():
    bot = PriceTriggerTrader({SYM: {"buy": 95, "amount": 950, "stop_loss": 90,
                                    "take_profit": 105}})
    result = replay(bot, GAP, broker())
    assert fills_of(result) == [("buy", t(3), 94.0, 10.0, 0.94, "limit"),
                                ("sell", t(5), 105.0, 10.0, 1.05, "take_profit")]
    orders = result.orders.set_index("tag")
    assert orders.loc["buy", "created_at"] == t(1)   # armed once a candle had closed
    assert orders.loc["stop_loss", "status"] == "cancelled"
    assert orders.loc["stop_loss", "created_at"] == t(3)  # rested right after the fill
    pnl = 10 * 105 * (1 - FEE) - 10 * 94 * (1 + FEE)     # 108.01
    assert result.trades.pnl.tolist() == pytest.approx([pnl])
    assert result.metrics["final_equity"] == pytest.approx(10_000 + pnl)
    report = bot.report()[SYM]
    assert report["status"] == "done" and report["resting"] == []
    assert [(f["level"], f["price"]) for f in report["fired"]] == [("buy", 94.0),
                                                                   ("take_profit", 105.0)]


def test_stop_buy_above_the_price_and_a_stop_loss_gapped_through():
    rows = flat(100, 2) + [(101, 106, 100.5, 105.5),   # 2: the stop buy at 105 fills
                           (98, 99, 97, 98)]           # 3: opens under the stop 100: at 98
    bot = PriceTriggerTrader({SYM: {"buy": 105, "quantity": 2, "stop_loss": 100}})
    result = replay(bot, candles(rows), broker())
    assert fills_of(result) == [("buy", t(3), 105.0, 2.0, 0.21, "stop"),
                                ("sell", t(3), 98.0, 2.0, 0.196, "stop_loss")]
    assert result.orders.type.tolist() == ["stop", "stop"]
    assert result.trades.pnl.iloc[0] == pytest.approx(2 * 98 * (1 - FEE) - 2 * 105 * (1 + FEE))


def test_a_candle_reaching_stop_and_targets_sells_at_the_stop():
    rows = flat(100, 2) + [(100, 100, 94, 95),   # 2: buy 95 (10 units)
                           (95, 100, 89, 92),    # 3: reaches 90, 99 and... the stop first
                           (92, 110, 91, 108)]
    bot = PriceTriggerTrader({SYM: {"buy": 95, "amount": 950, "sell": 99, "stop_loss": 90,
                                    "take_profit": 105}})
    result = replay(bot, candles(rows), broker())
    assert fills_of(result) == [("buy", t(3), 95.0, 10.0, 0.95, "limit"),
                                ("sell", t(4), 90.0, 10.0, 0.9, "stop_loss")]
    statuses = result.orders.set_index("tag").status.to_dict()
    assert statuses == {"buy": "filled", "stop_loss": "filled", "sell": "cancelled",
                        "take_profit": "cancelled"}


def test_exits_without_a_buy_and_without_a_position_do_nothing():
    bot = PriceTriggerTrader({SYM: {"stop_loss": 90}})
    result = replay(bot, GAP, broker())
    assert len(result.orders) == 0 and bot.report()[SYM]["status"] == "done"
    assert "the exits have no position" in result.notes.text.iloc[0]


def test_a_buy_level_the_cash_cannot_pay_is_noted_not_left_hanging():
    bot = PriceTriggerTrader({SYM: {"buy": 95, "amount": 50_000}})
    result = replay(bot, GAP, broker())
    assert result.orders.status.tolist() == ["rejected"] and len(result.fills) == 0
    assert bot.report()[SYM]["status"] == "done"
    assert result.notes["values"].iloc[0]["reason"] == "insufficient_funds"


def test_triggers_restart_while_the_exits_rest():
    bot = PriceTriggerTrader({SYM: {"buy": 95, "amount": 950, "stop_loss": 90,
                                    "take_profit": 105}})
    (plain, _), (restarted, wrapper) = restart_runs(bot, GAP, 4, broker)
    assert wrapper.restored and fills_of(restarted) == fills_of(plain)
    assert wrapper.bot.report()[SYM]["status"] == "done"


@pytest.mark.parametrize("levels, message", [
    ({"buy": 95, "amout": 1}, "unknown key 'amout'.*Did you mean 'amount'"),
    ({"buy": 95}, "needs exactly one of 'amount'"),
    ({"buy": 95, "amount": 10, "stop_loss": 96}, "'stop_loss' \\(96\\) must be below the 'buy'"),
    ({"stop_loss": 96, "take_profit": 90}, "must be below 'take_profit'"),
    ({"buy": -1, "amount": 10}, "'buy' parameter of PriceTriggerTrader"),
    ({}, "non-empty dict of levels"),
])
def test_trigger_errors_name_the_level(levels, message):
    with pytest.raises(ConfigError, match=message):
        PriceTriggerTrader({SYM: levels})
    with pytest.raises(ConfigError, match="'triggers' parameter of PriceTriggerTrader"):
        PriceTriggerTrader()
