"""Anyone in the car's path, not only the followed person: plain numbers (rover.drive.path, the controller's cap)."""

from __future__ import annotations

import math

import pytest

from rover.drive.config import DriveConfig
from rover.drive.control import Controller
from rover.drive.estimate import Observation
from rover.drive.path import nearest_in_path
from rover.drive.states import State
from tests.test_drive_control import DT, LIMITS, follow
from tests.test_drive_estimate import box_of

CFG = DriveConfig()
TOP = CFG.top_speed_mps


def at(range_m: float, side_m: float, clipped: bool = False) -> Observation:
    """A person ``range_m`` away, ``side_m`` to the left of the car's axis (right < 0)."""
    return Observation(range_m, math.asin(side_m / range_m), clipped=clipped, cut=clipped)


def test_a_person_in_the_path_or_walking_into_it_counts_one_beside_it_does_not() -> None:
    assert nearest_in_path([(at(2.0, 0.3), 0.0)], 0.0, 0.4) == pytest.approx(2.0)
    assert nearest_in_path([(at(2.0, 0.3), 0.0), (at(1.5, -0.2), 0.0)], 0.0, 0.4) == pytest.approx(1.5)
    assert math.isinf(nearest_in_path([(at(2.0, 1.0), 0.0)], 0.0, 0.4))  # beside the path, standing
    # 1 m to the left walking right at ~1 m/s (0.5 rad/s at 2 m): in the path within the 1.2 s the car needs
    assert nearest_in_path([(at(2.0, 1.0), -0.5)], 0.0, 0.4, within_s=1.2) == pytest.approx(2.0)
    assert math.isinf(nearest_in_path([(at(2.0, 1.0), +0.5)], 0.0, 0.4, within_s=1.2))  # walking away from it
    assert nearest_in_path([(at(0.6, 0.1, clipped=True), 0.0)], 0.0, 0.4) == 0.0  # cut by the frame's bottom: stop
    # the car has turned 30 degrees left since: a person then 1 m to the left is now ahead of it
    assert nearest_in_path([(at(2.0, 1.0), 0.0)], math.radians(30.0), 0.4) == pytest.approx(2.0)


def driving(range_m: float = 5.0) -> tuple[Controller, float]:
    ctl = Controller(CFG)
    t = follow(ctl, lambda t: range_m, 4.0)
    assert ctl.current.throttle * TOP > 1.0  # the followed person is far ahead: the car drives at ~ its limit
    return ctl, t


def test_a_second_person_in_the_path_caps_the_speed_by_the_stop_distance_at_once() -> None:
    ctl, t = driving()
    before = ctl.current.throttle
    ctl.observe_others([(box_of(1.8), 0.0)], t - 0.1, t)  # someone 1.8 m straight ahead, the target 5 m
    throttle = ctl.output(State.FOLLOWING, t, DT, LIMITS).throttle
    assert throttle * TOP <= ctl.safe_speed(1.8, LIMITS) + 1e-9  # the stop distance's speed, less what was driven
    assert before - throttle > CFG.decel_per_s * DT  # at once, not along the braking ramp
    for _ in range(4):  # they stand there: the cap holds (and tightens as the car nears them)
        t += DT
        assert ctl.output(State.FOLLOWING, t, DT, LIMITS).throttle <= throttle + 1e-12
    ctl.observe_others([], t, t)  # gone from the newest message: the target's own limits again
    t += DT
    assert ctl.output(State.FOLLOWING, t, DT, LIMITS).throttle > throttle


def test_a_box_cut_by_the_frames_bottom_in_the_path_stops_forward_motion_beside_it_does_not() -> None:
    ctl, t = driving()
    before = ctl.current.throttle
    ctl.observe_others([(box_of(3.0, u=0.04), 0.0)], t - 0.1, t)  # 3 m ahead, 1.4 m to the left: beside the path
    assert ctl.output(State.FOLLOWING, t, DT, LIMITS).throttle == pytest.approx(before, abs=CFG.decel_per_s * DT)
    ctl.observe_others([(box_of(0.6), 0.0)], t, t + 0.05)  # someone right in front, feet below the frame
    assert ctl.output(State.FOLLOWING, t + DT, DT, LIMITS).throttle == 0.0  # not the creep speed: stopped at once
    assert ctl.output(State.LOST, t + 2 * DT, DT, LIMITS).throttle == 0.0
