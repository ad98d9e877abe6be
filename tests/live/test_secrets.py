"""A known key goes through the runner, errors and debug logging (ccxt logs request headers at
DEBUG) and is found in no log line, journal row, repr, exception message or HTML page."""

from __future__ import annotations

import logging
import sqlite3

import pandas as pd
import pytest

from core_engine.errors import BrokerUnavailable
from core_engine.live.ccxt_broker import CCXTBroker
from core_engine.live.ccxt_session import CCXTSession
from core_engine.live.keys import KeyRing
from core_engine.live.runner import Runner

from .fake_binance import FakeBinance, point_ccxt_at
from .soak import make_trader

KEY = "KNOWN-api-key-7f3a9c2e5b1d4f6a8c0e"
SECRET = "KNOWN-api-secret-0b9d8c7e6f5a4b3c2d1e"
REVOKED = "REVOKED-api-key-1122334455667788"
REVOKED_SECRET = "REVOKED-api-secret-99aa88bb77cc66dd"
VALUES = (KEY, SECRET, REVOKED, REVOKED_SECRET)


class FakeClock:
    def __init__(self, fake):
        self.fake = fake

    def now(self):
        return pd.Timestamp(self.fake.now_ms, unit="ms", tz="UTC")

    def sleep_until(self, t):
        while self.fake.now_ms < int(pd.Timestamp(t).value // 1_000_000):
            self.fake.advance()


def _absent(text: str, where: str) -> None:
    for value in VALUES:
        assert value not in text, f"{value[:12]}... leaked into {where}"


def test_keys_never_leak(make_candles, tmp_path, caplog):
    candles = {"BTC/USDT": make_candles(200, seed=3, price=30000.0),
               "ETH/USDT": make_candles(200, seed=4, price=2000.0)}
    env = {"CORE_ENGINE_BINANCE_KEY_1": REVOKED, "CORE_ENGINE_BINANCE_SECRET_1": REVOKED_SECRET,
           "CORE_ENGINE_BINANCE_KEY_2": KEY, "CORE_ENGINE_BINANCE_SECRET_2": SECRET}
    ring = KeyRing.from_env("binance", environ=env)
    start = candles["BTC/USDT"]["timestamp"].iloc[40]
    raised: list[str] = []
    log_file = tmp_path / "debug.log"
    file_handler = logging.FileHandler(log_file)
    file_handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(file_handler)
    try:
        with caplog.at_level(logging.DEBUG), FakeBinance(
                candles, balances={"USDT": 10000.0}, keys={KEY: SECRET}, start=start,
                timeout_sleep=0.2, seed=9) as fake:
            fake.random_faults({"drop_after": 0.03, "http_429": 0.03, "not_found": 0.05,
                                "timeout_after": 0.01})
            fake.retry_after = 0  # 429s without a wait beyond the backoff (a quick test)
            clock = FakeClock(fake)
            session = CCXTSession("binance", keys=ring, config={"timeout": 150,
                                                                "enableRateLimit": False},
                                  configure=lambda ex: point_ccxt_at(ex, fake.url),
                                  backoff_base=0.001, backoff_cap=0.01)
            session.exchange.verbose = False
            broker = CCXTBroker("binance", session=session, symbols=list(candles), clock=clock,
                                price_timeframe="5m")
            runner = Runner(make_trader(), broker, tmp_path / "j.sqlite", clock=clock,
                            symbols=list(candles), timeframe="5m", settle="0s", history=30)
            runner.run(max_ticks=40)  # the revoked key fails first: the ring rotates
            assert [r[2] for r in ring.rotations][:1] == ["authentication failed"]
            assert len(runner.journal.fills()) > 5
            runner.journal.record_error("test", "check", f"error text with {KEY} inside")
            bad = KeyRing.from_env("binance", environ={
                "CORE_ENGINE_BINANCE_KEY_1": REVOKED,
                "CORE_ENGINE_BINANCE_SECRET_1": REVOKED_SECRET})
            lost = CCXTSession("binance", keys=bad, config={"timeout": 150},
                               configure=lambda ex: point_ccxt_at(ex, fake.url))
            with pytest.raises(BrokerUnavailable) as info:
                lost.call("balance", lost.exchange.fetch_balance)
            raised.append(str(info.value))
            raised.append(repr(info.value))
            reprs = [repr(x) for x in (ring, ring.current, session, broker, runner.journal,
                                       bad, lost)]
            runner.tick(runner.next_tick())  # the page shows the error just journaled
    finally:
        logging.getLogger().removeHandler(file_handler)
        file_handler.close()
    assert any("X-MBX-APIKEY" in r.getMessage() for r in caplog.records)  # ccxt did log it
    for record in caplog.records:
        _absent(record.getMessage(), f"log record {record.name}")
    _absent(caplog.text, "captured log text")
    _absent(log_file.read_text(), "the debug log file")
    _absent("\n".join(sqlite3.connect(tmp_path / "j.sqlite").iterdump()), "the journal")
    _absent((tmp_path / "j.html").read_text(), "the status page")
    assert "error text with ****" in (tmp_path / "j.html").read_text()
    _absent("\n".join(raised), "exception messages")
    _absent("\n".join(reprs), "reprs")
