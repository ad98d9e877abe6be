"""Run a test module's function in a new Python process (what a restart or another worker
computes): the values that must not depend on the process, such as ids."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def in_fresh_process(module: str, function: str) -> list[str]:
    """The words ``module.function()`` (a list of str) prints, imported under the same name
    in a new interpreter with this process's ``sys.path``."""
    code = (f"import sys, importlib; sys.path[:0] = {sys.path!r}; "
            f"print(' '.join(importlib.import_module({module!r}).{function}()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()
