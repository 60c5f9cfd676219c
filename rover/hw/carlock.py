"""The car's lock: one program commands a kit at a time (``rover-drive``, ``rover-calibrate motors``).

An exclusive ``flock`` on ``drive.lock``, held for as long as the returned
file stays open (the kernel drops it when the process dies, however it
dies). Moved here from :mod:`rover.drive.__main__` (which re-exports it) so
that the hardware tools beside the drive take the same lock.

One lock per car, whoever runs: ``/run/rover/drive.lock`` whenever
``/run/rover`` exists (the service's ``RuntimeDirectory``, ``rover:rover``
0770, kept after a stop), for the service, for a user in the ``rover``
group and for root alike. The file is made ``0660`` in the directory's
group (the service's ``UMask=0077`` would make it 0600, and root's would
make it root's alone: then the other side could not open it). A user who
may read it but not write it still locks it (``flock`` works on a
read-only descriptor). As root, the directory is made (0770, group
``rover``) when the group exists and the directory does not, so that a
``sudo rover-calibrate motors`` on a fresh boot and a later service take the
same lock. Only without ``/run/rover`` (no service installed, a
development machine) is the lock in the user's runtime directory.
"""

from __future__ import annotations

import fcntl
import grp
import os
import tempfile
from pathlib import Path
from typing import Any

from rover.core import endpoints
from rover.core.errors import ConfigError, RoverError
from rover.hw.kits import KITS

#: The lock a drive holds for its whole life: one drive per car.
LOCK_NAME = "drive.lock"
#: The service's runtime directory: the lock lives there whenever it exists (read at each call: tests move it).
SYSTEM_LOCK_DIR = endpoints.SYSTEM_RUNTIME_DIR
#: The group the service runs as (systemd/rover-drive.service, systemd/install.sh).
GROUP = "rover"
MODE = 0o660


def lock_path() -> Path:
    """Where the car's lock is: ``SYSTEM_LOCK_DIR/drive.lock`` when that directory exists (made by root if the
    ``rover`` group exists), else in this user's runtime directory (or the temporary directory)."""
    system = Path(SYSTEM_LOCK_DIR)
    if not system.is_dir() and os.geteuid() == 0:
        _make_system_dir(system)
    if system.is_dir():
        return system / LOCK_NAME
    try:
        folder = endpoints.runtime_dir(system=system)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (ConfigError, OSError):
        return Path(tempfile.gettempdir()) / f"rover-drive-{os.getuid()}.lock"
    return folder / LOCK_NAME


def lock_the_car(backend: str) -> Any:
    """An exclusive ``flock`` on :func:`lock_path`, held while the returned file stays open.

    RoverError (exit 1, like a busy endpoint) when another rover-drive (or
    rover-calibrate motors) holds it: two programs must never command one
    car. ConfigError (78) when this user may not open it at all. The
    dry-run backends (log, sim) command no car and take no lock.
    """
    if backend not in KITS:
        return None
    path = lock_path()
    handle, writable = _open(path)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RoverError(f"another rover-drive (pid {holder}) is driving this car (or rover-calibrate motors; it holds {path}): "
                         "stop it first (sudo systemctl stop rover-drive, or Ctrl-C in its terminal)") from None
    if writable:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
    return handle


def _open(path: Path) -> tuple[Any, bool]:
    """The lock file opened read-write (made 0660 in the directory's group if new or ours), else read-only."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, MODE)
    except PermissionError:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            try:
                mode = path.stat().st_mode & 0o777
            except OSError:
                mode = None
            if mode is not None and not mode & 0o040:  # an older rover made it for its owner alone
                raise ConfigError(f"cannot open the car's lock {path} ({exc.strerror}): it is {mode:04o}, made by an "
                                  f"older rover for its owner alone: sudo chmod 0660 {path}") from None
            raise ConfigError(
                f"cannot open the car's lock {path} ({exc.strerror}): add this user to the {GROUP} group "
                f"(sudo usermod -aG {GROUP} $USER, then log in again), or run this with sudo") from None
        return os.fdopen(fd, "r", encoding="ascii"), False
    except OSError as exc:
        raise ConfigError(f"cannot open the car's lock {path} ({exc.strerror})") from None
    info = os.fstat(fd)
    if info.st_uid == os.geteuid():  # ours (or just made): every user of the car may open it
        try:
            folder_gid = path.parent.stat().st_gid
            if info.st_gid != folder_gid:
                os.fchown(fd, -1, folder_gid)
            if info.st_mode & 0o777 != MODE:
                os.fchmod(fd, MODE)
        except OSError:
            pass  # not a member of the directory's group: the lock still works for this user
    return os.fdopen(fd, "r+", encoding="ascii"), True


def _make_system_dir(system: Path) -> None:
    """As root: the service's runtime directory, 0770 in the ``rover`` group (systemd makes it rover:rover at the
    service's start); nothing when there is no such group (no service installed)."""
    try:
        gid = grp.getgrnam(GROUP).gr_gid
    except KeyError:
        return
    try:
        system.mkdir(mode=0o770)
        os.chown(system, -1, gid)
        os.chmod(system, 0o770)
    except OSError:
        pass  # made meanwhile, or /run not writable: lock_path takes what exists
