"""Issue 9 §1 "Outages and discontinuities" (result part): a run's ``data_quality`` counts the
price discontinuities of its data and the trades held across one, ``summary()`` says so in
one line, and a saved run keeps the counts; the lookahead checks do not warn about the
discontinuities of their own garbage."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.backtest import BacktestResult, walk_forward
from core_engine.backtest._kernels import close_quality_2d, count_missing_2d
from core_engine.backtest.data_quality import (
    discontinuity_quality,
    trade_rows_from_times,
    trades_spanning,
)
from core_engine.data import Panel, split_at_discontinuities
from core_engine.data.candles import DiscontinuityWarning
from core_engine.errors import ConfigError
from core_engine.features import FeatureComputer
from core_engine.strategies.base import Strategy
from core_engine.testing import check_feature, check_strategy

from .test_outages import AlwaysLong, redenominated_panel

STEP = pd.Timedelta("5min")
KEYS = ("discontinuity_factor", "price_discontinuities", "price_discontinuities_by_symbol",
        "trades_across_discontinuity")


def _walk(seed: int, index: pd.DatetimeIndex) -> np.ndarray:
    return np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.002, len(index))))


def _frame(index: pd.DatetimeIndex, price: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": index, "open": price, "high": price * 1.001,
                         "low": price * 0.999, "close": price, "volume": 1.0})


def hand_panel() -> Panel:
    """RDN/USDT: ×1000 after a two-day outage (2021-01-02 03:00 .. 01-04 03:00);
    TCK/USDT: one bad candle at ×100 (2021-01-05 10:00), so two adjacent jumps;
    CLN/USDT: clean. Three discontinuities in two symbols."""
    rdn = redenominated_panel().frame("RDN/USDT")
    index = pd.date_range("2021-01-01", "2021-01-06", freq="5min", tz="UTC", inclusive="left")
    tick = _walk(5, index)
    tick[index == pd.Timestamp("2021-01-05 10:00", tz="UTC")] *= 100.0
    return Panel.from_frames({"RDN/USDT": rdn, "TCK/USDT": _frame(index, tick),
                              "CLN/USDT": _frame(index, _walk(6, index))}, "5m")


def reference_across(panel: Panel, trades: pd.DataFrame, factor: float = 5.0) -> int:
    """Trades that held a position across a jump, by a plain loop over each symbol's candles.
    Without exit rules a trade leaves at an open, or at a close when ``exit_at_last_close``."""
    jumps = []
    for symbol in panel.symbols:
        frame = panel.frame(symbol)
        close, times = frame["close"].to_numpy(), list(frame["timestamp"])
        for k in range(1, len(frame)):
            ratio = close[k] / close[k - 1]
            if ratio > factor or ratio < 1 / factor:
                jumps.append((symbol, times[k - 1], times[k]))
    count = 0
    for trade in trades.itertuples():
        exit_candle = trade.exit_time - STEP if trade.exit_at_last_close else trade.exit_time
        count += any(symbol == trade.symbol and trade.entry_time <= before
                     and exit_candle >= after for symbol, before, after in jumps)
    return count


KWARGS = {"fee_bps": 0, "max_positions": 3}


@pytest.fixture(scope="module")
def panel() -> Panel:
    return hand_panel()


@pytest.fixture(scope="module")
def slices(panel):
    return walk_forward(panel, AlwaysLong(), window="4h", shift="2h", **KWARGS)


@pytest.fixture(scope="module")
def portfolio(panel):
    return walk_forward(panel, AlwaysLong(), window="4h", shift="4h", mode="portfolio",
                        **KWARGS)


def test_outages_and_discontinuities_reported_in_data_quality_slices(panel, slices):
    dq = slices.data_quality
    assert dq["discontinuity_factor"] == 5.0
    assert dq["price_discontinuities"] == 3
    assert dq["price_discontinuities_by_symbol"] == {"RDN/USDT": 1, "TCK/USDT": 2,
                                                     "CLN/USDT": 0}
    trades = slices.trades
    # RDN: the 00:00 and 02:00 windows of the 2nd are held over the outage into the ×1000;
    # TCK: the 06:00 (out at the bad open), 08:00 (over it) and 10:00 (in at it) windows
    across = (
        ((trades.symbol == "RDN/USDT") & trades.decision_time.isin(pd.to_datetime(
            ["2021-01-02 00:00", "2021-01-02 02:00"], utc=True)))
        | ((trades.symbol == "TCK/USDT") & trades.decision_time.isin(pd.to_datetime(
            ["2021-01-05 06:00", "2021-01-05 08:00", "2021-01-05 10:00"], utc=True))))
    assert across.sum() == 5 == dq["trades_across_discontinuity"]
    assert reference_across(panel, trades) == 5
    # a jump shows in the returns of those trades (the 08:00 one rides up and down again,
    # so it nets out); no other trade comes near
    assert (trades.loc[across, "return_pct"].abs() > 90).sum() == 4
    assert (trades.loc[~across, "return_pct"].abs() < 10).all()


def test_outages_and_discontinuities_reported_in_data_quality_portfolio(panel, portfolio):
    dq = portfolio.data_quality
    assert dq["price_discontinuities"] == 3
    assert dq["price_discontinuities_by_symbol"]["TCK/USDT"] == 2
    trades = portfolio.trades
    # RDN: the 00:00 position of the 2nd waits out the outage; TCK: the 08:00 position
    # holds through the bad candle
    assert reference_across(panel, trades) == 2 == dq["trades_across_discontinuity"]
    spans = trades[(trades.entry_time == pd.Timestamp("2021-01-02 00:00", tz="UTC"))
                   & (trades.symbol == "RDN/USDT")]
    assert len(spans) == 1 and spans.exit_delayed_by.iloc[0] > 0


def test_outages_and_discontinuities_summary_says_it_in_one_line(slices, portfolio):
    line = ("  3 beyond ×5 in 2 symbols; 5 trades span one — consider "
            "split_at_discontinuities")
    found = [row for row in slices.summary().splitlines() if "discontinuit" in row]
    assert len(found) == 1 and found[0].startswith("  Price discontinuities")
    assert found[0].endswith(line.strip())
    assert ("3 beyond ×5 in 2 symbols; 2 trades span one"
            in portfolio.summary())
    html = slices._repr_html_()
    assert 'data-key="price_discontinuities">3<' in html
    assert 'data-key="trades_across_discontinuity">5<' in html
    markdown = slices.to_markdown()
    assert "| trades_across_discontinuity | 5 |" in markdown


def test_outages_and_discontinuities_summary_is_silent_without_one(real_feb):
    result = walk_forward(real_feb, AlwaysLong(), window="2h", shift="1h")
    dq = result.data_quality
    assert dq["price_discontinuities"] == 0 and dq["trades_across_discontinuity"] == 0
    assert set(dq["price_discontinuities_by_symbol"].values()) == {0}
    assert "discontinuit" not in result.summary().lower()


def test_outages_and_discontinuities_split_series_reports_none(panel):
    """The remedy the summary names: split the jumping series, and nothing spans a jump."""
    frames = {}
    for symbol in panel.symbols:
        pieces, _ = split_at_discontinuities(panel.frame(symbol), "5m", symbol=symbol)
        frames.update(pieces)
    assert sorted(frames) == ["CLN/USDT", "RDN/USDT", "RDN/USDT#1", "TCK/USDT",
                              "TCK/USDT#1", "TCK/USDT#2"]
    result = walk_forward(frames, AlwaysLong(), window="4h", shift="2h", **KWARGS)
    dq = result.data_quality
    assert dq["price_discontinuities"] == 0 and dq["trades_across_discontinuity"] == 0


@pytest.mark.parametrize("mode", ["slices", "portfolio"])
def test_outages_and_discontinuities_saved_run_keeps_the_counts(tmp_path, slices, portfolio,
                                                                mode):
    result = slices if mode == "slices" else portfolio
    folder = result.save(tmp_path / mode)

    def refuse(token):
        raise AssertionError(f"run.json is not strict JSON: {token}")

    payload = json.loads((folder / "run.json").read_text(), parse_constant=refuse)
    assert {key: payload["data_quality"][key] for key in KEYS} == \
        {key: result.data_quality[key] for key in KEYS}
    loaded = BacktestResult.load(folder)
    assert loaded.data_quality == result.data_quality
    assert loaded.summary() == result.summary()


@pytest.mark.parametrize("key, value, message", [
    ("price_discontinuities", "3", "'data_quality.price_discontinuities' must be an integer"),
    ("trades_across_discontinuity", 1.5, "'data_quality.trades_across_discontinuity' must be"),
    ("discontinuity_factor", "5", "'data_quality.discontinuity_factor' must be a number"),
    ("price_discontinuities_by_symbol", {"RDN/USDT": "one"},
     "'data_quality.price_discontinuities_by_symbol.RDN/USDT' must be an integer"),
])
def test_outages_and_discontinuities_tampered_counts_are_refused(tmp_path, slices, key, value,
                                                                 message):
    folder = slices.save(tmp_path / "run")
    file = folder / "run.json"
    payload = json.loads(file.read_text())
    payload["data_quality"][key] = value
    file.write_text(json.dumps(payload))
    with pytest.raises(ConfigError, match=message):
        BacktestResult.load(folder)


def test_outages_and_discontinuities_real_data_redenomination(real_feb):
    """Real Binance candles (2021-02-06..16, with the 2021-02-11 03:45..04:55 outage), NKN
    relisted at ×1000 after that outage: the trades held over it are counted, and they are
    the ones that turn the run's average return."""
    frames = real_feb.to_frames()
    nkn = frames["NKN/USDT"].copy()
    after = nkn.timestamp >= pd.Timestamp("2021-02-11 04:55", tz="UTC")
    for column in ("open", "high", "low", "close"):
        nkn.loc[after, column] *= 1000.0
    frames["NKN/USDT"] = nkn
    panel = Panel.from_frames(frames, "5m")
    kwargs = {"window": "2h", "shift": "1h", "max_positions": 4}
    clean = walk_forward(real_feb, AlwaysLong(), **kwargs)
    result = walk_forward(panel, AlwaysLong(), **kwargs)
    dq = result.data_quality
    assert dq["price_discontinuities_by_symbol"] == {"BTC/USDT": 0, "ETH/USDT": 0,
                                                     "SOL/USDT": 0, "NKN/USDT": 1}
    trades = result.trades
    assert dq["trades_across_discontinuity"] == reference_across(panel, trades) == 2
    # the 02:00 window waits out the outage for the 05:00 open; the 03:00 one is due then
    spanning = trades[(trades.symbol == "NKN/USDT") & (trades.return_pct > 1000)]
    assert spanning.decision_time.dt.strftime("%H:%M").tolist() == ["02:00", "03:00"]
    assert abs(clean.metrics["avg_return_pct"]) < 1 < result.metrics["avg_return_pct"]
    book = walk_forward(panel, AlwaysLong(), mode="portfolio", **kwargs)
    assert book.data_quality["trades_across_discontinuity"] == \
        reference_across(panel, book.trades) >= 1


