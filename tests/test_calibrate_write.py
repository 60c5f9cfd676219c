"""rover-calibrate motors --write: refused for a fit not good enough to keep, checked before the file is
touched, atomic, mode and owner kept (review 3, H3, M3, M4). On the faithful fakes, in virtual time."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from rover.core.config import load_sections
from rover.drive.config import DriveConfig
from rover.hw.config import PicarBConfig
from tests.test_calibrate_motors import make_rig, no_ranger_thread  # noqa: F401 - the autouse fixture


def test_the_2024_kit_writes_a_calibration_from_within_its_2_m_sensor_range(tmp_path: Path, capsys) -> None:
    """The 2024 kit's sensor reads up to 2 m: the old run spread its steps up to 100 % whatever the room, drove two
    above the dead band and --write refused. The steps are planned from the room now: three, and written."""
    rig = make_rig("picar-b2", tmp_path, wall_m=1.7)
    assert rig.run("--yes", "--write") == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "planned" in out and "over 3 steps" in out, out
    data = tomllib.loads(rig.path.read_text())
    assert data["picar_b2"]["min_duty"] == pytest.approx(22, abs=2.5)
    assert data["drive"]["top_speed_mps"] == pytest.approx(1.0, rel=0.05)  # the fake car's top speed
    assert rig.car.closest_m >= 0.4 and rig.motors_stopped()


def test_a_top_speed_extrapolated_far_beyond_its_steps_is_not_written(tmp_path: Path, capsys) -> None:
    """From 1.3 m the room allows steps up to about half duty only: the line is measured, never written."""
    rig = make_rig("picar-b2", tmp_path, wall_m=1.3)
    before = rig.path.read_text()
    assert rig.run("--yes", "--write") == 1
    out, err = capsys.readouterr()
    assert "--write refused: extrapolated" in err and "start farther from the wall" in err and "is untouched" in err, err
    assert rig.path.read_text() == before
    assert rig.motors_stopped()


def test_a_low_max_duty_never_writes_a_config_rover_drive_refuses(tmp_path: Path, capsys) -> None:
    """max_duty = 18 below the car's 20 % dead band, driven to 100 % by --max-duty: the old run wrote
    min_duty = 22 and a negative top speed, and rover-drive then exited 78."""
    rig = make_rig("picar-b", tmp_path)
    rig.path.write_text(rig.path.read_text() + "[picar_b]\nmax_duty = 18\n")
    before = rig.path.read_text()
    code = rig.run("--yes", "--write", "--max-duty", "100")
    err = capsys.readouterr().err
    assert code in (1, 78) and rig.path.read_text() == before, err
    load_sections(rig.path, {"drive": DriveConfig, "picar_b": PicarBConfig})  # still loads


def test_a_quoted_key_is_refused_before_the_file_is_touched(tmp_path: Path, capsys) -> None:
    rig = make_rig("picar-b", tmp_path)
    text = '[drive]\nbackend = "picar-b"\n"top_speed_mps" = 1.0\n'
    rig.path.write_text(text)
    assert rig.run("--yes", "--write") == 78
    assert "the file is untouched" in capsys.readouterr().err
    assert rig.path.read_text() == text


def test_write_replaces_the_file_atomically_keeping_mode_and_owner(tmp_path: Path, capsys) -> None:
    rig = make_rig("picar-b", tmp_path)
    rig.path.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(rig.path, 0, 4321)  # install.sh: root:rover 0640
    link = tmp_path / "linked.toml"
    link.symlink_to(rig.path)
    before = rig.path.stat()
    rig.path = link  # --config names the link
    assert rig.run("--yes", "--write") == 0 or pytest.fail(capsys.readouterr().err)
    after = rig.path.resolve().stat()
    assert link.is_symlink()  # the link stays a link: the file it names was replaced
    assert (after.st_mode & 0o7777, after.st_uid, after.st_gid) == (0o640, before.st_uid, before.st_gid)
    assert after.st_ino != before.st_ino  # a new file renamed over the old one, never the old one truncated
    assert tomllib.loads(rig.path.read_text())["drive"]["top_speed_mps"] > 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
