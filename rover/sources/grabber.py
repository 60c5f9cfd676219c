"""The capture thread: reads a :class:`FrameSource`, keeps only the newest frame.

Capture runs in its own thread so the service loop never waits on a camera:
it gets the newest frame at once, and it keeps publishing status (and feeding
systemd's watchdog) while a camera is being retried. OpenCV's V4L2 devices
and network streams queue frames first in, first out, so the thread also
drains them at the source's rate; picamera2 already keeps only its newest
completed frame (docs/detector.md). A source that knows when its sensor took
the image (picamera2's ``SensorTimestamp``, as ``last_capture_ns``) gives
the frame that stamp. The service asks for :meth:`FrameGrabber.next`: it
gets the newest frame it has not seen; frames overwritten before anyone took
them are counted in :attr:`FrameGrabber.skipped`.

A source that is not ``live`` (unpaced file or folder) is read one frame per
request instead, so no frame is skipped and none waits in the slot.

Failures: a CameraError on open or read (for picamera2 also a capture that
timed out, ``camera.capture_timeout_s``) closes the source and retries it
with doubling waits (``retry_backoff_s`` up to 5 s); after
``retry_timeout_s`` without a frame the grabber gives up (state ``failed``).
Any other error is fatal at once (a ConfigError keeps its exit code 78).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from rover.core.errors import CameraError, RoverError
from rover.sources.base import Frame, FrameSource, SourceEnded

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0
#: A retry loop counts as alive (see :meth:`FrameGrabber.retrying_actively`)
#: while its last failed attempt is at most this much older than the longest wait.
RETRY_SLACK_S = 3.0

#: A source's own capture time (``last_capture_ns``) older than this on arrival is taken
#: for a different clock, and the frame is stamped on arrival instead.
MAX_STAMP_AGE_NS = 1_000_000_000

#: Grabber states, as the service maps them to message statuses.
STARTING, RUNNING, RETRYING, ENDED, FAILED, STOPPED = "starting", "running", "retrying", "ended", "failed", "stopped"


class FrameGrabber:
    """Owns a source and a thread; hands out the newest frame.

    ``clock`` is monotonic seconds (retry deadlines), ``clock_ns`` the capture
    stamp (``time.monotonic_ns``), ``wall`` unix seconds; ``sleep`` waits
    between retries (default: the stop event, so :meth:`stop` interrupts it).
    """

    def __init__(
        self,
        source: FrameSource,
        *,
        retry_timeout_s: float = 30.0,
        retry_backoff_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.source = source
        self.retry_timeout_s = retry_timeout_s
        self.retry_backoff_s = retry_backoff_s
        self._clock = clock
        self._clock_ns = clock_ns
        self._wall = wall
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._requested = False
        self._seq = 0
        self._thread: threading.Thread | None = None
        self.state = STARTING
        #: Frames captured, and frames overwritten before the service took them.
        self.captured = 0
        self.skipped = 0
        #: The last camera problem (while retrying), or why the grabber failed.
        self.error: BaseException | None = None
        #: ``clock`` time of the last failed open or read while retrying.
        self.last_failure: float | None = None

    # -- the service's side -------------------------------------------------
    def start(self) -> "FrameGrabber":
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)
        self._thread.start()
        return self

    def next(self, timeout: float) -> Frame | None:
        """The newest frame not yet returned, waiting up to ``timeout`` s; None if none came."""
        with self._cond:
            if not self.source.live:
                self._requested = True
                self._cond.notify_all()
            self._cond.wait_for(self._has_news, timeout)
            frame, self._latest = self._latest, None
            return frame

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread and release the source (idempotent)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                # Stuck inside the backend's read: closing under it could crash the
                # backend; the process exit releases the device instead.
                log.warning("%s did not return from a read within %.1f s; leaving it to process exit", self.source.name, timeout)
                return
        else:
            self._close_source()  # never started: the thread did not own it yet
        if self.state not in (ENDED, FAILED):
            self.state = STOPPED

    def retrying_actively(self) -> bool:
        """True while the camera is being retried and the attempts keep coming.

        Retrying is bounded (``retry_timeout_s``, then exit 1), so the service
        may count it as progress for systemd's watchdog; an attempt that hangs
        inside the backend (an ``open`` that never returns) stops counting
        after the longest backoff plus :data:`RETRY_SLACK_S`.
        """
        last = self.last_failure
        return self.state == RETRYING and last is not None and self._clock() - last <= MAX_BACKOFF_S + RETRY_SLACK_S

    @property
    def finished(self) -> bool:
        """True when no more frames will ever come (ended, failed or stopped)."""
        return self.state in (ENDED, FAILED, STOPPED)

    def _has_news(self) -> bool:
        return self._latest is not None or self._stop.is_set() or self.state in (ENDED, FAILED)

    # -- the thread's side --------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the thread's top level: hand it to the service, never die silently
            self.error = exc
            self._set_state(FAILED)
        finally:
            self._close_source()

    def _loop(self) -> None:
        opened = False
        failing_since: float | None = None
        backoff = self.retry_backoff_s
        while not self._stop.is_set():
            try:
                if not opened:
                    self.source.open()
                    opened = True
                if not self.source.live and not self._wait_for_request():
                    return
                image = self.source.read()
            except SourceEnded:
                log.info("%s ended after %d frames", self.source.name, self.captured)
                self._set_state(ENDED)
                return
            except CameraError as exc:
                now = self._clock()
                if failing_since is None:
                    failing_since = now
                self.error, self.last_failure = exc, now
                self._close_source()
                opened = False
                if now - failing_since >= self.retry_timeout_s:
                    # The service logs this one line and exits 1; systemd restarts it.
                    self.error = CameraError(f"{exc}; gave up after {now - failing_since:.1f} s of retries (camera.retry_timeout_s)")
                    self._set_state(FAILED)
                    return
                log.warning("%s; retrying in %.1f s", exc, backoff)
                self._set_state(RETRYING)
                self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            except RoverError as exc:
                self.error = exc
                self._set_state(FAILED)
                return
            if failing_since is not None:
                log.info("%s delivers frames again", self.source.name)
                failing_since, backoff, self.error = None, self.retry_backoff_s, None
            self._publish(image)

    def _wait_for_request(self) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: self._requested or self._stop.is_set())
            self._requested = False
            return not self._stop.is_set()

    def _publish(self, image) -> None:
        now_ns, wall = self._clock_ns(), self._wall()
        stamp = getattr(self.source, "last_capture_ns", None)
        if stamp is None or not 0 <= now_ns - stamp <= MAX_STAMP_AGE_NS:
            stamp = now_ns  # no sensor time, or not on our clock: stamp it on arrival
        frame = Frame(seq=self._seq, t_capture_ns=stamp, t_capture=wall - (now_ns - stamp) / 1e9, image=image)
        self._seq += 1
        with self._cond:
            if self._latest is not None:
                self.skipped += 1
            self._latest = frame
            self.captured += 1
            self.state = RUNNING
            self._cond.notify_all()

    def _set_state(self, state: str) -> None:
        with self._cond:
            self.state = state
            self._cond.notify_all()

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception as exc:  # noqa: BLE001 - releasing must not mask the reason we stopped
            log.warning("closing %s failed: %s", self.source.name, exc)
