"""Review 10: check_trader cuts a trader's candle parameters at t; the cut trader must keep
the full trader's id (client ids are compared), or an honest trader is called a cheat."""

from __future__ import annotations

from core_engine.testing import check_trader
from core_engine.trading import Trader

from .test_follow_up import SYM, _walk


class Honest(Trader):
    """Holds a frame of candles it never reads past ``now`` (a parameter check_trader cuts)."""

    def __init__(self, frame=None, every="1h"):
        self.frame = frame
        self.every = every

    def on_bar(self, ctx):
        known = self.frame.loc[self.frame["timestamp"] < ctx.now, "close"]
        if len(known):
            ctx.buy(SYM, value=20.0, type="limit", price=float(known.iloc[-1]) * 0.99, leg="b")


def test_an_honest_trader_holding_candles_passes_check_trader():
    panel = _walk(300, 3, 0.5)
    assert check_trader(Honest(frame=panel.frame(SYM)), panel, start=panel.index[1],
                        n_times=4)
