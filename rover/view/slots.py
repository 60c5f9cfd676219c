"""The open video and event streams of the view, at most ``capacity``, readers first.

Pure bookkeeping with an injected clock, no sockets: the server marks each
write to a stream (:meth:`Slot.writing`), so a stream whose client stopped
reading is one whose write has been blocked for a while (its socket buffers
are full). When every slot is taken, a new stream takes the slot of the one
that has been blocked for longest, if that one has been blocked for at least
``stall_s``: a viewer who reads is preferred over one who stopped. The
evicted stream's ``on_evict`` is called (the server shuts its socket down,
which ends its blocked write at once). With no stalled stream, a newcomer is
refused (the server answers 503), so viewers who read are never displaced.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable, Iterator


class Slot:
    """One open stream. :meth:`writing` around each write; :meth:`close` when it ends (idempotent)."""

    def __init__(self, owner: "StreamSlots", on_evict: Callable[[], object]) -> None:
        self._owner = owner
        self._on_evict = on_evict
        #: Clock time at which the pending write began; None while no write is pending.
        self.blocked_since: float | None = None
        self.evicted = False

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._owner._lock:
            self.blocked_since = self._owner._clock()
        try:
            yield
        finally:
            with self._owner._lock:
                self.blocked_since = None

    def close(self) -> None:
        self._owner._release(self)


class StreamSlots:
    """At most ``capacity`` open streams; see the module docstring for who gets a slot when full."""

    def __init__(self, capacity: int, stall_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self.stall_s = stall_s
        self._clock = clock
        self._lock = threading.Lock()
        self._open: list[Slot] = []
        #: Streams evicted so far (for logs and tests).
        self.evictions = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def open(self, on_evict: Callable[[], object]) -> Slot | None:
        """A slot for a new stream, evicting the longest-stalled one if full; None if none is stalled."""
        victim = None
        with self._lock:
            if len(self._open) >= self.capacity:
                now = self._clock()
                stalled = [s for s in self._open if s.blocked_since is not None and now - s.blocked_since >= self.stall_s]
                if not stalled:
                    return None
                victim = min(stalled, key=lambda s: s.blocked_since)  # type: ignore[arg-type, return-value]
                victim.evicted = True
                self._open.remove(victim)
                self.evictions += 1
            slot = Slot(self, on_evict)
            self._open.append(slot)
        if victim is not None:
            victim._on_evict()
        return slot

    def _release(self, slot: Slot) -> None:
        with self._lock:
            if slot in self._open:
                self._open.remove(slot)
