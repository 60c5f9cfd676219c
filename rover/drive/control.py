"""The control law: steering, speed and head commands from the locked target.

All pure arithmetic on plain floats (units as in ``rover.hw.chassis``: steering
-1 right .. +1 left, throttle -1 .. +1, pan -1 right .. +1 left).

- Steering: PD (optional I) on the target's horizontal offset, ``+1`` when the
  target's centre is at the left edge of the frame, so a target on the left
  steers left. A dead-band ignores small offsets; the integral is reset
  whenever the target is lost; the command is rate-limited.
- Speed: the box height is the distance proxy. Below ``target_height`` the car
  approaches, proportionally to the relative height error, up to the speed
  limit; at or above it the car stops; it reverses only if configured. The
  throttle follows an acceleration ramp.
- Latency scaling: detections that arrive late describe the past. The gains
  and the speed limit are multiplied by ``nominal / latency`` (at most 1, at
  least ``latency_min_scale``), so a slow model gives a slower, stable car
  instead of an oscillating one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rover.drive.config import DriveConfig
from rover.drive.states import State


def clamp(value: float, low: float = -1.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def horizontal_offset(centre_x: float) -> float:
    """Offset of a box centre from the frame centre: +1 left edge .. -1 right edge."""
    return clamp((0.5 - centre_x) * 2.0)


def apply_deadband(error: float, band: float) -> float:
    """Zero inside ``band``, then continuous (no step at the band's edge)."""
    size = abs(error)
    if size <= band:
        return 0.0
    return math.copysign((size - band) / (1.0 - band), error) if band < 1.0 else 0.0


def rate_limit(current: float, target: float, max_step: float) -> float:
    """Move ``current`` towards ``target`` by at most ``max_step``."""
    return current + clamp(target - current, -max_step, max_step)


def ramp_throttle(current: float, target: float, dt: float, accel_per_s: float, decel_per_s: float) -> float:
    """Throttle ramp: speeding up at ``accel_per_s``, slowing down at ``decel_per_s``.

    A change of direction first slows to 0 at the braking rate.
    """
    speeding_up = abs(target) > abs(current) and (current == 0.0 or math.copysign(1, target) == math.copysign(1, current))
    return rate_limit(current, target, (accel_per_s if speeding_up else decel_per_s) * dt)


class LatencyScale:
    """Smoothed detection latency (seconds) and the gain scale it allows.

    ``scale = clamp(nominal / latency, min_scale, 1)``: a model twice as slow
    as the nominal latency halves the gains and the speed limit.
    """

    def __init__(self, nominal_s: float, min_scale: float, smoothing: float) -> None:
        self.nominal_s = nominal_s
        self.min_scale = min_scale
        self.smoothing = smoothing
        self.latency_s: float | None = None

    def update(self, latency_s: float) -> float:
        latency_s = max(0.0, latency_s)
        if self.latency_s is None:
            self.latency_s = latency_s
        else:
            self.latency_s += self.smoothing * (latency_s - self.latency_s)
        return self.scale

    @property
    def scale(self) -> float:
        if self.latency_s is None or self.latency_s <= self.nominal_s:
            return 1.0
        return clamp(self.nominal_s / self.latency_s, self.min_scale, 1.0)


class SteeringPD:
    """PD (plus optional I) on the horizontal offset, updated once per detection.

    The derivative uses the capture times of consecutive detections (seconds),
    so a slow model does not inflate it; the integral is clamped so its term
    never exceeds full lock, and :meth:`reset` clears both memories.
    """

    def __init__(self, kp: float, kd: float, ki: float, deadband: float) -> None:
        self.kp, self.kd, self.ki, self.deadband = kp, kd, ki, deadband
        self.integral = 0.0
        self._last: tuple[float, float] | None = None  # (time, error)

    def reset(self) -> None:
        self.integral = 0.0
        self._last = None

    def update(self, offset: float, t: float, scale: float = 1.0) -> float:
        error = apply_deadband(offset, self.deadband)
        derivative = 0.0
        if self._last is not None and t > self._last[0]:
            dt = t - self._last[0]
            derivative = (error - self._last[1]) / dt
            if self.ki > 0:
                self.integral = clamp(self.integral + error * dt, -1.0 / self.ki, 1.0 / self.ki)
        self._last = (t, error)
        return clamp(scale * (self.kp * error + self.kd * derivative) + self.ki * self.integral)


def speed_from_height(height: float, config: DriveConfig, scale: float = 1.0) -> float:
    """Throttle wanted for a target box ``height`` (fraction of the frame).

    Far (small box): forward, ``speed_gain * (target - h) / target``, capped at
    ``max_throttle * scale``. Close enough (``h >= target_height``): 0. Much
    closer than ``target_height + reverse_margin``: reverse, only with
    ``allow_reverse``.
    """
    target = config.target_height
    if height < target:
        return min(config.speed_gain * (target - height) / target, config.max_throttle * scale)
    if config.allow_reverse and height > target + config.reverse_margin:
        excess = (height - target - config.reverse_margin) / target
        return -min(config.speed_gain * excess, config.max_reverse * scale)
    return 0.0


@dataclass(frozen=True)
class Commands:
    """What the loop sends to the chassis in one tick."""

    throttle: float = 0.0
    steering: float = 0.0
    pan: float = 0.0


NEUTRAL = Commands()


class Controller:
    """Turns target observations and the state into ramped chassis commands."""

    def __init__(self, config: DriveConfig) -> None:
        self.config = config
        self.pd = SteeringPD(config.steer_kp, config.steer_kd, config.steer_ki, config.steer_deadband)
        self.latency = LatencyScale(config.latency_nominal_s, config.latency_min_scale, config.latency_smoothing)
        self.wanted = NEUTRAL
        self.current = NEUTRAL
        self._search_started: float | None = None
        self._search_direction = 1.0

    @property
    def scale(self) -> float:
        return self.latency.scale

    def observe(self, centre_x: float, height: float, t_capture: float, latency_s: float) -> None:
        """A fresh detection of the locked target (capture time and latency in seconds)."""
        scale = self.latency.update(latency_s)
        offset = horizontal_offset(centre_x)
        throttle = speed_from_height(height, self.config, scale)
        if self.config.pan_follow:
            pan = clamp(self.current.pan + self.config.pan_gain * scale * offset)
            steering = clamp(self.config.pan_to_steer * pan)
        else:
            pan = 0.0
            steering = self.pd.update(offset, t_capture, scale)
        self.wanted = Commands(throttle, steering, pan)

    def target_missing(self) -> None:
        """The target was not in a fresh message: forget the PD memory, coast."""
        self.pd.reset()
        self.wanted = Commands(0.0, 0.0, self.current.pan)

    def reset(self) -> None:
        """Back to SAFE: everything neutral at once, memories cleared."""
        self.pd.reset()
        self.wanted = NEUTRAL
        self.current = NEUTRAL
        self._search_started = None

    def output(self, state: State, now: float, dt: float, forward_blocked: bool = False) -> Commands:
        """The commands for this tick of ``dt`` seconds in ``state``."""
        cfg = self.config
        if state in (State.SAFE, State.ARMED, State.STOPPED):
            self.wanted = NEUTRAL
            if state is not State.STOPPED:
                self.current = NEUTRAL  # not moving yet / dead-man: no ramp
        if state is State.LOST:
            self.wanted = Commands(0.0, 0.0, self.current.pan)
        if state is State.SEARCH:
            self.wanted = Commands(0.0, 0.0, self._sweep(now, dt))
        else:
            self._search_started = None
        throttle = ramp_throttle(self.current.throttle, self.wanted.throttle, dt, cfg.accel_per_s, cfg.decel_per_s)
        if state is State.STOPPED:
            throttle = 0.0  # STOPPED means stopped; LOST already slowed down
        if forward_blocked and throttle > 0:
            throttle = 0.0  # the bumper does not ramp
        steering = rate_limit(self.current.steering, self.wanted.steering, cfg.steer_rate_per_s * dt)
        pan = self.wanted.pan if state is not State.STOPPED else 0.0
        self.current = Commands(throttle, steering, pan)
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
