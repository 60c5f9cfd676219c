"""The control law with plain numbers: steering sign, dead-band, PD, speed law, ramps, latency scaling."""

from __future__ import annotations

import dataclasses

import pytest

from rover.drive.config import DriveConfig
from rover.drive.control import (
    Controller,
    LatencyScale,
    SteeringPD,
    apply_deadband,
    horizontal_offset,
    ramp_throttle,
    speed_from_height,
)
from rover.drive.states import State

CFG = DriveConfig()


def test_offset_is_positive_for_a_target_left_of_centre() -> None:
    assert horizontal_offset(0.25) == pytest.approx(0.5)
    assert horizontal_offset(0.75) == pytest.approx(-0.5)
    assert horizontal_offset(0.5) == 0.0


def test_deadband_ignores_small_offsets_and_has_no_step() -> None:
    assert apply_deadband(0.04, 0.05) == 0.0
    assert apply_deadband(-0.05, 0.05) == 0.0
    assert apply_deadband(0.0501, 0.05) == pytest.approx(0.0001 / 0.95)
    assert apply_deadband(-1.0, 0.05) == -1.0


def test_person_left_of_centre_steers_left_and_right_steers_right() -> None:
    pd = SteeringPD(kp=1.2, kd=0.0, ki=0.0, deadband=0.05)
    assert pd.update(horizontal_offset(0.3), t=0.0) > 0
    pd.reset()
    assert pd.update(horizontal_offset(0.7), t=0.0) < 0


def test_derivative_damps_an_offset_that_is_shrinking() -> None:
    pd = SteeringPD(kp=1.0, kd=0.2, ki=0.0, deadband=0.0)
    pd.update(0.6, t=0.0)
    damped = pd.update(0.4, t=0.1)  # moving towards centre at 2/s
    assert damped == pytest.approx(0.4 - 0.2 * 2.0)


def test_integral_accumulates_and_resets_when_the_target_is_lost() -> None:
    pd = SteeringPD(kp=0.0, kd=0.0, ki=0.5, deadband=0.0)
    pd.update(0.2, t=0.0)
    for i in range(1, 11):
        out = pd.update(0.2, t=0.1 * i)
    assert out == pytest.approx(0.5 * 0.2 * 1.0)
    pd.reset()
    assert pd.update(0.2, t=5.0) == 0.0  # no memory left after reset


def test_far_target_gives_forward_throttle_close_target_gives_zero() -> None:
    assert speed_from_height(0.2, CFG) == pytest.approx(min(1.5 * (0.6 - 0.2) / 0.6, 0.6))
    assert 0 < speed_from_height(0.5, CFG) < speed_from_height(0.3, CFG)
    assert speed_from_height(0.6, CFG) == 0.0
    assert speed_from_height(0.95, CFG) == 0.0  # never reverse unless configured


def test_reverse_only_when_configured_and_limited() -> None:
    cfg = dataclasses.replace(CFG, allow_reverse=True, max_reverse=0.3)
    assert speed_from_height(0.7, cfg) == 0.0  # within the margin: just stop
    assert speed_from_height(0.99, cfg) == pytest.approx(-min(1.5 * (0.99 - 0.75) / 0.6, 0.3))


def test_throttle_ramps_up_slowly_and_brakes_faster() -> None:
    up = ramp_throttle(0.0, 0.6, dt=0.05, accel_per_s=1.0, decel_per_s=2.0)
    assert up == pytest.approx(0.05)
    down = ramp_throttle(0.6, 0.0, dt=0.05, accel_per_s=1.0, decel_per_s=2.0)
    assert down == pytest.approx(0.5)
    reverse = ramp_throttle(0.05, -0.5, dt=0.05, accel_per_s=1.0, decel_per_s=2.0)
    assert reverse == pytest.approx(-0.05)  # through zero at the braking rate


def test_latency_scale_lowers_gains_for_a_slow_model() -> None:
    scale = LatencyScale(nominal_s=0.15, min_scale=0.25, smoothing=1.0)
    assert scale.update(0.1) == 1.0
    assert scale.update(0.3) == pytest.approx(0.5)
    assert scale.update(5.0) == 0.25  # bounded below


