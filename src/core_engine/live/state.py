"""The two state machines of live trading, each an enum with its written transition table.

Every change of state goes through :func:`check_order_transition` or
:func:`check_runner_transition`; an impossible change raises :class:`StateTransitionError`.

Order statuses are those of DESIGN.md §7. ``unknown`` is the status of an order whose create
(or cancel) call timed out: the exchange may or may not have it, and only a lookup by client id
resolves it (an order never found after a bounded number of lookups is ``rejected``, with the
reason journaled).

Runner states: ``running`` trades; ``halted`` sends no new orders but may cancel; ``flatten``
cancels every open order and closes every position, then stays ``flatten`` (no new entries)
until an operator resumes. Resuming is explicit: ``running`` is never entered by itself.
"""

from __future__ import annotations

from enum import Enum, StrEnum

from core_engine.errors import CoreEngineError

__all__ = [
    "FINAL_ORDER_STATUSES",
    "ORDER_TRANSITIONS",
    "RUNNER_TRANSITIONS",
    "OrderStatus",
    "RunnerState",
    "StateTransitionError",
    "check_order_transition",
    "check_runner_transition",
]


class StateTransitionError(CoreEngineError, RuntimeError):
    """A state machine was asked for a change its table does not allow."""


class OrderStatus(StrEnum):
    NEW = "new"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


class RunnerState(StrEnum):
    RUNNING = "running"
    HALTED = "halted"
    FLATTEN = "flatten"


_S = OrderStatus
FINAL_ORDER_STATUSES = frozenset({_S.FILLED, _S.CANCELLED, _S.REJECTED})

ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    # new: the intent is journaled, the create call not yet answered
    _S.NEW: frozenset({_S.SUBMITTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.REJECTED,
                       _S.UNKNOWN}),
    _S.SUBMITTED: frozenset({_S.SUBMITTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED,
                             _S.REJECTED, _S.UNKNOWN}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.UNKNOWN}),
    # unknown: resolved by a lookup by client id, or rejected after the bounded misses
    _S.UNKNOWN: frozenset({_S.UNKNOWN, _S.SUBMITTED, _S.PARTIALLY_FILLED, _S.FILLED,
                           _S.CANCELLED, _S.REJECTED}),
    _S.FILLED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REJECTED: frozenset(),
}

_R = RunnerState
RUNNER_TRANSITIONS: dict[RunnerState, frozenset[RunnerState]] = {
    _R.RUNNING: frozenset({_R.HALTED, _R.FLATTEN}),
    _R.HALTED: frozenset({_R.RUNNING, _R.FLATTEN}),
    _R.FLATTEN: frozenset({_R.HALTED, _R.RUNNING}),
}


def _parse(enum: type, value: object, what: str) -> Enum:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)  # type: ignore[attr-defined]
        raise StateTransitionError(f"Unknown {what} {value!r}; expected one of {allowed}.") from None


def check_order_transition(client_id: str, old: object, new: object) -> OrderStatus:
    """Return ``new`` as an :class:`OrderStatus` if ``old -> new`` is allowed, else raise."""
    old_status = _parse(OrderStatus, old, "order status")
    new_status = _parse(OrderStatus, new, "order status")
    if new_status not in ORDER_TRANSITIONS[old_status]:  # type: ignore[index]
        raise StateTransitionError(
            f"Order {client_id} cannot go from {old_status.value!r} to {new_status.value!r}"
            + (" (a final status never changes)." if old_status in FINAL_ORDER_STATUSES else "."))
    return new_status


def check_runner_transition(old: object, new: object) -> RunnerState:
    """Return ``new`` as a :class:`RunnerState` if ``old -> new`` is allowed, else raise.

    Staying in the same state is not a transition; callers skip it.
    """
    old_state = _parse(RunnerState, old, "runner state")
    new_state = _parse(RunnerState, new, "runner state")
    if new_state not in RUNNER_TRANSITIONS[old_state]:  # type: ignore[index]
        raise StateTransitionError(
            f"The runner cannot go from {old_state.value!r} to {new_state.value!r}.")
    return new_state
