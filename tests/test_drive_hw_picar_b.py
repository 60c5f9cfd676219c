"""The picar-b backend on the fakes: what the motor pins and the PCA9685 see."""

from __future__ import annotations

import dataclasses
import math
import sys

import pytest

from rover.core.errors import HardwareError
from rover.hw import open_chassis
from rover.hw.chassis import Chassis
from rover.hw.config import PicarBConfig
from tests.fakehw.fakeclock import TickClock
from tests.fakehw.RPi.GPIO import Board, FakeGPIO
from tests.fakehw.smbus2 import I2CWorld, SMBus
from tests.fixtures_drive import FakePicar, build_fake_picar


def test_is_a_chassis(fake_picar: FakePicar) -> None:
    assert isinstance(fake_picar.chassis, Chassis)


def test_open_wakes_the_chip_at_50_hz_and_centres_every_servo(fake_picar: FakePicar) -> None:
    chip = fake_picar.chip
    assert not chip.sleeping and chip.prescale == 121 and chip.violations() == []
    assert [fake_picar.servo_ticks(n) for n in ("steering", "pan", "tilt")] == [300, 300, 300]
    assert fake_picar.motor("right") == (0, 0, 0.0) and fake_picar.motor("left") == (0, 0, 0.0)


def test_steering_left_is_centre_plus_range_times_direction(fake_picar: FakePicar) -> None:
    fake_picar.chassis.steer(1.0)
    assert fake_picar.servo_ticks("steering") == 300 + 150 * 1
    fake_picar.chassis.steer(-1.0)
    assert fake_picar.servo_ticks("steering") == 300 - 150
    fake_picar.chassis.steer(0.5)
    assert fake_picar.servo_ticks("steering") == 375


def test_a_kit_with_a_reversed_steering_servo_turns_the_other_way() -> None:
    car = build_fake_picar(PicarBConfig(steering_direction=-1, steering_centre=310, steering_min=100, steering_max=500))
    try:
        car.chassis.steer(1.0)
        assert car.servo_ticks("steering") == 310 - 150
        car.chassis.steer(-1.0)
        assert car.servo_ticks("steering") == 310 + 150
    finally:
        car.chassis.close()


def test_pan_and_tilt_follow_their_own_channels_and_directions(fake_picar: FakePicar) -> None:
    fake_picar.chassis.pan(1.0)
    fake_picar.chassis.tilt(1.0)  # up: more ticks on channel 0 (vendor servo.py up(): pos -= speed * -1)
    assert fake_picar.chip.pulse_ticks(1) == 450
    assert fake_picar.chip.pulse_ticks(0) == 300 + 200
    assert fake_picar.servo_ticks("steering") == 300


def test_forward_drives_right_in1_and_left_in2_high_with_the_duty(fake_picar: FakePicar) -> None:
    fake_picar.chassis.drive(0.5)
    assert fake_picar.motor("right") == (1, 0, 50.0)
    assert fake_picar.motor("left") == (0, 1, 50.0)


def test_reverse_is_the_opposite_pair(fake_picar: FakePicar) -> None:
    fake_picar.chassis.drive(-0.25)
    assert fake_picar.motor("right") == (0, 1, 25.0)
    assert fake_picar.motor("left") == (1, 0, 25.0)


def test_reversing_drops_the_duty_before_swapping_the_inputs(fake_picar: FakePicar) -> None:
    car = fake_picar
    car.chassis.drive(0.8)
    start = len(car.board.history())
    car.chassis.drive(-0.8)
    events = [(e["pin"], e["kind"], e["value"]) for e in car.board.history()[start:] if e["pin"] in (4, 14, 15)]
    assert events.index((4, "duty", 0.0)) < events.index((14, "level", 0)) < events.index((4, "duty", 80.0))


def test_reverse_is_refused_when_the_config_forbids_it() -> None:
    car = build_fake_picar(PicarBConfig(allow_reverse=False, ultrasonic_enabled=False))
    try:
        car.chassis.drive(0.4)
        car.chassis.drive(-1.0)
        assert car.motor("right") == (0, 0, 0.0) and car.motor("left") == (0, 0, 0.0)
    finally:
        car.chassis.close()


def test_max_and_min_duty_scale_the_throttle() -> None:
    car = build_fake_picar(PicarBConfig(max_duty=80.0, min_duty=20.0, ultrasonic_enabled=False))
    try:
        car.chassis.drive(1.0)
        assert car.motor("right")[2] == 80.0
        car.chassis.drive(0.5)
        assert car.motor("left")[2] == 50.0
    finally:
        car.chassis.close()


def test_throttle_zero_stops_with_both_inputs_low(fake_picar: FakePicar) -> None:
    fake_picar.chassis.drive(1.0)
    fake_picar.chassis.drive(0.0)
    assert fake_picar.motor("right") == (0, 0, 0.0) and fake_picar.motor("left") == (0, 0, 0.0)


