"""PiCar-B kinematics: a bicycle model driven by the chassis commands.

Pure: numpy and the standard library only; the random generator is passed in.
The world is 2D, in metres and radians, x forward at the start, y to the left,
heading counter-clockwise from +x (so a positive steering angle, "left" in the
chassis convention, turns the car left).

Numbers are defaults for the Adeept PiCar-B; none is measured on a real kit
(see docs/sim.md), they are chosen to be the right order of magnitude:

- wheelbase 0.14 m, front-wheel angle +/-30 deg at full servo range (the
  steering linkage, not the servo, limits it);
- speed from PWM duty: the geared DC motors do not turn below ~15 % duty
  (static friction), then speed grows linearly to ~1.2 m/s at 100 %;
- a first-order lag of 0.15 s when speeding up, 0.08 s when the motors are cut
  (the gearbox brakes hard), and +/-3 % speed noise (battery, floor);
- SG90-class servos turn at ~600 deg/s (0.1 s per 60 deg), for steering and pan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class CarModel:
    """Geometry and dynamics of the car; lengths in metres, angles in degrees."""

    wheelbase_m: float = 0.14
    max_steer_deg: float = 30.0
    max_pan_deg: float = 60.0
    camera_forward_m: float = 0.16  # camera ahead of the rear axle
    length_m: float = 0.26
    width_m: float = 0.15
    max_speed_mps: float = 1.2  # at 100 % duty
    deadband_duty: float = 0.15  # below this duty fraction the wheels do not turn
    speed_tau_s: float = 0.15  # lag while the motors drive
    brake_tau_s: float = 0.08  # lag when the motors are cut
    standstill_mps: float = 0.03  # slower than this with motors off: static friction holds the car
    speed_noise: float = 0.03  # relative std of the speed the motors reach
    servo_deg_per_s: float = 600.0


@dataclass(frozen=True)
class Command:
    """The chassis command the world applies: normalised units of rover.hw.chassis.

    ``duty`` is the signed motor duty fraction the backend derived from the
    throttle (the ``[picar_b]`` min/max duty mapping); None means "the
    throttle itself" (min duty 0 %, max 100 %).
    """

    throttle: float = 0.0
    steering: float = 0.0
    pan: float = 0.0
    tilt: float = 0.0
    duty: float | None = None


@dataclass(frozen=True)
class CarState:
    """Rear-axle position (m), heading (rad), speed (m/s), wheel and pan angles (rad)."""

    x: float = 0.0
    y: float = 0.0
    heading: float = 0.0
    speed: float = 0.0
    steer: float = 0.0
    pan: float = 0.0


def duty_to_speed(duty: float, model: CarModel) -> float:
    """Steady-state speed (m/s, signed) for a motor duty fraction -1..1."""
    magnitude = (abs(duty) - model.deadband_duty) / (1.0 - model.deadband_duty)
    return math.copysign(model.max_speed_mps * min(1.0, max(0.0, magnitude)), duty)


def _slew(current: float, target: float, max_step: float) -> float:
    return current + max(-max_step, min(max_step, target - current))


def step(state: CarState, command: Command, dt: float, model: CarModel, rng: np.random.Generator | None = None) -> CarState:
    """Advance the car by ``dt`` seconds under ``command``.

    Speed follows ``command.duty`` (or the throttle when it has none).
    Servos slew towards their
    commanded angle; speed follows the duty with a first-order lag.
    """
    if dt <= 0:
        return state
    servo_step = math.radians(model.servo_deg_per_s) * dt
    steer = _slew(state.steer, command.steering * math.radians(model.max_steer_deg), servo_step)
    pan = _slew(state.pan, command.pan * math.radians(model.max_pan_deg), servo_step)
    target = duty_to_speed(command.throttle if command.duty is None else command.duty, model)
    if target != 0.0 and rng is not None and model.speed_noise > 0:
        target *= 1.0 + float(rng.normal(0.0, model.speed_noise))
    tau = model.speed_tau_s if target != 0.0 else model.brake_tau_s
    speed = target + (state.speed - target) * math.exp(-dt / tau)
    if target == 0.0 and abs(speed) < model.standstill_mps:
        speed = 0.0
    mean_speed = (state.speed + speed) / 2
    yaw_rate = mean_speed * math.tan(steer) / model.wheelbase_m
    heading = state.heading + yaw_rate * dt
    mid = (state.heading + heading) / 2
    return replace(
        state,
        x=state.x + mean_speed * math.cos(mid) * dt,
        y=state.y + mean_speed * math.sin(mid) * dt,
        heading=heading,
        speed=speed,
        steer=steer,
        pan=pan,
    )


def camera_pose(state: CarState, model: CarModel) -> tuple[float, float, float]:
    """Camera position (m) and viewing direction (rad): heading plus pan."""
    x = state.x + model.camera_forward_m * math.cos(state.heading)
    y = state.y + model.camera_forward_m * math.sin(state.heading)
    return x, y, state.heading + state.pan
