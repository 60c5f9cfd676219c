"""The car's lock: one program commands a kit at a time (``rover-drive``, ``rover-calibrate motors``).

An exclusive ``flock`` on ``drive.lock`` in rover's runtime directory, held
for as long as the returned file stays open (the kernel drops it when the
process dies, however it dies). Moved here from :mod:`rover.drive.__main__`
(which re-exports it) so that the hardware tools beside the drive take the
same lock.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path
from typing import Any

from rover.core import endpoints
from rover.core.errors import ConfigError, RoverError
from rover.hw.kits import KITS

#: The lock a drive holds for its whole life, in rover's runtime directory: one drive per car.
LOCK_NAME = "drive.lock"


def lock_the_car(backend: str) -> Any:
    """An exclusive ``flock`` on ``LOCK_NAME``, held while the returned file stays open.

    RoverError (exit 1, like a busy endpoint) when another rover-drive (or
    rover-calibrate motors) holds it: two programs must never command one
    car. The dry-run backends (log, sim) command no car and take no lock.
    """
    if backend not in KITS:
        return None
    try:
        folder = endpoints.runtime_dir()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (ConfigError, OSError):
        folder = Path(tempfile.gettempdir())  # no runtime directory (every endpoint given explicitly)
    path = folder / (LOCK_NAME if folder != Path(tempfile.gettempdir()) else f"rover-drive-{os.getuid()}.lock")
    try:
        handle = open(path, "a+", encoding="ascii")
    except OSError as exc:
        raise ConfigError(f"cannot open the drive's lock file {path} ({exc.strerror}): set "
                          f"{endpoints.RUNTIME_DIR_ENV} to a writable directory") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RoverError(f"another rover-drive (pid {holder}) is driving this car (or rover-calibrate motors; it holds {path}): "
                         "stop it first (sudo systemctl stop rover-drive, or Ctrl-C in its terminal)") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
