"""Frame sources: picamera2, OpenCV devices and streams, video files, image folders.

:func:`parse_source` classifies a ``camera.source`` string (pure, testable);
:func:`make_source` builds the matching backend. Backends are imported
lazily, so picamera2 is touched only when the camera is the source.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from rover.sources.base import Frame, FrameSource, SourceEnded

__all__ = ["Frame", "FrameSource", "SourceEnded", "SourceSpec", "check_source", "parse_source", "make_source"]

Kind = Literal["picamera2", "device", "url", "folder", "file"]
_URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")


@dataclass(frozen=True)
class SourceSpec:
    kind: Kind
    target: str | int | Path


def parse_source(text: str) -> SourceSpec:
    """``picamera2`` | a device index | a URL | an existing folder | a file path."""
    text = text.strip()
    if text.lower() in ("picamera2", "picamera", "csi"):
        return SourceSpec("picamera2", 0)
    if text.isdigit():
        return SourceSpec("device", int(text))
    if text.lower().startswith(_URL_SCHEMES):
        return SourceSpec("url", text)
    path = Path(text).expanduser()
    if path.is_dir():
        return SourceSpec("folder", path)
    return SourceSpec("file", path)


def make_source(
    camera: Any,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    camera_factory: Callable[..., Any] | None = None,
) -> FrameSource:
    """The backend for a ``[camera]`` section (:class:`rover.detector.config.CameraSection`)."""
    spec = parse_source(camera.source)
    if spec.kind == "picamera2":
        from rover.sources.picamera import PicameraSource

        return PicameraSource(
            camera.width, camera.height, camera.format, camera.buffer_count,
            capture_timeout_s=camera.capture_timeout_s, camera_factory=camera_factory,
        )
    if spec.kind in ("device", "url"):
        from rover.sources.opencv import CaptureSource

        return CaptureSource(spec.target, camera.width, camera.height)
    if spec.kind == "folder":
        from rover.sources.images import ImageFolderSource

        return ImageFolderSource(spec.target, pace=camera.pace, fps=camera.folder_fps, loop=camera.loop, clock=clock, sleep=sleep)
    from rover.sources.opencv import VideoFileSource

    return VideoFileSource(spec.target, pace=camera.pace, loop=camera.loop, clock=clock, sleep=sleep)


def check_source(camera: Any) -> None:
    """Refuse at once a ``camera.source`` that cannot work: ConfigError naming it and the fix.

    A video file or an image folder is opened and closed again (milliseconds:
    a missing, undecodable or empty one is a configuration error). A camera
    or a stream is left to the grabber, which retries it: it may be plugged
    in or come up later, within ``camera.retry_timeout_s``.
    """
    if parse_source(camera.source).kind not in ("file", "folder"):
        return
    source = make_source(camera)
    try:
        source.open()
    finally:
        source.close()
