"""The FeatureComputer contract and the engine that runs numba-backed features.

A feature ("analyst agent", DESIGN.md §3) turns candles into numeric columns:

* parameters are keyword arguments stored unchanged (``RSI(length=14)``), readable with
  :meth:`FeatureComputer.get_params`; an unknown parameter raises
  :class:`~core_engine.errors.ConfigError` with a did-you-mean hint;
* :attr:`~FeatureComputer.lookback` is the warm-up: on gap-free data every row before it is
  NaN (for the TA-Lib indicators it equals TA-Lib's lookback);
* :meth:`~FeatureComputer.compute` takes one symbol's candle frame and returns a DataFrame
  indexed by the candles' timestamps with :attr:`~FeatureComputer.columns`;
* :meth:`~FeatureComputer.compute_panel` takes a :class:`~core_engine.data.panel.Panel` and
  returns ``{column: (T, N) float64 Fortran array}``, the engine's path.

The value at row ``i`` uses rows ``<= i`` only. On a panel a missing candle is a NaN row;
features skip it (their state carries over, the output at that row is NaN), so at every
present candle the panel value equals :meth:`compute` on the symbol's own frame without the
missing rows.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from core_engine.data.candles import validate_candles
from core_engine.data.panel import Panel
from core_engine.data.timeframes import format_timeframe
from core_engine.errors import ConfigError, CoreEngineError, FeatureError
from core_engine.features._contract import (
    PROBE_ROWS,
    check_columns,
    check_lookback,
    conform,
    first_value_row,
    is_gap_free,
    probe_candles,
)
from core_engine.features._runner import run_kernel_features

__all__ = ["FeatureComputer", "KernelFeature", "checked_panel_values", "run_kernel_features"]


class FeatureComputer:
    """Base class of every feature: subclass it and write :meth:`compute`.

    >>> import pandas as pd
    >>> class RangePct(FeatureComputer):
    ...     '''High-low range of each candle, in percent of its close.'''
    ...     name = "range_pct"
    ...
    ...     def compute(self, candles):
    ...         spread = candles["high"] - candles["low"]
    ...         return pd.DataFrame({"range_pct": 100 * spread / candles["close"]})
    >>> RangePct().columns, RangePct().lookback
    (('range_pct',), 0)

    That is enough: :meth:`compute` receives one symbol's validated candle frame (never
    empty) and returns one row per candle; the base class checks and normalises what it
    returns (float64 columns indexed by the candles' timestamps), derives
    :meth:`compute_panel` (missing candles skipped), and infers :attr:`columns` and
    :attr:`lookback` by running it once on a 600-candle synthetic probe when they are not
    declared. Declare them (class attributes, or properties when they depend on the
    parameters) to state them explicitly; they are then checked against what ``compute``
    returns.

    Parameters are declared in ``defaults`` (ordered ``{name: default}``), given by keyword
    or by position, stored unchanged as attributes (``self.length``) and validated by
    overriding :meth:`_check_params`::

        class VolumeSpike(FeatureComputer):
            name = "volume_spike"
            defaults = {"length": 20}

            @property
            def columns(self):
                return (f"volume_spike_{self.length}",)

            @property
            def lookback(self):
                return self.length - 1

            def compute(self, candles):
                volume = candles["volume"]
                mean = volume.rolling(self.length).mean()
                return pd.DataFrame({self.columns[0]: volume / mean})

    A feature may instead implement :meth:`compute_panel` (all symbols at once); then
    :meth:`compute` is derived from it. The built-ins implement ``_compute_frame`` or
    ``compute_panel`` with ``_defaults``; they go through the same checks.
    """

    name: ClassVar[str] = "feature"
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "defaults" in cls.__dict__:
            defaults = cls.__dict__["defaults"]
            if not isinstance(defaults, dict) or not all(isinstance(k, str) for k in defaults):
                raise ConfigError(
                    f"The 'defaults' of {cls.__name__} must be a dict of parameter name -> "
                    f"default value, such as {{'length': 20}}. Got {defaults!r}."
                )
            cls._defaults = dict(defaults)
        clash = sorted(k for k in cls._defaults if hasattr(FeatureComputer, k))
        if clash:
            raise TypeError(
                f"{cls.__name__}: parameter name(s) {clash} clash with FeatureComputer "
                "attributes; choose other names."
            )
        if "__init__" not in cls.__dict__:
            cls.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
                [inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=v)
                 for k, v in cls._defaults.items()]
            )
        for attribute, check in (("columns", check_columns), ("lookback", check_lookback)):
            declared = cls.__dict__.get(attribute)
            if declared is not None and not isinstance(declared, property):
                check(declared, cls.__name__)  # a class attribute: wrong already
        hook = cls.__dict__.get("compute")
        if hook is not None and getattr(hook, "_core_engine_hook", None) is None:
            cls.compute = _checked_compute(hook)  # type: ignore[method-assign]

    @classmethod
    def _compute_hook(cls) -> Callable[..., Any] | None:
        """The user's own ``compute(self, candles)`` when the class overrides it, else None."""
        compute = cls.compute
        if compute is FeatureComputer.compute:
            return None
        return getattr(compute, "_core_engine_hook", compute)

    def __init__(self, *args: Any, **params: Any) -> None:
        names = list(self._defaults)
        if len(args) > len(names):
            raise ConfigError(
                f"{type(self).__name__} takes at most {len(names)} positional parameter(s) "
                f"({', '.join(names) or 'none'}). Got {len(args)}."
            )
        values = dict(self._defaults)
        for key, value in zip(names, args, strict=False):
            values[key] = value
        for key, value in params.items():
            if key not in self._defaults:
                raise ConfigError(_unknown_parameter_message(type(self).__name__, key, names))
            if key in names[: len(args)]:
                raise ConfigError(
                    f"{type(self).__name__} got the parameter {key!r} twice (by position "
                    "and by keyword)."
                )
            values[key] = value
        self._params = values
        for key, value in values.items():
            setattr(self, key, value)
        self._check_params()

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        """Validate parameters; raise ConfigError naming the parameter."""

    def _require_fast_below_slow(self, minimum: int = 1) -> tuple[int, int]:
        """Check integer ``fast`` and ``slow`` parameters with ``fast < slow``."""
        fast = self._require_int("fast", minimum)
        slow = self._require_int("slow", minimum)
        if fast >= slow:
            raise ConfigError(
                f"The 'fast' parameter of {type(self).__name__} must be smaller than 'slow'. "
                f"Got fast={fast}, slow={slow}."
            )
        return fast, slow

    def _require_int(self, key: str, minimum: int) -> int:
        value = self._params[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ConfigError(
                f"The '{key}' parameter of {type(self).__name__} must be an integer "
                f">= {minimum}. Got {value!r}."
            )
        return int(value)

    def _require_float(self, key: str, *, positive: bool = True) -> float:
        value = self._params[key]
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        if not ok or not np.isfinite(value) or (positive and value <= 0):
            raise ConfigError(
                f"The '{key}' parameter of {type(self).__name__} must be a finite "
                f"{'positive ' if positive else ''}number. Got {value!r}."
            )
        return float(value)

    def get_params(self) -> dict[str, Any]:
        """Return the parameters as given (a new dict)."""
        return dict(self._params)

    def clone(self, **changes: Any) -> FeatureComputer:
        """Return a new feature of the same class with some parameters changed."""
        params = self.get_params()
        params.update(changes)
        return type(self)(**params)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and repr(other) == repr(self)

    def __hash__(self) -> int:
        return hash((type(self).__qualname__, repr(self)))

    # ------------------------------------------------------------------ contract
    @property
    def lookback(self) -> int:
        """Warm-up candles: on gap-free data, rows before this index are NaN.

        Inferred, when a subclass does not declare it, as the first row with a value on a
        600-candle gap-free probe.
        """
        return self._inferred()[1]

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the output columns, in order (inferred from a probe when not declared)."""
        return self._inferred()[0]

    def compute(self, candles: pd.DataFrame) -> pd.DataFrame:
        """Compute the feature on one symbol's candle frame.

        Parameters
        ----------
        candles : pandas.DataFrame
            A candle frame (``timestamp, open, high, low, close, volume``). Gaps in the
            timestamps are allowed: the feature runs over the candles present.

        Returns
        -------
        pandas.DataFrame
            Indexed by the candles' timestamps (``timestamp``), columns :attr:`columns`,
            float64. Rows before :attr:`lookback` are NaN; a frame shorter than
            ``lookback + 1`` rows gives all-NaN rows (not an error).

        Raises
        ------
        DataValidationError
            If ``candles`` breaks the candle contract (e.g. a NaN price).
        FeatureError
            If ``candles`` has no rows, or the feature's output breaks the contract (wrong
            rows, other columns than declared, non-numbers, a value before the declared
            lookback).
        """
        return _run_checked(self, candles, self._compute_frame)

    def _compute_frame(self, candles: pd.DataFrame) -> pd.DataFrame:
        """Compute on a validated, non-empty frame (default: through a one-symbol panel)."""
        if type(self).compute_panel is FeatureComputer.compute_panel:
            raise FeatureError(
                f"{type(self).__name__} must implement compute(self, candles) returning a "
                "DataFrame with one row per candle (or compute_panel(self, panel))."
            )
        panel = Panel.from_frames({"_": candles}, _frame_timeframe(candles), validate=False)
        values = self.compute_panel(panel)
        rows = _frame_rows(candles, panel)
        return pd.DataFrame({c: np.asarray(values[c])[rows, 0] for c in values})

    def compute_panel(self, panel: Panel) -> dict[str, np.ndarray]:
        """Compute the feature for every symbol of ``panel``.

        The default runs :meth:`compute` on each symbol's candles without its missing rows,
        so at every present candle the value equals :meth:`compute` on that frame.

        Returns
        -------
        dict of str to numpy.ndarray
            Keys :attr:`columns`; each a ``(T, N)`` float64 Fortran array, NaN at missing
            candles and during each symbol's warm-up.

        Raises
        ------
        FeatureError
            If the panel has no rows, or ``compute`` fails on a symbol (named).
        """
        _check_panel(self, panel)
        if self._compute_hook() is None and type(self)._compute_frame is FeatureComputer._compute_frame:
            raise FeatureError(
                f"{type(self).__name__} must implement compute(self, candles) returning a "
                "DataFrame with one row per candle (or compute_panel(self, panel))."
            )
        columns = self.columns
        out = {c: np.full((panel.n_times, panel.n_symbols), np.nan, order="F") for c in columns}
        present = panel.present
        for j, symbol in enumerate(panel.symbols):
            rows = np.flatnonzero(present[:, j])
            if rows.size == 0:
                continue
            frame = _run_checked(self, panel.frame(symbol), self._own_compute(), symbol=symbol)
            for c in columns:
                out[c][rows, j] = frame[c].to_numpy()
        return out

    # ------------------------------------------------------------------ checks
    def _own_compute(self) -> Callable[[pd.DataFrame], Any]:
        """The hook that computes one validated frame: the user's compute or _compute_frame."""
        hook = self._compute_hook()
        if hook is None:
            return self._compute_frame
        return lambda candles: hook(self, candles)

    def _gap_free(self, candles: pd.DataFrame) -> bool:
        """True when ``candles`` have no gap in the unit :attr:`lookback` counts (rows:
        evenly spaced); where it holds, rows before the lookback must be NaN."""
        return is_gap_free(candles)

    def _declared(self, attribute: str) -> bool:
        return getattr(type(self), attribute) is not getattr(FeatureComputer, attribute)

    def _inferred(self) -> tuple[tuple[str, ...], int]:
        """(columns, lookback) found by running the feature on the synthetic probe."""
        cached = self.__dict__.get("_probe_result")
        if cached is not None:
            return cached
        probe = probe_candles()
        columns = self.columns if self._declared("columns") else None
        raw = _call_hook(self, self._own_compute(), probe.copy(), None)
        frame = conform(raw, probe, repr(self), columns)
        first = first_value_row(frame)
        if self._declared("lookback"):
            lookback = self.lookback
        elif first is None:
            raise FeatureError(
                f"Cannot infer the lookback of {self!r}: its compute gave no value on a "
                f"{PROBE_ROWS}-candle gap-free probe. Declare 'lookback' (candles of warm-up)."
            )
        else:
            lookback = first
        result = (tuple(frame.columns), lookback)
        self.__dict__["_probe_result"] = result
        return result


def _checked_compute(hook: Callable[..., Any]) -> Callable[..., pd.DataFrame]:
    """Wrap a user's ``compute(self, candles)`` with the contract's checks."""

    @functools.wraps(hook)
    def compute(self: FeatureComputer, candles: pd.DataFrame) -> pd.DataFrame:
        return _run_checked(self, candles, lambda frame: hook(self, frame))

    compute._core_engine_hook = hook  # type: ignore[attr-defined]
    return compute


def _run_checked(feature: FeatureComputer, candles: pd.DataFrame,
                 hook: Callable[[pd.DataFrame], Any], symbol: str | None = None) -> pd.DataFrame:
    """Validate ``candles``, run ``hook`` on them and check its output (see _contract)."""
    validate_candles(candles, symbol=symbol)
    if len(candles) == 0:
        raise FeatureError(
            f"{feature!r} cannot be computed on an empty candle frame; expected at least one "
            f"candle (and {feature.lookback + 1} for a first value)."
        )
    owner = repr(feature)
    columns = feature.columns
    frame = conform(_call_hook(feature, hook, candles, symbol), candles, owner, columns)
    lookback = feature.lookback
    if lookback > 0 and feature._gap_free(candles):
        early = first_value_row(frame.iloc[:lookback])
        if early is not None:
            column = next(c for c in frame.columns if not np.isnan(frame[c].iloc[early]))
            how = "declares" if feature._declared("lookback") else \
                f"was inferred (on a {PROBE_ROWS}-candle probe) to need"
            raise FeatureError(
                f"{owner} {how} lookback = {lookback}, but on {len(candles)} gap-free candles"
                f"{_of(symbol)} its column {column!r} has a value at row {early} "
                f"({frame.index[early]:%Y-%m-%d %H:%M} UTC); rows before the lookback must be "
                f"NaN. Declare lookback = {early}{' (or less)' if early else ''}."
            )
    return frame


def _call_hook(feature: FeatureComputer, hook: Callable[[pd.DataFrame], Any],
               candles: pd.DataFrame, symbol: str | None) -> Any:
    try:
        return hook(candles)
    except CoreEngineError:
        raise
    except Exception as error:  # the user's code: reported with the feature and the data
        raise FeatureError(
            f"{feature!r}.compute failed on {len(candles)} candles{_of(symbol)}: "
            f"{type(error).__name__}: {error}"
        ) from error


def _of(symbol: str | None) -> str:
    return "" if symbol is None else f" of {symbol}"


def _unknown_parameter_message(owner: str, key: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (f"{owner} has no parameter {key!r}; expected one of {list(names)}.{hint}")


def _check_panel(feature: FeatureComputer, panel: Panel) -> None:
    if not isinstance(panel, Panel):
        raise FeatureError(
            f"{feature!r}.compute_panel expects a Panel. Got {type(panel).__name__}."
        )
    if panel.n_times == 0:
        raise FeatureError(f"{feature!r} cannot be computed on a panel with no rows.")


def checked_panel_values(feature: FeatureComputer, panel: Panel, values: Any) -> dict[str, np.ndarray]:
    """Check what ``feature.compute_panel(panel)`` returned: exactly :attr:`columns`, each a
    ``(T, N)`` array of numbers. Returns them as float64 arrays (not copied when they are).

    Raises
    ------
    FeatureError
        Naming the feature, the column and what was wrong.
    """
    owner = repr(feature)
    if not isinstance(values, Mapping):
        raise FeatureError(f"{owner}.compute_panel must return a dict of column -> (T, N) "
                           f"array. Got {type(values).__name__}.")
    columns = feature.columns
    if set(values) != set(columns):
        raise FeatureError(
            f"{owner}.compute_panel returned columns {list(values)}; expected "
            f"{list(columns)}."
        )
    shape = (panel.n_times, panel.n_symbols)
    out = {}
    for column in columns:
        array = np.asarray(values[column])
        if array.shape != shape or array.dtype.kind not in "fiub":
            raise FeatureError(
                f"{owner}.compute_panel returned {column!r} as {array.dtype} {array.shape}; "
                f"expected numbers of shape {shape} (times x symbols)."
            )
        out[column] = array if array.dtype == np.float64 else np.asfortranarray(array, np.float64)
    return out


def _frame_timeframe(candles: pd.DataFrame) -> str:
    """A grid step every candle of the frame lies on: the gcd of the steps between candles.

    (The smallest step is not enough: candles 5 and 15 minutes apart would collide on a
    10-minute grid.) One minute for a one-row frame.
    """
    ns = candles["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    steps = np.diff(ns)
    step = int(np.gcd.reduce(steps)) if steps.size else 60_000_000_000
    return format_timeframe(step)


def _frame_rows(candles: pd.DataFrame, panel: Panel) -> np.ndarray:
    ns = candles["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    return ((ns - panel.index.asi8[0]) // panel.step_ns).astype(np.int64)


# ---------------------------------------------------------------------- kernel features
class KernelFeature(FeatureComputer):
    """A feature computed by one numba kernel of :mod:`core_engine.features._kernels`.

    Subclasses set ``_kind`` and implement :meth:`_kernel_params`. All kernel features of
    one call run together (see :func:`run_kernel_features`), in parallel over symbols and
    features.
    """

    _kind: ClassVar[int] = -1

    def _kernel_params(self) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """Integer and float parameters in the order the kernel reads them."""
        raise NotImplementedError

    def _compute_frame(self, candles: pd.DataFrame) -> pd.DataFrame:
        fields = [np.asfortranarray(candles[f].to_numpy(dtype=np.float64).reshape(-1, 1))
                  for f in ("high", "low", "close", "volume")]
        (outputs,) = run_kernel_features([self], *fields)
        return pd.DataFrame({c: o[:, 0] for c, o in zip(self.columns, outputs, strict=True)})

    @property
    def runs_kernel(self) -> bool:
        """False for a subclass that overrides ``compute`` (then its compute is the truth)."""
        return self._compute_hook() is None

    def compute_panel(self, panel: Panel) -> dict[str, np.ndarray]:
        if not self.runs_kernel:
            return super().compute_panel(panel)
        _check_panel(self, panel)
        (outputs,) = run_kernel_features([self], panel.high, panel.low, panel.close,
                                         panel.volume)
        return dict(zip(self.columns, outputs, strict=True))


class LengthFeature(KernelFeature):
    """A kernel feature of one ``length`` with one output, ``{_prefix}_{length}``.

    Subclasses set ``_prefix``, ``_min_length`` and ``_warm_up_offset``: the lookback is
    ``length + _warm_up_offset`` (``-1`` for windows that include the current candle, such as
    SMA; ``0`` for those that need ``length`` earlier candles, such as RSI or an n-bar return).
    """

    _defaults: ClassVar[dict] = {"length": 20}
    _min_length: ClassVar[int] = 1
    _warm_up_offset: ClassVar[int] = -1
    _prefix: ClassVar[str] = ""
    length: int  # parameter, set by FeatureComputer.__init__

    def _check_params(self) -> None:
        self._require_int("length", self._min_length)

    @property
    def lookback(self) -> int:
        return int(self.length) + self._warm_up_offset

    @property
    def columns(self) -> tuple[str, ...]:
        return (f"{self._prefix}_{self.length}",)

    def _kernel_params(self):
        return (self.length,), ()


class FastSlowFeature(KernelFeature):
    """A kernel feature of a ``fast`` and a ``slow`` length (``fast < slow``) with one output,
    ``{name}_{fast}_{slow}``, defined from the ``slow - 1``-th candle on."""

    fast: int  # parameters, set by FeatureComputer.__init__
    slow: int

    def _check_params(self) -> None:
        self._require_fast_below_slow()

    @property
    def lookback(self) -> int:
        return int(self.slow) - 1

    @property
    def columns(self) -> tuple[str, ...]:
        return (f"{self.name}_{self.fast}_{self.slow}",)

    def _kernel_params(self):
        return (self.fast, self.slow), ()
