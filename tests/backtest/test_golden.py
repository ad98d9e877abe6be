"""Golden metrics of the baseline on the bundled real sample (tolerance 1e-9).

Any change of these numbers — in the data, a feature, the baseline, the allocator or the
engine — must be a visible, explained diff of this file: print the new metrics of each case
and paste them here, explaining the change in the commit message.

History: Sharpe/Sortino annualised by max(window, shift) instead of shift (overlapping 4h
returns had been annualised as 2h ones: ÷√2); trades whose exit candle falls in an exchange
outage now exit at the first open after it, not the close before it (4 trades of case 1).
Issue 9 added stop_fill_spread_pct and worst_case_total_return_pct (stops inside a candle
filled at its low); no earlier number changed.
"""

from __future__ import annotations

import pytest

from core_engine.backtest import walk_forward
from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.risk import ExitRules
from core_engine.strategies import MacdRsiConfluence

SAMPLE_FINGERPRINT = "54bdcc00290ddb722c7c5244ba609f0b7c43bdc37d4df5e9104d300b81aba12c"

GOLDEN = {
    "baseline, 4h/2h, 10 bps": (
        {},
        {"trades": 4054, "decisions": 2163, "coverage": 0.7813222376329172,
         "win_rate": 0.4506660088801184, "avg_return_pct": -0.1556673296070805,
         "median_return_pct": -0.2722819369184115, "profit_factor": 0.8776048091485844,
         "total_return_pct": -73.05538863523967, "equity_max_drawdown_pct": 81.99101660300857,
         "max_trade_drawdown_pct": 58.21707105719237, "sharpe": -1.9801952013927009,
         "sortino": -2.752796941320878, "exposure": 0.625260055478502,
         "ambiguous_trades": 0, "ambiguous_spread_pct": 0.0,
         "best_case_total_return_pct": -73.05538863523967,
         "stop_fill_spread_pct": 0.0, "worst_case_total_return_pct": -73.05538863523967,
         "exit_reasons": {"window_end": 4054, "stop_loss": 0, "take_profit": 0,
                          "trailing_stop": 0}},
    ),
    "baseline + stop/target/trailing, 5 bps slippage": (
        {"exits": ExitRules(stop_loss_pct=2.0, take_profit_pct=3.0, trailing_pct=1.5),
         "slippage_bps": 5},
        {"trades": 4054, "decisions": 2163, "coverage": 0.7813222376329172,
         "win_rate": 0.30167735569807597, "avg_return_pct": -0.33323727305394324,
         "median_return_pct": -0.8080455652571594, "profit_factor": 0.5713308160980025,
         "total_return_pct": -89.84556472507565, "equity_max_drawdown_pct": 90.02027604315495,
         "max_trade_drawdown_pct": 2.3544528004094345, "sharpe": -11.866094501050858,
         "sortino": -14.62066039972346, "exposure": 0.21196768890943649,
         "ambiguous_trades": 9, "ambiguous_spread_pct": 0.0062917237262056815,
         "best_case_total_return_pct": -89.42261187643027,
         "stop_fill_spread_pct": 0.24963084950450692,
         "worst_case_total_return_pct": -98.12988291117381,
         "exit_reasons": {"window_end": 396, "stop_loss": 0, "take_profit": 476,
                          "trailing_stop": 3182}},
    ),
}


@pytest.fixture(scope="module")
def sample_panel() -> Panel:
    return Panel.from_frames(load_sample(), "5m")


def test_bundled_sample_is_the_pinned_data(sample_panel):
    assert sample_panel.fingerprint() == SAMPLE_FINGERPRINT


@pytest.mark.parametrize("case", list(GOLDEN))
def test_golden_metrics_of_the_baseline(sample_panel, case):
    kwargs, expected = GOLDEN[case]
    metrics = walk_forward(sample_panel, MacdRsiConfluence(), **kwargs).metrics
    for key, value in expected.items():
        if isinstance(value, float):
            assert metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        else:
            assert metrics[key] == value, key
