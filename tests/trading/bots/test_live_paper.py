"""``core-engine live --paper --bot grid``: the grid bot through the live runner and the paper
broker (over a store, simulated clock) places the same orders and gets the same fills as
its replay."""

from __future__ import annotations

from core_engine.cli import main
from core_engine.data import Panel, load_sample
from core_engine.data.store import ParquetStore
from core_engine.live.journal import Journal
from core_engine.trading import SimBroker, replay
from core_engine.trading.bots import GridTrader


def test_paper_trading_the_grid_bot_equals_its_replay(tmp_path, capsys):
    frame = load_sample(["BTC/USDT"], "2021-01-01", "2021-01-01T03:00")["BTC/USDT"]
    store = ParquetStore(tmp_path / "store")
    store.write("BTC/USDT", "5m", frame)
    journal = tmp_path / "grid.sqlite"
    params = {"low": 28500, "high": 29800, "levels": 14, "amount_per_level": 500}
    code = main(["live", "--paper", "--store", str(tmp_path / "store"), "--bot", "grid",
                 "--symbol", "BTC/USDT", "--journal", str(journal), "--until",
                 "2021-01-01T02:30", *[f"--param={k}={v}" for k, v in params.items()]])
    assert code == 0
    out = capsys.readouterr().out
    assert "broker PaperBroker" in out and "grid-" in out
    with Journal(journal) as j:
        live = [(f.client_id, str(f.side), f.time, f.price, f.quantity) for f in j.fills()]
    panel = Panel.from_frames({"BTC/USDT": frame}, "5m").loc_time(None, "2021-01-01T02:30")
    result = replay(GridTrader(symbol="BTC/USDT", **params), panel, SimBroker())
    replayed = [(f.client_id, f.side, f.time, f.price, f.quantity)
                for f in result.fills.itertuples()]
    assert len(replayed) >= 8
    assert [r[:3] for r in live] == [r[:3] for r in replayed]
    for a, b in zip(live, replayed, strict=True):
        assert abs(a[3] - b[3]) < 1e-9 * b[3] and abs(a[4] - b[4]) < 1e-12
