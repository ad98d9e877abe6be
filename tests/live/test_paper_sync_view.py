"""What ``on_fill`` sees while a paper sync hands fills candle by candle (issue 11).

A paper tick moves the PaperBroker over every candle closed since the last tick and the
runner hands each fill to ``on_fill`` at the step that produced it (``ctx.now`` is that
candle's open, as in ``replay``). The trader must then see the candles closed by that step,
not those of the first fill of the sync: the runner's market view was renewed only at the
start of a tick, so a second fill in a later candle of the same tick was handed with the
known candles (and ``ctx.causal`` row) of the first. A RankingTrader marks its account at
each close since its last call with the holdings held in between: with the stale row it
marked those closes later with the holdings after the fills, and a rebalance sized from
another equity than replay's (``test_paper_parity_random``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core_engine.data import Panel
from core_engine.live.paper import PaperBroker
from core_engine.live.runner import Runner, SimulatedClock
from core_engine.trading import SimBroker, Trader, replay

SYMBOL = "BTC/USDT"


def _panel() -> Panel:
    """24 five-minute candles around 100; the lows reach 99 at 00:15 and 98 at 00:35."""
    times = pd.date_range("2021-01-01", periods=24, freq="5min", tz="UTC")
    opens = np.full(24, 100.0)
    lows = np.full(24, 99.5)
    lows[3], lows[7] = 98.9, 97.9
    frame = pd.DataFrame({"timestamp": times, "open": opens, "high": opens + 0.5,
                          "low": lows, "close": opens + np.arange(24) * 0.01,
                          "volume": np.full(24, 1_000.0)})
    return Panel.from_frames({SYMBOL: frame}, "5m")


class LadderBuyer(Trader):
    """Two resting limit buys at the start; each fill records what the trader sees."""

    def __init__(self, every: str = "1h") -> None:
        self.every = every

    def on_start(self, ctx):
        ctx.buy(SYMBOL, 1.0, type="limit", price=99.0, leg="high")
        ctx.buy(SYMBOL, 1.0, type="limit", price=98.0, leg="low")

    def on_bar(self, ctx):
        pass

    def on_fill(self, ctx, fill):
        _, row = ctx.causal("rows", lambda panel: panel.n_times)
        last = ctx.candles(SYMBOL, 1)
        self.state.setdefault("seen", []).append(
            (str(fill.time), str(ctx.now), int(row), ctx.panel().n_times,
             str(last["timestamp"].iloc[-1]), float(ctx.view.last_prices()[0])))


def test_on_fill_in_a_paper_sync_sees_the_candles_closed_by_its_step(tmp_path):
    panel = _panel()
    end = panel.index[-1] + pd.Timedelta("5min")
    replayed = LadderBuyer()
    replay(replayed, panel, SimBroker(fee_bps=10), end=end)
    want = replayed.state["seen"]
    # the two fills close candles 3 and 7: the second one sees four more closed candles
    assert [w[:4] for w in want] == [
        ("2021-01-01 00:20:00+00:00", "2021-01-01 00:15:00+00:00", 2, 3),
        ("2021-01-01 00:40:00+00:00", "2021-01-01 00:35:00+00:00", 6, 7)]

    trader = LadderBuyer()
    runner = Runner(trader, PaperBroker(panel, fee_bps=10), tmp_path / "j.sqlite",
                    clock=SimulatedClock(panel.index[0]), symbols=[SYMBOL], timeframe="5m",
                    history=None, end=end, status_page=False)
    runner.run(until=pd.Timestamp("2021-01-01 01:00", tz="UTC"))
    assert runner.ticks == 2  # 00:00 and 01:00: both fills come in the sync of one tick
    assert trader.state["seen"] == want


@pytest.mark.parametrize("end", ["2021-01-01 02:00", "2021-01-01 00:50"])
def test_a_restart_between_ticks_hands_the_fills_as_without_it(tmp_path, end):
    """Stopped after its 00:00 tick and restarted at 00:05 (before either fill), the
    runner's next tick is 01:00, as without the stop. Its ``start`` ran in that tick and
    synced the saved paper account to 01:00 with no step: both fills reached ``on_fill``
    after reconciliation with the 01:00 market (causal row 11) instead of the market of
    their steps. ``start`` now reconciles when the process comes up (00:05), and the 01:00
    tick's sync hands each fill at its step. With ``end`` at 00:50, the first tick after
    the restart is the run's end tick (00:50, off the cadence), alike."""
    panel = _panel()
    end = pd.Timestamp(end, tz="UTC")
    replayed = LadderBuyer()
    replay(replayed, panel, SimBroker(fee_bps=10), end=end)

    def runner(at):
        paper = PaperBroker(panel, fee_bps=10, journal_path=tmp_path / "paper.sqlite")
        return Runner(LadderBuyer(), paper, tmp_path / "j.sqlite", clock=SimulatedClock(at),
                      symbols=[SYMBOL], timeframe="5m", history=None, end=end,
                      status_page=False)

    first = runner(panel.index[0])
    first.run(until=pd.Timestamp("2021-01-01 00:05", tz="UTC"))
    first.journal.close()
    second = runner(pd.Timestamp("2021-01-01 00:05", tz="UTC"))
    second.run(until=min(end, pd.Timestamp("2021-01-01 01:00", tz="UTC")))
    assert second.ticks == 1
    assert second.trader.state["seen"] == replayed.state["seen"]


