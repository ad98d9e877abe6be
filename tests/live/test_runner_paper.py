"""The Runner on a simulated clock with the PaperBroker over recorded candles (real Binance
sample): the same trades as ``walk_forward(mode="portfolio")`` and the same fills as
``replay`` of the same trader, restarts that resume exactly, reconciliation that refuses to
trade, the kill switch and the breakers."""

from __future__ import annotations

import pandas as pd
import pytest

from core_engine.backtest import walk_forward
from core_engine.data import Panel, load_sample
from core_engine.live.journal import Journal
from core_engine.live.keys import Secret
from core_engine.live.notify import EmailNotifier, WebhookNotifier
from core_engine.live.paper import PaperBroker
from core_engine.live.runner import Breakers, ReconciliationError, Runner, SimulatedClock
from core_engine.live.state import RunnerState
from core_engine.risk import ExitRules
from core_engine.strategies import get_strategy
from core_engine.trading import RankingTrader, SimBroker, replay

from .local_servers import SMTPSink, WebhookReceiver

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "ADA/USDT"]


@pytest.fixture(scope="module")
def panel():
    frames = load_sample(SYMBOLS)
    frames = {s: f[(f.timestamp >= "2021-03-01") & (f.timestamp < "2021-03-06")]
              .reset_index(drop=True) for s, f in frames.items()}
    return Panel.from_frames(frames, "5m")


EXITS = ExitRules(stop_loss_pct=1.0, take_profit_pct=2.0)


def _trader():
    return RankingTrader("macd_rsi_confluence", window="4h", shift="2h", max_positions=2,
                         exits=EXITS)


def _end(panel):
    return panel.index[-1] + pd.Timedelta("5min")


def _runner(panel, path, paper=None, **kw):
    paper = paper or PaperBroker(panel, fee_bps=10)
    return Runner(_trader(), paper, path, clock=SimulatedClock(panel.index[0]),
                  symbols=SYMBOLS, timeframe="5m", history=None, end=_end(panel),
                  status_page=False, **kw)


def _fills(rows):
    return [(f.client_id, f.symbol, f.side, f.time, round(f.price, 9), round(f.quantity, 9))
            for f in rows]


@pytest.fixture(scope="module")
def replayed(panel):
    result = replay(_trader(), panel, SimBroker(fee_bps=10), end=_end(panel))
    fills = result.fills[result.fills["reason"] != "last_close"]  # the end of a replay only
    return _fills(fills.itertuples())


def test_runner_with_paper_broker_equals_walk_forward_portfolio(panel, replayed, tmp_path):
    runner = _runner(panel, tmp_path / "j.sqlite")
    runner.run(until=_end(panel))
    fills = runner.journal.fills()
    wf = walk_forward(panel, get_strategy("macd_rsi_confluence"), mode="portfolio",
                      exits=EXITS, max_positions=2, fee_bps=10, window="4h", shift="2h")
    trades = wf.trades[~wf.trades["exit_at_last_close"]]  # the end of the data, not a fill
    assert len(trades) > 40

    def key(symbol, time, price, quantity):
        return (symbol, time, round(price, 6), round(quantity, 9))

    buys = sorted(key(f.symbol, f.time, f.price, f.quantity) for f in fills if f.side == "buy")
    sells = sorted(key(f.symbol, f.time, f.price, f.quantity) for f in fills
                   if f.side == "sell")
    assert buys == sorted(key(t.symbol, t.entry_time, t.entry_price, t.quantity)
                          for t in wf.trades.itertuples())
    assert sells == sorted(key(t.symbol, t.exit_time, t.exit_price, t.quantity)
                           for t in trades.itertuples())
    # and fill for fill (client ids, times, prices, quantities) with replay
    assert _fills(fills) == replayed
    # every order went through the journal: intent first, then the broker's answers
    for order in runner.journal.orders():
        assert runner.journal.order_events(order.client_id)[0] == ("intent", "new")
    decisions = runner.journal.decisions(100)
    assert any(d["notes"] and d["scores"] for d in decisions)
    assert runner.journal.positions() == pytest.approx(runner.broker.balances(), abs=1e-6)


