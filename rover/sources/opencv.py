"""Frame sources read through OpenCV's ``VideoCapture``: devices, URLs, video files.

OpenCV returns B, G, R images. A video file can be paced at its own frame
rate (so it behaves like a camera, and frames the detector is too slow for
are skipped) or read one frame per request (every frame processed, none
waiting: for replays and benchmarks); it can loop.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from rover.core.errors import CameraError, ConfigError
from rover.sources.base import SourceEnded


class CaptureSource:
    """A USB camera (device index) or a network stream (``rtsp://``, ``http://``).

    A failed open or read raises CameraError, which the grabber retries.
    """

    order = "bgr"
    live = True

    def __init__(self, target: int | str, width: int | None = None, height: int | None = None) -> None:
        self.target = target
        self.name = f"camera {target}" if isinstance(target, int) else f"stream {target}"
        self._size = (width, height)
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"cannot open {self.name}: check that it is connected and not used by another process")
        if isinstance(self.target, int):
            width, height = self._size
            if width and height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # fewer queued, stale frames (where the backend allows)
        self._cap = cap

    def read(self) -> np.ndarray:
        if self._cap is None:
            raise CameraError(f"{self.name} is not open")
        ok, image = self._cap.read()
        if not ok or image is None:
            raise CameraError(f"{self.name} stopped delivering frames")
        return image

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class VideoFileSource:
    """A video file, paced at its own frame rate or read on request, optionally looped.

    ``clock`` (seconds, monotonic) and ``sleep`` are injected so pacing is
    testable without waiting. A file that cannot be opened will not get
    better: that is a ConfigError, not a retry.
    """

    order = "bgr"

    def __init__(
        self,
        path: Path,
        *,
        pace: bool = True,
        loop: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.path = Path(path)
        self.name = f"video file {self.path}"
        self.live = pace
        self.loop = loop
        self.fps = 0.0
        self._clock = clock
        self._sleep = sleep
        self._cap: cv2.VideoCapture | None = None
        self._start = 0.0
        self._count = 0  # frames delivered since the pacing origin

    def open(self) -> None:
        if not self.path.is_file():
            raise ConfigError(f"video file {self.path} does not exist: fix camera.source or --source")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise ConfigError(f"video file {self.path} cannot be decoded by OpenCV: convert it (e.g. to MJPEG or H.264 AVI/MP4)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 and fps < 1000 else 25.0  # 25: a common default when unknown
        self._cap = cap
        self._start = self._clock()
        self._count = 0

    def read(self) -> np.ndarray:
        if self._cap is None:
            raise CameraError(f"{self.name} is not open")
        ok, image = self._cap.read()
        if not ok and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._cap.read()
        if not ok or image is None:
            raise SourceEnded(self.name)
        if self.live:
            due = self._start + self._count / self.fps
            delay = due - self._clock()
            if delay > 0:
                self._sleep(delay)
        self._count += 1
        return image

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
