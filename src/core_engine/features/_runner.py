"""Running kernel features: (feature, symbol) tasks on worker threads.

Each task calls one dense kernel of :mod:`core_engine.features._kernels` on one symbol's
series: on its own rows when no candle is missing (no copy), on the block of present rows
when the missing ones are only before the first or after the last candle (a symbol listed
later or delisted: still no copy), else on the present candles gathered into a scratch
buffer and scattered back with NaN at the missing rows. State thus carries over a missing
candle, and the values at present candles are exactly those of the symbol's own frame
without the gaps.

The loop over tasks is Python on purpose: a numba driver compiles the code of every kernel
it can call (a driver branching on the feature kind compiled all fourteen, twice, on each
cold start: ~19 s of the first ``core-engine backtest``), whereas calling the kernels from
here compiles only those a run uses, once each. The kernels release the GIL, so the threads
run them in parallel; the Python part costs a few microseconds per task.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numba
import numpy as np

from core_engine.errors import ConfigError
from core_engine.features import _kernels as k


class KernelFeature(Protocol):
    """What the runner reads of a feature (``features.base.KernelFeature`` provides it;
    named structurally here so that the runner does not import the module that calls it)."""

    @property
    def _kind(self) -> int: ...

    @property
    def columns(self) -> tuple[str, ...]: ...

    def _kernel_params(self) -> tuple[tuple[int, ...], tuple[float, ...]]: ...

__all__ = ["run_kernel_features"]

_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0
_POOL_LOCK = threading.Lock()
# cost per row of each kernel kind (ms per million rows, measured; only balances threads)
_COST = np.array([1.6, 2.5, 1.9, 3.1, 2.5, 7.2, 10.0, 10.0, 4.0, 10.0, 1.0, 3.0, 5.0, 3.0])

# How each kind calls its dense kernel: (ints, floats, high, low, close, volume, outputs).
_Dense = Callable[[tuple, tuple, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                   Sequence[np.ndarray]], object]
_DENSE: dict[int, _Dense] = {
    k.SMA: lambda i, f, h, lo, c, v, o: k.sma_dense(c, i[0], o[0]),
    k.EMA: lambda i, f, h, lo, c, v, o: k.ema_dense(c, i[0], i[0] - 1, o[0]),
    k.RSI: lambda i, f, h, lo, c, v, o: k.rsi_dense(c, i[0], o[0]),
    k.MACD: lambda i, f, h, lo, c, v, o: k.macd_dense(c, i[0], i[1], i[2], *o),
    k.ATR: lambda i, f, h, lo, c, v, o: k.atr_dense(h, lo, c, i[0], o[0], o[1]),
    k.BBANDS: lambda i, f, h, lo, c, v, o: k.bbands_dense(c, i[0], f[0], *o),
    k.VOLATILITY: lambda i, f, h, lo, c, v, o: k.volatility_dense(c, i[0], o[0]),
    k.VOLUME_ZSCORE: lambda i, f, h, lo, c, v, o: k.volume_zscore_dense(
        v, i[0], o[0], np.empty((3, k._ZBLOCK))),
    k.VOLUME_TREND: lambda i, f, h, lo, c, v, o: k.volume_trend_dense(v, i[0], i[1], o[0]),
    k.TREND_SLOPE: lambda i, f, h, lo, c, v, o: k.trend_slope_dense(c, i[0], o[0]),
    k.MOMENTUM: lambda i, f, h, lo, c, v, o: k.momentum_dense(c, i[0], o[0]),
    k.HIGH_LOW: lambda i, f, h, lo, c, v, o: (k.rolling_max_dense(h, i[0], o[0]),
                                             k.rolling_min_dense(lo, i[0], o[1])),
    k.EMA_DISTANCE: lambda i, f, h, lo, c, v, o: k.ema_distance_dense(c, i[0], i[1], o[0]),
    k.QUOTE_VOLUME: lambda i, f, h, lo, c, v, o: k.quote_volume_dense(c, v, i[0], o[0]),
}


def _pool() -> ThreadPoolExecutor:
    """The worker threads, created lazily, and again in a forked child (a pool inherited
    through ``fork`` has no live threads: work submitted to it would never run)."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_PID != os.getpid():
            # numba.config sets its NUMBA_* attributes at runtime (through globals()).
            n_threads = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
            _POOL = ThreadPoolExecutor(max_workers=n_threads,
                                       thread_name_prefix="core_engine_features")
            _POOL_PID = os.getpid()
        return _POOL


