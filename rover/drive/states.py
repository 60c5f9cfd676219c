"""The follower's state machine.

::

    SAFE --K consecutive fresh messages--> ARMED --target locked--> FOLLOWING
    FOLLOWING --target not in a fresh message--> LOST (coast: steering neutral, slowing)
    LOST --lost_coast_s--> SEARCH (optional, head sweep, at most search_s) --> STOPPED
    LOST / SEARCH / STOPPED --target seen again--> FOLLOWING
    any state --no fresh message for deadman_s--> SAFE (re-arming needed)
    any state --the detector reports it is blind or stopping--> SAFE at once

A *fresh* message is a valid detection message with a processed frame whose
capture is younger than ``max_age_s``. Stale, invalid and status-only
messages never arm the car, never feed the dead-man and break a run of fresh
messages. Pure: the caller passes the time (seconds of the loop's clock).
"""

from __future__ import annotations

import enum


class State(str, enum.Enum):
    SAFE = "SAFE"
    ARMED = "ARMED"
    FOLLOWING = "FOLLOWING"
    LOST = "LOST"
    SEARCH = "SEARCH"
    STOPPED = "STOPPED"

    def __str__(self) -> str:
        return self.value


#: Timer comparisons allow one nanosecond (the clock's resolution) for float rounding.
EPSILON_S = 1e-9

#: States in which the car may move.
MOVING_STATES = frozenset({State.FOLLOWING, State.LOST})


class StateMachine:
    """Decides the state from message events and time.

    ``arm_count`` fresh messages in a row arm; ``deadman_s`` without a fresh
    message disarms; ``lost_coast_s`` of LOST leads to SEARCH (when
    ``search``) or STOPPED; SEARCH ends after ``search_s``.
    """

    def __init__(self, arm_count: int, deadman_s: float, lost_coast_s: float, search: bool, search_s: float, now: float) -> None:
        self.arm_count = arm_count
        self.deadman_s = deadman_s
        self.lost_coast_s = lost_coast_s
        self.search = search
        self.search_s = search_s
        self.state = State.SAFE
        self.fresh_run = 0
        self.last_fresh: float | None = None
        self.since = now  # when the current state was entered

    def _enter(self, state: State, now: float) -> None:
        if state is not self.state:
            self.state = state
            self.since = now

    def disarm(self, now: float) -> State:
        """Back to SAFE at once (the detector said it is blind or stopping)."""
        self.fresh_run = 0
        self._enter(State.SAFE, now)
        return self.state

    def not_fresh(self) -> None:
        """A stale, invalid or status-only message arrived: the run of fresh messages is broken."""
        self.fresh_run = 0

    def fresh(self, now: float, target_seen: bool) -> State:
        """A fresh message arrived; ``target_seen`` if it shows the locked target."""
        if self.last_fresh is not None and now - self.last_fresh >= self.deadman_s - EPSILON_S:
            self.fresh_run = 0  # a gap as long as the dead-man's breaks the run too
        self.last_fresh = now
        self.fresh_run += 1
        if self.state is State.SAFE:
            if self.fresh_run >= self.arm_count:
                self._enter(State.ARMED, now)
            return self.state
        if target_seen:
            self._enter(State.FOLLOWING, now)
        elif self.state is State.FOLLOWING:
            self._enter(State.LOST, now)
        return self.state

    def tick(self, now: float) -> State:
        """Apply the timers; call once per loop iteration, message or not."""
        now += EPSILON_S
        if self.state is not State.SAFE and (self.last_fresh is None or now - self.last_fresh >= self.deadman_s):
            self.fresh_run = 0
            self._enter(State.SAFE, now - EPSILON_S)
        elif self.state is State.LOST and now - self.since >= self.lost_coast_s:
            self._enter(State.SEARCH if self.search else State.STOPPED, now - EPSILON_S)
        elif self.state is State.SEARCH and now - self.since >= self.search_s:
            self._enter(State.STOPPED, now - EPSILON_S)
        return self.state

    def next_deadline(self) -> float | None:
        """The earliest time at which :meth:`tick` may change the state, or None.

        The loop shortens its poll timeout to it, so the dead-man fires at
        ``deadman_s`` exactly rather than up to one tick later.
        """
        if self.state is State.SAFE or self.last_fresh is None:
            return None
        deadline = self.last_fresh + self.deadman_s
        if self.state is State.LOST:
            deadline = min(deadline, self.since + self.lost_coast_s)
        elif self.state is State.SEARCH:
            deadline = min(deadline, self.since + self.search_s)
        return deadline
