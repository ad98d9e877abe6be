"""The runner's state machine: an enum with its written transition table.

Order statuses and their table belong to the trading layer
(:data:`core_engine.trading.orders.TRANSITIONS`, checked by
:func:`core_engine.trading.orders.check_transition`); the journal applies that same table.

Runner states: ``running`` trades; ``halted`` sends no new orders but may cancel; ``flatten``
cancels every open order and closes every position, then stays ``flatten`` (no new entries)
until an operator resumes. Resuming is explicit: ``running`` is never entered by itself,
except at the end of a breaker's halt or flatten (the daily loss limit's UTC day, the
drawdown's ``drawdown_halt_for``), as the portfolio rules halt entries.
Every change goes through :func:`check_runner_transition`; an impossible change raises
:class:`StateTransitionError`.
"""

from __future__ import annotations

from enum import StrEnum

from core_engine.errors import CoreEngineError

__all__ = ["RUNNER_TRANSITIONS", "RunnerState", "StateTransitionError", "check_runner_transition"]


class StateTransitionError(CoreEngineError, RuntimeError):
    """The runner state machine was asked for a change its table does not allow."""


class RunnerState(StrEnum):
    RUNNING = "running"
    HALTED = "halted"
    FLATTEN = "flatten"


_R = RunnerState
RUNNER_TRANSITIONS: dict[RunnerState, frozenset[RunnerState]] = {
    _R.RUNNING: frozenset({_R.HALTED, _R.FLATTEN}),
    _R.HALTED: frozenset({_R.RUNNING, _R.FLATTEN}),
    _R.FLATTEN: frozenset({_R.HALTED, _R.RUNNING}),
}


def check_runner_transition(old: object, new: object) -> RunnerState:
    """Return ``new`` as a :class:`RunnerState` if ``old -> new`` is allowed, else raise.

    Staying in the same state is not a transition; callers skip it.
    """
    states = []
    for value in (old, new):
        try:
            states.append(RunnerState(str(getattr(value, "value", value))))
        except ValueError:
            allowed = ", ".join(member.value for member in RunnerState)
            raise StateTransitionError(
                f"Unknown runner state {value!r}; expected one of {allowed}.") from None
    if states[1] not in RUNNER_TRANSITIONS[states[0]]:
        raise StateTransitionError(
            f"The runner cannot go from {states[0].value!r} to {states[1].value!r}.")
    return states[1]
