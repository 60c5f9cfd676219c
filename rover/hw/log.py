"""The ``log`` backend: a dry run that prints every command instead of driving.

One line per command on ``stream`` (stdout by default, flushed at once), with
the duty, input levels and servo ticks the ``picar-b`` backend would write
for the same ``[picar_b]`` section, so a dry run also checks a config. The
final line is the safe state ``close()`` leaves the car in.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

from rover.hw.base import PicarBChassisBase
from rover.hw.config import SERVO_NAMES, PicarBConfig
from rover.hw.mapping import MotorCommand, MotorOutput, motor_command, servo_ticks


class LogChassis(PicarBChassisBase):
    """Prints ``log-chassis t=<clock s> <command> ...`` lines."""

    name = "log"

    def __init__(self, config: PicarBConfig, *, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(config)
        self._stream = stream
        self._clock = clock
        self._print("open backend=log (dry run: no GPIO or I2C is touched)")

    def _apply_motors(self, command: MotorCommand) -> None:
        self._print(f"drive throttle={command.throttle:+.3f} right {_motor(command.right)} left {_motor(command.left)}")

    def _apply_servo(self, name: str, channel: int, ticks: int) -> None:
        self._print(f"{name} ticks={ticks} channel={channel}")

    def _safe_outputs(self) -> list[Exception]:
        self.motors = motor_command(0.0, self.config)
        for name in SERVO_NAMES:
            self.servos[name] = servo_ticks(0.0, self.config.servo(name))
        self._print("safe " + _state(self.motors, self.servos, self.config))
        return []

    def _release(self) -> None:
        self._print("close " + _state(self.motors, self.servos, self.config))

    def _print(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            print(f"log-chassis t={self._clock():.3f} {text}", file=stream, flush=True)
        except (OSError, ValueError):
            pass  # a closed pipe must not stop the program from shutting down cleanly


def _motor(out: MotorOutput) -> str:
    return f"in1={out.in1} in2={out.in2} duty={out.duty:g}%"


def _state(motors: MotorCommand | None, servos: dict[str, int], config: PicarBConfig) -> str:
    stopped = motors is None or (motors.right.duty == 0.0 and motors.left.duty == 0.0)
    parts = ["motors=stopped" if stopped else f"motors=throttle {motors.throttle:+.3f}"]  # type: ignore[union-attr]
    for name in SERVO_NAMES:
        parts.append(f"{name}={servos.get(name, '?')}/{config.servo(name).centre}")
    return " ".join(parts) + " (ticks now/centre)"


def open_log(config: PicarBConfig | None = None, *, gpio: Any = None, bus: Any = None,
             clock: Callable[[], float] = time.monotonic, stream: TextIO | None = None) -> LogChassis:
    """Registry entry point; ``gpio`` and ``bus`` are ignored (nothing is driven)."""
    return LogChassis(config if config is not None else PicarBConfig(), stream=stream, clock=clock)
