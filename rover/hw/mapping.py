"""Pure mapping from the chassis' normalised commands to what the pins see.

No I/O here: every backend (the car, the dry-run log, the fakes in tests)
uses these functions, so a dry run prints exactly the duty, input levels and
servo ticks the car would get.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rover.hw.config import TICKS_PER_PERIOD, PicarBConfig, ServoConfig


@dataclass(frozen=True)
class MotorOutput:
    """One H-bridge channel: input levels (0/1) and enable duty in percent."""

    in1: int
    in2: int
    duty: float

    @property
    def turning(self) -> str:
        """``"stop"``, or which way the inputs drive the motor."""
        if self.duty == 0.0 or self.in1 == self.in2:
            return "stop"
        return "in1" if self.in1 else "in2"


@dataclass(frozen=True)
class MotorCommand:
    """Both rear motors for one throttle value."""

    throttle: float
    right: MotorOutput
    left: MotorOutput


STOPPED = MotorOutput(in1=0, in2=0, duty=0.0)


def checked(name: str, value: object) -> float:
    """``value`` as a float clamped to -1..1; non-numbers and NaN/inf raise ValueError.

    Clamping is the contract for finite values (a control law may overshoot);
    a non-finite value is a bug upstream and must not move the car.
    """
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number in -1..1, not a boolean")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in -1..1, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number in -1..1, not {number}")
    return min(1.0, max(-1.0, number))


def motor_command(throttle: float, config: PicarBConfig) -> MotorCommand:
    """The pin levels and duty for ``throttle`` (already checked, -1..1).

    ``|throttle|`` maps linearly onto ``min_duty..max_duty`` percent; 0 stops
    (both inputs LOW, duty 0). A negative throttle with ``allow_reverse``
    false stops instead of reversing.
    """
    if throttle < 0.0 and not config.allow_reverse:
        throttle = 0.0
    if throttle == 0.0:
        return MotorCommand(0.0, STOPPED, STOPPED)
    duty = config.min_duty + abs(throttle) * (config.max_duty - config.min_duty)
    duty = round(min(100.0, max(0.0, duty)), 3)
    forward = throttle > 0.0
    return MotorCommand(
        throttle,
        right=_motor(forward, config.right_direction, duty),
        left=_motor(forward, config.left_direction, duty),
    )


def _motor(forward: bool, direction: int, duty: float) -> MotorOutput:
    # direction 1: forward = in1 HIGH, in2 LOW; direction -1 mirrors it.
    in1_high = forward == (direction == 1)
    return MotorOutput(in1=int(in1_high), in2=int(not in1_high), duty=duty)


def servo_ticks(position: float, servo: ServoConfig) -> int:
    """PCA9685 off-tick count for ``position`` (-1..1): centre + position*range*direction, within min..max."""
    ticks = round(servo.centre + position * servo.range * servo.direction)
    return int(min(servo.max, max(servo.min, ticks)))


def ticks_to_ms(ticks: int, servo_hz: float) -> float:
    """Pulse width in milliseconds of ``ticks`` at ``servo_hz`` (300 ticks at 50 Hz = 1.465 ms)."""
    return ticks * 1000.0 / (servo_hz * TICKS_PER_PERIOD)
