"""The ``picar-b`` backend: the real car through RPi.GPIO and a PCA9685 over smbus2.

Rear motors: per motor an H-bridge with two input pins (direction) and an
enable pin carrying RPi.GPIO software PWM (speed, 1 kHz). Servos: PCA9685
channels at 50 Hz. Ultrasonic: an HC-SR04 measured in a background thread.

``gpio`` (a module with the RPi.GPIO API; rpi-lgpio on a Pi 5) and ``bus``
(an open smbus2 ``SMBus``) can be injected, which is how the tests run this
exact code on faithful fakes. Injected objects stay the caller's: ``close()``
stops, lowers and cleans up the pins it used, but closes only a bus it opened.

A failed open undoes what it set up (PWM stopped, motor pins held LOW). Once
a pin had been set up, its error carries ``hardware_touched = True`` (as
``picar-b2``'s does once its chip answered): ``rover.drive`` then leaves its
sentinel armed, which runs the safe stop after the drive has exited and
reports any part it could not stop (a PCA9685 missing or failing mid-open).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from rover.core.errors import HardwareError, RoverError
from rover.hw.base import PicarBChassisBase
from rover.hw.config import PicarBConfig
from rover.hw.kits import check_revision
from rover.hw.mapping import MotorCommand, MotorOutput
from rover.hw.pca9685 import PCA9685
from rover.hw.ultrasonic import UltrasonicRanger, open_ranger
from rover.hw.vendor import DRY_RUN_HINT, gpio_error, import_gpio, open_i2c

log = logging.getLogger(__name__)


class _Motor:
    """One H-bridge channel: enable PWM plus two direction inputs."""

    def __init__(self, gpio: Any, enable: int, in1: int, in2: int, pwm_hz: float,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.gpio, self.enable, self.in1, self.in2 = gpio, enable, in1, in2
        self.period_s = 1.0 / pwm_hz
        self._sleep = sleep
        self.pwm = gpio.PWM(enable, pwm_hz)
        self.pwm.start(0)
        self.output = MotorOutput(0, 0, 0.0)

    def apply(self, out: MotorOutput) -> None:
        reversing = out.turning != "stop" and self.output.turning not in ("stop", out.turning)
        if reversing:
            # Never swap the inputs under power. RPi.GPIO's PWM thread and lgpio's tx_pwm take a new
            # duty only at the end of the current period, so zero duty is certain one period later.
            self.pwm.ChangeDutyCycle(0)
            self._sleep(self.period_s)
        self.gpio.output(self.in1, out.in1)
        self.gpio.output(self.in2, out.in2)
        self.pwm.ChangeDutyCycle(out.duty)
        self.output = out

    def stop_pwm(self) -> None:
        """End the PWM thread and hold every pin LOW explicitly."""
        self.pwm.stop()
        for pin in (self.enable, self.in1, self.in2):
            self.gpio.output(pin, 0)


def _marked(error: RoverError, touched: bool) -> RoverError:
    """``error`` with ``hardware_touched`` set when the failed open had set up an output (as picar-b2 marks it)."""
    if touched:
        error.hardware_touched = True  # type: ignore[attr-defined]  # read by rover.drive.__main__
    return error


class PicarBChassis(PicarBChassisBase):
    """The Adeept PiCar-B. Prefer :func:`open_picar_b` (or ``rover.hw.open_chassis``)."""

    name = "picar-b"

    def __init__(self, config: PicarBConfig, gpio: Any, bus: Any, *, owns_bus: bool,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(config)
        self._gpio = gpio
        self._bus = bus
        self._owns_bus = owns_bus
        self._pins: list[int] = []
        self._motors: list[_Motor] = []
        self._ranger: UltrasonicRanger | None = None
        self._sleep = sleep
        try:
            self._open_gpio(clock)
            self._pca = PCA9685(bus, config.i2c_address, bus_number=config.i2c_bus, sleep=sleep)
            self._pca.ensure(config.servo_hz)
            self.safe()
        except BaseException as exc:
            # Once a pin is set up an output may have changed (and the PCA9685 comes after the pins): the
            # error says so, and the drive then leaves its sentinel armed to stop the car after it has exited.
            touched = bool(self._pins)
            self._abandon()  # the car must not be driven half-open; undo what was set up
            try:
                self._undo_open()
            except HardwareError as undo_error:
                log.error("picar-b: undoing a failed open: %s", undo_error)
            if isinstance(exc, HardwareError):
                raise _marked(HardwareError(f"{exc}; {DRY_RUN_HINT}"), touched) from None
            if isinstance(exc, RuntimeError):  # RPi.GPIO at setup(): "No access to /dev/mem..."
                raise _marked(gpio_error(exc, DRY_RUN_HINT), touched) from None
            if isinstance(exc, RoverError):  # e.g. SPI holding the echo pin (ConfigError), after the motor pins
                _marked(exc, touched)
            raise
        if self._ranger is not None:
            self._ranger.start()

    def _open_gpio(self, clock: Callable[[], float]) -> None:
        cfg, gpio = self.config, self._gpio
        # RPi.GPIO warns "This channel is already in use" for a pin another run left as an output, which
        # rover-safestop does on purpose after every stop; it cannot tell a live owner anyway (rpi-lgpio
        # refuses a pin another process holds, with an error).
        gpio.setwarnings(False)
        try:
            gpio.setmode(gpio.BCM)
        except ValueError as exc:  # "A different mode has already been set!"
            raise HardwareError(f"RPi.GPIO is already in another pin numbering mode in this process ({exc})") from None
        for pin in cfg.motor_pins:
            gpio.setup(pin, gpio.OUT, initial=gpio.LOW)
            self._pins.append(pin)
        self._motors = [
            _Motor(gpio, cfg.right_enable_pin, cfg.right_in1_pin, cfg.right_in2_pin, cfg.motor_pwm_hz, self._sleep),
            _Motor(gpio, cfg.left_enable_pin, cfg.left_in1_pin, cfg.left_in2_pin, cfg.motor_pwm_hz, self._sleep),
        ]
        if cfg.ultrasonic_enabled:
            self._ranger, pins = open_ranger(gpio, cfg, clock=clock)
            self._pins.extend(pins)

    def distance_m(self) -> float | None:
        """Newest ultrasonic range in metres (never blocks), None if disabled, stale or closed."""
        if self._ranger is None or self._closed:
            return None
        return self._ranger.distance_m()

    def _apply_motors(self, command: MotorCommand) -> None:
        """Both motors, each attempted even if the other fails (a stop must reach both)."""
        errors = []
        for motor, drive in zip(self._motors, (command.right, command.left)):
            try:
                motor.apply(drive)
            except Exception as exc:  # noqa: BLE001 - raised below, after the other motor
                errors.append(exc)
        if errors:
            raise errors[0]

    def _apply_servo(self, name: str, channel: int, ticks: int) -> None:
        self._pca.set_pulse(channel, ticks)

    def _release(self) -> None:
        self._undo_open()

    def _undo_open(self) -> None:
        """Stop the thread and PWM, motor pins LOW, the other pins cleaned up, our bus closed. Best effort.

        The motor pins stay LOW outputs (as ``rover-safestop`` leaves them):
        ``GPIO.cleanup`` would turn them into floating inputs, which do not
        hold the H-bridge off when the drive runs outside systemd and no
        safe-stop follows. The process's claim on them ends when it exits.
        """
        errors: list[Exception] = []
        if self._ranger is not None:
            self._ranger.stop()
        for motor in self._motors:
            try:
                motor.stop_pwm()
            except Exception as exc:  # noqa: BLE001 - the other motor and the cleanup still run
                errors.append(exc)
        self._motors = []
        others = [pin for pin in self._pins if pin not in self.config.motor_pins]
        if others:
            try:
                self._gpio.cleanup(others)
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            self._pins = []
        if self._owns_bus and self._bus is not None:
            try:
                self._bus.close()
            except OSError as exc:
                errors.append(exc)
            self._bus = None
        if errors:
            raise HardwareError(f"picar-b: releasing the hardware failed: {errors[0]}")


def open_picar_b(config: PicarBConfig | None = None, *, gpio: Any = None, bus: Any = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> PicarBChassis:
    """Open the car: open (or take) the I2C bus, check the kit revision, import (or take) RPi.GPIO, centre everything.

    Raises :class:`HardwareError` with one line when a library or device is
    missing, naming ``--backend log`` for a dry run; :class:`ConfigError`
    (exit 78) when this is the 2024 kit or SPI holds the echo pin.
    """
    config = config if config is not None else PicarBConfig()
    if gpio is None:
        gpio = import_gpio()
    owns_bus = bus is None
    if bus is None:
        bus = open_i2c(config.i2c_bus)
    try:
        check_revision(bus, "picar-b", config.i2c_address, config.i2c_bus)  # before any pin is touched
    except BaseException:
        if owns_bus:
            bus.close()
        raise
    return PicarBChassis(config, gpio, bus, owns_bus=owns_bus, clock=clock, sleep=sleep)
