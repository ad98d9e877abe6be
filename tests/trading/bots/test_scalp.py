"""ScalpTrader on hand-worked candles: the entry on EMA(2) > EMA(4) with rising volume, the
0.5 % target, the cooldown, the 0.3 % stop (first when a candle reaches both), and the fee
arithmetic that dominates such a bot."""

from __future__ import annotations

import pytest

from core_engine.errors import ConfigError
from core_engine.risk import PortfolioRules
from core_engine.trading import SimBroker, replay
from core_engine.trading.bots import ScalpTrader
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
ROWS = [(100, 100.1, 99.9, 100, 10)] * 5 + [
    (100, 101.1, 99.9, 101, 30),        # 5: EMA2 100.67 > EMA4 100.4, volume 30 > mean 16.7
    (101, 101.3, 100.8, 101.2, 40),     # 6: entry at the open 101; target 101.505, stop 100.697
    (101.2, 101.6, 101.0, 101.5, 50),   # 7: target fills; cooldown to 00:50
    (101.5, 101.9, 101.4, 101.8, 60),   # 8, 9: the signal holds, the cooldown blocks
    (101.8, 102.1, 101.7, 102.0, 70),
    (102, 103, 101, 101.5, 10),         # 10: entry at 102; reaches 102.51 and 101.694: stop
    (101.5, 101.6, 101.4, 101.5, 10),
]


def ema(values, n):
    """Plain EMA seeded with the mean of the first n values (TA-Lib convention)."""
    out = [None] * (n - 1) + [sum(values[:n]) / n]
    for v in values[n:]:
        out.append(out[-1] + 2 / (n + 1) * (v - out[-1]))
    return out


def bot():
    return ScalpTrader(symbol=SYM, fast=2, slow=4, volume_fast=1, volume_slow=3,
                       target_pct=0.5, stop_pct=0.3, cooldown="10m", amount=1000.0)


def test_the_fixture_signal_by_hand():
    closes = [r[3] for r in ROWS]
    volumes = [r[4] for r in ROWS]
    fast, slow = ema(closes, 2), ema(closes, 4)
    go = [slow[i] is not None and fast[i] > slow[i] and i >= 2
          and volumes[i] > sum(volumes[i - 2:i + 1]) / 3 for i in range(len(ROWS))]
    assert [i for i, g in enumerate(go) if g] == [5, 6, 7, 8, 9]


def test_scalp_target_cooldown_and_stop_first():
    trader = bot()
    result = replay(trader, candles(ROWS), SimBroker(fee_bps=10, initial_cash=10_000.0))
    q1, q2 = 1000 / 101, 1000 / 102
    assert [f[:4] for f in fills_of(result)] == [
        ("buy", t(6), 101.0, round(q1, 9)), ("sell", t(8), 101.505, round(q1, 9)),
        ("buy", t(10), 102.0, round(q2, 9)), ("sell", t(11), 101.694, round(q2, 9))]
    trades = result.trades
    assert trades.exit_reason.tolist() == ["take_profit", "stop_loss"]
    assert trades.ambiguous.tolist() == [False, True]
    pnl = [q1 * 101.505 * (1 - FEE) - 1000 * (1 + FEE),     # +1.99: a 0.5 % win nets 0.2 %
           q2 * 101.694 * (1 - FEE) - 1000 * (1 + FEE)]     # −4.99: a 0.3 % loss costs 0.5 %
    assert trades.pnl.tolist() == pytest.approx(pnl, rel=1e-12)
    report = trader.report()
    assert report["entries"] == 2 and report["wins"] == 1
    assert report["exits"] == {"take_profit": 1, "stop_loss": 1}
    assert report["realized_pnl"] == pytest.approx(sum(pnl), rel=1e-12)
    assert report["fees"] == pytest.approx(result.fills.fee.sum())
    assert result.orders.status.value_counts().to_dict() == {"filled": 4, "cancelled": 2}


def test_fees_dominate_the_scalper():
    # win +0.5 %, lose −0.3 %: fee-free 37.5 % winners break even, 62.5 % at 10 bps a side
    assert bot().breakeven_win_rate(fee_bps=0) == pytest.approx(0.3 / 0.8)
    win = 1.005 * 0.999 / 1.001 - 1
    loss = 1 - 0.997 * 0.999 / 1.001
    assert bot().breakeven_win_rate(fee_bps=10) == pytest.approx(loss / (win + loss))
    assert bot().breakeven_win_rate(fee_bps=30) == 1.0    # the target no longer covers fees
    fee_free = replay(bot(), candles(ROWS), SimBroker(fee_bps=0, initial_cash=10_000.0))
    assert fee_free.trades.pnl.tolist() == pytest.approx(
        [1000 / 101 * 101.505 - 1000, 1000 / 102 * 101.694 - 1000])


