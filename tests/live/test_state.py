"""The runner state machine: the written table, checked in one place."""

from __future__ import annotations

import pytest

from core_engine.live.state import (
    RUNNER_TRANSITIONS,
    RunnerState,
    StateTransitionError,
    check_runner_transition,
)


def test_runner_table():
    assert set(RUNNER_TRANSITIONS) == set(RunnerState)
    for old in RunnerState:
        for new in RunnerState:
            if new in RUNNER_TRANSITIONS[old]:
                assert check_runner_transition(old.value, new.value) is new
            else:
                with pytest.raises(StateTransitionError, match="cannot go from"):
                    check_runner_transition(old, new)
    assert check_runner_transition("halted", "flatten") is RunnerState.FLATTEN
    with pytest.raises(StateTransitionError, match="Unknown runner state 'paused'"):
        check_runner_transition("running", "paused")
