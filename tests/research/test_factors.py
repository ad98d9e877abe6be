"""Factor evaluation against a direct scipy/pandas computation, hand-made panels and the backtester."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from core_engine.backtest import walk_forward
from core_engine.data import Panel, timeframe_ns
from core_engine.errors import ConfigError
from core_engine.features import RSI, Momentum, compute_features
from core_engine.research.factors import (
    FactorReport,
    evaluate_factor,
    evaluate_factors,
    factor_table,
    forward_returns,
    row_pearson,
    row_spearman,
)
from core_engine.strategies import MomentumRank

STEP = pd.Timedelta("5min")


# ---------------------------------------------------------------------------- references
def _direct(factor: np.ndarray, panel: Panel, times: pd.DatetimeIndex, horizon: str,
            min_symbols: int = 3) -> pd.DataFrame:
    """IC and rank IC per time with scipy on the finite pairs, row by row."""
    h = timeframe_ns(horizon) // STEP.value
    out = []
    for t in times:
        i = panel.index.get_loc(t - STEP)
        fwd = np.full(panel.n_symbols, np.nan)
        if i + 1 + h <= panel.n_times - 1:
            for j in range(panel.n_symbols):
                k = i + 1 + h  # exit candle missing (outage): the first open after it
                while k < panel.n_times and np.isnan(panel.open[k, j]):
                    k += 1
                if k < panel.n_times:
                    fwd[j] = panel.open[k, j] / panel.open[i + 1, j] - 1.0
        x = factor[i]
        ok = np.isfinite(x) & np.isfinite(fwd)
        ic = rank_ic = math.nan
        if ok.sum() >= min_symbols and np.ptp(x[ok]) > 0 and np.ptp(fwd[ok]) > 0:
            ic = stats.pearsonr(x[ok], fwd[ok]).statistic
            rank_ic = stats.spearmanr(x[ok], fwd[ok]).statistic
        out.append({"ic": ic, "rank_ic": rank_ic, "n": int(ok.sum())})
    return pd.DataFrame(out, index=times)


@pytest.fixture(scope="module")
def rsi(sample_panel) -> np.ndarray:
    values = compute_features([RSI(length=14)], sample_panel)["rsi_14"].copy()
    return values


@pytest.fixture(scope="module")
def rsi_report(rsi, sample_panel) -> FactorReport:
    return evaluate_factor(rsi, sample_panel, name="rsi_14")


def test_ic_and_rank_ic_equal_scipy_on_real_data(rsi, rsi_report, sample_panel):
    ref = _direct(rsi, sample_panel, rsi_report.ic.index, "4h")
    got = rsi_report.ic
    assert np.isfinite(ref["ic"]).sum() > 300
    np.testing.assert_allclose(got["ic"], ref["ic"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["rank_ic"], ref["rank_ic"], rtol=0, atol=1e-12)
    assert got["n_symbols"].tolist() == ref["n"].tolist()


def test_rank_ic_handles_ties_like_scipy(rsi, sample_panel):
    coarse = np.round(rsi, -1)  # many equal values per row: average ranks matter
    coarse[::7, 1] = np.nan
    report = evaluate_factor(coarse, sample_panel, horizons=("1h",))
    ref = _direct(coarse, sample_panel, report.ic.index, "4h")
    ties = sum(len(np.unique(r[np.isfinite(r)])) < np.isfinite(r).sum()
               for r in coarse[sample_panel.index.get_indexer(report.ic.index - STEP)])
    assert ties > 100
    np.testing.assert_allclose(report.ic["rank_ic"], ref["rank_ic"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(report.ic["ic"], ref["ic"], rtol=0, atol=1e-12)


def test_decay_table_equals_scipy_means_and_t_stats(rsi, rsi_report, sample_panel):
    assert rsi_report.decay.index.tolist() == ["1h", "2h", "4h", "8h", "1d"]
    for horizon in ("1h", "8h", "1d"):
        ref = _direct(rsi, sample_panel, rsi_report.ic.index, horizon)
        for col, key in (("ic", "ic"), ("rank_ic", "rank_ic")):
            values = ref[col].dropna()
            row = rsi_report.decay.loc[horizon]
            assert row[f"{key}_mean"] == pytest.approx(values.mean(), abs=1e-12)
            assert row[f"{key}_std"] == pytest.approx(values.std(ddof=1), abs=1e-12)
            assert row[f"{key}_t"] == pytest.approx(
                values.mean() / values.std(ddof=1) * math.sqrt(len(values)), abs=1e-9)
        assert rsi_report.decay.loc[horizon, "n_times"] == ref["rank_ic"].notna().sum()
    # the 1-day horizon loses the last 20 decision times of the month to the data end
    assert rsi_report.decay.loc["1d", "n_times"] < rsi_report.decay.loc["1h", "n_times"]


def test_quantile_returns_equal_a_pandas_qcut_by_rank(rsi, rsi_report, sample_panel):
    rows = sample_panel.index.get_indexer(rsi_report.ic.index - STEP)
    fwd = forward_returns(sample_panel, rows, 48) * 100
    factor = pd.DataFrame(rsi[rows], index=rsi_report.ic.index)
    fwd = pd.DataFrame(fwd, index=rsi_report.ic.index)
    valid = factor.notna() & fwd.notna()
    m = valid.sum(axis=1)
    valid &= (m >= 3).to_numpy()[:, None]
    ranks = factor.where(valid).rank(axis=1, method="average")
    bucket = np.minimum(np.floor((ranks - 1) * 5 / (m.to_numpy()[:, None] - 1)) + 1, 5)
    long = pd.DataFrame({"bucket": bucket.stack(), "fwd": fwd.where(valid).stack()}).dropna()
    per_time = long.groupby([long.index.get_level_values(0), "bucket"])["fwd"].mean().unstack()
    per_time.columns = per_time.columns.astype(int)
    got = rsi_report.quantile_by_time.dropna(how="all")
    pd.testing.assert_frame_equal(got, per_time.reindex(got.index), check_names=False,
                                  check_freq=False, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rsi_report.quantile_returns["mean_return_pct"],
                               per_time.mean().to_numpy(), rtol=0, atol=1e-12)
    # 5 symbols, 5 buckets: one symbol each whenever all five have values
    full = m.to_numpy() == 5
    assert (rsi_report.quantile_by_time[full].notna().all(axis=1)).all()


def test_top_n_turnover_equals_a_direct_set_computation(rsi, rsi_report, sample_panel):
    symbols = list(sample_panel.symbols)
    rows = sample_panel.index.get_indexer(rsi_report.ic.index - STEP)
    fwd = forward_returns(sample_panel, rows, 48)
    previous = None
    for d, i in enumerate(rows):
        values = rsi[i]
        ranked = sorted((j for j in range(len(symbols)) if np.isfinite(values[j])),
                        key=lambda j: (-values[j], symbols[j]))
        top = ranked[:3]
        got = rsi_report.turnover.iloc[d]
        assert got["top_symbols"] == ", ".join(symbols[j] for j in top)
        if previous and top:
            expected = 1 - len(set(top) & set(previous)) / len(top)
            assert got["turnover"] == pytest.approx(expected, abs=1e-15)
        else:
            assert math.isnan(got["turnover"])
        top_fwd = [fwd[d, j] for j in top if np.isfinite(fwd[d, j])]
        if top_fwd:
            assert got["top_return_pct"] == pytest.approx(np.mean(top_fwd) * 100, abs=1e-12)
        uni = fwd[d][np.isfinite(fwd[d])]
        if uni.size:
            assert got["universe_return_pct"] == pytest.approx(uni.mean() * 100, abs=1e-12)
        previous = top


def test_decision_times_and_forward_returns_are_the_backtesters(sample_panel):
    """No exits, no fees: each trade's return is the factor's forward return over the window."""
    result = walk_forward(sample_panel, MomentumRank(), fee_bps=0, window="4h", shift="2h")
    factor = MomentumRank().score_panel(sample_panel)
    report = evaluate_factor(factor, sample_panel, name="momentum_rank")
    bt_times = pd.DatetimeIndex(result.equity["decision_time"])
    assert bt_times.isin(report.ic.index).all()
    assert report.ic.index[report.ic.index >= bt_times[0]].equals(bt_times)
    trades = result.trades[~result.trades["exit_at_last_close"]]
    assert len(trades) > 200
    rows = sample_panel.index.get_indexer(pd.DatetimeIndex(trades["decision_time"]) - STEP)
    cols = [sample_panel.column(s) for s in trades["symbol"]]
    fwd = forward_returns(sample_panel, rows, 48)[np.arange(len(rows)), cols]
    np.testing.assert_allclose(fwd * 100, trades["return_pct"], rtol=1e-9, atol=1e-12)
    # the top-3 set is the strategy's picks wherever it had at least 3 candidates
    picks = result.trades.groupby("decision_time")["symbol"].apply(lambda s: ", ".join(s))
    full = report.turnover.loc[picks.index, "top_symbols"]
    three = full.str.count(",") == 2
    assert three.sum() > 50
    assert (full[three] == picks[three]).all()


def _trend_panel(rates: list[float], n: int = 24 * 12 * 3) -> Panel:
    """Each symbol's price grows at its own constant rate per 5m candle."""
    index = pd.date_range("2021-01-01", periods=n, freq="5min", tz="UTC")
    frames = {}
    for k, rate in enumerate(rates):
        price = 100.0 * (1.0 + rate) ** np.arange(n + 1)
        frames[f"S{k}/USDT"] = pd.DataFrame({
            "timestamp": index, "open": price[:-1], "high": np.maximum(price[:-1], price[1:]),
            "low": np.minimum(price[:-1], price[1:]), "close": price[1:], "volume": 1.0})
    return Panel.from_frames(frames, "5m")


