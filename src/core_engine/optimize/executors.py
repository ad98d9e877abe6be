"""Where a sweep's configurations are evaluated: local processes or a Dask cluster.

Both executors run the same work function on the same tasks and stream results back as
tasks finish, so a sweep gives identical results wherever it runs.

* :class:`LocalExecutor` (the default) — a process pool sized to the machine's cores. The
  panel is written once to a file in memory-backed storage (``/dev/shm``) that every worker
  maps read-only, so no task pickles the data. Workers start by ``forkserver`` where
  available (forked from a server that imported the library once), else ``spawn``, never by
  a plain ``fork``: a parent that already ran a parallel numba kernel has an OpenMP runtime
  that a forked child cannot use. Each worker runs numba on one thread (the pool has a
  process per core). With one worker everything runs in this process.
* :class:`DaskExecutor` — a ``dask.distributed`` client: the panel is scattered to every
  worker once; a worker that dies has its tasks recomputed elsewhere by the scheduler.

Task sizing is adaptive: the first tasks carry one unit (configurations that share their
picks) each; from their measured time per configuration the next tasks are sized to take at
least ``target_seconds`` (default 0.1 s), so scheduling overhead stays small, while no task
takes more than an equal share of what is left, so every worker keeps busy to the end.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import tempfile
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

import numpy as np
import pandas as pd

from core_engine._config import keyword_checked
from core_engine._validate import check_real
from core_engine.data.panel import FIELDS, Panel
from core_engine.errors import ConfigError
from core_engine.optimize.evaluate import SharedData, Task, Unit

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "import_distributed"]


def import_distributed() -> Any:
    """Import ``dask.distributed`` or raise a :class:`ConfigError` naming the extra."""
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(
            "DaskExecutor needs dask.distributed, which is not installed. Install it with "
            "pip install 'core-engine[dask]' (or pip install 'dask[distributed]')."
        ) from exc
    return distributed


class Executor:
    """Runs the work function over tasks built from units; see the module docstring.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`, around one or more
    :meth:`run` calls on the same data: a local process pool (and its shared memory) or a
    scattered panel then lives across them (an optuna search runs many small batches).
    Subclasses implement ``_open(fn, shared)`` returning a session with ``submit(task)``,
    ``wait(futures)`` (those finished), ``cancel(futures)`` and ``close()``.
    """

    n_workers: int = 1
    target_seconds: float = 0.1
    _session: Any = None
    _session_key: Any = None
    #: True inside ``with executor:`` — sweeps then leave the workers running for the next.
    held: bool = False

    def start(self, fn: Callable[[SharedData, Task], dict], shared: SharedData) -> None:
        """Open the workers for ``shared`` (kept open if already so for the same data)."""
        key = (fn, shared.fingerprint)
        if self._session is not None and self._session_key == key:
            return
        self.stop()
        self._session = self._open(fn, shared)
        self._session_key = key

    def stop(self) -> None:
        """Release the workers (and the shared memory) of :meth:`start`."""
        session, self._session, self._session_key = self._session, None, None
        if session is not None:
            session.close()

    def __enter__(self) -> Executor:
        self.held = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self.held = False
        self.stop()

    def run(self, units: Sequence[Unit], make_task: Callable[[tuple[Unit, ...]], Task]
            ) -> Iterator[dict]:
        """Yield each task's result as it finishes (completion order, not input order)."""
        session = self._session
        if session is None:
            raise ConfigError(f"{type(self).__name__}.run needs start(fn, shared) first.")
        queue = deque(u for u in units if len(u))
        inflight: dict[Any, int] = {}
        per_config: list[float] = []
        try:
            while queue or inflight:
                while queue and len(inflight) < 2 * max(self.n_workers, 1):
                    task = make_task(tuple(self._take(queue, per_config)))
                    inflight[session.submit(task)] = task.size
                for future in session.wait(list(inflight)):
                    inflight.pop(future)
                    result = future.result()
                    if result["configs"]:
                        per_config.append(result["elapsed"] / result["configs"])
                    yield result
        finally:
            if inflight:
                session.cancel(list(inflight))

    def _take(self, queue: deque, per_config: list[float]) -> list[Unit]:
        """The units of the next task: about ``target_seconds`` of work once the cost of a
        configuration is known (one unit before), at most an equal share of what is left."""
        remaining = sum(len(u) for u in queue)
        cap = max(1, math.ceil(remaining / max(self.n_workers, 1)))
        wanted = 1
        if per_config:
            cost = max(float(np.median(per_config)), 1e-9)
            wanted = max(1, math.ceil(self.target_seconds / cost))
        wanted = min(wanted, cap)
        chosen: list[Unit] = []
        size = 0
        while queue and size < wanted:
            unit = queue.popleft()
            room = max(cap - size, 1)
            if len(unit) > room:
                head, *rest = unit.split(room)
                for part in reversed(rest):
                    queue.appendleft(part)
                unit = head
            chosen.append(unit)
            size += len(unit)
        return chosen

    def _open(self, fn: Callable, shared: SharedData) -> Any:
        raise NotImplementedError


# ---------------------------------------------------------------------------- inline
class _InlineSession:
    def __init__(self, fn: Callable, shared: SharedData) -> None:
        self.fn, self.shared = fn, shared

    def submit(self, task: Task) -> Future:
        future: Future = Future()
        try:
            future.set_result(self.fn(self.shared, task))
        except BaseException as exc:  # re-raised by future.result() in run()
            future.set_exception(exc)
        return future

    def wait(self, futures: list) -> list:
        return futures[:1]

    def cancel(self, futures: list) -> None:
        """Inline tasks are done when submitted."""

    def close(self) -> None:
        """Nothing to release."""


# ---------------------------------------------------------------------------- local
_WORKER: dict[str, Any] = {}


def _panel_file(panel: Panel) -> str:
    """Write the five OHLCV arrays to one file in memory-backed storage (``/dev/shm`` where
    it exists) for the workers to map; return its path."""
    folder = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    handle, path = tempfile.mkstemp(prefix="core_engine_panel_", suffix=".f64", dir=folder)
    os.close(handle)
    # (field, symbol, time) in C order: each field's transpose is a Fortran (T, N) array,
    # the panel's own layout, so the workers map it without a copy
    shape = (len(FIELDS), panel.n_symbols, panel.n_times)
    block = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=shape)
    for k, name in enumerate(FIELDS):
        block[k] = getattr(panel, name).T
    block.flush()
    del block
    return path


def _attach(spec: dict[str, Any]) -> None:
    """Worker initializer: map the panel file read-only (no copy) and use one numba thread
    per process (the pool already has a process per core)."""
    import numba

    numba.set_num_threads(1)
    block = np.load(spec["path"], mmap_mode="r")
    fields = {name: block[k].T for k, name in enumerate(FIELDS)}
    panel = Panel(index=pd.DatetimeIndex(spec["index"], tz="UTC"), symbols=spec["symbols"],
                  timeframe=spec["timeframe"], **fields)
    _WORKER.update(block=block, shared=SharedData(panel, spec["fingerprint"]))


def _call_in_worker(fn: Callable, task: Task) -> dict:
    return fn(_WORKER["shared"], task)


class _PoolSession:
    def __init__(self, fn: Callable, shared: SharedData, n_workers: int, method: str) -> None:
        panel = shared.panel
        self.path = _panel_file(panel)
        spec = {"path": self.path, "index": panel.index.asi8.copy(), "symbols": panel.symbols,
                "timeframe": panel.timeframe, "fingerprint": shared.fingerprint}
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            # workers fork from a server that has imported the library once (not run it: a
            # process that ran a parallel numba kernel cannot fork safely)
            context.set_forkserver_preload(["core_engine.optimize.evaluate"])
        self.fn = fn
        self._remove = weakref.finalize(self, _remove_file, self.path)
        self.pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=context,
                                        initializer=_attach, initargs=(spec,))

    def submit(self, task: Task) -> Future:
        return self.pool.submit(_call_in_worker, self.fn, task)

    def wait(self, futures: list) -> list:
        return list(wait(futures, return_when=FIRST_COMPLETED).done)

    def cancel(self, futures: list) -> None:
        for future in futures:
            future.cancel()

    def close(self) -> None:
        try:
            self.pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self._remove()


def _remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@keyword_checked
class LocalExecutor(Executor):
    """A process pool on this machine (the default executor).

    Parameters
    ----------
    n_workers : int, optional
        Worker processes; default: the cores available to this process. With 1, tasks run
        inline in this process.
    target_seconds : float
        Smallest task duration to aim for once the cost of a configuration is known.
    start_method : str, optional
        ``"forkserver"`` (default where available) or ``"spawn"``.
    """

    def __init__(self, n_workers: int | None = None, *, target_seconds: float = 0.1,
                 start_method: str | None = None) -> None:
        if n_workers is None:
            n_workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                else (os.cpu_count() or 1)
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise ConfigError(f"The 'n_workers' parameter of LocalExecutor must be a positive "
                              f"integer. Got {n_workers!r}.")
        methods = multiprocessing.get_all_start_methods()
        method = start_method or ("forkserver" if "forkserver" in methods else "spawn")
        if method not in ("forkserver", "spawn") or method not in methods:
            raise ConfigError(
                f"The 'start_method' parameter of LocalExecutor must be one of "
                f"{[m for m in ('forkserver', 'spawn') if m in methods]}. Got {start_method!r}."
            )
        self.n_workers = n_workers
        self.target_seconds = check_real(target_seconds, "target_seconds", "LocalExecutor", low=0)
        self.start_method = method

    def _open(self, fn: Callable, shared: SharedData) -> Any:
        if self.n_workers == 1:
            return _InlineSession(fn, shared)
        return _PoolSession(fn, shared, self.n_workers, self.start_method)

    def __repr__(self) -> str:
        return f"LocalExecutor(n_workers={self.n_workers})"


# ---------------------------------------------------------------------------- dask
def _call_on_dask(fn: Callable, shared: SharedData, task: Task) -> dict:
    return fn(shared, task)


class _DaskSession:
    def __init__(self, executor: DaskExecutor, fn: Callable, shared: SharedData) -> None:
        self.client, self.fn = executor.client, fn
        self.distributed = import_distributed()
        self.shared = executor._scatter(shared)

    def submit(self, task: Task) -> Any:
        return self.client.submit(_call_on_dask, self.fn, self.shared, task, pure=False)

    def wait(self, futures: list) -> list:
        return list(self.distributed.wait(futures, return_when="FIRST_COMPLETED").done)

    def cancel(self, futures: list) -> None:
        self.client.cancel(futures)

    def close(self) -> None:
        """The scattered panel stays on the workers for the next sweep on the same data."""


@keyword_checked
class DaskExecutor(Executor):
    """Run a sweep on a ``dask.distributed`` cluster.

    Parameters
    ----------
    client : distributed.Client
        A connected client (``Client("tcp://scheduler:8786")`` or one of a
        ``LocalCluster``).
    target_seconds : float
        Smallest task duration to aim for (network and scheduling overhead per task are a
        few milliseconds).

    Notes
    -----
    The panel is scattered to every worker once per data set (``broadcast=True``) and
    reused by later sweeps on the same client. When a worker dies, the scheduler recomputes
    its tasks on the others (and on the worker its nanny restarts).
    """

    def __init__(self, client: Any, *, target_seconds: float = 0.1) -> None:
        distributed = import_distributed()
        if not isinstance(client, distributed.Client):
            raise ConfigError(f"DaskExecutor needs a distributed.Client. Got "
                              f"{type(client).__name__}.")
        self.client = client
        self.target_seconds = check_real(target_seconds, "target_seconds", "DaskExecutor", low=0)
        self._scattered: dict[str, Any] = {}

    @property
    def n_workers(self) -> int:  # type: ignore[override]
        return max(1, sum(int(n) for n in self.client.nthreads().values()))

    def _scatter(self, shared: SharedData) -> Any:
        future = self._scattered.get(shared.fingerprint)
        if future is None or future.status != "finished":
            future = self.client.scatter(shared, broadcast=True, hash=False)
            self._scattered = {shared.fingerprint: future}
        return future

    def _open(self, fn: Callable, shared: SharedData) -> Any:
        return _DaskSession(self, fn, shared)

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address!r})"
