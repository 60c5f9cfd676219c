"""The motors' dead band with plain numbers: creep or stand, never chatter; the safety stops never wait.

The gate (rover.drive.motion) is ticked at the loop's 20 Hz on an explicit
clock; the controller tests check that the stops the safety logic demands
(a cap under the creep speed, the bumper, old information, SAFE) reach the
throttle on the same tick, and that a moving car's throttle is never a small
value inside the motors' dead band.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from rover.drive.config import DriveConfig
from rover.drive.control import Controller
from rover.drive.limits import Limits
from rover.drive.motion import MotionGate
from rover.drive.states import State
from tests.test_drive_estimate import box_of

TICK = 0.05
LIMITS = Limits(max_age_s=0.45, deadman_s=0.55, stop_time_s=0.2, travel_bound_m=1.5, period_s=0.2)


def changes(speeds: list[float]) -> int:
    """Stand <-> move changes in a series."""
    moving = [s > 0 for s in speeds]
    return sum(a != b for a, b in itertools.pairwise(moving))


def changes_per_s(speeds: list[float]) -> float:
    """... per second of a 20 Hz series."""
    return changes(speeds) / (len(speeds) * TICK)


def noisy_law(t: float) -> float:
    """A law near the follow distance: 0.25 m/s, dipping to -0.15 m/s for 0.2 s every 0.8 s (the estimate's noise)."""
    return -0.15 if (t % 0.8) < 0.2 else 0.25


def run(gate: MotionGate, law, seconds: float, cap: float = 1.0, t0: float = 0.0) -> list[float]:
    return [gate.speed(law(t0 + k * TICK), cap, t0 + k * TICK) for k in range(round(seconds / TICK))]


def test_a_noisy_law_near_the_follow_distance_creeps_instead_of_chattering() -> None:
    plain = run(MotionGate(), noisy_law, 8.0)  # the thresholds 0: the old behaviour
    gated = run(MotionGate(0.1, 0.15, 0.0, 0.5), noisy_law, 8.0)
    assert changes_per_s(plain) == pytest.approx(19 / 8.0)  # 10 starts and 9 stops: one of each per dip
    assert changes_per_s(gated) == pytest.approx(1 / 8.0)  # one start, then it creeps through the dips
    assert min(gated[10:]) == pytest.approx(0.1)  # at the creep speed while the law dips, never below it


def test_a_person_who_stopped_is_stood_for_after_stand_after_s_and_the_car_starts_only_above_start_speed() -> None:
    gate = MotionGate(0.1, 0.15, 0.0, 0.5)
    assert run(gate, lambda t: 0.3, 1.0)[-1] == 0.3
    asked = run(gate, lambda t: -0.2, 1.0, t0=1.0)  # the law keeps asking to stand
    stood_at = next(k for k, s in enumerate(asked) if s == 0.0) * TICK
    assert stood_at == pytest.approx(0.5)
    assert set(asked[:10]) == {0.1}
    assert run(gate, lambda t: 0.14, 1.0, t0=2.0) == [0.0] * 20  # below start_speed: it keeps standing
    assert run(gate, lambda t: 0.15, 0.1, t0=3.0)[0] == 0.15


def test_a_cap_under_the_creep_speed_stands_at_once_and_no_speed_is_ever_above_the_cap() -> None:
    gate = MotionGate(0.1, 0.15, 0.0, 0.5)
    run(gate, lambda t: 0.3, 1.0)
    assert gate.speed(-0.2, 1.0, 1.0) == 0.1  # debouncing the law's stop: creeping ...
    assert gate.speed(-0.2, 0.09, 1.05) == 0.0  # ... but a safety cap below the creep speed stops it on this tick
    assert not gate.moving
    for cap in (0.0, 0.05, 0.1, 0.12, 0.5):
        for law in (-1.0, 0.0, 0.05, 0.12, 0.3, 2.0):
            gate = MotionGate(0.1, 0.15, 0.0, 0.5, moving=True)
            out = gate.speed(law, cap, 0.0)
            assert out <= cap and (out == 0.0 or out >= 0.1), (law, cap, out)


def test_thresholds_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError, match="stop_speed_mps"):
        MotionGate(0.1, 0.05, 0.0, 0.5)
    with pytest.raises(ValueError, match="stand_after_s"):
        MotionGate(0.1, 0.15, 0.0, -1.0)
    with pytest.raises(ValueError, match="stop_speed_mps"):
        DriveConfig(stop_speed_mps=0.2)
    slow = Controller(DriveConfig(max_throttle=0.1))  # --max-throttle 0.1 (0.12 m/s) for a first test: still starts
    assert slow.gate.start_speed_mps == pytest.approx(0.12) and slow.gate.min_speed_mps == pytest.approx(0.1)


