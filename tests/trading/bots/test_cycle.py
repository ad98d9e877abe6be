"""CycleTrader on hand-worked candles: the dip buy, the trend filter (no buy while a
look-back is falling, the buy once none is), the trailing exit after the fee-aware profit
check, the hard stop while the profit check holds the trail back, and a restart mid-cycle.
Look-backs of 15 and 30 minutes on 5m candles, fees 10 bps."""

from __future__ import annotations

import pytest

from core_engine.errors import ConfigError
from core_engine.trading import SimBroker, replay
from core_engine.trading.bots import CycleTrader
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
Q = 1000 / 107.5          # the entry: 1,000 USDT at the open 107.5
COST = 1000 * (1 + FEE)   # 1,001 with the fee


def bot():
    return CycleTrader(symbol=SYM, buy_drop_pct=2.0, trend_lookbacks=("15m", "30m"),
                       trailing_pct=1.0, min_profit_pct=0.5, stop_loss_pct=3.0, amount=1000.0,
                       every="5m")


def broker():
    return SimBroker(fee_bps=10, initial_cash=10_000.0)


# a spike to 110 and a pull-back to 107.5 (−2.27 %) while 15 and 30 minutes ago it was 100
DIP = flat(100, 7) + [(100, 104.2, 99.9, 104), (104, 110.2, 103.9, 110),
                      (110, 110.1, 107.4, 107.5)]          # rows 0..9; the buy at the open of 10


def test_cycle_buys_the_dip_and_sells_on_the_trail_in_profit_after_fees():
    rows = DIP + [(107.5, 108.2, 107.3, 108), (108, 111.2, 107.9, 111),
                  (111, 112.3, 110.9, 112),     # tracked high 112
                  (112, 112.1, 110.7, 110.8),   # 110.8 <= 112 × 0.99 and +2.86 % net: sell
                  (110.8, 111, 110.5, 110.9), (110.9, 111, 110.8, 110.9)]
    trader = bot()
    result = replay(trader, candles(rows), broker())
    assert fills_of(result) == [("buy", t(10), 107.5, round(Q, 9), 1.0, "market"),
                                ("sell", t(14), 110.8, round(Q, 9), round(Q * 110.8 * FEE, 9),
                                 "market")]
    profit = Q * 110.8 * (1 - FEE) - COST       # +28.67
    assert result.trades.exit_reason.tolist() == ["trailing_stop"]
    assert result.trades.pnl.iloc[0] == pytest.approx(profit, rel=1e-12)
    report = trader.report(110.9)
    assert report["cycles"] == 1 and report["phase"] == "buy"
    assert report["realized_pnl"] == pytest.approx(profit, rel=1e-12)
    assert report["last_buy"]["price"] == 107.5 and report["last_sell"]["price"] == 110.8
    assert report["tracked_high"] == 110.9  # a new cycle tracks from the sale
    buy_note = result.notes[result.notes.text == "buy the dip"].iloc[0]
    assert buy_note["values"]["trends"] == pytest.approx([0.075, 0.075])
    assert buy_note["values"]["drop_pct"] == pytest.approx((1 - 107.5 / 110) * 100)


def test_cycle_profit_check_holds_the_trail_and_the_hard_stop_sells():
    rows = DIP + [(107.5, 108.3, 107.3, 108.2),
                  (108.2, 108.2, 106.9, 107.0),   # 1 % under 108.2 but −0.66 % after fees: hold
                  (107.0, 107.1, 104.1, 104.2),   # <= 107.5 × 0.97 = 104.275: stop
                  (104.2, 104.5, 104.0, 104.3)]
    result = replay(bot(), candles(rows), broker())
    assert fills_of(result)[1] == ("sell", t(13), 104.2, round(Q, 9),
                                   round(Q * 104.2 * FEE, 9), "market")
    assert result.trades.exit_reason.tolist() == ["stop_loss"]
    assert result.trades.pnl.iloc[0] == pytest.approx(Q * 104.2 * (1 - FEE) - COST, rel=1e-12)


def test_cycle_profit_check_counts_the_fee_on_both_sides():
    # 107.7 is 1 % under the tracked 108.8 and +0.19 % over the entry before fees, −0.01 %
    # after them: break-even (min_profit_pct=0) sells it fee-free and holds it at 10 bps
    rows = DIP + [(107.5, 108.9, 107.3, 108.8), (108.8, 108.8, 107.6, 107.7),
                  (107.7, 107.8, 107.6, 107.7)]
    params = {**bot().get_params(), "min_profit_pct": 0.0}
    with_fees = replay(CycleTrader(**params), candles(rows), broker())
    fee_free = replay(CycleTrader(**params), candles(rows),
                      SimBroker(fee_bps=0, initial_cash=10_000.0))
    assert [f[0] for f in fills_of(with_fees)] == ["buy"]
    assert fills_of(fee_free)[1][:3] == ("sell", t(12), 107.7)
    assert fee_free.trades.pnl.iloc[0] == pytest.approx(1000 / 107.5 * 107.7 - 1000)


