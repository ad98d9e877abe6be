"""Golden portfolio metrics of the baseline on the bundled real sample (tolerance 1e-9).

Pinned like tests/backtest/test_golden.py: any change of these numbers — in the data, a
feature, the baseline, the allocator, the shared exit rules or the account simulation —
must be a visible, explained diff of this file.
"""

from __future__ import annotations

import pytest

from core_engine.backtest import walk_forward
from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.risk import ExitRules, PortfolioRules, RiskPerTrade
from core_engine.strategies import MacdRsiConfluence

NO_EXITS = {"window_end": 0, "stop_loss": 0, "take_profit": 0, "trailing_stop": 0,
            "dropped": 0, "rebalance": 0, "daily_loss_limit_pct": 0, "max_drawdown_pct": 0}

GOLDEN = {
    "baseline, 4h/2h, 10 bps, 10,000 cash, equal slots": (
        {},
        {"final_equity": 3249.689069894357, "total_return_pct": -67.50310930105643,
         "cagr_pct": -89.65607622065119, "sharpe": -1.4308221463629383,
         "sortino": -1.885972823653399, "calmar": -1.0072389771839312,
         "equity_max_drawdown_pct": 89.0117223931448,
         "max_drawdown_duration_days": 113.75347222222223, "exposure": 0.8031047190911236,
         "turnover_per_year": 3094.490440419409, "fees_paid": 22884.977639457364,
         "trades": 2542, "decisions": 2163, "win_rate": 0.45948072383949645,
         "avg_return_pct": -0.122024952104425, "profit_factor": 0.9104564431599668,
         "blocked_picks": 763, "blocked_reasons": {"cash": 763},
         "exit_reasons": {**NO_EXITS, "window_end": 2542}},
    ),
    "baseline + stops, risk 1 %, daily loss 3 %, drawdown 20 %, cooldown 2h": (
        {"exits": ExitRules(stop_loss_pct=2.0, take_profit_pct=3.0, trailing_pct=1.5),
         "sizing": RiskPerTrade(risk_pct=1.0),
         "rules": PortfolioRules(daily_loss_limit_pct=3.0, max_drawdown_pct=20.0,
                                 drawdown_halt_for="1D", cooldown="2h")},
        {"final_equity": 853.8240047064337, "total_return_pct": -91.46175995293567,
         "cagr_pct": -99.30331182054485, "sharpe": -10.234960227123283,
         "sortino": -10.396309310830828, "calmar": -1.0740839254545305,
         "equity_max_drawdown_pct": 92.4539595716617,
         "max_drawdown_duration_days": 174.57986111111111, "exposure": 0.2757880898002286,
         "turnover_per_year": 4215.4043521884905, "fees_paid": 9636.955727428332,
         "trades": 1912, "decisions": 2163, "win_rate": 0.3247907949790795,
         "avg_return_pct": -0.24369841140206008, "profit_factor": 0.6611647082941616,
         "blocked_picks": 2027,
         "blocked_reasons": {"cash": 687, "daily_loss_limit_pct": 657, "cooldown": 404,
                             "max_drawdown_pct": 279},
         "exit_reasons": {**NO_EXITS, "window_end": 144, "take_profit": 228,
                          "trailing_stop": 1540}},
    ),
}


@pytest.fixture(scope="module")
def sample_panel() -> Panel:
    return Panel.from_frames(load_sample(), "5m")


@pytest.mark.parametrize("case", list(GOLDEN))
def test_golden_portfolio_metrics_of_the_baseline(sample_panel, case):
    kwargs, expected = GOLDEN[case]
    result = walk_forward(sample_panel, MacdRsiConfluence(), mode="portfolio", **kwargs)
    metrics = result.metrics
    for key, value in expected.items():
        if isinstance(value, float):
            assert metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        else:
            assert metrics[key] == value, key
    assert metrics["final_equity"] == pytest.approx(10_000 + result.trades["pnl"].sum(),
                                                    rel=1e-9)
    assert (result.equity["cash"] >= 0).all()
