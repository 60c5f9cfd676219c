"""Range, bearing, filter and adaptive limits with plain numbers (rover.drive.estimate, kalman, limits)."""

from __future__ import annotations

import math

import pytest

from rover.drive.config import DriveConfig
from rover.drive.control import Controller
from rover.drive.estimate import CameraGeometry, ground_range, observe
from rover.drive.kalman import CVFilter
from rover.drive.limits import StreamTiming
from rover.drive.states import State

CAM = CameraGeometry()  # Pi camera v2, 0.15 m up, pitched up 12 deg


def box_of(distance_m: float, height_m: float = 1.7, cam: CameraGeometry = CAM, u: float = 0.5) -> tuple:
    """The box an upright person of ``height_m`` at ``distance_m`` makes (the inverse of the camera model)."""
    def row(up: float) -> float:
        angle = math.atan2(up - cam.mount_height_m, distance_m) - math.radians(cam.tilt_deg)
        return 0.5 - math.tan(angle) / (2 * math.tan(math.radians(cam.vfov_deg) / 2))
    top, bottom = max(0.0, row(height_m)), min(1.0, row(0.0))
    return (u - 0.05, top, u + 0.05, bottom)


@pytest.mark.parametrize("distance", [2.5, 3.0, 5.0, 8.0])
def test_a_whole_person_is_ranged_from_the_box_height(distance: float) -> None:
    r, clipped = ground_range(box_of(distance), CAM, 1.7)
    assert r == pytest.approx(distance, rel=1e-6) and not clipped


@pytest.mark.parametrize("distance", [0.9, 1.2, 1.8])
def test_a_near_person_whose_head_is_cut_is_ranged_from_the_feet(distance: float) -> None:
    box = box_of(distance)
    assert box[1] == 0.0  # the head is out of the frame: the box height alone would put them too far
    r, clipped = ground_range(box, CAM, 1.7)
    assert r == pytest.approx(distance, rel=1e-6) and not clipped


def test_a_person_filling_the_frame_is_at_most_the_floor_distance_of_the_frame_edge() -> None:
    r, clipped = ground_range((0.2, 0.0, 0.8, 1.0), CAM, 1.7)
    assert clipped and r == pytest.approx(CAM.mount_height_m / -math.tan(CAM.elevation(1.0)))
    assert r < 0.8


def test_a_wrong_height_assumption_scales_the_range_but_not_the_range_from_the_feet() -> None:
    obs = observe(box_of(3.0, height_m=1.7), CAM, 1.7 * 1.15)
    assert obs.range_m == pytest.approx(3.0 * 1.15, rel=1e-6)
    assert obs.feet_m == pytest.approx(3.0, rel=1e-6) and 0.0 < obs.feet_sigma_m < 3.0


def test_bearing_is_left_positive_and_adds_the_head_pan() -> None:
    left = observe(box_of(3.0, u=0.25), CAM, 1.7)
    assert left.bearing_rad == pytest.approx(math.atan(0.5 * math.tan(math.radians(31.1))))
    assert observe(box_of(3.0, u=0.75), CAM, 1.7).bearing_rad == pytest.approx(-left.bearing_rad)
    panned = observe(box_of(3.0, u=0.5), CAM, 1.7, pan=0.5)
    assert panned.bearing_rad == pytest.approx(math.radians(30.0))


def test_the_filter_learns_a_walkers_speed_and_predicts_to_now() -> None:
    f = CVFilter(accel_psd=1.5)
    for k in range(12):  # 3 frames/s, a person walking away at 1.0 m/s from 3 m
        t = k / 3
        f.update(3.0 + 1.0 * t, 0.01, t)
    x, v = f.predict(11 / 3 + 0.4)  # 0.4 s after the last capture
    assert v == pytest.approx(1.0, abs=0.05)
    assert x == pytest.approx(3.0 + 1.0 * (11 / 3 + 0.4), abs=0.05)


def test_the_filter_restarts_on_a_jump_and_ignores_out_of_order_frames() -> None:
    f = CVFilter(accel_psd=1.5)
    for k in range(6):
        f.update(3.0, 0.01, k * 0.25)
    f.update(10.0, 0.01, 1.5)  # 7 m away in a quarter second: a different thing, not a velocity
    assert f.predict(1.5) == (10.0, 0.0)
    f.update(0.0, 0.01, 1.0)  # older than the last update
    assert f.predict(1.5) == (10.0, 0.0)


def test_limits_follow_a_2_fps_stream_and_stay_within_their_bounds() -> None:
    timing = StreamTiming(0.25, 1.0, 0.3, 1.2, stop_time_s=0.2, travel_bound_m=1.5)
    first = timing.limits()
    assert (first.max_age_s, first.deadman_s) == (1.0, 1.2)  # before any measurement: the hard bounds
    t = 0.0
    for k in range(40):  # 2 frames/s, each 0.45-0.55 s apart and as old
        period = 0.5 + 0.05 * (-1) ** k
        t += period
        timing.frame(t, period)
    limits = timing.limits()
    assert 0.55 < limits.max_age_s < 0.8  # every frame of this stream is fresh
    assert 0.8 < limits.deadman_s <= 1.2  # never trips between two frames 0.55 s apart
    assert limits.speed_limit_mps == pytest.approx(1.5 / (limits.max_age_s + limits.deadman_s + 0.2))
    for _ in range(40):  # the same at 20 frames/s: the floors
        t += 0.05
        timing.frame(t, 0.05)
    fast = timing.limits()
    assert (fast.max_age_s, fast.deadman_s) == (0.25, 0.3)
    assert fast.speed_limit_mps > limits.speed_limit_mps