def test_hand_made_panel_gives_ic_plus_and_minus_one():
    rates = [-0.0004, -0.0001, 0.0, 0.0002, 0.0005, 0.001]
    panel = _trend_panel(rates)
    w = 48
    exact = np.broadcast_to((1.0 + np.asarray(rates)) ** w - 1.0, (panel.n_times, len(rates)))
    up = evaluate_factor(exact, panel, horizons=("4h",), quantiles=3, top_n=2)
    # the last decision time's exit candle (the open at t + 4h) is beyond the data
    assert up.ic["ic"].isna().tolist() == [False] * (len(up.ic) - 1) + [True]
    ic = up.ic.dropna()
    # decision times 02:00 (00:00 has no closed candle) .. day 3 20:00 (= data end - 4h): 34
    assert len(up.ic) == 34 and len(ic) == 33
    assert np.allclose(ic["ic"], 1.0, rtol=0, atol=1e-12) and np.allclose(ic["rank_ic"], 1.0)
    down = evaluate_factor(-exact, panel, horizons=("4h",)).ic.dropna()
    assert np.allclose(down["ic"], -1.0, rtol=0, atol=1e-12)
    assert np.allclose(down["rank_ic"], -1.0, rtol=0, atol=1e-12)
    # a monotone but non-linear factor: rank IC exactly 1, Pearson below 1
    cubed = np.broadcast_to(np.asarray(rates) ** 3, exact.shape)
    ranks_only = evaluate_factor(cubed, panel).ic.dropna()
    assert np.allclose(ranks_only["rank_ic"], 1.0) and (ranks_only["ic"] < 0.99).all()
    # quantiles increase, the top set never changes, its return is the two best symbols'
    q = up.quantile_returns["mean_return_pct"].to_numpy()
    assert np.all(np.diff(q) > 0)
    assert q[0] == pytest.approx(np.mean(exact[0, :2]) * 100, abs=1e-12)
    assert up.turnover["top_symbols"].iloc[-1] == "S5/USDT, S4/USDT"
    assert np.nan_to_num(up.turnover["turnover"].to_numpy()).max() == 0.0
    assert up.turnover["top_return_pct"].iloc[5] == pytest.approx(
        np.mean(exact[0, 4:]) * 100, abs=1e-12)
    head = up.to_frame().iloc[0]
    assert head["rank_ic_mean"] == pytest.approx(1.0) and head["rank_ic_hit_rate"] == 1.0
    assert head["top_minus_bottom_pct"] > 0 and math.isnan(head["rank_ic_t"])  # std 0