def test_outages_and_discontinuities_spanning_rule_equals_a_plain_loop():
    rng = np.random.default_rng(7)
    n_times, n_cols = 60, 3
    jumps = []
    for col in range(n_cols):  # consecutive present candles: after <= next before
        row = 0
        while True:
            before = row + int(rng.integers(0, 6))
            after = before + 1 + int(rng.integers(0, 3))
            if after >= n_times:
                break
            jumps.append((col, before, after))
            row = after
    jumps_array = np.array(jumps[::-1], dtype=np.int64)  # any order
    cols = rng.integers(0, n_cols, 400)
    entry = rng.integers(0, n_times, 400)
    exit_ = np.minimum(entry + rng.integers(0, 12, 400), n_times - 1)
    got = trades_spanning(jumps_array, cols, entry, exit_, n_times)
    want = [any(c == col and e <= b and x >= a for c, b, a in jumps)
            for col, e, x in zip(cols, entry, exit_, strict=True)]
    np.testing.assert_array_equal(got, want)
    assert 0 < got.sum() < len(got)
    assert not trades_spanning(np.empty((0, 3), np.int64), cols, entry, exit_, n_times).any()


def test_outages_and_discontinuities_rows_from_times_of_an_event_replay(panel, slices):
    """The replay's trades hold times only; the rows read back from them give the same count
    as the engine's rows (no stop inside a candle here, so no adjacent-jump overcount)."""
    cols, entry_rows, exit_rows = trade_rows_from_times(panel, slices.trades)
    records = slices.trades
    np.testing.assert_array_equal(
        panel.index[entry_rows], pd.DatetimeIndex(records.entry_time))
    again = discontinuity_quality(panel, cols, entry_rows, exit_rows)
    assert again["trades_across_discontinuity"] == 5


