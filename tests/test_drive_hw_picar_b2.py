"""The ``picar-b2`` backend (kit sold since 2024) on a faithful PCA9685 at 0x5f: what the chip's outputs do.

Facts from upstream: adeept/adeept_picar-b2 web/move.py (PCA9685 at 0x5f, M1 = channels
15/14, M2 = 12/13, DCMotor with SLOW_DECAY, M2_Direction = -1, FREQ 50), web/RPIservo.py
(servo.Servo min_pulse 500, max_pulse 2400, 180 degrees; steering 0, pan 1, tilt 2),
web/ultra.py (trigger 23, echo 24, max 2 m); adafruit_motor motor.py (slow decay:
forward = positive full on, negative 0xFFFF - duty).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rover.core.errors import ConfigError
from rover.hw import open_chassis
from rover.hw.config_b2 import PicarB2Config
from rover.hw.pca9685 import FULL_ON
from rover.hw.picar_b2 import open_picar_b2
from rover.hw.safestop import main as safestop_main
from rover.hw.safestop import safe_stop
from tests.fakehw.fakeclock import TickClock
from tests.fakehw.RPi.GPIO import Board, FakeGPIO, FakeHCSR04
from tests.fakehw.smbus2 import I2CWorld, SMBus
from tests.fixtures_drive import FakeHwEnv

B2 = 0x5F
MOTORS = (15, 14, 12, 13)  # M1 positive, negative, M2 positive, negative


def open_b2(config: PicarB2Config | None = None, world: I2CWorld | None = None, obstacle_m: float = 1.0):
    config = config or PicarB2Config()
    clock = TickClock()
    world = world or I2CWorld(clock=clock, devices={1: [B2]})
    board = Board(clock=clock)
    board.attach(FakeHCSR04(config.ultrasonic_trigger_pin, config.ultrasonic_echo_pin, obstacle_m))
    gpio = FakeGPIO(board)
    chassis = open_picar_b2(config, gpio=gpio, bus=SMBus(1, world=world), clock=clock, sleep=clock.sleep)
    return chassis, world.chip(1, B2), board, clock


def motors(chip) -> tuple[int, ...]:
    return tuple(chip.pulse_ticks(ch) for ch in MOTORS)


def test_open_stops_the_motors_and_centres_the_servos_at_fifty_hertz() -> None:
    chassis, chip, _board, _clock = open_b2()
    try:
        assert not chip.sleeping and chip.prescale == 121  # 50 Hz, the vendor's FREQ
        assert motors(chip) == (0, 0, 0, 0)
        # 90 degrees = 500 + 950 us = 1450 us = 297 ticks of 20 ms / 4096
        assert [chip.pulse_ticks(ch) for ch in (0, 1, 2)] == [297, 297, 297]
        assert chip.violations() == []
    finally:
        chassis.close()


def test_forward_is_the_slow_decay_scheme_with_m2_mirrored() -> None:
    chassis, chip, _board, _clock = open_b2()
    try:
        chassis.drive(0.5)
        # M1 forward: positive full on, negative high for the other half (braking part); M2 mirrored.
        assert motors(chip) == (FULL_ON, 2048, 2048, FULL_ON)
        chassis.drive(0.25)
        assert motors(chip) == (FULL_ON, 3072, 3072, FULL_ON)
        chassis.drive(0.0)
        assert motors(chip) == (0, 0, 0, 0)
    finally:
        chassis.close()


def test_every_motor_change_is_one_transaction_and_a_reversal_stops_a_full_period_first() -> None:
    chassis, chip, _board, clock = open_b2()
    try:
        chassis.drive(0.5)
        before = len(chip.transactions())
        chassis.drive(-0.5)
        groups = chip.transactions()[before:]
        states = chip.pulses_after_each_transaction(MOTORS)[before:]
        assert states == [(0, 0, 0, 0), (2048, FULL_ON, FULL_ON, 2048)]  # stop, then reverse: never a mix
        assert groups[1][0]["t"] - groups[0][-1]["t"] >= 1 / 50  # one 20 ms period at zero duty in between
        assert all(len(group) == 16 for group in groups)  # four channels, one block write each time
    finally:
        chassis.close()


def test_steering_pan_and_tilt_go_the_vendors_way_in_degrees() -> None:
    chassis, chip, _board, _clock = open_b2()
    try:
        chassis.steer(1.0)  # left = moveAngle(0, +30): 120 degrees
        chassis.pan(1.0)  # lookleft = more degrees
        chassis.tilt(1.0)  # up = more degrees
        cfg = PicarB2Config()
        assert chip.pulse_ticks(0) == cfg.degrees_to_ticks(120)
        assert chip.pulse_ticks(1) == cfg.degrees_to_ticks(180)
        assert chip.pulse_ticks(2) == cfg.degrees_to_ticks(180)
        chassis.steer(-5.0)  # clamped to full right: 60 degrees
        assert chip.pulse_ticks(0) == cfg.degrees_to_ticks(60)
    finally:
        chassis.close()


def test_close_and_safe_write_zero_duty_to_the_motor_channels() -> None:
    chassis, chip, _board, _clock = open_b2()
    chassis.drive(0.8)
    chassis.steer(1.0)
    chassis.close()
    assert motors(chip) == (0, 0, 0, 0) and chip.pulse_ticks(0) == 297
    chassis.close()  # idempotent


def test_ultrasonic_is_measured_on_bcm_23_and_24() -> None:
    chassis, _chip, board, _clock = open_b2(obstacle_m=0.5)
    try:
        import time
        deadline = time.monotonic() + 5
        while chassis.distance_m() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert chassis.distance_m() == pytest.approx(0.5, abs=0.01)
        assert board.pin(23).function == "OUT" and board.pin(24).function == "IN"
    finally:
        chassis.close()


def test_a_chip_woken_by_opening_does_not_restart_a_motor_duty_left_asleep() -> None:
    # A chip put to sleep (by a vendor script's frequency change, say) with motor duty in its
    # registers: waking it would drive that duty again. Opening writes full off first.
    world = I2CWorld(devices={1: [B2]})
    bus = SMBus(1, world=world)
    bus.write_byte_data(B2, 0x00, 0x21)  # awake, AI
    bus.write_i2c_block_data(B2, 0x06 + 4 * 12, [0, 0x10, 0, 0] * 2 + [0, 0, 0, 8] * 2)  # motors driving
    bus.write_byte_data(B2, 0x00, 0x31)  # asleep, the duty still in the registers
    before = len(world.chip(1, B2).transactions())
    chassis, chip, _board, _clock = open_b2(PicarB2Config(ultrasonic_enabled=False), world=world)
    try:
        during_open = chip.pulses_after_each_transaction(MOTORS)[before:]
        assert during_open and all(state == (0, 0, 0, 0) for state in during_open)
    finally:
        chassis.close()


# -- revision detection ---------------------------------------------------------------
def test_picar_b_on_the_2024_kit_names_the_right_backend() -> None:
    world = I2CWorld(devices={1: [B2]})
    board = Board()
    with pytest.raises(ConfigError) as caught:
        open_chassis("picar-b", None, gpio=FakeGPIO(board), bus=SMBus(1, world=world))
    message = str(caught.value)
    assert 'drive.backend = "picar-b2"' in message and "0x40" in message and "0x5f" in message
    assert "\n" not in message and caught.value.exit_code == 78
    assert board.history() == []  # no pin was touched


def test_picar_b2_on_the_2019_kit_names_the_right_backend() -> None:
    world = I2CWorld(devices={1: [0x40]})
    with pytest.raises(ConfigError, match='drive.backend = "picar-b"') as caught:
        open_chassis("picar-b2", PicarB2Config(ultrasonic_enabled=False), bus=SMBus(1, world=world))
    assert caught.value.exit_code == 78 and world.chip(1, 0x40).writes() == []


# -- safe-stop ------------------------------------------------------------------------
def test_safe_stop_of_the_2024_kit_after_a_kill_zeroes_the_motors_first() -> None:
    chassis, chip, _board, _clock = open_b2(PicarB2Config(ultrasonic_enabled=False))
    chassis.drive(0.6)
    chassis.steer(-1.0)
    chassis._abandon()  # "killed": no close; the chip keeps driving
    assert motors(chip) != (0, 0, 0, 0)
    world = chip.world
    n = len(chip.transactions())
    failures = safe_stop({"drive": {"backend": "picar-b2"}}, bus=SMBus(1, world=world), sleep=lambda s: None)
    assert failures == []
    assert motors(chip) == (0, 0, 0, 0) and [chip.pulse_ticks(c) for c in (0, 1, 2)] == [297, 297, 297]
    run = chip.transactions()[n:]
    # The first write is one byte, ALL_LED_OFF_H = full off: every motor input off in one transaction.
    assert [(e["reg"], e["value"]) for e in run[0]] == [(0xFD, 0x10)]


def test_safe_stop_takes_the_drive_config_object_too() -> None:
    from rover.drive.config import DriveConfig

    world = I2CWorld(devices={1: [B2]})
    sections = {"drive": DriveConfig(backend="picar-b2"), "picar_b2": PicarB2Config(steering_centre_deg=100)}
    assert safe_stop(sections, bus=SMBus(1, world=world), sleep=lambda s: None) == []
    assert world.chip(1, B2).pulse_ticks(0) == PicarB2Config().degrees_to_ticks(100)


def test_safe_stop_for_a_dry_run_backend_touches_nothing_and_prints_the_stop(capsys) -> None:
    assert safe_stop({"drive": {"backend": "log"}}) == []
    out = capsys.readouterr().out
    assert "drives no hardware" in out
    assert "stopped" in out  # the log backend's own close line


def test_safestop_command_reads_the_backend_from_the_file(tmp_path: Path, monkeypatch) -> None:
    import rover.hw.safestop as safestop

    config = tmp_path / "rover.toml"
    config.write_text('[drive]\nbackend = "picar-b2"\n[picar_b2]\nsteering_centre_deg = 80\n')
    world = I2CWorld(devices={1: [B2]})
    real = safestop.safe_stop
    monkeypatch.setattr(safestop, "safe_stop", lambda sections: real(sections, bus=SMBus(1, world=world),
                                                                      sleep=lambda s: None))
    assert safestop_main(["--config", str(config)]) == 0
    assert world.chip(1, B2).pulse_ticks(0) == PicarB2Config().degrees_to_ticks(80)


DRIVE_LIKE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from rover.core.config import load_sections
    from rover.hw import open_chassis
    from rover.hw.config_b2 import PicarB2Config
    config = load_sections(Path(sys.argv[1]), {"picar_b2": PicarB2Config})["picar_b2"]
    chassis = open_chassis("picar-b2", config)
    chassis.drive(0.8)
    chassis.steer(1.0)
    print("driving", flush=True)
    time.sleep(60)
""")


