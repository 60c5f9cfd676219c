"""The controller: speed, steering and head commands from the estimated target, every tick.

Pure arithmetic on plain floats; time passed in (seconds of the loop's
clock). Units as in ``rover.hw.chassis`` (:mod:`rover.drive.commands`).
The parts, one module each:

- the target's estimate predicted to *now*, which compensates the age of
  the detection (:mod:`rover.drive.target`: :meth:`Controller.observe`
  once per fresh detection of the locked target);
- the speed law and its caps (:mod:`rover.drive.speed`): wanted speed =
  the person's speed along the line of sight + ``range_gain`` x (range -
  (``follow_distance_m`` + ``follow_gap_s`` x their speed)), never more than
  the speed limit of the stream (:class:`rover.drive.limits.Limits`), the
  ``max_throttle`` cap, the stop-distance speed, the travel budget, anyone
  in the path (:mod:`rover.drive.path`), and 0 while the newest box has the
  person's head or feet cut by the frame (nearer than ~2 m, or small and
  close: a fact of the pixels that no wrong assumption about height or
  focal length can move); above the braking profile the throttle is cut at
  once. Throttle = speed / ``top_speed_mps`` (linear, since the backend
  maps throttle onto ``min_duty..max_duty`` above the motors' dead band),
  ramped up at ``accel_per_s``, down at ``decel_per_s``; every cap applies
  at once;
- the motors' dead band (:class:`rover.drive.motion.MotionGate`): the car
  creeps at ``min_speed_mps`` or stands, with hysteresis, instead of
  chattering; a cap below the creep speed stands it at once.

When the person's own speed exceeds the car's limit for a second the car
drives at the limit and :attr:`Controller.faster` says so (cleared below
90 % of it). Once the newest capture of the person is older than the
information horizon (freshness limit + dead-man), the throttle is 0 at
once: together with the speed limit and the budget, the car stops within
``travel_bound_m`` of where it was at that capture, whether the person
vanished or the detector died.

Steering: a turn rate ``steer_gain`` x bearing + ``steer_rate_gain`` x the
person's bearing rate (in the odometry frame, so the car's own turning is
not mistaken for theirs), turned into a wheel angle by the bicycle model
(``atan(rate x wheelbase / speed)``), after a dead-band, rate-limited. A
wheel angle, not a bearing, sets the turn rate, and the PiCar-B's short
wheelbase turns fast: 0.4 of steering at 1 m/s is ~100 deg/s. With
``pan_follow`` the head points at the estimated bearing, no faster than the
tracker's centre-jump gate allows between two frames
(:meth:`Controller.pan_rate`). The heading counts the wheels rolling on
after a throttle cut (:mod:`rover.drive.odometry`).
"""

from __future__ import annotations

import math

from rover.drive import speed as law
from rover.drive.commands import NEUTRAL, Commands, apply_deadband, clamp, ramp_throttle, rate_limit
from rover.drive.config import DriveConfig
from rover.drive.estimate import Observation, observe
from rover.drive.kalman import CVFilter
from rover.drive.limits import Limits
from rover.drive.motion import MotionGate
from rover.drive.odometry import Odometer
from rover.drive.path import nearest_in_path
from rover.drive.states import EPSILON_S, State
from rover.drive.target import Estimate, TargetEstimate

__all__ = ["NEUTRAL", "Commands", "Controller", "Estimate", "apply_deadband", "clamp", "ramp_throttle", "rate_limit"]


MIN_STEER_SPEED_MPS = 0.3  # below this the wheel angle for a turn rate is computed as at this speed
FASTER_CLEAR = 0.9
FASTER_AFTER_S = 1.0  # the person's speed must exceed the limit this long before the flag is raised
PAN_GATE_SHARE = 0.5  # share of the tracker's centre-jump gate the head may use up between two frames


