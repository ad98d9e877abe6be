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
import inspect
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from core_engine.data.candles import validate_candles
from core_engine.data.panel import Panel
from core_engine.data.timeframes import format_timeframe
from core_engine.errors import ConfigError, FeatureError
from core_engine.features._runner import run_kernel_features

__all__ = ["FeatureComputer", "KernelFeature", "run_kernel_features"]


class FeatureComputer:
    """Base class of every feature.

    Subclasses set ``name`` (snake case), ``_defaults`` (ordered parameter defaults), and
    implement :attr:`lookback`, :attr:`columns` and at least one of
    :meth:`_compute_frame` (one symbol) or :meth:`compute_panel` (all symbols); the other
    is derived. Override :meth:`_check_params` to validate parameters.

    Parameters may be given by keyword or, in the order of ``_defaults``, by position.
    """

    name: ClassVar[str] = "feature"
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
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
        """Warm-up candles: on gap-free data, rows before this index are NaN."""
        raise NotImplementedError

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the output columns, in order."""
        raise NotImplementedError

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
            If ``candles`` has no rows.
        """
        validate_candles(candles)
        if len(candles) == 0:
            raise FeatureError(
                f"{self!r} cannot be computed on an empty candle frame; expected at least one "
                f"candle (and {self.lookback + 1} for a first value)."
            )
        out = self._compute_frame(candles)
        out.index = pd.DatetimeIndex(candles["timestamp"], name="timestamp")
        return out

    def _compute_frame(self, candles: pd.DataFrame) -> pd.DataFrame:
        """Compute on a validated, non-empty frame (default: through a one-symbol panel)."""
        panel = Panel.from_frames({"_": candles}, _frame_timeframe(candles), validate=False)
        values = self.compute_panel(panel)
        rows = _frame_rows(candles, panel)
        return pd.DataFrame({c: values[c][rows, 0] for c in self.columns})

    def compute_panel(self, panel: Panel) -> dict[str, np.ndarray]:
        """Compute the feature for every symbol of ``panel``.

        Returns
        -------
        dict of str to numpy.ndarray
            Keys :attr:`columns`; each a ``(T, N)`` float64 Fortran array, NaN at missing
            candles and during each symbol's warm-up.

        Raises
        ------
        FeatureError
            If the panel has no rows.
        """
        _check_panel(self, panel)
        if type(self)._compute_frame is FeatureComputer._compute_frame:
            raise NotImplementedError(
                f"{type(self).__name__} must implement _compute_frame or compute_panel."
            )
        out = {c: np.full((panel.n_times, panel.n_symbols), np.nan, order="F")
               for c in self.columns}
        present = panel.present
        for j, symbol in enumerate(panel.symbols):
            rows = np.flatnonzero(present[:, j])
            if rows.size == 0:
                continue
            frame = self._compute_frame(panel.frame(symbol))
            for c in self.columns:
                out[c][rows, j] = frame[c].to_numpy(dtype=np.float64)
        return out


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

    def compute_panel(self, panel: Panel) -> dict[str, np.ndarray]:
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
