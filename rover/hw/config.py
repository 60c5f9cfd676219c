"""The ``[picar_b]`` config section: every pin, duty, address and servo trim.

Defaults are the Adeept PiCar-B's wiring as its vendor code sets it up (see
``docs/hardware.md``); every number can be overridden because kits differ and
servos are mounted differently. GPIO numbers are BCM numbers. Servo positions
are PCA9685 ticks: 1/4096 of one PWM period (20 ms at 50 Hz, so 1 tick is
about 4.9 us and 300 ticks about 1.46 ms, the centre of a hobby servo).

Cross-field checks live in ``__post_init__`` so a bad value is refused when the
file is read, naming the key and the allowed range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rover.core.config import doc

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
    # Ultrasonic range finder (HC-SR04).
    ultrasonic_enabled: bool = doc("measure the ultrasonic range in a background thread (false: distance always unknown)", True)
    ultrasonic_trigger_pin: int = doc("HC-SR04 trigger (BCM)", 11)
    ultrasonic_echo_pin: int = doc("HC-SR04 echo (BCM)", 8)
    ultrasonic_interval_s: float = doc("seconds between two range measurements (HC-SR04 needs >= 0.06)", 0.1)
    ultrasonic_timeout_s: float = doc("longest echo pulse waited for, in s (0.06 s = 10 m, beyond any valid reading)", 0.06)
    ultrasonic_retries: int = doc("attempts per measurement before the reading counts as missing (vendor: 5)", 3)
    ultrasonic_max_m: float = doc("readings above this many metres are invalid (vendor: 9)", 9.0)
    ultrasonic_stale_s: float = doc("a reading older than this many seconds is reported as unknown (None)", 1.0)
    ultrasonic_samples: int = doc("distance = median of this many latest readings (odd; 1 = no filter): rejects a reading made late by load", 3)

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
    """The ``ultrasonic_*`` keys every kit section shares."""
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
