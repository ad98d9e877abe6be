"""notebooks/04_bots.ipynb runs top to bottom and is stored without outputs (the helpers and
the kernel fixture of tests/research/test_notebooks.py; the lead may fold this notebook into
its NAMES list)."""

from __future__ import annotations

import nbformat
import pytest

from tests.research.test_notebooks import (
    NOTEBOOKS,
    _outputs,
    _run,
    _text,
    kernel_env,  # noqa: F401  (the fixture)
)

NAME = "04_bots"


def test_bots_notebook_is_saved_without_outputs():
    book = nbformat.read(NOTEBOOKS / f"{NAME}.ipynb", as_version=4)
    nbformat.validate(book)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert len(code) >= 6
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert book.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.slow
def test_bots_notebook_runs_top_to_bottom(kernel_env, tmp_path):  # noqa: F811
    book = _run(NAME, tmp_path, kernel_env)
    assert _outputs(book, "error") == []
    text = _text(book)
    for bot in ("grid", "dca", "cycle", "triggers", "scalp", "breakout"):
        assert f"\n{bot}" in text or f">{bot}<" in text
    assert "fee drag % pts" in text
    assert "it breaks even at 62.5% with 10 bps" in text
    assert "grid profit" in text and "= account change" in text
    images = [o for o in _outputs(book) if "data" in o and "image/png" in o.data]
    assert len(images) == 3   # equity, orders on the price charts, fee drag
