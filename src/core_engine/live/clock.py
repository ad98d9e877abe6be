"""The runner's clocks: the real UTC time, and a simulated one that jumps (replays, tests)."""

from __future__ import annotations

import time as _time
from typing import Any

import pandas as pd

from core_engine._config import keyword_checked

__all__ = ["SimulatedClock", "WallClock"]


@keyword_checked
class SimulatedClock:
    """A clock that jumps: ``sleep_until`` moves time, nothing waits (replays, tests)."""

    def __init__(self, start: Any) -> None:
        from core_engine.data.timeframes import to_utc_timestamp

        self._now = to_utc_timestamp(start, name="start")  # ConfigError for "yesterday", NaN

    def now(self) -> pd.Timestamp:
        return self._now

    def sleep_until(self, t: pd.Timestamp) -> None:
        self._now = max(self._now, pd.Timestamp(t))


class WallClock:
    """The real UTC time; ``sleep_until`` sleeps in short steps (so a stop is quick)."""

    def now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")

    def sleep_until(self, t: pd.Timestamp) -> None:
        while (left := (pd.Timestamp(t) - self.now()).total_seconds()) > 0:
            _time.sleep(min(left, 1.0))