class Controller:
    """Turns target observations, the state and the limits into ramped chassis commands."""

    def __init__(self, config: DriveConfig) -> None:
        self.config = config
        self.odometer = Odometer(config.max_age_s + config.deadman_s + 1.0, config.stop_time_s / 3)
        self.target = TargetEstimate(config, odometer=self.odometer)
        self.camera = self.target.camera
        top = config.max_throttle * config.top_speed_mps  # a low --max-throttle lowers the thresholds with it
        creep = min(config.min_speed_mps, top)
        self.gate = MotionGate(creep, min(config.start_speed_mps, top), min(config.stop_speed_mps, creep), config.stand_after_s)
        self.wanted = NEUTRAL
        self.current = NEUTRAL
        self.estimate: Estimate | None = None
        self.speed_limit_mps = 0.0
        self.reverse_cap = 0.0  # the largest backwards throttle this tick (allow_reverse only)
        self.faster = False
        self._faster_since: float | None = None
        self._search_started: float | None = None
        self._search_direction = 1.0
        self._others: list[tuple[Observation, float]] = []  # everyone else in the newest fresh message, car's frame then
        self._others_t = 0.0  # ... its capture time
        self._others_yaw = 0.0  # ... the car's heading then (odometry)
        self._pan_rate = 0.0  # the head's turn in the last tick (rad/s)

    @property
    def target_capture(self) -> float | None:
        """Capture time of the newest frame showing the target (None: none since SAFE)."""
        return self.target.capture

    @property
    def cut(self) -> bool:
        """The newest box of the target has its top or bottom edge cut: too near to approach."""
        return self.target.cut

    @property
    def range_f(self) -> CVFilter:
        """The range filter (odometry frame) of :mod:`rover.drive.target`."""
        return self.target.range_f

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
        if received_s is not None:
            t_capture = min(t_capture, received_s)
        self.target.observe(box, t_capture, lock)

    def target_missing(self) -> None:
        """A fresh message without the target: the estimate coasts on its prediction (see :meth:`output`)."""
        self.target.missing()

    def reset(self) -> None:
        """Back to SAFE: everything neutral at once, the estimate forgotten."""
        self.target.reset()
        self.estimate = None
        self.faster, self._faster_since = False, None
        self.wanted = NEUTRAL
        self.current = NEUTRAL
        self._search_started = None
        self._others = []

    def predict(self, now: float) -> Estimate | None:
        """The target's estimate extrapolated to ``now``; None without one."""
        return self.target.predict(now, self.current.throttle * self.config.top_speed_mps)

    def _follow(self, now: float, limits: Limits) -> tuple[Commands, float]:
        """The wanted commands while FOLLOWING or LOST, and the throttle cap that applies without a ramp."""
        cfg = self.config
        estimate = self.estimate
        self.reverse_cap = 0.0
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
        wanted = law.law_speed(cfg, estimate)
        cap_speed = 0.0 if self.cut else min(v_limit, self.safe_speed(min(estimate.range_m, estimate.near_m), limits),
                                                  self.budget_speed(now, limits), self.path_speed(limits))
        if cfg.allow_reverse and estimate.range_m < cfg.follow_distance_m - cfg.reverse_margin_m and wanted < 0:
            # Backing away: not gated, but the travel bound and the speed limit hold backwards too (the path
            # driven counts either way), and like the forward caps the reverse cap applies without a ramp.
            back = min(cfg.max_reverse * cfg.top_speed_mps, v_limit, self.budget_speed(now, limits))
            self.reverse_cap = back / cfg.top_speed_mps
            speed = max(wanted, -back)
            self.gate.stand()
        else:
            # The braking profile is the law's (a person who may have stopped), not a safety cap: it cuts the
            # throttle at once down to the creep speed; standing is the gate's decision (debounced while seen).
            braking = self.braking_speed(estimate)
            speed = self.gate.speed(min(wanted, braking), cap_speed, now, seen=self.target.unseen == 0)  # creep or stand, <= caps
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
        """The braking profile (:func:`rover.drive.speed.braking_speed`) with the target's unseen frames."""
        return law.braking_speed(self.config, estimate, self.target.unseen)

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
        return law.safe_speed(range_m, self.config.stop_distance_m, limits)

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
        """The travel budget (:func:`rover.drive.speed.budget_speed`) since the newest capture of the target."""
        capture = self.target.capture
        assert capture is not None
        return law.budget_speed(self.config.travel_bound_m, self.odometer.path_since(capture), capture, now,
                                self.config.tick_s, limits)

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
                self.reverse_cap = min(self.reverse_cap, max(0.0, -self.current.throttle))
        if state is State.SEARCH:
            self.wanted = Commands(0.0, 0.0, self._sweep(now, dt))
        else:
            self._search_started = None
        if state not in (State.FOLLOWING, State.LOST):
            self.faster, self._faster_since = False, None
        throttle = ramp_throttle(self.current.throttle, self.wanted.throttle, dt, cfg.accel_per_s, cfg.decel_per_s)
        if cap is not None and throttle > cap:
            throttle = cap  # limits, stop distance and old information cut at once
        if state in (State.FOLLOWING, State.LOST) and throttle < -self.reverse_cap:
            throttle = -self.reverse_cap  # backing away (allow_reverse): the same, backwards
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
