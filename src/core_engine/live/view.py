"""LiveView: the market data a live runner's trader reads, through the broker.

The runner's counterpart of replay's ``PanelView``: closed candles only (the candle forming at
the tick is never shown), one broker read per symbol and tick, the paper broker's known panel
when it has one, and the trader's wake-up requests.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from core_engine.data.panel import Panel
from core_engine.data.timeframes import timeframe_ns

__all__ = ["LiveView"]


class LiveView:
    """Market data of the runner's context, read through the broker (closed candles only)."""

    def __init__(self, broker: Any, symbols: Iterable[str], timeframe: str,
                 history: int | None = 500, end: Any = None) -> None:
        self.broker = broker
        self.symbols = tuple(symbols)
        self.timeframe = timeframe
        self.step = pd.Timedelta(timeframe_ns(timeframe), unit="ns")
        self.history = history
        self.end = None if end is None else pd.Timestamp(end)
        self.wakes: list[int] = []
        self._cache: dict[Any, Any] = {}
        self._now: pd.Timestamp | None = None

    def begin_tick(self, now: pd.Timestamp) -> None:
        self._now = now
        self._cache.clear()

    def _closed(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self._now is None or frame.empty:
            return frame
        return frame[frame["timestamp"] + self.step <= self._now].reset_index(drop=True)

    def candles(self, symbol: str, n: int | None) -> pd.DataFrame:
        """The last ``n`` closed candles (one broker read per symbol and tick)."""
        want = None if self.history is None else max(n or 0, self.history)
        key = ("candles", symbol)
        cached = self._cache.get(key)
        if cached is None or (cached[0] is not None and (want is None or want > cached[0])):
            frame = self._closed(self.broker.candles(symbol, self.timeframe, None, want))
            self._cache[key] = cached = (want, frame)
        frame = cached[1]
        return frame if n is None else frame.tail(n).reset_index(drop=True)

    def panel(self) -> Panel:
        if "panel" not in self._cache:
            known = getattr(getattr(self.broker, "broker", None), "known_panel", None)
            if known is not None:
                self._cache["panel"] = known()
            else:
                frames = {s: self.candles(s, None) for s in self.symbols}
                self._cache["panel"] = Panel.from_frames(frames, self.timeframe)
        return self._cache["panel"]

    def causal(self, key: str, fn: Any) -> tuple[Any, int]:
        if ("causal", key) not in self._cache:
            panel = self.panel()
            self._cache[("causal", key)] = (fn(panel), panel.n_times - 1)
        return self._cache[("causal", key)]

    def last_prices(self) -> np.ndarray:
        """The last closed candle's close of each symbol (NaN when it has none)."""
        out = np.full(len(self.symbols), np.nan)
        if "panel" not in self._cache and not hasattr(getattr(self.broker, "broker", None),
                                                      "known_panel"):
            for j, symbol in enumerate(self.symbols):
                frame = self.candles(symbol, 1)
                if len(frame):
                    out[j] = float(frame["close"].iloc[-1])
            return out
        panel = self.panel()
        for j, symbol in enumerate(self.symbols):
            closes = np.asarray(panel.close)[:, panel.column(symbol)]
            present = closes[~np.isnan(closes)]
            if present.size:
                out[j] = present[-1]
        return out

    def wake_at(self, t: pd.Timestamp) -> None:
        heapq.heappush(self.wakes, int(pd.Timestamp(t).value))

    def fingerprint(self) -> str:
        """A short hash of what the trader can see now (last closed candle of each symbol)."""
        panel = self.panel()
        last = panel.slice_rows(max(panel.n_times - 1, 0), panel.n_times)
        digest = hashlib.sha256(str(panel.n_times).encode())
        for array in (last.index.asi8, last.open, last.high, last.low, last.close, last.volume):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]
