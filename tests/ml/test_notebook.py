"""notebooks/06_ml.ipynb runs top to bottom (nbclient) and is stored without outputs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "06_ml.ipynb"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """Environment in which the 'python3' kernel runs this interpreter (as in
    tests/research/test_notebooks.py: a kernelspec is installed into a temporary prefix when
    the machine has none, or one for another Python)."""
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        exe = spec.argv[0] if spec.argv else ""
        if exe.startswith("python") or Path(exe).resolve() == Path(sys.executable).resolve():
            return {}
    except (NoSuchKernel, OSError):
        pass
    prefix = tmp_path_factory.mktemp("kernel")
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix),
                    "--name", "python3"], check=True, capture_output=True)
    share = str(prefix / "share" / "jupyter")
    return {"JUPYTER_PATH": os.pathsep.join(filter(None, [share, os.environ.get("JUPYTER_PATH")]))}


def test_notebook_is_saved_without_outputs():
    book = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(book)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert len(code) >= 6
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert book.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(kernel_env, tmp_path, monkeypatch):
    for key, value in kernel_env.items():
        monkeypatch.setenv(key, value)
    book = nbformat.read(NOTEBOOK, as_version=4)
    start = time.perf_counter()
    NotebookClient(book, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute(cwd=str(tmp_path))
    elapsed = time.perf_counter() - start
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    text = "\n".join(o.text if o.output_type == "stream" else
                     o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "Triple-barrier outcomes:" in text and "share of profitable trades" in text
    assert "Walk-forward backtest: sklearn" in text and "mode portfolio" in text
    assert "lookahead audit: 2 decision times" in text
    assert re.search(r"Out of sample since 2021-03-04: \d+ trades, total return [+-]\d", text)
    assert "retrain_time" in text and "return_48_rank" in text
    final = re.search(r"random agent: final equity ([\d,.]+); walk_forward replay: ([\d,.]+)",
                      text)
    assert final and final.group(1) == final.group(2)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the strategy's result, the feature importances
    assert elapsed < 120, f"06_ml took {elapsed:.1f} s; keep notebooks fast"
