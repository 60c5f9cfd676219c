"""The ``sim`` chassis backend: the drive's commands go to the simulated world.

Used by the unchanged ``rover.drive`` (``--backend sim``): every call sends
the whole command (throttle, steering, pan, tilt; units of
:mod:`rover.hw.chassis`, plus the motor duty the PiCar-B backend would set for
that throttle with the same ``[picar_b]`` section, through
:func:`rover.hw.mapping.motor_command`) over a ZeroMQ PUSH socket that connects to the world's
PULL socket. The endpoint comes from the environment variable
``ROVER_SIM_COMMANDS`` (the simulator sets it when it starts the drive),
default ``tcp://127.0.0.1:5557``. Sends never block: with the world gone the
newest commands are dropped after a queue of 100, as a car's motors would
simply keep their last setting. ``distance_m`` is None (this chassis has
no ultrasonic sensor) unless a ranger is given (then ``has_ranger`` is
True and the drive's bumper applies, as on a kit): in process a
:class:`rover.sim.sonar.SimRanger` (the kit's ranger on the simulated
sensor); over ZeroMQ (``python -m rover.sim --ultrasonic``) the world
publishes each measurement (``sim.range``, :mod:`rover.sim.wire`) on the
endpoint in ``ROVER_SIM_RANGES``, and the chassis feeds them to the kit's
:class:`~rover.hw.ultrasonic.UltrasonicRanger` (median, staleness) when the
drive asks for the range.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, Callable

import zmq

from rover.core.errors import HardwareError, MessageError
from rover.hw.config import PicarBConfig
from rover.hw.mapping import motor_command
from rover.hw.ultrasonic import UltrasonicRanger
from rover.sim.car import Command
from rover.sim.wire import RANGE_TOPIC, decode_range, encode_command

ENV_ENDPOINT = "ROVER_SIM_COMMANDS"
ENV_RANGES = "ROVER_SIM_RANGES"
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"
_CLOSE_LINGER_MS = 500  # time the final stop command gets to reach the world


class CommandChassis:
    """A simulated :class:`rover.hw.chassis.Chassis`: every call becomes one whole :class:`Command`.

    Each value is checked finite and clamped to -1..1, and the throttle gets
    the motor duty the PiCar-B backend would set for it (same ``[picar_b]``
    section); :meth:`_apply` says where the command goes.
    """

    def __init__(self, config: PicarBConfig | None = None, ranger: Any = None) -> None:
        self.config = config or PicarBConfig()
        self._command = Command()
        #: The kit's ranger over the simulated sensor (None: no ultrasonic).
        self.ranger = ranger

    @property
    def command(self) -> Command:
        """What the world was last told."""
        return self._command

    def _apply(self, command: Command) -> None:
        raise NotImplementedError

    def _set(self, **values: float) -> None:
        for name, value in values.items():
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, not {value}")
        clamped = {name: max(-1.0, min(1.0, float(v))) for name, v in values.items()}
        command = dataclasses.replace(self._command, **clamped)
        motors = motor_command(command.throttle, self.config)
        duty = motors.right.duty / 100.0
        self._command = dataclasses.replace(command, duty=duty if motors.throttle >= 0 else -duty)
        self._apply(self._command)

    def drive(self, throttle: float) -> None:
        self._set(throttle=throttle)

    def steer(self, steering: float) -> None:
        self._set(steering=steering)

    def pan(self, position: float) -> None:
        self._set(pan=position)

    def tilt(self, position: float) -> None:
        self._set(tilt=position)

    @property
    def has_ranger(self) -> bool:
        return self.ranger is not None

    def distance_m(self) -> float | None:
        return None if self.ranger is None else self.ranger.distance_m()

    def safe(self) -> None:
        self._set(throttle=0.0, steering=0.0, pan=0.0, tilt=0.0)


class _Pushed:
    """The sensor of a ranger whose readings are pushed in (by the world, over ZeroMQ): it never measures itself."""

    def measure(self) -> float | None:
        return None


class SimChassis(CommandChassis):
    """The simulated car of the real-process simulator: commands go to the world over ZeroMQ.

    With ``ranges`` (default: ``ROVER_SIM_RANGES``) it also has the ultrasonic the world measures.
    """

    def __init__(self, config: PicarBConfig | None = None, endpoint: str | None = None, context: zmq.Context | None = None,
                 clock_ns: Callable[[], int] = time.monotonic_ns, ranges: str | None = None) -> None:
        super().__init__(config)
        self.endpoint = endpoint or os.environ.get(ENV_ENDPOINT) or DEFAULT_ENDPOINT
        self._clock_ns = clock_ns
        context = context or zmq.Context.instance()
        self._socket = context.socket(zmq.PUSH)
        self._socket.setsockopt(zmq.SNDHWM, 100)
        self._socket.setsockopt(zmq.LINGER, _CLOSE_LINGER_MS)
        self._ranges: zmq.Socket | None = None
        ranges = ranges or os.environ.get(ENV_RANGES)
        try:
            self._socket.connect(self.endpoint)
            if ranges:
                self._ranges = context.socket(zmq.SUB)
                self._ranges.setsockopt(zmq.LINGER, 0)
                self._ranges.setsockopt(zmq.SUBSCRIBE, RANGE_TOPIC.encode() + b" ")
                self._ranges.connect(ranges)
                cfg = self.config
                self.ranger = UltrasonicRanger(_Pushed(), clock=lambda: clock_ns() / 1e9,  # type: ignore[arg-type]
                                               interval_s=cfg.ultrasonic_interval_s, stale_s=cfg.ultrasonic_stale_s,
                                               samples=cfg.ultrasonic_samples)
        except zmq.ZMQError as exc:
            self._socket.close(0)
            if self._ranges is not None:
                self._ranges.close(0)
            raise HardwareError(f"sim chassis cannot connect to {self.endpoint} / {ranges}: {exc} "
                                f"(set {ENV_ENDPOINT} / {ENV_RANGES})") from None
        self._closed = False

    def distance_m(self) -> float | None:
        """The median of the world's latest fresh measurements (as the kit's ranger), None if unknown."""
        if self._ranges is not None and not self._closed:
            for _ in range(1000):
                if not self._ranges.poll(0):
                    break
                try:
                    metres, t_ns = decode_range(self._ranges.recv())
                except MessageError:
                    continue  # a malformed reading is a failed one
                if metres is None:
                    self.ranger.misses += 1
                else:
                    # Stamped when the world measured it, not when it arrived (a queue of old readings is stale);
                    # never in the future (another clock).
                    self.ranger.add(metres, taken=min(t_ns, self._clock_ns()) / 1e9)
        return super().distance_m()

    def _apply(self, command: Command) -> None:
        if self._closed:
            return
        try:
            self._socket.send(encode_command(command, self._clock_ns()), zmq.NOBLOCK)
        except zmq.Again:
            pass  # the world is not listening: the command is lost, as on a car with its bus unplugged

    def close(self) -> None:
        if self._closed:
            return
        self.safe()
        self._closed = True
        self._socket.close()
        if self._ranges is not None:
            self._ranges.close()


def open_sim(config: PicarBConfig | None = None, **_kwargs: Any) -> SimChassis:
    """Registry entry point: ``rover.hw.open_chassis("sim", config)`` with the ``[picar_b]`` section.

    The GPIO, bus and clock arguments of the other backends do not apply.
    """
    return SimChassis(config)
