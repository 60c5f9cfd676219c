"""The PCA9685 driver against the register model of the chip."""

from __future__ import annotations

import pytest

from rover.core.errors import HardwareError
from rover.hw.pca9685 import MODE1, PCA9685, PRE_SCALE, SLEEP, channel_bytes, frequency_for, prescale_for
from tests.fakehw.fakeclock import TickClock
from tests.fakehw.smbus2 import I2CWorld, SMBus


@pytest.fixture
def rig() -> tuple[TickClock, I2CWorld, SMBus]:
    clock = TickClock()
    world = I2CWorld(clock=clock)
    return clock, world, SMBus(1, world=world)


def test_prescale_is_121_for_50_hz_and_bounded() -> None:
    assert prescale_for(50.0) == 121
    assert prescale_for(1526.0) == 3 and prescale_for(24.0) == 253
    assert frequency_for(121) == pytest.approx(50.03, abs=0.01)
    with pytest.raises(ValueError, match="3..255"):
        prescale_for(2000.0)


def test_channel_bytes_encode_a_pulse_from_tick_zero() -> None:
    assert channel_bytes(300) == [0, 0, 300 & 0xFF, 300 >> 8]
    assert channel_bytes(0) == [0, 0, 0, 0x10]  # full off
    assert channel_bytes(4096) == [0, 0x10, 0, 0]  # full on: ON_H bit 4, OFF_H clear (full off would win)
    with pytest.raises(ValueError, match="0..4096"):
        channel_bytes(4097)


def test_configure_writes_the_prescale_while_asleep_then_wakes(rig) -> None:
    clock, world, bus = rig
    chip = world.chip()
    assert chip.sleeping and chip.prescale == 30  # power-on: asleep at 200 Hz
    PCA9685(bus, sleep=clock.sleep).configure(50.0)
    writes = chip.writes()
    prescale = [w for w in writes if w["reg"] == PRE_SCALE]
    assert [(w["value"], w["applied"]) for w in prescale] == [(121, True)]
    mode1_before = [w["value"] for w in writes if w["reg"] == MODE1 and w["t"] < prescale[0]["t"]]
    assert mode1_before[-1] & SLEEP
    assert not chip.sleeping and chip.prescale == 121 and chip.frequency_hz == pytest.approx(50.03, abs=0.01)
    assert chip.violations() == []


def test_the_oscillator_delay_is_respected_and_checked(rig) -> None:
    clock, world, bus = rig
    driver = PCA9685(bus, sleep=clock.sleep)
    driver.configure(50.0)
    driver.set_pulse(2, 300)
    assert world.chip().violations() == []
    hurried = PCA9685(bus, sleep=lambda s: None)  # a driver that forgot to wait
    hurried.configure(60.0)
    hurried.set_pulse(2, 310)
    assert any("after wake-up" in v for v in world.chip().violations())


def test_reconfiguring_a_running_chip_restarts_its_channels(rig) -> None:
    clock, world, bus = rig
    driver = PCA9685(bus, sleep=clock.sleep)
    driver.configure(50.0)
    driver.set_pulse(2, 320)
    driver.configure(60.0)
    chip = world.chip()
    assert chip.pulse_ticks(2) == 320 and chip.prescale == prescale_for(60.0)
    assert not chip.registers()[MODE1] & 0x80  # RESTART flag consumed


def test_ensure_leaves_a_running_chip_alone(rig) -> None:
    clock, world, bus = rig
    driver = PCA9685(bus, sleep=clock.sleep)
    assert driver.ensure(50.0) is True
    count = len(world.chip().writes())
    assert driver.ensure(50.0) is False
    assert len(world.chip().writes()) == count


def test_set_pulse_and_all_off(rig) -> None:
    clock, world, bus = rig
    driver = PCA9685(bus, sleep=clock.sleep)
    driver.configure(50.0)
    driver.set_pulse(15, 450)
    assert world.chip().pulse_ticks(15) == 450
    driver.all_off()
    assert [world.chip().pulse_ticks(ch) for ch in range(16)] == [0] * 16
    with pytest.raises(ValueError):
        driver.set_pulse(16, 300)


def test_a_chip_that_does_not_answer_is_a_hardware_error() -> None:
    bus = SMBus(1, world=I2CWorld(devices={1: []}))
    with pytest.raises(HardwareError, match="0x40 on /dev/i2c-1 did not answer"):
        PCA9685(bus, bus_number=1).configure(50.0)
