"""BreakoutTrader on hand-worked candles: the Breakout signal with its confirmations counted
by hand, the size from the confirmations, the stop/trail and target resting right after the
entry fill, and each exit (trail, target, a gap through the stop)."""

from __future__ import annotations

import pytest

from core_engine.errors import ConfigError
from core_engine.risk import FixedFraction
from core_engine.strategies import Breakout
from core_engine.trading import SimBroker, replay
from core_engine.trading.bots import BreakoutTrader
from tests.trading.bots.conftest import (
    SYM,
    candles,
    fills_of,
    journal_fills,
    killed_and_restarted,
    restart_runs,
    t,
)

FEE = 0.001
# closes 100/99 alternating, then 103 breaks the 3-candle high 100.5 on volume 40.
# Confirmations at candle 7, by hand: EMA(2) 101.92 > EMA(3) 101.33 (yes); RSI(2) — Wilder,
# seeded with the mean of the first two changes (−1, +1): gains/losses 0.5/0.5 → 50, 25,
# 62.5, 31.25, 65.6, then +3: avg gain 1.75, loss 0.1641 → 91.4 >= 70 (no); volume z-score
# over (10, 10, 40): (40 − 20) / 14.14 = 1.41 > 1 (yes). Two of three.
HEAD = [(c, c + 0.5, c - 0.5, c, v) for c, v in
        zip([100, 99, 100, 99, 100, 99, 100, 103], [10] * 7 + [40], strict=True)]
STRATEGY = Breakout(length=3, ema_fast=2, ema_slow=3, rsi_length=2, volume_length=3,
                    volume_spike=1.0, min_confirmations=1)
VALUE = 10_000 * 2 / 3          # ConfidenceSizing(full_confidence=3): 2/3 of the equity
Q = VALUE / 103                 # bought at the open 103 of candle 8


def bot(**kw):
    return BreakoutTrader(symbol=SYM, strategy=STRATEGY, stop_loss_pct=2.0,
                          take_profit_pct=4.0, trailing_pct=1.5, **kw)


def run(tail, trader=None):
    trader = trader or bot()
    return trader, replay(trader, candles(HEAD + tail),
                          SimBroker(fee_bps=10, initial_cash=10_000.0))


def test_breakout_sized_by_confirmations_with_exits_resting_after_the_fill():
    trader, result = run([(103, 104, 102.5, 103.8, 10),    # trail from 104: 102.44
                          (103.8, 105, 102.3, 102.5, 10)])  # low 102.3: trailing stop
    assert fills_of(result) == [
        ("buy", t(8), 103.0, round(Q, 9), round(VALUE * FEE, 9), "market"),
        ("sell", t(10), 102.44, round(Q, 9), round(Q * 102.44 * FEE, 9), "trailing_stop")]
    orders = result.orders.set_index("tag")
    assert orders.loc["stop", "stop_price"] == pytest.approx(103 * 0.98)   # 100.94
    assert orders.loc["stop", "trail_pct"] == 1.5
    assert orders.loc["take_profit", "limit_price"] == pytest.approx(103 * 1.04)
    assert orders.loc["stop", "created_at"] == orders.loc["take_profit", "created_at"] == t(8)
    assert orders.loc["take_profit", "status"] == "cancelled"
    entry_note = result.notes[result.notes.text == "entry"].iloc[0]
    assert entry_note["values"]["confirmations"] == 2
    assert entry_note["values"]["weight"] == pytest.approx(2 / 3)
    pnl = Q * 102.44 * (1 - FEE) - VALUE * (1 + FEE)
    assert result.trades.pnl.tolist() == pytest.approx([pnl], rel=1e-12)
    assert trader.report()["exits"] == {"trailing_stop": 1}


@pytest.mark.parametrize("tail, exit_row, price, reason", [
    ([(103, 107.5, 102.9, 107.3, 10)], 9, 103 * 1.04, "take_profit"),
    # the trail from 103.5 is 101.95; candle 9 opens at 99, under it: filled at the open
    ([(103, 103.5, 102.8, 103.2, 10), (99, 100, 98, 99.5, 10)], 9, 99.0, "trailing_stop"),
])
def test_breakout_target_and_a_gap_through_the_stop(tail, exit_row, price, reason):
    _, result = run(tail)
    sell = fills_of(result)[1]
    assert sell[:3] == ("sell", t(exit_row), round(price, 9)) and sell[5] == reason
    assert result.trades.pnl.iloc[0] == pytest.approx(Q * price * (1 - FEE) - VALUE * (1 + FEE))


def test_breakout_sizing_objects_and_confirmation_floor():
    _, fixed = run([(103, 104, 102.5, 103.8, 10)], bot(sizing=FixedFraction(pct=50)))
    assert fixed.fills.price.iloc[0] * fixed.fills.quantity.iloc[0] == pytest.approx(5_000)
    strict = BreakoutTrader(symbol=SYM, strategy=Breakout(**{**STRATEGY.get_params(),
                                                            "min_confirmations": 3}))
    _, none = run([(103, 104, 102.5, 103.8, 10)], strict)
    assert len(none.orders) == 0


def test_breakout_errors_name_the_parameter():
    with pytest.raises(ConfigError, match="needs at least one exit"):
        BreakoutTrader(stop_loss_pct=None, take_profit_pct=None, trailing_pct=None)
    with pytest.raises(ConfigError, match="'strategy' parameter of BreakoutTrader"):
        BreakoutTrader(strategy="breakout")
    with pytest.raises(ConfigError, match="'sizing' parameter of BreakoutTrader"):
        BreakoutTrader(sizing=0.5)


