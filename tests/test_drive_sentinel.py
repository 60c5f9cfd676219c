"""The drive's sentinel: ``kill -9`` of ``python -m rover.drive`` still stops the car, outside systemd.

End to end over the file-backed fake RPi.GPIO and PCA9685 (what the
hardware retains when a process dies) and real ZeroMQ sockets; the unit
tests below cover the sentinel's waiting and retrying without processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from rover.drive.sentinel import STAND_DOWN, stop_car, wait_for_parent
from rover.hw.config import PicarBConfig
from tests.fakehw.fakehw_state import pid_alive
from tests.fixtures_drive import FakeHwEnv
from tests.test_drive_cli import WAIT_S, FakeDetector, StatusWatcher, start_drive
from tests.test_drive_fakes import person
from tests.test_safestop import assert_safe

CONFIG = "[drive]\nbumper_m = 0\n[picar_b]\nultrasonic_enabled = false\nsteering_centre = 310\n"


@pytest.fixture
def endpoints(tmp_path: Path) -> tuple[str, str]:
    return f"ipc://{tmp_path}/detections", f"ipc://{tmp_path}/drive"


@pytest.fixture
def detector(endpoints: tuple[str, str]) -> Iterator[FakeDetector]:
    fake = FakeDetector(endpoints[0], lambda: [person(centre_x=0.25, height=0.2)])
    yield fake
    fake.close()


def gone(pid: int) -> bool:
    """Whether ``pid`` exits (or is a zombie) within WAIT_S: its pipes close a moment before it is gone."""
    deadline = time.monotonic() + WAIT_S
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def following(config_path: Path, endpoints: tuple[str, str], env: dict[str, str], backend: str = "picar-b"
              ) -> tuple[subprocess.Popen, int]:
    """A drive following the detector's person with its motors running, and its sentinel's pid."""
    connect, publish = endpoints
    drive = start_drive("--config", str(config_path), "--backend", backend, "--connect", connect,
                        "--publish", publish, env=env)
    watcher = StatusWatcher(publish)
    try:
        watcher.wait_for(lambda s: s.state == "FOLLOWING" and s.throttle > 0.1, drive)
    finally:
        watcher.close()
    sentinels = children(drive.pid)
    assert len(sentinels) <= 1, f"the drive should run one sentinel, has {sentinels}"
    return drive, sentinels[0] if sentinels else -1


@pytest.mark.slow
def test_sigkill_of_the_drive_leaves_pins_low_and_steering_centred(
        endpoints: tuple[str, str], detector: FakeDetector, fakehw_env: FakeHwEnv, tmp_path: Path) -> None:
    config_path = tmp_path / "rover.toml"
    config_path.write_text(CONFIG)
    config = PicarBConfig(ultrasonic_enabled=False, steering_centre=310)
    drive, sentinel = following(config_path, endpoints, fakehw_env.env)
    try:
        board = fakehw_env.board()
        assert any(duty > 0 for duty in board.duties(config.right_enable_pin))  # the motors were running
        killed_at = time.monotonic()
        drive.send_signal(signal.SIGKILL)
        # The sentinel shares the drive's stderr: it ends when the sentinel has done its work and exited.
        _, err = drive.communicate(timeout=WAIT_S)
    finally:
        if drive.poll() is None:
            drive.kill()
    assert drive.returncode == -signal.SIGKILL
    assert_safe(fakehw_env.board(), fakehw_env.chip(), config)  # every motor pin a LOW output, servos centred
    for pin in (config.right_enable_pin, config.left_enable_pin):
        assert fakehw_env.board().pin(pin).duty is None  # no PWM left running on an enable pin
    assert "exited without confirming the car stopped: stopped it" in err and "NOT" not in err, err
    assert sentinel > 0 and gone(sentinel)  # it did its work and left: no orphan
    # The figure for docs/drive.md (pytest -s shows it): SIGKILL to the sentinel's last write.
    last = max(e["t"] for e in _events(fakehw_env) if e["pid"] == sentinel)
    print(f"\nSIGKILL -> pins LOW and servos centred by the sentinel: {last - killed_at:.3f} s")


def _events(env: FakeHwEnv) -> list[dict]:
    from tests.fakehw.smbus2 import I2CWorld

    return env.board().store.history() + I2CWorld(env.state_path).store.history()


@pytest.mark.slow
def test_a_clean_exit_stands_the_sentinel_down_before_the_drive_exits(
        endpoints: tuple[str, str], detector: FakeDetector, fakehw_env: FakeHwEnv, tmp_path: Path) -> None:
    config_path = tmp_path / "rover.toml"
    config_path.write_text(CONFIG)
    drive, sentinel = following(config_path, endpoints, fakehw_env.env)
    assert sentinel > 0
    drive.send_signal(signal.SIGTERM)
    _, err = drive.communicate(timeout=WAIT_S)
    assert drive.returncode == 0, err
    assert not pid_alive(sentinel)  # reaped by the drive: nothing outlives a clean exit
    assert "sentinel" not in err
    assert not [e for e in _events(fakehw_env) if e["pid"] == sentinel]  # it never touched the hardware
    assert_safe_after_close(fakehw_env, PicarBConfig(ultrasonic_enabled=False, steering_centre=310))


def assert_safe_after_close(env: FakeHwEnv, config: PicarBConfig) -> None:
    board, chip = env.board(), env.chip()
    for pin in config.motor_pins:
        assert board.pin(pin).level in (0, None) and board.pin(pin).duty in (0, None)
    assert chip.pulse_ticks(config.servo("steering").channel) == 310


@pytest.mark.slow
def test_the_log_backend_is_stopped_too(endpoints: tuple[str, str], detector: FakeDetector, tmp_path: Path) -> None:
    config_path = tmp_path / "rover.toml"
    config_path.write_text("")
    drive, sentinel = following(config_path, endpoints, dict(os.environ), backend="log")
    drive.send_signal(signal.SIGKILL)
    out, err = drive.communicate(timeout=WAIT_S)
    tail = out.strip().splitlines()[-1]
    assert "close motors=stopped steering=300/300" in tail, out  # the dry run ends stopped, not at its last throttle
    assert sentinel > 0 and gone(sentinel)


@pytest.mark.slow
def test_a_dead_sentinel_stops_the_drive(endpoints: tuple[str, str], detector: FakeDetector, tmp_path: Path) -> None:
    config_path = tmp_path / "rover.toml"
    config_path.write_text("")
    drive, sentinel = following(config_path, endpoints, dict(os.environ), backend="log")
    assert sentinel > 0
    os.kill(sentinel, signal.SIGKILL)
    out, err = drive.communicate(timeout=WAIT_S)
    assert drive.returncode == 1, err
    assert "sentinel" in err and "died" in err
    assert "close motors=stopped" in out.strip().splitlines()[-1]


# --- unit: waiting and retrying -----------------------------------------------------------


def test_the_sentinel_stands_down_on_the_word_and_acts_on_end_of_file() -> None:
    read, write = os.pipe()
    os.write(write, STAND_DOWN)
    assert wait_for_parent(os.getpid(), read, None) is False
    os.close(write)
    os.close(read)
    # End of file and no pidfd: it waits until re-parented. A forked child of a subprocess shows it.
    code = ("import os, sys, time\n"
            "from rover.drive.sentinel import wait_for_parent\n"
            "r, w = os.pipe()\n"
            "parent = os.getpid()\n"
            "if os.fork() == 0:\n"
            "    os.close(w)\n"
            "    print('gone' if wait_for_parent(parent, r, None, poll_s=0.001) else 'stood down', flush=True)\n"
            "    os._exit(0)\n"
            "os.close(r)\n"
            "time.sleep(0.2)\n")
    # run() returns once the grandchild, which shares the stdout pipe, has printed and exited too
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT_S)
    assert done.returncode == 0 and done.stdout == "gone\n", done.stderr


def test_a_busy_part_is_retried_then_reported() -> None:
    answers = [["motors NOT stopped: busy"], ["motors NOT stopped: busy"], []]
    slept: list[float] = []
    assert stop_car({}, stop=lambda _s: answers.pop(0), sleep=slept.append) == []
    assert slept == [0.1, 0.1]
    always = stop_car({}, stop=lambda _s: ["servos NOT centred: no chip"], attempts=3, sleep=slept.append)
    assert always == ["servos NOT centred: no chip"]
