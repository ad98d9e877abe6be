"""The data forms the checking helpers accept: the same as ``walk_forward``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from core_engine._validate import check_integer, check_real
from core_engine.data.panel import Panel
from core_engine.errors import ConfigError

__all__ = ["as_panel", "check_options"]

#: More sampled times than this is a mistake (each is a full recomputation), not a wish.
MAX_TIMES = 100_000

FORMS = ("a Panel, a dict of symbol -> candle frame, or (store, symbols, timeframe) with a "
         "ParquetStore")


def as_panel(data: Any, who: str, timeframe: str | None = None) -> Panel:
    """The Panel of ``data`` (a Panel, a dict of candle frames, or a store triple).

    Raises
    ------
    ConfigError
        Naming ``who`` and the accepted forms, for anything else (a single candle frame
        included: a dict ``{symbol: frame}`` names its symbol).
    """
    if isinstance(data, Panel):
        return data
    if isinstance(data, Mapping):
        if not data:
            raise ConfigError(f"The 'data' argument of {who} is an empty dict; expected {FORMS}.")
        for symbol, frame in data.items():
            if not isinstance(frame, pd.DataFrame):
                raise ConfigError(
                    f"The 'data' argument of {who} must be {FORMS}; its value for {symbol!r} "
                    f"is a {type(frame).__name__}, not a candle frame."
                )
        return Panel.from_frames(dict(data), timeframe)
    if isinstance(data, tuple) and len(data) == 3 and hasattr(data[0], "read_panel"):
        store, symbols, frame_timeframe = data
        return Panel.from_store(store, symbols, frame_timeframe)
    hint = (" For one symbol's frame pass {'BTC/USDT': frame}." if isinstance(data, pd.DataFrame)
            else "")
    raise ConfigError(
        f"The 'data' argument of {who} must be {FORMS}. Got {type(data).__name__}.{hint}"
    )


def check_options(who: str, *, n_times: Any, seed: Any, **tolerances: Any) -> tuple[int, int]:
    """The sampling options every checker takes (``n_times``, ``seed``, tolerances such as
    ``rtol``): ``(n_times, seed)`` as ints, or a ConfigError naming ``who``."""
    n = check_integer(n_times, "n_times", who, low=1, high=MAX_TIMES)
    s = check_integer(seed, "seed", who, low=0, high=2**32 - 1)
    for name, value in tolerances.items():
        check_real(value, name, who, low=0)
    return n, s