def test_turnover_is_one_when_the_top_set_alternates():
    panel = _trend_panel([0.0001, 0.0002, 0.0003, 0.0004])
    factor = np.tile([1.0, 2.0, 3.0, 4.0], (panel.n_times, 1))
    flip = (panel.index.asi8 // pd.Timedelta("2h").value) % 2 == 1
    factor[flip] = factor[flip][:, ::-1]
    report = evaluate_factor(factor, panel, top_n=2)
    assert np.allclose(report.turnover["turnover"].iloc[1:], 1.0)
    assert set(report.turnover["top_symbols"]) == {"S3/USDT, S2/USDT", "S0/USDT, S1/USDT"}


def test_missing_values_and_too_few_symbols_give_nan(sample_panel, rsi):
    factor = rsi.copy()
    factor[:, 2:] = np.nan  # two symbols left: below min_symbols=3
    report = evaluate_factor(factor, sample_panel)
    assert report.ic["ic"].isna().all() and report.ic["rank_ic"].isna().all()
    assert report.decay["n_times"].eq(0).all()
    two = evaluate_factor(factor, sample_panel, min_symbols=2)
    assert np.allclose(two.ic["rank_ic"].dropna().abs(), 1.0)


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(0.01, 100), shift=st.floats(-50, 50), power=st.sampled_from([1, 3]))
def test_rank_ic_is_invariant_to_increasing_transforms(sample_panel, rsi, rsi_report, scale,
                                                        shift, power):
    transformed = scale * (rsi - 50.0) ** power + shift
    report = evaluate_factor(transformed, sample_panel, horizons=("4h",))
    np.testing.assert_allclose(report.ic["rank_ic"], rsi_report.ic["rank_ic"], atol=1e-12)
    if power == 1:
        np.testing.assert_allclose(report.ic["ic"], rsi_report.ic["ic"], atol=1e-9)
    flipped = evaluate_factor(-transformed, sample_panel, horizons=("4h",))
    np.testing.assert_allclose(flipped.ic["rank_ic"], -rsi_report.ic["rank_ic"], atol=1e-12)


