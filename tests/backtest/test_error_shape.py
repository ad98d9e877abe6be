"""Issue 9 §2 "One error shape, everywhere", for results, exit rules and walk_forward: every
bad input is a CoreEngineError naming what was wrong, never a raw Python/pandas error."""

from __future__ import annotations

import json
import math
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core_engine.backtest import BacktestResult, walk_forward
from core_engine.cli import main
from core_engine.errors import ConfigError, CoreEngineError, StrategyError
from core_engine.risk import ExitRules, TopNEqual
from core_engine.strategies.base import Strategy

from .test_results import make_result

matplotlib.use("Agg")


class Last3(Strategy):
    name = "test_error_shape_last3"
    row_local = True

    def __init__(self, as_frame: str = "array"):
        self.as_frame = as_frame

    def score(self, features, panel):
        close = panel.close
        out = np.full(close.shape, np.nan)
        out[3:] = close[3:] / close[:-3] - 1.0
        if self.as_frame == "array":
            return out
        frame = pd.DataFrame(out, columns=list(panel.symbols), index=panel.index)
        if self.as_frame == "reversed":
            return frame[list(panel.symbols)[::-1]]
        if self.as_frame == "shuffled_rows":
            return frame.iloc[::-1]
        if self.as_frame == "renamed":
            return frame.rename(columns={panel.symbols[0]: "XXX/USDT"})
        return frame.set_axis(range(panel.n_symbols), axis=1)  # "positional"


# ---------------------------------------------------------------------------- save / load
def test_error_shape_save_refuses_to_replace_a_run(tmp_path):
    result = make_result()
    folder = result.save(tmp_path / "run")
    before = (folder / "run.json").read_text()
    with pytest.raises(ConfigError, match=r"already holds a saved run .*overwrite=True"):
        result.save(folder)
    assert (folder / "run.json").read_text() == before
    assert result.save(folder, overwrite=True) == folder
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="must be a folder.*which is a file"):
        result.save(tmp_path / "file")
    with pytest.raises(ConfigError, match="'overwrite' parameter"):
        result.save(tmp_path / "other", overwrite="yes")


