"""DCATrader on hand-worked candles: the buys at the interval, the cash skip, the moving-average
filter, the take-profit on the averaged position that moves after each buy, a restart."""

from __future__ import annotations

import pytest

from core_engine.errors import ConfigError
from core_engine.trading import SimBroker, replay
from core_engine.trading.bots import DCATrader
from tests.trading.bots.conftest import (
    SYM,
    candles,
    fills_of,
    flat,
    journal_fills,
    killed_and_restarted,
    restart_runs,
    t,
)

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


MA_ROWS = flat(100, 3) + [(100, 100, 99, 99), (99, 99, 98, 98), (98, 98, 97, 97),
                          (97, 97.5, 96.5, 97), (97, 97.2, 95, 95.5), (95.5, 96, 94, 94.5),
                          (94.5, 95, 94, 95)]                 # buys at 97 (t6) and 94.5 (t9)
Q1, Q2 = 100 / 97, 100 / 94.5
TARGET_2 = 200.2 / (Q1 + Q2) * 1.02                             # 97.745


def test_dca_take_profit_gapped_through_fills_at_the_open():
    # candle 10 opens at 99, above the resting target 97.745: the limit sell fills at the
    # open, the better price, and the realised P&L is the open's
    rows = MA_ROWS + [(99, 99.5, 98.5, 99.2), (99.2, 99.3, 99.1, 99.2)]
    bot = DCATrader(symbol=SYM, amount=100.0, interval="15m", ma_length=3, take_profit_pct=2.0)
    result = replay(bot, candles(rows), broker())
    assert fills_of(result)[2] == ("sell", t(10), 99.0, round(Q1 + Q2, 9),
                                   round((Q1 + Q2) * 99 * FEE, 9), "take_profit")
    realized = (Q1 + Q2) * 99 * (1 - FEE) - 200.2                 # +6.42 (+3.80 at 97.745)
    report = bot.report(99.2)
    assert report["take_profits"] == 1 and report["quantity"] == 0
    assert report["realized_pnl"] == pytest.approx(realized, rel=1e-12)
    targets = result.orders[result.orders.tag == "take_profit"]
    assert targets.limit_price.tolist() == pytest.approx([100.1 / Q1 * 1.02, TARGET_2])
    assert result.metrics["final_equity"] == pytest.approx(1_000 + realized, rel=1e-12)


@pytest.mark.parametrize("at", [6, 9])
def test_dca_runner_killed_after_a_buy_keeps_the_average_and_the_target(tmp_path, at):
    # the live runner with the paper broker (a decision every 15 minutes), killed in the tick
    # at t(at) after the buy filled and its target moved, before the state was saved; it
    # restarts 15 minutes later, when at 9 the target has already filled (candle 10): the
    # buy's fill, handed over again, must re-place the same target id although nothing is
    # held any more, so that the take-profit is booked
    rows = MA_ROWS + [(95, 98, 95, 97.9), (97.9, 98, 97.8, 97.9), (97.9, 98, 97.8, 97.9)]
    bot = DCATrader(symbol=SYM, amount=100.0, interval="15m", ma_length=3, take_profit_pct=2.0)
    plain, restarted, _ = killed_and_restarted(bot, candles(rows), at, tmp_path,
                                               initial_cash=1_000.0)
    assert [f[1:] for f in journal_fills(plain)] == [
        ("buy", t(6), 97.0, round(Q1, 9)), ("buy", t(9), 94.5, round(Q2, 9)),
        ("sell", t(11), round(TARGET_2, 9), round(Q1 + Q2, 9))]
    assert journal_fills(restarted) == journal_fills(plain)
    assert len(restarted.journal.orders()) == 4        # 2 buys, 2 targets: none twice
    assert restarted.journal.errors() == []
    realized = (Q1 + Q2) * TARGET_2 * (1 - FEE) - 200.2
    report = restarted.trader.report(97.9)
    assert report["buys"] == 2 and report["take_profits"] == 1 and report["quantity"] == 0
    assert report["realized_pnl"] == pytest.approx(realized, rel=1e-12)
