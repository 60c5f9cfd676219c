"""A file of whole lines, as a journal keeps them: written one line at a time, read up to a cut.

Writing (:class:`LineFile`): each line goes to the kernel in ``write(2)``
calls as soon as it is given (no buffer in this process), and the file is
``fsync``-ed every ``fsync_s`` seconds, so a crash of the program loses
nothing and a power cut loses at most the lines of the last ``fsync_s``
seconds (plus a line being written, cut short). When a write fails (disk
full, device gone), the file is cut back to the end of the last whole line
before the error is raised, so it never ends in half a line through our
doing; the error is an :class:`~rover.core.errors.OutputError` naming the file.

Reading (:func:`read_lines`): the lines of such a file with their numbers. A
last line without its newline is what a power cut (or another writer's full
disk) leaves behind: it is reported through :attr:`Lines.cut` instead of
being returned, so a reader replays what is whole, as ``journalctl`` does.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from rover.core.errors import OutputError

#: Seconds between two ``fsync`` of a :class:`LineFile` by default: what a power cut can lose at most.
FSYNC_S = 1.0


class LineFile:
    """An output file of whole lines; see the module docstring for what survives what."""

    def __init__(self, path: Path, *, fsync_s: float = FSYNC_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        #: Bytes of whole lines in the file: where it is cut back to after a failed write.
        self.size = 0
        self.lines = 0
        self._fsync_s = fsync_s
        self._clock = clock
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self._synced_at = clock()
        self._syncable = True

    def write_line(self, line: str) -> None:
        """Append ``line`` and a newline; OutputError (the file cut back to its whole lines) if it cannot be."""
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        data = memoryview(line.encode("utf-8") + b"\n")
        try:
            while data:
                written = os.write(self._fd, data)
                if written <= 0:  # not seen on Linux, but a zero write would loop forever
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                data = data[written:]
        except OSError as exc:
            self._cut_back()
            raise OutputError(f"{self.path}: {exc.strerror or exc}") from None
        self.size += len(line.encode("utf-8")) + 1
        self.lines += 1
        if self._fsync_s > 0 and self._clock() - self._synced_at >= self._fsync_s:
            self.sync()

    def sync(self) -> None:
        """Ask the kernel to put what was written on the device (``fsync``)."""
        self._synced_at = self._clock()
        if self._fd is None or not self._syncable:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EROFS, errno.ENOTSUP):
                self._syncable = False  # a character device or a pipe: nothing to sync
                return
            self._cut_back()
            raise OutputError(f"{self.path}: {exc.strerror or exc}") from None

    def _cut_back(self) -> None:
        try:
            os.ftruncate(self._fd, self.size)  # type: ignore[arg-type]
        except OSError:
            pass  # not a regular file (/dev/full, a pipe): nothing half-written to remove

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            if self._fsync_s > 0:
                self.sync()
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "LineFile":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass
class Lines:
    """The whole lines of a file, and the number of a cut last line if there was one."""

    path: Path
    cut: int | None = None  #: line number of a last line without its newline (not returned), else None


def read_lines(path: Path, lines: Lines | None = None) -> Iterator[tuple[int, str]]:
    """``(number, text)`` of every whole line of ``path`` (numbers from 1, newline removed).

    A last line without a newline is not yielded; its number goes to
    ``lines.cut`` when ``lines`` is given. OSError when the file cannot be read.
    """
    with Path(path).open("rb") as handle:
        number = 0
        for raw in handle:
            number += 1
            if not raw.endswith(b"\n"):
                if lines is not None:
                    lines.cut = number
                return
            yield number, raw[:-1].decode("utf-8")  # UnicodeDecodeError (a ValueError) for bytes that are not text
