"""The shared rule and sizing kernels (risk/_kernels.py) on hand-worked numbers: the state
machine of the daily-loss and drawdown halts (peak reset, halt for a duration or for good,
liquidation order), the order of the entry rules, the caps of an entry, the rebalance delta,
the dust rule, and the catch-up marks of an account that holds still."""

from __future__ import annotations

import numpy as np
import pytest

from core_engine.risk import EqualSlots, PortfolioRules, RiskPerTrade
from core_engine.risk import _kernels as k
from core_engine.risk.rules import rule_params

DAY = 86_400 * 10**9
T0 = 1_614_556_800 * 10**9  # 2021-03-01 00:00 UTC


def params(fee=0.001, sizing=None, **rules):
    return rule_params(PortfolioRules(**rules), sizing or EqualSlots(), fee)


def state(equity=10_000.0, tau=T0):
    af = np.zeros(k.N_RULE_FSTATE)
    ai = np.zeros(k.N_RULE_ISTATE, dtype=np.int64)
    k.rules_reset(af, ai, equity, tau)
    return af, ai


def test_rule_params_pack_every_rule():
    fp, ip = params(fee=0.002, sizing=RiskPerTrade(risk_pct=1, lot_step=0.01,
                                                  max_position_pct=40),
                    cooldown="2h", max_entries_per_day=3, daily_loss_limit_pct=3,
                    liquidate_on_daily_loss=True, max_drawdown_pct=20, drawdown_halt_for="1D",
                    max_exposure_pct=25, max_gross_exposure_pct=90, max_correlation=0.8,
                    correlation_lookback=48, min_order_value=10)
    assert fp[k.RF_FEE] == 0.002 and fp[k.RF_MAX_POS] == 0.4 and fp[k.RF_LOT] == 0.01
    assert fp[k.RF_RISK] == 0.01 and fp[k.RF_DAILY_LOSS] == 0.03 and fp[k.RF_MAX_DD] == 0.2
    assert fp[k.RF_MAX_EXPOSURE] == 0.25 and fp[k.RF_MAX_GROSS] == 0.9
    assert fp[k.RF_MAX_CORR] == 0.8 and fp[k.RF_MIN_ORDER] == 10
    assert list(ip) == [2 * 3600 * 10**9, DAY, 3, 48, 1, 0]
    off_fp, off_ip = params()
    assert np.isnan(off_fp[[k.RF_RISK, k.RF_DAILY_LOSS, k.RF_MAX_DD, k.RF_MAX_CORR]]).all()
    assert off_ip[k.RI_COOLDOWN_NS] == -1 and off_ip[k.RI_MAX_ENTRIES] == -1


def test_daily_loss_halts_for_the_day_and_resets_at_the_next():
    fp, ip = params(daily_loss_limit_pct=2, liquidate_on_daily_loss=True)
    af, ai = state()
    assert k.rules_on_mark(af, ai, 9_900.0, T0 + 3600 * 10**9, fp, ip) == k.LIQ_NONE
    assert k.rules_on_mark(af, ai, 9_800.0, T0 + 7200 * 10**9, fp, ip) == k.LIQ_DAILY
    assert k.entry_halted(ai, T0 + 7200 * 10**9) == (False, True)
    # tripped once a day: a deeper loss the same day asks for nothing more
    assert k.rules_on_mark(af, ai, 9_000.0, T0 + 8000 * 10**9, fp, ip) == k.LIQ_NONE
    ai[k.AI_ENTRIES_TODAY] = 4
    # the first mark of the next UTC day opens it at that equity
    assert k.rules_on_mark(af, ai, 9_000.0, T0 + DAY + 300 * 10**9, fp, ip) == k.LIQ_NONE
    assert af[k.AF_DAY_OPEN] == 9_000.0 and ai[k.AI_ENTRIES_TODAY] == 0
    assert k.entry_halted(ai, T0 + DAY + 600 * 10**9) == (False, False)


