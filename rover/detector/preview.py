"""Preview frames: small JPEGs of what the detector saw, on their own PUB socket.

The detector offers every processed frame to a :class:`PreviewPublisher`;
at most ``max_fps`` of them are taken, and a worker thread downscales
(``cv2.resize``, never upscaling), JPEG-encodes (``cv2.imencode``) and sends
them, so the inference path only pays for a lock and a reference copy. The
worker holds one slot: a frame offered while the previous one is still being
encoded replaces the waiting one (newest wins). OpenCV releases the GIL
while it resizes and encodes, so the worker runs beside inference.

The socket is separate from the detection stream: subscribers of
detections never receive (nor filter) image data. It must be loopback or
``ipc://``: the LAN sees the web page of ``rover-view``, not this socket.

Wire form: a three-part ZeroMQ message ``[b"frame", header JSON, JPEG]``;
the header is ``{"v": 1, "seq", "frame_seq", "t_capture_ns", "width",
"height"}`` where ``seq`` is the ``seq`` of the detection message computed
from that frame (so a viewer pairs image and boxes) and width/height are
the JPEG's.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import cv2
import numpy as np
import zmq

from rover.core import endpoints
from rover.core.endpoints import is_local_endpoint
from rover.core.errors import ConfigError, MessageError

log = logging.getLogger(__name__)

TOPIC = b"frame"
VERSION = 1
SEND_HWM = 2  # frames queued per slow subscriber; older ones are of no use
_HEADER_KEYS = {"v", "seq", "frame_seq", "t_capture_ns", "width", "height"}


@dataclass(frozen=True)
class FrameHeader:
    seq: int  #: seq of the detection message of this frame
    frame_seq: int
    t_capture_ns: int
    width: int
    height: int
    v: int = VERSION


def encode_header(header: FrameHeader) -> bytes:
    return json.dumps(asdict(header), separators=(",", ":")).encode()


def decode_frame(parts: list[bytes]) -> tuple[FrameHeader, bytes]:
    """Header and JPEG bytes of one preview message; MessageError on any defect."""
    if len(parts) != 3 or bytes(parts[0]) != TOPIC:
        raise MessageError("a preview frame is 3 parts: b'frame', header JSON, JPEG")
    try:
        data = json.loads(bytes(parts[1]))
    except (ValueError, RecursionError) as exc:
        raise MessageError(f"preview header is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.keys() != _HEADER_KEYS:
        raise MessageError(f"preview header must have exactly the keys {', '.join(sorted(_HEADER_KEYS))}")
    if data["v"] != VERSION:
        raise MessageError(f"unsupported preview version {data['v']!r}, this reader knows {VERSION}")
    if not all(type(data[k]) is int and data[k] >= 0 for k in _HEADER_KEYS):
        raise MessageError("preview header values must be non-negative integers")
    jpeg = bytes(parts[2])
    if not jpeg.startswith(b"\xff\xd8"):
        raise MessageError("preview payload is not a JPEG")
    return FrameHeader(**data), jpeg


def encode_jpeg(image: np.ndarray, order: str, width: int, quality: int) -> tuple[bytes, int, int]:
    """``image`` (h x w x 3, ``order`` "bgr" or "rgb") scaled down to ``width`` as JPEG bytes, and its size."""
    h, w = image.shape[:2]
    if w > width:
        height = max(1, round(h * width / w))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    if order == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - imencode fails only on an invalid image
        raise ValueError("cv2.imencode could not encode the preview frame")
    return buf.tobytes(), image.shape[1], image.shape[0]


class RateCap:
    """Accepts at most ``max_fps`` events per second on average, without bursts after a pause."""

    def __init__(self, max_fps: float) -> None:
        self.period = 1.0 / max_fps
        self._due: float | None = None

    def accept(self, now: float) -> bool:
        if self._due is not None and now < self._due:
            return False
        # Keep the average rate when frames come just after the due time;
        # after a pause start afresh rather than catch up.
        late = self._due is not None and now - self._due < self.period
        self._due = (self._due + self.period) if late else now + self.period
        return True


class PreviewPublisher:
    """Binds ``bind`` and sends preview frames from a worker thread. Close it (or use ``with``)."""

    def __init__(
        self,
        bind: str,
        *,
        width: int = 320,
        max_fps: float = 5.0,
        jpeg_quality: int = 70,
        context: zmq.Context | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not is_local_endpoint(bind):
            raise ConfigError(
                f"view.frames {bind} is reachable from the network: bind tcp://127.0.0.1:PORT or ipc:// "
                "(rover-view serves the LAN; set view.host for that)"
            )
        self.width = width
        self.jpeg_quality = jpeg_quality
        self._rate = RateCap(max_fps)
        self._clock = clock
        self._own_context = context is None
        self._context = context or zmq.Context()
        socket = self._context.socket(zmq.PUB)
        socket.linger = 0
        socket.sndhwm = SEND_HWM
        try:
            endpoints.bind(socket, bind)  # ipc://preview: in rover's runtime directory
        except zmq.ZMQError as exc:
            socket.close(linger=0)
            if self._own_context:
                self._context.term()
            raise ConfigError(f"view.frames {bind} cannot be bound ({exc}): pick a free port or a writable ipc path") from None
        self._socket = socket
        #: The endpoint actually bound (a ``tcp://...:*`` wildcard port resolved).
        self.address = socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._cond = threading.Condition()
        self._slot: tuple[Any, str, int] | None = None
        self._closed = False
        self.offered = 0
        self.taken = 0
        self.replaced = 0
        self.sent = 0
        self.dropped = 0
        #: Milliseconds of each recent resize + encode (for the benchmark).
        self.encode_ms: collections.deque[float] = collections.deque(maxlen=2000)
        self._thread = threading.Thread(target=self._run, name="preview-encoder", daemon=True)
        self._thread.start()

    # -- the detector's side: cheap, never blocks on encoding -----------------
    def offer(self, frame: Any, order: str, seq: int) -> bool:
        """Take ``frame`` (a :class:`~rover.sources.base.Frame`) if the rate cap allows; True if taken."""
        self.offered += 1
        if not self._rate.accept(self._clock()):
            return False
        with self._cond:
            if self._slot is not None:
                self.replaced += 1
            self._slot = (frame, order, seq)
            self.taken += 1
            self._cond.notify()
        return True

    # -- the worker -----------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while self._slot is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                frame, order, seq = self._slot
                self._slot = None
            try:
                self._send(frame, order, seq)
            except Exception:  # never let the preview take the detector down
                log.exception("preview frame %d could not be sent", seq)

    def _send(self, frame: Any, order: str, seq: int) -> None:
        t0 = time.perf_counter()
        jpeg, width, height = encode_jpeg(frame.image, order, self.width, self.jpeg_quality)
        self.encode_ms.append((time.perf_counter() - t0) * 1e3)
        header = FrameHeader(seq=seq, frame_seq=frame.seq, t_capture_ns=frame.t_capture_ns, width=width, height=height)
        try:
            self._socket.send_multipart([TOPIC, encode_header(header), jpeg], zmq.NOBLOCK, copy=False)
            self.sent += 1
        except zmq.Again:
            self.dropped += 1

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=2.0)
        self._socket.close(linger=0)
        if self._own_context:
            self._context.term()

    def __enter__(self) -> "PreviewPublisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
