"""The car's lock keeps rover-drive and rover-calibrate motors apart across users (review 3, H4).

Processes of different users (root drops to them after loading, as tests/test_endpoints_runtime.py's
rogue does) lock ``drive.lock`` in a directory standing in for ``/run/rover`` (0770, group "rover"):
one lock for all of them, made 0660 in the group even under the service's ``UMask=0077``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
GROUP = 4321  # stands in for the rover group
SERVICE = (1111, GROUP, [])  # User=rover Group=rover
MEMBER = (2222, 2222, [GROUP])  # a user in the rover group
OUTSIDER = (3333, 3333, [])

HOLDER = """
import encodings.ascii, os, sys  # loaded as root: the interpreter lives under /root (0700)
from pathlib import Path
from rover.hw import carlock
carlock.SYSTEM_LOCK_DIR = Path(sys.argv[1])
uid, gid, groups = int(sys.argv[2]), int(sys.argv[3]), [int(g) for g in sys.argv[4].split(",") if g]
os.umask(0o077)  # the service's UMask
os.setgroups(groups)
os.setgid(gid)
os.setuid(uid)
os.environ["XDG_RUNTIME_DIR"] = f"/tmp/xdg-{uid}"  # each user's own runtime directory
os.makedirs(os.environ["XDG_RUNTIME_DIR"], exist_ok=True)
try:
    held = carlock.lock_the_car("picar-b")
except Exception as exc:
    print(type(exc).__name__, exc.exit_code, exc, flush=True)
    sys.exit(0)
print("locked", flush=True)
sys.stdin.read()  # held until the test closes stdin
"""


@pytest.fixture
def run_rover() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the programs as different users")
    base = Path(tempfile.mkdtemp(prefix="s10lock-", dir="/tmp"))
    base.chmod(0o755)
    folder = base / "rover"
    folder.mkdir()
    os.chown(folder, SERVICE[0], GROUP)
    folder.chmod(0o770)
    yield folder
    subprocess.run(["rm", "-rf", str(base)], check=False)
    for uid in (SERVICE[0], MEMBER[0], OUTSIDER[0]):
        subprocess.run(["rm", "-rf", f"/tmp/xdg-{uid}"], check=False)


def holder(folder: Path, user: tuple[int, int, list[int]]) -> tuple[subprocess.Popen, str]:
    uid, gid, groups = user
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ROVER_RUNTIME_DIR", None)
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(uid), str(gid), ",".join(map(str, groups))],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               cwd="/")
    line = process.stdout.readline().strip()
    return process, line or process.communicate(timeout=30)[1]


def release(process: subprocess.Popen) -> None:
    process.communicate(input="", timeout=30)


def test_the_service_and_a_user_in_the_group_take_one_lock(run_rover: Path) -> None:
    service, line = holder(run_rover, SERVICE)
    try:
        assert line == "locked", line
        lock = run_rover / "drive.lock"
        info = lock.stat()
        assert (info.st_mode & 0o777, info.st_gid) == (0o660, GROUP)  # not 0600, despite UMask=0077
        member, line = holder(run_rover, MEMBER)
        release(member)
        assert line.startswith("RoverError 1 another rover-drive") and str(lock) in line, line
        root, line = holder(run_rover, (0, 0, []))  # sudo rover-calibrate motors
        release(root)
        assert line.startswith("RoverError 1 another rover-drive"), line
    finally:
        release(service)
    member, line = holder(run_rover, MEMBER)  # the service stopped: its lock file stays, the member may take it
    release(member)
    assert line == "locked", line


def test_a_user_outside_the_group_is_refused_not_given_a_lock_of_its_own(run_rover: Path) -> None:
    service, line = holder(run_rover, SERVICE)
    try:
        assert line == "locked", line
        outsider, line = holder(run_rover, OUTSIDER)
        release(outsider)
        assert line.startswith("ConfigError 78 cannot open the car's lock") and "usermod -aG rover" in line, line
        assert "ROVER_RUNTIME_DIR" not in line
    finally:
        release(service)


def test_a_lock_root_made_is_the_services_too(run_rover: Path) -> None:
    root, line = holder(run_rover, (0, 0, []))  # sudo on a fresh boot, before the service ever ran
    release(root)
    assert line == "locked", line
    assert (run_rover / "drive.lock").stat().st_gid == GROUP  # the directory's group, not root's
    service, line = holder(run_rover, SERVICE)
    release(service)
    assert line == "locked", line


def test_a_lock_the_user_may_only_read_still_locks(run_rover: Path) -> None:
    lock = run_rover / "drive.lock"
    lock.touch()
    os.chown(lock, SERVICE[0], GROUP)
    lock.chmod(0o640)  # readable by the group, not writable
    member, line = holder(run_rover, MEMBER)
    try:
        assert line == "locked", line
        service, line = holder(run_rover, SERVICE)
        release(service)
        assert line.startswith("RoverError 1 another rover-drive"), line
    finally:
        release(member)