def test_scalp_errors_name_the_parameter():
    with pytest.raises(ConfigError, match="'fast' parameter of ScalpTrader must be below 'slow'"):
        ScalpTrader(fast=21, slow=9)
    with pytest.raises(ConfigError, match="'stop_pct' parameter of ScalpTrader"):
        ScalpTrader(stop_pct=0)
    with pytest.raises(ConfigError, match="'cooldown' parameter must be"):
        ScalpTrader(cooldown="soon")


@pytest.mark.parametrize("rules, entries, blocked", [
    (PortfolioRules(max_entries_per_day=1), [t(6)], [(t(10), "max_entries_per_day")]),
    (PortfolioRules(cooldown="1h"), [t(6)], [(t(10), "cooldown")]),
    (PortfolioRules(min_order_value=2_000), [], [(t(r), "min_order_value") for r in range(6, 11)]),
])
def test_portfolio_rules_around_the_scalper(rules, entries, blocked):
    trader = ScalpTrader(**{**bot().get_params(), "rules": rules})
    result = replay(trader, candles(ROWS), SimBroker(fee_bps=10, initial_cash=10_000.0))
    assert [f[1] for f in fills_of(result) if f[0] == "buy"] == entries
    got = result.blocked
    assert list(zip(got.decision_time, got.reason, strict=True))[:len(blocked)] == blocked
    assert (got.symbol == SYM).all()


def test_exposure_cap_sizes_the_entry_and_account_rules_are_refused():
    trader = ScalpTrader(**{**bot().get_params(), "amount": None,
                            "rules": PortfolioRules(max_exposure_pct=25)})
    result = replay(trader, candles(ROWS), SimBroker(fee_bps=10, initial_cash=10_000.0))
    first = result.fills.iloc[0]
    assert first.price * first.quantity == pytest.approx(2_500)   # 25 % of the 10,000 marked
    with pytest.raises(ConfigError, match="cannot hold \\['max_drawdown_pct'\\]"):
        ScalpTrader(rules=PortfolioRules(max_drawdown_pct=10))
    with pytest.raises(ConfigError, match="'rules' parameter of ScalpTrader"):
        ScalpTrader(rules={"cooldown": "1h"})


# the hand-worked trades of test_scalp_target_cooldown_and_stop_first
Q1, Q2 = 1000 / 101, 1000 / 102
TRADES = [("buy", t(6), 101.0, round(Q1, 9)), ("sell", t(8), 101.505, round(Q1, 9)),
          ("buy", t(10), 102.0, round(Q2, 9)), ("sell", t(11), 101.694, round(Q2, 9))]
PNL = [Q1 * 101.505 * (1 - FEE) - 1000 * (1 + FEE), Q2 * 101.694 * (1 - FEE) - 1000 * (1 + FEE)]


@pytest.mark.parametrize("at", [7, 8, 11])
def test_scalp_restart_in_a_position_keeps_the_resting_exits(at):
    # 7: in the first position, its stop and target resting; 8: the target's fill is the
    # first thing the restarted bot hears of; 11: the stop's fill likewise
    def broker():
        return SimBroker(fee_bps=10, initial_cash=10_000.0)

    (plain, _), (restarted, wrapper) = restart_runs(bot(), candles(ROWS), at, broker)
    assert wrapper.restored
    assert [f[:4] for f in fills_of(restarted)] == TRADES == [f[:4] for f in fills_of(plain)]
    assert list(restarted.orders.status) == list(plain.orders.status)
    assert len(restarted.orders) == 6            # 2 entries, 2 × (stop + target): none twice
    report = wrapper.bot.report()
    assert report["entries"] == 2 and report["exits"] == {"take_profit": 1, "stop_loss": 1}
    assert report["realized_pnl"] == pytest.approx(sum(PNL), rel=1e-12)


@pytest.mark.parametrize("at, kill", [
    (6, "before_checkpoint"), (6, "after_checkpoint"), (6, "after_fill"),
    (7, "before_checkpoint"), (10, "before_checkpoint"), (11, "before_checkpoint"),
    (11, "after_fill")])
