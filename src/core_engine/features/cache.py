"""In-memory feature cache and :func:`compute_features`, the engine's entry point.

A sweep over strategy parameters asks for the same indicators on the same data again and
again; :class:`FeatureCache` keeps computed outputs keyed by (feature class and its code,
parameters, panel fingerprint) with a least-recently-used policy under a byte cap. Nothing is written
to disk (DESIGN.md §3).
"""

from __future__ import annotations

import hashlib
import marshal
import types
import weakref
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np

from core_engine._config import keyword_checked
from core_engine._validate import check_instance, check_items
from core_engine.data.panel import Panel
from core_engine.errors import ConfigError, FeatureError
from core_engine.features.base import (
    FeatureComputer,
    KernelFeature,
    checked_panel_values,
    run_kernel_features,
)

__all__ = ["FeatureCache", "compute_features"]

_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fingerprint(panel: Panel) -> str:
    # Panels are immutable (read-only arrays), so one hash per panel object is enough;
    # hashing a 100-symbol year of 5m candles takes a fraction of a second.
    value = _FINGERPRINTS.get(panel)
    if value is None:
        value = panel.fingerprint()
        _FINGERPRINTS[panel] = value
    return value


def definition_digest(cls: type) -> str:
    """SHA-256 of the code and attributes of ``cls`` and its bases (what defines it)."""
    digest = hashlib.sha256()
    for klass in cls.__mro__[:-1]:  # without object
        digest.update(klass.__qualname__.encode())
        for name, value in sorted(vars(klass).items()):
            if name in ("__dict__", "__weakref__", "__doc__", "__module__", "_abc_impl",
                        "__signature__"):
                continue
            digest.update(name.encode())
            for part in _definition_parts(value):
                digest.update(part)
    return digest.hexdigest()


def _definition_parts(value: object) -> list[bytes]:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        return [p for f in (value.fget, value.fset, value.fdel) for p in _definition_parts(f)]
    code = getattr(value, "__code__", None)
    if isinstance(code, types.CodeType):
        hook = getattr(value, "_core_engine_hook", None)
        parts = [marshal.dumps(code)]
        return parts + (_definition_parts(hook) if hook is not None else [])
    return [repr(value).encode()]


@keyword_checked
class FeatureCache:
    """LRU cache of feature outputs in memory.

    Parameters
    ----------
    max_bytes : int, default 2 GiB
        Cap on the bytes held; the least recently used entries are evicted past it. An
        entry larger than the cap is not stored.

    Notes
    -----
    Cached arrays are returned read-only and shared between callers; copy before writing.

    Examples
    --------
    >>> cache = FeatureCache(max_bytes=100_000_000)
    >>> cache.hits, cache.misses, len(cache)
    (0, 0, 0)
    """

    def __init__(self, max_bytes: int = 2 * 1024**3) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ConfigError(
                f"The 'max_bytes' parameter of FeatureCache must be a positive integer. "
                f"Got {max_bytes!r}."
            )
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
        self._sizes: dict[tuple, int] = {}
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(feature: FeatureComputer, panel: Panel) -> tuple:
        """The cache key: (class, digest of its code, parameters, data fingerprint).

        The class object itself, not its name: a notebook cell re-run defines a new class
        of the same name, which must not be served the old one's values (the entry holds
        the class, so its identity is never reused while cached). The digest covers the
        code and attributes of the class and its bases, so a method replaced on the class
        misses too. A change to a module-level helper the feature calls is not seen: call
        :meth:`clear` after one.
        """
        cls = type(feature)
        return (cls, definition_digest(cls), repr(feature), _fingerprint(panel))

    def get(self, feature: FeatureComputer, panel: Panel) -> dict[str, np.ndarray] | None:
        """Return the cached outputs of ``feature`` on ``panel``, or None."""
        key = self.key(feature, panel)
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return dict(entry)

    def put(self, feature: FeatureComputer, panel: Panel, values: dict[str, np.ndarray]) -> None:
        """Store ``values`` (made read-only) for ``feature`` on ``panel``."""
        key = self.key(feature, panel)
        size = sum(int(v.nbytes) for v in values.values())
        if size > self.max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        for array in values.values():
            array.flags.writeable = False
        self._entries[key] = dict(values)
        self._sizes[key] = size
        self.nbytes += size
        while self.nbytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: tuple) -> None:
        del self._entries[key]
        self.nbytes -= self._sizes.pop(key)

    def clear(self) -> None:
        """Forget every entry (counters kept)."""
        self._entries.clear()
        self._sizes.clear()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (f"FeatureCache({len(self)} entries, {self.nbytes / 1e6:.1f} MB of "
                f"{self.max_bytes / 1e6:.1f} MB, {self.hits} hits, {self.misses} misses)")


