"""W10 of BENCHMARKS.md: cold start of ``core-engine backtest`` on the bundled sample.

* cold: a fresh process with an empty numba cache (``NUMBA_CACHE_DIR`` pointing at a new
  temporary directory, which numba then uses instead of any ``__pycache__`` cache), so every
  kernel the run needs is compiled, as on a fresh install;
* warm: the same command again with that cache (what every later run costs).

Each run is ``core-engine backtest --out -`` (the baseline strategy on the 9-symbol 5m
sample, nothing saved), timed around the subprocess with ``time.perf_counter``; cold and warm
are best of ``--repeat`` (each cold run with its own empty cache). The CPU seconds of the
child (user + system) are printed below them: on a shared machine they move less than the
wall time. With ``--profile`` one more
cold run reports the compile time of every numba dispatcher (numba's compile events;
exclusive of the dispatchers it calls), which shows where a cold start goes.

Bytecode: ``pip install`` compiles the package's ``.pyc`` files when it installs it, and an
editable install writes them on the first import, unless ``PYTHONDONTWRITEBYTECODE`` is set
(as in the sandbox this project is developed in). The script compiles core_engine's sources
first (``compileall``, as pip does), so neither run compiles Python source: without it every
run, warm ones included, compiled ~75 modules again (0.1-0.2 s). It says whether that
variable is set and how long a bare ``python -c pass`` takes here (interpreter start and
site hooks: a floor under every command).

Peer: vectorbt's first call (BENCHMARKS.md quotes 20.8 s on W3), timed the same way (fresh
cache, fresh process, ``Portfolio.from_signals`` of an SMA crossover on 10 × 10,000 candles)
when vectorbt is installed; otherwise the table says so.

    python benchmarks/bench_coldstart.py [--repeat 3] [--profile] [--python V/bin/python]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BACKTEST = ["backtest", "--out", "-"]

VECTORBT = """
import numpy as np, pandas as pd, vectorbt as vbt
rng = np.random.default_rng(0)
close = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.002, (10_000, 10)), axis=0)))
fast, slow = close.rolling(20).mean(), close.rolling(50).mean()
entries = (fast > slow) & (fast.shift(1) <= slow.shift(1))
exits = (fast < slow) & (fast.shift(1) >= slow.shift(1))
vbt.Portfolio.from_signals(close, entries, exits, fees=0.001).total_return()
"""

PROFILE = """
import sys, time
from collections import defaultdict
from numba.core import event

stack, exclusive = [], defaultdict(float)

class Timer(event.Listener):
    def on_start(self, ev):
        f = ev.data["dispatcher"].py_func
        stack.append([f"{f.__module__}.{f.__qualname__}", time.perf_counter(), 0.0])

    def on_end(self, ev):
        name, start, inner = stack.pop()
        spent = time.perf_counter() - start
        exclusive[name] += spent - inner
        if stack:
            stack[-1][2] += spent

event.register("numba:compile", Timer())
from core_engine.cli import main
main(sys.argv[1:])
for name, spent in sorted(exclusive.items(), key=lambda kv: -kv[1]):
    print(f"PROFILE {spent:.3f} {name}", file=sys.stderr)
