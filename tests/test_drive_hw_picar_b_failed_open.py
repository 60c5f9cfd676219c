"""A half-opened 2019-23 kit: the failed open is marked for the sentinel, which stops the car and reports.

In process on the fakes (pin levels, PCA9685 register writes, each with its
time), then end to end: ``python -m rover.drive --backend picar-b`` on the
file-backed fakes with the GPIO side working and no PCA9685 answering.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from rover.core.errors import HardwareError
from rover.hw.config import PicarBConfig
from rover.hw.picar_b import open_picar_b
from tests.fakehw.fakeclock import TickClock
from tests.fakehw.RPi.GPIO import Board, FakeGPIO
from tests.fakehw.smbus2 import I2CWorld, SMBus
from tests.fixtures_drive import FakeHwEnv
from tests.test_drive_cli import WAIT_S, start_drive

CONFIG = PicarBConfig(ultrasonic_enabled=False)


def kit(devices: list[int]) -> tuple[TickClock, Board, FakeGPIO, I2CWorld]:
    clock = TickClock()
    board = Board(clock=clock)
    return clock, board, FakeGPIO(board), I2CWorld(clock=clock, devices={1: devices})


def assert_motor_pins_held_low(board: Board, config: PicarBConfig) -> None:
    for pin in config.motor_pins:
        view = board.pin(pin)
        assert view.function == "OUT" and view.level == 0 and view.duty is None, (pin, view)


def test_gpio_set_up_and_no_pca9685_is_marked_and_the_motor_pins_are_left_low() -> None:
    clock, board, gpio, world = kit([])  # the bus is there, nothing answers at 0x40 (nor at 0x5f)
    with pytest.raises(HardwareError) as caught:
        open_picar_b(CONFIG, gpio=gpio, bus=SMBus(1, world=world), clock=clock, sleep=clock.sleep)
    assert getattr(caught.value, "hardware_touched", False)  # the drive leaves its sentinel armed
    assert "0x40" in str(caught.value) and "--backend log" in str(caught.value) and "\n" not in str(caught.value)
    assert_motor_pins_held_low(board, CONFIG)
    # The pins were set up before the chip was tried (that is what was touched), and never driven HIGH.
    assert all(board.levels(pin) and set(board.levels(pin)) == {0} for pin in CONFIG.motor_pins)
    assert not any(duty > 0 for pin in CONFIG.motor_pins for duty in board.duties(pin))


def test_a_pca9685_that_dies_mid_open_is_marked_and_its_writes_came_after_the_pins() -> None:
    clock, board, gpio, world = kit([0x40])

    class DiesAfterWaking(SMBus):
        """The chip answers the probe and takes its configuration, then every block write fails."""

        def write_i2c_block_data(self, addr, reg, data, force=None):
            raise OSError(errno.EREMOTEIO, "Remote I/O error")

    with pytest.raises(HardwareError) as caught:
        open_picar_b(CONFIG, gpio=gpio, bus=DiesAfterWaking(1, world=world), clock=clock, sleep=clock.sleep)
    assert getattr(caught.value, "hardware_touched", False)
    chip = world.chip(1, 0x40)
    writes = chip.writes()
    assert writes, "the chip was configured before it failed"
    pins_set_up = max(e["t"] for e in board.history() if e["kind"] == "function" and e["pin"] in CONFIG.motor_pins)
    assert min(w["t"] for w in writes) >= pins_set_up  # the chip comes after the motor pins, which are LOW
    assert_motor_pins_held_low(board, CONFIG)


def test_an_open_that_set_up_no_pin_is_not_marked() -> None:
    clock, board, _, world = kit([0x40])
    gpio = FakeGPIO(board, gpiomem=False)  # RPi.GPIO's setup(): "No access to /dev/mem"
    with pytest.raises(HardwareError) as caught:
        open_picar_b(CONFIG, gpio=gpio, bus=SMBus(1, world=world), clock=clock, sleep=clock.sleep)
    assert not getattr(caught.value, "hardware_touched", False)  # nothing to stop: the sentinel stands down
    assert world.chip(1, 0x40).writes() == []  # the chip was only probed


@pytest.mark.slow
def test_the_sentinel_stops_and_reports_a_drive_whose_picar_b_open_failed_halfway(
        fakehw_env: FakeHwEnv, tmp_path: Path) -> None:
    config_path = tmp_path / "rover.toml"
    config_path.write_text("[drive]\nbumper_m = 0\n[picar_b]\nultrasonic_enabled = false\n")
    env = {**fakehw_env.env, "ROVER_FAKEHW_I2C": ""}  # GPIO works, no PCA9685 on the bus
    drive = start_drive("--config", str(config_path), "--backend", "picar-b", "--connect", f"ipc://{tmp_path}/d",
                        "--publish", "", env=env)
    # The sentinel shares the drive's stderr: this returns once both have finished.
    _, err = drive.communicate(timeout=WAIT_S)
    assert drive.returncode == 1, err
    lines = err.strip().splitlines()
    assert any(line.startswith("rover-drive: ") and "0x40" in line and "--backend log" in line for line in lines), err
    # The sentinel acted after the drive had gone: it says what it could stop and what it could not.
    assert "exited without confirming the car stopped: stopping it failed" in err, err
    assert any("servos NOT centred" in line and "0x40" in line and "rover-safestop" in line for line in lines), err
    assert "motors NOT stopped" not in err
    board = fakehw_env.board()
    assert_motor_pins_held_low(board, CONFIG)
    events = board.history()
    sentinel_events = [e for e in events if e["pid"] != drive.pid]
    assert sentinel_events, "the sentinel never touched the pins: it was stood down"
    last_of_drive = max(e["t"] for e in events if e["pid"] == drive.pid)
    assert min(e["t"] for e in sentinel_events) >= last_of_drive  # only once the drive was gone
    assert {e["pin"] for e in sentinel_events if e["kind"] == "level" and e["value"] == 0} >= set(CONFIG.motor_pins)
