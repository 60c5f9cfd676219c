"""The followed person's estimate: range, bearing and their rates, predicted to *now*.

Once per fresh detection of the locked target (:meth:`TargetEstimate.observe`)
the box becomes a range and bearing (:mod:`rover.drive.estimate`, with the
head's pan at the capture time). Two constant-velocity Kalman filters over
the capture times (:mod:`rover.drive.kalman`) follow the bearing (in the
car's odometry frame: its own turning taken out) and the person's position
along the line of sight *in the car's odometry frame* (range plus the
distance the car had driven by that capture, from the commanded speeds), so
the range filter's rate is the person's own speed along the line of sight,
not the difference of two moving things. A third filter follows the range
from the feet alone (:meth:`TargetEstimate.predict` gives it as
:attr:`Estimate.near_m` once it says nearer, for the stop distance).

Pure arithmetic on plain floats; time passed in (seconds of the loop's
clock); the car's path from the shared :class:`rover.drive.odometry.Odometer`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from rover.drive.config import DriveConfig
from rover.drive.estimate import CameraGeometry, observe
from rover.drive.kalman import CVFilter
from rover.drive.odometry import Odometer
from rover.drive.tracks import MAX_PERSON_SPEED_MPS  # one figure for the tracker's gates and the range filter

log = logging.getLogger("rover.drive")

#: Filter tuning (not config: properties of walking people and of box noise).
RANGE_ACCEL_PSD = 1.0  # (m/s^2)^2 s: a walker changes speed by ~1 m/s within a second
BEARING_ACCEL_PSD = 0.5  # (rad/s^2)^2 s
RANGE_NOISE = 0.06  # range std as a fraction of the range (box edges jitter by ~3 % each)
BEARING_NOISE_RAD = 0.02
MAX_BEARING_RATE = 2.0  # rad/s
MAX_EXTRAPOLATION_S = 1.0
FEET_SIGMAS = 2.0  # the range from the feet overrides the height's when nearer by this many of its std ...
FEET_CONFIRM = 2  # ... and this many boxes in a row said so (one bottom edge 3 std low is not a child)


@dataclass(frozen=True)
class Estimate:
    """The target now: range (m), bearing (rad, left > 0), their rates, the person's own speed along the line of sight."""

    range_m: float
    bearing_rad: float
    range_rate_mps: float
    bearing_rate_rad_s: float
    target_speed_mps: float
    near_m: float = math.inf  # the smaller of the range and the range from the feet alone (the stop distance's)
    held_m: float = math.inf  # the range if the person has stood still since the newest capture


