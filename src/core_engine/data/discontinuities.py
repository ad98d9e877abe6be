"""Price discontinuities: find them, and split a series at them on request.

A token redenomination (the exchange relists a token at 1/1000 of its price, often after a
trading halt of a day or two) leaves a candle series whose close jumps by a factor that no
market move comes near: in the real Binance data bundled with the tests, no 5m close moves
by more than ×1.34 from the one before, no 1h close by more than ×1.87, gaps included.
A backtest that holds a position across such a jump books the factor as profit or loss.

The library never adjusts prices behind the user's back. It reports the jumps —
:func:`~core_engine.data.gap_report` (``discontinuities``),
:func:`~core_engine.data.validate_candles` (a :class:`DiscontinuityWarning`),
:meth:`Panel.discontinuities <core_engine.data.Panel.discontinuities>`, the store's
coverage and a backtest's ``data_quality`` (with the trades held across one) — and :func:`split_at_discontinuities` turns one series into one symbol per
stretch between jumps, explicitly, with a report.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core_engine._config import keyword_checked
from core_engine.data.candles import (
    DEFAULT_DISCONTINUITY_FACTOR,
    DiscontinuityWarning,
    check_factor,
    price_jumps,
    timestamps_ns,
    validate_candles,
)
from core_engine.data.timeframes import timeframe_ns
from core_engine.errors import ConfigError

__all__ = [
    "DEFAULT_DISCONTINUITY_FACTOR",
    "DiscontinuityWarning",
    "SplitReport",
    "split_at_discontinuities",
]


@keyword_checked
@dataclass(frozen=True)
class SplitReport:
    """What :func:`split_at_discontinuities` did.

    ``pieces`` lists ``(name, first, last, candles)`` per piece, oldest first;
    ``discontinuities`` lists ``(last_before, first_after, missing, ratio)`` per cut.
    """

    symbol: str
    factor: float
    pieces: tuple[tuple[str, pd.Timestamp, pd.Timestamp, int], ...]
    discontinuities: tuple[tuple[pd.Timestamp, pd.Timestamp, int, float], ...]

    @property
    def changed(self) -> bool:
        """Whether the series was split."""
        return len(self.pieces) > 1

    def __str__(self) -> str:
        if not self.changed:
            return f"{self.symbol}: no price discontinuity beyond ×{self.factor:g}; not split"
        lines = [f"{self.symbol}: split at {len(self.discontinuities)} price discontinuit"
                 f"{'y' if len(self.discontinuities) == 1 else 'ies'} beyond ×{self.factor:g}"]
        for before, after, missing, ratio in self.discontinuities:
            lines.append(f"  cut {before:%Y-%m-%d %H:%M} -> {after:%Y-%m-%d %H:%M} UTC "
                         f"({missing:,} missing candles, close ×{ratio:.6g})")
        for name, first, last, candles in self.pieces:
            lines.append(f"  {name}: {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC, "
                         f"{candles:,} candles")
        return "\n".join(lines)


def split_at_discontinuities(
    frame: pd.DataFrame,
    timeframe: str | None = None,
    *,
    symbol: str,
    factor: float = DEFAULT_DISCONTINUITY_FACTOR,
    suffix: str = "#",
) -> tuple[dict[str, pd.DataFrame], SplitReport]:
    """Split one symbol's candles into one series per stretch between price discontinuities.

    Parameters
    ----------
    frame : pandas.DataFrame
        A valid candle frame.
    timeframe : str, optional
        Its grid step (checked when given; used to count the missing candles of each cut).
    symbol : str
        The series' symbol. The newest piece keeps it (it is the one still trading under that
        name); the older pieces are named ``symbol + suffix + k``, ``k = 1, 2, …`` from the
        oldest, e.g. ``"XYZ/USDT#1"``.
    factor : float
        A cut is made between two consecutive candles whose closes differ by more than this
        factor (see :data:`~core_engine.data.candles.DEFAULT_DISCONTINUITY_FACTOR`).
    suffix : str
        Joins the symbol and the number of an older piece.

    Returns
    -------
    (dict of str to candle frame, SplitReport)
        The pieces, oldest first, and what was cut where. Without a discontinuity, one piece
        under ``symbol`` (the frame itself).

    Raises
    ------
    DataValidationError
        If ``frame`` is not a valid candle frame.
    ConfigError
        For a bad ``symbol``, ``factor`` or ``suffix``.

    Examples
    --------
    >>> ts = pd.date_range("2021-01-01", periods=4, freq="5min", tz="UTC").as_unit("ns")
    >>> price = [2.0, 2.1, 2100.0, 2050.0]
    >>> frame = pd.DataFrame({"timestamp": ts, "open": price, "high": price, "low": price,
    ...                       "close": price, "volume": 1.0})
    >>> pieces, report = split_at_discontinuities(frame, "5m", symbol="XYZ/USDT")
    >>> {name: len(piece) for name, piece in pieces.items()}
    {'XYZ/USDT#1': 2, 'XYZ/USDT': 2}
    """
    if not isinstance(symbol, str) or not symbol:
        raise ConfigError(f"The 'symbol' parameter must be a name such as 'XYZ/USDT'. Got {symbol!r}.")
    if not isinstance(suffix, str) or not suffix:
        raise ConfigError(f"The 'suffix' parameter must be a non-empty string such as '#'. Got {suffix!r}.")
    factor = check_factor(factor)
    validate_candles(frame, timeframe, symbol=symbol, discontinuity_factor=None)
    ns = timestamps_ns(frame)
    close = frame["close"].to_numpy()
    before, after = price_jumps(close, factor)
    step = timeframe_ns(timeframe) if timeframe is not None else None
    cuts = tuple(
        (pd.Timestamp(int(ns[i]), tz="UTC"), pd.Timestamp(int(ns[k]), tz="UTC"),
         int((ns[k] - ns[i]) // step - 1) if step else k - i - 1, float(close[k] / close[i]))
        for i, k in zip(before, after, strict=True)
    )
    bounds = [0, *(int(k) for k in after), len(frame)]
    pieces: dict[str, pd.DataFrame] = {}
    rows = []
    n_pieces = len(bounds) - 1
    for k in range(n_pieces):
        name = symbol if k == n_pieces - 1 else f"{symbol}{suffix}{k + 1}"
        piece = frame if n_pieces == 1 else frame.iloc[bounds[k]:bounds[k + 1]].reset_index(drop=True)
        pieces[name] = piece
        if len(piece):
            rows.append((name, pd.Timestamp(int(ns[bounds[k]]), tz="UTC"),
                         pd.Timestamp(int(ns[bounds[k + 1] - 1]), tz="UTC"), len(piece)))
    return pieces, SplitReport(symbol, factor, tuple(rows), cuts)

