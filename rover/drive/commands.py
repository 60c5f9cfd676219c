"""What the drive sends to the chassis each tick, and the small arithmetic that shapes it.

Pure: plain floats. Units as in ``rover.hw.chassis``: steering -1 right ..
+1 left, throttle -1 .. +1, pan -1 right .. +1 left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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
