"""``core-engine live --paper|--exchange ...``: the run command, end to end, offline."""

from __future__ import annotations

import functools

import pandas as pd
import pytest

from core_engine.cli import main
from core_engine.data import load_sample
from core_engine.data.store import ParquetStore
from core_engine.live.journal import Journal

from .conftest import API_KEY, API_SECRET
from .fake_binance import FakeBinance

SYMBOLS = "BTC/USDT,ETH/USDT,SOL/USDT"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    store = ParquetStore(root)
    for symbol, frame in load_sample(SYMBOLS.split(",")).items():
        part = frame[(frame.timestamp >= "2021-03-01") & (frame.timestamp < "2021-03-04")]
        store.write(symbol, "5m", part.reset_index(drop=True))
    return root


def _fake_exchange_clock(fake):
    """A WallClock stand-in: the fake exchange's time, advanced candle by candle on sleep."""

    class FakeClock:
        def now(self):
            return pd.Timestamp(fake.now_ms, unit="ms", tz="UTC")

        def sleep_until(self, t):
            while fake.now_ms < t.value // 1_000_000:
                fake.advance()

    return FakeClock


def test_paper_run_over_a_store_then_resume(store, tmp_path, capsys):
    journal = tmp_path / "paper.sqlite"
    argv = ["live", "--paper", "--store", str(store), "--symbols", SYMBOLS, "--journal",
            str(journal), "--strategy", "macd_rsi_confluence", "--param", "rsi_low=35",
            "--stop-loss-pct", "1", "--take-profit-pct", "2", "--max-positions", "2"]
    assert main(argv + ["--until", "2021-03-02T12:00"]) == 0
    out = capsys.readouterr().out
    assert "state     running" in out and "positions:" in out
    with Journal(journal) as j:
        first = len(j.orders())
        assert first > 0 and j.meta("broker") == "PaperBroker"
    assert journal.with_suffix(".html").exists()
    assert journal.with_suffix(".paper.sqlite").exists()
    assert main(argv) == 0  # resumes from the checkpoint, to the end of the store
    with Journal(journal) as j:
        orders = j.orders()
        assert len(orders) > first
        assert len({o.client_id for o in orders}) == len(orders)
        held = j.positions()
    from core_engine.data import Panel
    from core_engine.live.paper import PaperBroker

    panel = Panel.from_store(ParquetStore(store), SYMBOLS.split(","), "5m")
    paper = PaperBroker(panel, journal_path=journal.with_suffix(".paper.sqlite"))
    assert paper.balances() == pytest.approx(held, abs=1e-6)  # the saved paper account


def test_exchange_run_against_the_fake(monkeypatch, make_candles, tmp_path, capsys):
    from core_engine.live import ccxt_broker, runner

    candles = {"BTC/USDT": make_candles(400, seed=5, price=30000.0),
               "ETH/USDT": make_candles(400, seed=6, price=2000.0)}
    with FakeBinance(candles, balances={"USDT": 5000.0}, keys={API_KEY: API_SECRET},
                     start=candles["BTC/USDT"]["timestamp"].iloc[300]) as fake:
        monkeypatch.setenv("CORE_ENGINE_BINANCE_KEY_1", API_KEY)
        monkeypatch.setenv("CORE_ENGINE_BINANCE_SECRET_1", API_SECRET)
        monkeypatch.setattr(ccxt_broker, "CCXTSession", functools.partial(
            ccxt_broker.CCXTSession, configure=fake.configure))

        monkeypatch.setattr(runner, "WallClock", _fake_exchange_clock(fake))
        journal = tmp_path / "live.sqlite"
        code = main(["live", "--exchange", "binance", "--symbols", "BTC/USDT,ETH/USDT",
                     "--journal", str(journal), "--strategy", "momentum_rank", "--shift",
                     "5m", "--window", "15m", "--settle", "0s", "--history", "200",
                     "--max-ticks", "12", "--max-drawdown-pct", "50"])
        assert code == 0, capsys.readouterr().err
        with Journal(journal) as j:
            assert j.meta("broker") == "CCXTBroker"
            assert len(j.orders()) > 0 and {o.client_id for o in j.orders()} <= {
                o.client_id for o in fake.orders}
            assert j.positions() == pytest.approx(
                {a: v for a, v in fake.total_balances().items() if v}, abs=1e-6)


def test_run_needs_one_mode_and_symbols(tmp_path, capsys):
    journal = str(tmp_path / "j.sqlite")
    assert main(["live", "--journal", journal, "--symbols", "BTC/USDT"]) == 2
    assert "--paper or --exchange" in capsys.readouterr().err
    assert main(["live", "--paper", "--journal", journal]) == 2
    assert "needs --symbols" in capsys.readouterr().err


def _exchange_cli(monkeypatch, fake, journal, *extra):
    from core_engine.live import ccxt_broker, runner

    monkeypatch.setenv("CORE_ENGINE_BINANCE_KEY_1", API_KEY)
    monkeypatch.setenv("CORE_ENGINE_BINANCE_SECRET_1", API_SECRET)
    monkeypatch.setattr(ccxt_broker, "CCXTSession", functools.partial(
        ccxt_broker.CCXTSession, configure=fake.configure, backoff_base=0.001,
        backoff_cap=0.01))

    monkeypatch.setattr(runner, "WallClock", _fake_exchange_clock(fake))
    return main(["live", "--exchange", "binance", "--symbols", "BTC/USDT", "--journal",
                 str(journal), "--strategy", "momentum_rank", "--shift", "5m", "--window",
                 "15m", "--settle", "0s", "--history", "200", *extra])


@pytest.mark.parametrize("outage, code", [(12, 0), (10**6, 2)])
def test_exchange_down_at_start(monkeypatch, make_candles, tmp_path, capsys, outage, code):
    """The account endpoint fails (503) while the runner reconciles at start. A short outage:
    start is tried again after a back-off and the run goes on. A long one: one line on
    stderr, exit code 2, no traceback, nothing sent."""
    candles = {"BTC/USDT": make_candles(400, seed=5, price=30000.0)}
    with FakeBinance(candles, balances={"USDT": 5000.0}, keys={API_KEY: API_SECRET},
                     start=candles["BTC/USDT"]["timestamp"].iloc[300]) as fake:
        fake.inject("http_503", method="GET", path="/api/v3/account", times=outage)
        journal = tmp_path / "live.sqlite"
        got = _exchange_cli(monkeypatch, fake, journal, "--max-ticks", "3")
        captured = capsys.readouterr()
        assert got == code, captured.err
        assert "Traceback" not in captured.err and "Traceback" not in captured.out
        if code:
            assert len(captured.err.strip().splitlines()) == 1, captured.err
            assert "binance" in captured.err and "start" in captured.err
            assert fake.requests["POST /api/v3/order"] == 0
            assert fake.requests["DELETE /api/v3/order"] == 0
        else:
            assert fake.faults_fired["http_503"] == outage
            assert "3 ticks" in captured.out
