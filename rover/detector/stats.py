"""Running figures of the detector: frame rate and latency summaries. Pure, no I/O."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


class RateMeter:
    """Events per second over the last ``window_s`` seconds (times in seconds, any clock)."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def add(self, t: float) -> None:
        self._times.append(t)

    def rate(self, now: float) -> float:
        """Events per second; 0.0 until two events fall inside the window."""
        times = self._times
        while times and times[0] < now - self.window_s:
            times.popleft()
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])


@dataclass(frozen=True)
class FrameStats:
    """What one processed frame cost, in milliseconds, stage by stage."""

    frame_seq: int
    wait_ms: float  #: waiting for a frame from the grabber
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float
    publish_ms: float  #: building, encoding and sending the message
    capture_to_publish_ms: float
    detections: int


def percentile(values: list[float] | np.ndarray, q: float) -> float:
    """The ``q``-th percentile (0-100), or NaN for no values."""
    if len(values) == 0:
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


class Summary:
    """Collects FrameStats between two summary log lines."""

    def __init__(self) -> None:
        self.inference: list[float] = []
        self.capture_to_publish: list[float] = []
        self.frames = 0

    def add(self, stats: FrameStats) -> None:
        self.frames += 1
        self.inference.append(stats.inference_ms)
        self.capture_to_publish.append(stats.capture_to_publish_ms)

    def line(self, fps: float, skipped: int, dropped: int) -> str:
        """One log line: fps, median latencies, skipped frames; then starts a new period."""
        text = (
            f"{self.frames} frames, {fps:.1f} fps, inference p50 {percentile(self.inference, 50):.1f} ms, "
            f"capture-to-publish p50 {percentile(self.capture_to_publish, 50):.1f} ms "
            f"p99 {percentile(self.capture_to_publish, 99):.1f} ms, skipped frames {skipped}, "
            f"dropped non-finite {dropped}"
        )
        self.__init__()
        return text
