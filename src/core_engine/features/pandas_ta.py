"""Adapter giving access to the whole pandas-ta catalogue through the feature contract.

``PandasTA("adx", length=14)`` calls ``adx(high, low, close, length=14)`` of pandas-ta
(the maintained fork ``pandas-ta-classic`` on Python < 3.12, ``pandas-ta`` from 3.12) on
each symbol's frame. Output columns are the indicator's own names lower-cased
(``adx_14, dmp_14, dmn_14``). It runs pandas code per symbol, so ``compute_panel`` is one
Python loop over symbols: much slower than the numba features, use those when they exist.

pandas-ta does not promise causality: a few indicators look ahead (``dpo`` with its
default ``centered=True``; anything with a negative ``offset``). Run
:func:`core_engine.testing.check_feature` on an indicator before relying on it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import sys
import warnings
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from core_engine.errors import ConfigError, FeatureError
from core_engine.features._contract import PROBE_ROWS, conform, first_value_row, probe_candles
from core_engine.features.base import FeatureComputer

__all__ = ["PandasTA", "import_pandas_ta", "pandas_ta_indicators"]

_INPUTS = {"open_": "open", "open": "open", "high": "high", "low": "low", "close": "close",
           "volume": "volume"}


@lru_cache(maxsize=1)
def import_pandas_ta() -> ModuleType:
    """Import pandas-ta: ``pandas_ta_classic`` before Python 3.12, else ``pandas_ta``.

    Falls back to the other package when the preferred one is missing.

    Raises
    ------
    ConfigError
        If neither is installed.
    """
    order = (["pandas_ta_classic", "pandas_ta"] if sys.version_info < (3, 12)
             else ["pandas_ta", "pandas_ta_classic"])
    for module in order:
        try:
            with warnings.catch_warnings():
                # pandas-ta-classic trips pandas' own deprecation warnings at import time
                warnings.simplefilter("ignore")
                return importlib.import_module(module)
        except ImportError:
            continue
    raise ConfigError(
        "PandasTA needs pandas-ta: pip install pandas-ta-classic (Python < 3.12) or "
        "pandas-ta (Python >= 3.12)."
    )


@lru_cache(maxsize=1)
def pandas_ta_indicators() -> tuple[str, ...]:
    """Names of every indicator pandas-ta offers, sorted."""
    ta = import_pandas_ta()
    names = {n for group in ta.Category.values() for n in group}
    return tuple(sorted(n for n in names if callable(getattr(ta, n, None))))


class PandasTA(FeatureComputer):
    """Any pandas-ta indicator as a feature.

    Parameters
    ----------
    name : str
        The pandas-ta function name (``"adx"``, ``"supertrend"``, ``"stoch"``, …).
    **params
        Its keyword parameters (``length=14``).

    Notes
    -----
    :attr:`columns` and :attr:`lookback` are found by running the indicator once on a
    600-candle synthetic probe (the first row where any column has a value); an indicator
    whose warm-up is longer than the probe reports a lookback of 600. A frame too short
    for the indicator gives all-NaN rows.

    Raises
    ------
    ConfigError
        If the indicator is unknown, a parameter is not one of its parameters (with a
        did-you-mean hint), or the indicator returns something other than one frame (e.g.
        ``ichimoku``'s default tuple of two frames; the message says how to get one).
    FeatureError
        If the indicator fails or returns rows that are not one per candle or non-numbers.

    Examples
    --------
    >>> PandasTA("adx", length=14).columns
    ('adx_14', 'dmp_14', 'dmn_14')
    """

    name = "pandas_ta"

    def __init__(self, name: str, **params: Any) -> None:
        indicators = pandas_ta_indicators()
        if not isinstance(name, str) or name not in indicators:
            close = difflib.get_close_matches(str(name), indicators, n=3)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(f"pandas-ta has no indicator {name!r}.{hint}")
        function = getattr(import_pandas_ta(), name)
        signature = inspect.signature(function)
        accepted = [p for p in signature.parameters if p not in _INPUTS and p != "kwargs"]
        for key in params:
            if key not in accepted and key not in ("fillna", "fill_method"):
                close = difflib.get_close_matches(key, accepted, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"pandas-ta indicator {name!r} has no parameter {key!r}; expected one of "
                    f"{accepted}.{hint}"
                )
        self._params = {"name": name, **params}
        self._function = function
        self._inputs = [p for p in signature.parameters if p in _INPUTS]
        self._probe: tuple[tuple[str, ...], int] | None = None
        self._probe_output()  # an indicator the adapter cannot serve fails here, not later

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self._params.items() if k != "name")
        return f"PandasTA({self._params['name']!r}{extra})"

    def clone(self, **changes: Any) -> PandasTA:
        params = self.get_params()
        params.update(changes)
        return PandasTA(**params)

    def _call(self, candles: pd.DataFrame) -> pd.DataFrame | None:
        index = pd.DatetimeIndex(candles["timestamp"])
        args = {p: pd.Series(candles[_INPUTS[p]].to_numpy(dtype=np.float64), index=index)
                for p in self._inputs}
        params = {k: v for k, v in self._params.items() if k != "name"}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # pandas-ta's own
                result = self._function(**args, **params)
        except Exception as error:  # a pandas-ta failure, reported with our context
            raise FeatureError(f"{self!r} failed on {len(candles)} candles: {error}") from error
        if result is None:
            return None
        if isinstance(result, tuple):
            raise ConfigError(self._tuple_message(result))
        if isinstance(result, pd.Series):
            result = result.to_frame(str(result.name))
        if not isinstance(result, pd.DataFrame):
            raise FeatureError(f"{self!r} returned a {type(result).__name__}; expected a "
                               "DataFrame or Series with one row per candle.")
        frame = conform(result, candles, repr(self), None) if len(result.columns) else result
        frame.columns = [str(c).lower() for c in frame.columns]
        return frame

    def _tuple_message(self, result: tuple) -> str:
        message = (f"{self!r} returns {len(result)} objects (a tuple); a feature needs one "
                   "frame with one row per candle.")
        if self._params["name"] == "ichimoku":
            message += (" Pass as_dataframe=True for ichimoku's one-frame form, and "
                        "include_chikou=False: its Chikou span is the close 26 candles "
                        "later (it reads the future); the forward spans of the second frame "
                        "lie after the last candle, so no feature can use them.")
        return message

    def _probe_output(self) -> tuple[tuple[str, ...], int]:
        if self._probe is None:
            result = self._call(probe_candles())
            if result is None or result.shape[1] == 0:
                raise ConfigError(f"{self!r} returned nothing on a {PROBE_ROWS}-candle probe.")
            first = first_value_row(result)
            self._probe = (tuple(result.columns), PROBE_ROWS if first is None else first)
        return self._probe

    @property
    def lookback(self) -> int:
        return self._probe_output()[1]

    @property
    def columns(self) -> tuple[str, ...]:
        return self._probe_output()[0]

    def _compute_frame(self, candles: pd.DataFrame) -> pd.DataFrame:
        result = self._call(candles)
        out = pd.DataFrame(np.nan, index=range(len(candles)), columns=list(self.columns))
        if result is not None:
            for column in self.columns:
                if column in result.columns:
                    out[column] = result[column].to_numpy(dtype=np.float64)
        return out
