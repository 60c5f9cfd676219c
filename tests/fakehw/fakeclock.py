"""A monotonic clock for the fakes that advances only when asked or read."""

from __future__ import annotations

import threading


class TickClock:
    """Seconds; each read advances ``step`` (like time passing while code polls), ``sleep`` advances more.

    Shared by the code under test and the fake hardware, it makes pulse timing
    exact: a polling loop sees the clock move by ``step`` per call, whatever
    the machine's load.
    """

    def __init__(self, start: float = 1000.0, step: float = 1e-6) -> None:
        self._now = start
        self.step = step
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self._now += self.step
            return self._now

    def peek(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        with self._lock:
            self._now += seconds

    advance = sleep
