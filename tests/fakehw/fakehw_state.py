"""State shared by the fake vendor modules: in memory, or in a file across processes.

The file (named by ``ROVER_FAKEHW_STATE``) holds one JSON object per section
(``gpio``, ``i2c``): what the hardware itself would retain when a process
dies. Every change is a read-modify-write under an exclusive ``flock``, so
processes take turns. The history of everything the hardware saw is appended
to ``<file>.history.jsonl``, one JSON event per line.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

ENV_VAR = "ROVER_FAKEHW_STATE"


class Store:
    """One section of the fake hardware's state plus its event history."""

    def __init__(self, path: str | os.PathLike[str] | None, section: str, initial: Callable[[], dict]) -> None:
        self.path = Path(path) if path else None
        self.section = section
        self._initial = initial
        self._lock = threading.RLock()
        self._state: dict | None = None if self.path else initial()
        self._history: list[dict] = []
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[dict]:
        """The section's state, saved when the block ends without an error."""
        with self._lock:
            if self.path is None:
                assert self._state is not None
                yield self._state
                return
            with self._file_lock():
                everything = self._load_all()
                state = everything.get(self.section) or self._initial()
                yield state
                everything[self.section] = state
                tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(everything))
                os.replace(tmp, self.path)

    def snapshot(self) -> dict:
        with self.transaction() as state:
            return copy.deepcopy(state)

    def record(self, event: dict[str, Any]) -> None:
        event = {"section": self.section, "pid": os.getpid(), **event}
        with self._lock:
            if self.path is None:
                self._history.append(event)
                return
            with self._file_lock():
                with open(self._history_path(), "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(event) + "\n")

    def history(self) -> list[dict]:
        """Every event of this section, oldest first (across processes for a file)."""
        with self._lock:
            if self.path is None:
                return list(self._history)
            try:
                lines = self._history_path().read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                return []
        events = [json.loads(line) for line in lines if line.strip()]
        return [e for e in events if e.get("section") == self.section]

    def _history_path(self) -> Path:
        assert self.path is not None
        return self.path.with_name(self.path.name + ".history.jsonl")

    def _load_all(self) -> dict:
        assert self.path is not None
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        return json.loads(text) if text.strip() else {}

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        assert self.path is not None
        if self._depth:  # already held by this thread (flock is per open file, not re-entrant)
            yield
            return
        with open(self.path.with_name(self.path.name + ".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                fcntl.flock(handle, fcntl.LOCK_UN)


def default_path() -> str | None:
    """The state file named by ``ROVER_FAKEHW_STATE``, or None (in memory)."""
    return os.environ.get(ENV_VAR) or None


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` exists and is not a zombie (a SIGKILLed child not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