"""


def core_engine_command(python: str) -> list[str]:
    """The console script beside ``python`` (as a user runs it), else ``-m``."""
    script = Path(python).with_name("core-engine")
    if script.exists():
        return [str(script)]
    return [python, "-m", "core_engine.cli"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(command: list[str], cache_dir: str) -> tuple[float, subprocess.CompletedProcess]:
    seconds, _, done = timed_cpu_run(command, cache_dir)
    return seconds, done


def timed_cpu_run(command: list[str], cache_dir: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds, CPU seconds (user + system of the child) and the finished process."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, cpu, done


def measure(command: list[str], repeat: int) -> tuple[float, float, float, float]:
    """Best cold and warm wall seconds, and the CPU seconds of those runs (best of each):
    every cold run starts from its own empty cache. On a machine shared with other work
    the CPU seconds move less than the wall time (the run is mostly one thread)."""
    colds, warms, cold_cpu, warm_cpu = [], [], [], []
    for _ in range(repeat):
        cache = tempfile.mkdtemp(prefix="numba-cold-")
        try:
            wall, cpu, _ = timed_cpu_run(command, cache)
            colds.append(wall)
            cold_cpu.append(cpu)
            wall, cpu, _ = timed_cpu_run(command, cache)
            warms.append(wall)
            warm_cpu.append(cpu)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return min(colds), min(warms), min(cold_cpu), min(warm_cpu)


def compile_bytecode(python: str) -> str:
    """Compile the ``.pyc`` files of the core_engine ``python`` imports, as ``pip install``
    does; say what was done and whether scipy is importable there."""
    probe = ("import core_engine, importlib.util as u, os; "
             "print(os.path.dirname(core_engine.__file__)); print(u.find_spec('scipy') is not None)")
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    package, scipy = found.stdout.split()
    ok = compileall.compile_dir(package, quiet=1, workers=1)
    flag = os.environ.get("PYTHONDONTWRITEBYTECODE")
    return (f"bytecode of {package} compiled first ({'ok' if ok else 'FAILED'}); "
            f"PYTHONDONTWRITEBYTECODE={flag!r}; scipy installed there: {scipy} (numba's "
            "first kernel imports it when it is: the test extra brings it, the base install not)")


def interpreter_start(python: str, repeat: int) -> float:
    """Best wall seconds of ``python -c pass`` (interpreter start and .pth hooks)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def profile(python: str) -> list[tuple[float, str]]:
    cache = tempfile.mkdtemp(prefix="numba-cold-")
    try:
        _, done = timed_run([python, "-c", PROFILE, *BACKTEST], cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("PROFILE "):
            _, seconds, name = line.split(" ", 2)
            rows.append((float(seconds), name))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true",
                        help="also report compile seconds per numba dispatcher (one cold run)")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter of the environment to time (e.g. a fresh venv "
                             "with the base install: python -m venv V && V/bin/pip install .)")
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    command = core_engine_command(args.python)
    print(f"command: NUMBA_CACHE_DIR=<empty temp dir> {' '.join(command + BACKTEST)}")
    print(f"best of {args.repeat}; load average before: {load} (2 cores shared: noisy)")
    print(compile_bytecode(args.python))
    cold, warm, cold_cpu, warm_cpu = measure(command + BACKTEST, args.repeat)
    bare = interpreter_start(args.python, args.repeat)
    rows = [("core_engine backtest (W10)", f"{cold:.2f}", f"{warm:.2f}", "cold <= 10, warm <= 1.5"),
            ("  its CPU seconds (user + system)", f"{cold_cpu:.2f}", f"{warm_cpu:.2f}", ""),
            ("  python -c pass (interpreter start)", "", f"{bare:.2f}", "a floor, included above")]
    if importlib.util.find_spec("vectorbt") is None:
        rows.append(("vectorbt first call (W3 crossover)", "not installed", "not installed",
                     "20.8 s quoted in BENCHMARKS.md"))
    else:
        v_cold, v_warm, _, _ = measure([sys.executable, "-c", VECTORBT], args.repeat)
        rows.append(("vectorbt first call (W3 crossover)", f"{v_cold:.2f}", f"{v_warm:.2f}", ""))
    print(f"\n{'run':36s} {'cold s':>14s} {'warm s':>14s}  target / note")
    for name, c, w, note in rows:
        print(f"{name:36s} {c:>14s} {w:>14s}  {note}")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.profile:
        spent = profile(args.python)
        print(f"\ncompile seconds per numba dispatcher, one cold run (total {sum(s for s, _ in spent):.2f}):")
        for seconds, name in spent:
            if seconds >= 0.05:
                print(f"  {seconds:6.2f}  {name}")


if __name__ == "__main__":
    main()
