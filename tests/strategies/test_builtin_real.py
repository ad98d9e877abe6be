"""Every built-in strategy on real 5m Binance data and on synthetic data with gaps:
check_strategy passes, the one-off path equals the vectorised path, references hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from core_engine.errors import LookaheadError
from core_engine.strategies import (
    Breakout,
    MacdRsiConfluence,
    MomentumRank,
    MovingAverageCrossover,
    Strategy,
    get_strategy,
    list_strategies,
    rank_candidates,
)
from core_engine.testing.strategies import check_strategy

BUILTINS = [
    MacdRsiConfluence(),
    MacdRsiConfluence(rsi_low=35.0, rsi_high=70.0, max_atr_pct=1.0, momentum_weight=0.8),
    MomentumRank(),
    MomentumRank(length=12, min_volume_trend=0.2),
    Breakout(),
    Breakout(length=48, min_confirmations=1, scale_by_confidence=True),
    MovingAverageCrossover(),
    MovingAverageCrossover(kind="sma", fast=20, slow=50, fresh_within=6),
]
IDS = [repr(s) for s in BUILTINS]


class NextBarReturn(Strategy):
    """NEGATIVE CONTROL: next candle's return."""

    name = "toy_leaky_next_bar_real"

    def score(self, features, panel):
        out = np.full(panel.close.shape, np.nan)
        out[:-1] = panel.close[1:] / panel.close[:-1] - 1
        return out


def test_real_panel_shape(real_panel):
    assert real_panel.symbols == ("ADA/USDT", "BTC/USDT", "ETH/USDT", "NKN/USDT", "SOL/USDT", "XRP/USDT")
    assert real_panel.n_times == 4032 and not np.isnan(real_panel.close).any()


@pytest.mark.parametrize("strategy", BUILTINS, ids=IDS)
def test_builtin_passes_check_strategy_on_real_data(strategy, real_panel):
    times = check_strategy(strategy, real_panel, n_times=6, seed=11)
    assert len(times) == 6


@pytest.mark.parametrize("strategy", BUILTINS, ids=IDS)
def test_builtin_passes_check_strategy_on_gappy_synthetic_data(strategy, synthetic_panel_with_holes):
    check_strategy(strategy, synthetic_panel_with_holes, n_times=6, seed=2)


def test_negative_control_fails_on_real_data(real_panel):
    with pytest.raises(LookaheadError, match="NextBarReturn"):
        check_strategy(NextBarReturn(), real_panel, n_times=3)


@pytest.mark.parametrize("strategy", BUILTINS, ids=IDS)
def test_scores_are_nan_during_warm_up_and_exist_after(strategy, real_panel):
    scores = strategy.score_panel(real_panel)
    assert np.isnan(scores[: strategy.lookback]).all()
    assert np.isfinite(scores).any(axis=1).mean() > 0.02  # real candidates appear


@pytest.mark.parametrize("name", ["macd_rsi_confluence", "momentum_rank", "breakout", "ma_crossover"])
def test_one_off_from_candle_frames_equals_vectorised(name, real_panel):
    strategy = get_strategy(name)
    scores = strategy.score_panel(real_panel)
    frames = real_panel.to_frames()
    step = pd.Timedelta("5min")
    rows = np.nonzero(np.isfinite(scores).sum(axis=1) >= 2)[0]
    for i in rows[:: max(1, len(rows) // 3)][:3]:
        t = real_panel.index[i] + step
        assert strategy.select_symbols(frames, t) == rank_candidates(scores[i], real_panel.symbols)
        assert strategy.select_symbols(frames, t, top_n=1) == rank_candidates(scores[i], real_panel.symbols)[:1]
        for j, symbol in enumerate(real_panel.symbols):
            signal = strategy.generate_signal(symbol, frames[symbol], t)
            assert signal == ("LONG" if np.isfinite(scores[i, j]) else "FLAT"), (symbol, t)


def test_select_symbols_is_invariant_to_symbol_order(real_panel):
    strategy = MacdRsiConfluence()
    reordered = real_panel.select(list(reversed(real_panel.symbols)))
    a, b = strategy.score_panel(real_panel), strategy.score_panel(reordered)
    np.testing.assert_allclose(a, b[:, ::-1], rtol=1e-12, atol=1e-12, equal_nan=True)


def test_confluence_equals_an_independent_talib_pandas_reference(real_panel):
    s = MacdRsiConfluence()
    p = real_panel
    cand, mom, volz = [], [], []
    for j in range(p.n_symbols):
        h, lo, c, v = p.high[:, j], p.low[:, j], p.close[:, j], p.volume[:, j]
        rsi = talib.RSI(c, 14)
        _, _, hist = talib.MACD(c, 12, 26, 9)
        slope = np.concatenate([[np.nan], np.diff(hist)])
        atr_pct = talib.ATR(h, lo, c, 14) / c * 100
        roll = pd.Series(v).rolling(20)
        z = ((pd.Series(v) - roll.mean()) / roll.std(ddof=0)).to_numpy()
        r = talib.ROCP(c, 24)
        with np.errstate(invalid="ignore"):
            cand.append((atr_pct <= 1.5) & (slope > 0) & (rsi >= 40) & (rsi <= 65)
                        & np.isfinite(r) & np.isfinite(z))
        mom.append(r)
        volz.append(z)
    cand, mom, volz = np.column_stack(cand), np.column_stack(mom), np.column_stack(volz)

    def zscore(x):
        x = pd.DataFrame(np.where(cand, x, np.nan))
        out = x.sub(x.mean(axis=1), axis=0).div(x.std(axis=1, ddof=0), axis=0)
        return np.where(cand, out.fillna(0.0).to_numpy(), np.nan)

    expected = 0.5 * zscore(mom) + 0.5 * zscore(volz)
    got = s.score_panel(p)
    np.testing.assert_array_equal(np.isfinite(got), cand)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9, equal_nan=True)
    assert 0.05 < cand.mean() < 0.5


def test_every_registered_builtin_is_covered():
    assert {"macd_rsi_confluence", "momentum_rank", "breakout", "ma_crossover"} <= set(list_strategies())
    assert {type(s).name for s in BUILTINS} == {"macd_rsi_confluence", "momentum_rank", "breakout", "ma_crossover"}