class ProtectedBuyer(LadderBuyer):
    """One resting limit buy at 99 (filled in the 00:15 candle); its fill places a stop
    sell at 98.5 (the 00:35 candle trades down to 97.9)."""

    def on_start(self, ctx):
        ctx.buy(SYMBOL, 1.0, type="limit", price=99.0, leg="entry")

    def on_fill(self, ctx, fill):
        super().on_fill(ctx, fill)
        if fill.side == "buy":
            ctx.sell(SYMBOL, fill.quantity, type="stop", price=98.5, leg="stop")


def test_a_fill_made_while_the_runner_was_down_is_handed_when_it_comes_up(tmp_path):
    """Stopped after its 00:00 tick, the runner is down while the entry fills (00:15 candle)
    and its stop would have filled (00:35 candle); it comes up at 00:45, its next tick is
    01:00. It reconciles at 00:45: the entry is handed with the market of then (9 closed
    candles; ``ctx.now`` the fill's step, so the stop keeps its client id) and the stop goes
    out then: the 00:35 candle traded unprotected, the stop rests (neither handed with the
    01:00 market, as when ``start`` ran in the first tick, nor matched on the candles of the
    downtime, as when the first tick's sync moved the saved account on)."""
    panel = _panel()
    end = panel.index[-1] + pd.Timedelta("5min")

    def runner(at):
        paper = PaperBroker(panel, fee_bps=10, journal_path=tmp_path / "paper.sqlite")
        return Runner(ProtectedBuyer(), paper, tmp_path / "j.sqlite", clock=SimulatedClock(at),
                      symbols=[SYMBOL], timeframe="5m", history=None, end=end,
                      status_page=False)

    plain = ProtectedBuyer()
    replay(plain, panel, SimBroker(fee_bps=10), end=end)
    assert [s[:4] for s in plain.state["seen"]] == [
        ("2021-01-01 00:20:00+00:00", "2021-01-01 00:15:00+00:00", 2, 3),
        ("2021-01-01 00:40:00+00:00", "2021-01-01 00:35:00+00:00", 6, 7)]
    first = runner(panel.index[0])
    first.run(until=pd.Timestamp("2021-01-01 00:45", tz="UTC"))
    first.journal.close()
    second = runner(pd.Timestamp("2021-01-01 00:45:03", tz="UTC"))
    second.run(until=pd.Timestamp("2021-01-01 01:00", tz="UTC"))
    assert second.ticks == 1
    assert [s[:4] for s in second.trader.state["seen"]] == [
        ("2021-01-01 00:20:00+00:00", "2021-01-01 00:15:00+00:00", 8, 9)]
    stop = [o for o in second.journal.orders() if o.side == "sell"]
    assert len(stop) == 1 and stop[0].status.value == "submitted"  # resting
    assert stop[0].bar_time == pd.Timestamp("2021-01-01 00:15", tz="UTC")
    assert [f.side for f in second.journal.fills()] == ["buy"]