class TargetEstimate:
    """The filters over the locked target's detections; :meth:`predict` gives the :class:`Estimate` now."""

    def __init__(self, config: DriveConfig, odometer: Odometer) -> None:
        self.config = config
        self.odometer = odometer
        self.camera = CameraGeometry(config.camera_hfov_deg, config.camera_vfov_deg, config.camera_height_m,
                                     config.camera_tilt_deg, config.pan_range_deg)
        self.range_f = CVFilter(RANGE_ACCEL_PSD, max_rate=MAX_PERSON_SPEED_MPS)
        self.feet_f = CVFilter(RANGE_ACCEL_PSD, max_rate=MAX_PERSON_SPEED_MPS)  # the same from the bottom edge alone
        self.bearing_f = CVFilter(BEARING_ACCEL_PSD, max_rate=MAX_BEARING_RATE)
        self.lock = 0
        self.unseen = 0  # fresh messages in a row without the target
        self.feet_nearer = 0  # boxes in a row whose feet said nearer than the height by FEET_SIGMAS
        self.feet_seen = False  # the newest box of the target has its feet in the frame
        self.capture: float | None = None  # capture time of the newest frame showing the target
        self.cut = False  # the newest box of the target has its top or bottom edge cut: too near to approach
        self._warned_non_finite = False

    def observe(self, box: tuple[float, float, float, float], t_capture: float, lock: int = 0) -> None:
        """A fresh detection of the locked target captured at ``t_capture`` (never after its receipt: the caller's)."""
        self.unseen = 0
        if lock != self.lock:
            self.lock = lock
            self.reset_filters()
        driven, pan, yaw = self.odometer.at(t_capture)
        obs = observe(box, self.camera, self.config.person_height_m, pan)
        sigma = RANGE_NOISE * max(obs.range_m, 0.3)
        if obs.from_feet:  # the head cut: the range is the feet's, ~25-45 % a frame at 1.5-2 m, not the height's ~4 %
            sigma = max(sigma, obs.feet_sigma_m)
        self.range_f.update(obs.range_m + driven, sigma * sigma, t_capture)
        if obs.feet_m is not None:
            feet_sigma = max(obs.feet_sigma_m, RANGE_NOISE * max(obs.feet_m, 0.3))
            self.feet_f.update(obs.feet_m + driven, feet_sigma * feet_sigma, t_capture)
            nearer = obs.feet_m + FEET_SIGMAS * math.hypot(feet_sigma, sigma) < obs.range_m
            self.feet_nearer = self.feet_nearer + 1 if nearer else 0
        else:
            self.feet_nearer = 0
        self.bearing_f.update(obs.bearing_rad + yaw, BEARING_NOISE_RAD ** 2, t_capture)
        if self.capture is None or t_capture >= self.capture:
            self.cut = obs.cut
            self.feet_seen = obs.feet_m is not None
        self.capture = t_capture if self.capture is None else max(self.capture, t_capture)

    def missing(self) -> None:
        """A fresh message without the target: the estimate coasts on its prediction."""
        self.unseen += 1

    def reset_filters(self) -> None:
        self.range_f.reset()
        self.feet_f.reset()
        self.bearing_f.reset()
        self.feet_nearer = 0

    def reset(self) -> None:
        """Everything forgotten (back to SAFE)."""
        self.reset_filters()
        self.capture = None
        self.cut = False
        self.feet_seen = False
        self.unseen = 0

    def predict(self, now: float, car_speed_mps: float) -> Estimate | None:
        """The target's estimate extrapolated to ``now`` (the car driving at ``car_speed_mps``); None without one.

        The range from the feet does not depend on the assumed height (a
        shorter person is not put too far); it is noisier, so it counts once
        it is nearer by ``FEET_SIGMAS`` of its own filtered spread and
        ``FEET_CONFIRM`` boxes in a row said so by their own spread and the
        height's: at the walking distance the feet's range from one bottom
        edge 3 std low (2.1 m for a person 3.5 m away, straight@1 at 3
        frames/s, seed 5) capped the car to 0.4 m/s for 0.6 s, and it never
        caught up again.
        """
        if not (self.range_f.ready and self.bearing_f.ready):
            return None
        t_range = min(now, self.range_f.t + MAX_EXTRAPOLATION_S)  # type: ignore[operator]
        position, speed = self.range_f.predict(t_range)
        near = position
        if self.feet_seen and self.feet_f.ready and self.feet_nearer >= FEET_CONFIRM:
            t_feet = min(now, self.feet_f.t + MAX_EXTRAPOLATION_S)  # type: ignore[operator]
            feet = self.feet_f.predict(t_feet)[0]
            if feet + FEET_SIGMAS * self.feet_f.std(t_feet) < position:
                near = feet
        t_bearing = min(now, self.bearing_f.t + MAX_EXTRAPOLATION_S)  # type: ignore[operator]
        world_bearing, bearing_rate = self.bearing_f.predict(t_bearing)
        bearing = world_bearing - self.odometer.yaw
        car_speed = car_speed_mps * math.cos(bearing)
        values = (position, near, world_bearing, bearing_rate, speed, car_speed)
        if not all(math.isfinite(v) for v in values):
            if not self._warned_non_finite:
                log.warning("the target's estimate is not a finite number %s: stopping the car", values)
                self._warned_non_finite = True
            return None  # no estimate: throttle and steering 0, as on information too old
        # a range is never negative (the person passed the car by the odometry: they are at it, at most)
        distance = self.odometer.distance
        return Estimate(max(0.0, position - distance), bearing, speed - car_speed, bearing_rate, speed,
                        max(0.0, near - distance), max(0.0, self.range_f.x - distance))
