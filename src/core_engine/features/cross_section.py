"""Cross-sectional transforms: compare symbols with each other at each time step.

Raw features are not comparable across symbols (an ATR of 300 USDT on BTC against 0.002 on
NKN); ranks and z-scores across the universe at each row turn them into scores a strategy
can combine. Both transforms are NaN-aware: a NaN stays NaN and is left out of the row's
statistics, so a symbol without a candle or still in warm-up neither gets a score nor shifts
the others'. Each row uses only that row, so the transforms keep the time rule.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from core_engine._validate import check_instance
from core_engine.data.panel import Panel
from core_engine.errors import ConfigError
from core_engine.features import _kernels
from core_engine.features.base import FeatureComputer, _check_panel

__all__ = ["CrossSectional", "cross_sectional_rank", "cross_sectional_zscore"]


def _as_matrix(values: np.ndarray, who: str) -> np.ndarray:
    expected = (f"The 'values' parameter of {who} must be a 2-D (times × symbols) array of "
                "numbers.")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:  # text, objects, ragged rows
        raise ConfigError(f"{expected} Got {type(values).__name__} {values!r:.80}.") from exc
    if array.ndim != 2:
        raise ConfigError(f"{expected} Got shape {array.shape}.")
    return array


def cross_sectional_rank(values: np.ndarray, pct: bool = True) -> np.ndarray:
    """Rank the non-NaN values of each row; ties get their average rank.

    Parameters
    ----------
    values : numpy.ndarray
        ``(T, N)`` array (times × symbols).
    pct : bool, default True
        Divide ranks by the number of non-NaN values of the row, giving ``(0, 1]`` with 1
        for the largest (as ``DataFrame.rank(axis=1, pct=True)``); else ranks ``1..m``.

    Returns
    -------
    numpy.ndarray
        ``(T, N)`` float64 Fortran array; NaN where the input is NaN.

    Raises
    ------
    ConfigError
        If ``values`` is not a 2-D array of numbers or ``pct`` is not a bool.

    Examples
    --------
    >>> cross_sectional_rank(np.array([[3.0, np.nan, 1.0, 3.0]]))
    array([[0.83333333,        nan, 0.33333333, 0.83333333]])
    """
    matrix = _as_matrix(values, "cross_sectional_rank")
    check_instance(pct, (bool, np.bool_), "pct", "cross_sectional_rank", expected="True or False")
    return _kernels.cross_sectional_rank_2d(matrix, bool(pct))


def cross_sectional_zscore(values: np.ndarray) -> np.ndarray:
    """``(x - row mean) / row std`` (ddof=0) over the non-NaN values of each row.

    Returns
    -------
    numpy.ndarray
        ``(T, N)`` float64 Fortran array; NaN where the input is NaN, and for a whole row
        with fewer than two values or with all values equal (0/0).

    Raises
    ------
    ConfigError
        If ``values`` is not a 2-D array of numbers.

    Examples
    --------
    >>> cross_sectional_zscore(np.array([[1.0, 3.0, np.nan]]))
    array([[-1.,  1., nan]])
    """
    matrix = _as_matrix(values, "cross_sectional_zscore")
    out = np.empty(matrix.shape, order="F")
    if matrix.flags.f_contiguous and not matrix.flags.c_contiguous:  # a panel's layout
        _kernels.cross_sectional_zscore_cols(matrix, out, np.empty((5, matrix.shape[0])))
    else:
        _kernels.cross_sectional_zscore_2d(matrix, out)
    return out


class CrossSectional(FeatureComputer):
    """One column of another feature, ranked or z-scored across the panel's symbols.

    Parameters
    ----------
    computer : FeatureComputer
        The feature to transform.
    column : str
        Which of its columns.
    method : {"zscore", "rank"}
        ``cross_sectional_zscore`` or ``cross_sectional_rank(pct=True)``.

    Notes
    -----
    Column ``{column}_{method}``; same warm-up as ``computer``. On a single symbol
    (:meth:`compute`) the rank is 1.0 and the z-score NaN wherever the inner value exists.
    """

    name = "cross_sectional"
    _defaults: ClassVar[dict] = {"computer": None, "column": None, "method": "zscore"}
    computer: FeatureComputer  # parameters, set by FeatureComputer.__init__
    column: str
    method: str

    def _check_params(self) -> None:
        if not isinstance(self.computer, FeatureComputer):
            raise ConfigError(
                "The 'computer' parameter of CrossSectional must be a FeatureComputer. "
                f"Got {self.computer!r}."
            )
        if self.column not in self.computer.columns:
            raise ConfigError(
                f"The 'column' parameter of CrossSectional must be one of "
                f"{list(self.computer.columns)}. Got {self.column!r}."
            )
        if self.method not in ("zscore", "rank"):
            raise ConfigError(
                f"The 'method' parameter of CrossSectional must be 'zscore' or 'rank'. "
                f"Got {self.method!r}."
            )

    @property
    def lookback(self) -> int:
        return self.computer.lookback

    def _gap_free(self, candles: pd.DataFrame) -> bool:
        return self.computer._gap_free(candles)

    @property
    def columns(self) -> tuple[str, ...]:
        return (f"{self.column}_{self.method}",)

    def compute_panel(self, panel: Panel) -> dict[str, np.ndarray]:
        _check_panel(self, panel)
        raw = self.computer.compute_panel(panel)[self.column]
        if self.method == "rank":
            return {self.columns[0]: cross_sectional_rank(raw, pct=True)}
        return {self.columns[0]: cross_sectional_zscore(raw)}