def test_drawdown_halt_for_a_duration_restarts_the_peak():
    fp, ip = params(max_drawdown_pct=10, drawdown_halt_for="6h", liquidate_on_drawdown=True)
    af, ai = state()
    k.rules_on_mark(af, ai, 12_000.0, T0 + 300 * 10**9, fp, ip)
    assert af[k.AF_PEAK] == 12_000.0
    tau = T0 + 600 * 10**9
    assert k.rules_on_mark(af, ai, 10_800.0, tau, fp, ip) == k.LIQ_DRAWDOWN  # 10 % off
    assert af[k.AF_PEAK] == 10_800.0 and ai[k.AI_HALT_UNTIL] == tau + 6 * 3600 * 10**9
    assert k.entry_halted(ai, tau + 6 * 3600 * 10**9 - 1)[0]
    assert not k.entry_halted(ai, tau + 6 * 3600 * 10**9)[0]
    # a new trip needs a new 10 % drop from the restarted peak
    assert k.rules_on_mark(af, ai, 9_800.0, tau + 300 * 10**9, fp, ip) == k.LIQ_NONE
    assert k.rules_on_mark(af, ai, 9_720.0, tau + 600 * 10**9, fp, ip) == k.LIQ_DRAWDOWN


def test_drawdown_halt_for_good_and_the_daily_liquidation_comes_first():
    fp, ip = params(max_drawdown_pct=5, liquidate_on_drawdown=True, daily_loss_limit_pct=5,
                    liquidate_on_daily_loss=True)
    af, ai = state()
    assert k.rules_on_mark(af, ai, 9_000.0, T0 + 300 * 10**9, fp, ip) == k.LIQ_DAILY
    assert ai[k.AI_DD_FOREVER] == 1 and k.entry_halted(ai, T0 + 400 * DAY) == (True, True)


def test_entry_rules_in_their_documented_order():
    fp, ip = params(cooldown="1h", max_entries_per_day=1, max_correlation=0.5,
                    correlation_lookback=10)
    af, ai = state()
    rng = np.random.default_rng(1)
    base = np.cumsum(rng.normal(0, 1, 30)) + 100
    close = np.column_stack([base, base * 1.01, 100 + np.cumsum(rng.normal(0, 1, 30))])
    held = np.array([1], dtype=np.int64)
    xs, ys = np.empty(10), np.empty(10)
    t = T0 + 3 * 3600 * 10**9

    def block(j, last_exit=-k.NEVER, n_held=1):
        return k.entry_block(ai, fp, ip, t, last_exit, close, j, held, n_held, 29, xs, ys)

    assert block(0) == k.B_MAX_CORR  # column 0 moves with the held column 1
    assert block(0, n_held=0) == -1
    assert block(2, last_exit=t - 1800 * 10**9) == k.B_COOLDOWN
    ai[k.AI_ENTRIES_TODAY] = 1
    assert block(2) == k.B_MAX_ENTRIES
    ai[k.AI_DAY_HALTED] = 1
    assert block(2) == k.B_DAILY_LOSS
    ai[k.AI_HALT_UNTIL] = t + 1
    assert block(2) == k.B_DRAWDOWN
    assert k.return_correlation(close, 0, 1, 29, 10, xs, ys) == pytest.approx(
        np.corrcoef(np.diff(close[19:, 0]) / close[19:-1, 0],
                    np.diff(close[19:, 1]) / close[19:-1, 1])[0, 1], rel=1e-12)


