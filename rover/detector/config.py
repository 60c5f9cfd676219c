"""The detector's config sections: ``[detector]``, ``[camera]`` and ``[stream]``.

Each section is a frozen dataclass whose fields carry their default and a
one-line description; :func:`rover.core.config.load_sections` reads them strictly
and :func:`rover.core.config.reference` turns them into the table in
``docs/detector.md``. Cross-field checks live in ``__post_init__`` so a bad
value is refused when the file is read, naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rover.core.config import doc
from rover.core.endpoints import DETECTIONS, check_exposure, check_lan_bind, check_local_bind
from rover.core.messages import MAX_ITEMS, MAX_STRING

DEFAULT_MODEL = Path("/var/lib/rover/models/detector.onnx")
DEFAULT_BIND = DETECTIONS
#: A hung capture must turn into a retry well inside the unit's WatchdogSec=10.
MAX_CAPTURE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class DetectorSection:
    """``[detector]``: the model and what to keep of its output."""

    model: Path = doc("ONNX model that follows the rover model contract", DEFAULT_MODEL)
    intra_op_threads: int = doc("onnxruntime intra-op threads; 0 = one per core", 0)
    score_threshold: float = doc("minimum class score (softmax probability) to report a detection", 0.5)
    nms_iou: float = doc("IoU above which a lower-scored box of the same class is suppressed", 0.45)
    top_k: int = doc(f"at most this many detections per frame, highest score first (1..{MAX_ITEMS}, the schema's limit)", 20)
    classes: list[str] = doc("label names to report (e.g. [\"person\"]); empty = every class", [])
    max_frames: int = doc("stop after this many processed frames; 0 = run until stopped", 0)
    summary_interval_s: float = doc("seconds between two summary log lines (fps, latencies, skipped frames)", 5.0)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"detector.score_threshold must be in [0, 1], not {self.score_threshold}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError(f"detector.nms_iou must be in (0, 1], not {self.nms_iou}")
        # Every limit of the message schema is a limit here: a message beyond one
        # is refused by every subscriber, so the config must not allow it.
        if self.top_k < 1:
            raise ValueError(f"detector.top_k must be at least 1, not {self.top_k}")
        if self.top_k > MAX_ITEMS:
            raise ValueError(f"detector.top_k must be at most {MAX_ITEMS} (a detection message carries at most "
                             f"{MAX_ITEMS} detections; every subscriber refuses more), not {self.top_k}")
        if len(self.classes) > MAX_ITEMS:
            raise ValueError(f"detector.classes lists {len(self.classes)} labels; a model has at most {MAX_ITEMS}")
        long = next((name for name in self.classes if len(name) > MAX_STRING), None)
        if long is not None:
            raise ValueError(f"detector.classes has a label of {len(long)} characters ({long[:20]!r}...); "
                             f"a label has at most {MAX_STRING}")
        if self.intra_op_threads < 0:
            raise ValueError(f"detector.intra_op_threads must be 0 (all cores) or more, not {self.intra_op_threads}")
        if self.max_frames < 0:
            raise ValueError(f"detector.max_frames must be 0 (unlimited) or more, not {self.max_frames}")
        if self.summary_interval_s <= 0:
            raise ValueError(f"detector.summary_interval_s must be positive, not {self.summary_interval_s}")


@dataclass(frozen=True)
class CameraSection:
    """``[camera]``: where frames come from."""

    source: str = doc(
        "picamera2, an OpenCV device index (\"0\"), a video file, an rtsp:// or http:// URL, or an image folder",
        "picamera2",
    )
    width: int = doc("picamera2 main stream width in pixels (also requested from an OpenCV device)", 640)
    height: int = doc("picamera2 main stream height in pixels (also requested from an OpenCV device)", 480)
    format: Literal["RGB888", "BGR888"] = doc(
        "picamera2 main stream format; RGB888 is B,G,R in memory, BGR888 is R,G,B (handled either way)", "RGB888"
    )
    buffer_count: int = doc(
        "picamera2 buffers: it keeps the newest frame in one, so 4 leave libcamera one for every frame "
        "while picamera2 runs a few frames late (fewer: late or lost frames)",
        4,
    )
    capture_timeout_s: float = doc(
        "a picamera2 capture that brings no frame for this long is a camera failure: close, retry", 2.0
    )
    pace: bool = doc("play a video file or image folder at its own frame rate (else one frame per request)", True)
    folder_fps: float = doc("frame rate of an image folder when paced", 10.0)
    loop: bool = doc("start a video file or image folder again at its end", False)
    exit_at_end: bool = doc("exit 0 when a video file or image folder ends (else publish source_ended)", False)
    retry_timeout_s: float = doc("a camera that cannot open or stops is retried this long, then the service exits 1", 30.0)
    retry_backoff_s: float = doc("first wait between camera retries; doubles up to 5 s", 0.5)

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ValueError(f"camera.width and camera.height must be at least 16, not {self.width}x{self.height}")
        if self.buffer_count < 1:
            raise ValueError(f"camera.buffer_count must be at least 1, not {self.buffer_count}")
        if not 0 < self.capture_timeout_s <= MAX_CAPTURE_TIMEOUT_S:
            raise ValueError(
                f"camera.capture_timeout_s must be in (0, {MAX_CAPTURE_TIMEOUT_S:g}] (a camera failure must come "
                f"before systemd's 10 s watchdog), not {self.capture_timeout_s}"
            )
        if self.folder_fps <= 0:
            raise ValueError(f"camera.folder_fps must be positive, not {self.folder_fps}")
        if self.retry_timeout_s < 0 or self.retry_backoff_s <= 0:
            raise ValueError("camera.retry_timeout_s must be >= 0 and camera.retry_backoff_s > 0")
        if not self.source:
            raise ValueError("camera.source must not be empty")


@dataclass(frozen=True)
class StreamSection:
    """``[stream]``: the ZeroMQ PUB sockets the detections go out on (car, and optionally LAN)."""

    bind: str = doc(
        "ZeroMQ endpoint for the programs on the car (drive, view, record; no keys on loopback or ipc://); "
        "`ipc://NAME` is a socket in rover's runtime directory (/run/rover on the car, group rover); "
        "keep it on ipc:// or loopback, anything else needs CURVE keys",
        DEFAULT_BIND,
    )
    local_bind: str = doc(
        "optional loopback TCP endpoint with the same messages for other programs on this host "
        "(e.g. \"tcp://127.0.0.1:5555\"; any local user can read it, and bind it while the detector is down); empty = off",
        "",
    )
    lan_bind: str = doc(
        "optional second endpoint with the same messages for other machines (e.g. \"tcp://0.0.0.0:5565\"); "
        "needs the CURVE keys below (applied to it only) or allow_insecure_lan; empty = off",
        "",
    )
    server_secret_key: Path | None = doc(
        "CURVE secret key file of this server (zmq.auth.create_certificates); "
        "encrypts lan_bind (and a non-loopback bind), never loopback",
        None,
    )
    client_keys_dir: Path | None = doc("folder of authorised subscribers' public key files (*.key)", None)
    allow_insecure_lan: bool = doc(
        "allow lan_bind (or a non-loopback bind) WITHOUT keys (anyone on the LAN can listen)", False
    )
    status_interval_s: float = doc("seconds between status messages while no frame arrives (<= 0.5: 2 Hz or more)", 0.25)
    send_hwm: int = doc("messages queued per slow subscriber before newer ones are dropped", 10)

    def __post_init__(self) -> None:
        if not 0 < self.status_interval_s <= 0.5:
            raise ValueError(f"stream.status_interval_s must be in (0, 0.5] (2 Hz or more), not {self.status_interval_s}")
        if self.send_hwm < 1:
            raise ValueError(f"stream.send_hwm must be at least 1, not {self.send_hwm}")
        if (self.server_secret_key is None) != (self.client_keys_dir is None):
            raise ValueError("stream.server_secret_key and stream.client_keys_dir must be set together")
        check_lan_bind(self.bind, self.lan_bind)
        check_local_bind(self.local_bind)
        if self.lan_bind:
            check_exposure("stream.lan_bind", self.lan_bind, keys=self.server_secret_key is not None,
                           allow_insecure_lan=self.allow_insecure_lan)


#: The sections ``rover-detector`` reads, in file order.
SECTIONS = {"detector": DetectorSection, "camera": CameraSection, "stream": StreamSection}
