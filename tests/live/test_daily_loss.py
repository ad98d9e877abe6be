"""The daily-loss breaker end to end: the Runner with the PaperBroker over hand-made hourly
candles around two UTC midnights, an averaging-down trader, no fees.

By hand (10,000 USDT; ``t(r)`` is the open of candle ``r``, 2021-01-01 20:00 + r hours):

* 21:00 the first decision buys 50 AAA at 100 (cash 5,000); the closes stay at 100, so the
  equity marked at 2021-01-02 00:00 — the day's opening equity — is 10,000;
* candle 4 (00:00) closes at 96: at 01:00 the equity is 5,000 + 50 × 96 = 9,800 (−2 %, under
  the 5 % limit) and the trader, below its last buy, buys 10 more at the open 96 (cash 4,040);
* candle 5 closes at 90: at 02:00 the equity is 4,040 + 60 × 90 = 9,440, −5.6 % from 10,000:
  the breaker trips, once; the decision of 02:00 (90 under 96: buy) is not taken, nor any
  other that day (the closes stay at 88);
* 2021-01-03 00:00, a new UTC day: the runner resumes, the day opens at 4,040 + 60 × 88 =
  9,320 (no loss yet) and the trader buys its 10 at 88.

With ``liquidate_on_daily_loss`` the trip at 02:00 sells the 60 AAA at the open 90 (cash
9,440, nothing held) and the next UTC day the runner resumes as well (the rule halts entries
for the day, as in ``PortfolioRules``): the trader, whose last buy was at 96, buys 10 at 88.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core_engine.data import Panel
from core_engine.live.notify import EmailNotifier, WebhookNotifier
from core_engine.live.paper import PaperBroker
from core_engine.live.runner import Breakers, Runner, SimulatedClock
from core_engine.live.state import RunnerState
from core_engine.risk import PortfolioRules
from core_engine.trading import Trader
from core_engine.trading.orders import OrderSide

from .local_servers import SMTPSink, WebhookReceiver

SYM = "AAA/USDT"
T0 = pd.Timestamp("2021-01-01 20:00", tz="UTC")
CLOSES = [100] * 4 + [96, 90] + [88] * 24          # rows 0..29: 20:00 on day 1 .. 01:00 day 3
OPENS = [100] * 5 + [96, 90] + [88] * 23


def t(row: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=row)


def hourly_panel() -> Panel:
    n = len(CLOSES)
    o, c = np.array(OPENS, float)[:, None], np.array(CLOSES, float)[:, None]
    return Panel(index=pd.date_range(T0, periods=n, freq="1h"), symbols=(SYM,), timeframe="1h",
                 open=o, high=np.maximum(o, c) + 0.5, low=np.minimum(o, c) - 0.5, close=c,
                 volume=np.full((n, 1), 10.0))


class AverageDown(Trader):
    """Buys 50 at its first decision, then 10 more whenever the last close is below the
    price of its last buy (a breaker's liquidation is not a buy)."""

    name = "average-down"

    def on_start(self, ctx):
        self.state = {"last_buy": None}

    def on_bar(self, ctx):
        close = float(ctx.candles(SYM, 1)["close"].iloc[-1])
        last = self.state["last_buy"]
        if last is None:
            ctx.buy(SYM, 50.0)
        elif close < last:
            ctx.buy(SYM, 10.0)

    def on_fill(self, ctx, fill):
        if fill.side is OrderSide.BUY:
            self.state["last_buy"] = float(fill.price)


def run(tmp_path, rules, notifiers=()):
    panel = hourly_panel()
    end = panel.index[-1] + pd.Timedelta(hours=1)
    runner = Runner(AverageDown(), PaperBroker(panel, fee_bps=0, initial_cash=10_000.0),
                    tmp_path / "j.sqlite", clock=SimulatedClock(panel.index[0]), symbols=[SYM],
                    timeframe="1h", history=None, end=end, status_page=False, rules=rules,
                    notifiers=notifiers)
    runner.run(until=end)
    return runner


def fills(runner):
    return [(f.side, f.time, f.price, f.quantity) for f in runner.journal.fills()]


def test_daily_loss_breaker_halts_until_the_next_utc_day_journals_and_notifies(tmp_path):
    with WebhookReceiver() as hook, SMTPSink() as smtp:
        notifiers = [WebhookNotifier(hook.url, kinds=("breaker",)),
                     EmailNotifier("127.0.0.1", smtp.port, "bot@localhost", ["me@localhost"])]
        runner = run(tmp_path, PortfolioRules(daily_loss_limit_pct=5.0), notifiers)
    assert fills(runner) == [("buy", t(1), 100.0, 50.0), ("buy", t(5), 96.0, 10.0),
                             ("buy", t(28), 88.0, 10.0)]
    events = runner.journal.breaker_events()
    assert len(events) == 1
    event = {**events[0], "detail": json.loads(events[0]["detail"])}
    assert (event["rule"], event["action"], event["time"]) == (
        "daily_loss_limit_pct", "halted", t(6))
    assert event["detail"]["day_start_equity"] == 10_000.0
    assert event["detail"]["equity"] == 9_440.0 and event["detail"]["loss_pct"] == 5.6
    changes = runner.journal.state_changes()
    assert [c[1] for c in changes[-2:]] == ["halted", "running"]
    assert changes[-1][2] == "daily loss limit reset: a new UTC day"
    assert runner.journal.state()[0] is RunnerState.RUNNING
    # no decision at all while halted (02:00 .. 23:00 of day 2), decisions again from day 3
    decided = [d["time"] for d in runner.journal.decisions(100)]
    assert not [d for d in decided if t(6) <= d < t(28)]
    assert t(28) in decided and t(5) in decided
    equity = runner.journal.equity()
    assert equity[t(4)] == 10_000.0 and equity[t(6)] == 9_440.0 and equity[t(28)] == 9_320.0
    assert [m["kind"] for m in hook.received] == ["breaker"]
    assert hook.received[0]["details"]["loss_pct"] == 5.6
    assert len(smtp.messages) == 1 and "daily_loss_limit_pct" in smtp.messages[0]["Subject"]
    assert runner.broker.balances() == pytest.approx({"USDT": 3_160.0, "AAA": 70.0})


def test_daily_loss_breaker_with_liquidation_flattens_then_resumes_the_next_day(tmp_path):
    runner = run(tmp_path, Breakers(daily_loss_limit_pct=5.0, liquidate_on_daily_loss=True))
    assert fills(runner) == [("buy", t(1), 100.0, 50.0), ("buy", t(5), 96.0, 10.0),
                             ("sell", t(6), 90.0, 60.0), ("buy", t(28), 88.0, 10.0)]
    events = runner.journal.breaker_events()
    assert [(e["rule"], e["action"], e["time"]) for e in events] == [
        ("daily_loss_limit_pct", "flatten", t(6))]
    flatten = [o for o in runner.journal.orders() if o.leg == "flatten"]
    assert [(o.side, o.quantity, o.status.value) for o in flatten] == [("sell", 60.0, "filled")]
    # flat and out of the market for the rest of day 2: its equity stays 9,440
    equity = runner.journal.equity()
    assert (equity[(equity.index > t(6)) & (equity.index < t(28))] == 9_440.0).all()
    assert [c[1] for c in runner.journal.state_changes()[-2:]] == ["flatten", "running"]
    assert runner.broker.balances() == pytest.approx({"USDT": 9_440.0 - 880.0, "AAA": 10.0})


def test_daily_loss_above_the_worst_loss_does_not_trip(tmp_path):
    # without a breaker the trader also buys at 90 (02:00) and 88 (03:00): at 03:00 the
    # equity is 3,140 + 70 × 88 = 9,300, −7 %, the worst of the run; a 7.5 % limit never
    # trips, a 7 % one does, at 03:00
    runner = run(tmp_path, Breakers(daily_loss_limit_pct=7.5))
    assert runner.journal.breaker_events() == []
    assert fills(runner) == [("buy", t(1), 100.0, 50.0), ("buy", t(5), 96.0, 10.0),
                             ("buy", t(6), 90.0, 10.0), ("buy", t(7), 88.0, 10.0)]
    at_limit = run(tmp_path / "7", Breakers(daily_loss_limit_pct=7.0))
    assert [(e["time"], json.loads(e["detail"])["loss_pct"])
            for e in at_limit.journal.breaker_events()] == [(t(7), 7.0)]


def test_drawdown_halt_ends_after_its_duration_and_the_peak_restarts(tmp_path):
    # max_drawdown_pct=5 trips with the daily limit's numbers at 02:00 (9,440 against the
    # peak 10,000) and halts for 3 h. As in PortfolioRules the peak restarts at 9,440, so at
    # 05:00 the equity 4,040 + 60 × 88 = 9,280 (−1.7 % from it) does not trip again and the
    # trader buys 10 at 88 (measured from the first peak it would be −7.2 %: halted for good)
    runner = run(tmp_path, Breakers(max_drawdown_pct=5.0, drawdown_halt_for="3h"))
    events = runner.journal.breaker_events()
    assert [(e["rule"], e["action"], e["time"]) for e in events] == [
        ("max_drawdown_pct", "halted", t(6))]
    assert json.loads(events[0]["detail"])["peak"] == 10_000.0
    assert fills(runner) == [("buy", t(1), 100.0, 50.0), ("buy", t(5), 96.0, 10.0),
                             ("buy", t(9), 88.0, 10.0)]
    assert runner.journal.state_changes()[-1][1:] == ("running", "drawdown halt of 3h over")
