"""What the live view knows: the newest message of each stream, as plain data.

Pure logic, no sockets and no threads of its own (a lock only, since the
stream reader writes while web clients read); time comes from injected
clocks. The stream reader feeds it decoded messages; the web server asks it
for a :meth:`LiveState.snapshot` (the stats panel) and, per preview frame, for
:meth:`LiveState.on_frame` (the boxes of exactly that frame).

Pairing: a preview frame carries the ``seq`` of the detection message
computed from it, and the detector publishes that message before the
frame, so the recent ``ok`` messages are kept by ``seq`` and looked up.
A ``seq`` going backwards means the detector restarted: the memory is cleared.

The locked target is the drive's ``target`` box; in a frame, the detection
of the followed label that overlaps it most (IoU >= :data:`LOCK_IOU`) is
marked ``locked``.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable

from rover.core.messages import DetectionMessage
from rover.detector.preview import FrameHeader
from rover.drive.status import DriveStatus

#: Detection messages kept for pairing (about 3 s at 20 fps).
RECENT = 64
#: Overlap with the drive's target box that marks a detection as the locked one.
LOCK_IOU = 0.3


def iou(a: tuple[float, ...] | list[float], b: tuple[float, ...] | list[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class LiveState:
    """The newest detection message, drive status and preview frame, with their ages."""

    def __init__(
        self,
        offline_after_s: float = 2.0,
        *,
        drive_enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.offline_after_s = offline_after_s
        self.drive_enabled = drive_enabled
        self._clock = clock
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self._recent: collections.OrderedDict[int, DetectionMessage] = collections.OrderedDict()
        self._detection: DetectionMessage | None = None
        self._detection_at: float | None = None
        self._capture_to_view_ms: float | None = None
        self._drive: DriveStatus | None = None
        self._drive_at: float | None = None
        self._frame: FrameHeader | None = None
        self._frame_at: float | None = None
        self._frame_times: collections.deque[float] = collections.deque(maxlen=16)
        self.frames = 0
        self.invalid = {"detections": 0, "drive": 0, "frames": 0}

    # -- the stream reader's side ---------------------------------------------
    def on_detection(self, message: DetectionMessage) -> None:
        now = self._clock()
        with self._lock:
            last = self._detection
            if last is not None and message.seq <= last.seq:
                self._recent.clear()  # the detector restarted
            self._detection, self._detection_at = message, now
            if message.status == "ok" and message.frame is not None:
                # Same host, same monotonic clock as the detector's capture stamp.
                self._capture_to_view_ms = max(0.0, (self._clock_ns() - message.frame.t_capture_ns) / 1e6)
                self._recent[message.seq] = message
                while len(self._recent) > RECENT:
                    self._recent.popitem(last=False)

    def on_drive(self, status: DriveStatus) -> None:
        now = self._clock()
        with self._lock:
            self._drive, self._drive_at = status, now

    def on_invalid(self, stream: str) -> None:
        with self._lock:
            self.invalid[stream] += 1

    def on_frame(self, header: FrameHeader) -> dict[str, Any]:
        """Record a preview frame; the event that goes with it (its boxes, the locked one marked)."""
        now = self._clock()
        with self._lock:
            self._frame, self._frame_at = header, now
            self._frame_times.append(now)
            self.frames += 1
            message = self._recent.get(header.seq)
            target = self._live_target(now)
            detections = None
            if message is not None:
                detections = [
                    {"label": d.label, "score": round(d.score, 3), "box": [round(v, 4) for v in d.box], "locked": False}
                    for d in message.detections
                ]
                if target is not None:
                    follow, box = target
                    best = max(
                        (d for d in detections if d["label"] == follow),
                        key=lambda d: iou(d["box"], box),
                        default=None,
                    )
                    if best is not None and iou(best["box"], box) >= LOCK_IOU:
                        best["locked"] = True
            return {
                "seq": header.seq,
                "frame_seq": header.frame_seq,
                "width": header.width,
                "height": header.height,
                "detections": detections,
                "target": None if target is None else list(target[1]),
            }

    def _live_target(self, now: float) -> tuple[str, tuple[float, ...]] | None:
        drive = self._drive
        if drive is None or drive.target is None or not self._fresh(self._drive_at, now):
            return None
        return drive.follow, drive.target.box

    def _fresh(self, at: float | None, now: float) -> bool:
        return at is not None and now - at <= self.offline_after_s

    # -- the web server's side ------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The stats panel: each stream online or not, its newest figures and its age."""
        now = self._clock()
        with self._lock:
            return {
                "detector": self._detector_panel(now),
                "drive": self._drive_panel(now),
                "video": self._video_panel(now),
                "invalid": dict(self.invalid),
            }

    def _age(self, at: float | None, now: float) -> float | None:
        return None if at is None else round(now - at, 2)

    def _detector_panel(self, now: float) -> dict[str, Any]:
        m = self._detection
        panel: dict[str, Any] = {"online": self._fresh(self._detection_at, now), "age_s": self._age(self._detection_at, now)}
        if m is None:
            return panel
        panel.update(status=m.status, seq=m.seq, fps=round(m.fps, 2), model=f"{m.model.name} {m.model.precision}")
        if m.timing_ms is not None:
            t = m.timing_ms
            panel.update(inference_ms=_ms(t.inference), capture_to_publish_ms=_ms(t.capture_to_publish),
                         capture_to_view_ms=_ms(self._capture_to_view_ms), detections=len(m.detections))
        return panel

    def _drive_panel(self, now: float) -> dict[str, Any]:
        d = self._drive
        panel: dict[str, Any] = {"enabled": self.drive_enabled, "online": self._fresh(self._drive_at, now),
                                 "age_s": self._age(self._drive_at, now)}
        if d is None:
            return panel
        panel.update(
            state=d.state, follow=d.follow, throttle=round(d.throttle, 3), steering=round(d.steering, 3),
            pan=round(d.pan, 3), scale=round(d.scale, 3), detection_age_ms=_ms(d.detection_age_ms),
            latency_ms=_ms(d.latency_ms), obstacle_m=d.obstacle_m, locked=d.target is not None, counters=dict(d.counters),
            bumper=d.bumper,
        )
        return panel

    def _video_panel(self, now: float) -> dict[str, Any]:
        panel: dict[str, Any] = {"online": self._fresh(self._frame_at, now), "age_s": self._age(self._frame_at, now),
                                 "frames": self.frames}
        times = self._frame_times
        if len(times) >= 2 and times[-1] > times[0]:
            panel["fps"] = round((len(times) - 1) / (times[-1] - times[0]), 2)
        if self._frame is not None:
            panel.update(seq=self._frame.seq, width=self._frame.width, height=self._frame.height)
        return panel
