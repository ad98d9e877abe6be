"""Gates: eligibility masks over time × symbol, applied before allocation.

A gate declares the feature computers it needs (:meth:`Gate.features`, so the engine
computes every feature once) and returns a boolean ``(T, N)`` mask from them
(:meth:`Gate.mask`). The mask at row ``i`` uses rows ``<= i`` only, like every feature. A NaN
input (warm-up, missing candle) makes the symbol **not eligible** at that row.

Examples
--------
>>> gates = [MaxATRPct(max_atr_pct=3.0), MinQuoteVolume(min_quote_volume=1e6)]
>>> sorted(c for g in gates for c in g.feature_columns())
['atr_14', 'atr_pct_14', 'quote_volume_288']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core_engine._config import keyword_checked
from core_engine._validate import check_instance, check_items
from core_engine.data.panel import Panel
from core_engine.errors import ConfigError, StrategyError
from core_engine.risk._kernels import rolling_mean_2d

__all__ = [
    "CustomGate",
    "Gate",
    "MaxATRPct",
    "MaxSpreadProxy",
    "MinQuoteVolume",
    "apply_gates",
    "gate_features",
]


def _positive(owner: str, key: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(value) and (value >= 0 if allow_zero else value > 0))
    if not ok:
        rule = "a finite number >= 0" if allow_zero else "a positive finite number"
        raise ConfigError(f"The {key!r} parameter of {owner} must be {rule}. Got {value!r}.")


def _length(owner: str, key: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"The {key!r} parameter of {owner} must be an integer >= {minimum}. Got {value!r}.")


def _feature(features: Mapping[str, np.ndarray], key: str, owner: str) -> np.ndarray:
    try:
        return np.asarray(features[key], dtype=np.float64)
    except KeyError:
        raise ConfigError(
            f"{owner} needs feature {key!r}, which was not computed; include gate.features() "
            f"when computing features. Got {sorted(features)}."
        ) from None


class Gate:
    """Base of all gates: ``features()`` declares inputs, ``mask()`` returns eligibility."""

    @property
    def name(self) -> str:
        return type(self).__name__

    def features(self) -> list:
        """Feature computers this gate reads (default: none)."""
        return []

    def feature_columns(self) -> list[str]:
        """The feature columns this gate reads."""
        return [c for comp in self.features() for c in comp.columns]

    @property
    def lookback(self) -> int:
        """Rows of warm-up before the gate can pass anything."""
        return max((int(c.lookback) for c in self.features()), default=0)

    def mask(self, features: Mapping[str, np.ndarray], panel: Panel) -> np.ndarray:
        """Return the boolean ``(T, N)`` eligibility mask (override)."""
        raise NotImplementedError


@keyword_checked
@dataclass(frozen=True, kw_only=True)
class MaxATRPct(Gate):
    """Eligible while ATR(``length``) / close, in percent, is at most ``max_atr_pct``.

    Reads feature ``atr_pct_{length}`` (Wilder ATR as TA-Lib, NaN during its ``length``-row
    warm-up, hence not eligible there). No default threshold: it depends on the timeframe
    (on Binance 5m candles 2020-12..2021-07 the median ATR(14)/close is 0.4–0.9 %, and
    1.5 % excludes the most stressed 1–14 % of candles; 1h values are ~3× larger).
    """

    max_atr_pct: float
    length: int = 14

    def __post_init__(self) -> None:
        _positive("MaxATRPct", "max_atr_pct", self.max_atr_pct)
        _length("MaxATRPct", "length", self.length)

    def features(self) -> list:
        from core_engine.features import ATR

        return [ATR(length=self.length)]

    def mask(self, features, panel):
        column = next(c for c in self.features()[0].columns if c.startswith("atr_pct"))
        atr_pct = _feature(features, column, self.name)
        with np.errstate(invalid="ignore"):
            return atr_pct <= self.max_atr_pct


@keyword_checked
@dataclass(frozen=True, kw_only=True)
class MinQuoteVolume(Gate):
    """Eligible while the traded quote volume over the last ``lookback`` candles is at least
    ``min_quote_volume``.

    Quote volume is ``close * volume`` summed over the last ``lookback`` *present* candles
    (feature ``quote_volume_{lookback}``; 288 five-minute candles = 24 h of trading). Missing
    candles are skipped, not counted as zero, so right after an outage the sum reaches back
    past it. NaN (warm-up, or the current candle missing) is not eligible.
    """

    min_quote_volume: float
    lookback: int = 288

    def __post_init__(self) -> None:
        _positive("MinQuoteVolume", "min_quote_volume", self.min_quote_volume, allow_zero=True)
        _length("MinQuoteVolume", "lookback", self.lookback)

    def features(self) -> list:
        from core_engine.features import QuoteVolume

        return [QuoteVolume(length=self.lookback)]

    def mask(self, features, panel):
        quote_volume = _feature(features, self.features()[0].columns[0], self.name)
        with np.errstate(invalid="ignore"):
            return quote_volume >= self.min_quote_volume


@keyword_checked
@dataclass(frozen=True, kw_only=True)
class MaxSpreadProxy(Gate):
    """Eligible while the mean candle range ``(high - low) / close`` over ``length`` candles,
    in percent, is at most ``max_pct``.

    Candles give no bid/ask, so the range is a proxy: in an illiquid market a candle's range
    is at least the spread that each trade crosses, so a wide average range flags symbols
    that are expensive to trade (it also grows with volatility; combine with
    :class:`MaxATRPct` to tell them apart). Computed from the panel directly; NaN until
    ``length`` candles and while a candle in the window is missing (then not eligible).
    """

    max_pct: float
    length: int = 12

    def __post_init__(self) -> None:
        _positive("MaxSpreadProxy", "max_pct", self.max_pct)
        _length("MaxSpreadProxy", "length", self.length)

    @property
    def lookback(self) -> int:
        return int(self.length)

    def range_pct(self, panel: Panel) -> np.ndarray:
        """The rolling mean range in percent, ``(T, N)``."""
        with np.errstate(invalid="ignore", divide="ignore"):
            candle_range = (panel.high - panel.low) / panel.close * 100.0
        candle_range = np.asfortranarray(np.where(np.isfinite(candle_range), candle_range, np.nan))
        return rolling_mean_2d(candle_range, int(self.length))

    def mask(self, features, panel):
        with np.errstate(invalid="ignore"):
            return self.range_pct(panel) <= self.max_pct


@keyword_checked
@dataclass(frozen=True, kw_only=True)
class CustomGate(Gate):
    """A user rule: ``fn(features, panel) -> bool (T, N)``.

    Parameters
    ----------
    fn : callable
        Receives the feature mapping and the panel; must use rows ``<= i`` for row ``i``
        and return a boolean (or 0/1) array of shape ``(T, N)``. NaN counts as not eligible.
    name : str
        A label for messages and reports.
    needs : sequence of FeatureComputer
        Feature computers ``fn`` reads, computed by the engine with the others.

    Examples
    --------
    >>> only_btc = CustomGate(fn=lambda f, p: np.array([[s == "BTC/USDT" for s in p.symbols]]
    ...                                                * p.n_times), name="only_btc")
    """

    fn: Callable[[Mapping[str, np.ndarray], Panel], Any]
    name: str = "custom"
    needs: Sequence[Any] = field(default=())

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ConfigError(f"The 'fn' parameter of CustomGate must be callable. Got {self.fn!r}.")
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"The 'name' parameter of CustomGate must be a non-empty string. Got {self.name!r}.")

    def features(self) -> list:
        return list(self.needs)

    def mask(self, features, panel):
        try:
            out = self.fn(features, panel)
        except Exception as exc:
            raise StrategyError(f"Gate {self.name!r} failed: {type(exc).__name__}: {exc}") from exc
        arr = np.asarray(out)
        expected = (panel.n_times, panel.n_symbols)
        if arr.shape != expected:
            raise StrategyError(f"Gate {self.name!r} returned shape {arr.shape}; expected {expected}.")
        if arr.dtype == np.bool_:
            return arr
        if arr.dtype.kind not in "iuf":
            raise StrategyError(f"Gate {self.name!r} must return a boolean array. Got dtype {arr.dtype}.")
        with np.errstate(invalid="ignore"):
            return np.nan_to_num(arr.astype(np.float64), nan=0.0) != 0


def gate_features(gates: Iterable[Gate]) -> list:
    """All feature computers the ``gates`` need (to compute once with the strategy's)."""
    gates = check_items(gates, "gates", "gate_features", kinds=Gate,
                        expected="a list of Gate objects such as [MaxATRPct(max_atr_pct=2)]")
    return [comp for gate in gates for comp in gate.features()]


def apply_gates(gates: Iterable[Gate], features: Mapping[str, np.ndarray], panel: Panel) -> np.ndarray:
    """AND-combine the masks of ``gates``; no gate means every cell is eligible.

    Returns
    -------
    numpy.ndarray of bool, shape (T, N)
    """
    gates = check_items(gates, "gates", "apply_gates", kinds=Gate,
                        expected="a list of Gate objects such as [MaxATRPct(max_atr_pct=2)]")
    check_instance(features, Mapping, "features", "apply_gates",
                   expected="a dict of feature name -> array")
    check_instance(panel, Panel, "panel", "apply_gates")
    eligible = np.ones((panel.n_times, panel.n_symbols), dtype=bool)
    for gate in gates:
        if not isinstance(gate, Gate):
            raise ConfigError(f"apply_gates expects Gate objects. Got {gate!r}.")
        mask = np.asarray(gate.mask(features, panel))
        if mask.shape != eligible.shape or mask.dtype != np.bool_:
            raise StrategyError(
                f"Gate {gate.name!r} returned {mask.dtype} {mask.shape}; expected bool {eligible.shape}."
            )
        eligible &= mask
    return eligible
