"""The ``[picar_b]`` config section: every pin, duty, address and servo trim.

Defaults are the Adeept PiCar-B's wiring as its vendor code sets it up (see
``docs/hardware.md``); every number can be overridden because kits differ and
servos are mounted differently. GPIO numbers are BCM numbers. Servo positions
are PCA9685 ticks: 1/4096 of one PWM period (20 ms at 50 Hz, so 1 tick is
about 4.9 us and 300 ticks about 1.46 ms, the centre of a hobby servo).

Cross-field checks live in ``__post_init__`` so a bad value is refused when the
file is read, naming the key and the allowed range.

The ``ultrasonic_*`` keys are the same on every kit: they are defined once
(:data:`ULTRASONIC_KEYS`, :func:`check_ultrasonic`) and added to each kit's
section by :func:`ultrasonic_keys` with that kit's defaults, as flat keys of
its table like the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TypeVar

from rover.core.config import doc

T = TypeVar("T")

#: PCA9685 ticks per PWM period (12-bit counter).
TICKS_PER_PERIOD = 4096
#: PWM frequencies the PCA9685 can make from its 25 MHz oscillator (prescale 255..3).
SERVO_HZ_RANGE = (24.0, 1526.0)
SERVO_NAMES = ("steering", "pan", "tilt")


@dataclass(frozen=True)
class ServoConfig:
    """One servo on the PCA9685: what ``position`` -1..+1 means in ticks.

    ``ticks = centre + position * range * direction``, then clamped to
    ``min..max`` (the mechanical limits, so a bad trim cannot stall a servo).
    """

    name: str
    channel: int
    centre: int
    range: int
    min: int
    max: int
    direction: int


@dataclass(frozen=True)
class UltrasonicKey:
    """One of the ``ultrasonic_*`` keys every kit section has: name, type, description, shared default.

    ``note`` says how a kit's vendor note is written into the description
    (``{}`` is the note; the description's ``{note}`` is where it goes), so
    a kit can cite its vendor's value without a second definition of the key.
    """

    name: str
    type: type
    doc: str
    default: Any = None  # None: every kit must give its own (the sensor's pins, its useful range)
    note: str = ""

    def describe(self, vendor_note: str | None) -> str:
        return self.doc.format(note=self.note.format(vendor_note) if vendor_note else "")


#: The HC-SR04 keys, in the order the config reference lists them (after each kit's own keys).
ULTRASONIC_KEYS = (
    UltrasonicKey("ultrasonic_enabled", bool,
                  "measure the ultrasonic range in a background thread (false: distance always unknown)", True),
    UltrasonicKey("ultrasonic_trigger_pin", int, "HC-SR04 trigger (BCM{note})", note="; vendor {}"),
    UltrasonicKey("ultrasonic_echo_pin", int, "HC-SR04 echo (BCM{note})", note="; vendor {}"),
    UltrasonicKey("ultrasonic_interval_s", float, "seconds between two range measurements (HC-SR04 needs >= 0.06)", 0.1),
    UltrasonicKey("ultrasonic_timeout_s", float,
                  "longest echo pulse waited for, in s (0.06 s = 10 m, beyond any valid reading)", 0.06),
    UltrasonicKey("ultrasonic_retries", int, "attempts per measurement before the reading counts as missing{note}", 3,
                  note=" (vendor: {})"),
    UltrasonicKey("ultrasonic_max_m", float, "readings above this many metres are invalid{note}", note=" (vendor: {})"),
    UltrasonicKey("ultrasonic_stale_s", float, "a reading older than this many seconds is reported as unknown (None)", 1.0),
    UltrasonicKey("ultrasonic_samples", int,
                  "distance = median of this many latest readings (odd; 1 = no filter): rejects a reading made late by load", 3),
)


def ultrasonic_keys(*, trigger_pin: int, echo_pin: int, max_m: float, vendor: Mapping[str, str] | None = None,
                    **defaults: Any) -> Callable[[type[T]], type[T]]:
    """Class decorator for a kit section (put it under ``@dataclass``): append the :data:`ULTRASONIC_KEYS`.

    The keys join the section as ordinary fields after the kit's own, so the
    file format (flat keys in the kit's table), the strict loading (unknown
    keys refused with their name) and the generated reference are those of
    keys written out in the class. A kit gives its defaults for the pins and
    ``max_m`` and may override the others (``retries=5``, by the short name);
    ``vendor`` maps a short name to the vendor's value for its description.
    The section's ``__post_init__`` calls :func:`check_ultrasonic`.
    """
    given = {"trigger_pin": trigger_pin, "echo_pin": echo_pin, "max_m": max_m, **defaults}
    names = {key.name.removeprefix("ultrasonic_") for key in ULTRASONIC_KEYS}
    unknown = (given.keys() | (vendor or {}).keys()) - names
    if unknown:
        raise TypeError(f"no ultrasonic key {', '.join(sorted(unknown))}: the keys are {', '.join(sorted(names))}")

    def add_keys(cls: type[T]) -> type[T]:
        annotations = cls.__dict__.get("__annotations__", {})
        for key in ULTRASONIC_KEYS:
            short = key.name.removeprefix("ultrasonic_")
            if key.name in annotations:
                raise TypeError(f"{cls.__name__} defines {key.name} itself: it comes from ULTRASONIC_KEYS")
            default = given.get(short, key.default)
            if default is None:
                raise TypeError(f"{cls.__name__} must give the default of {key.name}")
            if not (type(default) is key.type or (key.type is float and type(default) is int)):
                raise TypeError(f"the default of {cls.__name__}.{key.name} must be of type {key.type.__name__}, not {default!r}")
            annotations[key.name] = key.type
            setattr(cls, key.name, doc(key.describe((vendor or {}).get(short)), key.type(default)))
        cls.__annotations__ = annotations
        return cls

    return add_keys


@dataclass(frozen=True)
@ultrasonic_keys(trigger_pin=11, echo_pin=8, max_m=9.0, vendor={"retries": "5", "max_m": "9"})
class PicarBConfig:
    """``[picar_b]``: the Adeept PiCar-B hardware as the Pi drives it."""

    # Rear motors: an H-bridge per motor, speed by software PWM on the enable pin.
    right_enable_pin: int = doc("motor A (right) enable, software PWM (BCM)", 4)
    right_in1_pin: int = doc("motor A (right) input 1 (BCM)", 14)
    right_in2_pin: int = doc("motor A (right) input 2 (BCM)", 15)
    right_direction: int = doc("1: right forward = input 1 HIGH, input 2 LOW (stock kit); -1 if that wheel runs backwards", 1)
    left_enable_pin: int = doc("motor B (left) enable, software PWM (BCM)", 17)
    left_in1_pin: int = doc("motor B (left) input 1 (BCM)", 27)
    left_in2_pin: int = doc("motor B (left) input 2 (BCM)", 18)
    left_direction: int = doc("-1: left forward = input 1 LOW, input 2 HIGH (stock kit, mirrored motor); 1 if yours is not", -1)
    motor_pwm_hz: float = doc("software PWM frequency on the enable pins in Hz (vendor: 1 kHz)", 1000.0)
    max_duty: float = doc("enable duty cycle in percent at throttle +-1 (lower it to cap the speed)", 100.0)
    min_duty: float = doc("duty in percent for the smallest non-zero throttle (below it the motors stall and only hum)", 0.0)
    allow_reverse: bool = doc("drive backwards for a negative throttle; false clamps it to 0 (stop)", True)
    # Servos: PCA9685 over I2C.
    i2c_bus: int = doc("I2C bus number of the PCA9685 (/dev/i2c-N)", 1)
    i2c_address: int = doc("I2C address of the PCA9685 (0x40 = 64, its default)", 0x40)
    servo_hz: float = doc("PCA9685 PWM frequency in Hz (hobby servos: 50)", 50.0)
    steering_channel: int = doc("PCA9685 channel of the front-wheel steering servo", 2)
    steering_centre: int = doc("steering ticks for straight ahead (find yours with rover-calibrate)", 300)
    steering_range: int = doc("steering ticks from centre to full lock at steering +-1", 150)
    steering_min: int = doc("lowest steering ticks ever sent (mechanical limit)", 150)
    steering_max: int = doc("highest steering ticks ever sent (mechanical limit)", 450)
    steering_direction: int = doc("1: full left = centre + range (stock kit); -1 if the servo is mounted the other way", 1)
    pan_channel: int = doc("PCA9685 channel of the head pan servo", 1)
    pan_centre: int = doc("pan ticks for the head looking straight ahead", 300)
    pan_range: int = doc("pan ticks from centre to fully turned at pan +-1", 150)
    pan_min: int = doc("lowest pan ticks ever sent", 150)
    pan_max: int = doc("highest pan ticks ever sent", 450)
    pan_direction: int = doc("1: head fully left = centre + range; -1 to flip", 1)
    tilt_channel: int = doc("PCA9685 channel of the head tilt servo", 0)
    tilt_centre: int = doc("tilt ticks for the head looking level", 300)
    tilt_range: int = doc("tilt ticks from centre to fully up or down at tilt +-1", 200)
    tilt_min: int = doc("lowest tilt ticks ever sent", 100)
    tilt_max: int = doc("highest tilt ticks ever sent", 500)
    tilt_direction: int = doc("1: head up = centre + range (stock kit: the vendor's up() adds ticks); -1 to flip", 1)
    # Then the ultrasonic range finder's keys (HC-SR04): ULTRASONIC_KEYS, added by @ultrasonic_keys.

    def __post_init__(self) -> None:
        motor_pins = {
            "right_enable_pin": self.right_enable_pin, "right_in1_pin": self.right_in1_pin,
            "right_in2_pin": self.right_in2_pin, "left_enable_pin": self.left_enable_pin,
            "left_in1_pin": self.left_in1_pin, "left_in2_pin": self.left_in2_pin,
        }
        pins = dict(motor_pins)
        if self.ultrasonic_enabled:
            pins["ultrasonic_trigger_pin"] = self.ultrasonic_trigger_pin
            pins["ultrasonic_echo_pin"] = self.ultrasonic_echo_pin
        seen: dict[int, str] = {}
        for key, pin in pins.items():
            if not 0 <= pin <= 27:
                raise ValueError(f"{key} = {pin} is not a header GPIO: use a BCM number 0..27")
            if pin in seen:
                raise ValueError(f"{key} and {seen[pin]} are both BCM {pin}: every pin needs its own number")
            seen[pin] = key
        for key in ("right_direction", "left_direction"):
            check_direction(key, getattr(self, key))
        check_positive("motor_pwm_hz", self.motor_pwm_hz)
        if not 0.0 < self.max_duty <= 100.0:
            raise ValueError(f"max_duty = {self.max_duty} must be in (0, 100] percent")
        if not 0.0 <= self.min_duty <= self.max_duty:
            raise ValueError(f"min_duty = {self.min_duty} must be in 0..max_duty ({self.max_duty}) percent")
        if self.i2c_bus < 0:
            raise ValueError(f"i2c_bus = {self.i2c_bus} must be 0 or more (/dev/i2c-N)")
        if not 0x03 <= self.i2c_address <= 0x77:
            raise ValueError(f"i2c_address = {self.i2c_address:#x} is not a 7-bit device address (0x03..0x77)")
        low, high = SERVO_HZ_RANGE
        if not (math.isfinite(self.servo_hz) and low <= self.servo_hz <= high):
            raise ValueError(f"servo_hz = {self.servo_hz} is outside what the PCA9685 can make ({low:g}..{high:g} Hz)")
        channels: dict[int, str] = {}
        for name in SERVO_NAMES:
            servo = self.servo(name)
            if not 0 <= servo.channel <= 15:
                raise ValueError(f"{name}_channel = {servo.channel} must be a PCA9685 channel 0..15")
            if servo.channel in channels:
                raise ValueError(f"{name}_channel and {channels[servo.channel]}_channel are both {servo.channel}")
            channels[servo.channel] = name
            if not 0 <= servo.min <= servo.centre <= servo.max < TICKS_PER_PERIOD:
                raise ValueError(
                    f"{name}_min <= {name}_centre <= {name}_max must hold within 0..4095 ticks, "
                    f"not {servo.min} <= {servo.centre} <= {servo.max}"
                )
            if servo.range <= 0:
                raise ValueError(f"{name}_range = {servo.range} must be a positive number of ticks")
            check_direction(f"{name}_direction", servo.direction)
        check_ultrasonic(self)

    def servo(self, name: str) -> ServoConfig:
        """The ``steering``, ``pan`` or ``tilt`` servo's settings."""
        if name not in SERVO_NAMES:
            raise KeyError(f"no servo named {name!r}: one of {', '.join(SERVO_NAMES)}")
        return ServoConfig(
            name=name,
            channel=getattr(self, f"{name}_channel"),
            centre=getattr(self, f"{name}_centre"),
            range=getattr(self, f"{name}_range"),
            min=getattr(self, f"{name}_min"),
            max=getattr(self, f"{name}_max"),
            direction=getattr(self, f"{name}_direction"),
        )

    @property
    def motor_pins(self) -> tuple[int, ...]:
        """Every motor pin: enables first (the ones that make the wheels turn), then inputs."""
        return (self.right_enable_pin, self.left_enable_pin, self.right_in1_pin, self.right_in2_pin,
                self.left_in1_pin, self.left_in2_pin)


def check_ultrasonic(config: object) -> None:
    """The ``ultrasonic_*`` keys every kit section shares: pins (when enabled), times, counts."""
    if getattr(config, "ultrasonic_enabled"):
        trigger, echo = getattr(config, "ultrasonic_trigger_pin"), getattr(config, "ultrasonic_echo_pin")
        for key, pin in (("ultrasonic_trigger_pin", trigger), ("ultrasonic_echo_pin", echo)):
            if not 0 <= pin <= 27:
                raise ValueError(f"{key} = {pin} is not a header GPIO: use a BCM number 0..27")
        if trigger == echo:
            raise ValueError(f"ultrasonic_trigger_pin and ultrasonic_echo_pin are both BCM {echo}")
    for key in ("ultrasonic_interval_s", "ultrasonic_timeout_s", "ultrasonic_max_m", "ultrasonic_stale_s"):
        check_positive(key, getattr(config, key))
    retries = getattr(config, "ultrasonic_retries")
    if retries < 1:
        raise ValueError(f"ultrasonic_retries = {retries} must be at least 1")
    samples = getattr(config, "ultrasonic_samples")
    if not (1 <= samples <= 9 and samples % 2 == 1):
        raise ValueError(f"ultrasonic_samples = {samples} must be odd, 1..9 (the median of that many readings)")


def check_direction(key: str, value: int) -> None:
    if value not in (1, -1):
        raise ValueError(f"{key} = {value} must be 1 or -1")


def check_positive(key: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{key} = {value} must be a positive number")
