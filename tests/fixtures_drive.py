"""Shared pytest fixtures for the drive tests (imported by tests/conftest.py).

- ``picar_config``: the ``[picar_b]`` defaults (override it in a test module
  to test another kit).
- ``fake_picar``: an opened ``picar-b`` chassis on in-process fakes (RPi.GPIO
  board, PCA9685 on I2C bus 1, an HC-SR04 1 m from an obstacle), with the
  recordings at hand; closed after the test.
- ``fakehw_env``: environment and paths for a subprocess that imports the
  fake ``RPi.GPIO`` and ``smbus2`` (tests/fakehw first on PYTHONPATH) and
  keeps the hardware state in a file the test can read afterwards.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from rover.hw.config import PicarBConfig
from rover.hw.picar_b import PicarBChassis, open_picar_b
from tests.fakehw.fakeclock import TickClock
from tests.fakehw.fakehw_state import ENV_VAR
from tests.fakehw.RPi.GPIO import Board, FakeGPIO, FakeHCSR04
from tests.fakehw.smbus2 import I2CWorld, PCA9685Model, SMBus

FAKEHW_DIR = Path(__file__).resolve().parent / "fakehw"
REPO_DIR = Path(__file__).resolve().parents[1]


@dataclass
class FakePicar:
    """A picar-b chassis on fakes, and what the fake hardware recorded."""

    chassis: PicarBChassis
    config: PicarBConfig
    clock: TickClock
    gpio: FakeGPIO
    board: Board
    sonar: FakeHCSR04
    world: I2CWorld
    bus: SMBus

    @property
    def chip(self) -> PCA9685Model:
        return self.world.chip(self.config.i2c_bus, self.config.i2c_address)

    def servo_ticks(self, name: str) -> int:
        """The pulse (ticks) the PCA9685 drives on that servo's channel now."""
        return self.chip.pulse_ticks(self.config.servo(name).channel)

    def motor(self, side: str) -> tuple[int | None, int | None, float | None]:
        """``(in1 level, in2 level, enable duty %)`` of the ``"right"`` or ``"left"`` motor now."""
        cfg = self.config
        pins = getattr(cfg, f"{side}_in1_pin"), getattr(cfg, f"{side}_in2_pin"), getattr(cfg, f"{side}_enable_pin")
        return self.board.pin(pins[0]).level, self.board.pin(pins[1]).level, self.board.pin(pins[2]).duty

    def wait_for_distance(self, timeout_s: float = 5.0) -> float | None:
        """Wait (real time) until the background ranger reports a distance; None if it never does."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            distance = self.chassis.distance_m()
            if distance is not None:
                return distance
            time.sleep(0.01)
        return None


def build_fake_picar(config: PicarBConfig, *, obstacle_m: float | None = 1.0) -> FakePicar:
    """Open a picar-b chassis on fresh in-process fakes sharing one :class:`TickClock`."""
    clock = TickClock()
    board = Board(clock=clock)
    sonar = board.attach(FakeHCSR04(config.ultrasonic_trigger_pin, config.ultrasonic_echo_pin, obstacle_m))
    gpio = FakeGPIO(board)
    world = I2CWorld(clock=clock, devices={config.i2c_bus: [config.i2c_address]})
    bus = SMBus(config.i2c_bus, world=world)
    chassis = open_picar_b(config, gpio=gpio, bus=bus, clock=clock, sleep=clock.sleep)
    return FakePicar(chassis, config, clock, gpio, board, sonar, world, bus)


@pytest.fixture
def picar_config() -> PicarBConfig:
    return PicarBConfig()


@pytest.fixture
def fake_picar(picar_config: PicarBConfig) -> Iterator[FakePicar]:
    car = build_fake_picar(picar_config)
    try:
        yield car
    finally:
        car.chassis.close()


@dataclass
class FakeHwEnv:
    """What a subprocess needs to run on the file-backed fakes, and readers for the result."""

    env: dict[str, str]
    state_path: Path

    def board(self) -> Board:
        """The pins as the subprocesses left them (with their history)."""
        return Board(self.state_path)

    def chip(self, bus: int = 1, address: int = 0x40) -> PCA9685Model:
        """The PCA9685's registers as the subprocesses left them."""
        return I2CWorld(self.state_path).chip(bus, address)


@pytest.fixture
def fakehw_env(tmp_path: Path) -> FakeHwEnv:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(FAKEHW_DIR), str(REPO_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    state = tmp_path / "fakehw-state.json"
    env[ENV_VAR] = str(state)
    return FakeHwEnv(env, state)
