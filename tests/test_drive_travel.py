"""The stated bound on travel on old information holds against a stream that adapts to the limits.

An adversarial detector: a normal 10 frames/s stream of a far person, then
messages each as late (a fraction of the dead-man in force) and as old (a
fraction of the freshness limit in force) as the limits allow, so the limits
grow while the car still acts on an older capture. The claim under test
(docs/drive.md): from any capture the car acts on, it travels at most
``travel_bound_m`` before it stands, the stop included.
"""

from __future__ import annotations

from typing import Callable

import pytest

from rover.drive.config import DriveConfig
from rover.drive.loop import DriveLoop
from tests.test_drive_fakes import FakeClock, RecordingChassis, detection_bytes, person

Policy = Callable[[DriveLoop, int], tuple[float, float, list]]
T_SWITCH = 1003.0


class AdaptiveStream:
    """Until ``T_SWITCH`` a 10 frames/s stream of a far person; then ``policy(loop, n)`` gives (gap, age, boxes)."""

    def __init__(self, clock: FakeClock, policy: Policy) -> None:
        self.clock, self.policy = clock, policy
        self.loop: DriveLoop | None = None
        self.seq, self.n = 0, 0
        self.next_t = clock.now
        self.pending: tuple[float, bytes] | None = None

    def _plan(self) -> tuple[float, bytes]:
        t = self.next_t
        if t < T_SWITCH:
            gap, age, boxes = 0.1, 0.05, [person(0.5, 0.1)]
        else:
            self.n += 1
            assert self.loop is not None
            gap, age, boxes = self.policy(self.loop, self.n)
        self.next_t = t + gap
        self.seq += 1
        return t, detection_bytes(boxes, t_capture_s=t - age, seq=self.seq)

    def recv(self, timeout_s: float) -> bytes | None:
        if self.pending is None:
            self.pending = self._plan()
        t, raw = self.pending
        if t > self.clock.now + timeout_s:
            self.clock.advance(timeout_s)
            return None
        self.clock.advance(max(0.0, t - self.clock.now))
        self.pending = None
        return raw


def worst_travel(policy: Policy, config: DriveConfig | None = None, run_s: float = 4.0) -> float:
    """The largest (distance since the newest capture acted on + the stop from the speed then), metres."""
    cfg = config or DriveConfig()
    clock = FakeClock(1000.0)
    chassis = RecordingChassis(clock)
    stream = AdaptiveStream(clock, policy)
    loop = DriveLoop(cfg, chassis, stream, None, clock=clock)
    stream.loop = loop
    rows = []  # (t, position at t, throttle from t on, newest capture acted on)
    position, t_prev, throttle = 0.0, clock.now, 0.0
    while clock.now < T_SWITCH + run_s:
        loop.step()
        position += throttle * cfg.top_speed_mps * (clock.now - t_prev)
        t_prev, throttle = clock.now, chassis.throttle
        rows.append((clock.now, position, throttle, loop.controller.target_capture))

    def position_at(t: float) -> float:
        last = rows[0]
        for row in rows:
            if row[0] > t:
                break
            last = row
        return last[1] + last[2] * cfg.top_speed_mps * max(0.0, t - last[0])

    worst = 0.0
    for _t, pos, thr, capture in rows:
        if capture is not None and capture >= T_SWITCH - 1.0:
            worst = max(worst, pos - position_at(capture) + thr * cfg.top_speed_mps * cfg.stop_time_s)
    return worst


def test_a_stream_that_slows_and_ages_then_loses_the_person_stays_within_the_travel_bound() -> None:
    # The review's case: 5 frames with the person, then empty ones, each 0.7 dead-man apart and 0.99 max age old:
    # the limits grow from 0.25 / 0.3 s to 1.0 / 1.2 s while the car still acts on the last frame of the person.
    def policy(loop: DriveLoop, n: int) -> tuple[float, float, list]:
        return 0.7 * loop.limits.deadman_s, 0.99 * loop.limits.max_age_s, [person(0.5, 0.1)] if n <= 5 else []
    cfg = DriveConfig()
    # 1 cm for the discrete ticks (a tick of 0.05 s at the last speed before the cut)
    assert worst_travel(policy, cfg) <= cfg.travel_bound_m + 0.01


@pytest.mark.parametrize("gap, age, seen, spike", [(0.9, 0.99, 10, False), (0.7, 0.95, 5, True), (0.5, 0.8, 0, True),
                                                   (0.9, 0.95, 100, False)])
def test_adversarial_streams_stay_within_the_travel_bound(gap: float, age: float, seen: int, spike: bool) -> None:
    def policy(loop: DriveLoop, n: int) -> tuple[float, float, list]:
        lim = loop.limits
        if spike and n % 2 == 0 and n > seen:  # a stale frame (1 s old) between fresh ones: the latency spikes
            since = loop.clock() - (loop.machine.last_fresh or loop.clock())
            return max(0.01, gap * (lim.deadman_s - since)), 1.0, []
        return gap * lim.deadman_s, age * lim.max_age_s, [person(0.5, 0.1)] if n <= seen else []
    cfg = DriveConfig()
    assert worst_travel(policy, cfg) <= cfg.travel_bound_m + 0.01
