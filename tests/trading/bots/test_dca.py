"""DCATrader on hand-worked candles: the buys at the interval, the cash skip, the moving-average
filter, the take-profit on the averaged position that moves after each buy, a restart."""

from __future__ import annotations

import pytest

from core_engine.errors import ConfigError
from core_engine.trading import SimBroker, replay
from core_engine.trading.bots import DCATrader
from tests.trading.bots.conftest import SYM, candles, fills_of, flat, restart_runs, t

FEE = 0.001


def broker():
    return SimBroker(fee_bps=10, initial_cash=1_000.0)


# buys every 15 minutes: at the opens of candles 3 and 6 (at 00:00 nothing has closed yet)
FALLING = candles(flat(100, 3) + [(80, 81, 79, 80)] + flat(80, 2) + [(50, 51, 49, 50)]
                  + flat(50, 1))


def test_dca_buys_the_amount_every_interval_and_reports_its_average_cost():
    bot = DCATrader(symbol=SYM, amount=100.0, interval="15m")
    result = replay(bot, FALLING, broker())
    assert fills_of(result) == [("buy", t(3), 80.0, 1.25, 0.1, "market"),
                                ("buy", t(6), 50.0, 2.0, 0.1, "market")]
    report = bot.report(price=50.0)
    assert report["buys"] == 2 and report["quantity"] == pytest.approx(3.25)
    assert report["cost"] == pytest.approx(200.2)                  # 2 × (100 + 0.1 fee)
    assert report["average_cost"] == pytest.approx(200.2 / 3.25)   # 61.6
    assert report["average_price"] == pytest.approx(200 / 3.25)    # 61.54
    assert report["unrealized_pnl"] == pytest.approx(3.25 * 50 - 200.2)
    assert result.metrics["final_equity"] == pytest.approx(1_000 - 200.2 + 3.25 * 50)


def test_dca_skips_a_buy_the_cash_cannot_pay():
    bot = DCATrader(symbol=SYM, amount=600.0, interval="15m")
    result = replay(bot, FALLING, broker())
    assert [f[:3] for f in fills_of(result)] == [("buy", t(3), 80.0)]   # 399.4 left < 600.6
    assert bot.report(50.0)["skipped"] == 1
    assert result.notes.text.tolist() == ["no buy: not enough cash"]


def test_dca_below_its_average_with_a_moving_take_profit():
    rows = flat(100, 3) + [(100, 100, 99, 99), (99, 99, 98, 98), (98, 98, 97, 97),
                           (97, 97.5, 96.5, 97),      # 6: 97 < SMA3 98: buy at the open 97
                           (97, 97.2, 95, 95.5), (95.5, 96, 94, 94.5),
                           (94.5, 95, 94, 95),        # 9: 94.5 < 95.67: buy at 94.5
                           (95, 98, 95, 97.9)]        # 10: take-profit 97.745 fills
    bot = DCATrader(symbol=SYM, amount=100.0, interval="15m", ma_length=3, take_profit_pct=2.0)
    result = replay(bot, candles(rows), broker())
    q1, q2 = 100 / 97, 100 / 94.5
    target_1 = 100.1 / q1 * 1.02                     # 99.039: never reached
    target_2 = 200.2 / (q1 + q2) * 1.02              # 97.745
    fills = fills_of(result)
    assert [f[:4] for f in fills] == [("buy", t(6), 97.0, round(q1, 9)),
                                      ("buy", t(9), 94.5, round(q2, 9)),
                                      ("sell", t(11), round(target_2, 9), round(q1 + q2, 9))]
    orders = result.orders
    targets = orders[orders.tag == "take_profit"]
    assert targets.limit_price.tolist() == pytest.approx([target_1, target_2])
    assert targets.status.tolist() == ["cancelled", "filled"]
    realized = (q1 + q2) * target_2 * (1 - FEE) - 200.2
    report = bot.report(97.9)
    assert report["take_profits"] == 1 and report["buys"] == 2 and report["quantity"] == 0
    assert report["realized_pnl"] == pytest.approx(realized, rel=1e-12)
    assert report["skipped"] == 1      # at 00:15 the close 100 was not below its average 100
    assert result.metrics["final_equity"] == pytest.approx(1_000 + realized, rel=1e-12)
    assert result.notes.text.iloc[0] == "no buy: price not below its average"


def test_dca_restart_between_buys_keeps_the_average_and_the_target():
    rows = flat(100, 3) + [(100, 100, 99, 99), (99, 99, 98, 98), (98, 98, 97, 97),
                           (97, 97.5, 96.5, 97), (97, 97.2, 95, 95.5), (95.5, 96, 94, 94.5),
                           (94.5, 95, 94, 95), (95, 98, 95, 97.9)]
    bot = DCATrader(symbol=SYM, amount=100.0, interval="15m", ma_length=3, take_profit_pct=2.0)
    (plain, _), (restarted, wrapper) = restart_runs(bot, candles(rows), 8, broker)
    assert wrapper.restored and fills_of(restarted) == fills_of(plain)
    assert wrapper.bot.report(97.9)["take_profits"] == 1


def test_dca_interval_names_and_errors():
    assert DCATrader(interval="daily").every == "1d"
    assert DCATrader(interval="weekly").every == "1w"
    assert DCATrader(interval="4h").every_ns == 4 * 3600 * 10**9
    with pytest.raises(ConfigError, match="'interval' parameter must be a positive duration"):
        DCATrader(interval="monthly")
    with pytest.raises(ConfigError, match="'amount' parameter of DCATrader"):
        DCATrader(amount=0)
    with pytest.raises(ConfigError, match="'ma_length' parameter of DCATrader"):
        DCATrader(ma_length=2.5)
