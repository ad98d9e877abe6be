"""The order and runner state machines: the written tables, checked in one place."""

from __future__ import annotations

import itertools

import pytest

from core_engine.live.state import (
    FINAL_ORDER_STATUSES,
    ORDER_TRANSITIONS,
    RUNNER_TRANSITIONS,
    OrderStatus,
    RunnerState,
    StateTransitionError,
    check_order_transition,
    check_runner_transition,
)


def test_order_table_covers_every_status_and_finals_are_final():
    assert set(ORDER_TRANSITIONS) == set(OrderStatus)
    for old, new in itertools.product(OrderStatus, OrderStatus):
        if new in ORDER_TRANSITIONS[old]:
            assert check_order_transition("c", old.value, new.value) is new
        else:
            with pytest.raises(StateTransitionError, match=f"from '{old.value}'"):
                check_order_transition("c", old, new)
    assert all(not ORDER_TRANSITIONS[s] for s in FINAL_ORDER_STATUSES)
    # the two paths of a timed-out create: found later, or proven never placed
    assert OrderStatus.UNKNOWN in ORDER_TRANSITIONS[OrderStatus.NEW]
    assert {OrderStatus.FILLED, OrderStatus.REJECTED} <= ORDER_TRANSITIONS[OrderStatus.UNKNOWN]


def test_runner_table():
    assert set(RUNNER_TRANSITIONS) == set(RunnerState)
    assert check_runner_transition("running", "halted") is RunnerState.HALTED
    assert check_runner_transition("halted", "flatten") is RunnerState.FLATTEN
    with pytest.raises(StateTransitionError, match="cannot go from 'running' to 'running'"):
        check_runner_transition("running", "running")
    with pytest.raises(StateTransitionError, match="Unknown runner state 'paused'"):
        check_runner_transition("running", "paused")
