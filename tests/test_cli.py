"""The core-engine command: ingest into a store, report it, backtest from it and save the run."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from core_engine.backtest import BacktestResult
from core_engine.cli import main
from core_engine.data.store import ParquetStore


def test_ingest_info_and_backtest_from_a_store(tmp_path, capsys):
    store = tmp_path / "store"
    args = ["ingest", "--provider", "sample", "--store", str(store), "--symbols",
            "BTC/USDT,ETH/USDT,SOL/USDT", "--start", "2021-03-01", "--end", "2021-03-15"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "12,042 candles fetched" in out  # 3 × 14 days × 288, less 3 × 18 in the 03-06 outage
    assert main(args) == 0 and "0 candles fetched" in capsys.readouterr().out
    assert ParquetStore(store).symbols("5m") == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]

    assert main(["data", "info", "--store", str(store)]) == 0
    info = capsys.readouterr().out
    assert "SOL/USDT" in info and "4014" in info

    run = tmp_path / "run"
    code = main(["backtest", "--store", str(store), "--strategy", "momentum_rank",
                 "--param", "length=12", "--fee-bps", "5", "--stop-loss-pct", "2", "--out", str(run)])
    assert code == 0
    summary = capsys.readouterr().out
    assert "momentum_rank" in summary and f"saved run: {run}" in summary
    saved = json.loads((run / "run.json").read_text())
    assert saved["config"]["fee_bps"] == 5 and saved["config"]["strategy"]["params"]["length"] == 12
    result = BacktestResult.load(run)
    assert len(result.trades) > 0
    assert set(result.trades["symbol"]) <= {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    assert result.trades["entry_time"].min() >= pd.Timestamp("2021-03-01", tz="UTC")


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["ingest", "--provider", "nobitx", "--store", str(tmp_path)]) == 2
    assert "Did you mean 'nobitex'" in capsys.readouterr().err
    assert main(["backtest", "--strategy", "macd_rsi_confluense", "--out", "-"]) == 2
    assert "macd_rsi_confluence" in capsys.readouterr().err
    assert main(["backtest", "--param", "rsi_lo=45", "--out", "-"]) == 2
    assert "rsi_low" in capsys.readouterr().err


def test_console_script_is_installed():
    done = subprocess.run([sys.executable, "-m", "core_engine.cli", "--version"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.startswith("core-engine 0.1.0")


def test_bad_param_syntax(capsys):
    assert main(["backtest", "--max-positions", "three"]) == 2
    err = capsys.readouterr().err
    assert "invalid int value: 'three'" in err and len(err.strip().splitlines()) == 1


def test_building_the_command_line_imports_no_live_runner_nor_broker():
    """W10 (issue 9 §4): every ``core-engine`` command builds the whole parser; registering
    the live subcommands must not import the live runner, brokers and journal (they load
    on first use), which cost a tenth of a second of every ``core-engine backtest``."""
    import subprocess
    import sys

    script = ("import sys; from core_engine.cli import build_parser; build_parser(); "
              "print(sorted(m for m in sys.modules if m.startswith('core_engine.live.')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = done.stdout.strip().splitlines()[-1]
    for module in ("runner", "ccxt_broker", "journal", "paper", "status"):
        assert f"core_engine.live.{module}'" not in loaded, loaded
