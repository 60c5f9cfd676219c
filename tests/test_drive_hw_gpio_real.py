"""The 2019-23 kit against GPIO fakes that behave like RPi.GPIO and rpi-lgpio really do.

Upstream facts: waveform80/rpi-lgpio docs/differences.rst (exclusive claims, the kernel's
SPI0 holding BCM 7 and 8, "This module can only be run on a Raspberry Pi!" at import),
RPi/GPIO/__init__.py (PWM.ChangeDutyCycle -> lgpio.tx_pwm; setup() warns about nothing
but the pull-ups); joan2937/lg lgpio_extra.py (tx_pwm: "replaced by the new settings at
the end of the current cycle"; lgpio.error; the .lgd-nfy FIFO opened at import in the
working directory, LG_WD); adeept/adeept_picar-b server/servo.py (up(): pos -= speed *
pwm0_direction, pwm0_direction = -1), server/ultra.py (echo on BCM 8).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from rover.core.errors import ConfigError, HardwareError
from rover.hw import open_chassis
from rover.hw.config import PicarBConfig
from rover.hw.picar_b import open_picar_b
from rover.hw.safestop import stop_picar_b
from rover.hw.ultrasonic import HCSR04, UltrasonicRanger
from rover.hw.vendor import gpio_error
from tests.fakehw.fakeclock import TickClock
from tests.fakehw.RPi.GPIO import Board, FakeGPIO, FakeHCSR04
from tests.fakehw.smbus2 import I2CWorld, SMBus
from tests.fixtures_drive import FakeHwEnv

FLAVOURS = ("RPi.GPIO", "rpi-lgpio")


def rig(flavour: str, tmp_path: Path, *, spi: bool = False, config: PicarBConfig | None = None):
    config = config or PicarBConfig()
    clock = TickClock()
    board = Board(clock=clock, spi=spi)
    board.attach(FakeHCSR04(config.ultrasonic_trigger_pin, config.ultrasonic_echo_pin, 1.0))
    world = I2CWorld(clock=clock)
    gpio = FakeGPIO(board, flavour=flavour, workdir=tmp_path)
    return config, clock, board, world, gpio


def assert_stopped(board: Board, world: I2CWorld, config: PicarBConfig) -> None:
    for pin in config.motor_pins:
        view = board.pin(pin)
        assert (view.function, view.level, view.duty) == ("OUT", 0, None), (pin, view)
    assert [world.chip().pulse_ticks(config.servo(n).channel) for n in ("steering", "pan", "tilt")] == [300] * 3


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_drive_kill_safestop_in_both_gpio_libraries(flavour: str, tmp_path: Path) -> None:
    config, clock, board, world, gpio = rig(flavour, tmp_path, config=PicarBConfig(ultrasonic_enabled=False))
    chassis = open_picar_b(config, gpio=gpio, bus=SMBus(1, world=world), clock=clock, sleep=clock.sleep)
    chassis.drive(0.7)
    if flavour == "rpi-lgpio":
        # while the drive lives, its pins are its own: safe-stop is refused and says why
        failures = stop_picar_b(config, gpio=FakeGPIO(board, flavour=flavour, workdir=tmp_path),
                                bus=SMBus(1, world=world), sleep=clock.sleep)
        assert len(failures) == 1 and "held by another process" in failures[0] and "drive still running" in failures[0]
    gpio.simulate_kill()
    chassis._abandon()
    failures = stop_picar_b(config, gpio=FakeGPIO(board, flavour=flavour, workdir=tmp_path),
                            bus=SMBus(1, world=world), sleep=clock.sleep)
    assert failures == []
    assert_stopped(board, world, config)


def test_calibrate_needs_no_gpio_library_at_all(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from rover.hw.calibrate import main

    monkeypatch.setitem(sys.modules, "RPi", None)  # neither RPi.GPIO nor rpi-lgpio: the same for both
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    world = I2CWorld()
    assert main(["tilt", "--position", "1"], bus=SMBus(1, world=world), sleep=lambda s: None) == 0
    assert world.chip().pulse_ticks(0) == 500  # up = more ticks, as the vendor's up() does
    assert "tilted UP" in capsys.readouterr().out


def test_tilt_up_is_more_ticks_on_channel_zero(tmp_path: Path) -> None:
    config, clock, board, world, gpio = rig("RPi.GPIO", tmp_path, config=PicarBConfig(ultrasonic_enabled=False))
    chassis = open_picar_b(config, gpio=gpio, bus=SMBus(1, world=world), clock=clock, sleep=clock.sleep)
    try:
        chassis.tilt(0.5)
        assert world.chip().pulse_ticks(0) == 400
        chassis.pan(0.5)  # left = more ticks (lookleft: pos += speed * 1)
        chassis.steer(0.5)  # left = more ticks (turnLeft: init + range * 1)
        assert world.chip().pulse_ticks(1) == 375 and world.chip().pulse_ticks(2) == 375
    finally:
        chassis.close()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_reversing_waits_a_pwm_period_at_zero_duty_before_swapping_the_inputs(flavour: str, tmp_path: Path) -> None:
    config, clock, board, world, gpio = rig(flavour, tmp_path, config=PicarBConfig(ultrasonic_enabled=False))
    chassis = open_picar_b(config, gpio=gpio, bus=SMBus(1, world=world), clock=clock, sleep=clock.sleep)
    try:
        chassis.drive(0.5)
        clock.advance(0.01)  # driving forward for a while: the 50 % duty is in force
        assert board.duty_at(config.right_enable_pin, clock.peek()) == 50.0
        chassis.drive(-0.5)
        for enable, inputs in ((config.right_enable_pin, (config.right_in1_pin, config.right_in2_pin)),
                               (config.left_enable_pin, (config.left_in1_pin, config.left_in2_pin))):
            swaps = [e for pin in inputs for e in board.history(pin, "level")][-2:]
            for swap in swaps:
                assert board.duty_at(enable, swap["t"]) == 0.0, (enable, swap)  # no power while swapping
        assert board.pin(config.right_enable_pin).duty == 50.0
    finally:
        chassis.close()


def test_spi_holding_the_echo_pin_is_one_config_line(tmp_path: Path) -> None:
    config, clock, board, world, gpio = rig("rpi-lgpio", tmp_path, spi=True)
    with pytest.raises(ConfigError) as caught:
        open_picar_b(config, gpio=gpio, bus=SMBus(1, world=world), clock=clock, sleep=clock.sleep)
    message = str(caught.value)
    assert caught.value.exit_code == 78 and "\n" not in message
    assert "BCM 8" in message and "SPI" in message and "drive.bumper_m = 0" in message
    for pin in config.motor_pins:  # what was opened was made safe and left so
        assert board.pin(pin).level == 0


def test_bumper_off_opens_the_kit_without_the_ultrasonic_pins(tmp_path: Path) -> None:
    import argparse

    from rover.drive.__main__ import load_config

    path = tmp_path / "rover.toml"
    path.write_text("[drive]\nbumper_m = 0\n")
    args = argparse.Namespace(config=path, follow=None, connect=None, publish=None, backend=None,
                              max_throttle=None, max_age_s=None)
    _drive, kit = load_config(args)
    assert kit.ultrasonic_enabled is False
    config, clock, board, world, gpio = rig("rpi-lgpio", tmp_path, spi=True)
    chassis = open_chassis("picar-b", kit, gpio=gpio, bus=SMBus(1, world=world))
    chassis.close()


def test_no_in_use_warning_when_opening_after_a_safestop(tmp_path: Path) -> None:
    config, clock, board, world, _gpio = rig("RPi.GPIO", tmp_path, config=PicarBConfig(ultrasonic_enabled=False))
    assert stop_picar_b(config, gpio=FakeGPIO(board), bus=SMBus(1, world=world), sleep=clock.sleep) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "This channel is already in use" would raise here
        chassis = open_picar_b(config, gpio=FakeGPIO(board), bus=SMBus(1, world=world), clock=clock, sleep=clock.sleep)
        chassis.close()


def test_no_dev_mem_access_says_gpio_group_not_drive_running(tmp_path: Path) -> None:
    config, clock, board, world, _gpio = rig("RPi.GPIO", tmp_path)
    failures = stop_picar_b(config, gpio=FakeGPIO(board, gpiomem=False), bus=SMBus(1, world=world), sleep=clock.sleep)
    assert len(failures) == 1 and "gpio group" in failures[0] and "still running" not in failures[0]
    with pytest.raises(HardwareError, match="gpio group"):
        open_picar_b(config, gpio=FakeGPIO(board, gpiomem=False), bus=SMBus(1, world=world), sleep=clock.sleep)


def test_not_a_pi_says_so_instead_of_the_gpio_group() -> None:
    message = str(gpio_error(RuntimeError("This module can only be run on a Raspberry Pi!")))
    assert "not a Raspberry Pi" in message and "gpio group" not in message and "--backend log" in message


@pytest.mark.slow
def test_off_a_pi_the_drive_says_not_a_pi(fakehw_env: FakeHwEnv, tmp_path: Path) -> None:
    config = tmp_path / "rover.toml"
    config.write_text("[drive]\nfollow = \"person\"\n")
    env = dict(fakehw_env.env, ROVER_FAKEHW_NOT_A_PI="1")
    done = subprocess.run([sys.executable, "-m", "rover.drive", "--config", str(config)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "not a Raspberry Pi" in done.stderr and "gpio group" not in done.stderr


HOLD_PINS = """
import sys, time
from rover.hw import open_chassis
from rover.hw.config import PicarBConfig
chassis = open_chassis("picar-b", PicarBConfig(ultrasonic_enabled=False))
chassis.drive(0.6)
print("driving", flush=True)
time.sleep(60)
"""


@pytest.mark.slow
def test_rpi_lgpio_claims_across_processes_end_with_the_drive(fakehw_env: FakeHwEnv, tmp_path: Path) -> None:
    env = dict(fakehw_env.env, ROVER_FAKEHW_GPIO="rpi-lgpio")
    drive = subprocess.Popen([sys.executable, "-c", HOLD_PINS], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert drive.stdout is not None and drive.stdout.readline().strip() == "driving", drive.stderr.read()
        alive = subprocess.run([sys.executable, "-m", "rover.hw.safestop"], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=60)
        assert alive.returncode == 1 and "drive still running" in alive.stderr, alive.stderr
    finally:
        drive.kill()
        drive.wait(timeout=30)
    done = subprocess.run([sys.executable, "-m", "rover.hw.safestop"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    board = fakehw_env.board()
    assert all(board.pin(pin).level == 0 for pin in PicarBConfig().motor_pins)


@pytest.mark.slow
def test_lgpio_fifo_is_made_in_the_working_directory_and_its_failure_is_named(fakehw_env: FakeHwEnv,
                                                                               tmp_path: Path) -> None:
    env = dict(fakehw_env.env, ROVER_FAKEHW_GPIO="rpi-lgpio")
    done = subprocess.run([sys.executable, "-m", "rover.hw.safestop"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert any(name.startswith(".lgd-nfy") for name in os.listdir(tmp_path))
    env["LG_WD"] = str(tmp_path / "missing")  # lgpio cannot make its FIFO there
    done = subprocess.run([sys.executable, "-m", "rover.hw.safestop"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "motors NOT stopped" in done.stderr and "writable working directory" in done.stderr
    assert "servos centred" in done.stdout


def test_a_late_echo_is_rejected_by_the_median() -> None:
    clock = TickClock()
    board = Board(clock=clock)
    sonar = board.attach(FakeHCSR04(11, 8, 0.5))
    sonar.stall_reader(clock, every=3, seconds=0.005)  # every third echo seen 5 ms late: +0.86 m
    gpio = FakeGPIO(board)
    gpio.setmode(gpio.BCM)
    gpio.setup(11, gpio.OUT, initial=0)
    gpio.setup(8, gpio.IN)
    # The sensor's timing runs on the TickClock alone; the ranger's bookkeeping on real time, so the
    # test's own polling cannot stretch an echo.
    import time
    ranger = UltrasonicRanger(HCSR04(gpio, 11, 8, clock=clock), clock=time.monotonic, interval_s=0.005,
                              stale_s=1e9)
    seen = []
    ranger.start()
    try:
        import time
        deadline = time.monotonic() + 10
        while sonar.triggers < 12 and time.monotonic() < deadline:
            distance = ranger.distance_m()
            if distance is not None:
                seen.append(distance)
    finally:
        ranger.stop()
    assert sonar.triggers >= 12 and seen
    assert max(seen) == pytest.approx(0.5, abs=0.02), max(seen)  # never the late, farther reading
