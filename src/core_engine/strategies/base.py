"""The strategy contract: declared features in, one score per (time, symbol) out.

A strategy is a small object with keyword parameters (stored unchanged, scikit-learn style)
and two hooks a user writes:

- :meth:`Strategy.features` lists the feature computers it needs;
- :meth:`Strategy.score` turns the computed feature arrays into a ``(T, N)`` score array,
  where the score at row ``i`` uses rows ``<= i`` only and NaN means "not a candidate".

Everything else is derived from those two hooks: the vectorised path the backtest engine
uses (:meth:`Strategy.score_panel`), and the one-off path (:meth:`Strategy.select_symbols`,
:meth:`Strategy.generate_signal`) which builds a panel from per-symbol candle frames known at
the decision time and calls the very same :meth:`Strategy.score`. The two can therefore not
disagree, up to the warm-up of the features (both must start from the same first candle).

The time rule (DESIGN.md §1): row ``i`` is the candle opening at ``index[i]``; it is known at
``index[i] + timeframe``. A decision at time ``t`` reads the row that closes at ``t``.
"""

from __future__ import annotations

import copy
import difflib
import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from core_engine._validate import check_items, check_symbols
from core_engine.data.panel import Panel
from core_engine.data.timeframes import to_utc_timestamp
from core_engine.errors import ConfigError, StrategyError

__all__ = ["Strategy", "rank_candidates", "did_you_mean"]