# the trade of test_breakout_sized_by_confirmations_with_exits_resting_after_the_fill
TRAIL = [(103, 104, 102.5, 103.8, 10),    # trail from 104: 102.44
         (103.8, 105, 102.3, 102.5, 10)]  # low 102.3: trailing stop
TRAIL_FILLS = [("buy", t(8), 103.0, round(Q, 9)), ("sell", t(10), 102.44, round(Q, 9))]
TRAIL_PNL = Q * 102.44 * (1 - FEE) - VALUE * (1 + FEE)


@pytest.mark.parametrize("at", [9, 10])
def test_breakout_restart_in_a_position_keeps_the_trailing_stop_and_target(at):
    # 9: in the position, stop (trailing from 103 up to 104) and target resting; 10: the
    # trailing stop's fill is the first thing the restarted bot hears of
    def broker():
        return SimBroker(fee_bps=10, initial_cash=10_000.0)

    (plain, _), (restarted, wrapper) = restart_runs(bot(), candles(HEAD + TRAIL), at, broker)
    assert wrapper.restored
    assert [f[:4] for f in fills_of(restarted)] == TRAIL_FILLS == [f[:4] for f in
                                                                   fills_of(plain)]
    assert fills_of(restarted)[1][5] == "trailing_stop"
    assert list(restarted.orders.tag) == ["entry", "stop", "take_profit"]
    assert list(restarted.orders.status) == ["filled", "filled", "cancelled"]
    report = wrapper.bot.report()
    assert report["entries"] == 1 and report["exits"] == {"trailing_stop": 1}
    assert report["realized_pnl"] == pytest.approx(TRAIL_PNL, rel=1e-12)
    assert report["position"] is None


@pytest.mark.parametrize("at, kill", [
    (8, "before_checkpoint"), (8, "after_checkpoint"), (9, "before_checkpoint"),
    (10, "before_checkpoint"), (10, "after_fill")])
def test_breakout_runner_killed_in_a_position_resumes_without_a_second_entry(
        tmp_path, at, kill):
    # the live runner with the paper broker, killed in the tick at t(at); at 8 the entry has
    # filled and its exits rest while the saved state (of t(7)) knows nothing of them. The
    # breakout still holds at the close of candle 8 (103.8 > the 3-candle high 100.5), so a
    # bot that forgot its position would buy a second time at t(9)
    plain, restarted, open_at_kill = killed_and_restarted(
        bot(), candles(HEAD + TRAIL + [(102.5, 102.6, 102.4, 102.5, 10)]), at, tmp_path,
        initial_cash=10_000.0,
        kill=kill)
    assert [f[1:] for f in journal_fills(plain)] == TRAIL_FILLS
    assert journal_fills(restarted) == journal_fills(plain)
    if at in (8, 9):
        assert sorted(o.leg for o in open_at_kill) == ["stop", "take_profit"]
    orders = restarted.journal.orders()
    assert [(o.leg, o.status.value) for o in orders] == [
        ("entry", "filled"), ("stop", "filled"), ("take_profit", "cancelled")]
    assert orders[1].stop_price == pytest.approx(103 * 0.98)
    assert restarted.broker.balances() == pytest.approx(
        {"USDT": 10_000.0 + TRAIL_PNL, "AAA": 0.0}, abs=1e-9)
    assert restarted.trader.report()["realized_pnl"] == pytest.approx(TRAIL_PNL, rel=1e-12)
    for runner in (plain, restarted):    # live fills carry no reason: named after the order
        assert runner.trader.report()["exits"] == {"trailing_stop": 1}


def test_breakout_runner_killed_before_the_exits_were_sent_places_them_on_restart(tmp_path):
    # killed at t(8) right after the entry's fill was journaled: no stop, no target yet.
    # Restarted 3 s later, the runner runs the cut-short tick t(8) again: the bot hears of
    # the fill and rests its exits with the uninterrupted run's ids, and the run equals it.
    # Restarted a bar later (t(9)), nothing protected the position while candle 8 traded
    # (high 104): the trail starts from the entry 103 and rises with candle 9's high 105 to
    # 103.425 once it closed, so it fills at candle 10's open 102.5 (not 102.44)
    rows = HEAD + TRAIL + [(102.5, 102.6, 102.4, 102.5, 10)]
    plain, restarted, open_at_kill = killed_and_restarted(
        bot(), candles(rows), 8, tmp_path / "soon", initial_cash=10_000.0, kill="after_fill")
    assert open_at_kill == []
    assert journal_fills(restarted) == journal_fills(plain)
    assert [f[1:] for f in journal_fills(restarted)] == TRAIL_FILLS
    assert restarted.trader.report()["realized_pnl"] == pytest.approx(TRAIL_PNL, rel=1e-12)
    _, late, _ = killed_and_restarted(bot(), candles(rows), 8, tmp_path / "late",
                                      initial_cash=10_000.0, kill="after_fill", down_bars=1)
    assert [f[1:] for f in journal_fills(late)] == [TRAIL_FILLS[0],
                                                    ("sell", t(10), 102.5, round(Q, 9))]
    assert [o.client_id for o in late.journal.orders()] == [
        o.client_id for o in plain.journal.orders()]
    pnl = Q * 102.5 * (1 - FEE) - VALUE * (1 + FEE)
    assert late.trader.report()["realized_pnl"] == pytest.approx(pnl, rel=1e-12)
    assert late.trader.report()["exits"] == {"trailing_stop": 1}
