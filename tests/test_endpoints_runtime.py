"""Rover's own streams meet in a runtime directory: who may command the car (issue 14, item 7).

Unit tests of the resolution of ``ipc://NAME`` endpoints, then over real
ZeroMQ sockets: a local process of another user cannot bind the endpoint the
drive follows by default (before, any process could bind the detector's
loopback port while the detector was down, and was followed 0.40 s later),
and the README's subscriber example reads the loopback TCP stream that
``stream.local_bind`` turns on.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest
import zmq

from rover.core import endpoints
from rover.core.errors import ConfigError
from rover.detector.publisher import DetectionPublisher
from rover.drive.config import DriveConfig
from tests.test_drive_cli import WAIT_S, FakeDetector, StatusWatcher, start_drive
from tests.test_drive_fakes import detection_bytes, person

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534


@pytest.fixture
def short_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="rvep-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# --- resolution ------------------------------------------------------------------------


def test_the_defaults_are_ipc_sockets_in_the_runtime_directory(short_dir: Path) -> None:
    env = {endpoints.RUNTIME_DIR_ENV: str(short_dir / "rt")}
    assert DriveConfig().connect == endpoints.DETECTIONS == "ipc://detections"
    assert endpoints.resolve("ipc://detections", env) == f"ipc://{short_dir}/rt/detections"
    assert not (short_dir / "rt").exists()  # connecting creates nothing
    assert endpoints.resolve("ipc://drive", env, create=True) == f"ipc://{short_dir}/rt/drive"
    assert stat.S_IMODE((short_dir / "rt").stat().st_mode) == 0o700  # made private when rover makes it


@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:5555", "ipc:///run/rover/detections", "ipc://@abstract",
                                      "inproc://x", "nonsense"])
def test_explicit_endpoints_are_used_as_given(endpoint: str) -> None:
    assert endpoints.resolve(endpoint, {}) == endpoint  # old tcp:// configs keep working


def test_the_system_directory_is_used_when_this_user_may_bind_there_else_the_session(short_dir: Path) -> None:
    system = short_dir / "run-rover"
    session = short_dir / "user"
    env = {"XDG_RUNTIME_DIR": str(session)}
    assert endpoints.runtime_dir(env, system) == session / "rover"  # no /run/rover: started by hand
    system.mkdir(mode=0o770)
    assert endpoints.runtime_dir(env, system) == system  # the services' directory, writable by us
    assert endpoints.runtime_dir({endpoints.RUNTIME_DIR_ENV: "/x", **env}, system) == Path("/x")
    with pytest.raises(ConfigError, match="ROVER_RUNTIME_DIR"):
        endpoints.runtime_dir({}, short_dir / "absent")


def test_a_path_too_long_for_a_unix_socket_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="longer than a Unix socket path"):
        endpoints.resolve("ipc://detections", {endpoints.RUNTIME_DIR_ENV: "/" + "d" * 100})


@pytest.mark.slow
def test_a_bound_socket_lets_the_directory_decide_who_connects(short_dir: Path) -> None:
    os.environ[endpoints.RUNTIME_DIR_ENV] = str(short_dir)  # restored by the conftest's fixture
    old = os.umask(0o077)  # the units' UMask
    context = zmq.Context()
    socket = context.socket(zmq.PUB)
    try:
        bound = endpoints.bind(socket, "ipc://detections")
        assert bound == f"ipc://{short_dir}/detections"
        assert stat.S_IMODE(os.stat(short_dir / "detections").st_mode) == endpoints.SOCKET_MODE
    finally:
        os.umask(old)
        socket.close(0)
        context.term()


# --- the rogue ---------------------------------------------------------------------------

# Starts as root (the interpreter lives under /root), loads everything, then
# becomes `nobody` (no groups) before it binds: a local process of another user.
ROGUE = """
import os, sys, time, zmq
endpoint, payload_file = sys.argv[1], sys.argv[2]
payloads = open(payload_file, "rb").read().split(b"\\n--\\n")
ctx = zmq.Context()
pub = ctx.socket(zmq.PUB)
pub.setsockopt(zmq.LINGER, 0)
os.setgroups([])
os.setgid(NOBODY)
os.setuid(NOBODY)
try:
    pub.bind(endpoint)