def approach(cfg: DriveConfig, seconds: float = 6.0) -> tuple[Controller, float, list[float]]:
    """A person standing 0.5 m beyond the follow distance, their box jittering by +-2 cm of range: the throttles."""
    ctl = Controller(cfg)
    t, frame, throttles = 0.0, 0.0, []
    while t < seconds:
        if t >= frame + 0.2 - 1e-9:
            jitter = 0.02 * (-1) ** round(frame / 0.2)
            ctl.observe(box_of(cfg.follow_distance_m + 0.5 + jitter - ctl.odometer.at(frame)[0]), frame)
            frame += 0.2
        throttles.append(ctl.output(State.FOLLOWING, t, TICK, LIMITS).throttle)
        t += TICK
    return ctl, t, throttles


def test_a_moving_cars_throttle_is_never_inside_the_dead_band() -> None:
    cfg = DriveConfig()
    small = cfg.min_speed_mps / cfg.top_speed_mps
    ctl, _, throttles = approach(cfg)
    assert all(v == 0.0 or v >= small - 1e-9 for v in throttles), throttles
    assert any(abs(v - small) < 1e-9 for v in throttles)  # it crept up to the follow distance ...
    assert throttles[-20:] == [0.0] * 20 and changes(throttles) == 2  # ... and stood: one start, one stop
    assert ctl.estimate is not None and abs(ctl.estimate.range_m - cfg.follow_distance_m) < 0.15
    plain = dataclasses.replace(cfg, min_speed_mps=0.0, start_speed_mps=0.0, stop_speed_mps=0.0, stand_after_s=0.0)
    _, _, before = approach(plain)  # the old behaviour: tiny throttles (a jump to min_duty each), on and off
    assert any(0.0 < v < small for v in before) and changes(before) > 2


def creeping() -> tuple[Controller, float]:
    """A controller whose car creeps towards a person at the follow distance."""
    ctl, t, throttles = approach(DriveConfig(), 1.5)
    assert throttles[-1] > 0
    return ctl, t


@pytest.mark.parametrize("stop", ["bumper", "safe", "old information", "cut box"])
def test_the_safety_stops_reach_the_throttle_on_the_same_tick(stop: str) -> None:
    ctl, t = creeping()
    ctl.gate.moving, ctl.gate.below_since = True, t - 0.1  # moving and debouncing a stop of the law
    assert ctl.output(State.FOLLOWING, t, TICK, LIMITS).throttle > 0
    t += TICK
    if stop == "bumper":
        out = ctl.output(State.FOLLOWING, t, TICK, LIMITS, forward_blocked=True)
    elif stop == "safe":
        out = ctl.output(State.SAFE, t, TICK, LIMITS)
    elif stop == "old information":
        out = ctl.output(State.LOST, ctl.target_capture + LIMITS.horizon_s, TICK, LIMITS)
    else:
        ctl.observe((0.45, 0.0, 0.55, 0.9), t - 0.01)  # the head cut by the frame: too near to approach
        out = ctl.output(State.FOLLOWING, t, TICK, LIMITS)
    assert out.throttle == 0.0
    assert not ctl.gate.moving  # and a start needs start_speed_mps again


def test_with_every_threshold_zero_the_law_passes_unchanged() -> None:
    cfg = dataclasses.replace(DriveConfig(), min_speed_mps=0.0, start_speed_mps=0.0, stop_speed_mps=0.0, stand_after_s=0.0)
    gate = Controller(cfg).gate
    assert [gate.speed(v, 1.0, 0.0) for v in (0.3, 0.01, 0.0, -0.1, 0.02)] == [0.3, 0.01, 0.0, 0.0, 0.02]