def test_error_shape_cli_refuses_an_existing_out(tmp_path, capsys):
    args = ["backtest", "--symbols", "BTC/USDT", "--start", "2021-05-01", "--end",
            "2021-05-03", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a saved run" in err and "Traceback" not in err
    assert main([*args, "--overwrite"]) == 0


def _strict_json(text: str):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def test_error_shape_run_json_is_strict_and_round_trips_non_finite_values(tmp_path):
    result = make_result()
    metrics = result.metrics
    metrics.update(profit_factor=math.inf, sharpe=math.nan, worst=-math.inf)
    odd = BacktestResult(trades=result.trades, equity=result.equity, metrics=metrics,
                         config={**result.config, "fee_bps": np.float64(10.0)},
                         data_quality=result.data_quality)
    folder = odd.save(tmp_path / "run")
    payload = _strict_json((folder / "run.json").read_text())
    assert payload["metrics"]["profit_factor"] is None and payload["metrics"]["sharpe"] is None
    assert {"path": ["metrics", "profit_factor"], "value": "Infinity"} in payload["non_finite"]
    loaded = BacktestResult.load(folder).metrics
    assert loaded["profit_factor"] == math.inf and loaded["worst"] == -math.inf
    assert math.isnan(loaded["sharpe"])
    # a run saved by format 1 (bare NaN tokens) still loads
    legacy = dict(payload, format_version=1)
    legacy["metrics"]["sharpe"] = math.nan
    legacy.pop("non_finite")
    (folder / "run.json").write_text(json.dumps(legacy))
    assert math.isnan(BacktestResult.load(folder).metrics["sharpe"])


def _edit(folder, change):
    payload = json.loads((folder / "run.json").read_text())
    change(payload)
    (folder / "run.json").write_text(json.dumps(payload))


TAMPERING = {
    "garbled": (lambda f: (f / "run.json").write_text('{"format_version": 2, "config": {'),
                "is not valid JSON"),
    "binary": (lambda f: (f / "run.json").write_bytes(b"\xff\xfe\x00garbage"), "cannot be read"),
    "top level list": (lambda f: (f / "run.json").write_text("[1, 2]"),
                       "the top level must be a JSON object"),
    "no metrics": (lambda f: _edit(f, lambda p: p.pop("metrics")), "the key 'metrics' is missing"),
    "no trades count": (lambda f: _edit(f, lambda p: p["metrics"].pop("trades")),
                        "'metrics.trades' is missing"),
    "metric as text": (lambda f: _edit(f, lambda p: p["metrics"].update(win_rate="high")),
                       "'metrics.win_rate' must be a number"),
    "strategy as text": (lambda f: _edit(f, lambda p: p["config"].update(strategy="macd")),
                         "'config.strategy' must be an object"),
    "reason count": (lambda f: _edit(f, lambda p: p["metrics"]["exit_reasons"].update(
        stop_loss="2")), "'metrics.exit_reasons.stop_loss' must be an integer"),
    "quality count": (lambda f: _edit(f, lambda p: p["data_quality"].update(
        skipped_decision_times=[1])), "'data_quality.skipped_decision_times' must be an object"),
    "version": (lambda f: _edit(f, lambda p: p.update(format_version=99)),
                "'format_version' must be 1 or 2"),
    "non_finite path": (lambda f: _edit(f, lambda p: p.update(
        non_finite=[{"path": ["metrics", "nope"], "value": "NaN"}])), "points at no null value"),
    "trades garbage": (lambda f: (f / "trades.parquet").write_bytes(b"PAR1 not really"),
                       "trades.parquet' is not a readable Parquet table"),
    "equity column": (lambda f: pd.DataFrame({"decision_time": [1]}).to_parquet(
        f / "equity.parquet"), r"equity.parquet' is damaged: the column\(s\) \['equity'"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_error_shape_tampered_run_names_the_file_and_key(tmp_path, case):
    folder = make_result().save(tmp_path / "run")
    tamper, message = TAMPERING[case]
    tamper(folder)
    with pytest.raises(ConfigError, match=message) as info:
        BacktestResult.load(folder)
    assert str(folder) in str(info.value)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False,
                                                                       allow_infinity=False)
    | st.text(max_size=5), lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)


def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    yield path


@pytest.fixture(scope="module")
def saved_payload(tmp_path_factory):
    folder = make_result().save(tmp_path_factory.mktemp("hostile") / "run")
    return folder, json.loads((folder / "run.json").read_text())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), value=JSON_VALUES)
def test_error_shape_any_edit_of_run_json_loads_or_raises_a_core_engine_error(saved_payload,
                                                                             data, value):
    """Replace any value (or key) of run.json by any JSON: load either refuses with a
    CoreEngineError or gives a result whose text views all work."""
    folder, payload = saved_payload
    edited = json.loads(json.dumps(payload))
    paths = [p for p in _leaves(edited) if p]
    path = data.draw(st.sampled_from(paths))
    node = edited
    for key in path[:-1]:
        node = node[key]
    if isinstance(node, dict) and data.draw(st.booleans()):
        node.pop(path[-1])
    else:
        node[path[-1]] = value
    (folder / "run.json").write_text(json.dumps(edited))
    try:
        loaded = BacktestResult.load(folder)
    except CoreEngineError:
        return
    for view in (loaded.summary, loaded.to_markdown, loaded._repr_html_, lambda: repr(loaded),
                 loaded.metrics._repr_html_):
        try:
            view()
        except CoreEngineError:
            pass


