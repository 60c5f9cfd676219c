"""rover-calibrate motors refuses what is not the car's own motion: a reversed motor, a person stepping in,
an object leaving the sensor's view (review 3, H2 and H3). On the faithful fakes, in virtual time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_calibrate_motors import KITS, make_rig, no_ranger_thread  # noqa: F401 - the autouse fixture

REVERSED = {"picar-b": "[picar_b]\nright_direction = -1\nleft_direction = 1\n",
            "picar-b2": "[picar_b2]\nm1_direction = -1\nm2_direction = 1\n"}


@pytest.mark.parametrize("backend", KITS)
def test_a_car_driving_away_from_the_wall_aborts_at_once(backend: str, tmp_path: Path, capsys) -> None:
    rig = make_rig(backend, tmp_path)
    start = rig.car.wall_m
    rig.path.write_text(rig.path.read_text() + REVERSED[backend])
    assert rig.run("--yes") == 1
    err = capsys.readouterr().err
    assert "drives away from the wall" in err and ("right_direction" in err or "m1_direction" in err), err
    assert rig.motors_stopped() and max(abs(d) for d in rig.duties()) > 0  # it drove (backwards)
    # It stopped within a few readings of the 5 cm rise (the unchecked run went 6.5 m back).
    assert rig.car.gap_at(rig.clock.peek()) - start < 0.25


def test_a_person_stepping_in_front_aborts_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    rig = make_rig("picar-b", tmp_path)
    before = rig.path.read_text()
    # A person steps in 1 m ahead of the car during the speed steps (the car is driving).
    rig.time.at.append((25.0, lambda: setattr(rig.sonar, "blocker_m", rig.sonar.travelled_m() + 1.0)))
    assert rig.run("--yes", "--write") == 1
    err = capsys.readouterr().err
    assert "something entered or left the sensor's view" in err, err
    assert rig.path.read_text() == before and rig.motors_stopped()
    assert max(rig.duties()) > 0.25  # it was past the dead band


def test_an_object_leaving_the_view_aborts_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    rig = make_rig("picar-b", tmp_path)
    rig.sonar.blocker_m = 1.5  # a box 1.5 m ahead, the wall 2.5 m: the run measures the box
    before = rig.path.read_text()
    rig.time.at.append((20.0, lambda: setattr(rig.sonar, "blocker_m", None)))  # someone takes it away
    assert rig.run("--yes", "--write") == 1
    err = capsys.readouterr().err
    assert "something entered or left the sensor's view" in err, err
    assert rig.path.read_text() == before and rig.motors_stopped()
