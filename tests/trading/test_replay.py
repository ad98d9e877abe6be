"""replay: event skipping equals visiting every candle, the time rule through ctx, notes,
wake-ups, outages, the result API (summary, plot, report, save/load), check_trader and the
command line."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core_engine.cli import main
from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.errors import ConfigError, LookaheadError, StrategyError
from core_engine.risk import ExitRules
from core_engine.testing import check_trader
from core_engine.trading import RankingTrader, ReplayResult, SimBroker, Trader, replay
from tests.trading.conftest import make_panel


@pytest.fixture(scope="module")
def sample():
    return Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT", "SOL/USDT"], "2021-02-09",
                                         "2021-02-14"), "5m")  # holds the 02-11 outage


class Ladder(Trader):
    """Resting orders only: a limit buy ladder below the first close, a take-profit above."""

    def __init__(self, symbol="BTC/USDT", step_pct=1.0, levels=3, value=1000.0):
        self.symbol = symbol
        self.step_pct = step_pct
        self.levels = levels
        self.value = value

    def on_start(self, ctx):
        ref = float(ctx.candles(self.symbol, 1)["close"].iloc[-1])
        for k in range(1, self.levels + 1):
            ctx.buy(self.symbol, value=self.value, type="limit",
                    price=ref * (1 - k * self.step_pct / 100), leg=f"buy{k}")
        ctx.note("ladder placed", reference=ref)

    def on_fill(self, ctx, fill):
        if fill.side == "buy":
            ctx.sell(self.symbol, fill.quantity, type="limit",
                     price=fill.price * (1 + self.step_pct / 100), leg=f"tp-{fill.trade_id}")


class Probe(Trader):
    """Records what ctx shows at each bar."""

    def __init__(self, every="1h"):
        self.every = every
        self.seen = []

    def on_bar(self, ctx):
        frame = ctx.candles("BTC/USDT", 3)
        self.seen.append((ctx.now, frame["timestamp"].iloc[-1] if len(frame) else None,
                          len(ctx.panel().index)))


def test_skipping_equals_visiting_every_candle(sample):
    exits = ExitRules(stop_loss_pct=1.0, take_profit_pct=1.5, trailing_pct=0.8)
    for trader in (RankingTrader("momentum_rank", exits=exits), Ladder()):
        fast = replay(trader.clone(), sample, SimBroker(slippage_bps=3), start="2021-02-10")
        slow = replay(trader.clone(), sample, SimBroker(slippage_bps=3), start="2021-02-10",
                      skip=False)
        assert len(fast.fills) > 4
        pd.testing.assert_frame_equal(fast.trades, slow.trades)
        pd.testing.assert_frame_equal(fast.fills, slow.fills)
        pd.testing.assert_frame_equal(fast.equity, slow.equity)


def test_ctx_never_shows_the_forming_candle(sample):
    probe = Probe()
    replay(probe, sample, start="2021-02-10")
    assert len(probe.seen) > 50
    step = pd.Timedelta("5min")
    for now, last, known_rows in probe.seen:
        assert last + step <= now  # the last candle returned closed by now
        assert sample.index[known_rows - 1] + step <= now
        assert now > sample.index[-1] or known_rows == sample.index.get_loc(now)
    assert all(now.minute == 0 for now, _, _ in probe.seen)  # every="1h"


def test_calls_due_in_an_outage_move_to_the_next_open(sample):
    probe = Probe(every="5m")
    replay(probe, sample, start="2021-02-11 03:00", end="2021-02-11 06:00")
    times = [now for now, _, _ in probe.seen]
    # no candle of any symbol opens between 03:45 and 04:55 (Binance maintenance)
    assert pd.Timestamp("2021-02-11 04:00", tz="UTC") not in times
    assert pd.Timestamp("2021-02-11 05:00", tz="UTC") in times


class Alarm(Trader):
    """Asks to be woken at given times; records when it is called."""

    def __init__(self, times=(), every="1D"):
        self.times = times
        self.every = every
        self.seen = []

    def on_start(self, ctx):
        for when in self.times:
            ctx.wake_at(when)

    def on_bar(self, ctx):
        self.seen.append(ctx.now)


@pytest.mark.parametrize("skip", [True, False])
def test_a_requested_wake_in_an_outage_is_kept(sample, skip):
    """A time the trader asked for is a deadline: called then even though no candle opens
    (a cadence call in the outage moves to the next open, see above)."""
    alarm = Alarm(times=("2021-02-11 04:10", "2021-02-11 06:00"))
    replay(alarm, sample, start="2021-02-11 03:00", end="2021-02-11 07:00", skip=skip)
    assert pd.Timestamp("2021-02-11 04:10", tz="UTC") in alarm.seen
    assert pd.Timestamp("2021-02-11 06:00", tz="UTC") in alarm.seen


def test_notes_orders_fills_and_the_result_api(sample, tmp_path):
    result = replay(Ladder(step_pct=0.5), sample, start="2021-02-10")
    assert isinstance(result, ReplayResult)
    notes = result.notes
    assert notes["text"].iloc[0] == "ladder placed" and len(notes["orders"].iloc[0]) == 3
    assert set(result.orders["status"]) <= {"filled", "submitted", "cancelled"}
    m = result.metrics
    assert m["fills"] == len(result.fills) and m["orders"] == len(result.orders)
    # accounting: final equity = cash flows of the fills + the open position at its mark
    f = result.fills
    sign = np.where(f["side"] == "buy", 1.0, -1.0)
    held = float((sign * f["quantity"]).sum())
    last = sample.close[:, sample.column("BTC/USDT")]
    last = last[~np.isnan(last)][-1]
    flows = float((-sign * f["price"] * f["quantity"]).sum() - f["fee"].sum())
    assert m["final_equity"] == pytest.approx(10_000 + flows + held * last, rel=1e-12)
    closed = f["time"] <= result.trades["exit_time"].max()
    assert result.trades["fees"].sum() <= f["fee"].sum() + 1e-9 and closed.any()
    if abs(held) < 1e-9:
        assert m["final_equity"] == pytest.approx(10_000 + result.trades["pnl"].sum())
    assert (result.equity["cash"] >= 0).all()
    text = result.summary()
    assert "Replay:" in text and "Orders" in text
    fig = result.plot("equity")
    assert len(fig.axes) >= 2 and len(fig.axes[0].get_lines()) >= 1
    path = result.report(tmp_path / "r.html")
    assert path.read_text().count("<img") >= 1
    back = ReplayResult.load(result.save(tmp_path / "run"))
    pd.testing.assert_frame_equal(back.fills, result.fills)
    assert list(back.notes["text"]) == list(notes["text"])


def test_trader_parameters_and_errors():
    with pytest.raises(ConfigError, match="Did you mean 'step_pct'"):
        Ladder(step_pc=1)
    with pytest.raises(ConfigError, match="'hold'"):
        RankingTrader(hold="forever")
    assert Ladder(levels=5).clone().get_params()["levels"] == 5

    class Broken(Trader):
        def on_bar(self, ctx):
            raise ValueError("boom")

    with pytest.raises(StrategyError, match="Broken.*on_bar.*boom"):
        replay(Broken(), make_panel([(1, 1, 1, 1, 1)] * 3))


def test_check_trader_passes_causal_traders_and_catches_a_leaky_one(sample):
    assert len(check_trader(RankingTrader("momentum_rank", exits=ExitRules(stop_loss_pct=1)),
                            sample, n_times=2)) == 2

    class Peek(Trader):
        """Cheats: looks an hour ahead in a DataFrame it was given."""

        def __init__(self, frame=None, every="1h"):
            self.frame = frame
            self.every = every

        def on_bar(self, ctx):
            later = self.frame.loc[self.frame["timestamp"] >= ctx.now, "close"]
            held = ctx.position("BTC/USDT")
            if len(later) > 12 and later.iloc[12] > later.iloc[0] and held == 0:
                ctx.buy("BTC/USDT", value=1_000)
            elif held > 0:
                ctx.sell("BTC/USDT", held)

    with pytest.raises(LookaheadError, match="Peek.*different orders"):
        check_trader(Peek(frame=sample.frame("BTC/USDT")), sample, n_times=3)


def test_cli_replay_on_the_bundled_sample(tmp_path, capsys):
    code = main(["replay", "--strategy", "momentum_rank", "--mode", "portfolio", "--symbols",
                 "BTC/USDT,ETH/USDT", "--start", "2021-03-01", "--end", "2021-03-04",
                 "--stop-loss-pct", "2", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0 and "Replay: ranking" in out and "Orders" in out
    assert (tmp_path / "run" / "fills.parquet").is_file()
    assert main(["replay", "--mode", "slices"]) == 2
    assert math.isfinite(ReplayResult.load(tmp_path / "run").metrics["final_equity"])


def test_cli_replay_takes_the_portfolio_options_of_backtest(tmp_path, capsys):
    """``replay`` accepts what ``backtest --mode portfolio`` accepts (sizing, rules, hold,
    rebalance, initial cash, stop fill, exit delay) and trades exactly as it does."""
    from core_engine.backtest import BacktestResult

    common = ["--strategy", "momentum_rank", "--symbols", "BTC/USDT,ETH/USDT,SOL/USDT",
              "--start", "2021-03-01", "--end", "2021-03-06", "--mode", "portfolio",
              "--initial-cash", "5000", "--sizing", "risk:1", "--rule", "cooldown=2h",
              "--rule", "max_exposure_pct=80", "--hold", "until_dropped", "--rebalance",
              "--stop-loss-pct", "1.5", "--trailing-pct", "1", "--stop-fill", "range",
              "--stop-fill-range", "0.3", "--max-exit-delay", "6", "--slippage-bps", "3"]
    assert main(["replay", *common, "--out", str(tmp_path / "rp")]) == 0
    assert main(["backtest", *common, "--out", str(tmp_path / "bt")]) == 0
    capsys.readouterr()
    rp = ReplayResult.load(tmp_path / "rp")
    bt = BacktestResult.load(tmp_path / "bt")
    assert rp.config["initial_cash"] == 5000.0
    order = ["decision_time", "rank", "exit_time"]
    got = rp.trades.sort_values(order).reset_index(drop=True)
    want = bt.trades.sort_values(order).reset_index(drop=True)
    assert len(got) == len(want) >= 3
    for col in ("symbol", "entry_time", "exit_time", "exit_reason"):
        assert list(got[col]) == list(want[col]), col
    for col in ("quantity", "entry_price", "exit_price", "pnl"):
        np.testing.assert_allclose(got[col], want[col], rtol=1e-9, atol=1e-9, err_msg=col)
    # a bad portfolio option is reported as backtest reports it
    assert main(["replay", "--rule", "cooldwn=2h", "--out", "-"]) == 2
    assert "cooldown" in capsys.readouterr().err
    assert main(["replay", "--sizing", "bogus:1", "--out", "-"]) == 2


def test_cli_replay_from_a_store_equals_the_replay_on_the_sample(tmp_path, capsys):
    """``core-engine replay --store`` reads the ingested candles and trades as on the sample;
    a symbol the store lacks (but the sample has) is a one-line error (exit 2)."""
    store = tmp_path / "store"
    assert main(["ingest", "--provider", "sample", "--store", str(store), "--symbols",
                 "BTC/USDT,ETH/USDT", "--start", "2021-03-01", "--end", "2021-03-05"]) == 0
    common = ["--strategy", "momentum_rank", "--mode", "portfolio", "--symbols",
              "BTC/USDT,ETH/USDT", "--start", "2021-03-02", "--end", "2021-03-05",
              "--stop-loss-pct", "2"]
    assert main(["replay", "--store", str(store), *common, "--out", str(tmp_path / "st")]) == 0
    assert main(["replay", *common, "--out", str(tmp_path / "sa")]) == 0
    capsys.readouterr()
    from_store = ReplayResult.load(tmp_path / "st")
    from_sample = ReplayResult.load(tmp_path / "sa")
    assert len(from_store.fills) > 0
    pd.testing.assert_frame_equal(from_store.fills, from_sample.fills)
    pd.testing.assert_frame_equal(from_store.trades, from_sample.trades)
    # SOL/USDT is in the sample but not in this store
    assert main(["replay", "--store", str(store), *common[:4], "--symbols",
                 "BTC/USDT,SOL/USDT", "--out", "-"]) == 2
    err = capsys.readouterr().err.strip()
    assert "SOL/USDT" in err and len(err.splitlines()) == 1