# ---------------------------------------------------------------------------- zero decisions
def test_error_shape_zero_decision_times_summary_plot_report(real_may, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        empty = walk_forward(real_may.slice_rows(0, 30), Last3(), window="4h", shift="2h")
    assert empty.metrics["decisions"] == 0 and len(empty.equity) == 0
    assert "Decision times" in empty.summary()
    for kind, kwargs in (("equity", {}), ("returns", {}), ("breakdown", {}),
                         ("trades", {"symbol": "BTC/USDT"}), ("comparison", {"others": [empty]})):
        empty.plot(kind, **kwargs).savefig(tmp_path / f"{kind}.png")
    assert empty.report(tmp_path / "report.html").stat().st_size > 1000
    loaded = BacktestResult.load(empty.save(tmp_path / "run"))
    assert "Decision times" in loaded.summary() and loaded.plot().axes
    assert "<table" in loaded._repr_html_()


def test_error_shape_wrong_view_arguments_are_config_errors(tmp_path):
    result = make_result()
    with pytest.raises(ConfigError, match=r"Did you mean 'figsize'\?"):
        result.plot("equity", figsiz=(3, 3))
    with pytest.raises(ConfigError, match="'kind' parameter of plot"):
        result.plot(["equity"])
    with pytest.raises(ConfigError, match=r"Did you mean 'max_trades'\?"):
        result.report(tmp_path / "r.html", max_trade=3)
    with pytest.raises(ConfigError, match="'path' parameter of write_report"):
        result.report(None)
    with pytest.raises(ConfigError, match="'trades' argument of BacktestResult"):
        BacktestResult(trades=None, equity=result.equity, metrics={}, config={},
                       data_quality={})


# ---------------------------------------------------------------------------- configs, numbers
def test_error_shape_exit_rules_typos_and_types():
    with pytest.raises(ConfigError, match=r"ExitRules has no parameter 'stop_los_pct'; valid "
                                          r"parameters are \[.*\]. Did you mean 'stop_loss_pct'\?"):
        ExitRules(stop_los_pct=2.0)
    with pytest.raises(ConfigError, match="takes keyword arguments only"):
        ExitRules(2.0)  # type: ignore[misc]
    for bad in ("2", True, np.bool_(True), -1.0, np.nan, [2.0], 150.0):
        with pytest.raises(ConfigError, match="'stop_loss_pct' parameter of ExitRules"):
            ExitRules(stop_loss_pct=bad)
    with pytest.raises(ConfigError, match="'atr_length' parameter of ExitRules must be an integer"):
        ExitRules(stop_loss_atr=1.0, atr_length=14.0)
    rules = ExitRules(stop_loss_pct=np.float32(2.5), take_profit_atr=np.int64(3),
                      trailing_pct=np.float64(1.5), atr_length=np.int32(10))
    assert rules.to_dict()["stop_loss_pct"] == 2.5 and type(rules.stop_loss_pct) is float
    assert type(rules.take_profit_atr) is float and type(rules.atr_length) is int
    json.dumps(rules.to_dict(), allow_nan=False)
    assert rules == ExitRules(stop_loss_pct=2.5, take_profit_atr=3, trailing_pct=1.5,
                              atr_length=10)


def test_error_shape_numpy_scalars_in_walk_forward(real_may, tmp_path):
    plain = walk_forward(real_may, Last3(), fee_bps=10, slippage_bps=1, max_positions=2,
                         audit=0, max_exit_delay=3)
    numpy = walk_forward(real_may, Last3(), fee_bps=np.float32(10), slippage_bps=np.float64(1),
                         max_positions=np.int64(2), audit=np.int8(0),
                         max_exit_delay=np.uint16(3))
    pd.testing.assert_frame_equal(plain.trades, numpy.trades)
    assert numpy.config == plain.config
    numpy.save(tmp_path / "run")
    _strict_json((tmp_path / "run" / "run.json").read_text())


@pytest.mark.parametrize("form", ["reversed", "shuffled_rows"])
def test_error_shape_scores_frame_is_read_by_name_not_position(real_may, form):
    reference = walk_forward(real_may, Last3(as_frame="array"), max_positions=2)
    other = walk_forward(real_may, Last3(as_frame=form), max_positions=2)
    pd.testing.assert_frame_equal(other.trades, reference.trades)


@pytest.mark.parametrize("form, message", [
    ("renamed", r"missing \['BTC/USDT'\], unexpected \['XXX/USDT'\]"),
    ("positional", r"missing \['BTC/USDT', .*\], unexpected \[0, 1, 2, 3\]"),
])
def test_error_shape_scores_frame_with_other_names_is_refused(real_may, form, message):
    with pytest.raises(StrategyError, match=message):
        walk_forward(real_may, Last3(as_frame=form))


def test_error_shape_absurd_max_positions_is_clamped(real_may):
    n = real_may.n_symbols
    every = walk_forward(real_may, Last3(), max_positions=n)
    huge = walk_forward(real_may, Last3(), max_positions=10**12)
    same = huge.trades.drop(columns="weight")
    pd.testing.assert_frame_equal(same, every.trades.drop(columns="weight"))
    assert (huge.trades["weight"] == 1e-12).all()  # 1/n of the capital each, as asked
    by_allocator = walk_forward(real_may, Last3(), allocator=TopNEqual(n=10**12))
    pd.testing.assert_frame_equal(by_allocator.trades, huge.trades)
