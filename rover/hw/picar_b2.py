"""The ``picar-b2`` backend: the PiCar-B sold since 2024 (Robot HAT V3.1), section ``[picar_b2]``.

One PCA9685 (I2C 0x5f) drives everything that moves: the rear motors as
channel pairs (slow decay, :mod:`rover.hw.dcmotor`) and the three servos,
at one frequency (50 Hz). The ultrasonic sensor is on GPIO (BCM 23/24).

The chip keeps driving the last duty after its process dies, so:

- opening turns every output full off first with ONE byte (ALL_LED_OFF_H,
  before the chip is woken and before RPi.GPIO is imported), then
  configures, then centres the servos; only then may the drive open a socket;
- every stop (``safe``, ``close``, the atexit backstop) writes zero duty to
  the four motor channels, and ``rover-safestop`` (and the drive's sentinel)
  writes the one ALL_LED_OFF_H byte from outside when the process was
  killed, then re-centres the servos: zeroing the motor channels one byte
  at a time would pass a motor through drive states on the way;
- the four motor channels (12..15 on the stock HAT) go in one I2C
  transaction, so both motors change together and no input pair passes
  through a state neither end has; a reversal stops for one PWM period first.

``gpio`` (RPi.GPIO API, only for the ultrasonic) and ``bus`` (smbus2 ``SMBus``)
can be injected, as for ``picar-b``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from rover.core.errors import HardwareError
from rover.hw.base import PicarBChassisBase
from rover.hw.config_b2 import PicarB2Config
from rover.hw.dcmotor import B2MotorCommand, b2_motor_command, reverses, slow_decay_ticks
from rover.hw.kits import check_revision
from rover.hw.pca9685 import PCA9685
from rover.hw.ultrasonic import open_ranger
from rover.hw.vendor import DRY_RUN_HINT, gpio_error, import_gpio, open_i2c

log = logging.getLogger(__name__)


def motor_channel_ticks(command: B2MotorCommand, config: PicarB2Config) -> dict[int, int]:
    """``{channel: ticks}`` of the four motor channels for ``command``."""
    m1 = slow_decay_ticks(command.m1)
    m2 = slow_decay_ticks(command.m2)
    return {config.m1_in1_channel: m1[0], config.m1_in2_channel: m1[1],
            config.m2_in1_channel: m2[0], config.m2_in2_channel: m2[1]}


def write_channels(chip: PCA9685, ticks: dict[int, int]) -> None:
    """Contiguous channels in one transaction each (all four motor channels at once on the stock HAT)."""
    channels = sorted(ticks)
    run = [channels[0]]
    for channel in channels[1:] + [None]:  # type: ignore[list-item]
        if channel is not None and channel == run[-1] + 1:
            run.append(channel)
            continue
        chip.set_pulses(run[0], [ticks[c] for c in run])
        if channel is not None:
            run = [channel]


def stop_motor_channels(chip: PCA9685, config: PicarB2Config) -> None:
    """Every output full off in ONE bus transaction (ALL_LED_OFF_H): asleep or awake, with or without AI.

    Both motors stop together and no motor input pair passes through a drive
    state on the way (one ``full_off`` byte per channel would: M1+ off with
    M1- still on is M1 in reverse). The servos go limp too: centre them next.
    """
    chip.all_off()


class PicarB2Chassis(PicarBChassisBase):
    """The 2024 PiCar-B. Prefer :func:`open_picar_b2` (or ``rover.hw.open_chassis("picar-b2", ...)``)."""

    name = "picar-b2"

    def __init__(self, config: PicarB2Config, bus: Any, *, gpio: Any = None, owns_bus: bool,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(config)
        self._bus, self._owns_bus, self._gpio = bus, owns_bus, gpio
        self._sleep = sleep
        self._ranger = None
        self._pins: list[int] = []
        self._pca = PCA9685(bus, config.i2c_address, bus_number=config.i2c_bus, sleep=sleep)
        try:
            stop_motor_channels(self._pca, config)  # before waking: a sleeping chip may hold a motor duty
            self._pca.ensure(config.pwm_hz)
            self.safe()
            if config.ultrasonic_enabled:
                gpio.setwarnings(False)  # as for picar-b: a pin left an output by an earlier run is expected
                try:
                    gpio.setmode(gpio.BCM)
                except ValueError as exc:  # "A different mode has already been set!"
                    raise HardwareError(f"RPi.GPIO is already in another pin numbering mode in this process ({exc})") from None
                self._ranger, self._pins = open_ranger(gpio, config, clock=clock)
        except BaseException as exc:
            self._abandon()
            try:
                self._pca.all_off()  # one more try: a glitch mid-open must not leave a motor driven
            except HardwareError:
                pass
            try:
                self._undo_open()
            except HardwareError as undo_error:
                log.error("picar-b2: undoing a failed open: %s", undo_error)
            if isinstance(exc, HardwareError):
                error = HardwareError(f"{exc}; {DRY_RUN_HINT}")
                error.hardware_touched = True  # type: ignore[attr-defined]  # the caller leaves the sentinel armed
                raise error from None
            if isinstance(exc, RuntimeError):  # RPi.GPIO at setup(): "No access to /dev/mem..."
                raise gpio_error(exc, DRY_RUN_HINT) from None
            raise
        if self._ranger is not None:
            self._ranger.start()

    def distance_m(self) -> float | None:
        """Newest ultrasonic range in metres (never blocks), None if disabled, stale or closed."""
        if self._ranger is None or self._closed:
            return None
        return self._ranger.distance_m()

    def _motor_command(self, throttle: float) -> B2MotorCommand:
        return b2_motor_command(throttle, self.config)

    def _apply_motors(self, command: B2MotorCommand) -> None:
        if reverses(self.motors, command):
            # The chip takes new values at the end of the current period: stop for one whole period first.
            write_channels(self._pca, motor_channel_ticks(B2MotorCommand(0.0, 0.0, 0.0), self.config))
            self.motors = B2MotorCommand(0.0, 0.0, 0.0)
            self._sleep(1.0 / self.config.pwm_hz)
        write_channels(self._pca, motor_channel_ticks(command, self.config))

    def _apply_servo(self, name: str, channel: int, ticks: int) -> None:
        self._pca.set_pulse(channel, ticks)

    def _release(self) -> None:
        self._undo_open()

    def _undo_open(self) -> None:
        """Stop the ranger, clean up its pins, close our bus. The chip keeps the safe registers."""
        errors: list[Exception] = []
        if self._ranger is not None:
            self._ranger.stop()
        if self._pins and self._gpio is not None:
            try:
                self._gpio.cleanup(self._pins)
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
            raise HardwareError(f"picar-b2: releasing the hardware failed: {errors[0]}")


def open_picar_b2(config: PicarB2Config | None = None, *, gpio: Any = None, bus: Any = None,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> PicarB2Chassis:
    """Open the 2024 car: the I2C bus (checking the kit revision), motors off, servos centred, then the ranger.

    RPi.GPIO is imported only for the ultrasonic sensor. Raises
    :class:`ConfigError` (exit 78) when the chip at 0x5f is silent but the
    2019-23 kit's at 0x40 answers, :class:`HardwareError` when hardware is missing.
    """
    config = config if config is not None else PicarB2Config()
    owns_bus = bus is None
    if bus is None:
        bus = open_i2c(config.i2c_bus)
    try:
        check_revision(bus, "picar-b2", config.i2c_address, config.i2c_bus)
        # Motors off before anything that may fail or take long (importing RPi.GPIO): one byte.
        # A failure here is not final: the chassis writes the same byte again first thing.
        try:
            PCA9685(bus, config.i2c_address, bus_number=config.i2c_bus, sleep=sleep).all_off()
        except HardwareError:
            pass
        if config.ultrasonic_enabled and gpio is None:
            gpio = import_gpio()
    except BaseException:
        if owns_bus:
            bus.close()
        raise
    return PicarB2Chassis(config, bus, gpio=gpio, owns_bus=owns_bus, clock=clock, sleep=sleep)
