"""Price discontinuities in a run's ``data_quality``: how many the data hold, and how many
trades held a position across one.

A trade that holds a position across a price discontinuity (a token redenomination, a bad
tick: see :mod:`core_engine.data.discontinuities`) books the jump as profit or loss; one
such trade over a ×1000 relisting turned a −14 % strategy into +16,665 %. The engine does
not change those trades (the data are what they are); it counts them so that
``summary()`` can say so, and the user can split the series with
:func:`~core_engine.data.split_at_discontinuities`.

A trade *spans* the discontinuity between the consecutive present candles ``before`` and
``after`` of its symbol when it entered at or before the open of ``before`` (so it held
the position at that candle's close) and its exit price comes from ``after`` or a later
candle (an exit at the last close before the gap does not span it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core_engine.backtest._kernels import close_quality_2d
from core_engine.data.candles import DEFAULT_DISCONTINUITY_FACTOR
from core_engine.data.panel import Panel

__all__ = ["DISCONTINUITY_KEYS", "discontinuity_quality", "trade_rows_from_times",
           "trades_spanning"]

#: The ``data_quality`` keys this module fills.
DISCONTINUITY_KEYS = ("discontinuity_factor", "price_discontinuities",
                      "price_discontinuities_by_symbol", "trades_across_discontinuity")


def trades_spanning(jumps: np.ndarray, cols: np.ndarray, entry_rows: np.ndarray,
                    exit_rows: np.ndarray, n_times: int) -> np.ndarray:
    """Which trades span a discontinuity (boolean array, one entry per trade).

    ``jumps`` is an ``(n, 3)`` integer array of ``(column, row_before, row_after)``;
    a trade in column ``c`` entered at the open of ``entry_rows`` and priced its exit on
    candle ``exit_rows``. Within a column the jumps are consecutive pairs of present
    candles, so the first jump whose ``row_before`` is at or after the entry also has the
    earliest ``row_after``: the trade spans a jump iff it spans that one.
    """
    cols = np.asarray(cols, dtype=np.int64)
    spans = np.zeros(cols.shape[0], dtype=bool)
    if len(jumps) == 0 or cols.shape[0] == 0:
        return spans
    jumps = np.asarray(jumps, dtype=np.int64)
    order = np.lexsort((jumps[:, 1], jumps[:, 0]))
    jump_col, before, after = (jumps[order, k] for k in range(3))
    width = np.int64(n_times) + 1
    pos = np.searchsorted(jump_col * width + before,
                          cols * width + np.asarray(entry_rows, dtype=np.int64), side="left")
    found = pos < len(order)
    pos = np.minimum(pos, len(order) - 1)
    spans[:] = found & (jump_col[pos] == cols) & (after[pos] <= np.asarray(exit_rows))
    return spans


def _jump_rows(panel: Panel, factor: float) -> np.ndarray:
    """``(column, row_before, row_after)`` of every discontinuity of ``panel``."""
    table = panel.discontinuities(factor)
    ns = panel.index.asi8
    column = {symbol: j for j, symbol in enumerate(panel.symbols)}
    return np.column_stack([
        table["symbol"].map(column).to_numpy(dtype=np.int64),
        np.searchsorted(ns, pd.DatetimeIndex(table["last_before"]).asi8),
        np.searchsorted(ns, pd.DatetimeIndex(table["first_after"]).asi8),
    ]).astype(np.int64).reshape(-1, 3)


def discontinuity_quality(panel: Panel, cols: Any, entry_rows: Any, exit_rows: Any, *,
                          factor: float = DEFAULT_DISCONTINUITY_FACTOR,
                          per_symbol: np.ndarray | None = None) -> dict[str, Any]:
    """The discontinuity section of a run's ``data_quality``.

    Parameters
    ----------
    panel : Panel
        The run's candles, warm-up history included.
    cols, entry_rows, exit_rows : array-like of int
        Per trade: the symbol's column, the row of its entry candle (entry at its open) and
        the row of the candle its exit price comes from.
    factor : float
        A discontinuity is a close more than ``factor`` above or below the previous present
        close of the same symbol (:meth:`Panel.discontinuities`).
    per_symbol : numpy.ndarray, optional
        The discontinuities per symbol when the caller has counted them already
        (``close_quality_2d(panel.close, factor)[2]``); counted here otherwise. The jumps
        are only listed (to match them with the trades) when there is one.

    Returns
    -------
    dict
        ``discontinuity_factor``; ``price_discontinuities`` (in the whole panel) and
        ``price_discontinuities_by_symbol`` (every symbol, 0 included);
        ``trades_across_discontinuity`` (trades that held a position across one).

    Examples
    --------
    >>> index = pd.date_range("2021-01-01", periods=4, freq="5min", tz="UTC")
    >>> close = np.array([[1.0], [1.1], [1100.0], [1090.0]])
    >>> panel = Panel(index, ["XYZ/USDT"], "5m", close, close, close, close, close * 0 + 1)
    >>> quality = discontinuity_quality(panel, [0, 0], [0, 2], [3, 3])
    >>> quality["price_discontinuities"], quality["trades_across_discontinuity"]
    (1, 1)
    """
    if per_symbol is None:
        per_symbol = close_quality_2d(panel.close, factor)[2] if panel.n_times \
            else np.zeros(panel.n_symbols, dtype=np.int64)
    total = int(np.sum(per_symbol))
    across = 0
    if total:
        jumps = _jump_rows(panel, factor)
        across = int(trades_spanning(jumps, np.asarray(cols, dtype=np.int64), entry_rows,
                                     exit_rows, panel.n_times).sum())
    return {
        "discontinuity_factor": float(factor),
        "price_discontinuities": total,
        "price_discontinuities_by_symbol": {s: int(n) for s, n in zip(panel.symbols, per_symbol,
                                                                    strict=True)},
        "trades_across_discontinuity": across,
    }


def trade_rows_from_times(panel: Panel, trades: pd.DataFrame
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cols, entry_rows, exit_rows)`` of a trades frame that holds times only (an event
    replay): the entry row is the candle opening at ``entry_time``; the exit row is the
    candle opening at ``exit_time`` when the symbol has one (an exit at an open), else the
    candle closing then (an exit inside a candle or at its close). Between two adjacent
    candles both exist, and an exit at the close of the first is read as one at the open of
    the second: a stop filled in the candle right before an adjacent jump counts as spanning
    it (an overcount, never a miss)."""
    if len(trades) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    ns = panel.index.asi8
    column = {symbol: j for j, symbol in enumerate(panel.symbols)}
    cols = trades["symbol"].map(column).to_numpy(dtype=np.int64)
    entry_rows = np.searchsorted(ns, pd.DatetimeIndex(trades["entry_time"]).asi8)
    at = np.minimum(np.searchsorted(ns, pd.DatetimeIndex(trades["exit_time"]).asi8),
                    len(ns) - 1)
    opens = ~np.isnan(panel.open[at, cols])
    exit_rows = np.where(opens, at, at - 1)
    return cols, entry_rows.astype(np.int64), exit_rows.astype(np.int64)
