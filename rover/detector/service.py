"""The detector's main loop: frames in, one ZeroMQ message per processed frame out.

:class:`DetectorService` ties a :class:`~rover.sources.grabber.FrameGrabber`,
a :class:`~rover.detector.model.Detector`-like object and a publisher
together; everything time-related goes through the injected clocks, so the
loop is tested with fakes and exact times.

What it promises:

- exactly one ``ok`` message per processed frame, also when nothing was
  detected; message ``seq`` strictly increases;
- while no frame arrives, a status message (``starting``, ``no_frame``,
  ``camera_error``, ``source_ended``) every ``status_interval_s``;
- systemd: ``READY=1`` after the first processed frame (the model was warmed
  up before), ``WATCHDOG=1`` only while the loop makes progress: frames
  processed, or camera retries that keep coming (bounded: they end in a
  logged exit 1 after ``camera.retry_timeout_s``, so the unit's short
  ``WatchdogSec`` does not pre-empt that exit). Status messages alone do not
  feed it, so a camera that hangs (a read or an open that never returns)
  lets systemd's watchdog fire;
- a ``STATUS=`` line with the frame rate and a summary log line every
  ``summary_interval_s``;
- with ``preview`` (the live view's ``PreviewPublisher.offer``), each
  processed frame is offered after its message is published, with the
  message's ``seq``; the offer only hands over a reference (see rover.detector.preview).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Protocol

from rover.core.errors import EXIT_FAILURE, EXIT_OK, RoverError
from rover.core.messages import DetectionMessage, FrameInfo, ModelRef, Timing
from rover.core.sdnotify import Notifier
from rover.detector.stats import FrameStats, RateMeter, Summary
from rover.sources import grabber as g
from rover.sources.base import Frame

log = logging.getLogger(__name__)

#: What a message says while the grabber is in each state and no frame comes.
STATUS_OF_STATE = {
    g.STARTING: "starting",
    g.RUNNING: "no_frame",
    g.RETRYING: "camera_error",
    g.ENDED: "source_ended",
    g.FAILED: "camera_error",
    g.STOPPED: "stopping",
}


class Publisher(Protocol):
    def publish(self, message: DetectionMessage) -> bool: ...


class DetectorService:
    """Runs until stopped, ``max_frames`` is reached, the source ends (if asked) or fails."""

    def __init__(
        self,
        detector,
        grabber: g.FrameGrabber,
        publisher: Publisher,
        *,
        notifier: Notifier | None = None,
        status_interval_s: float = 0.25,
        summary_interval_s: float = 5.0,
        max_frames: int = 0,
        exit_at_end: bool = False,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        observer: Callable[[FrameStats], None] | None = None,
        preview: Callable[[Frame, str, int], object] | None = None,
    ) -> None:
        self.detector = detector
        self.grabber = grabber
        self.publisher = publisher
        self.notifier = notifier or Notifier({})
        self.status_interval_s = status_interval_s
        self.summary_interval_s = summary_interval_s
        self.max_frames = max_frames
        self.exit_at_end = exit_at_end
        self.stop = stop or threading.Event()
        self._clock = clock
        self._clock_ns = clock_ns
        self._observer = observer
        # Offered each processed frame and its message seq (rover.detector.preview.PreviewPublisher.offer).
        self._preview = preview
        info = detector.info
        # labels (background excluded): lets a subscriber tell "no person" from "cannot see persons".
        self._model = ModelRef(name=info.architecture, precision=info.precision, sha256=info.source_sha256,
                               labels=tuple(info.labels[1:]))
        self._rate = RateMeter(5.0)
        self._summary = Summary()
        self._seq = 0
        self.processed = 0
        self.dropped_nonfinite = 0
        self.ready = False
        self.watchdog_pings = 0
        interval = self.notifier.watchdog_interval
        self._watchdog_every = interval if interval is not None else 1.0

    # -- the loop -------------------------------------------------------------
    def run(self) -> int:
        """Process frames until told to stop; return the process exit code."""
        clock = self._clock
        now = clock()
        last_message = now - self.status_interval_s  # a status message goes out at once
        last_summary = now
        last_ping: float | None = None
        grabber = self.grabber
        try:
            while not self.stop.is_set():
                t_wait = clock()
                frame = grabber.next(self.status_interval_s)
                now = clock()
                if frame is not None:
                    self._process(frame, (now - t_wait) * 1e3)
                    now = last_message = clock()
                    if not self.ready:
                        self.ready = True
                        self.notifier.ready(f"processing frames from {grabber.source.name}")
                        log.info("ready: first frame processed")
                    if last_ping is None or now - last_ping >= self._watchdog_every:
                        self.notifier.watchdog()
                        self.watchdog_pings += 1
                        last_ping = now
                    if self.max_frames and self.processed >= self.max_frames:
                        log.info("processed %d frames (max_frames): stopping", self.processed)
                        return EXIT_OK
                else:
                    state = grabber.state
                    if state == g.FAILED:
                        error = grabber.error
                        log.error("frame source failed: %s", error)
                        return error.exit_code if isinstance(error, RoverError) else EXIT_FAILURE
                    if state == g.ENDED and self.exit_at_end:
                        log.info("source ended (exit_at_end): stopping")
                        return EXIT_OK
                    if now - last_message >= self.status_interval_s:
                        self._publish_status(STATUS_OF_STATE.get(state, "no_frame"))
                        last_message = now
                    if grabber.retrying_actively() and (last_ping is None or now - last_ping >= self._watchdog_every):
                        self.notifier.watchdog()  # a bounded retry is progress; a hung one is not
                        self.watchdog_pings += 1
                        last_ping = now
                    if grabber.finished:
                        # No frame will come: wait out the interval rather than spin.
                        self.stop.wait(max(0.0, last_message + self.status_interval_s - clock()))
                if now - last_summary >= self.summary_interval_s:
                    fps = self._rate.rate(now)
                    log.info("%s", self._summary.line(fps, grabber.skipped, self.dropped_nonfinite))
                    self.notifier.status(f"{fps:.1f} fps, {self.processed} frames, {grabber.skipped} skipped")
                    last_summary = now
            return EXIT_OK
        finally:
            self._publish_status("stopping")
            self.notifier.stopping()

    # -- one frame ------------------------------------------------------------
    def _process(self, frame, wait_ms: float) -> None:
        result = self.detector.detect(frame.image, self.grabber.source.order)
        t0 = self._clock()
        self.processed += 1
        self.dropped_nonfinite += result.dropped_nonfinite
        self._rate.add(t0)
        t_publish_ns = self._clock_ns()
        capture_to_publish = max(0.0, (t_publish_ns - frame.t_capture_ns) / 1e6)
        message = DetectionMessage(
            seq=self._next_seq(),
            t_publish_ns=t_publish_ns,
            status="ok",
            model=self._model,
            fps=self._rate.rate(t0),
            frame=FrameInfo(frame.seq, frame.t_capture_ns, frame.t_capture, frame.width, frame.height),
            timing_ms=Timing(result.preprocess_ms, result.inference_ms, result.postprocess_ms, capture_to_publish),
            detections=result.detections,
        )
        self.publisher.publish(message)
        if self._preview is not None:
            self._preview(frame, self.grabber.source.order, message.seq)
        stats = FrameStats(
            frame_seq=frame.seq,
            wait_ms=wait_ms,
            preprocess_ms=result.preprocess_ms,
            inference_ms=result.inference_ms,
            postprocess_ms=result.postprocess_ms,
            publish_ms=(self._clock() - t0) * 1e3,
            capture_to_publish_ms=capture_to_publish,
            detections=len(result.detections),
        )
        self._summary.add(stats)
        if self._observer is not None:
            self._observer(stats)

    def _publish_status(self, status: str) -> None:
        message = DetectionMessage(
            seq=self._next_seq(),
            t_publish_ns=self._clock_ns(),
            status=status,
            model=self._model,
            fps=self._rate.rate(self._clock()),
        )
        self.publisher.publish(message)

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq
