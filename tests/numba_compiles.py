"""What numba compiles when some code runs in a fresh process with an empty cache.

``compiled_in_fresh_process(body, cache_dir)`` runs ``body`` (Python source) in a new
interpreter with ``NUMBA_CACHE_DIR`` set to an empty folder and returns the qualified names of
every function numba compiled meanwhile, in order (from numba's ``numba:compile`` events).
The cold-start tests use it to keep costly machinery out of the kernels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

_LISTENER = """
import json
from numba.core import event

compiled = []


class Listener(event.Listener):
    def on_start(self, ev):
        f = ev.data["dispatcher"].py_func
        compiled.append(f"{f.__module__}.{f.__qualname__}")

    def on_end(self, ev):
        pass


event.register("numba:compile", Listener())
"""


def compiled_in_fresh_process(body: str, cache_dir: str) -> list[str]:
    script = _LISTENER + textwrap.dedent(body) + "\nprint(json.dumps(compiled))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir)))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
