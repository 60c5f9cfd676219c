"""The one seam between the drive logic and the car's hardware.

``rover.drive`` only ever talks to a :class:`Chassis`. Backends implement it:
``picar-b`` (RPi.GPIO motors, PCA9685 servos over smbus2), ``log`` (prints
every command, for a dry run) and, in tests and the simulator, backends whose
vendor libraries are faithful fakes that record what the hardware would see.

Units are normalised so the control law never knows about duty cycles or
PCA9685 ticks:

- ``throttle``: -1.0 (full reverse) .. +1.0 (full forward), the fraction of
  the configured maximum motor duty; 0 stops the motors.
- ``steering``: -1.0 (full right) .. +1.0 (full left), the fraction of the
  servo's configured range either side of its calibrated centre (the vendor's
  convention: left = centre + range * direction).
- ``pan``: -1.0 (head turned fully right) .. +1.0 (fully left); ``tilt``:
  -1.0 (down) .. +1.0 (up).

Every backend clamps out-of-range values and refuses non-finite ones with
:class:`ValueError`; :meth:`Chassis.safe` and :meth:`Chassis.close` are
idempotent and never raise for a backend that is already closed.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Chassis(Protocol):
    """What the drive needs from a car."""

    def drive(self, throttle: float) -> None:
        """Set the rear motors: -1..1 of the maximum duty, sign = direction."""

    def steer(self, steering: float) -> None:
        """Set the front wheels: -1 full right .. +1 full left, 0 = centre."""

    def pan(self, position: float) -> None:
        """Turn the camera head: -1 right .. +1 left, 0 = centre."""

    def tilt(self, position: float) -> None:
        """Tilt the camera head: -1 down .. +1 up, 0 = centre."""

    def distance_m(self) -> float | None:
        """Latest ultrasonic range in metres, or None when unknown.

        Never blocks the caller: a backend measures in the background (or
        with a bounded timeout) and returns the newest valid reading;
        ``math.inf`` when nothing is in range. A backend with a fitted
        sensor also has ``has_ranger = True``: its None then means the range
        is unknown, and the drive's bumper blocks forward motion.
        """

    def safe(self) -> None:
        """Motors off, steering and head centred. Idempotent."""

    def close(self) -> None:
        """:meth:`safe`, then release the hardware. Idempotent."""
