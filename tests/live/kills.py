"""Killing a paper runner in a tests: the process dies where the tick saves its checkpoint."""

from __future__ import annotations

from typing import Any

import pytest


class Killed(BaseException):
    """The process died (not an Exception: nothing in the runner catches it)."""


def run_killed_before_checkpoint(runner: Any, ticks: int = 1) -> None:
    """Run ``ticks`` ticks of ``runner``, the last killed before its checkpoint is saved (its
    orders and fills are journaled, the trader's state is not), and close its journal."""

    def die(*args: Any, **kwargs: Any) -> None:
        raise Killed

    runner.journal.record_checkpoint = die
    with pytest.raises(Killed):
        runner.run(max_ticks=ticks)
    runner.journal.close()
