"""Sweeping a Trader class: each point replayed, the same Parquet table and resume as a
strategy sweep, on the bundled real sample."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from core_engine.data import Panel
from core_engine.data.providers import load_sample
from core_engine.errors import ConfigError
from core_engine.optimize import LocalExecutor, Sweep, WalkForward, walk_forward_optimize
from core_engine.trading import SimBroker, replay
from core_engine.trading.bots import GridTrader

INLINE = LocalExecutor(1)
RANGE = {"symbol": ["BTC/USDT"], "low": [45_000.0], "high": [60_000.0],
         "amount_per_level": [400.0]}
SPACE = {**RANGE, "levels": [10, 20], "spacing": ["arithmetic", "geometric"]}


@pytest.fixture(scope="module")
def panel():
    return Panel.from_frames(load_sample(["BTC/USDT", "ETH/USDT"], "2021-03-01",
                                         "2021-03-22"), "5m")


@pytest.fixture(scope="module")
def grid(panel):
    sweep = Sweep(GridTrader, SPACE, panel, metric="total_return_pct")
    return sweep, sweep.run(executor=INLINE, progress=False)


def flat(metrics: dict) -> dict:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            prefix = "exit" if key == "exit_reasons" else key
            out.update({f"{prefix}_{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def same(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def test_every_point_equals_its_replay(panel, grid):
    sweep, result = grid
    table = result.table
    assert sweep.kind == "trader" and sweep.mode == "replay"
    assert list(table[["levels", "spacing"]].itertuples(index=False, name=None)) == [
        (10, "arithmetic"), (10, "geometric"), (20, "arithmetic"), (20, "geometric")]
    assert result.n_trials == 4 and table["error"].isna().all()
    assert table["fills"].gt(20).all() and table["total_return_pct"].nunique() == 4
    for cid, row in table.iterrows():
        params = json.loads(row["params"])
        expected = replay(GridTrader(**params), panel)
        for key, value in flat(expected.metrics).items():
            assert same(value, row[key]), (cid, key, value, row[key])
        # daily returns, as replay's Sharpe reads them: each day's last mark over the
        # previous day's, the first over the initial cash
        closes = expected.equity.set_index("time")["equity"].resample("1D").last().dropna()
        previous = np.concatenate([[expected.metrics["initial_cash"]], closes.to_numpy()[:-1]])
        kept = result.returns[cid].dropna()
        np.testing.assert_array_equal(kept.index.asi8, closes.index.as_unit("ns").asi8)
        np.testing.assert_allclose(kept.to_numpy(), closes.to_numpy() / previous - 1.0,
                                   rtol=1e-13, atol=0)
        assert row["sharpe"] == pytest.approx(
            kept.mean() / kept.std(ddof=1) * math.sqrt(365.0), rel=1e-12)
    best = result.best_result()
    assert best.metrics["total_return_pct"] == table["total_return_pct"].max()


def test_a_class_and_an_instance_give_the_same_ids_and_the_file_resumes(panel, grid,
                                                                          tmp_path):
    sweep, result = grid
    path = tmp_path / "grid.parquet"
    first = Sweep(GridTrader, {**SPACE, "levels": [10]}, panel,
                  metric="total_return_pct").run(executor=INLINE, results=path, progress=False)
    assert (first.evaluated, first.skipped) == (2, 0)
    base = GridTrader(**{k: v[0] for k, v in RANGE.items()})
    again = Sweep(base, {"levels": [10, 20], "spacing": ["arithmetic", "geometric"]}, panel,
                  metric="total_return_pct").run(executor=INLINE, results=path, progress=False)
    assert (again.evaluated, again.skipped) == (2, 2)
    assert list(again.table.index) == list(result.table.index)
    dropped = ["elapsed_s", "params", *RANGE]  # the class sweep has the range in its space
    pd.testing.assert_frame_equal(again.table.drop(columns=dropped, errors="ignore"),
                                  result.table.drop(columns=dropped))
    stored = pd.read_parquet(path)
    assert sorted(stored["config_id"]) == sorted(result.table.index)


def test_the_broker_is_part_of_the_configuration(panel, grid):
    _, result = grid
    cheap = Sweep(GridTrader, {**SPACE, "levels": [10], "spacing": ["arithmetic"]}, panel,
                  broker=SimBroker(fee_bps=2.0), initial_cash=20_000.0)
    out = cheap.run(executor=INLINE, progress=False)
    cid = out.table.index[0]
    assert cid not in result.table.index  # other fees, other configuration
    expected = replay(GridTrader(**json.loads(out.table.loc[cid, "params"])), panel,
                      broker=SimBroker(fee_bps=2.0), initial_cash=20_000.0)
    assert out.table.loc[cid, "final_equity"] == expected.metrics["final_equity"]
    assert out.table.loc[cid, "fees_paid"] == expected.metrics["fees_paid"]
    assert out.table.loc[cid, "initial_cash"] == 20_000.0


def test_bad_trader_sweeps(panel):
    no_range = Sweep(GridTrader, {"levels": [10, 20]}, panel).run(executor=INLINE,
                                                                  progress=False)
    assert no_range.n_trials == 0
    assert no_range.table["error"].str.contains("needs its range").all()
    with pytest.raises(ConfigError, match="'level' is not a parameter.*replay argument.*Did you mean 'levels'"):
        Sweep(GridTrader, {"level": [10]}, panel)
    with pytest.raises(ConfigError, match="not a replay argument.*Did you mean 'initial_cash'"):
        Sweep(GridTrader, SPACE, panel, initial_csh=5.0)
    with pytest.raises(ConfigError, match="unbound SimBroker"):
        Sweep(GridTrader, SPACE, panel, broker=SimBroker(panel))
    sweep = Sweep(GridTrader, SPACE, panel)
    with pytest.raises(ConfigError, match="own clock"):
        walk_forward_optimize(sweep, WalkForward(train="5d", test="2d"))