def test_entry_size_caps_in_order_and_names_the_last_that_bound():
    fp, _ = params(fee=0.001, sizing=EqualSlots(max_position_pct=50, lot_step=0.5),
                   max_exposure_pct=40, max_gross_exposure_pct=60, min_order_value=100)
    # 1/3 of 10,000 (below 50 %) -> exposure cap 40 % not binding -> gross room 6,000 - 4,000
    qty, value, reason = k.entry_size(10_000.0, 9_000.0, 4_000.0, 1 / 3, 100.0, np.nan, fp)
    assert (qty, value, reason) == (20.0, 2_000.0, -1)
    # the cash binds last: 1,001 of cash buys 1,000 of value, 10 lots of 0.5 at 100 (rounded)
    qty, value, reason = k.entry_size(10_000.0, 1_001.0, 0.0, 1 / 3, 100.0, np.nan, fp)
    assert (qty, value, reason) == (10.0, 1_000.0, -1)
    # below the minimum order value: blocked, named after the last cap that bound
    assert k.entry_size(10_000.0, 50.0, 0.0, 1 / 3, 100.0, np.nan, fp)[2] == k.B_CASH
    assert k.entry_size(10_000.0, 9_000.0, 5_990.0, 1 / 3, 100.0, np.nan, fp)[2] == k.B_MAX_GROSS
    assert k.entry_size(10_000.0, 9_000.0, 0.0, np.nan, 100.0, np.nan, fp)[2] == k.B_SIZING


def test_a_cap_that_cuts_only_float_rounding_does_not_name_the_block():
    """A later cap names the block only when it cuts more than ``DUST x equity`` below the
    earlier one. With max_gross_exposure_pct 100 and no fee, the room (equity - gross) and
    the cash (equity - what was paid) are one number reached by two float sums: the soak's
    (seed 51002627) replay had a room of 1.8e-12 over 0 cash and named the pick ``cash``
    where the engine, its gross equal to the equity, named it ``max_gross_exposure_pct``."""
    fp, _ = params(fee=0.0, max_exposure_pct=40, max_gross_exposure_pct=100,
                   min_order_value=500)
    equity = 10_145.053412809923
    for gross, cash in ((equity - 1.8e-12, 0.0), (equity, 0.0), (equity + 1.8e-12, 2e-13),
                        (equity - 1.8e-12, 4e-13)):
        assert k.entry_size(equity, cash, gross, 1 / 6, 20.22, np.nan, fp) == \
            (0.0, 0.0, k.B_MAX_GROSS), (gross, cash)
    # the converse: the cash short of the room by more than rounding binds
    assert k.entry_size(10_000.0, 0.0, 9_990.0, 1 / 6, 20.0, np.nan, fp)[2] == k.B_CASH
    assert k.entry_size(10_000.0, 400.0, 9_000.0, 1 / 6, 20.0, np.nan, fp)[2] == k.B_CASH
    # the same between the exposure caps: 40 % (4,000) and a room 1e-12 below it
    fp, _ = params(fee=0.0, max_exposure_pct=40, max_gross_exposure_pct=100,
                   min_order_value=5_000)
    assert k.entry_size(10_000.0, 10_000.0, 6_000.0 + 1e-12, 0.5, 20.0, np.nan, fp)[2] == \
        k.B_MAX_EXPOSURE
    # the value is still the smallest cap: never more than the cash
    fp, _ = params(fee=0.0, max_gross_exposure_pct=100)
    qty, value, reason = k.entry_size(10_000.0, 2_000.0 - 1e-12, 8_000.0, 0.5, 20.0, np.nan, fp)
    assert value == 2_000.0 - 1e-12 and qty == value / 20.0 and reason == -1


def test_risk_per_trade_sizes_from_the_stop_in_force():
    fp, _ = params(sizing=RiskPerTrade(risk_pct=1))
    # risk 1 % of 10,000 on a 2 % stop: a 5,000 position
    assert k.sizing_fraction(np.nan, 100.0, 98.0, fp) == pytest.approx(0.5)
    assert np.isnan(k.sizing_fraction(np.nan, 100.0, np.nan, fp))  # no stop: no size
    assert np.isnan(k.sizing_fraction(np.nan, 100.0, 100.0, fp))


def test_dust_is_not_a_position():
    """The cash float rounding leaves after the account is fully invested (1e-10 of 10,000)
    would buy a position worth 1e-10: blocked as cash, in the kernel and the trader alike."""
    fp, _ = params()
    qty, value, reason = k.entry_size(10_000.0, 1e-10, 9_999.0, 1 / 3, 100.0, np.nan, fp)
    assert (qty, value, reason) == (0.0, 0.0, k.B_CASH)
    assert k.order_value_ok(1e-6, 1e-4, 10_000.0, 0.0)
    assert not k.order_value_ok(1e-14, 1e-12, 10_000.0, 0.0)


