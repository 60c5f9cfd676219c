"""The ``[picar_b2]`` config section: the PiCar-B sold since 2024 (Adeept ADR012, Robot HAT V3.1).

Everything but the ultrasonic sensor is on one PCA9685 at I2C address 0x5f:
the two rear motors as pairs of channels (adafruit_motor ``DCMotor`` wiring,
slow decay) and the steering, pan and tilt servos, all at one PWM frequency
(50 Hz: the servos need it, so the motors get it too). Defaults are the
vendor's (adeept/adeept_picar-b2, ``web/move.py``, ``web/RPIservo.py``,
``web/ultra.py``); see ``docs/hardware.md``.

Servo positions are in degrees as the vendor sets them (``adafruit_motor.servo``
with ``min_pulse=500``, ``max_pulse=2400`` us over ``actuation_range=180``), so
90 is the middle. :meth:`PicarB2Config.servo` turns them into PCA9685 ticks
for the shared mapping code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rover.core.config import doc
from rover.hw.config import (
    SERVO_HZ_RANGE,
    SERVO_NAMES,
    TICKS_PER_PERIOD,
    ServoConfig,
    check_direction,
    check_positive,
    check_ultrasonic,
    ultrasonic_keys,
)

#: What tells the two current kits apart on the I2C bus (``i2cdetect -y 1``).
PICAR_B_ADDRESS = 0x40
PICAR_B2_ADDRESS = 0x5F


@dataclass(frozen=True)
@ultrasonic_keys(trigger_pin=23, echo_pin=24, max_m=2.0,
                 vendor={"trigger_pin": "Tr = 23", "echo_pin": "Ec = 24", "max_m": "max_distance=2"})
class PicarB2Config:
    """``[picar_b2]``: the 2024 PiCar-B (Robot HAT V3.1) as the Pi drives it."""

    # Rear motors: each a pair of PCA9685 channels (DCMotor positive, negative).
    m1_in1_channel: int = doc("PCA9685 channel of motor M1's positive input (vendor MOTOR_M1_IN1)", 15)
    m1_in2_channel: int = doc("PCA9685 channel of motor M1's negative input (vendor MOTOR_M1_IN2)", 14)
    m1_direction: int = doc("1: M1 forward = positive input driven (vendor M1_Direction); -1 if it runs backwards", 1)
    m2_in1_channel: int = doc("PCA9685 channel of motor M2's positive input (vendor MOTOR_M2_IN1)", 12)
    m2_in2_channel: int = doc("PCA9685 channel of motor M2's negative input (vendor MOTOR_M2_IN2)", 13)
    m2_direction: int = doc("-1: M2 is mirrored, forward = negative input driven (vendor M2_Direction); 1 if not", -1)
    max_duty: float = doc("motor duty in percent at throttle +-1 (lower it to cap the speed)", 100.0)
    min_duty: float = doc("duty in percent for the smallest non-zero throttle (below it the motors stall and only hum)", 0.0)
    allow_reverse: bool = doc("drive backwards for a negative throttle; false clamps it to 0 (stop)", True)
    # The PCA9685.
    i2c_bus: int = doc("I2C bus number of the Robot HAT's PCA9685 (/dev/i2c-N)", 1)
    i2c_address: int = doc("I2C address of the Robot HAT's PCA9685 (0x5f = 95; the 2019-23 kit's is 0x40)", PICAR_B2_ADDRESS)
    pwm_hz: float = doc("PCA9685 PWM frequency in Hz for servos and motors alike (vendor: 50)", 50.0)
    servo_min_pulse_us: float = doc("servo pulse in microseconds at 0 degrees (vendor: 500)", 500.0)
    servo_max_pulse_us: float = doc("servo pulse in microseconds at servo_actuation_deg (vendor: 2400)", 2400.0)
    servo_actuation_deg: float = doc("degrees between the minimum and maximum pulse (vendor: 180)", 180.0)
    steering_channel: int = doc("PCA9685 channel of the steering servo", 0)
    steering_centre_deg: float = doc("steering angle for straight ahead (find yours with rover-calibrate)", 90.0)
    steering_range_deg: float = doc("degrees from centre to full lock at steering +-1 (vendor turns: 30)", 30.0)
    steering_min_deg: float = doc("lowest steering angle ever sent (mechanical limit)", 60.0)
    steering_max_deg: float = doc("highest steering angle ever sent (mechanical limit)", 120.0)
    steering_direction: int = doc("1: full left = centre + range (vendor: left is moveAngle(0, +30)); -1 to flip", 1)
    pan_channel: int = doc("PCA9685 channel of the head pan servo", 1)
    pan_centre_deg: float = doc("pan angle for the head looking straight ahead", 90.0)
    pan_range_deg: float = doc("degrees from centre to fully turned at pan +-1", 90.0)
    pan_min_deg: float = doc("lowest pan angle ever sent", 0.0)
    pan_max_deg: float = doc("highest pan angle ever sent", 180.0)
    pan_direction: int = doc("1: head left = centre + range (vendor lookleft adds degrees); -1 to flip", 1)
    tilt_channel: int = doc("PCA9685 channel of the head tilt servo", 2)
    tilt_centre_deg: float = doc("tilt angle for the head looking level", 90.0)
    tilt_range_deg: float = doc("degrees from centre to fully up or down at tilt +-1", 90.0)
    tilt_min_deg: float = doc("lowest tilt angle ever sent", 0.0)
    tilt_max_deg: float = doc("highest tilt angle ever sent", 180.0)
    tilt_direction: int = doc("1: head up = centre + range (vendor up adds degrees); -1 to flip", 1)
    # Then the ultrasonic range finder's keys (HC-SR04, on the Pi's GPIO): ULTRASONIC_KEYS, by @ultrasonic_keys.

    def __post_init__(self) -> None:
        check_direction("m1_direction", self.m1_direction)
        check_direction("m2_direction", self.m2_direction)
        if not 0.0 < self.max_duty <= 100.0:
            raise ValueError(f"max_duty = {self.max_duty} must be in (0, 100] percent")
        if not 0.0 <= self.min_duty <= self.max_duty:
            raise ValueError(f"min_duty = {self.min_duty} must be in 0..max_duty ({self.max_duty}) percent")
        if self.i2c_bus < 0:
            raise ValueError(f"i2c_bus = {self.i2c_bus} must be 0 or more (/dev/i2c-N)")
        if not 0x03 <= self.i2c_address <= 0x77:
            raise ValueError(f"i2c_address = {self.i2c_address:#x} is not a 7-bit device address (0x03..0x77)")
        low, high = SERVO_HZ_RANGE
        if not (math.isfinite(self.pwm_hz) and low <= self.pwm_hz <= high):
            raise ValueError(f"pwm_hz = {self.pwm_hz} is outside what the PCA9685 can make ({low:g}..{high:g} Hz)")
        check_positive("servo_actuation_deg", self.servo_actuation_deg)
        if not 0 < self.servo_min_pulse_us < self.servo_max_pulse_us < 1e6 / self.pwm_hz:
            raise ValueError(f"0 < servo_min_pulse_us < servo_max_pulse_us < one period ({1e6 / self.pwm_hz:g} us) "
                             f"must hold, not {self.servo_min_pulse_us:g} and {self.servo_max_pulse_us:g}")
        channels: dict[int, str] = {}
        named = [("m1_in1_channel", self.m1_in1_channel), ("m1_in2_channel", self.m1_in2_channel),
                 ("m2_in1_channel", self.m2_in1_channel), ("m2_in2_channel", self.m2_in2_channel)]
        named += [(f"{name}_channel", getattr(self, f"{name}_channel")) for name in SERVO_NAMES]
        for key, channel in named:
            if not 0 <= channel <= 15:
                raise ValueError(f"{key} = {channel} must be a PCA9685 channel 0..15")
            if channel in channels:
                raise ValueError(f"{key} and {channels[channel]} are both channel {channel}")
            channels[channel] = key
        for name in SERVO_NAMES:
            low_deg, centre, high_deg = (getattr(self, f"{name}_{part}_deg") for part in ("min", "centre", "max"))
            if not 0.0 <= low_deg <= centre <= high_deg <= self.servo_actuation_deg:
                raise ValueError(f"{name}_min_deg <= {name}_centre_deg <= {name}_max_deg must hold within "
                                 f"0..{self.servo_actuation_deg:g} degrees, not {low_deg:g} <= {centre:g} <= {high_deg:g}")
            check_positive(f"{name}_range_deg", getattr(self, f"{name}_range_deg"))
            check_direction(f"{name}_direction", getattr(self, f"{name}_direction"))
        check_ultrasonic(self)

    # -- what the shared mapping code needs -------------------------------------------
    @property
    def servo_hz(self) -> float:
        """The servos' PWM frequency: the chip's one frequency."""
        return self.pwm_hz

    @property
    def motor_channels(self) -> tuple[int, ...]:
        """Every motor channel (M1 positive, negative, M2 positive, negative)."""
        return (self.m1_in1_channel, self.m1_in2_channel, self.m2_in1_channel, self.m2_in2_channel)

    def degrees_to_ticks(self, degrees: float) -> int:
        """PCA9685 ticks of the pulse for ``degrees`` (90 -> 1450 us -> 297 ticks at 50 Hz)."""
        span = self.servo_max_pulse_us - self.servo_min_pulse_us
        pulse_us = self.servo_min_pulse_us + span * degrees / self.servo_actuation_deg
        return round(pulse_us * self.pwm_hz * TICKS_PER_PERIOD / 1e6)

    def ticks_to_degrees(self, ticks: int) -> float:
        """Inverse of :meth:`degrees_to_ticks` (for messages)."""
        pulse_us = ticks * 1e6 / (self.pwm_hz * TICKS_PER_PERIOD)
        span = self.servo_max_pulse_us - self.servo_min_pulse_us
        return (pulse_us - self.servo_min_pulse_us) * self.servo_actuation_deg / span

    def servo(self, name: str) -> ServoConfig:
        """The ``steering``, ``pan`` or ``tilt`` servo in PCA9685 ticks (what :func:`servo_ticks` maps)."""
        if name not in SERVO_NAMES:
            raise KeyError(f"no servo named {name!r}: one of {', '.join(SERVO_NAMES)}")
        deg = {part: getattr(self, f"{name}_{part}_deg") for part in ("centre", "range", "min", "max")}
        centre = self.degrees_to_ticks(deg["centre"])
        return ServoConfig(
            name=name,
            channel=getattr(self, f"{name}_channel"),
            centre=centre,
            range=max(1, self.degrees_to_ticks(deg["centre"] + deg["range"]) - centre),
            min=self.degrees_to_ticks(deg["min"]),
            max=self.degrees_to_ticks(deg["max"]),
            direction=getattr(self, f"{name}_direction"),
        )
