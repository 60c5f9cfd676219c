"""What every PiCar-B backend shares: the :class:`rover.hw.chassis.Chassis` contract.

:class:`PicarBChassisBase` checks and clamps each command, maps it to pin
levels and ticks with :mod:`rover.hw.mapping`, and makes ``safe`` and
``close`` idempotent and thorough: every output is tried even when one
fails, motors first. Subclasses only write outputs (``_apply_motors``,
``_apply_servo``) and release their hardware (``_release``).
"""

from __future__ import annotations

import atexit
import logging
from typing import Any

from rover.core.errors import HardwareError
from rover.hw.config import SERVO_NAMES
from rover.hw.mapping import MotorCommand, checked, motor_command, servo_ticks

log = logging.getLogger(__name__)


class PicarBChassisBase:
    """A chassis with the PiCar-B's outputs (either kit: ``config`` is its section); ``name`` labels it in messages."""

    name = "chassis"

    def __init__(self, config: Any) -> None:
        self.config = config
        self._closed = False
        #: The last command applied to each output (what the car is doing).
        self.motors: Any = None  # a MotorCommand (2019-23 kit) or a B2MotorCommand (2024 kit)
        self.servos: dict[str, int] = {}
        # A backstop for an interpreter exit without close(): the car still stops.
        atexit.register(self.close)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the Chassis protocol ------------------------------------------------
    def drive(self, throttle: float) -> None:
        """Rear motors: -1..1 of ``max_duty``, sign = direction; 0 stops."""
        command = self._motor_command(checked("throttle", throttle))
        self._check_open("drive")
        self._apply_motors(command)
        self.motors = command

    def steer(self, steering: float) -> None:
        """Front wheels: -1 full right .. +1 full left (centre + range * direction)."""
        self._servo("steering", checked("steering", steering))

    def pan(self, position: float) -> None:
        """Head pan: -1 right .. +1 left."""
        self._servo("pan", checked("pan", position))

    def tilt(self, position: float) -> None:
        """Head tilt: -1 down .. +1 up."""
        self._servo("tilt", checked("tilt", position))

    @property
    def has_ranger(self) -> bool:
        """True when the ultrasonic sensor is fitted and open: then an unknown range blocks (rover.drive.loop)."""
        return getattr(self, "_ranger", None) is not None

    def distance_m(self) -> float | None:
        return None

    def safe(self) -> None:
        """Motors off (duty 0, inputs LOW), steering, pan and tilt at their centres.

        Every output is attempted even if an earlier one fails; the first
        failure is raised afterwards. Does nothing once closed.
        """
        if self._closed:
            return
        errors = self._safe_outputs()
        if errors:
            raise errors[0]

    def close(self) -> None:
        """:meth:`safe`, then release the hardware. Idempotent, best effort throughout."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        errors = self._safe_outputs()
        try:
            self._release()
        except Exception as exc:  # noqa: BLE001 - keep the first error, the outputs are already safe
            errors.append(exc)
        if errors:
            first = errors[0]
            if isinstance(first, HardwareError):
                raise first
            raise HardwareError(f"{self.name}: closing failed: {first}") from first

    def __enter__(self) -> "PicarBChassisBase":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- for subclasses ------------------------------------------------------
    def _motor_command(self, throttle: float) -> Any:
        """What ``throttle`` means for this kit's motors (the 2019-23 kit's H-bridge pins by default)."""
        return motor_command(throttle, self.config)

    def _apply_motors(self, command: MotorCommand) -> None:
        raise NotImplementedError

    def _apply_servo(self, name: str, channel: int, ticks: int) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Free the hardware after the outputs were made safe."""

    def _abandon(self) -> None:
        """Mark closed without touching outputs (for a backend that failed to open)."""
        self._closed = True
        atexit.unregister(self.close)

    def _safe_outputs(self) -> list[Exception]:
        errors: list[Exception] = []
        try:
            command = self._motor_command(0.0)
            self._apply_motors(command)
            self.motors = command
        except Exception as exc:  # noqa: BLE001 - the servos must still be centred
            log.error("%s: stopping the motors failed: %s", self.name, exc)
            errors.append(exc)
        for name in SERVO_NAMES:
            try:
                self._write_servo(name, 0.0)
            except Exception as exc:  # noqa: BLE001 - try the other servos too
                log.error("%s: centring %s failed: %s", self.name, name, exc)
                errors.append(exc)
        return errors

    def _servo(self, name: str, position: float) -> None:
        self._check_open(name)
        self._write_servo(name, position)

    def _write_servo(self, name: str, position: float) -> None:
        servo = self.config.servo(name)
        ticks = servo_ticks(position, servo)
        self._apply_servo(name, servo.channel, ticks)
        self.servos[name] = ticks

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise HardwareError(f"{self.name}: {what} after close(): open a new chassis")