def test_scalp_runner_killed_in_a_position_resumes_without_a_second_entry(
        tmp_path, at, kill):
    # the live runner with the paper broker, its process killed in the tick at t(at); at 6
    # the entry has filled and its stop and target rest, but the bot's state saved at the
    # previous tick knows nothing of them: the restart must adopt them, not buy again.
    # Killed right after the entry's fill was journaled, no exit was sent: the restart
    # must place them
    plain, restarted, open_at_kill = killed_and_restarted(
        bot(), candles(ROWS), at, tmp_path, initial_cash=10_000.0,
        kill=kill)
    expected = [(side, time, price, quantity) for side, time, price, quantity in TRADES]
    assert [f[1:] for f in journal_fills(plain)] == expected
    assert journal_fills(restarted) == journal_fills(plain)
    if kill == "after_fill":
        assert open_at_kill == []                 # the position was unprotected
    elif at in (6, 7, 10):
        assert sorted(o.leg for o in open_at_kill) == ["stop", "take_profit"]
    orders = restarted.journal.orders()
    assert len(orders) == len({o.client_id for o in orders}) == 6
    assert [o.leg for o in orders] == ["entry", "stop", "take_profit"] * 2
    assert restarted.broker.balances() == pytest.approx(
        {"USDT": 10_000.0 + sum(PNL), "AAA": 0.0}, abs=1e-9)
    assert restarted.journal.positions() == pytest.approx(restarted.broker.balances(),
                                                          abs=1e-9)
    assert restarted.trader.report()["realized_pnl"] == pytest.approx(sum(PNL), rel=1e-12)
    # live fills carry no reason: the exits are named after the orders that filled
    for runner in (plain, restarted):
        assert runner.trader.report()["exits"] == {"take_profit": 1, "stop_loss": 1}


@pytest.mark.parametrize("gap, price, reason", [
    ((102.0, 102.3, 101.9, 102.2, 50), 102.0, "take_profit"),   # opens above 101.505
    ((100.0, 100.2, 99.8, 100.1, 50), 100.0, "stop_loss"),      # opens below 100.697
])
def test_scalp_target_or_stop_gapped_through_fills_at_the_open(gap, price, reason):
    # the position of candle 6 (entry 101, target 101.505, stop 100.697); candle 7 opens
    # beyond a level: the target (a limit) and the stop (a market once touched) fill at the
    # open, not at their level; the cooldown (to t(9)) keeps the bot out afterwards
    rows = ROWS[:7] + [gap, (price, price + 0.1, price - 0.1, price, 10)]
    trader = bot()
    result = replay(trader, candles(rows), SimBroker(fee_bps=10, initial_cash=10_000.0))
    assert fills_of(result) == [
        ("buy", t(6), 101.0, round(Q1, 9), 1.0, "market"),
        ("sell", t(7), price, round(Q1, 9), round(Q1 * price * FEE, 9), reason)]
    pnl = Q1 * price * (1 - FEE) - 1000 * (1 + FEE)      # +7.89 above, −11.89 below
    assert result.trades.pnl.tolist() == pytest.approx([pnl], rel=1e-12)
    assert trader.report()["exits"] == {reason: 1}
    assert result.metrics["final_equity"] == pytest.approx(10_000 + pnl, rel=1e-12)


def test_scalp_runner_killed_before_the_exits_were_sent_places_them_on_restart(tmp_path):
    # killed at t(10) right after the second entry's fill was journaled: no stop, no target
    # while the process is down. Restarted 3 s later, the cut-short tick t(10) runs again
    # and the run equals the uninterrupted one. Restarted a bar later (first tick t(11)), the
    # bot places the exits with the ids the uninterrupted run gave them; the stop (101.694)
    # finds candle 10 gone — it traded down to 101 unprotected — and fills at the next
    # open, 101.5, instead of at its level
    plain, soon, open_at_kill = killed_and_restarted(
        bot(), candles(ROWS), 10, tmp_path / "soon", initial_cash=10_000.0, kill="after_fill")
    assert open_at_kill == []
    assert journal_fills(soon) == journal_fills(plain)
    _, restarted, _ = killed_and_restarted(
        bot(), candles(ROWS), 10, tmp_path / "late", initial_cash=10_000.0, kill="after_fill",
        down_bars=1)
    assert [f[1:] for f in journal_fills(restarted)] == TRADES[:3] + [
        ("sell", t(11), 101.5, round(Q2, 9))]
    assert [o.client_id for o in restarted.journal.orders()] == [
        o.client_id for o in plain.journal.orders()]            # the same 6 orders, once each
    stop = [o for o in restarted.journal.orders() if o.leg == "stop"][1]
    assert stop.stop_price == pytest.approx(102 * 0.997) and stop.status.value == "filled"
    pnl = PNL[0] + Q2 * 101.5 * (1 - FEE) - 1000 * (1 + FEE)    # −6.89 on the second trade
    assert restarted.trader.report()["realized_pnl"] == pytest.approx(pnl, rel=1e-12)
    assert restarted.trader.report()["exits"] == {"take_profit": 1, "stop_loss": 1}