def run_kernel_features(
    features: Iterable[KernelFeature],
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    *,
    out: Sequence[Sequence[np.ndarray]] | None = None,
) -> list[tuple[np.ndarray, ...]]:
    """Run kernel features on ``(T, N)`` arrays, in parallel over symbols and features.

    Parameters
    ----------
    features : iterable of KernelFeature
    high, low, close, volume : numpy.ndarray
        ``(T, N)`` float64 (Fortran order avoids a copy); a row with NaN close is a missing
        candle.
    out : sequence of sequences of numpy.ndarray, optional
        Buffers to reuse, shaped like the result (one ``(T, N)`` float64 Fortran array per
        output of each feature); every element is overwritten. Reusing buffers avoids the
        page faults of fresh allocations, which dominate on large panels.

    Returns
    -------
    list of tuple of numpy.ndarray
        Per feature, its outputs in :attr:`~FeatureComputer.columns` order, each a
        ``(T, N)`` float64 Fortran array. Each output is its own array, so keeping one
        column alive does not keep the others. Runs on ``numba.get_num_threads()``
        threads (the kernels release the GIL).
    """
    features = list(features)
    arrays = [_read_only(np.asfortranarray(a, dtype=np.float64)) for a in (high, low, close, volume)]
    shape = arrays[2].shape
    results = _output_buffers(features, shape, out)
    n_symbols = shape[1]
    if shape[0] == 0 or n_symbols == 0 or not features:
        return results
    fields_t = tuple(a.T for a in arrays)
    calls = []
    for feature, outputs in zip(features, results, strict=True):
        ints, floats = feature._kernel_params()
        # Python int and float: one compiled signature whatever numeric types were given
        calls.append((feature._kind, tuple(int(x) for x in ints),
                      tuple(float(x) for x in floats), tuple(o.T for o in outputs)))
    n_tasks = len(features) * n_symbols
    n_threads = min(numba.get_num_threads(), n_tasks)
    if n_threads <= 1:
        _run_share(calls, fields_t, [(j, list(range(len(calls)))) for j in range(n_symbols)])
        return results
    costs = np.repeat(_COST[[c[0] for c in calls]], n_symbols)
    shares = _balance(costs, n_threads, n_symbols)
    futures = [_pool().submit(_run_share, calls, fields_t, share) for share in shares[1:]]
    _run_share(calls, fields_t, shares[0])
    for future in futures:
        future.result()
    return results


def _output_buffers(features, shape, out) -> list[tuple[np.ndarray, ...]]:
    if out is None:
        return [tuple(np.empty(shape, order="F") for _ in f.columns) for f in features]
    if isinstance(out, np.ndarray) or len(out) != len(features):
        raise ConfigError(
            f"The 'out' buffers must be one sequence of arrays per feature ({len(features)} "
            f"features). Got {type(out).__name__} of length {len(out)}."
        )
    out = [tuple(o) for o in out]
    expected = [len(f.columns) for f in features]
    if [len(o) for o in out] != expected:
        raise ConfigError(
            f"The 'out' buffers must hold {expected} arrays per feature. "
            f"Got {[len(o) for o in out]}."
        )
    for outputs in out:
        for array in outputs:
            if (not isinstance(array, np.ndarray) or array.shape != shape
                    or array.dtype != np.float64 or not array.flags.f_contiguous
                    or not array.flags.writeable):
                raise ConfigError(
                    f"Each 'out' buffer must be a writeable float64 Fortran array of shape "
                    f"{shape}. Got {getattr(array, 'dtype', type(array).__name__)} "
                    f"{getattr(array, 'shape', '')}."
                )
    return out