except zmq.ZMQError as exc:
    print("refused:", exc, flush=True)
    sys.exit(0)
print("bound", flush=True)
for i in range(30):  # 3 s of a person in front of the car, captured just now
    pub.send(payloads[i % len(payloads)].replace(b"CAPTURE", str(time.monotonic_ns() - 20_000_000).encode()))
    time.sleep(0.1)
""".replace("NOBODY", str(NOBODY))


@pytest.mark.slow
def test_a_local_process_of_another_user_cannot_command_the_car(short_dir: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the rogue as another user (nobody)")
    runtime = short_dir / "run"  # stands in for /run/rover: 0770, owner and group of the rover programs
    runtime.mkdir()
    runtime.chmod(0o770)
    env = {**os.environ, endpoints.RUNTIME_DIR_ENV: str(runtime)}
    config = tmp_path / "rover.toml"
    config.write_text("")
    target = endpoints.resolve(DriveConfig().connect, env)  # what the drive follows by default
    payload = detection_bytes([person(0.5, 0.3)], t_capture_s=0.0)
    marked = re.sub(rb'"t_capture_ns":\d+', b'"t_capture_ns":CAPTURE', payload)
    assert b"CAPTURE" in marked
    payload_file = tmp_path / "payloads"
    payload_file.write_bytes(marked)

    drive = start_drive("--config", str(config), "--backend", "log", env=env)  # the default endpoints
    watcher = StatusWatcher(endpoints.resolve(DriveConfig().publish, env))
    detector = None
    try:
        watcher.wait_for(lambda s: s.state == "SAFE", drive)
        rogue = subprocess.run([sys.executable, "-c", ROGUE, target, str(payload_file)], env=env,
                               capture_output=True, text=True, timeout=WAIT_S)
        assert rogue.returncode == 0, rogue.stderr
        assert rogue.stdout.startswith("refused: Permission denied"), rogue.stdout
        seen = []
        deadline = time.monotonic() + 1.0  # the drive armed 0.40 s after a rogue bind before
        while time.monotonic() < deadline:
            if watcher.socket.poll(50):
                seen.append(watcher.socket.recv())
        assert seen and all(b'"state":"SAFE"' in raw for raw in seen)
        # The car's own detector (the drive's user) is followed on the same endpoint: the test is not vacuous.
        detector = FakeDetector(target, lambda: [person(centre_x=0.5, height=0.3)])
        watcher.wait_for(lambda s: s.state in ("ARMED", "FOLLOWING"), drive)
    finally:
        watcher.close()
        if detector is not None:
            detector.close()
        drive.terminate()
        drive.communicate(timeout=WAIT_S)


# --- the README's subscriber example ------------------------------------------------------


def readme_subscriber() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## The detection stream"):]
    return section[section.index("```python\n") + len("```python\n"):section.index("```\n", section.index("```python\n"))]


@pytest.mark.slow
def test_the_readme_subscriber_reads_the_loopback_stream_local_bind_turns_on() -> None:
    code = readme_subscriber()
    match = re.search(r'sub\.connect\("(tcp://127\.0\.0\.1:\d+)"\)', code)
    assert match, "the README's example connects to the loopback TCP stream of stream.local_bind"
    with DetectionPublisher("ipc://detections", local_bind="tcp://127.0.0.1:*") as publisher:
        assert publisher.address.startswith("ipc://") and publisher.local_address.startswith("tcp://127.0.0.1:")
        runnable = code.replace(match.group(1), publisher.local_address)  # the test's own port, never a fixed one
        example = subprocess.Popen([sys.executable, "-c", runnable], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        try:
            deadline = time.monotonic() + WAIT_S
            line = ""
            os.set_blocking(example.stdout.fileno(), False)  # type: ignore[union-attr]
            while not line and time.monotonic() < deadline:
                publisher.send_raw(detection_bytes([person(0.5, 0.3)], t_capture_s=1.0, seq=7))
                time.sleep(0.05)
                line = example.stdout.readline()  # type: ignore[union-attr]
                assert example.poll() is None, example.stderr.read()  # type: ignore[union-attr]
        finally:
            example.kill()
            example.communicate()
    assert line.startswith("7 ok [{"), line  # seq, status and the people, as the example prints them
