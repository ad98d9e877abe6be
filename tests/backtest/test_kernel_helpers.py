"""The reusable fill-model helpers of backtest._kernels, on hand-worked candles.

Portfolio mode and the SimBroker call these same functions, so their documented contracts
are pinned here directly, not only through simulate_picks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from core_engine.backtest import _kernels as k

NAN = math.nan


def candle(o, h, lo, stop, target, fill=k.STOP_FILL_LEVEL, frac=0.0, reason=k.STOP_LOSS):
    return k.exit_on_candle(o, h, lo, stop, reason, target, fill, frac)


def test_exit_on_candle_order_of_the_rules():
    # nothing reached
    assert candle(100, 101, 99, 98, 103)[0] == k.NO_EXIT
    # gap through the stop: out at the (worse) open, at the open
    assert candle(97, 99, 96, 98, 103) == (k.STOP_LOSS, 97.0, True, False, 97.0)
    # gap through the target: out at the (better) open
    assert candle(104, 105, 103, 98, 103) == (k.TAKE_PROFIT, 104.0, True, False, 104.0)
    # stop inside the candle: the level; its bound is the low
    assert candle(100, 101, 95, 98, 103) == (k.STOP_LOSS, 98.0, False, False, 95.0)
    # both touched: stop assumed first, flagged ambiguous
    assert candle(100, 104, 95, 98, 103, reason=k.TRAILING_STOP) == \
        (k.TRAILING_STOP, 98.0, False, True, 95.0)
    # target inside the candle
    assert candle(100, 104, 99, 98, 103) == (k.TAKE_PROFIT, 103.0, False, False, 103.0)
    # NaN levels are "no rule"
    assert candle(100, 200, 1, NAN, NAN)[0] == k.NO_EXIT


def test_stop_fill_modes():
    # level 98, candle high 101, low 94: range 7
    assert candle(100, 101, 94, 98, NAN, k.STOP_FILL_LOW)[1] == 94.0
    assert candle(100, 101, 94, 98, NAN, k.STOP_FILL_RANGE, 0.25)[1] == pytest.approx(96.25)
    assert candle(100, 101, 94, 98, NAN, k.STOP_FILL_RANGE, 2.0)[1] == 94.0  # never below low
    # a gap through the stop fills at the open whatever the mode
    assert candle(97, 99, 90, 98, NAN, k.STOP_FILL_LOW)[1] == 97.0


def test_stop_in_force_takes_the_higher_of_stop_and_trail():
    assert k.stop_in_force(95.0, 110.0, 0.1, NAN, True) == (99.0, k.TRAILING_STOP)
    assert k.stop_in_force(99.0, 110.0, 0.1, NAN, True) == (99.0, k.STOP_LOSS)  # tie: stop
    level, reason = k.stop_in_force(NAN, 110.0, NAN, NAN, False)
    assert math.isnan(level) and reason == k.STOP_LOSS


def test_exit_after_window_outage_and_cap():
    o = np.array([100.0, 101.0, NAN, NAN, NAN, 104.0])
    c = np.array([100.5, 101.5, NAN, NAN, NAN, 104.5])
    # due at row 2, held to row 5 (3 candles late)
    assert k.exit_after_window(o, c, 2, 1, NAN, k.STOP_LOSS, NAN, -1) == \
        (5, 104.0, k.WINDOW_END, k.EXIT_AT_OPEN, 3)
    assert k.exit_after_window(o, c, 2, 1, NAN, k.STOP_LOSS, NAN, 3)[3] == k.EXIT_AT_OPEN
    # capped at 2 candles: the last close before the gap
    assert k.exit_after_window(o, c, 2, 1, NAN, k.STOP_LOSS, NAN, 2) == \
        (1, 101.5, k.WINDOW_END, k.EXIT_DELAY_CAPPED, 0)
    # the open after the outage is already through the stop / the target
    assert k.exit_after_window(o, c, 2, 1, 104.5, k.TRAILING_STOP, NAN, -1)[2] == k.TRAILING_STOP
    assert k.exit_after_window(o, c, 2, 1, 90.0, k.STOP_LOSS, 103.0, -1)[2] == k.TAKE_PROFIT
    # no later candle at all: the data ended, with or without a cap
    for cap in (-1, 0):
        assert k.exit_after_window(o[:5], c[:5], 2, 1, NAN, k.STOP_LOSS, NAN, cap) == \
            (1, 101.5, k.WINDOW_END, k.EXIT_AT_LAST_CLOSE, 0)
    # on time
    assert k.exit_after_window(o, c, 1, 0, NAN, k.STOP_LOSS, NAN, 0) == \
        (1, 101.0, k.WINDOW_END, k.EXIT_AT_OPEN, 0)


def test_levels_and_cost_model():
    assert k.level_below(100.0, 0.02, NAN) == pytest.approx(98.0)
    assert k.level_below(100.0, 0.02, 1.0) == pytest.approx(97.0)
    assert k.level_above(100.0, NAN, 3.0) == 103.0
    assert math.isnan(k.level_above(100.0, NAN, NAN))
    assert k.net_return_pct(100.0, 110.0, 0.001, 0.0005) == \
        pytest.approx((110 * 0.9995 * 0.999 / (100 * 1.001) - 1) * 100, rel=1e-14)
    assert k.exit_candle_low(k.TAKE_PROFIT, False, 103.0, 99.0) == 99.0
    assert k.exit_candle_low(k.TAKE_PROFIT, True, 104.0, 99.0) == 104.0
    assert k.exit_candle_low(k.STOP_LOSS, False, 98.0, 95.0) == 98.0
