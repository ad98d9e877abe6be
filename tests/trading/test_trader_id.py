"""A trader's id (the root of its client order ids) is the same in every process: a live
runner restarted with the same trader must send a replayed decision under the same client
ids (the journal then returns the orders instead of sending them again). A parameter whose
repr names a memory address (a user's object, a function) gave a new id in every process."""

from __future__ import annotations

import hashlib

from core_engine.strategies import MacdRsiConfluence
from core_engine.trading import RankingTrader, Trader
from tests.fresh import in_fresh_process


class Band:
    """A user's object with the default repr."""

    def __init__(self, width=0.02):
        self.width = width


def floor_of(level):
    def check(x):
        return x > level

    return check


class WithObjects(Trader):
    def __init__(self, band=None, check=None, size=1.0):
        self.band = band
        self.check = check
        self.size = size


def _ids():
    return [WithObjects(band=Band()).trader_id, WithObjects(check=floor_of(0.1)).trader_id,
            WithObjects(band=Band(), check=len).trader_id]


def test_ids_with_objects_and_functions_are_the_same_in_a_fresh_process():
    # this module imported under the name pytest gave it (the classes' ids name it)
    assert in_fresh_process(__name__, "_ids") == _ids()
    assert "0x" not in "".join(_ids())


def test_different_objects_give_different_ids():
    assert WithObjects(band=Band(0.02)).trader_id != WithObjects(band=Band(0.03)).trader_id
    assert WithObjects(check=floor_of(0.1)).trader_id != \
        WithObjects(check=floor_of(0.2)).trader_id
    assert WithObjects(band=Band()).trader_id == WithObjects(band=Band()).trader_id


def test_an_id_without_an_address_in_its_repr_is_unchanged():
    """Journals of running traders hold client ids derived from the repr: those ids stay."""
    trader = RankingTrader(MacdRsiConfluence())
    assert " at 0x" not in repr(trader)
    want = f"{trader.name}-{hashlib.sha256(repr(trader).encode()).hexdigest()[:8]}"
    assert trader.trader_id == want


def test_a_runner_with_such_a_trader_can_be_restarted(tmp_path):
    """The journal refuses another trader's id: with the id of a repr naming an address, the
    same trader built again (a restart) was refused its own journal."""
    import pandas as pd

    from core_engine.data import Panel, load_sample
    from core_engine.live.paper import PaperBroker
    from core_engine.live.runner import Runner, SimulatedClock

    frames = load_sample(["BTC/USDT"])
    frames = {s: f[(f.timestamp >= "2021-03-01") & (f.timestamp < "2021-03-02")]
              .reset_index(drop=True) for s, f in frames.items()}
    panel = Panel.from_frames(frames, "5m")
    middle = panel.index[100]

    def runner(start):
        return Runner(WithObjects(band=Band(), check=floor_of(0.1)),
                      PaperBroker(panel, journal_path=tmp_path / "paper.sqlite"),
                      tmp_path / "j.sqlite", clock=SimulatedClock(start), symbols=["BTC/USDT"],
                      timeframe="5m", history=None, end=panel.index[-1] + pd.Timedelta("5min"),
                      status_page=False)

    first = runner(panel.index[0])
    first.run(until=middle)
    first.journal.close()
    again = runner(middle)
    again.run(until=panel.index[150])
    assert again.journal.meta("trader_id") == first.trader.trader_id