# ---------------------------------------------------------------- the checks' own garbage
class LastClose(FeatureComputer):
    """A user's feature: each symbol's frame is validated, so jumps in it would warn."""

    name = "test_last_close"

    def compute(self, candles):
        return pd.DataFrame({"last_close": candles["close"].to_numpy(dtype=float)})


class Follow(Strategy):
    name = "test_quiet_checks_follow"

    def features(self):
        return [LastClose()]

    def score(self, features, panel):
        return features["last_close"]


def _quiet(call):
    """Run ``call`` with DiscontinuityWarning raised as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiscontinuityWarning)
        return call()


def test_outages_and_discontinuities_lookahead_audit_does_not_warn_about_its_poison(real_feb):
    """``walk_forward(audit=k)`` recomputes features on 'future huge' panels: no warning
    about the jumps the audit itself wrote (the data have none)."""
    result = _quiet(lambda: walk_forward(real_feb, Follow(), window="2h", shift="1h", audit=3))
    assert result.metrics["trades"] > 0


def test_outages_and_discontinuities_check_strategy_does_not_warn_about_its_poison(real_feb):
    checked = _quiet(lambda: check_strategy(Follow(), real_feb.slice_rows(0, 600), n_times=3))
    assert len(checked) == 3


def test_outages_and_discontinuities_check_feature_does_not_warn_about_its_garbage(btc_5m):
    """check_feature's 'every later candle replaced' garbage scales prices at random; over
    2,000 real candles some consecutive scales differ by more than ×5."""
    _quiet(lambda: check_feature(LastClose(), btc_5m.iloc[:2000], n_times=20))
    with pytest.warns(DiscontinuityWarning):  # the user's own jumps still warn
        bad = btc_5m.iloc[:300].copy()
        bad.loc[150:, ["open", "high", "low", "close"]] *= 1000.0
        check_feature(LastClose(), bad, n_times=2)


def test_outages_and_discontinuities_reported_in_data_quality_of_a_replay(panel, portfolio):
    """The event replay of the same account (RankingTrader) reports the same counts."""
    from core_engine.trading import RankingTrader, SimBroker, replay

    trader = RankingTrader(AlwaysLong(), window="4h", shift="4h", max_positions=3)
    result = replay(trader, panel, SimBroker(fee_bps=0))
    assert len(result.trades) == len(portfolio.trades)
    assert {key: result.data_quality[key] for key in KEYS} == \
        {key: portfolio.data_quality[key] for key in KEYS}
    assert "3 beyond ×5 in 2 symbols; 2 trades span one" in result.summary()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), factor=st.sampled_from([1.05, 1.5, 2.0, 5.0, 7.3]),
       holes=st.floats(0, 0.6))
def test_outages_and_discontinuities_counted_in_the_missing_candles_pass(seed, factor, holes):
    """close_quality_2d (one pass with the missing-candle counts) finds every jump
    Panel.discontinuities lists, ratios exactly at the factor and one ulp off included."""
    rng = np.random.default_rng(seed)
    n, m = 50, 4
    close = np.exp(np.cumsum(rng.normal(0, 0.5, (n, m)), axis=0))
    for _ in range(6):  # consecutive closes at (or a hair around) the factor itself
        i, j = int(rng.integers(0, n - 1)), int(rng.integers(0, m))
        edge = factor if rng.random() < 0.5 else 1 / factor
        close[i + 1, j] = np.nextafter(close[i, j] * edge, [0, np.inf][int(rng.integers(2))])
    close[rng.random((n, m)) < holes] = np.nan
    got = close_quality_2d(np.asfortranarray(close), factor)
    np.testing.assert_array_equal(got[:2], count_missing_2d(close))
    volume = np.where(np.isnan(close), np.nan, 1.0)
    index = pd.date_range("2021-01-01", periods=n, freq="5min", tz="UTC")
    panel = Panel(index, [f"S{j}" for j in range(m)], "5m", close, close, close, close, volume)
    listed = panel.discontinuities(factor).symbol.value_counts()
    np.testing.assert_array_equal(got[2], [listed.get(s, 0) for s in panel.symbols])


def test_outages_and_discontinuities_listed_in_the_report(tmp_path, slices):
    text = slices.report(tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'data-key="price_discontinuities">3<' in text
    assert 'data-key="trades_across_discontinuity">5<' in text
