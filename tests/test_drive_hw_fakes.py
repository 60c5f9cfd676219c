"""The fakes are faithful: they refuse what RPi.GPIO / smbus2 / the PCA9685 refuse."""

from __future__ import annotations

import errno

import pytest

from tests.fakehw.fakeclock import TickClock
from tests.fakehw.RPi.GPIO import Board, FakeGPIO
from tests.fakehw.smbus2 import MODE1, PRE_SCALE, I2CWorld, SMBus


def test_gpio_needs_setmode_then_setup_like_the_real_library() -> None:
    gpio = FakeGPIO(Board())
    with pytest.raises(RuntimeError, match="set pin numbering mode"):
        gpio.setup(4, gpio.OUT)
    gpio.setmode(gpio.BCM)
    with pytest.raises(ValueError, match="different mode"):
        gpio.setmode(gpio.BOARD)
    with pytest.raises(RuntimeError, match="not been set up as an OUTPUT"):
        gpio.output(4, 1)
    with pytest.raises(RuntimeError, match="setup\\(\\) the GPIO channel first"):
        gpio.input(8)
    with pytest.raises(RuntimeError, match="as an output first"):
        gpio.PWM(4, 1000)
    with pytest.raises(ValueError, match="not valid for outputs"):
        gpio.setup(4, gpio.OUT, pull_up_down=gpio.PUD_UP)
    with pytest.raises(ValueError, match="invalid on a Raspberry Pi"):
        gpio.setup(60, gpio.OUT)


def test_pwm_rules_and_recorded_history() -> None:
    board = Board(clock=TickClock())
    gpio = FakeGPIO(board)
    gpio.setmode(gpio.BCM)
    gpio.setup([4, 14], gpio.OUT, initial=gpio.LOW)
    pwm = gpio.PWM(4, 1000)
    with pytest.raises(RuntimeError, match="already exists"):
        gpio.PWM(4, 500)
    with pytest.raises(ValueError, match="0.0 to 100.0"):
        pwm.start(101)
    pwm.start(0)
    pwm.ChangeDutyCycle(40)
    assert board.pin(4).duty == 40.0 and board.pin(4).level is None  # toggling
    pwm.stop()
    assert board.pin(4).duty is None and board.pin(4).level == 0
    assert board.duties(4) == [0.0, 40.0]
    times = [e["t"] for e in board.history(4)]
    assert times == sorted(times)
    gpio.output(14, 1)
    gpio.cleanup()
    assert board.pin(14).function == "IN" and gpio.getmode() is None


def test_a_second_process_warns_about_pins_left_as_outputs() -> None:
    board = Board()
    first = FakeGPIO(board)
    first.setmode(first.BCM)
    first.setup(17, first.OUT)
    second = FakeGPIO(board)
    second.setmode(second.BCM)
    with pytest.warns(RuntimeWarning, match="already in use"):
        second.setup(17, second.OUT)


def test_a_killed_process_leaves_a_running_pwm_pin_stuck() -> None:
    board = Board()
    gpio = FakeGPIO(board)
    gpio.setmode(gpio.BCM)
    gpio.setup(4, gpio.OUT)
    gpio.PWM(4, 1000).start(70)
    gpio.simulate_kill()
    view = board.pin(4)
    assert view.duty is None and view.level == 1 and view.function == "OUT"


def test_state_persists_in_the_file_for_the_next_process(tmp_path) -> None:
    path = tmp_path / "state.json"
    gpio = FakeGPIO(Board(path))
    gpio.setmode(gpio.BCM)
    gpio.setup(27, gpio.OUT, initial=gpio.HIGH)
    bus = SMBus(1, world=I2CWorld(path))
    bus.write_byte_data(0x40, MODE1, 0x31)  # still asleep, AI set
    bus.write_byte_data(0x40, PRE_SCALE, 121)
    bus.write_i2c_block_data(0x40, 0x06 + 8, [0, 0, 44, 1])
    bus.write_byte_data(0x40, MODE1, 0x21)
    later_board, later_world = Board(path), I2CWorld(path)
    assert later_board.pin(27).level == 1
    chip = later_world.chip()
    assert chip.prescale == 121 and chip.pulse_ticks(2) == 300
    assert [w["reg"] for w in chip.writes()][:2] == [MODE1, PRE_SCALE]


def test_smbus_errors_match_the_kernel() -> None:
    world = I2CWorld()
    with pytest.raises(FileNotFoundError):
        SMBus(3, world=world)
    bus = SMBus(1, world=world)
    with pytest.raises(OSError) as caught:
        bus.read_byte_data(0x41, 0)
    assert caught.value.errno == errno.EREMOTEIO
    with pytest.raises(ValueError, match="32 bytes"):
        bus.write_i2c_block_data(0x40, 0x06, [0] * 33)


def test_chip_ignores_prescale_while_awake_and_block_writes_need_auto_increment() -> None:
    world = I2CWorld()
    bus = SMBus(1, world=world)
    chip = world.chip()
    bus.write_byte_data(0x40, MODE1, 0x01)  # awake, no AI
    bus.write_byte_data(0x40, PRE_SCALE, 121)
    assert chip.prescale == 30 and chip.writes()[-1]["applied"] is False
    bus.write_i2c_block_data(0x40, 0x06, [0, 0, 44, 1])  # all four bytes land in LED0_ON_L
    assert chip.registers()[0x06] == 1 and chip.pulse_ticks(0) == 0