@pytest.mark.slow
def test_subprocess_killed_drive_keeps_the_wheels_turning_until_safestop(fakehw_env: FakeHwEnv, tmp_path: Path) -> None:
    config_path = tmp_path / "rover.toml"
    config_path.write_text('[drive]\nbackend = "picar-b2"\n[picar_b2]\nultrasonic_enabled = false\n')
    env = dict(fakehw_env.env, ROVER_FAKEHW_I2C="0x5f")
    drive = subprocess.Popen([sys.executable, "-c", DRIVE_LIKE, str(config_path)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert drive.stdout is not None and drive.stdout.readline().strip() == "driving", drive.stderr.read()
    finally:
        drive.send_signal(signal.SIGKILL)
        drive.wait(timeout=30)
    chip = I2CWorld(fakehw_env.state_path, devices={1: [B2]}).chip(1, B2)
    assert motors(chip)[0] == FULL_ON  # the chip keeps driving after its process died
    done = subprocess.run([sys.executable, "-m", "rover.hw.safestop", "--config", str(config_path)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "motors off: PCA9685 0x5f channels 15, 14, 12, 13 full off" in done.stdout
    chip = I2CWorld(fakehw_env.state_path, devices={1: [B2]}).chip(1, B2)
    assert motors(chip) == (0, 0, 0, 0) and chip.pulse_ticks(0) == 297


# -- calibrate --------------------------------------------------------------------------
def test_calibrate_the_2024_kit_in_degrees(tmp_path: Path, capsys) -> None:
    from rover.hw.calibrate import main

    config = tmp_path / "rover.toml"
    config.write_text('[drive]\nbackend = "picar-b2"\n')
    world = I2CWorld(devices={1: [B2]})
    assert main(["steering", "--degrees", "95", "--config", str(config)], bus=SMBus(1, world=world),
                sleep=lambda s: None) == 0
    chip = world.chip(1, B2)
    assert chip.pulse_ticks(0) == PicarB2Config().degrees_to_ticks(95) and motors(chip) == (0, 0, 0, 0)
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "steering_centre_deg = 95" and "[picar_b2]" in out[-2]
    assert main(["steering", "--ticks", "300", "--config", str(config)], bus=SMBus(1, world=world)) == 78


def test_config_rejects_a_channel_used_twice() -> None:
    with pytest.raises(ValueError, match="steering_channel and m1_in1_channel"):
        PicarB2Config(steering_channel=15)


def test_the_example_files_picar_b2_section_is_the_defaults() -> None:
    from rover.core.config import load_sections

    example = Path(__file__).resolve().parents[1] / "config" / "rover.example.toml"
    assert load_sections(example, {"picar_b2": PicarB2Config})["picar_b2"] == PicarB2Config()


def test_safe_stop_configured_for_the_old_kit_still_stops_the_2024_kit_it_finds(capsys) -> None:
    # A vendor program (or a drive with another config) left the 2024 kit's motors running,
    # and rover.toml still names picar-b: the safe-stop says so and stops the kit that is there.
    world = I2CWorld(devices={1: [B2]})
    chassis, chip, _board, _clock = open_b2(PicarB2Config(ultrasonic_enabled=False), world=world)
    chassis.drive(0.6)
    chassis._abandon()
    failures = safe_stop({"drive": {"backend": "picar-b"}}, gpio=FakeGPIO(Board()), bus=SMBus(1, world=world),
                         sleep=lambda s: None)
    assert len(failures) == 1 and 'drive.backend = "picar-b2"' in failures[0]
    assert motors(chip) == (0, 0, 0, 0)
    assert "stopping picar-b2 too" in capsys.readouterr().out
