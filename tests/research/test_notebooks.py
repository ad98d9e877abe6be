"""The notebooks in notebooks/ run top to bottom (nbclient) and are stored without outputs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["01_quickstart", "02_strategy_test_first", "03_factor_research"]
_PYTHON_NAMES = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}


def _usable(spec) -> bool:
    """A python3 spec that starts this interpreter (jupyter_client maps 'python' to it)."""
    exe = spec.argv[0] if spec.argv else ""
    if exe in _PYTHON_NAMES:
        return True
    try:
        return Path(exe).resolve() == Path(sys.executable).resolve()
    except OSError:
        return False


@pytest.fixture(scope="session")
def kernel_env(tmp_path_factory):
    """Environment in which the 'python3' kernel runs this interpreter.

    On a fresh machine where only ``pip install -e .[test]`` ran there may be no kernelspec at
    all, or one pointing at another Python; then one is installed into a temporary prefix with
    ``python -m ipykernel install --prefix`` and put first on JUPYTER_PATH.
    """
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        if _usable(spec):
            return {}
    except NoSuchKernel:
        pass
    prefix = tmp_path_factory.mktemp("kernel")
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix),
                    "--name", "python3"], check=True, capture_output=True)
    share = str(prefix / "share" / "jupyter")
    return {"JUPYTER_PATH": os.pathsep.join(filter(None, [share, os.environ.get("JUPYTER_PATH")]))}


def _run(name: str, workdir: Path, env: dict) -> nbformat.NotebookNode:
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = NotebookClient(book, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(workdir)}})
        client.execute(cwd=str(workdir))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return book


def _outputs(book, kind: str | None = None) -> list:
    return [o for c in book.cells if c.cell_type == "code" for o in c.outputs
            if kind is None or o.output_type == kind]


def _text(book) -> str:
    parts = []
    for out in _outputs(book):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out.data.get("text/plain", "") + out.data.get("text/html", ""))
    return "\n".join(parts)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_saved_without_outputs(name):
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(book)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert len(code) >= 6
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert book.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(name, kernel_env, tmp_path):
    start = time.perf_counter()
    book = _run(name, tmp_path, kernel_env)
    elapsed = time.perf_counter() - start
    assert _outputs(book, "error") == []
    text = _text(book)
    images = [o for o in _outputs(book) if "data" in o and "image/png" in o.data]
    if name == "01_quickstart":
        assert "Walk-forward backtest: macd_rsi_confluence" in text
        assert 'data-key="win_rate"' in text and "Data quality" in text
        # equity, trades, distribution, 2 breakdowns, portfolio account, comparison
        assert len(images) == 7
        assert "mode portfolio" in text and "Final equity" in text
        assert (tmp_path / "runs" / "quickstart" / "run.json").is_file()
        assert (tmp_path / "runs" / "quickstart_report.html").stat().st_size > 50_000
    elif name == "02_strategy_test_first":
        assert "check_strategy passed at 8 decision times" in text
        assert "LookaheadError:" in text and "walk_forward audit:" in text
        assert "Did you mean 'rsi_max'?" in text
        # §5: the custom feature written with compute() alone, its inferred declarations,
        # its centred-window twin caught, and the strategy that reads it run end to end
        assert "VolumeSpike(length=48) ('volume_spike_48',) lookback 48" in text
        assert "LookaheadError: " in text and "LeakyVolumeSpike" in text
        assert "trades, win rate" in text
        assert len(images) >= 1
    else:
        assert "rank_ic_t" in text and "score: macd_rsi_confluence" in text
        assert "IC decay" in text
        assert len(images) >= 1
    # steady state 3-9 s each; a cold numba cache (first CI run) compiles the kernels once
    assert elapsed < 120, f"{name} took {elapsed:.1f} s; keep notebooks fast"
