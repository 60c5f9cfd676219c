"""The Raspberry Pi camera through picamera2 (libcamera).

picamera2 is imported here, lazily, inside :meth:`PicameraSource.open`:
importing it probes devices and changes the environment, so nothing else in
rover may import it, and this module imports on any machine. Tests inject a
fake ``camera_factory`` that records what the camera would have been told.

Two facts from docs/picar-b.md shape this class:

- format ``RGB888`` yields B, G, R bytes (OpenCV's BGR) and ``BGR888``
  yields R, G, B; :attr:`order` says which, and the preprocessor converts.
- libcamera queues a few buffers: a slow reader gets old frames. The
  grabber thread reads continuously and keeps only the newest, and a small
  ``buffer_count`` keeps the queue short.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from rover.core.errors import CameraError, ConfigError

#: What picamera2's ``format`` name means for the bytes in memory.
CHANNEL_ORDER = {"RGB888": "bgr", "BGR888": "rgb"}


def _import_picamera2() -> Callable[..., Any]:
    try:
        from picamera2 import Picamera2  # type: ignore[import-not-found]
    except ImportError:
        raise ConfigError(
            "picamera2 is not installed: on Raspberry Pi OS `apt install python3-picamera2` and create the venv "
            "with --system-site-packages, or set camera.source to a device index, file or URL"
        ) from None
    return Picamera2


class PicameraSource:
    """The CSI camera: ``size`` main stream in ``format``, read with ``capture_array``."""

    live = True

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        format: str = "RGB888",
        buffer_count: int = 2,
        camera_num: int = 0,
        camera_factory: Callable[..., Any] | None = None,
    ) -> None:
        if format not in CHANNEL_ORDER:
            raise ConfigError(f"camera.format must be one of {', '.join(CHANNEL_ORDER)}, not {format!r}")
        self.size = (width, height)
        self.format = format
        self.order = CHANNEL_ORDER[format]
        self.buffer_count = buffer_count
        self.camera_num = camera_num
        self.name = f"picamera2 camera {camera_num} ({width}x{height} {format})"
        self._factory = camera_factory
        self._camera: Any = None
        self._started = False

    def open(self) -> None:
        factory = self._factory or _import_picamera2()
        try:
            camera = factory(camera_num=self.camera_num)
        except (RuntimeError, IndexError, OSError) as exc:
            raise CameraError(f"cannot open {self.name}: {exc} (is the ribbon cable seated and the camera free?)") from None
        self._camera = camera
        try:
            config = camera.create_video_configuration(
                main={"size": self.size, "format": self.format}, buffer_count=self.buffer_count
            )
            camera.configure(config)
            camera.start()
            self._started = True
        except (RuntimeError, OSError, ValueError) as exc:
            self.close()
            raise CameraError(f"cannot start {self.name}: {exc}") from None

    def read(self) -> np.ndarray:
        if self._camera is None:
            raise CameraError(f"{self.name} is not open")
        try:
            image = self._camera.capture_array("main")
        except (RuntimeError, OSError) as exc:
            raise CameraError(f"{self.name} stopped delivering frames: {exc}") from None
        if image.ndim != 3 or image.shape[2] < 3:
            raise CameraError(f"{self.name} returned an image of shape {image.shape}, expected h x w x 3")
        if image.shape[2] > 3:  # XRGB8888 and friends: drop the padding byte
            image = np.ascontiguousarray(image[:, :, :3])
        return image

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        try:
            if self._started:
                camera.stop()
        finally:
            self._started = False
            camera.close()