def test_rebalance_buys_the_difference_and_sells_part_never_all():
    fp, _ = params(sizing=EqualSlots(lot_step=0.1), min_order_value=5)
    # target 10,000 / 2 = 5,000; held 40 at 110 = 4,400 -> buy 600 of value at the fill 110
    qty, value = k.rebalance_size(10_000.0, 8_000.0, 4_400.0, 40.0, 110.0, 110.0, 0.5, np.nan,
                                  False, fp)
    assert qty == pytest.approx(5.4) and value == pytest.approx(594.0)
    assert k.rebalance_size(10_000.0, 8_000.0, 4_400.0, 40.0, 110.0, 110.0, 0.5, np.nan,
                            True, fp) == (0.0, 0.0)  # no buying during a halt
    # held 60 at 110 = 6,600 -> sell 14.5 (rounded down to the lot)
    qty, value = k.rebalance_size(10_000.0, 0.0, 6_600.0, 60.0, 110.0, 110.0, 0.5, np.nan,
                                  False, fp)
    assert qty == pytest.approx(-14.5) and value == pytest.approx(14.5 * 110)
    # a target of (almost) nothing sells all but the last lot: selling everything is an
    # exit, never a rebalance
    qty, _ = k.rebalance_size(10_000.0, 0.0, 6_600.0, 60.0, 110.0, 110.0, 1e-12, np.nan,
                              False, fp)
    assert qty == pytest.approx(-59.9)


def test_pay_never_leaves_negative_cash_and_lots_round_down():
    cash, fee = k.pay(100.0, 100.0 / 1.001, 0.001)
    assert cash == pytest.approx(0.0, abs=1e-12) and cash >= 0 and fee >= 0
    assert k.lot_quantity(1_000.0, 30.0, 0.5) == (33.0, 990.0)
    assert k.lot_quantity(1_000.0, 40.0, np.nan) == (25.0, 1_000.0)


def test_mark_account_equals_marking_row_by_row():
    fp, ip = params(daily_loss_limit_pct=1, max_drawdown_pct=2, liquidate_on_drawdown=True)
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, (600, 3)), 0))
    cols, qty = np.array([0, 2], dtype=np.int64), np.array([30.0, 40.0])
    step = 300 * 10**9
    af, ai = state(tau=T0)
    equity, liq_row, liq = k.mark_account(close, cols, qty, 1_000.0, 0, 599, af, ai, fp, ip,
                                          T0, step)
    af2, ai2 = state(tau=T0)
    first = None
    for r in range(600):
        e = 1_000.0 + 30.0 * close[r, 0] + 40.0 * close[r, 2]
        code = k.rules_on_mark(af2, ai2, e, T0 + (r + 1) * step, fp, ip)
        if code and first is None:
            first = (r, code)
    assert equity == e and (liq_row, liq) == (first or (-1, 0))
    assert liq_row >= 0  # this walk does trip the drawdown halt
    np.testing.assert_array_equal(af, af2)
    np.testing.assert_array_equal(ai, ai2)


def test_top_n_serial_and_parallel_paths_agree():
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(3_000, 80))
    scores[rng.random(scores.shape) < 0.1] = np.nan
    eligible = rng.random(scores.shape) < 0.9
    rank = np.arange(80, dtype=np.int64)[::-1].copy()
    serial = k.top_n_select_rows(scores, eligible, rank, 4)
    parallel = k.top_n_select_rows_parallel(scores, eligible, rank, 4)
    np.testing.assert_array_equal(serial, parallel)
    assert scores.size >= k.PARALLEL_MIN_CELLS  # the wrapper takes the parallel path here
    np.testing.assert_array_equal(k.top_n_select_2d(scores, eligible, rank, 4), serial)
    np.testing.assert_array_equal(k.top_n_select_2d(scores[:1], eligible[:1], rank, 4),
                                  serial[:1])
