"""The tracker's image gates take the car's own motion out: an approach grows a box, a head turn shifts it.

Boxes of an upright person 1.7 m tall and 0.5 m wide, standing on the floor,
through the drive's pinhole camera model (CameraGeometry's defaults), and the
car's motion from the controller's real odometer (rover.drive.odometry).
"""

from __future__ import annotations

import math

import pytest

from rover.drive.estimate import CameraGeometry
from rover.drive.odometry import Odometer
from rover.drive.tracker import TargetTracker
from rover.drive.tracks import STILL, EgoMotion, ego_box, ego_motion, ego_view, image_gate, size_ratio

CAMERA = CameraGeometry()
# lock_min_iou, lock_max_jump, lock_max_size_ratio: the config's defaults but 1.2 for the size, so that a car's
# approach in one frame that a Pi's frame rates allow (0.7 m at 2.9 m: 1.28 x) is beyond it without the box's jitter
RATIO = 1.2
LIMITS = (0.2, 0.15, RATIO)


def person_box(range_m: float, bearing_deg: float = 0.0, height_m: float = 1.7, width_m: float = 0.5) -> tuple:
    """The box of a person ``range_m`` ahead at ``bearing_deg`` off the camera's axis (left > 0), clipped to the frame."""
    tilt, tan_v = math.radians(CAMERA.tilt_deg), math.tan(math.radians(CAMERA.vfov_deg) / 2)
    half = math.tan(math.radians(CAMERA.hfov_deg) / 2)

    def row(z: float) -> float:
        return 0.5 - math.tan(math.atan((z - CAMERA.mount_height_m) / range_m) - tilt) / (2 * tan_v)

    u = 0.5 - math.tan(math.radians(bearing_deg)) / (2 * half)
    w = math.atan(width_m / range_m) / (2 * half)
    return tuple(max(0.0, min(1.0, x)) for x in (u - w / 2, row(height_m), u + w / 2, row(0.0)))


def test_ego_view_is_plain_geometry() -> None:
    assert ego_view(3.0, 0.0, EgoMotion(travel_m=0.5)) == pytest.approx((2.5, 0.0))
    r, b = ego_view(2.0, math.radians(30), EgoMotion(travel_m=1.0))  # driving past: the bearing opens
    assert r == pytest.approx(math.hypot(2 * math.cos(math.radians(30)) - 1, 1.0))
    assert b == pytest.approx(math.atan2(1.0, 2 * math.cos(math.radians(30)) - 1))
    r, b = ego_view(3.0, 0.0, EgoMotion(pan_from_rad=0.0, pan_to_rad=math.radians(20)))  # head turns left 20 deg
    assert (r, math.degrees(b)) == pytest.approx((3.0, -20.0))
    r, b = ego_view(3.0, math.radians(-10), EgoMotion(pan_from_rad=math.radians(10), yaw_rad=math.radians(5)))
    assert (r, math.degrees(b)) == pytest.approx((3.0, -5.0))  # straight ahead of the car, which turned 5 deg left


def test_ego_box_scales_a_box_by_the_approach_as_the_camera_sees_it() -> None:
    before, after = person_box(2.9), person_box(2.2)
    moved = ego_box(before, 2.9, 0.0, EgoMotion(travel_m=0.7), CAMERA)
    assert moved == pytest.approx(after, abs=1e-3)  # r / (r - d) = 1.32 in height, and the feet move down
    assert size_ratio(before, after) > RATIO  # more than the gate allows the person alone in one frame
    assert ego_box(before, 2.0, 0.0, STILL, CAMERA) == before
    turned = ego_box(person_box(3.0), 3.0, 0.0, EgoMotion(pan_to_rad=math.radians(20)), CAMERA)
    assert turned == pytest.approx(person_box(3.0, -20.0), abs=2e-3)


def test_ego_motion_from_odometer_readings() -> None:
    ego = ego_motion((1.0, 0.1, 0.02), (1.4, 0.3, 0.05), 0.45, 60.0)
    assert ego.travel_m == pytest.approx(0.45) and ego.yaw_rad == pytest.approx(0.03)
    assert math.degrees(ego.pan_from_rad) == pytest.approx(6.0) and math.degrees(ego.pan_to_rad) == pytest.approx(18.0)
    assert ego_motion((1.4, 0.0, 0.0), (1.0, 0.0, 0.0), 0.4, 60.0).travel_m == pytest.approx(-0.4)  # backwards


