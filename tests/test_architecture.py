"""The layering rules of DESIGN.md: no web framework anywhere, lower layers never import higher."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "core_engine"
LAYERS = ["data", "features", "strategies", "risk", "backtest", "trading", "live"]
FORBIDDEN_EVERYWHERE = ("django", "flask", "fastapi", "starlette")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_package_has_modules():
    assert len(_modules()) > 10


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_web_framework_and_one_way_layers(path):
    imports = _imports(path)
    for name in imports:
        assert name.split(".")[0] not in FORBIDDEN_EVERYWHERE, f"{path} imports {name}"
    parts = path.relative_to(PACKAGE).parts
    if parts[0] not in LAYERS:
        return
    higher = LAYERS[LAYERS.index(parts[0]) + 1:] + [
        name for name in ("live", "cli", "notebooks", "plots") if name != parts[0]]
    for name in imports:
        if name.startswith("core_engine."):
            layer = name.split(".")[1]
            assert layer not in higher, f"{path} (layer {parts[0]}) imports the higher layer {name}"
