"""A paper runner killed in the tick whose sync made a fill, after ``on_fill`` placed its
orders and before the checkpoint, hands the fill again on restart: ``on_fill`` must place the
same orders (same client ids, deduplicated by the journal). In the sync ``ctx.now`` was the
open of the fill's candle; the restart handed it with the fill's time (its close for a fill
inside the candle), so the orders got other client ids and were placed twice."""

from __future__ import annotations

import pandas as pd
import pytest

from core_engine.data import Panel
from core_engine.live.paper import PaperBroker
from core_engine.live.runner import Runner, SimulatedClock
from core_engine.trading import Trader
from tests.live.flat_candles import SYMBOL, flat_panel
from tests.live.kills import run_killed_before_checkpoint


def _panel() -> Panel:
    # 00:15: the limit buy fills inside the candle (timed 00:20)
    return flat_panel(lows={3: 98.0})


class ScaleIn(Trader):
    """A limit entry; each entry fill buys as much again at the market."""

    def __init__(self, every: str = "1h") -> None:
        self.every = every

    def on_start(self, ctx):
        ctx.buy(SYMBOL, 1.0, type="limit", price=99.0, leg="entry", tag="entry")

    def on_bar(self, ctx):
        pass

    def on_fill(self, ctx, fill):
        if ctx.broker.fetch_order(fill.client_id).tag == "entry":
            ctx.buy(SYMBOL, 1.0, leg="add", tag="add")


def test_restart_in_the_tick_that_synced_a_fill_does_not_place_its_on_fill_orders_again(tmp_path):
    panel = _panel()
    end = panel.index[-1] + pd.Timedelta("5min")

    def runner():
        paper = PaperBroker(panel, fee_bps=10, journal_path=tmp_path / "paper.sqlite")
        return Runner(ScaleIn(), paper, tmp_path / "j.sqlite", clock=SimulatedClock(panel.index[0]),
                      symbols=[SYMBOL], timeframe="5m", history=None, end=end, status_page=False)

    first = runner()
    first.run(max_ticks=1)  # 00:00

    run_killed_before_checkpoint(first)  # 01:00: the sync fills the entry, on_fill buys
    second = runner()
    second.run(max_ticks=1)
    markets = [o.client_id for o in second.journal.orders() if o.type == "market"]
    assert len(markets) == 1, markets
    assert second.broker.balances()["BTC"] == pytest.approx(2.0)


def test_an_account_saved_before_fill_steps_were_kept_is_restored(tmp_path):
    import pickle
    import sqlite3

    path = tmp_path / "paper.sqlite"
    paper = PaperBroker(_panel(), fee_bps=10, journal_path=path)
    paper.sync(pd.Timestamp("2021-01-01 00:10", tz="UTC"))
    conn = sqlite3.connect(path)
    rowid, blob = conn.execute("SELECT id, account FROM paper_account ORDER BY id DESC "
                               "LIMIT 1").fetchone()
    state = pickle.loads(blob)
    del state["_fill_steps"]
    conn.execute("UPDATE paper_account SET account = ? WHERE id = ?", (pickle.dumps(state), rowid))
    conn.commit()
    conn.close()
    again = PaperBroker(_panel(), fee_bps=10, journal_path=path)
    assert again._fill_steps == {} and again.synced_to == paper.synced_to