def compute_features(
    computers: Iterable[FeatureComputer],
    panel: Panel,
    cache: FeatureCache | None = None,
    *,
    out: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Compute several features on a panel and merge their outputs.

    Kernel features not found in the cache run together in one parallel pass (over
    symbols and features), the others one by one.

    Parameters
    ----------
    computers : iterable of FeatureComputer
    panel : Panel
    cache : FeatureCache, optional
        Looked up first; new outputs are stored in it.
    out : dict of str to numpy.ndarray, optional
        Arrays to overwrite with the kernel features' outputs, typically the result of a
        previous call on a panel of the same shape: ``values = compute_features(fs, p2,
        out=values)`` reuses memory instead of allocating (see
        :func:`~core_engine.features.base.run_kernel_features`). Columns missing from
        ``out`` get fresh arrays. Not allowed with ``cache``, since the next call would
        overwrite cached values.

    Returns
    -------
    dict of str to numpy.ndarray
        Every column of every feature, each ``(T, N)`` float64 Fortran.

    Raises
    ------
    ConfigError
        If two features produce the same column name, or ``out`` is given with ``cache``.
    FeatureError
        If the panel has no rows.
    """
    computers = check_items(computers, "computers", "compute_features",
                            expected="a list of features such as [RSI(14)]")
    check_instance(cache, FeatureCache, "cache", "compute_features", optional=True,
                   expected="a FeatureCache")
    for feature in computers:
        if not isinstance(feature, FeatureComputer):
            raise ConfigError(
                f"compute_features expects FeatureComputer objects. Got {feature!r}."
            )
    if not isinstance(panel, Panel):
        raise FeatureError(f"compute_features expects a Panel. Got {type(panel).__name__}.")
    if panel.n_times == 0:
        raise FeatureError("compute_features cannot compute features on a panel with no rows.")
    if out is not None and cache is not None:
        raise ConfigError("compute_features: pass either 'out' or 'cache', not both.")
    check_instance(out, dict, "out", "compute_features", optional=True,
                   expected="a dict of column -> array (a previous result)")
    owners: dict[str, FeatureComputer] = {}
    for feature in computers:
        for column in feature.columns:
            if column in owners:
                raise ConfigError(
                    f"Two features produce the column {column!r}: {owners[column]!r} and "
                    f"{feature!r}. Drop one or change a parameter."
                )
            owners[column] = feature
    results: dict[int, dict[str, np.ndarray]] = {}
    pending: list[tuple[int, FeatureComputer]] = []
    for position, feature in enumerate(computers):
        hit = cache.get(feature, panel) if cache is not None else None
        if hit is not None:
            results[position] = hit
        else:
            pending.append((position, feature))
    kernels = [(p, f) for p, f in pending if isinstance(f, KernelFeature) and f.runs_kernel]
    if kernels:
        buffers = None
        if out is not None:
            shape = (panel.n_times, panel.n_symbols)
            buffers = [tuple(out[c] if c in out else np.empty(shape, order="F")
                             for c in f.columns) for _, f in kernels]
        outputs = run_kernel_features([f for _, f in kernels], panel.high, panel.low,
                                      panel.close, panel.volume, out=buffers)
        for (position, feature), arrays in zip(kernels, outputs, strict=True):
            results[position] = dict(zip(feature.columns, arrays, strict=True))
    batched = {p for p, _ in kernels}
    for position, feature in pending:
        if position not in batched:
            results[position] = checked_panel_values(feature, panel, feature.compute_panel(panel))
    if cache is not None:
        for position, feature in pending:
            cache.put(feature, panel, results[position])
    merged: dict[str, np.ndarray] = {}
    for position, feature in enumerate(computers):
        for column in feature.columns:
            merged[column] = results[position][column]
    return merged