def test_controller_is_gentler_with_a_slow_model() -> None:
    fast, slow = Controller(CFG), Controller(CFG)
    for i in range(5):
        fast.observe(centre_x=0.2, height=0.1, t_capture=0.1 * i, latency_s=0.05)
        slow.observe(centre_x=0.2, height=0.1, t_capture=0.1 * i, latency_s=0.6)
    assert slow.scale < fast.scale == 1.0
    assert 0 < slow.wanted.steering < fast.wanted.steering
    assert 0 < slow.wanted.throttle < fast.wanted.throttle
    for _ in range(40):  # two seconds of ticks: both reach their speed limit
        fast.output(State.FOLLOWING, 0.0, 0.05)
        slow.output(State.FOLLOWING, 0.0, 0.05)
    assert slow.current.throttle == pytest.approx(CFG.max_throttle * slow.scale)
    assert fast.current.throttle == pytest.approx(CFG.max_throttle)


def test_steering_is_rate_limited() -> None:
    ctl = Controller(CFG)
    ctl.observe(centre_x=0.0, height=0.3, t_capture=0.0, latency_s=0.05)
    assert ctl.wanted.steering == 1.0
    out = ctl.output(State.FOLLOWING, 0.0, 0.05)
    assert out.steering == pytest.approx(CFG.steer_rate_per_s * 0.05)


def test_lost_coasts_with_neutral_steering_and_slowing() -> None:
    ctl = Controller(CFG)
    ctl.observe(centre_x=0.3, height=0.2, t_capture=0.0, latency_s=0.05)
    for _ in range(30):
        ctl.output(State.FOLLOWING, 0.0, 0.05)
    moving = ctl.current
    ctl.target_missing()
    coast = ctl.output(State.LOST, 0.0, 0.05)
    assert 0 < coast.throttle < moving.throttle
    assert abs(coast.steering) < abs(moving.steering)
    for _ in range(20):
        coast = ctl.output(State.LOST, 0.0, 0.05)
    assert coast.throttle == 0.0 and coast.steering == 0.0


def test_safe_drops_to_neutral_at_once() -> None:
    ctl = Controller(CFG)
    ctl.observe(centre_x=0.1, height=0.1, t_capture=0.0, latency_s=0.05)
    for _ in range(30):
        ctl.output(State.FOLLOWING, 0.0, 0.05)
    assert ctl.current.throttle > 0
    ctl.reset()
    assert ctl.output(State.SAFE, 0.0, 0.05) == ctl.output(State.SAFE, 0.0, 0.05)
    assert ctl.current.throttle == 0.0 and ctl.current.steering == 0.0


def test_bumper_blocks_forward_without_ramp() -> None:
    ctl = Controller(CFG)
    ctl.observe(centre_x=0.5, height=0.1, t_capture=0.0, latency_s=0.05)
    for _ in range(30):
        ctl.output(State.FOLLOWING, 0.0, 0.05)
    assert ctl.output(State.FOLLOWING, 0.0, 0.05, forward_blocked=True).throttle == 0.0


def test_pan_follow_turns_the_head_towards_the_target_and_steering_follows() -> None:
    ctl = Controller(dataclasses.replace(CFG, pan_follow=True))
    for _ in range(5):
        ctl.observe(centre_x=0.3, height=0.3, t_capture=0.0, latency_s=0.05)
        out = ctl.output(State.FOLLOWING, 0.0, 0.05)
    assert out.pan > 0 and out.steering > 0


def test_search_sweeps_the_head_within_its_limit_with_the_car_stopped() -> None:
    cfg = dataclasses.replace(CFG, search=True, search_pan_rate=0.5, search_pan_limit=0.8)
    ctl = Controller(cfg)
    pans = []
    for i in range(200):  # 10 s
        out = ctl.output(State.SEARCH, 0.05 * i, 0.05)
        assert out.throttle == 0.0
        pans.append(out.pan)
    assert max(pans) == pytest.approx(0.8) and min(pans) == pytest.approx(-0.8)
    assert all(abs(b - a) <= 0.5 * 0.05 + 1e-9 for a, b in zip(pans, pans[1:]))
