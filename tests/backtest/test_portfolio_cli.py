"""``core-engine backtest --mode portfolio``: the flags reach walk_forward."""

from __future__ import annotations

from core_engine.backtest import BacktestResult
from core_engine.cli import main

ARGS = ["backtest", "--symbols", "BTC/USDT,ETH/USDT,SOL/USDT", "--end", "2021-02-01"]


def test_portfolio_flags(tmp_path, capsys):
    out = tmp_path / "run"
    code = main([*ARGS, "--mode", "portfolio", "--initial-cash", "5000", "--sizing", "risk:1",
                 "--stop-loss-pct", "2", "--rule", "daily_loss_limit_pct=3", "--rule",
                 "cooldown=2h", "--rule", "liquidate_on_daily_loss=true", "--hold",
                 "until_dropped", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "Final equity" in text and "RiskPerTrade" in text
    result = BacktestResult.load(out)
    book = result.config["portfolio"]
    assert result.mode == "portfolio" and result.metrics["initial_cash"] == 5000.0
    assert book["rules"]["daily_loss_limit_pct"] == 3.0 and book["rules"]["cooldown"] == "2h"
    assert book["rules"]["liquidate_on_daily_loss"] is True
    assert book["sizing"] == {"sizing": "RiskPerTrade", "max_position_pct": 100.0,
                              "lot_step": None, "risk_pct": 1.0}
    assert book["hold"] == "until_dropped"


def test_portfolio_flag_errors(capsys):
    assert main([*ARGS, "--mode", "portfolio", "--rule", "cooldwn=1h", "--out", "-"]) == 2
    assert "Did you mean 'cooldown'" in capsys.readouterr().err
    assert main([*ARGS, "--rule", "cooldown", "--mode", "portfolio", "--out", "-"]) == 2
    assert "--rule must look like name=value" in capsys.readouterr().err
    assert main([*ARGS, "--sizing", "risk:1", "--out", "-"]) == 2
    assert "apply to --mode portfolio only" in capsys.readouterr().err