def test_image_gate_accepts_what_the_car_or_the_person_explains_and_refuses_more() -> None:
    last, moved = person_box(2.9), person_box(2.2)  # the car drove 0.7 m towards them
    assert image_gate(last, last, moved, LIMITS) == "size"  # the old gate: the car's approach refused the person
    assert image_gate(last, moved, moved, LIMITS) is None  # the person stood
    assert image_gate(last, moved, last, LIMITS) is None  # the person walked on as fast as the car drove
    assert image_gate(last, moved, person_box(2.5), LIMITS) is None  # anything between
    small, grown = (0.45, 0.30, 0.55, 0.60), (0.44, 0.25, 0.56, 0.65)  # heights 0.3 and 0.4 (the car's approach)
    assert image_gate(small, grown, (0.43, 0.15, 0.57, 0.65), LIMITS) == "size"  # 0.5: 1.25 x the approach's
    assert image_gate(small, grown, (0.46, 0.30, 0.54, 0.54), LIMITS) == "size"  # 0.24: 1.25 x smaller than before
    assert image_gate(small, grown, (0.43, 0.18, 0.57, 0.65), LIMITS) is None  # 0.47: within 1.2 of the approach's
    right = person_box(2.5, -20.0)  # the head turned 20 deg left: the same person, right of where they were
    assert image_gate(person_box(2.5), person_box(2.5), right, LIMITS) == "jump"
    assert image_gate(person_box(2.5), right, right, LIMITS) is None
    assert image_gate(person_box(2.5), right, person_box(2.5, 20.0), LIMITS) == "jump"  # the other way: not them


class Car:
    """The controller's odometer fed at 20 Hz, as the drive loop's ticks do."""

    def __init__(self) -> None:
        self.odometer = Odometer(keep_s=5.0)
        self.t = 0.0
        self.odometer.record(self.t, 0.0)

    def run(self, until: float, speed: float = 0.0, pan: float = 0.0) -> None:
        while self.t < until - 1e-9:
            dt = min(0.05, until - self.t)
            self.odometer.drive(speed, 1.0, 0.0, dt)
            self.t += dt
            self.odometer.record(self.t, pan)


def locked(car: Car, box: tuple, frames: int = 3, period: float = 0.5) -> TargetTracker:
    """A tracker locked on ``box``, seen in ``frames`` messages ``period`` apart while the car stood."""
    tracker = TargetTracker(max_size_ratio=RATIO, camera=CAMERA)
    for k in range(frames):
        car.run(k * period)
        tracker.update([(box, 0.9)], now=car.t, odometry=car.odometer)
    assert tracker.target is not None and tracker.target.box == box
    return tracker


@pytest.mark.parametrize("odometry", [True, False])
def test_the_car_closing_in_on_a_standing_person_keeps_its_target(odometry: bool) -> None:
    """2 frames/s, the car drives 1.4 m/s for one frame at 2.9 m: the box grows 1.28 times."""
    car = Car()
    tracker = locked(car, person_box(2.9))
    car.run(car.t + 0.5, speed=1.4)
    seen = tracker.update([(person_box(2.2), 0.9)], now=car.t, odometry=car.odometer if odometry else None)
    if odometry:
        assert seen is not None and seen.box == person_box(2.2)
    else:
        assert seen is None  # without the car's motion the gate refuses the person's own box


def test_a_box_beyond_what_the_approach_explains_is_not_the_target() -> None:
    car = Car()
    tracker = locked(car, person_box(3.5))
    car.run(car.t + 0.5, speed=0.6)  # 3.5 -> 3.2 m: the box grows 1.09 times
    assert tracker.update([(person_box(2.5), 0.9)], now=car.t, odometry=car.odometer) is None  # 1.24 x more
    assert tracker.locked and tracker.locks == 1


def test_a_car_that_did_not_move_as_commanded_keeps_its_target() -> None:
    """The odometer says the car drove 0.5 m; it was held (a stuck wheel): the box did not change."""
    car = Car()
    tracker = locked(car, person_box(2.9))
    car.run(car.t + 0.5, speed=1.4)
    seen = tracker.update([(person_box(2.9), 0.9)], now=car.t, odometry=car.odometer)
    assert seen is not None


def test_a_head_turn_between_frames_keeps_its_target() -> None:
    car = Car()
    tracker = locked(car, person_box(2.5))
    car.run(car.t + 0.5, pan=20.0 / CAMERA.pan_range_deg)  # the head turned 20 deg left since the last frame
    shifted = person_box(2.5, -20.0)
    seen = tracker.update([(shifted, 0.9)], now=car.t, odometry=car.odometer)
    assert seen is not None and seen.box == shifted
