"""Pure mapping for the 2024 kit's motors: throttle -> the two PCA9685 channels of each motor.

Each rear motor hangs on an H-bridge whose two inputs are PCA9685 channels,
wired as an ``adafruit_motor.motor.DCMotor`` (positive, negative) with
``SLOW_DECAY`` in the vendor code (adeept/adeept_picar-b2 ``web/move.py``).
That library's slow-decay scheme (``DCMotor.throttle`` setter), in ticks:

- forward at fraction ``f``: positive input full on, negative input high for
  ``1 - f`` of the period. The bridge drives for ``f`` and brakes (both
  inputs high) for the rest, which keeps speed nearly linear in ``f``.
- reverse: the same with the inputs swapped.
- stop: rover writes both inputs full off (the library's ``throttle = None``,
  "controller off"), the state the chip powers up in and the one
  ``rover-safestop`` writes, so every way of stopping leaves the same
  registers. (The vendor's ``motorStop`` sets ``throttle = 0``, both inputs
  full on, a brake; at a follower's speeds the difference is a short coast.)

Ticks follow :func:`rover.hw.pca9685.channel_bytes`: 0 full off, 4096 full on.
"""

from __future__ import annotations

from dataclasses import dataclass

from rover.hw.pca9685 import FULL_ON, TICKS


@dataclass(frozen=True)
class B2MotorCommand:
    """Both motors for one throttle: signed fraction of full duty each (+ = positive input driven)."""

    throttle: float
    m1: float
    m2: float

    @property
    def stopped(self) -> bool:
        return self.m1 == 0.0 and self.m2 == 0.0


def b2_motor_command(throttle: float, config: object) -> B2MotorCommand:
    """``throttle`` (checked, -1..1) mapped onto ``min_duty..max_duty`` percent, per motor direction."""
    if throttle < 0.0 and not getattr(config, "allow_reverse"):
        throttle = 0.0
    if throttle == 0.0:
        return B2MotorCommand(0.0, 0.0, 0.0)
    low, high = getattr(config, "min_duty"), getattr(config, "max_duty")
    fraction = round(min(100.0, max(0.0, low + abs(throttle) * (high - low))), 3) / 100.0
    sign = 1.0 if throttle > 0.0 else -1.0
    return B2MotorCommand(throttle, sign * fraction * getattr(config, "m1_direction"),
                          sign * fraction * getattr(config, "m2_direction"))


def slow_decay_ticks(fraction: float) -> tuple[int, int]:
    """``(positive, negative)`` channel ticks for a signed duty ``fraction`` (-1..1); 0 = both full off."""
    if not -1.0 <= fraction <= 1.0:
        raise ValueError(f"motor duty fraction must be in -1..1, not {fraction}")
    if fraction == 0.0:
        return 0, 0
    braking = round(TICKS * (1.0 - abs(fraction)))  # the other input is high too: brake for that part
    return (FULL_ON, braking) if fraction > 0.0 else (braking, FULL_ON)


def reverses(old: B2MotorCommand | None, new: B2MotorCommand) -> bool:
    """True if some motor would go straight from one direction to the other."""
    if old is None:
        return False
    return any(a * b < 0.0 for a, b in ((old.m1, new.m1), (old.m2, new.m2)))
