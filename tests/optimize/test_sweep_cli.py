"""The ``core-engine sweep`` command on the bundled real sample."""

from __future__ import annotations

import pandas as pd

from core_engine.cli import main

BASE = ["sweep", "--symbols", "BTC/USDT,ETH/USDT,SOL/USDT", "--start", "2021-01-01",
        "--end", "2021-03-01", "--space", "rsi_low=35:45:5", "--space", "max_atr_pct=1,1.5",
        "--workers", "1", "--blocks", "8", "--no-progress"]


def test_walk_forward_sweep_prints_folds_report_and_resumes(tmp_path, capsys):
    results = tmp_path / "sweep.parquet"
    args = BASE + ["--splitter", "walk-forward", "--train", "21d", "--test", "7d",
                   "--results", str(results), "--out", str(tmp_path / "oos")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best 6 of 6 by sharpe:" in out
    assert "6 configurations ran (6 computed now, 0 found in" in out
    assert "WalkForward(train='21d', test='7d'): 6 folds" in out
    assert "Walk-forward backtest: macd_rsi_confluence (walk-forward optimised)" in out
    assert "PBO (CSCV, S=8, 70 combinations, 6 trials" in out and "Deflated Sharpe DSR" in out
    assert (tmp_path / "oos" / "run.json").is_file()
    stored = pd.read_parquet(results)
    assert stored["config_id"].nunique() == 6 and (stored["scope"] == "all").sum() == 6
    assert main(args) == 1 + 1  # the saved run is not replaced without --overwrite
    assert "already holds a saved run" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert "6 configurations ran (0 computed now, 6 found in" in capsys.readouterr().out


def test_plain_sweep_with_nested_exit_space(tmp_path, capsys):
    args = BASE[:9] + ["--space", "exits.stop_loss_pct=1,2", "--take-profit-pct", "3",
                       "--workers", "1", "--results", str(tmp_path / "r.parquet"),
                       "--metric", "total_return_pct", "--top", "3", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best 3 of 6 by total_return_pct:" in out
    assert "exits.stop_loss_pct" in out and "PBO" in out


def test_bad_space_is_a_clear_error(capsys):
    assert main(["sweep", "--space", "rsi_low"]) == 2
    assert "--space must look like name=spec" in capsys.readouterr().err
    assert main(["sweep", "--space", "rsi_lo=1,2", "--symbols", "BTC/USDT"]) == 2
    assert "Did you mean 'rsi_low'" in capsys.readouterr().err


def test_portfolio_sweep_from_the_command_line(tmp_path, capsys):
    args = ["sweep", "--symbols", "BTC/USDT,ETH/USDT", "--start", "2021-01-01", "--end",
            "2021-01-16", "--space", "rules.cooldown=2h,8h", "--space", "sizing.slots=2,3",
            "--mode", "portfolio", "--initial-cash", "5000", "--workers", "1", "--blocks",
            "4", "--no-progress", "--results", str(tmp_path / "p.parquet")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4 configurations ran (4 computed now" in out
    # daily returns from Jan 1 to Jan 16 (the last exit, at the open of Jan 16, is marked
    # at the close of that candle)
    assert "PBO (CSCV, S=4, 6 combinations, 4 trials, 16 periods)" in out
    stored = pd.read_parquet(tmp_path / "p.parquet")
    assert (stored["initial_cash"] == 5000.0).all() and stored["final_equity"].nunique() == 4
    assert main(BASE[:9] + ["--initial-cash", "5000"]) == 2
    assert "--initial-cash applies to --mode portfolio" in capsys.readouterr().err