def test_row_correlations_match_scipy_with_nans():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 7)), rng.normal(size=(40, 7))
    x[rng.random(x.shape) < 0.2] = np.nan
    y[rng.random(y.shape) < 0.2] = np.nan
    x[5] = 1.0  # constant row
    r, rho = row_pearson(x, y, 3), row_spearman(x, y, 3)
    for d in range(40):
        ok = np.isfinite(x[d]) & np.isfinite(y[d])
        if ok.sum() < 3 or np.ptp(x[d, ok]) == 0:
            assert math.isnan(r[d]) and math.isnan(rho[d])
            continue
        assert r[d] == pytest.approx(stats.pearsonr(x[d, ok], y[d, ok]).statistic, abs=1e-12)
        assert rho[d] == pytest.approx(stats.spearmanr(x[d, ok], y[d, ok]).statistic, abs=1e-12)


def test_inputs_are_not_mutated_and_dataframes_are_accepted(sample_panel, rsi, rsi_report):
    before = rsi.copy()
    frame = pd.DataFrame(rsi[:, ::-1], index=sample_panel.index,
                         columns=list(sample_panel.symbols)[::-1])
    report = evaluate_factor(frame, sample_panel)
    np.testing.assert_array_equal(rsi, before)
    pd.testing.assert_frame_equal(report.ic, rsi_report.ic)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"window": "-4h"}, "'window' parameter of evaluate_factor must be a positive duration"),
    ({"shift": "7m"}, "multiple of the panel's 5m"),
    ({"quantiles": 1}, "'quantiles' .* integer >= 2"),
    ({"top_n": 0}, "'top_n' .* integer >= 1"),
    ({"min_symbols": 1}, "'min_symbols' .* integer >= 2"),
    ({"start": "2021-05-01"}, "no decision time"),
])
def test_bad_parameters_raise_config_errors(sample_panel, rsi, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        evaluate_factor(rsi, sample_panel, **kwargs)


def test_bad_factors_raise_config_errors(sample_panel, rsi):
    with pytest.raises(ConfigError, match=r"shape \(10, 5\); expected \(8928, 5\)"):
        evaluate_factor(rsi[:10], sample_panel)
    bad = rsi.copy()
    bad[100, 3] = np.inf
    with pytest.raises(ConfigError, match="infinite for ADA/USDT at row 100"):
        evaluate_factor(bad, sample_panel)
    with pytest.raises(ConfigError, match="without the panel's symbols"):
        evaluate_factor(pd.DataFrame(rsi[:, :2], columns=["BTC/USDT", "X"]), sample_panel)


def test_many_factors_table_summary_and_html(sample_panel):
    feats = compute_features([RSI(length=14), Momentum(length=24)], sample_panel)
    reports = evaluate_factors(feats, sample_panel, progress=False, horizons=("1h", "4h"))
    table = factor_table(reports)
    assert table.index.tolist() == ["rsi_14", "return_24"]
    assert table.loc["rsi_14", "rank_ic_mean"] == reports["rsi_14"].decay.loc["4h", "rank_ic_mean"]
    text = reports["return_24"].summary()
    assert "Factor return_24: window 4h, shift 2h" in text
    assert f"{table.loc['return_24', 'rank_ic_mean']:+.4f}" in text
    html_text = reports["rsi_14"]._repr_html_()
    assert 'data-key="rank_ic_mean"' in html_text and "IC decay" in html_text
    with pytest.raises(ConfigError, match="names from the keys"):
        evaluate_factors(feats, sample_panel, name="x")


@pytest.mark.parametrize("kwargs, name", [
    ({"panel": None}, "panel"), ({"panel": {"BTC/USDT": 1}}, "panel"),
    ({"rows": None}, "rows"), ({"rows": "yesterday"}, "rows"), ({"rows": 5}, "rows"),
    ({"rows": [-1]}, "rows"), ({"rows": [10**12]}, "rows"), ({"rows": [1.5]}, "rows"),
    ({"horizon_candles": 0}, "horizon_candles"), ({"horizon_candles": 1.5}, "horizon_candles"),
    ({"horizon_candles": None}, "horizon_candles"), ({"horizon_candles": "4h"}, "horizon_candles"),
    ({"horizon_candles": float("inf")}, "horizon_candles"),
    ({"horizon_candles": 10**18}, "horizon_candles"),
])
def test_forward_returns_names_the_bad_parameter(sample_panel, kwargs, name):
    args = {"panel": sample_panel, "rows": np.array([10, 20]), "horizon_candles": 48, **kwargs}
    with pytest.raises(ConfigError, match=f"'{name}' parameter of forward_returns"):
        forward_returns(**args)


def test_forward_returns_takes_a_list_of_rows_and_numpy_integers(sample_panel):
    expected = forward_returns(sample_panel, np.array([10, 20]), 48)
    np.testing.assert_array_equal(forward_returns(sample_panel, [10, 20], np.int64(48)), expected)
    assert forward_returns(sample_panel, [], 48).shape == (0, sample_panel.n_symbols)
