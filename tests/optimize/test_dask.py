"""The Dask path, for real: a LocalCluster of two worker processes (started once for the
module) gives the local executor's results, survives a killed worker, and serves the CLI."""

from __future__ import annotations

import logging
import os
import signal

import distributed
import pandas as pd
import pytest

from core_engine.cli import main
from core_engine.optimize import DaskExecutor, LocalExecutor, Sweep
from core_engine.risk import ExitRules, FixedFraction
from core_engine.strategies import MacdRsiConfluence
from core_engine.trading.bots import GridTrader

from .helpers import random_walk_panel


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR,
                                       host="127.0.0.1")
    with distributed.Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)
        yield client
    cluster.close()


@pytest.fixture(scope="module")
def panel():
    return random_walk_panel(n_symbols=5, n_candles=288 * 12, seed=21)


def comparable(result):
    return result.table.drop(columns="elapsed_s"), result.returns


def test_dask_gives_the_local_results(client, panel):
    space = {"rsi_low": [35, 45], "max_atr_pct": [0.6, 1.5], "exits.stop_loss_pct": [1.0, 2.0]}
    sweep = Sweep(MacdRsiConfluence, space, panel, exits=ExitRules(take_profit_pct=3.0))
    local = sweep.run(executor=LocalExecutor(1), progress=False)
    executor = DaskExecutor(client, target_seconds=0.0)
    seen = []
    remote = sweep.run(executor=executor, progress=False,
                       callback=lambda done, total: seen.append((done, total)))
    for a, b in zip(comparable(local), comparable(remote), strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert remote.n_trials == 8 and seen[-1] == (8, 8) and len(seen) >= 2  # streamed back
    assert executor.n_workers == 2
    assert "DaskExecutor('tcp://127.0.0.1:" in repr(executor)


def test_dask_gives_the_local_results_of_accounts(client, panel):
    """Portfolio mode (sizing and rules swept) and a trader's replays, on the cluster."""
    portfolio = Sweep(MacdRsiConfluence(max_atr_pct=2.0), {"rules.cooldown": ["1h", "6h"],
                                                           "sizing.pct": [20.0, 45.0]},
                      panel, mode="portfolio", sizing=FixedFraction(pct=10.0))
    grid = Sweep(GridTrader, {"symbol": ["S1/USDT"], "low": [90.0], "high": [110.0],
                              "levels": [6, 12], "spacing": ["arithmetic", "geometric"]},
                 panel, metric="total_return_pct")
    executor = DaskExecutor(client, target_seconds=0.0)
    for sweep in (portfolio, grid):
        local = sweep.run(executor=LocalExecutor(1), progress=False)
        remote = sweep.run(executor=executor, progress=False)
        traded = local.table["fills" if sweep.kind == "trader" else "trades"]
        assert local.n_trials == 4 and traded.gt(0).all()
        for a, b in zip(comparable(local), comparable(remote), strict=True):
            pd.testing.assert_frame_equal(a, b)


def test_a_killed_workers_tasks_are_recomputed(client, panel):
    space = {"rsi_low": [30, 35, 40, 45, 50], "momentum_weight": [0.2, 0.5, 0.8]}
    sweep = Sweep(MacdRsiConfluence(max_atr_pct=1.5), space, panel)
    local = sweep.run(executor=LocalExecutor(1), progress=False)
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker(done, total):
        if killed:
            return
        busy = [addr for addr, keys in client.processing().items() if keys]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])

    remote = sweep.run(executor=DaskExecutor(client, target_seconds=0.0), progress=False,
                       callback=kill_a_busy_worker)
    assert killed, "no worker was busy when the first result came back"
    for a, b in zip(comparable(local), comparable(remote), strict=True):
        pd.testing.assert_frame_equal(a, b)
    client.wait_for_workers(2, timeout=120)  # its nanny started a new one
    assert pids[killed[0]] not in client.run(os.getpid).values()


def test_cli_runs_on_a_dask_scheduler(client, tmp_path, capsys):
    address = client.scheduler.address
    args = ["sweep", "--symbols", "BTC/USDT,ETH/USDT", "--start", "2021-01-01", "--end",
            "2021-02-01", "--space", "rsi_low=35,45", "--dask-scheduler", address,
            "--results", str(tmp_path / "d.parquet"), "--blocks", "4", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"executor DaskExecutor('{address}')" in out
    assert "2 configurations ran (2 computed now" in out
