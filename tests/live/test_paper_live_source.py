"""PaperBroker on a live candle source (public klines through ccxt, here from the fake
exchange): candles arrive as the clock moves, market orders fill at the open of the candle
starting at the decision time, and the paper account resumes from its own journal."""

from __future__ import annotations

import pandas as pd
import pytest

from core_engine.live.ccxt_session import CCXTSession
from core_engine.live.paper import PaperBroker, ccxt_candle_source
from core_engine.live.runner import Runner
from core_engine.trading.trader import Trader

from .fake_binance import FakeBinance


class FakeClock:
    def __init__(self, fake):
        self.fake = fake

    def now(self):
        return pd.Timestamp(self.fake.now_ms, unit="ms", tz="UTC")

    def sleep_until(self, t):
        while self.fake.now_ms < pd.Timestamp(t).value // 1_000_000:
            self.fake.advance()


class BuyThenSell(Trader):
    def __init__(self, symbol: str = "BTC/USDT") -> None:
        self.symbol = symbol

    def on_bar(self, ctx):
        bar = ctx.now.value // (5 * 60 * 10**9)
        if bar % 6 == 0 and ctx.position(self.symbol) == 0:
            ctx.buy(self.symbol, value=1000.0, leg="entry")
        elif bar % 6 == 3 and ctx.position(self.symbol) > 0:
            ctx.sell(self.symbol, ctx.position(self.symbol), leg="exit")


def test_paper_broker_on_live_candles_resumes(make_candles, tmp_path):
    candles = {"BTC/USDT": make_candles(200, seed=8, price=30000.0)}
    frame = candles["BTC/USDT"]
    with FakeBinance(candles, start=frame["timestamp"].iloc[100]) as fake:
        session = CCXTSession("binance", config={"timeout": 2000, "enableRateLimit": False},
                              configure=fake.configure)
        clock = FakeClock(fake)

        def run(ticks):
            paper = PaperBroker(source=ccxt_candle_source(session), symbols=["BTC/USDT"],
                                timeframe="5m", history=50, fee_bps=10,
                                journal_path=tmp_path / "paper.sqlite")
            runner = Runner(BuyThenSell(), paper, tmp_path / "j.sqlite", clock=clock,
                            symbols=["BTC/USDT"], timeframe="5m", settle="0s", history=50)
            runner.run(max_ticks=ticks)
            runner.journal.close()
            return paper

        run(10)
        paper = run(10)  # a new process: the account comes back from its journal
        from core_engine.live.journal import Journal

        with Journal(tmp_path / "j.sqlite") as journal:
            fills = journal.fills()
            assert len(fills) >= 4
            opens = frame.set_index("timestamp")["open"]
            for fill in fills:  # at the open of the candle starting at the decision time
                assert fill.price == pytest.approx(opens[fill.time], rel=1e-12)
            assert paper.balances() == pytest.approx(journal.positions(), abs=1e-9)
            assert [f.side for f in fills][:2] == ["buy", "sell"]
