"""The ``[view]`` section: the detector's preview frames and the live view server.

One section for both ends of the preview stream, so the endpoint the
detector binds (``frames``) and the one ``rover-view`` connects to cannot
disagree. The detector reads only ``preview``, ``frames``, ``width``,
``max_fps`` and ``jpeg_quality``; ``rover-view`` reads the rest too. The
reference table in ``docs/view.md`` is generated from these fields
(:func:`rover.core.config.reference`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rover.core.config import doc
from rover.core.endpoints import DETECTIONS, DRIVE_STATUS, PREVIEW

DEFAULT_FRAMES = PREVIEW


@dataclass(frozen=True)
class ViewSection:
    """``[view]``: preview frames from the detector, and the web page that shows them."""

    preview: bool = doc("the detector publishes downscaled JPEG frames on `frames` (off: no cost at all)", False)
    frames: str = doc("ZeroMQ endpoint the detector binds for preview frames and rover-view connects to (loopback or ipc://)",
                      DEFAULT_FRAMES)
    width: int = doc("preview frame width in pixels (height keeps the aspect ratio; never upscaled)", 320)
    max_fps: float = doc("at most this many preview frames per second", 5.0)
    jpeg_quality: int = doc("JPEG quality of preview frames, 1..100", 70)
    host: str = doc("address the web server listens on; 127.0.0.1 = this machine only, 0.0.0.0 = the whole LAN (no login!)",
                    "127.0.0.1")
    port: int = doc("TCP port of the web server", 8080)
    detections: str = doc("ZeroMQ endpoint of the detection stream (the detector's stream.bind)", DETECTIONS)
    drive: str = doc("ZeroMQ endpoint of the drive status stream (the drive's drive.publish); empty: no drive panel",
                     DRIVE_STATUS)
    offline_after_s: float = doc("a stream silent for this long is shown as offline", 2.0)
    max_clients: int = doc("at most this many open video or event streams at once; when all are taken, a new viewer "
                           "takes the slot of a stream that stopped reading, else gets 503", 8)
    max_connections: int = doc("at most this many connections at once, streams included (one thread each); "
                               "more are refused with 503", 32)

    def __post_init__(self) -> None:
        if not 16 <= self.width <= 4096:
            raise ValueError(f"view.width must be in [16, 4096] pixels, not {self.width}")
        if not 0 < self.max_fps <= 60:
            raise ValueError(f"view.max_fps must be in (0, 60], not {self.max_fps}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"view.jpeg_quality must be in [1, 100], not {self.jpeg_quality}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"view.port must be in [0, 65535] (0 = any free port), not {self.port}")
        if self.offline_after_s <= 0:
            raise ValueError(f"view.offline_after_s must be positive, not {self.offline_after_s}")
        if self.max_clients < 1:
            raise ValueError(f"view.max_clients must be at least 1, not {self.max_clients}")
        if self.max_connections <= self.max_clients:
            raise ValueError(f"view.max_connections ({self.max_connections}) must be more than view.max_clients "
                             f"({self.max_clients}): the page and its files need connections beside the streams")
        if not self.frames or not self.detections:
            raise ValueError("view.frames and view.detections must be ZeroMQ endpoints, e.g. tcp://127.0.0.1:5557")
        if not self.host:
            raise ValueError("view.host must be an address, e.g. 127.0.0.1 (this machine) or 0.0.0.0 (the LAN)")


#: The sections ``rover-view`` reads.
SECTIONS = {"view": ViewSection}