def did_you_mean(name: str, valid: Sequence[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest valid name, or ``""`` if none is close."""
    if not isinstance(name, str):
        return ""  # nothing to compare; the caller's message shows the value
    names = [str(v) for v in check_items(valid, "valid", "did_you_mean", expected="a list of names")]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def rank_candidates(scores: np.ndarray, symbols: Sequence[str]) -> list[str]:
    """Return the symbols with a finite score, best first.

    Ties are broken by symbol name ascending, so the order does not depend on the column
    order of the panel.
    """
    symbols = check_symbols(symbols, "symbols", "rank_candidates")
    try:
        scores = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError("The 'scores' parameter of rank_candidates must be numbers, one per "
                          f"symbol. Got {type(scores).__name__}.") from exc
    if scores.shape != (len(symbols),):
        raise ConfigError(f"The 'scores' parameter of rank_candidates must hold one number per "
                          f"symbol ({len(symbols)}). Got shape {scores.shape}.")
    keep = [j for j in range(len(symbols)) if np.isfinite(scores[j])]
    keep.sort(key=lambda j: (-scores[j], symbols[j]))
    return [symbols[j] for j in keep]


def _param_names(cls: type[Strategy]) -> list[str]:
    init = cls.__init__
    if init is object.__init__:
        return []
    names = []
    for p in inspect.signature(init).parameters.values():
        if p.name == "self":
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ConfigError(
                f"{cls.__name__}.__init__ must list its parameters explicitly (no *args or "
                f"**kwargs), so that get_params/clone work. Got {p}."
            )
        names.append(p.name)
    return names


def _wrap_init(cls: type[Strategy], original: Callable) -> Callable:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        valid = [n for n in signature.parameters if n != "self"]
        for key in kwargs:
            if key not in signature.parameters or key == "self":
                raise ConfigError(
                    f"{cls.__name__} has no parameter {key!r}; valid parameters are "
                    f"{valid}.{did_you_mean(key, valid)}"
                )
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"{cls.__name__}(...): {exc}.") from None
        original(self, *args, **kwargs)
        if type(self).__init__ is __init__:  # only the most derived constructor validates
            self._validate_params()

    return __init__


class Strategy:
    """Base class of every strategy.

    Subclasses set the class attribute ``name`` (the registry key), write an explicit
    ``__init__`` whose keyword parameters are stored unchanged as attributes of the same
    name, and implement :meth:`features`, :meth:`score` and, to reject bad values,
    :meth:`_validate_params`. An unknown parameter raises :class:`ConfigError` with a
    did-you-mean suggestion; an invalid value raises :class:`ConfigError` naming it.

    Examples
    --------
    >>> from core_engine.strategies import MovingAverageCrossover
    >>> s = MovingAverageCrossover(fast=10, slow=30)
    >>> s
    MovingAverageCrossover(fast=10, slow=30)
    >>> s.clone() == s
    True
    >>> s.set_params(fast=5).get_params()["fast"]
    5
    """

    name: ClassVar[str] = "strategy"
    #: Rows the score shifts on top of its features' lookback (e.g. 1 for "previous high").
    extra_lookback: ClassVar[int] = 0
    #: True when the score (and confidence) of row ``i`` reads the feature and panel values of
    #: row ``i`` only (thresholds, cross-sectional ranks): the engine then scores just the
    #: decision rows. :func:`core_engine.testing.check_strategy` verifies the claim.
    row_local: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            # Deliberate: the subclass's own __init__ becomes a validating wrapper with the
            # same signature (functools.wraps), which mypy cannot see.
            cls.__init__ = _wrap_init(cls, cls.__dict__["__init__"])  # type: ignore[method-assign]
            _param_names(cls)  # fail at class creation for *args/**kwargs

    # ------------------------------------------------------------------ parameters
    @classmethod
    def param_names(cls) -> list[str]:
        """The names of the constructor parameters, in signature order."""
        return _param_names(cls)

    def get_params(self) -> dict[str, Any]:
        """Return the parameters as a dict ``{name: value}`` (values as given)."""
        params = {}
        for key in self.param_names():
            if not hasattr(self, key):
                raise ConfigError(
                    f"{type(self).__name__}.__init__ must store parameter {key!r} as "
                    f"self.{key} (unchanged) so that get_params/clone work."
                )
            params[key] = getattr(self, key)
        return params

    def set_params(self, **params: Any) -> Strategy:
        """Set parameters and return ``self``; values are validated, nothing changes on error."""
        valid = self.param_names()
        for key in params:
            if key not in valid:
                raise ConfigError(
                    f"{type(self).__name__} has no parameter {key!r}; valid parameters are "
                    f"{valid}.{did_you_mean(key, valid)}"
                )
        old = self.get_params()
        for key, value in params.items():
            setattr(self, key, value)
        try:
            self._validate_params()
        except Exception:
            for key, value in old.items():
                setattr(self, key, value)
            raise
        return self

    def clone(self) -> Strategy:
        """Return a new, equal strategy with deep-copied parameters."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def _validate_params(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid parameter (override)."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return _params_equal(self.get_params(), other.get_params())

    def __hash__(self) -> int:
        return hash((type(self).__qualname__, repr(self)))

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.default is not p.empty
        }
        shown = [
            f"{k}={v!r}" for k, v in self.get_params().items()
            if k not in defaults or not _params_equal({k: v}, {k: defaults[k]})
        ]
        return f"{type(self).__name__}({', '.join(shown)})"

    # ------------------------------------------------------------------ validation helpers
    def _check_int(self, key: str, minimum: int = 1) -> None:
        value = getattr(self, key)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ConfigError(
                f"The {key!r} parameter of {type(self).__name__} must be an integer >= "
                f"{minimum}. Got {value!r}."
            )

    def _check_number(self, key: str, *, low: float | None = None, high: float | None = None,
                      strict_low: bool = False) -> None:
        value = getattr(self, key)
        ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
              and math.isfinite(value))
        if ok and low is not None:
            ok = value > low if strict_low else value >= low
        if ok and high is not None:
            ok = value <= high
        if not ok:
            bound = []
            if low is not None:
                bound.append(f"{'>' if strict_low else '>='} {low}")
            if high is not None:
                bound.append(f"<= {high}")
            rule = " and ".join(bound) if bound else "finite"
            raise ConfigError(
                f"The {key!r} parameter of {type(self).__name__} must be a number {rule}. "
                f"Got {value!r}."
            )

    def _check_less(self, small: str, large: str) -> None:
        if not getattr(self, small) < getattr(self, large):
            raise ConfigError(
                f"The {small!r} parameter of {type(self).__name__} must be below {large!r}. "
                f"Got {small}={getattr(self, small)!r}, {large}={getattr(self, large)!r}."
            )

    def _check_choice(self, key: str, choices: Sequence[Any]) -> None:
        value = getattr(self, key)
        if value not in choices:
            hint = did_you_mean(value, [str(c) for c in choices]) if isinstance(value, str) else ""
            raise ConfigError(
                f"The {key!r} parameter of {type(self).__name__} must be one of "
                f"{list(choices)}. Got {value!r}.{hint}"
            )

    # ------------------------------------------------------------------ the hooks
    def features(self) -> list:
        """Return the feature computers this strategy needs (override)."""
        return []

    @property
    def lookback(self) -> int:
        """Candles of warm-up before the first possible score: the largest lookback of the
        declared features plus :attr:`extra_lookback`."""
        lookbacks = [int(c.lookback) for c in self.features()]
        return max(lookbacks, default=0) + int(self.extra_lookback)

    def score(self, features: Mapping[str, np.ndarray], panel: Panel) -> np.ndarray:
        """Return the ``(T, N)`` float score array (override).

        Parameters
        ----------
        features : mapping of str to ndarray
            Feature columns (``"rsi_14"``, ...) as ``(T, N)`` arrays aligned with ``panel``,
            computed from :meth:`features`. Read only; never modify them.
        panel : Panel
            The candles the features were computed from.

        Returns
        -------
        numpy.ndarray
            Score at every row ``i`` computed from rows ``<= i`` only; NaN = not a candidate.
            Higher is better.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement score(features, panel).")

    def confidence(self, features: Mapping[str, np.ndarray], panel: Panel) -> np.ndarray | None:
        """Return an optional ``(T, N)`` confidence array (>= 0), or None (the default)."""
        return None

    # ------------------------------------------------------------------ vectorised path
    def compute_features(self, panel: Panel, cache: Any = None, *,
                         time: Any = None) -> dict[str, np.ndarray]:
        """Compute :meth:`features` on ``panel`` (through ``cache`` when given)."""
        computers = self._call("features", self.features, time)
        if not computers:
            return {}
        from core_engine.features.cache import compute_features

        return self._call("features", lambda: compute_features(computers, panel, cache=cache), time)

    def score_panel(self, panel: Panel, *, cache: Any = None,
                    features: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Return the checked ``(T, N)`` scores of ``panel`` (features computed when not given).

        This is the engine's path. Any exception from :meth:`features` or :meth:`score`
        becomes a :class:`StrategyError` naming the strategy; an output of the wrong shape
        or with infinite values raises :class:`StrategyError` too.
        """
        if features is None:
            features = self.compute_features(panel, cache)
        scores = self._call("score", lambda: self.score(features, panel))
        return self._check_output("score", scores, panel)

    def confidence_panel(self, panel: Panel, *, cache: Any = None,
                         features: Mapping[str, np.ndarray] | None = None) -> np.ndarray | None:
        """Return the checked ``(T, N)`` confidence of ``panel``, or None if not provided."""
        if features is None:
            features = self.compute_features(panel, cache)
        conf = self._call("confidence", lambda: self.confidence(features, panel))
        if conf is None:
            return None
        conf = self._check_output("confidence", conf, panel)
        if np.any(conf < 0):
            raise StrategyError(f"{self!r}.confidence() returned negative values; expected >= 0.")
        return conf

    def _call(self, hook: str, fn: Callable[[], Any], time: Any = None) -> Any:
        try:
            return fn()
        except StrategyError:
            raise
        except Exception as exc:
            when = "" if time is None else f" at {to_utc_timestamp(time):%Y-%m-%d %H:%M} UTC"
            raise StrategyError(
                f"Strategy {self!r} failed in {hook}(){when}: {type(exc).__name__}: {exc}"
            ) from exc

    def _check_output(self, hook: str, values: Any, panel: Panel) -> np.ndarray:
        if isinstance(values, pd.DataFrame):
            values = self._aligned(hook, values, panel)
        try:
            if isinstance(values, pd.DataFrame):
                out = values.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                out = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise StrategyError(f"{self!r}.{hook}() must return a float array. Got {exc}.") from exc
        expected = (panel.n_times, panel.n_symbols)
        if out.shape != expected:
            raise StrategyError(
                f"{self!r}.{hook}() returned shape {out.shape}; expected {expected} (times × symbols)."
            )
        if np.isinf(out).any():
            i, j = np.argwhere(np.isinf(out))[0]
            raise StrategyError(
                f"{self!r}.{hook}() returned an infinite value for {panel.symbols[j]} at row {i} "
                f"({panel.index[i]:%Y-%m-%d %H:%M} UTC); use NaN for 'not a candidate'."
            )
        return out

    def _aligned(self, hook: str, frame: pd.DataFrame, panel: Panel) -> pd.DataFrame:
        """A DataFrame output read by label: its columns are the panel's symbols in any order
        (never taken by position), and a DatetimeIndex must be the panel's timestamps."""
        columns = list(frame.columns)
        symbols = list(panel.symbols)
        if len(set(columns)) != len(columns):
            dup = sorted({str(c) for c in columns if columns.count(c) > 1})
            raise StrategyError(f"{self!r}.{hook}() returned a DataFrame with duplicated "
                                f"columns {dup}; expected one column per symbol {symbols}.")
        if columns != symbols:
            missing = [s for s in symbols if s not in columns]
            extra = [c for c in columns if c not in symbols]
            if missing or extra:
                raise StrategyError(
                    f"{self!r}.{hook}() returned a DataFrame whose columns are not the panel's "
                    f"symbols: missing {missing}, unexpected {extra}. Columns are matched by "
                    f"name, never by position; expected the symbols {symbols} in any order."
                )
            frame = frame[symbols]
        index = frame.index
        if isinstance(index, pd.DatetimeIndex) and not index.equals(panel.index):
            if len(index) == panel.n_times and index.sort_values().equals(panel.index):
                frame = frame.loc[panel.index]
            else:
                raise StrategyError(
                    f"{self!r}.{hook}() returned a DataFrame indexed by {len(index):,} times "
                    f"that are not the panel's {panel.n_times:,} candle times; return one row "
                    "per candle of the panel (rows are matched by time), or a plain array."
                )
        return frame

    # ------------------------------------------------------------------ one-off path
    def scores_at(self, features_by_symbol: Mapping[str, pd.DataFrame] | Panel, current_time: Any,
                  *, timeframe: str | None = None) -> pd.Series:
        """Return the score of every symbol for a decision at ``current_time``.

        Parameters
        ----------
        features_by_symbol : mapping of symbol to candle frame, or Panel
            Per-symbol **candle** frames (the candle contract: ``timestamp`` = open time,
            ``open, high, low, close, volume``), not feature frames: the features are
            computed inside, exactly as in the vectorised path. Candles not yet closed at
            ``current_time`` are ignored. For results identical to a backtest on the same
            data, the frames must start at the same first candle (EMA/RSI warm-up depends on
            the whole history).
        current_time : timestamp
            The decision time ``t``: only candles with ``timestamp + timeframe <= t`` are
            used, and the score is read on the latest of them (the row that closes at ``t``
            when ``t`` is on the grid).
        timeframe : str, optional
            The candle timeframe; inferred from the frames when omitted.

        Returns
        -------
        pandas.Series
            Scores indexed by symbol (NaN = not a candidate); all NaN when no candle has
            closed by ``current_time``.
        """
        t = to_utc_timestamp(current_time, name="current_time")
        panel = self._panel_from(features_by_symbol, timeframe)
        known = panel.known_at(t)
        if known.n_times == 0:
            return pd.Series(np.nan, index=list(panel.symbols), dtype=np.float64)

        feats = self.compute_features(known, time=t)
        scores = self._call("score", lambda: self.score(feats, known), time=t)
        row = self._check_output("score", scores, known)[-1]
        return pd.Series(row, index=list(known.symbols), dtype=np.float64)

    def select_symbols(self, features_by_symbol: Mapping[str, pd.DataFrame] | Panel,
                       current_time: Any, top_n: int | None = None, *,
                       timeframe: str | None = None) -> list[str]:
        """Return the candidates at ``current_time``, best first (ties: symbol name ascending).

        ``features_by_symbol`` and ``current_time`` are as in :meth:`scores_at` (candle
        frames per symbol; decision time ``t`` using candles closed by ``t``). ``top_n``
        truncates the list. Equals ranking the vectorised scores of the row closing at ``t``.
        """
        if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
            raise ConfigError(f"The 'top_n' parameter of select_symbols must be a positive integer. Got {top_n!r}.")
        scores = self.scores_at(features_by_symbol, current_time, timeframe=timeframe)
        ranked = rank_candidates(scores.to_numpy(), list(scores.index))
        return ranked if top_n is None else ranked[:top_n]

    def generate_signal(self, symbol: str, features_df: pd.DataFrame, current_time: Any, *,
                        timeframe: str | None = None) -> Literal["LONG", "FLAT"]:
        """Return ``"LONG"`` if ``symbol`` is a candidate at ``current_time``, else ``"FLAT"``.

        ``features_df`` is the symbol's candle frame (see :meth:`scores_at`); the symbol is
        scored on its own (a universe of one). For the built-in strategies candidacy does
        not depend on the other symbols, so this equals "the vectorised score is not NaN".
        """
        scores = self.scores_at({symbol: features_df}, current_time, timeframe=timeframe)
        return "LONG" if np.isfinite(scores.iloc[0]) else "FLAT"

    def _panel_from(self, data: Mapping[str, pd.DataFrame] | Panel, timeframe: str | None) -> Panel:
        if isinstance(data, Panel):
            return data
        if not isinstance(data, Mapping) or not data:
            raise ConfigError(
                "The 'features_by_symbol' argument must be a non-empty dict of symbol -> candle "
                f"frame, or a Panel. Got {type(data).__name__}."
            )
        return Panel.from_frames(dict(data), timeframe)


def _params_equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not np.array_equal(np.asarray(x), np.asarray(y)):
                return False
            continue
        try:
            same = bool(x == y)
        except Exception:
            same = x is y
        if not same:
            return False
    return True
