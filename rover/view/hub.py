"""The newest preview frame, handed to any number of web clients.

No queue per client: the stream reader replaces the one value and bumps a
version; each client waits for a version newer than the one it sent. A slow
client (a phone on bad Wi-Fi) thus skips frames instead of piling them up,
and never slows the reader or the other clients.
"""

from __future__ import annotations

import threading
from typing import Any


class Latest:
    """One value with a version number; readers block until a newer version exists."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value: Any = None
        self.version = 0

    def put(self, value: Any) -> None:
        with self._cond:
            self._value = value
            self.version += 1
            self._cond.notify_all()

    def get(self) -> tuple[int, Any]:
        with self._cond:
            return self.version, self._value

    def wait_newer(self, seen: int, timeout: float) -> tuple[int, Any]:
        """``(version, value)`` once ``version > seen``, or the current pair after ``timeout`` seconds."""
        with self._cond:
            self._cond.wait_for(lambda: self.version > seen, timeout)
            return self.version, self._value
