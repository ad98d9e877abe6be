"""The layering rules of DESIGN.md: no web framework anywhere, lower layers never import
higher ones (not even inside a function), and no import cycle between modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "core_engine"
#: The one-way layers, lowest first (DESIGN.md).
LAYERS = ["data", "features", "strategies", "risk", "backtest", "trading", "live"]
#: Packages on top of the layers: they may import any layer, no layer may import them.
ON_TOP = ["research", "optimize", "ml", "cli", "notebooks"]
#: Modules every layer may import; they import no layer themselves.
FOUNDATION = ["errors", "_config", "progress", "_scrub"]
FORBIDDEN_EVERYWHERE = ("django", "flask", "fastapi", "starlette")
#: The one sanctioned upward reference: plugin modules a result loads by name on first use
#: of result.plot()/report() (core_engine.backtest.views, the pandas plotting-backend way).
VIEW_PLUGIN_MODULE = "backtest/views.py"
IMPORT_FUNCTIONS = ("import_module", "__import__")
MODULE_NAME = re.compile(r"core_engine(\.\w+)+(:\w+)?")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, *, by_name: bool = True, source: str | None = None) -> set[str]:
    """Every module the file imports: import statements anywhere (function bodies included,
    relative imports resolved) and, with ``by_name``, every string naming a core_engine
    module (``importlib.import_module("core_engine.x")``, plugin tables). ``source``
    replaces the file's text (for testing the test)."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[:len(package) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                names.add(f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base)
        elif by_name and isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and MODULE_NAME.fullmatch(node.value):
            names.add(node.value.partition(":")[0])
    if by_name and str(path.relative_to(PACKAGE)) == VIEW_PLUGIN_MODULE:
        names -= {"core_engine.research"}  # the sanctioned plugin table, pinned below
    return names


def _called_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _is_module(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "core_engine":
        return False
    path = PACKAGE.joinpath(*parts[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0].removesuffix(".py")


def test_package_has_modules():
    assert len(_modules()) > 10


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_web_framework_and_one_way_layers(path):
    imports = _imports(path)
    for name in imports:
        assert name.split(".")[0] not in FORBIDDEN_EVERYWHERE, f"{path} imports {name}"
    layer = _layer(path)
    if layer in LAYERS:
        higher = LAYERS[LAYERS.index(layer) + 1:] + ON_TOP
    elif layer in FOUNDATION:
        higher = LAYERS + ON_TOP
    else:
        return
    for name in imports:
        if name.startswith("core_engine."):
            target = name.split(".")[1]
            assert target not in higher, \
                f"{path} (layer {layer}) imports the higher layer {name}"


def test_the_view_plugin_table_is_the_only_upward_name():
    """backtest/views.py names the research package as the plugin that provides plot() and
    report(); the layer test above ignores that one string and nothing else."""
    from core_engine.backtest.views import VIEW_PLUGINS

    assert VIEW_PLUGINS == ("core_engine.research",)
    names = _imports(PACKAGE / VIEW_PLUGIN_MODULE, by_name=False)
    assert not any(n.startswith(("core_engine.research", "core_engine.trading")) for n in names)


def _import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in _modules():
        name = _module_name(path)
        graph[name] = {m for m in _imports(path, by_name=False) if _is_module(m) and m != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_modules():
    """Import statements anywhere in a file count (a function-level import is a cycle too,
    only a late one). A package's own ``__init__`` is not an edge of ``from pkg import
    submodule``; a look-up by name at run time (the strategy registry loading its
    built-ins, the view plugins) is a registration, not an edge."""
    assert _cycles(_import_graph()) == []


def test_the_checks_see_function_level_and_by_name_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    text = ("def f():\n    from core_engine.research.report import x\n"
            "def g():\n    return importlib.import_module('core_engine.research.plots')\n"
            "from .engine import walk_forward\n")
    names = _imports(PACKAGE / "backtest" / "results.py", source=text)
    assert {"core_engine.research.report", "core_engine.research.plots",
            "core_engine.backtest.engine"} <= names


def test_results_work_without_the_research_package(monkeypatch, tmp_path):
    """With core_engine.research unimportable, a result still saves, loads and shows itself;
    plot() and report() say what is missing."""
    import sys

    import numpy as np
    import pandas as pd

    from core_engine.backtest import BacktestResult, views
    from core_engine.errors import ConfigError

    for name in [m for m in sys.modules if m.startswith("core_engine.research")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "core_engine.research", None)
    monkeypatch.setattr(views, "_VIEWS", {})
    t = pd.Timestamp("2021-01-01", tz="UTC")
    trades = pd.DataFrame({"symbol": ["A"], "decision_time": [t], "entry_time": [t],
                           "exit_time": [t], "entry_price": [1.0], "exit_price": [1.1],
                           "weight": [1.0], "return_pct": [10.0], "exit_reason": ["window_end"]})
    equity = pd.DataFrame({"decision_time": [t], "equity": [1.1], "drawdown_pct": [0.0]})
    result = BacktestResult(trades=trades, equity=equity,
                            metrics={"trades": 1, "decisions": 1, "sharpe": np.nan},
                            config={"strategy": {"name": "x"}, "mode": "slices"},
                            data_quality={})
    loaded = BacktestResult.load(result.save(tmp_path / "run"))
    assert "Trades" in loaded.summary() and "<table" in loaded._repr_html_()
    assert "<table" in loaded.metrics._repr_html_() and loaded.to_markdown()
    for call in (loaded.plot, lambda: loaded.report(tmp_path / "r.html")):
        with pytest.raises(ConfigError, match="needs the core_engine.research package"):
            call()


def test_real_candles_live_in_one_folder():
    """Every real-data file of the suite is in tests/data_files, whose README describes it
    (the exchanges' recorded responses under tests/data/providers/recordings are not candles
    files but protocol fixtures)."""
    tests = Path(__file__).parent
    parquet = sorted(p.relative_to(tests).as_posix() for p in tests.rglob("*.parquet"))
    assert parquet and all(p.startswith("data_files/") for p in parquet), parquet
    readme = (tests / "data_files" / "README.md").read_text()
    for path in parquet:
        base, _, rest = Path(path).stem.partition("_")
        assert base in readme and rest.split("-", 1)[-1].split("-")[-1] in readme, path


#: What only the ``ml`` extra installs (scikit-learn, and scipy with it): no module outside
#: core_engine.ml may import it, so the base install works and numba's BLAS probe does not
#: import scipy on every command (~0.25 s of W10).
ML_EXTRA_ONLY = ("sklearn", "scipy")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_ml_package_imports_what_the_ml_extra_installs(path):
    if _layer(path) == "ml":
        return
    for name in _imports(path):
        assert name.split(".")[0] not in ML_EXTRA_ONLY, \
            f"{path} imports {name}, which only the 'ml' extra installs"


def test_the_base_install_backtests_without_scikit_learn_and_scipy():
    """The README's first command (``pip install .`` then ``core-engine backtest``) in an
    environment where neither scikit-learn nor scipy can be imported."""
    import subprocess
    import sys

    script = ("import sys; sys.modules['scipy'] = None; sys.modules['sklearn'] = None; "
              "sys.argv = ['core-engine', 'backtest', '--out', '-']; "
              "from core_engine.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Walk-forward backtest" in done.stdout
