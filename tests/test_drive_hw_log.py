"""The log backend: one line per command, the final safe state included."""

from __future__ import annotations

import io
import math

import pytest

from rover.hw import open_chassis
from rover.hw.chassis import Chassis
from rover.hw.config import PicarBConfig


def test_every_command_is_one_line_with_what_the_car_would_get() -> None:
    out = io.StringIO()
    from rover.hw.log import open_log

    chassis = open_log(PicarBConfig(steering_centre=310), stream=out, clock=lambda: 12.5)
    assert isinstance(chassis, Chassis)
    chassis.drive(0.5)
    chassis.steer(1.0)
    chassis.tilt(1.0)
    with pytest.raises(ValueError):
        chassis.drive(math.nan)
    chassis.close()
    chassis.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 6  # open, drive, steer, tilt, safe (from close), close
    assert "right in1=1 in2=0 duty=50%" in lines[1] and "left in1=0 in2=1 duty=50%" in lines[1]
    assert "steering ticks=450 channel=2" in lines[2]  # 310 + 150 = 460, held at steering_max
    assert "tilt ticks=500 channel=0" in lines[3]  # up = more ticks (vendor up())
    assert lines[4].startswith("log-chassis t=12.500 safe motors=stopped steering=310/310")
    assert lines[5].startswith("log-chassis t=12.500 close motors=stopped")


def test_registry_opens_the_log_backend_without_hardware(capsys: pytest.CaptureFixture[str]) -> None:
    chassis = open_chassis("log", None)
    chassis.drive(-0.2)
    chassis.close()
    out = capsys.readouterr().out
    assert "drive throttle=-0.200" in out and "close motors=stopped" in out
    assert chassis.distance_m() is None