def test_restart_resumes_where_it_stopped(panel, replayed, tmp_path):
    path, paper_path = tmp_path / "j.sqlite", tmp_path / "paper.sqlite"
    middle = panel.index[len(panel.index) // 2].floor("2h")
    first = _runner(panel, path, PaperBroker(panel, fee_bps=10, journal_path=paper_path))
    first.run(until=middle)
    first.journal.close()  # the process is gone; only the two files remain
    second = _runner(panel, path, PaperBroker(panel, fee_bps=10, journal_path=paper_path))
    second.clock = SimulatedClock(middle)
    second.run(until=_end(panel))
    assert _fills(second.journal.fills()) == replayed


def test_a_restart_after_a_long_stop_acts_on_the_latest_bar_not_the_stale_ones(panel, tmp_path):
    """Down for 10 hours, the runner does not replay the decisions it missed (their orders
    would fill at today's prices): its first tick after the restart is the latest bar close;
    a restart right after a complete tick runs no tick twice."""
    path, paper_path = tmp_path / "j.sqlite", tmp_path / "paper.sqlite"
    middle = panel.index[len(panel.index) // 2].floor("2h")
    first = _runner(panel, path, PaperBroker(panel, fee_bps=10, journal_path=paper_path))
    first.run(until=middle)
    before = {d["time"] for d in first.journal.decisions(1000)}
    assert max(before) == middle
    first.journal.close()
    back = middle + pd.Timedelta("10h")
    second = _runner(panel, path, PaperBroker(panel, fee_bps=10, journal_path=paper_path))
    second.clock = SimulatedClock(back + pd.Timedelta("3s"))
    second.run(until=back + pd.Timedelta("4h"))
    after = sorted(d["time"] for d in second.journal.decisions(1000) if d["time"] not in before)
    assert after == [back, back + pd.Timedelta("2h"), back + pd.Timedelta("4h")]
    # and the journal's ticks: none between the two runs, none twice
    with Journal(path) as journal:
        times = [pd.Timestamp(r[0]) for r in journal._query(
            "SELECT time FROM checkpoints ORDER BY id")]
    assert len(times) == len(set(times))
    assert not [x for x in times if middle < x < back]


def test_reconciliation_refuses_to_trade_on_a_mismatch(panel, tmp_path):
    path = tmp_path / "j.sqlite"
    middle = panel.index[len(panel.index) // 2].floor("2h")
    first = _runner(panel, path, PaperBroker(panel, fee_bps=10, journal_path=tmp_path / "p"))
    first.run(until=middle)
    first.journal.close()
    orders_before = len(Journal(path).orders())
    # a different account behind the same journal: the broker holds only the opening cash
    stranger = _runner(panel, path, PaperBroker(panel, fee_bps=10))
    with pytest.raises(ReconciliationError, match="differ from the journal's positions"):
        stranger.run(until=_end(panel))
    with Journal(path) as journal:
        assert len(journal.orders()) == orders_before  # nothing was sent
        assert journal.errors()[0]["kind"] == "ReconciliationError"


def test_halt_file_stops_new_orders_and_flatten_closes_everything(panel, tmp_path):
    runner = _runner(panel, tmp_path / "j.sqlite")
    runner.run(until=panel.index[0] + pd.Timedelta("8h"))
    assert len(runner.journal.orders()) > 0
    runner.kill_switch_path("halt").write_text("operator: news")
    count = len(runner.journal.orders())
    runner.run(until=panel.index[0] + pd.Timedelta("1D"))
    assert runner.journal.state()[:2] == (RunnerState.HALTED, "operator: news")
    assert not runner.kill_switch_path("halt").exists()
    assert len(runner.journal.orders()) == count  # halted: nothing new
    runner.journal.set_state("running", "operator: resume")
    runner.run(until=panel.index[0] + pd.Timedelta("1D") + pd.Timedelta("10h"))
    assert len(runner.journal.orders()) > count
    runner.kill_switch_path("flatten").touch()
    runner.run(max_ticks=2)
    held = runner.broker.balances()
    assert all(held.get(s.split("/")[0], 0.0) == 0 for s in SYMBOLS)
    assert runner.journal.orders(final=False) == []
    assert runner.journal.state()[0] is RunnerState.FLATTEN


def test_drawdown_breaker_halts_journals_and_notifies(panel, tmp_path):
    with WebhookReceiver() as hook, SMTPSink() as smtp:
        notifiers = [WebhookNotifier(hook.url, kinds=("breaker",)),
                     EmailNotifier("127.0.0.1", smtp.port, "bot@localhost", ["me@localhost"],
                                   username="bot", password=Secret("smtp-pass-1234"))]
        runner = _runner(panel, tmp_path / "j.sqlite", notifiers=notifiers,
                         rules=Breakers(max_drawdown_pct=0.5, liquidate_on_drawdown=True))
        runner.run(until=_end(panel))
    events = runner.journal.breaker_events()
    assert len(events) == 1 and events[0]["rule"] == "max_drawdown_pct"
    assert events[0]["action"] == "flatten"
    assert runner.journal.state()[0] is RunnerState.FLATTEN
    assert [m["kind"] for m in hook.received] == ["breaker"]
    assert hook.received[0]["details"]["drawdown_pct"] >= 0.5
    assert len(smtp.messages) == 1 and "max_drawdown_pct" in smtp.messages[0]["Subject"]
    tripped = events[0]["time"]
    later = [f for f in runner.journal.fills() if f.time >= tripped]
    assert all(f.side == "sell" for f in later)  # liquidation only, no entry after the trip
    held = runner.broker.balances()
    assert all(held.get(s.split("/")[0], 0.0) == 0 for s in SYMBOLS)


def test_breakers_read_portfolio_rules_fields():
    class Rules:
        max_drawdown_pct = 20.0
        daily_loss_limit_pct = 5.0
        liquidate_on_daily_loss = True
        min_order_value = 10.0

    b = Breakers.from_rules(Rules())
    assert (b.max_drawdown_pct, b.daily_loss_limit_pct, b.liquidate_on_daily_loss) == (
        20.0, 5.0, True)
    assert Breakers.from_rules(None) == Breakers()