def test_cycle_waits_while_a_look_back_is_falling():
    rows = flat(110, 3) + [(110, 110, 109.4, 109.5), (109.5, 109.5, 108.9, 109),
                           (109, 109, 108.4, 108.5), (108.5, 108.5, 107.9, 108),
                           (108, 108, 107.7, 107.8)] + flat(107.8, 8)
    result = replay(bot(), candles(rows), broker())
    # 2 % under 110 from the close of candle 7; the 15m look-back rises back to 0 at the
    # open of 11, the 30m one at the open of 14: the buy waits until then
    assert fills_of(result)[0][:3] == ("buy", t(14), 107.8)
    notes = result.notes
    waits = notes[notes.text == "dip, but the trend is falling"]
    assert waits.time.tolist() == [t(r) for r in range(8, 14)]
    assert waits["values"].iloc[0]["trends"] == pytest.approx([107.8 / 109 - 1, 107.8 / 110 - 1])


def test_cycle_restart_mid_cycle_resumes_the_trail():
    rows = DIP + [(107.5, 108.2, 107.3, 108), (108, 111.2, 107.9, 111),
                  (111, 112.3, 110.9, 112), (112, 112.1, 110.7, 110.8),
                  (110.8, 111, 110.5, 110.9)]
    (plain, _), (restarted, wrapper) = restart_runs(bot(), candles(rows), 12, broker)
    assert wrapper.restored and len(plain.fills) == 2
    assert fills_of(restarted) == fills_of(plain)
    assert wrapper.bot.state["cycles"] == 1


def test_cycle_errors_name_the_parameter():
    with pytest.raises(ConfigError, match="'trend_lookbacks' parameter of CycleTrader"):
        CycleTrader(trend_lookbacks="1h")
    with pytest.raises(ConfigError, match="'trend_lookbacks' parameter must be a positive"):
        CycleTrader(trend_lookbacks=("1h", "-4h"))
    with pytest.raises(ConfigError, match="'buy_drop_pct' parameter of CycleTrader"):
        CycleTrader(buy_drop_pct=0)
    with pytest.raises(ConfigError, match="'every' parameter must be"):
        CycleTrader(every="often")


TRAIL_ROWS = DIP + [(107.5, 108.2, 107.3, 108), (108, 111.2, 107.9, 111),
                    (111, 112.3, 110.9, 112), (112, 112.1, 110.7, 110.8),
                    (110.8, 111, 110.5, 110.9), (110.9, 111, 110.8, 110.9)]
TRAIL_PROFIT = Q * 110.8 * (1 - FEE) - COST          # +28.67


@pytest.mark.parametrize("at", [10, 14])
def test_cycle_runner_killed_before_saving_its_state_resumes_the_cycle(tmp_path, at):
    # the live runner with the paper broker, killed in the tick at t(at) after the order
    # filled but before the bot's state was saved: at 10 the buy (the saved state is still
    # in the buy phase), at 14 the trailing sale (the saved state still holds the position).
    # The restart must book the fill as its own — not hold coins it does not know of, nor
    # stay in a sell phase with nothing to sell
    plain, restarted, _ = killed_and_restarted(bot(), candles(TRAIL_ROWS), at, tmp_path,
                                               initial_cash=10_000.0)
    fills = [("buy", t(10), 107.5, round(Q, 9)), ("sell", t(14), 110.8, round(Q, 9))]
    assert [f[1:] for f in journal_fills(plain)] == fills
    assert journal_fills(restarted) == journal_fills(plain)
    assert len(restarted.journal.orders()) == 2
    report = restarted.trader.report(110.9)
    assert report["cycles"] == 1 and report["phase"] == "buy" and report["quantity"] == 0
    assert report["realized_pnl"] == pytest.approx(TRAIL_PROFIT, rel=1e-12)
    assert restarted.broker.balances() == pytest.approx(
        {"USDT": 10_000.0 + TRAIL_PROFIT, "AAA": 0.0}, abs=1e-9)


@pytest.mark.parametrize("gap, reason", [
    # the trail (110.88 under the tracked 112) gapped through, still +1.75 % after fees
    ((109.5, 109.8, 109.4, 109.6), "trailing_stop"),
    # a gap from the top through the trail and the hard stop (104.275) at once: the stop
    ((103.0, 103.4, 102.6, 103.2), "stop_loss"),
])
def test_cycle_level_gapped_through_sells_at_the_next_open(gap, reason):
    # the bot decides on closes and sells at the market: a candle that opens beyond a level
    # is seen at its close and sold at the next open (109.4 / 103.1), not at the level
    rows = DIP + [(107.5, 108.2, 107.3, 108), (108, 111.2, 107.9, 111),
                  (111, 112.3, 110.9, 112), gap]
    sale = round(gap[3] - 0.2, 9) if reason == "trailing_stop" else 103.1
    rows.append((sale, sale + 0.2, sale - 0.2, sale))
    result = replay(bot(), candles(rows), broker())
    assert fills_of(result) == [("buy", t(10), 107.5, round(Q, 9), 1.0, "market"),
                                ("sell", t(14), sale, round(Q, 9), round(Q * sale * FEE, 9),
                                 "market")]
    assert result.trades.exit_reason.tolist() == [reason]
    # +15.66 on the trail, −42.89 on the stop
    assert result.trades.pnl.iloc[0] == pytest.approx(Q * sale * (1 - FEE) - COST, rel=1e-12)