def test_out_of_range_commands_are_clamped(fake_picar: FakePicar) -> None:
    fake_picar.chassis.drive(7.0)
    fake_picar.chassis.steer(-3.0)
    assert fake_picar.motor("right") == (1, 0, 100.0)
    assert fake_picar.servo_ticks("steering") == 150


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "fast", None])
def test_non_finite_commands_are_refused_and_change_nothing(fake_picar: FakePicar, bad: object) -> None:
    fake_picar.chassis.drive(0.3)
    fake_picar.chassis.steer(0.2)
    for command in (fake_picar.chassis.drive, fake_picar.chassis.steer, fake_picar.chassis.pan):
        with pytest.raises(ValueError):
            command(bad)  # type: ignore[arg-type]
    assert fake_picar.motor("right") == (1, 0, 30.0)
    assert fake_picar.servo_ticks("steering") == 330


def test_close_leaves_the_car_safe_motor_pins_held_low_and_the_others_released(fake_picar: FakePicar) -> None:
    car = fake_picar
    car.chassis.drive(0.9)
    car.chassis.steer(-1.0)
    car.chassis.pan(0.7)
    car.chassis.close()
    cfg = car.config
    for pin in cfg.motor_pins:
        view = car.board.pin(pin)
        assert view.function == "OUT" and view.duty is None, pin  # held LOW, not a floating input
        assert car.board.levels(pin)[-1] == 0, pin  # last driven LOW
    for pin in (cfg.right_enable_pin, cfg.left_enable_pin):
        assert car.board.duties(pin)[-1] == 0.0
        assert car.board.history(pin, "pwm")[-1]["value"] == "stop"
    for pin in (cfg.ultrasonic_trigger_pin, cfg.ultrasonic_echo_pin):
        assert car.board.pin(pin).function == "IN"  # GPIO.cleanup on the other pins used
    assert [car.servo_ticks(n) for n in ("steering", "pan", "tilt")] == [300, 300, 300]
    assert car.gpio.getmode() == car.gpio.BCM  # cleanup of *our* pins only: another user's mode stays


def test_close_and_safe_are_idempotent_and_commands_after_close_fail(fake_picar: FakePicar) -> None:
    car = fake_picar
    car.chassis.close()
    events = len(car.board.history())
    writes = len(car.chip.writes())
    car.chassis.close()
    car.chassis.safe()
    assert len(car.board.history()) == events and len(car.chip.writes()) == writes
    with pytest.raises(HardwareError, match="after close"):
        car.chassis.drive(0.1)
    assert car.chassis.distance_m() is None


def test_safe_stops_and_centres_but_keeps_the_car_usable(fake_picar: FakePicar) -> None:
    car = fake_picar
    car.chassis.drive(0.6)
    car.chassis.steer(0.6)
    car.chassis.safe()
    car.chassis.safe()
    assert car.motor("left") == (0, 0, 0.0) and car.servo_ticks("steering") == 300
    car.chassis.drive(0.2)
    assert car.motor("left") == (0, 1, 20.0)


def test_distance_comes_from_the_background_ranger(fake_picar: FakePicar) -> None:
    distance = fake_picar.wait_for_distance()
    assert distance == pytest.approx(1.0, abs=0.01)


def test_without_rpi_gpio_picar_b_names_the_dry_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "RPi", None)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    with pytest.raises(HardwareError) as caught:
        open_chassis("picar-b", PicarBConfig())
    message = str(caught.value)
    assert "--backend log" in message and "RPi.GPIO" in message and "\n" not in message


def test_a_missing_i2c_bus_is_one_line_and_releases_nothing_twice() -> None:
    board = Board(clock=TickClock())
    gpio = FakeGPIO(board)
    world = I2CWorld(devices={1: []})  # bus present, no PCA9685 answering
    with pytest.raises(HardwareError) as caught:
        open_chassis("picar-b", PicarBConfig(ultrasonic_enabled=False), gpio=gpio, bus=SMBus(1, world=world))
    assert "0x40" in str(caught.value) and "--backend log" in str(caught.value)
    for pin in PicarBConfig().motor_pins:  # the half-opened GPIO side was undone: PWM stopped, pins LOW
        assert board.pin(pin).function == "OUT" and board.levels(pin)[-1] == 0  # held LOW


def test_unknown_backend_is_a_config_error() -> None:
    from rover.core.errors import ConfigError

    with pytest.raises(ConfigError, match="picar-b, picar-b2, log"):
        open_chassis("tank", PicarBConfig())


def test_opened_with_a_custom_address_and_channels() -> None:
    cfg = dataclasses.replace(PicarBConfig(), i2c_address=0x41, steering_channel=5, ultrasonic_enabled=False)
    car = build_fake_picar(cfg)
    try:
        car.chassis.steer(1.0)
        assert car.world.chip(1, 0x41).pulse_ticks(5) == 450
    finally:
        car.chassis.close()


def test_a_failing_motor_does_not_keep_the_other_from_stopping(fake_picar: FakePicar, monkeypatch) -> None:
    car = fake_picar
    car.chassis.drive(0.6)
    right, left = car.chassis._motors
    def broken(_drive) -> None:
        raise RuntimeError("right H-bridge pin write failed")
    monkeypatch.setattr(right, "apply", broken)
    with pytest.raises(RuntimeError):
        car.chassis.safe()
    assert car.board.duties(car.config.left_enable_pin)[-1] == 0.0  # the left motor stopped all the same
