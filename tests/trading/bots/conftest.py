"""Helpers of the bot tests: hand-made candles, a restart in the middle of a replay, and the
internal-consistency checks every replay of a bot must pass."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from core_engine.trading import Trader
from tests.trading.conftest import make_panel

SYM = "AAA/USDT"
T0 = pd.Timestamp("2021-01-01", tz="UTC")


def t(row: int) -> pd.Timestamp:
    """Open time of candle ``row`` of a :func:`candles` panel (= close of ``row - 1``)."""
    return T0 + pd.Timedelta(minutes=5 * row)


def candles(rows: list, symbol: str = SYM):
    """A 5m panel from ``(open, high, low, close[, volume])`` rows (volume 10 by default);
    ``None`` is a missing candle."""
    full = [None if r is None else (tuple(r) + (10.0,) if len(r) == 4 else tuple(r))
            for r in rows]
    return make_panel(full, symbol=symbol)


def flat(price: float, n: int) -> list:
    """``n`` quiet candles around ``price`` (high/low 0.1 away)."""
    return [(price, price + 0.1, price - 0.1, price)] * n


def fills_of(result) -> list[tuple]:
    """(side, time, price, quantity, fee, reason) of every fill, rounded for comparison."""
    return [(f.side, f.time, round(f.price, 9), round(f.quantity, 9), round(f.fee, 9),
             f.reason) for f in result.fills.itertuples()]


class Restarted(Trader):
    """Runs ``bot``; with ``restart=True``, at ``at`` the bot is replaced by a fresh clone
    given the JSON round trip of its state, without ``on_start`` — what a live runner does
    after a crash, the broker (orders, balances) carrying on as the exchange would."""

    def __init__(self, bot=None):
        self.bot = bot
        self.at: pd.Timestamp | None = None
        self.restart = False
        self.restored = False

    @property
    def every_ns(self):
        return self.bot.every_ns

    def _maybe(self, ctx):
        if self.restart and not self.restored and ctx.now >= self.at:
            state = json.loads(json.dumps(self.bot.get_state()))
            fresh = self.bot.clone()
            fresh.set_state(state)
            self.bot = fresh
            self.restored = True

    def on_start(self, ctx):
        ctx.wake_at(self.at)
        self.bot.on_start(ctx)

    def on_bar(self, ctx):
        self._maybe(ctx)
        self.bot.on_bar(ctx)

    def on_fill(self, ctx, fill):
        self._maybe(ctx)
        self.bot.on_fill(ctx, fill)


def restart_runs(bot, panel, at, broker_factory, **kw):
    """The same bot replayed without and with a restart at ``at``: both results."""
    out = []
    for restart in (False, True):
        wrapper = Restarted(bot.clone())
        wrapper.at, wrapper.restart = t(at) if isinstance(at, int) else at, restart
        from core_engine.trading import replay

        out.append((replay(wrapper, panel, broker_factory(), **kw), wrapper))
    return out


def check_consistency(result, panel, initial_cash: float) -> None:
    """The result's orders and fills agree with each other and with the account:

    * no sell without a position (the base held never goes below 0);
    * cash, rebuilt from the fills, never goes below 0 and ends at the result's cash;
    * P&L = Σ sells − Σ buys − fees + what is still held at the last close;
    * each order's filled quantity and fees are the sums of its fills.
    """
    fills = result.fills
    assert len(fills), "the bot traded nothing: nothing to check"
    fills = fills.sort_values("time", kind="stable")
    held: dict[str, float] = {}
    cash = initial_cash
    for f in fills.itertuples():
        value = f.price * f.quantity
        if f.side == "buy":
            cash -= value + f.fee
            held[f.symbol] = held.get(f.symbol, 0.0) + f.quantity
        else:
            held[f.symbol] = held.get(f.symbol, 0.0) - f.quantity
            cash += value - f.fee
            assert held[f.symbol] >= -1e-9 * max(1.0, f.quantity), f"sell without a position: {f}"
        assert cash >= -1e-6 * initial_cash, f"cash negative after {f}"
    equity = result.equity
    assert math.isclose(cash, float(equity["cash"].iloc[-1]), rel_tol=1e-9, abs_tol=1e-6)
    buys = fills[fills.side == "buy"]
    sells = fills[fills.side == "sell"]
    last = {s: float(pd.Series(panel.close[:, panel.column(s)]).dropna().iloc[-1]) for s in held}
    pnl = ((sells.price * sells.quantity).sum() - (buys.price * buys.quantity).sum()
           - fills.fee.sum() + sum(q * last[s] for s, q in held.items()))
    final = float(equity["equity"].iloc[-1])
    assert math.isclose(final - initial_cash, pnl, rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(result.metrics["fees_paid"], fills.fee.sum(), rel_tol=1e-12)
    by_order = fills.groupby("client_id").agg(quantity=("quantity", "sum"), fee=("fee", "sum"))
    orders = result.orders.set_index("client_id")
    for cid, row in by_order.iterrows():
        assert math.isclose(orders.loc[cid, "filled_quantity"], row.quantity, rel_tol=1e-9)
        assert math.isclose(orders.loc[cid, "fees"], row.fee, rel_tol=1e-9, abs_tol=1e-12)
    assert not ((orders.status == "filled") & ~orders.index.isin(by_order.index)).any()
    assert np.all(equity["cash"].to_numpy() >= -1e-6)


class Killed(BaseException):
    """The runner process dying (a SIGKILL: no exception handler of the runner runs)."""


def paper_runner(bot, panel, journal, clock_start, *, initial_cash: float, fee_bps: float = 10):
    """``bot`` run by the live Runner with a PaperBroker over ``panel``; the runner journal is
    ``journal``, the paper account ``journal`` + ``.paper``."""
    from core_engine.live.paper import PaperBroker
    from core_engine.live.runner import Runner, SimulatedClock

    end = panel.index[-1] + pd.Timedelta(minutes=5)
    paper = PaperBroker(panel, fee_bps=fee_bps, initial_cash=initial_cash,
                        journal_path=f"{journal}.paper")
    return Runner(bot, paper, journal, clock=SimulatedClock(clock_start),
                  symbols=list(panel.symbols), timeframe="5m", history=None, end=end,
                  status_page=False)


def killed_and_restarted(bot, panel, at, tmp_path, *, initial_cash: float,
                         kill: str = "before_checkpoint", down_bars: int = 0):
    """Paper-trade ``bot`` through the live runner twice: uninterrupted, and killed in the
    tick at ``t(at)``, then restarted as a new process would be: a new runner and paper
    broker on the same files, the clock a few seconds past the lost tick.

    ``kill``: ``"before_checkpoint"`` — the tick's orders and fills are journaled, the
    trader's state is not; ``"after_checkpoint"`` — the tick is complete; ``"after_fill"`` —
    the first fill journaled in the tick, before the trader hears of it (so nothing it
    would have placed in answer, such as the exits of an entry, was sent).

    ``down_bars``: bars the process stays down: the restart's clock is ``down_bars`` bars
    and 3 seconds past the lost tick (0: the runner runs the cut-short tick again; more: it
    acts at the latest closed bar, the ticks in between are not replayed).

    Returns ``(plain, restarted, open_at_kill)``: the two runners and the journal rows of the
    orders open when the process died."""
    assert kill in ("before_checkpoint", "after_checkpoint", "after_fill"), kill
    end = panel.index[-1] + pd.Timedelta(minutes=5)
    plain = paper_runner(bot.clone(), panel, tmp_path / "plain.sqlite", panel.index[0],
                         initial_cash=initial_cash)
    plain.run(until=end)
    path = tmp_path / "killed.sqlite"
    first = paper_runner(bot.clone(), panel, path, panel.index[0], initial_cash=initial_cash)
    save, record_fill = first.journal.record_checkpoint, first.journal.record_fill

    def checkpoint(time, *args, **kw):
        if time == t(at) and kill == "before_checkpoint":
            raise Killed
        save(time, *args, **kw)
        if time == t(at):
            raise Killed

    def fill(**kw):
        new = record_fill(**kw)
        if new and first.now == t(at):
            raise Killed
        return new

    first.journal.record_checkpoint = checkpoint
    if kill == "after_fill":
        first.journal.record_fill = fill
    try:
        first.run(until=end)
    except Killed:
        pass
    else:
        raise AssertionError(f"the {kill} kill point was not reached at {t(at)}")
    open_at_kill = first.journal.orders(final=False)
    first.journal.close()
    restarted = paper_runner(bot.clone(), panel, path,
                             t(at + down_bars) + pd.Timedelta(seconds=3),
                             initial_cash=initial_cash)
    assert restarted.run(until=end) > 0, "nothing after the kill: add candles"
    return plain, restarted, open_at_kill


def journal_fills(runner) -> list[tuple]:
    """(client id, side, time, price, quantity) of the runner journal's fills, rounded."""
    return [(f.client_id, str(f.side), f.time, round(f.price, 9), round(f.quantity, 9))
            for f in runner.journal.fills()]