def _run_share(calls, fields_t, share) -> None:
    """Run ``(symbol column, feature indexes)`` items on this thread, symbol by symbol: a
    symbol's series are read by each of its features while they are still in cache."""
    high_t, low_t, close_t, volume_t = fields_t
    n_rows = close_t.shape[1]
    scratch: _Scratch | None = None
    # The present rows of the symbol for what a kind reads, found once per mask (its
    # features share them): first with every field read, whose answer, when no candle is
    # missing, holds for every mask.
    scans: dict[tuple[int, int], tuple[int, int, int]] = {}
    for j, features in share:
        h, lo, c, v = high_t[j], low_t[j], close_t[j], volume_t[j]
        scans.clear()
        for f in features:
            kind, ints, floats, outs_t = calls[f]
            dense, reads = _DENSE[kind], int(k.READS[kind])
            outs = [o[j] for o in outs_t]
            count, first, last = _present(scans, j, reads, h, lo, c, v, n_rows)
            if count == n_rows:
                dense(ints, floats, h, lo, c, v, outs)
            elif count == 0:
                for o in outs:
                    o[:] = np.nan
            elif count == last - first + 1:  # one block of present candles: views
                rows = slice(first, last + 1)
                dense(ints, floats, h[rows], lo[rows], c[rows], v[rows], [o[rows] for o in outs])
                for o in outs:
                    o[:first] = np.nan
                    o[last + 1:] = np.nan
            else:
                if scratch is None:
                    scratch = _Scratch(n_rows)
                scratch.run(dense, ints, floats, reads, h, lo, c, v, outs, count)


_READS_ALL = k.READS_RANGE | k.READS_VOLUME


def _present(scans, j, reads, h, lo, c, v, n_rows) -> tuple[int, int, int]:
    """``k.scan_present(h, lo, c, v, reads)`` of symbol ``j``, remembered in ``scans``."""
    every = scans.get((j, _READS_ALL))
    if every is None:
        every = scans[(j, _READS_ALL)] = k.scan_present(h, lo, c, v, _READS_ALL)
    if every[0] == n_rows:  # no field missing anywhere: every mask finds every row
        return every
    found = scans.get((j, reads))
    if found is None:
        found = scans[(j, reads)] = k.scan_present(h, lo, c, v, reads)
    return found


class _Scratch:
    """Buffers of one thread for series with missing candles inside: the present candles
    are gathered into ``inputs`` (read-only for the kernels: their one signature) and the
    kernel writes ``outputs``, then the values are scattered back."""

    def __init__(self, n_rows: int) -> None:
        self.buffer = np.empty((8, n_rows))
        self.inputs = self.buffer[:4].view()
        self.inputs.flags.writeable = False

    def run(self, dense, ints, floats, reads, h, lo, c, v, outs, count) -> None:
        k.gather_present(h, lo, c, v, reads, self.buffer)
        compact = [self.buffer[4 + q, :count] for q in range(len(outs))]
        inputs = self.inputs[:, :count]
        dense(ints, floats, inputs[0], inputs[1], inputs[2], inputs[3], compact)
        for values, target in zip(compact, outs, strict=True):
            k.scatter_present(values, target, h, lo, c, v, reads)


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view: the kernels then see one array type whether the caller passed a
    panel's (read-only) fields or fresh arrays, and compile once."""
    if not array.flags.writeable:
        return array
    view = array.view()
    view.flags.writeable = False
    return view


def _balance(costs: np.ndarray, n_threads: int, n_symbols: int):
    """Longest-processing-time-first assignment of (feature, symbol) tasks to threads.

    Returns, per thread, a list of (symbol column, feature indexes) items in column order.
    """
    loads = np.zeros(n_threads)
    chosen: list[list[int]] = [[] for _ in range(n_threads)]
    for t in np.argsort(-costs, kind="stable"):
        n = int(np.argmin(loads))
        chosen[n].append(int(t))
        loads[n] += costs[t]
    shares = []
    for tasks in chosen:
        tasks_array = np.asarray(tasks, dtype=np.int64)
        features, columns = np.divmod(tasks_array, n_symbols)
        order = np.lexsort((features, columns))  # by column, then feature
        features, columns = features[order], columns[order]
        share = [(int(j), features[columns == j].tolist()) for j in np.unique(columns)]
        shares.append(share)
    return shares
