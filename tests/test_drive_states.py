"""The state machine with an explicit clock."""

from __future__ import annotations

import pytest

from rover.drive.states import State, StateMachine


def machine(search: bool = False) -> StateMachine:
    return StateMachine(arm_count=3, deadman_s=0.5, lost_coast_s=1.0, search=search, search_s=4.0, now=0.0)


def test_starts_safe_and_arms_only_after_k_consecutive_fresh_messages() -> None:
    m = machine()
    assert m.state is State.SAFE
    assert m.fresh(0.1, target_seen=True) is State.SAFE
    assert m.fresh(0.2, target_seen=True) is State.SAFE
    assert m.fresh(0.3, target_seen=True) is State.ARMED
    assert m.fresh(0.4, target_seen=True) is State.FOLLOWING


@pytest.mark.parametrize("interruption", ["not_fresh", "gap"])
def test_a_stale_or_invalid_message_or_a_gap_restarts_the_arming_count(interruption: str) -> None:
    m = machine()
    m.fresh(0.1, True)
    m.fresh(0.2, True)
    if interruption == "not_fresh":
        m.not_fresh()
        t = 0.3
    else:
        t = 0.2 + 0.5  # as long as the dead-man
    assert m.fresh(t, True) is State.SAFE
    assert m.fresh(t + 0.1, True) is State.SAFE
    assert m.fresh(t + 0.2, True) is State.ARMED


def test_deadman_returns_to_safe_exactly_after_half_a_second() -> None:
    m = machine()
    for t in (0.1, 0.2, 0.3, 0.4):
        m.fresh(t, True)
    assert m.state is State.FOLLOWING
    assert m.tick(0.4 + 0.499) is State.FOLLOWING
    assert m.tick(0.4 + 0.5) is State.SAFE
    assert m.fresh(1.0, True) is State.SAFE  # re-arming needed


def test_lost_then_stopped_without_search() -> None:
    m = machine()
    for t in (0.1, 0.2, 0.3, 0.4):
        m.fresh(t, True)
    assert m.fresh(0.5, target_seen=False) is State.LOST
    for i in range(1, 10):  # messages keep coming, without the target
        m.fresh(0.5 + 0.1 * i, False)
        m.tick(0.5 + 0.1 * i)
    assert m.state is State.LOST
    m.fresh(1.5, False)
    assert m.tick(1.5) is State.STOPPED
    assert m.fresh(1.6, target_seen=True) is State.FOLLOWING


def test_search_is_bounded() -> None:
    m = machine(search=True)
    for t in (0.1, 0.2, 0.3, 0.4):
        m.fresh(t, True)
    m.fresh(0.5, False)
    t = 0.5
    states = []
    while t < 7.0:
        t = round(t + 0.1, 6)
        m.fresh(t, False)
        states.append(m.tick(t))
    assert State.SEARCH in states
    assert states.index(State.SEARCH) == 9  # at 1.5 s: after lost_coast_s
    assert m.state is State.STOPPED
    assert states.index(State.STOPPED) - states.index(State.SEARCH) == 40  # search_s


def test_target_back_while_lost_resumes_following() -> None:
    m = machine()
    for t in (0.1, 0.2, 0.3, 0.4):
        m.fresh(t, True)
    m.fresh(0.5, False)
    assert m.fresh(0.6, True) is State.FOLLOWING
