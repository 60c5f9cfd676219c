"""The status says why the car will not go forward: the ``bumper`` field (off, clear, obstacle, unknown).

Pure states first, then the loop tick by tick, then end to end: ``python -m
rover.drive --backend picar-b`` on the file-backed fake RPi.GPIO and PCA9685
with the HC-SR04 fitted but answering nothing (no echo ever rises: an
unplugged or dead sensor), read over the real status socket.
"""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Iterator

import jsonschema
import pytest

from rover.drive.bumper import CLEAR, OBSTACLE, OFF, STATES, UNKNOWN, blocks, bumper_state
from rover.drive.config import DriveConfig
from rover.hw.config import PicarBConfig
from tests.fixtures_drive import FakeHwEnv
from tests.test_drive_cli import WAIT_S, FakeDetector, StatusWatcher, start_drive
from tests.test_drive_fakes import person
from tests.test_drive_loop import SCHEMA, Rig


@pytest.mark.parametrize("bumper_m, distance, has_ranger, expected", [
    (0.3, 1.2, True, CLEAR),
    (0.3, math.inf, True, CLEAR),  # nothing in range
    (0.3, 0.3, True, CLEAR),  # at the limit: not nearer
    (0.3, 0.29, True, OBSTACLE),
    (0.3, None, True, UNKNOWN),  # fitted, no valid reading
    (0.3, math.nan, True, UNKNOWN),
    (0.3, None, False, OFF),  # no sensor on this backend (log, sim): cannot block, and says so
    (0.0, 0.1, True, OFF),  # bumper_m = 0: the explicit way to drive without
    (0.0, None, True, OFF),
])
def test_the_bumper_state_of_a_reading(bumper_m: float, distance: float | None, has_ranger: bool, expected: str) -> None:
    assert bumper_state(bumper_m, distance, has_ranger) == expected
    assert blocks(expected) == (expected in (OBSTACLE, UNKNOWN))


def test_the_schema_and_the_module_list_the_same_states() -> None:
    assert SCHEMA["properties"]["bumper"]["enum"] == list(STATES)


def test_the_status_says_why_forward_motion_is_blocked_tick_by_tick() -> None:
    rig = Rig(DriveConfig(bumper_m=0.3))
    rig.chassis.has_ranger = True
    rig.chassis.distance = None
    rig.play(lambda t: [person(0.5, 0.2)], 0.0, 6.0)
    rig.run_for(2.0)
    blocked = rig.status()
    assert blocked["state"] == "FOLLOWING" and blocked["throttle"] == 0.0
    assert blocked["bumper"] == "unknown" and blocked["obstacle_m"] is None
    rig.chassis.distance = 0.2
    rig.run_for(0.3)
    assert rig.status()["bumper"] == "obstacle" and rig.status()["obstacle_m"] == pytest.approx(0.2)
    assert rig.status()["throttle"] == 0.0
    rig.chassis.distance = math.inf
    rig.run_for(0.5)
    clear = rig.status()
    assert clear["bumper"] == "clear" and clear["obstacle_m"] is None and clear["throttle"] > 0  # nothing in range
    for raw in rig.published:
        jsonschema.validate(json.loads(raw.partition(b" ")[2]), SCHEMA)


def test_without_a_sensor_the_status_says_the_bumper_is_off() -> None:
    rig = Rig(DriveConfig(bumper_m=0.0))
    rig.chassis.has_ranger = True
    rig.chassis.distance = None
    rig.play(lambda t: [person(0.5, 0.2)], 0.0, 3.0)
    rig.run_for(2.0)
    assert rig.status()["bumper"] == "off" and rig.status()["throttle"] > 0


@pytest.fixture
def detector(tmp_path: Path) -> Iterator[FakeDetector]:
    fake = FakeDetector(f"ipc://{tmp_path}/detections", lambda: [person(centre_x=0.5, height=0.2)])
    yield fake
    fake.close()


@pytest.mark.slow
def test_a_dead_ultrasonic_on_the_kit_shows_as_unknown_on_the_status_socket(
        detector: FakeDetector, fakehw_env: FakeHwEnv, tmp_path: Path) -> None:
    config_path = tmp_path / "rover.toml"
    config_path.write_text("[drive]\nbumper_m = 0.3\n[picar_b]\nultrasonic_enabled = true\n")
    publish = f"ipc://{tmp_path}/drive"
    drive = start_drive("--config", str(config_path), "--backend", "picar-b", "--connect", f"ipc://{tmp_path}/detections",
                        "--publish", publish, env=fakehw_env.env)
    watcher = StatusWatcher(publish)
    try:
        following = watcher.wait_for(lambda s: s.state == "FOLLOWING", drive)
        # A second of following a person 3 m away: every status says why the car stands still.
        later = watcher.wait_for(lambda s: s.seq >= following.seq + 20, drive)
        for status in (following, later):
            assert status.bumper == "unknown" and status.obstacle_m is None and status.throttle == 0.0
            assert status.estimate is not None and status.estimate.range_m > 1.0  # the person is far: it would drive
        drive.send_signal(signal.SIGTERM)
        _, err = drive.communicate(timeout=WAIT_S)
    finally:
        watcher.close()
        if drive.poll() is None:
            drive.kill()
            drive.communicate()
    assert drive.returncode == 0, err
    assert "ultrasonic range unknown (no valid reading): forward motion blocked by the bumper" in err
    config = PicarBConfig()
    board = fakehw_env.board()
    for pin in (config.right_enable_pin, config.left_enable_pin):
        assert not any(duty > 0 for duty in board.duties(pin)), "a motor was driven with the range unknown"
    trigger = board.levels(config.ultrasonic_trigger_pin)
    assert trigger.count(1) >= 3  # the sensor was fitted and asked, again and again: it never answered


def test_the_view_shows_the_bumper_state() -> None:
    from rover.drive.status import decode
    from rover.view.state import LiveState

    rig = Rig(DriveConfig(bumper_m=0.3))
    rig.chassis.has_ranger = True
    rig.chassis.distance = None
    rig.play(lambda t: [person(0.5, 0.2)], 0.0, 3.0)
    rig.run_for(2.0)
    view = LiveState()
    view.on_drive(decode(rig.published[-1]))
    assert view.snapshot()["drive"]["bumper"] == "unknown"
    page = (Path(__file__).resolve().parents[1] / "rover" / "view")
    assert 'id="drive-bumper"' in (page / "page.html").read_text() and '"drive-bumper"' in (page / "view.js").read_text()
