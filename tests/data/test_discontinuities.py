"""Outages and discontinuities (issue 9, data part): a price jump beyond a factor, across a gap
or between adjacent candles, is reported by gap_report, warned about by validate_candles,
listed by Panel.discontinuities and can be split into two symbols on request."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_engine.data import Panel, gap_report, load_sample, validate_candles
from core_engine.errors import ConfigError

SYMBOL = "XYZ/USDT"


@pytest.fixture(scope="module")
def redenominated(btc_5m) -> pd.DataFrame:
    """Real BTC candles 2021-03-01 .. 03-10 with a two-day halt (03-04, 03-05), after which the
    token trades at 1000 times its old price: the shape of a real redenomination."""
    frame = btc_5m[(btc_5m.timestamp >= "2021-03-01") & (btc_5m.timestamp < "2021-03-10")]
    frame = frame[(frame.timestamp < "2021-03-04") | (frame.timestamp >= "2021-03-06")].copy()
    after = (frame.timestamp >= "2021-03-06").to_numpy()
    for column in ("open", "high", "low", "close"):
        frame.loc[after, column] *= 1000.0
    frame.loc[after, "volume"] /= 1000.0
    return frame.reset_index(drop=True)


def test_outages_and_discontinuities_reported_by_gap_report(redenominated):
    report = gap_report(redenominated, "5m")
    assert report.factor == 5.0
    [(before, after, missing, ratio)] = report.discontinuities
    assert before == pd.Timestamp("2021-03-03 23:55", tz="UTC")
    assert after == pd.Timestamp("2021-03-06 00:00", tz="UTC")
    assert missing == 2 * 288
    close = redenominated.set_index("timestamp")["close"]
    assert ratio == close[after] / close[before] and 900 < ratio < 1100
    assert report.discontinuities_frame().columns.tolist() == [
        "last_before", "first_after", "missing", "ratio"]
    assert gap_report(redenominated, "5m", factor=2000).discontinuities == ()
    with pytest.raises(ConfigError, match="'factor'.*above 1"):
        gap_report(redenominated, "5m", factor=0.5)


def test_outages_and_discontinuities_warned_not_refused_by_validate_candles(redenominated, btc_5m):
    with pytest.warns(UserWarning, match=r"XYZ/USDT have 1 price discontinuity beyond ×5.*"
                                         r"2021-03-03 23:55 UTC.*576 missing candles") as caught:
        assert validate_candles(redenominated, "5m", symbol=SYMBOL) is redenominated
    assert type(caught[0].message).__name__ == "DiscontinuityWarning"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_candles(btc_5m, "5m")  # the real data has none at the default factor
        validate_candles(redenominated, "5m", discontinuity_factor=None)


def test_outages_and_discontinuities_adjacent_candles_count_too(make_candles):
    frame = make_candles(30)
    for column in ("open", "high", "low", "close"):
        frame.loc[20:, column] /= 100.0  # a ×0.01 jump between two adjacent candles
    [(before, after, missing, ratio)] = gap_report(frame, "5m").discontinuities
    assert (after - before, missing) == (pd.Timedelta("5min"), 0)
    assert ratio == pytest.approx(frame.close[20] / frame.close[19])


def test_outages_and_discontinuities_split_into_two_symbols(redenominated):
    from core_engine.data import split_at_discontinuities

    pieces, report = split_at_discontinuities(redenominated, "5m", symbol=SYMBOL)
    assert list(pieces) == ["XYZ/USDT#1", SYMBOL]
    old, new = pieces["XYZ/USDT#1"], pieces[SYMBOL]
    assert old.timestamp.iloc[-1] == pd.Timestamp("2021-03-03 23:55", tz="UTC")
    assert new.timestamp.iloc[0] == pd.Timestamp("2021-03-06 00:00", tz="UTC")
    pd.testing.assert_frame_equal(pd.concat([old, new], ignore_index=True), redenominated)
    assert report.changed and len(report.discontinuities) == 1
    assert [p[3] for p in report.pieces] == [len(old), len(new)]
    assert "XYZ/USDT#1: 2021-03-01 00:00 .. 2021-03-03 23:55 UTC" in str(report)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # each piece is free of discontinuities
        for name, piece in pieces.items():
            validate_candles(piece, "5m", symbol=name)
    same, unchanged = split_at_discontinuities(redenominated, "5m", symbol=SYMBOL, factor=5000)
    assert list(same) == [SYMBOL] and same[SYMBOL] is redenominated and not unchanged.changed


def test_outages_and_discontinuities_listed_by_the_panel(redenominated, btc_5m):
    frames = {"BTC/USDT": btc_5m.iloc[:4000], SYMBOL: redenominated}
    with pytest.warns(UserWarning):  # validate_candles in the test; the panel does not warn
        validate_candles(redenominated, "5m")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        panel = Panel.from_frames(frames, "5m")
    table = panel.discontinuities()
    assert table.columns.tolist() == ["symbol", "last_before", "first_after", "missing", "ratio"]
    assert table.symbol.tolist() == [SYMBOL] and table.missing.tolist() == [576]
    expected = gap_report(redenominated, "5m").discontinuities[0]
    assert tuple(table.iloc[0, 1:]) == expected
    assert panel.discontinuities(factor=5000).empty


def test_outages_and_discontinuities_default_factor_is_above_every_real_move():
    """The bundled real sample (nine Binance symbols, 2021-H1, the May crash included) has no
    discontinuity at the default factor; its largest 5m move (DOT, ×0.74 on 2021-05-19) is
    found at a factor of 1.3."""
    panel = Panel.from_frames(load_sample(), "5m")
    assert panel.discontinuities().empty
    small = panel.discontinuities(factor=1.3)
    dot = small[small.symbol == "DOT/USDT"]
    assert pd.Timestamp("2021-05-19 12:50", tz="UTC") in set(dot.first_after)


def _reference(close: np.ndarray, factor: float) -> list[tuple[int, int, int]]:
    out = []
    for j in range(close.shape[1]):
        previous = None
        for i in range(close.shape[0]):
            if np.isnan(close[i, j]):
                continue
            if previous is not None:
                ratio = close[i, j] / close[previous, j]
                if ratio > factor or ratio < 1 / factor:
                    out.append((j, previous, i))
            previous = i
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), factor=st.floats(1.01, 3.0), holes=st.floats(0, 0.6))
def test_outages_and_discontinuities_panel_equals_a_plain_loop(seed, factor, holes):
    rng = np.random.default_rng(seed)
    n, m = 60, 4
    close = np.exp(np.cumsum(rng.normal(0, 0.4, (n, m)), axis=0))
    close[rng.random((n, m)) < holes] = np.nan
    volume = np.where(np.isnan(close), np.nan, 1.0)
    index = pd.date_range("2021-01-01", periods=n, freq="5min", tz="UTC")
    panel = Panel(index, [f"S{j}" for j in range(m)], "5m", close, close, close, close, volume)
    got = panel.discontinuities(factor=factor)
    want = _reference(close, factor)
    assert [(panel.symbols.index(s), index.get_loc(b), index.get_loc(a))
            for s, b, a in zip(got.symbol, got.last_before, got.first_after, strict=True)] == want
    np.testing.assert_array_equal(got.missing, [a - b - 1 for _, b, a in want])
    np.testing.assert_array_equal(got.ratio, [close[a, j] / close[b, j] for j, b, a in want])
