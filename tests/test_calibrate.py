"""rover-calibrate: one servo to a given position, and the config line to keep it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rover.hw.calibrate import main
from tests.fakehw.smbus2 import I2CWorld, SMBus
from tests.fixtures_drive import FakeHwEnv


@pytest.fixture
def world() -> I2CWorld:
    return I2CWorld()


def run(world: I2CWorld, *argv: str) -> int:
    return main(list(argv), bus=SMBus(1, world=world), sleep=lambda s: None)


def test_ticks_go_to_the_servos_channel_and_the_line_is_printed(world: I2CWorld, capsys) -> None:
    assert run(world, "steering", "--ticks", "310") == 0
    assert world.chip().pulse_ticks(2) == 310 and world.chip().frequency_hz == pytest.approx(50.03, abs=0.01)
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "steering_centre = 310"
    assert "channel 2" in out[0] and "1.514 ms" in out[0]


def test_pan_and_tilt_use_their_channels(world: I2CWorld, capsys) -> None:
    assert run(world, "tilt", "--ticks", "280") == 0
    assert run(world, "pan", "--ticks", "320") == 0
    assert world.chip().pulse_ticks(0) == 280 and world.chip().pulse_ticks(1) == 320
    assert capsys.readouterr().out.splitlines()[-1] == "pan_centre = 320"


@pytest.mark.parametrize("ticks", ["4096", "-1"])
def test_ticks_outside_the_chip_are_refused(world: I2CWorld, capsys, ticks: str) -> None:
    assert run(world, "steering", "--ticks", ticks) == 78
    err = capsys.readouterr().err.strip()
    assert "0..4095" in err and len(err.splitlines()) == 1
    assert world.chip().writes() == []


def test_ticks_outside_the_configured_limits_are_sent_with_a_warning(world: I2CWorld, capsys) -> None:
    assert run(world, "steering", "--ticks", "500") == 0
    assert world.chip().pulse_ticks(2) == 500
    captured = capsys.readouterr()
    assert "warning" in captured.err and "steering_min..steering_max (150..450)" in captured.err
    assert captured.out.splitlines()[-1] == "steering_centre = 500"


def test_position_uses_the_config_to_check_the_direction(world: I2CWorld, tmp_path: Path, capsys) -> None:
    config = tmp_path / "rover.toml"
    config.write_text("[picar_b]\nsteering_centre = 305\nsteering_direction = -1\n")
    assert run(world, "steering", "--position", "1", "--config", str(config)) == 0
    assert world.chip().pulse_ticks(2) == 155
    assert "set steering_direction = 1" in capsys.readouterr().out


@pytest.mark.slow
def test_command_line_on_the_file_backed_fakes(fakehw_env: FakeHwEnv) -> None:
    done = subprocess.run([sys.executable, "-m", "rover.hw.calibrate", "steering", "--ticks", "310"],
                          env=fakehw_env.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "steering_centre = 310"
    assert fakehw_env.chip().pulse_ticks(2) == 310
