"""The control law: speed, steering and head commands from the estimated target.

Pure arithmetic on plain floats; time passed in (seconds of the loop's
clock). Units as in ``rover.hw.chassis``: steering -1 right .. +1 left,
throttle -1 .. +1, pan -1 right .. +1 left.

Estimation (:meth:`Controller.observe`, once per fresh detection of the
locked target): the box becomes a range and bearing
(:mod:`rover.drive.estimate`, with the head's pan at the capture time). Two
constant-velocity Kalman filters over the capture times
(:mod:`rover.drive.kalman`) follow the bearing (in the car's frame) and the
person's position along the line of sight *in the car's odometry frame*
(range plus the distance the car had driven towards them by that capture,
from the commanded speeds), so the range filter's rate is the person's own
speed along the line of sight, not the difference of two moving things.

Control (:meth:`Controller.output`, every tick), on the estimate predicted
to *now* (which compensates the age of the detection):

- speed wanted = the person's speed along the line of sight
  + ``range_gain`` x (range - ``follow_distance_m``) (feed-forward plus a
  damped correction), never more than the speed limit of the stream
  (:class:`rover.drive.limits.Limits`), the ``max_throttle`` cap, nor
  ``(range - stop_distance_m) / (horizon + stop_time)``, the speed from
  which the car still stops outside the stop distance if the information
  stops now, nor the travel budget (:meth:`Controller.budget_speed`), and
  0 while the newest box has the person's head or feet cut by the frame
  (nearer than ~2 m, or small and close: a fact of the pixels that no wrong
  assumption about height or focal length can move). Throttle = speed / ``top_speed_mps`` (linear, since the
  backend maps throttle onto ``min_duty..max_duty`` above the motors' dead
  band). The throttle ramps up at ``accel_per_s``, down at ``decel_per_s``;
  every cap applies at once.
- Braking as the person stops: the law never asks for more than the speed
  from which the ramp still slows the car to the person's speed at the
  follow distance (:meth:`Controller.braking_speed`; cut at once, down to
  the creep speed); from the second fresh frame in a row without the
  person, from where they were last seen, not from their extrapolated walk.
- The motors' dead band (:class:`rover.drive.motion.MotionGate`): the car
  creeps at ``min_speed_mps`` or stands, with hysteresis, instead of
  chattering; a cap below the creep speed stands it at once.
- When the person's own speed exceeds the car's limit for a second the car
  drives at the limit and :attr:`Controller.faster` says so (cleared below
  90 % of it).
- Once the newest capture of the person is older than the information
  horizon (freshness limit + dead-man), the throttle is 0 at once: together
  with the speed limit, the car stops within ``travel_bound_m`` of where it
  was at that capture, whether the person vanished or the detector died.
- Steering: a turn rate ``steer_gain`` x bearing + ``steer_rate_gain`` x
  the person's bearing rate (in the odometry frame, so the car's own turning
  is not mistaken for theirs), turned into a wheel angle by the bicycle model
  (``atan(rate x wheelbase / speed)``), after a dead-band, rate-limited. A
  wheel angle, not a bearing, sets the turn rate, and the PiCar-B's short
  wheelbase turns fast: 0.4 of steering at 1 m/s is ~100 deg/s. With
  ``pan_follow`` the head points at the estimated bearing, no faster than
  the tracker's centre-jump gate allows between two frames
  (:meth:`Controller.pan_rate`). The heading counts the wheels rolling on
  after a throttle cut (:mod:`rover.drive.odometry`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from rover.drive.config import DriveConfig
from rover.drive.estimate import CameraGeometry, Observation, observe
from rover.drive.kalman import CVFilter
from rover.drive.limits import Limits
from rover.drive.motion import MotionGate
from rover.drive.odometry import Odometer
from rover.drive.path import nearest_in_path
from rover.drive.states import EPSILON_S, State

log = logging.getLogger("rover.drive")

#: Filter tuning (not config: properties of walking people and of box noise).
RANGE_ACCEL_PSD = 1.0  # (m/s^2)^2 s: a walker changes speed by ~1 m/s within a second
BEARING_ACCEL_PSD = 0.5  # (rad/s^2)^2 s
RANGE_NOISE = 0.06  # range std as a fraction of the range (box edges jitter by ~3 % each)
BEARING_NOISE_RAD = 0.02
MAX_PERSON_SPEED_MPS = 3.0
MAX_BEARING_RATE = 2.0  # rad/s
MAX_EXTRAPOLATION_S = 1.0
FEET_SIGMAS = 2.0  # the range from the feet overrides the height's when nearer by this many of its std
MIN_STEER_SPEED_MPS = 0.3  # below this the wheel angle for a turn rate is computed as at this speed
FASTER_CLEAR = 0.9
FASTER_AFTER_S = 1.0  # the person's speed must exceed the limit this long before the flag is raised
UNSEEN_FRAMES = 2  # fresh frames in a row without the person before the car stops extrapolating their walk
PAN_GATE_SHARE = 0.5  # share of the tracker's centre-jump gate the head may use up between two frames


def clamp(value: float, low: float = -1.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def apply_deadband(value: float, deadband: float) -> float:
    """Zero inside the dead-band, continuous outside it (no step at the edge)."""
    if abs(value) <= deadband:
        return 0.0
    return value - math.copysign(deadband, value)


def rate_limit(current: float, wanted: float, max_step: float) -> float:
    return current + clamp(wanted - current, -max_step, max_step)


def ramp_throttle(current: float, wanted: float, dt: float, accel_per_s: float, decel_per_s: float) -> float:
    """Move ``current`` towards ``wanted``: slowly when speeding up, faster when slowing down."""
    speeding_up = abs(wanted) > abs(current) and (current == 0.0 or math.copysign(1.0, wanted) == math.copysign(1.0, current))
    return rate_limit(current, wanted, (accel_per_s if speeding_up else decel_per_s) * dt)


@dataclass(frozen=True)
class Commands:
    """What the loop sends to the chassis in one tick."""

    throttle: float = 0.0
    steering: float = 0.0
    pan: float = 0.0


NEUTRAL = Commands()


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


class Controller:
    """Turns target observations, the state and the limits into ramped chassis commands."""

    def __init__(self, config: DriveConfig) -> None:
        self.config = config
        self.camera = CameraGeometry(config.camera_hfov_deg, config.camera_vfov_deg, config.camera_height_m,
                                     config.camera_tilt_deg, config.pan_range_deg)
        self.range_f = CVFilter(RANGE_ACCEL_PSD, max_rate=MAX_PERSON_SPEED_MPS)
        self.feet_f = CVFilter(RANGE_ACCEL_PSD, max_rate=MAX_PERSON_SPEED_MPS)  # the same from the bottom edge alone
        self._feet_seen = False  # the newest box of the target has its feet in the frame
        self._lock = 0
        self._unseen = 0  # fresh messages in a row without the target
        self._warned_non_finite = False
        self.bearing_f = CVFilter(BEARING_ACCEL_PSD, max_rate=MAX_BEARING_RATE)
        self.odometer = Odometer(config.max_age_s + config.deadman_s + 1.0, config.stop_time_s / 3)
        top = config.max_throttle * config.top_speed_mps  # a low --max-throttle lowers the thresholds with it
        creep = min(config.min_speed_mps, top)
        self.gate = MotionGate(creep, min(config.start_speed_mps, top), min(config.stop_speed_mps, creep), config.stand_after_s)
        self.wanted = NEUTRAL
        self.current = NEUTRAL
        self.target_capture: float | None = None  # capture time of the newest frame showing the target
        self.cut = False  # the newest box of the target has its top or bottom edge cut: too near to approach
        self.estimate: Estimate | None = None
        self.speed_limit_mps = 0.0
        self.faster = False
        self._faster_since: float | None = None
        self._search_started: float | None = None
        self._search_direction = 1.0
        self._others: list[tuple[Observation, float]] = []  # everyone else in the newest fresh message, car's frame then
        self._others_t = 0.0  # ... its capture time
        self._others_yaw = 0.0  # ... the car's heading then (odometry)
        self._pan_rate = 0.0  # the head's turn in the last tick (rad/s)

    def observe_others(self, others: list[tuple[tuple[float, float, float, float], float]], t_capture: float,
                       received_s: float | None = None) -> None:
        """Everyone but the target in the newest fresh message: box and bearing rate (rad/s) off the camera's axis.

        :meth:`path_speed` keeps the car clear of them; the head's own turn
        is added to the rates (a bearing in the car's frame is the camera's
        plus the pan).
        """
        if received_s is not None:
            t_capture = min(t_capture, received_s)
        _, pan, yaw = self.odometer.at(t_capture)
        self._others = [(observe(box, self.camera, self.config.person_height_m, pan), rate + self._pan_rate)
                        for box, rate in others]
        self._others_t, self._others_yaw = t_capture, yaw

    def observe(self, box: tuple[float, float, float, float], t_capture: float, received_s: float | None = None,
                lock: int = 0) -> None:
        """A fresh detection of the locked target, captured at ``t_capture``, received at ``received_s``.

        A capture stamped after its receipt (clocks up to the gate's tolerance
        apart) counts as captured when received: information is never newer
        than its arrival. ``lock`` numbers the lock (:attr:`rover.drive.tracker.Tracker.locks`):
        a new number is another person, whose range and bearing start afresh.
        """
        self._unseen = 0
        if received_s is not None:
            t_capture = min(t_capture, received_s)
        if lock != self._lock:
            self._lock = lock
            self.range_f.reset()
            self.feet_f.reset()
            self.bearing_f.reset()
        driven, pan, yaw = self.odometer.at(t_capture)
        obs = observe(box, self.camera, self.config.person_height_m, pan)
        sigma = RANGE_NOISE * max(obs.range_m, 0.3)
        if obs.from_feet:  # the head cut: the range is the feet's, ~25-45 % a frame at 1.5-2 m, not the height's ~4 %
            sigma = max(sigma, obs.feet_sigma_m)
        self.range_f.update(obs.range_m + driven, sigma * sigma, t_capture)
        if obs.feet_m is not None:
            feet_sigma = max(obs.feet_sigma_m, RANGE_NOISE * max(obs.feet_m, 0.3))
            self.feet_f.update(obs.feet_m + driven, feet_sigma * feet_sigma, t_capture)
        self.bearing_f.update(obs.bearing_rad + yaw, BEARING_NOISE_RAD ** 2, t_capture)
        if self.target_capture is None or t_capture >= self.target_capture:
            self.cut = obs.cut
            self._feet_seen = obs.feet_m is not None
        self.target_capture = t_capture if self.target_capture is None else max(self.target_capture, t_capture)

    def target_missing(self) -> None:
        """A fresh message without the target: the estimate coasts on its prediction (see :meth:`output`)."""
        self._unseen += 1

    def reset(self) -> None:
        """Back to SAFE: everything neutral at once, the estimate forgotten."""
        self.range_f.reset()
        self.feet_f.reset()
        self.bearing_f.reset()
        self.target_capture = None
        self.cut = False
        self._feet_seen = False
        self._unseen = 0
        self.estimate = None
        self.faster, self._faster_since = False, None
        self.wanted = NEUTRAL
        self.current = NEUTRAL
        self._search_started = None
        self._others = []

    def predict(self, now: float) -> Estimate | None:
        """The target's estimate extrapolated to ``now``; None without one."""
        if not (self.range_f.ready and self.bearing_f.ready):
            return None
        t_range = min(now, self.range_f.t + MAX_EXTRAPOLATION_S)  # type: ignore[operator]
        position, speed = self.range_f.predict(t_range)
        near = position
        if self._feet_seen and self.feet_f.ready:
            # The feet do not depend on the assumed height: a shorter person is not put too far. They are
            # noisier, so they count once they are nearer by FEET_SIGMAS of their own filtered spread.
            t_feet = min(now, self.feet_f.t + MAX_EXTRAPOLATION_S)  # type: ignore[operator]
            feet = self.feet_f.predict(t_feet)[0]
            if feet + FEET_SIGMAS * self.feet_f.std(t_feet) < position:
                near = feet
        t_bearing = min(now, self.bearing_f.t + MAX_EXTRAPOLATION_S)  # type: ignore[operator]
        world_bearing, bearing_rate = self.bearing_f.predict(t_bearing)
        bearing = world_bearing - self.odometer.yaw
        car_speed = self.current.throttle * self.config.top_speed_mps * math.cos(bearing)
        values = (position, near, world_bearing, bearing_rate, speed, car_speed)
        if not all(math.isfinite(v) for v in values):
            if not self._warned_non_finite:
                log.warning("the target's estimate is not a finite number %s: stopping the car", values)
                self._warned_non_finite = True
            return None  # no estimate: throttle and steering 0, as on information too old
        # a range is never negative (the person passed the car by the odometry: they are at it, at most)
        return Estimate(max(0.0, position - self.odometer.distance), bearing, speed - car_speed, bearing_rate, speed,
                        max(0.0, near - self.odometer.distance), max(0.0, self.range_f.x - self.odometer.distance))

    def _follow(self, now: float, limits: Limits) -> tuple[Commands, float]:
        """The wanted commands while FOLLOWING or LOST, and the throttle cap that applies without a ramp."""
        cfg = self.config
        estimate = self.estimate
        if estimate is None or self.target_capture is None or now - self.target_capture >= limits.horizon_s - EPSILON_S:
            return Commands(0.0, 0.0, self.current.pan), 0.0  # information too old (or not a number): stop at once
        v_limit = min(limits.speed_limit_mps, cfg.max_throttle * cfg.top_speed_mps)
        self.speed_limit_mps = v_limit
        own = estimate.target_speed_mps
        if own > v_limit:
            self._faster_since = now if self._faster_since is None else self._faster_since
            self.faster = self.faster or now - self._faster_since >= FASTER_AFTER_S
        elif own < FASTER_CLEAR * v_limit:
            self.faster, self._faster_since = False, None
        law = own + cfg.range_gain * (estimate.range_m - cfg.follow_distance_m)
        cap_speed = 0.0 if self.cut else min(v_limit, self.safe_speed(min(estimate.range_m, estimate.near_m), limits),
                                                  self.budget_speed(now, limits), self.path_speed(limits))
        if cfg.allow_reverse and estimate.range_m < cfg.follow_distance_m - cfg.reverse_margin_m and law < 0:
            speed = max(law, -cfg.max_reverse * cfg.top_speed_mps)  # backing away: not gated
            self.gate.stand()
        else:
            # The braking profile is the law's (a person who may have stopped), not a safety cap: it cuts the
            # throttle at once down to the creep speed; standing is the gate's decision (debounced while seen).
            braking = self.braking_speed(estimate)
            speed = self.gate.speed(min(law, braking), cap_speed, now, seen=self._unseen == 0)  # creep or stand, <= caps
            braking = max(self.gate.min_speed_mps, braking)
            speed = min(speed, braking)
            cap_speed = 0.0 if cap_speed < self.gate.min_speed_mps else min(cap_speed, braking)
        throttle = clamp(speed / cfg.top_speed_mps, -cfg.max_reverse, cfg.max_throttle)
        bearing = apply_deadband(estimate.bearing_rad, math.radians(cfg.steer_deadband_deg))
        turn_rate = cfg.steer_gain * bearing + cfg.steer_rate_gain * estimate.bearing_rate_rad_s
        wheel = math.atan(turn_rate * cfg.wheelbase_m / max(abs(speed), MIN_STEER_SPEED_MPS))
        steering = clamp(wheel / math.radians(cfg.max_steer_deg))
        if throttle < 0:
            steering = 0.0  # backing away straight
        pan = clamp(estimate.bearing_rad / math.radians(cfg.pan_range_deg)) if cfg.pan_follow else 0.0
        return Commands(throttle, steering, pan), max(0.0, cap_speed / cfg.top_speed_mps)

    def braking_speed(self, estimate: Estimate) -> float:
        """The fastest speed from which the braking ramp still slows the car to the person's speed at the follow distance.

        The ramp (``decel_per_s``) smooths the throttle, but a car that only
        learns of a stop late (the filter needs a few frames) must not be
        carried inside ``follow_distance_m`` by it: above this speed the
        throttle is cut at once (``v = own + sqrt(2 a (range - follow))``).
        Once the person has been missing from ``UNSEEN_FRAMES`` fresh frames in
        a row, their walk is no longer extrapolated: the car keeps the speed
        from which it stops at the follow distance from where they were last
        seen (the range if they stood still since).
        """
        cfg = self.config
        brake = cfg.decel_per_s * cfg.top_speed_mps  # m/s^2
        speed = max(0.0, estimate.target_speed_mps) + math.sqrt(2 * brake * max(0.0, estimate.range_m - cfg.follow_distance_m))
        if self._unseen >= UNSEEN_FRAMES:
            speed = min(speed, math.sqrt(2 * brake * max(0.0, estimate.held_m - cfg.follow_distance_m)))
        return speed

    def pan_rate(self, limits: Limits) -> float:
        """The fastest the head may turn (pan units per second) while following.

        Between two frames the head's turn shifts the whole image; the tracker
        takes a box as the target's continuation only within ``lock_max_jump``
        of the frame diagonal (``sqrt(2)`` in normalised units, about that
        many widths x ``camera_hfov_deg`` of azimuth). The head uses at most
        ``PAN_GATE_SHARE`` of it per measured frame period, the rest is the
        person's own motion; a faster head loses the lock in a turn.
        """
        cfg = self.config
        deg_per_frame = PAN_GATE_SHARE * cfg.lock_max_jump * math.sqrt(2) * cfg.camera_hfov_deg
        return deg_per_frame / max(limits.period_s, cfg.tick_s) / cfg.pan_range_deg

    def safe_speed(self, range_m: float, limits: Limits) -> float:
        """The fastest speed from which the car stops outside ``stop_distance_m`` if the information stops now."""
        return max(0.0, range_m - self.config.stop_distance_m) / (limits.horizon_s + limits.stop_time_s)

    def path_speed(self, limits: Limits) -> float:
        """The fastest speed that stops outside ``stop_distance_m`` of anyone else in the car's path (inf: nobody).

        Every person of the newest fresh message, not only the target
        (:mod:`rover.drive.path`): the nearest one in the path, less the path
        the car has driven since that capture; 0 for a box in it cut by the
        frame's bottom edge.
        """
        nearest = nearest_in_path(self._others, self.odometer.yaw - self._others_yaw, self.config.path_half_width_m,
                                  limits.horizon_s + limits.stop_time_s)
        if math.isinf(nearest):
            return math.inf
        return self.safe_speed(max(0.0, nearest - self.odometer.path_since(self._others_t)), limits)

    def budget_speed(self, now: float, limits: Limits) -> float:
        """The fastest speed that keeps the travel since the newest capture acted on within ``travel_bound_m``.

        The speed limit alone does not: when the limits grow (a slower or
        older frame) the cut-off moves later while the distance already
        driven at the earlier, higher limit stays driven. So the distance left
        (the bound less the path driven since that capture) is spread over
        the time left before the cut-off, one tick more (the tick's rounding,
        a real car's slow-down), and the stop.
        """
        assert self.target_capture is not None
        left = max(0.0, self.config.travel_bound_m - self.odometer.path_since(self.target_capture))
        remaining = max(0.0, self.target_capture + limits.horizon_s - now) + self.config.tick_s
        return left / (remaining + limits.stop_time_s)

    def output(self, state: State, now: float, dt: float, limits: Limits, forward_blocked: bool = False) -> Commands:
        """The commands for this tick of ``dt`` seconds in ``state``."""
        cfg = self.config
        self.estimate = self.predict(now) if state in (State.FOLLOWING, State.LOST) else None
        cap = None  # a throttle cap that applies without a ramp
        if state in (State.SAFE, State.ARMED, State.STOPPED):
            self.wanted = NEUTRAL
            if state is not State.STOPPED:
                self.current = NEUTRAL  # not moving yet / dead-man: no ramp
        elif state in (State.FOLLOWING, State.LOST):
            self.wanted, cap = self._follow(now, limits)
            if state is State.LOST:  # coasting on the prediction, the target unseen: slow or hold, never speed up
                cap = min(cap, max(0.0, self.current.throttle))
        if state is State.SEARCH:
            self.wanted = Commands(0.0, 0.0, self._sweep(now, dt))
        else:
            self._search_started = None
        if state not in (State.FOLLOWING, State.LOST):
            self.faster, self._faster_since = False, None
        throttle = ramp_throttle(self.current.throttle, self.wanted.throttle, dt, cfg.accel_per_s, cfg.decel_per_s)
        if cap is not None and throttle > cap:
            throttle = cap  # limits, stop distance and old information cut at once
        if 0.0 < throttle * cfg.top_speed_mps < self.gate.min_speed_mps and self.wanted.throttle <= 0.0:
            throttle = 0.0  # ramping down to a stand: below the creep speed the motors only judder
        if state in (State.STOPPED, State.SEARCH):
            throttle = 0.0
        if forward_blocked and throttle > 0:
            throttle = 0.0  # the bumper does not ramp
        if throttle <= 0.0:
            self.gate.stand()  # stopped by a state, the dead-man, old information or the bumper: starts afresh
        steering = rate_limit(self.current.steering, self.wanted.steering, cfg.steer_rate_per_s * dt)
        pan = self.wanted.pan if state is not State.STOPPED else 0.0
        if state in (State.FOLLOWING, State.LOST):
            pan = rate_limit(self.current.pan, pan, self.pan_rate(limits) * dt)
        if dt > 0:
            self._pan_rate = (pan - self.current.pan) * math.radians(cfg.pan_range_deg) / dt
        self.current = Commands(throttle, steering, pan)
        bearing = 0.0 if self.estimate is None else self.estimate.bearing_rad
        self.odometer.drive(throttle * cfg.top_speed_mps, math.cos(bearing),
                            math.tan(steering * math.radians(cfg.max_steer_deg)) / cfg.wheelbase_m, dt)
        self.odometer.record(now, pan)
        return self.current

    def _sweep(self, now: float, dt: float) -> float:
        """A slow triangle sweep of the head, bounded by ``search_pan_limit``."""
        cfg = self.config
        if self._search_started is None:
            self._search_started = now
        pan = self.current.pan + self._search_direction * cfg.search_pan_rate * dt
        if abs(pan) >= cfg.search_pan_limit:
            pan = math.copysign(cfg.search_pan_limit, pan)
            self._search_direction = -math.copysign(1.0, pan)
        return pan
