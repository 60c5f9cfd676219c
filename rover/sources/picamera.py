"""The Raspberry Pi camera through picamera2 (libcamera).

picamera2 is imported here, lazily, inside :meth:`PicameraSource.open`:
importing it probes devices and changes the environment, so nothing else in
rover may import it, and this module imports on any machine. Tests inject a
fake ``camera_factory`` (tests/fake_picamera2.py) that behaves as picamera2's
source does. What this class relies on, checked in raspberrypi/picamera2
(docs/detector.md has the details):

- format ``RGB888`` yields B, G, R bytes (OpenCV's BGR) and ``BGR888``
  yields R, G, B; :attr:`order` says which, and the preprocessor converts.
- frames are read with ``capture_request``: each carries libcamera's
  ``SensorTimestamp`` (the clock of ``time.monotonic_ns``, which picamera2
  itself compares it with), so a frame picamera2 kept a while is stamped when
  it was taken, not when it was read; the request is released at once.
- captures wait for their job's Future with no timeout unless told
  otherwise, so every capture here has one (``capture_timeout_s``): with
  ``wait=<seconds>`` on picamera2 0.3.20 and later, through a
  ``signal_function`` and an event before that (Bookworm's first picamera2
  had no timeout anywhere). A timeout is a :class:`CameraError`, which the
  grabber answers by closing and reopening the camera.
- after a timeout the capture job is still queued, and ``stop()`` would queue
  behind it forever; :meth:`close` therefore cancels pending jobs
  (``cancel_all_and_flush``, 0.3.20+) and calls only ``close()``, which stops
  picamera2's event loop before it stops the camera.
- ``queue=True`` makes picamera2 keep only the newest completed request, so a
  reader gets a frame at most about one frame period old; the request it keeps
  takes a buffer, and ``buffer_count`` 4 leaves libcamera one for every frame
  while picamera2's event loop runs a few frames late.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any

import numpy as np

from rover.core.errors import CameraError, ConfigError

#: What picamera2's ``format`` name means for the bytes in memory.
CHANNEL_ORDER = {"RGB888": "bgr", "BGR888": "rgb"}

#: What a C extension built against numpy 1.x says under numpy 2 (simplejpeg, picamera2's JPEG encoder).
_NUMPY_ABI_SIGNS = (
    "numpy.dtype size changed",
    "binary incompatibility",
    "compiled using NumPy 1.x cannot be run in",
    "numpy.core.multiarray failed to import",
    "_ARRAY_API not found",
)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from or during (``__cause__``, else ``__context__``)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _import_failure(exc: Exception) -> ConfigError:
    """One line for any failure to import picamera2, naming the numpy mismatch when that is the cause."""
    if isinstance(exc, ImportError) and exc.name == "picamera2":
        return ConfigError(
            "picamera2 is not installed: on Raspberry Pi OS `apt install python3-picamera2` and create the venv "
            "with --system-site-packages, or set camera.source to a device index, file or URL"
        )
    chain = _chain(exc)
    if any(sign in str(e) for e in chain for sign in _NUMPY_ABI_SIGNS):
        where = "the venv's" if sys.prefix != sys.base_prefix else "this Python's"
        return ConfigError(
            f"picamera2 cannot be imported ({_one_line(exc)}): {where} numpy {np.__version__} "
            f"({np.__file__.rsplit('/', 2)[0]}) is not the apt numpy 1.x that picamera2 and simplejpeg were built "
            f"against; install numpy<2 there (`{sys.prefix}/bin/pip install 'numpy<2'`) or remove it so apt's "
            "python3-numpy is used"
        )
    return ConfigError(
        f"picamera2 cannot be imported ({_one_line(exc)}): apt's picamera2 needs apt's python3-libcamera and "
        "friends, seen from a venv created with --system-site-packages; check with "
        f"`{sys.executable} -c 'import picamera2'`"
    )


def _import_picamera2() -> Callable[..., Any]:
    try:
        from picamera2 import Picamera2  # type: ignore[import-not-found]
    except Exception as exc:  # noqa: BLE001 - every import failure becomes one line (exit 78)
        raise _import_failure(exc) from None
    return Picamera2


def _open_failure(name: str, exc: Exception) -> CameraError:
    """Why ``Picamera2(camera_num)`` failed, with the cause it chains under "did not complete"."""
    chain = _chain(exc)
    text = " <- ".join(" ".join(str(e).split()) if e is exc else _one_line(e) for e in chain)
    causes = " ".join(str(e) for e in chain)
    if isinstance(exc, IndexError) or "Camera(s) not found" in causes:
        hint = "is the ribbon cable seated, and does `rpicam-hello --list-cameras` list the camera?"
        return CameraError(f"cannot open {name}: no camera ({text}); {hint}")
    if "busy" in causes.lower():
        hint = "another process holds the camera (a second rover-detector, rpicam-*, or a Picamera2 left open); stop it"
        return CameraError(f"cannot open {name}: {text}; {hint}")
    return CameraError(f"cannot open {name}: {text} (is the ribbon cable seated and the camera free?)")


class PicameraSource:
    """The CSI camera: ``size`` main stream in ``format``, read with ``capture_request`` and a timeout."""

    live = True

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        format: str = "RGB888",
        buffer_count: int = 4,
        camera_num: int = 0,
        capture_timeout_s: float = 2.0,
        camera_factory: Callable[..., Any] | None = None,
    ) -> None:
        if format not in CHANNEL_ORDER:
            raise ConfigError(f"camera.format must be one of {', '.join(CHANNEL_ORDER)}, not {format!r}")
        self.size = (width, height)
        self.format = format
        self.order = CHANNEL_ORDER[format]
        self.buffer_count = buffer_count
        self.camera_num = camera_num
        self.capture_timeout_s = capture_timeout_s
        self.name = f"picamera2 camera {camera_num} ({width}x{height} {format})"
        self._factory = camera_factory
        self._camera: Any = None
        #: When the sensor took the last image read (libcamera's SensorTimestamp, time.monotonic_ns's clock).
        self.last_capture_ns: int | None = None
        #: picamera2 0.3.20+ (one commit brought both): capture_*(wait=seconds) and cancel_all_and_flush.
        self._wait_seconds = False

    def open(self) -> None:
        factory = self._factory or _import_picamera2()
        try:
            camera = factory(camera_num=self.camera_num)
        except (RuntimeError, IndexError, OSError) as exc:
            raise _open_failure(self.name, exc) from None
        self._camera = camera
        self._wait_seconds = callable(getattr(camera, "cancel_all_and_flush", None))
        try:
            config = camera.create_video_configuration(
                main={"size": self.size, "format": self.format}, buffer_count=self.buffer_count, queue=True
            )
            camera.configure(config)
            camera.start()
        except (RuntimeError, OSError, ValueError) as exc:
            self.close()
            raise CameraError(f"cannot start {self.name}: {exc}") from None

    def read(self) -> np.ndarray:
        if self._camera is None:
            raise CameraError(f"{self.name} is not open")
        try:
            request = self._capture_request()
            try:
                image = request.make_array("main")
                stamp = request.get_metadata().get("SensorTimestamp")
            finally:
                request.release()  # back to libcamera at once: a held request is a buffer it lacks
        except (TimeoutError, FutureTimeoutError):
            raise CameraError(
                f"{self.name} delivered no frame for {self.capture_timeout_s:g} s (camera.capture_timeout_s)"
            ) from None
        except CancelledError:
            raise CameraError(f"{self.name} was closed during a capture") from None
        except (RuntimeError, OSError) as exc:
            raise CameraError(f"{self.name} stopped delivering frames: {exc}") from None
        self.last_capture_ns = stamp if isinstance(stamp, int) and stamp > 0 else None
        if image.ndim != 3 or image.shape[2] < 3:
            raise CameraError(f"{self.name} returned an image of shape {image.shape}, expected h x w x 3")
        if image.shape[2] > 3:  # XRGB8888 and friends: drop the padding byte
            image = np.ascontiguousarray(image[:, :, :3])
        return image

    def _capture_request(self) -> Any:
        camera = self._camera
        if self._wait_seconds:
            return camera.capture_request(wait=self.capture_timeout_s)
        # picamera2 before 0.3.20 treats wait=<number> as "forever": ask for the job and wait on our own event.
        done = threading.Event()
        job = camera.capture_request(signal_function=lambda _job: done.set())
        if not done.wait(self.capture_timeout_s):
            raise TimeoutError
        return camera.wait(job)

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        try:
            if self._wait_seconds:
                camera.cancel_all_and_flush()  # a timed-out capture job must not hold up close()'s stop
        finally:
            camera.close()  # stops picamera2's event loop, then the camera, then releases it