def test_a_stream_that_slows_down_raises_the_limits_and_lowers_the_speed_limit_at_once() -> None:
    timing = StreamTiming(0.25, 1.0, 0.3, 1.2, stop_time_s=0.2, travel_bound_m=1.5)
    t = 0.0
    for _ in range(30):
        t += 0.1
        timing.frame(t, 0.1)
    before = timing.limits()
    t += 0.5
    timing.frame(t, 0.5)  # one frame 0.5 s late and old
    after = timing.limits()
    assert after.deadman_s > before.deadman_s and after.max_age_s > before.max_age_s
    assert after.speed_limit_mps < before.speed_limit_mps
    timing.frame(t + 5.0, 0.1)  # a gap longer than the hard dead-man (a restart) is not a period
    assert timing.period.mean is not None and timing.period.mean < 1.0


@pytest.mark.parametrize("top", [0.3, 0.4, 0.5])
def test_a_box_whose_feet_are_below_the_frame_is_at_most_the_frame_bottoms_floor_distance(top: float) -> None:
    # A small person (a toddler, someone sitting on the floor) close by: the head in view, the feet below the frame.
    frame_bottom = CAM.mount_height_m / -math.tan(CAM.elevation(1.0))
    obs = observe((0.4, top, 0.6, 1.0), CAM, 1.7)
    assert obs.range_m <= frame_bottom + 1e-9 and obs.clipped
    assert obs.cut  # too near to approach, whatever the height assumption


@pytest.mark.parametrize("distance", [1.0, 2.5, 4.0])
def test_a_person_shorter_than_assumed_is_ranged_right_from_the_feet(distance: float) -> None:
    obs = observe(box_of(distance, height_m=1.0), CAM, 1.7)  # a 1 m child, 1.7 m assumed
    assert obs.feet_m == pytest.approx(distance, rel=1e-6)
    assert obs.range_m > 1.5 * distance or obs.cut  # the height alone puts them too far


def test_the_controller_stops_short_of_a_child_whom_the_height_puts_too_far() -> None:
    cfg = DriveConfig()
    controller = Controller(cfg)
    timing = StreamTiming(cfg.max_age_min_s, cfg.max_age_s, cfg.deadman_min_s, cfg.deadman_s, cfg.stop_time_s,
                          cfg.travel_bound_m)
    for k in range(60):  # 3 s of ticks; a 1 m child standing 1.3 m away, 5 frames/s: 2.2 m from the height alone
        now = k * 0.05
        if k % 4 == 0:
            timing.frame(now, 0.1)
            controller.observe(box_of(1.3, height_m=1.0), now - 0.1, now)
        limits = timing.limits()
        controller.output(State.FOLLOWING, now, 0.05, limits)
    assert controller.estimate is not None and controller.estimate.range_m > 2.0
    assert controller.estimate.near_m == pytest.approx(1.3, abs=0.1)
    # the speed cap (the stop distance's) from the feet (1.3 m), not from the height (2.2 m)
    cap = controller._follow(now, limits)[1] * cfg.top_speed_mps
    assert 0.0 < cap <= controller.safe_speed(1.4, limits) < controller.safe_speed(2.0, limits)


def test_a_head_cut_box_says_its_range_is_the_feets_and_a_whole_one_does_not() -> None:
    near = observe(box_of(1.8), CAM, 1.7)  # the head above the frame's top edge
    assert near.cut and near.from_feet and near.range_m == near.feet_m
    assert not observe(box_of(3.0), CAM, 1.7).from_feet  # whole: from the height
    assert not observe((0.45, 0.3, 0.55, 1.0), CAM, 1.7).from_feet  # the feet below the frame: a bound, not the feet's


def test_one_jittery_frame_of_a_near_person_whose_head_is_cut_does_not_throw_the_range() -> None:
    # Nearer than ~2.4 m the head leaves the frame and the range is the feet's: one box edge's jitter (3 % of the
    # box's height) moves it by ~30 %. Taken with the height's 6 % noise, a bottom edge 2 std high restarted the
    # filter at ~1 m farther; with the feet's own noise it is one noisy frame among others.
    controller = Controller(DriveConfig())
    box = box_of(2.0)
    for k in range(9):  # 3 frames/s, standing 2 m away
        controller.observe(box, k / 3, k / 3 + 0.3)
    assert controller.range_f.x == pytest.approx(2.0, abs=0.05)
    jitter = 2 * 0.03 * (box[3] - box[1])
    controller.observe((box[0], box[1], box[2], box[3] - jitter), 3.0, 3.3)
    assert observe((box[0], box[1], box[2], box[3] - jitter), CAM, 1.7).range_m > 2.7  # the frame alone says so
    assert controller.range_f.x == pytest.approx(2.0, abs=0.3)
