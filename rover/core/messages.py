"""Detection messages, schema version 1: build, encode, decode and validate.

A message is one ZeroMQ frame: the topic ``detections``, one space, then a
UTF-8 JSON object. Being a single frame, it works with ``ZMQ_CONFLATE`` on the
subscriber (always the newest message). The published JSON Schema is
``rover/schemas/detection-v1.schema.json``; :func:`decode` enforces the same
rules in plain Python (no dependency, fast enough for every message), plus the
ones JSON Schema cannot say: every number finite, ``x1 <= x2``, ``y1 <= y2``.

A message is published for every processed frame, with ``status: "ok"``,
also when ``detections`` is empty. When no frame can be processed the
detector keeps publishing *status messages*: ``frame`` and ``timing_ms`` are
``null``, ``detections`` is empty and ``status`` says why (see
:data:`STATUSES`). A subscriber can thus tell "no person" (``ok``, no
detections) from "detector alive but blind" (another status) from "detector
dead" (no message at all).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from rover.core.errors import MessageError

SCHEMA_VERSION = 1
TOPIC = "detections"
TOPIC_BYTES = TOPIC.encode()

#: Why a message carries no processed frame. ``ok`` is the only status with one.
STATUSES = {
    "ok": "a frame was processed; detections may be empty",
    "starting": "the service is warming up and has no frame yet",
    "no_frame": "the source delivered no new frame within the expected time",
    "source_ended": "the video file or image folder has no more frames",
    "camera_error": "the camera failed; the service is retrying it",
    "stopping": "the service is shutting down; this is its last message",
}

#: Largest wire message a subscriber accepts (``ZMQ_MAXMSGSIZE``); a v1 message is a few kB.
MAX_WIRE_BYTES = 1 << 20
#: Most detections, and most ``model.labels``, one message may carry (the schema's ``maxItems``).
MAX_ITEMS = 1000
#: Longest string (label, model name, precision, sha256) a message may carry (the schema's ``maxLength``).
MAX_STRING = 256
_MAX_INT = 2**63 - 1


@dataclass(frozen=True)
class Detection:
    """One detected object. ``box`` is ``(x1, y1, x2, y2)`` in ``[0, 1]`` of the frame."""

    label: str
    class_id: int
    score: float
    box: tuple[float, float, float, float]

    @property
    def centre_x(self) -> float:
        return (self.box[0] + self.box[2]) / 2

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class FrameInfo:
    """The frame a message was computed from."""

    seq: int
    t_capture_ns: int  # time.monotonic_ns() at capture, on the detector's host
    t_capture: float  # unix time (seconds) at capture
    width: int
    height: int


@dataclass(frozen=True)
class ModelRef:
    """The model that produced a message.

    ``labels`` (optional) lists every class the model can report, background
    excluded, so a subscriber can tell "no person in view" from "this model
    cannot see persons at all".
    """

    name: str
    precision: str
    sha256: str
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Timing:
    """Milliseconds spent on each stage of one frame."""

    preprocess: float
    inference: float
    postprocess: float
    capture_to_publish: float


@dataclass(frozen=True)
class DetectionMessage:
    """One message of the detection stream."""

    seq: int
    t_publish_ns: int
    status: str
    model: ModelRef
    fps: float
    frame: FrameInfo | None = None
    timing_ms: Timing | None = None
    detections: tuple[Detection, ...] = field(default_factory=tuple)
    v: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["model"]["labels"] is None:
            del data["model"]["labels"]
        else:
            data["model"]["labels"] = list(data["model"]["labels"])
        data["detections"] = [
            {**d, "box": list(d["box"])} for d in data["detections"]
        ]
        return data


def encode(message: DetectionMessage | dict[str, Any]) -> bytes:
    """The wire form: ``b"detections " + JSON``."""
    data = message.to_dict() if isinstance(message, DetectionMessage) else message
    return TOPIC_BYTES + b" " + json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


def split_topic(raw: bytes) -> tuple[str, bytes]:
    """Split a single-frame message into its topic and its payload."""
    topic, sep, payload = bytes(raw).partition(b" ")
    if not sep:
        raise MessageError("message has no topic separator (expected 'TOPIC {json}')")
    try:
        return topic.decode("ascii"), payload
    except UnicodeDecodeError:
        raise MessageError("message topic is not ASCII") from None


def parse_wire(raw: bytes, expected_topic: str) -> Any:
    """The parsed JSON of a single-frame ``TOPIC {json}`` message of ``expected_topic``; MessageError otherwise."""
    topic, payload = split_topic(raw)
    if topic != expected_topic:
        raise MessageError(f"topic is {topic!r}, expected {expected_topic!r}")
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise MessageError(f"payload is not JSON: {exc}") from None


def decode(raw: bytes) -> DetectionMessage:
    """Parse and validate one wire message; raise MessageError on any defect."""
    return from_dict(parse_wire(raw, TOPIC))


def from_dict(data: Any) -> DetectionMessage:
    """Validate a parsed message against schema v1 and build it."""
    _require_obj(data, "message", {"v", "seq", "frame", "t_publish_ns", "status", "model", "timing_ms", "fps", "detections"})
    if type(data["v"]) is not int or data["v"] != SCHEMA_VERSION:
        raise MessageError(f"unsupported schema version {data['v']!r}, this reader knows {SCHEMA_VERSION}")
    status = _str(data["status"], "status")
    frame = data["frame"]
    timing = data["timing_ms"]
    if status == "ok":
        if frame is None or timing is None:
            raise MessageError("a message with status 'ok' must have frame and timing_ms")
    elif frame is not None and not isinstance(frame, dict):
        raise MessageError("frame must be an object or null")
    model = data["model"]
    _require_obj(model, "model", {"name", "precision", "sha256"}, optional={"labels"})
    labels = model.get("labels")
    if "labels" in model:  # optional, but when present a list (as the JSON Schema says): null is refused
        if not isinstance(labels, list) or len(labels) > MAX_ITEMS:
            raise MessageError(f"model.labels must be a list of at most {MAX_ITEMS} strings")
        labels = tuple(_str(label, "model.labels[]") for label in labels)
    dets = data["detections"]
    if not isinstance(dets, list) or len(dets) > MAX_ITEMS:
        raise MessageError(f"detections must be a list of at most {MAX_ITEMS}")
    if dets and status != "ok":
        raise MessageError(f"a message with status {status!r} cannot carry detections")
    return DetectionMessage(
        v=SCHEMA_VERSION,
        seq=_nonneg(_int(data["seq"], "seq"), "seq"),
        t_publish_ns=_int(data["t_publish_ns"], "t_publish_ns"),
        status=status,
        model=ModelRef(
            _str(model["name"], "model.name"),
            _str(model["precision"], "model.precision"),
            _str(model["sha256"], "model.sha256"),
            labels,
        ),
        fps=_nonneg(_num(data["fps"], "fps"), "fps"),
        frame=None if frame is None else _frame(frame),
        timing_ms=None if timing is None else _timing(timing),
        detections=tuple(_detection(d, i) for i, d in enumerate(dets)),
    )


def _frame(data: Any) -> FrameInfo:
    _require_obj(data, "frame", {"seq", "t_capture_ns", "t_capture", "width", "height"})
    width, height = _int(data["width"], "frame.width"), _int(data["height"], "frame.height")
    if width < 1 or height < 1:
        raise MessageError("frame.width and frame.height must be at least 1")
    return FrameInfo(
        seq=_nonneg(_int(data["seq"], "frame.seq"), "frame.seq"),
        t_capture_ns=_int(data["t_capture_ns"], "frame.t_capture_ns"),
        t_capture=_num(data["t_capture"], "frame.t_capture"),
        width=width,
        height=height,
    )


def _timing(data: Any) -> Timing:
    keys = ("preprocess", "inference", "postprocess", "capture_to_publish")
    _require_obj(data, "timing_ms", set(keys))
    return Timing(*(_nonneg(_num(data[k], f"timing_ms.{k}"), f"timing_ms.{k}") for k in keys))


def _detection(data: Any, index: int) -> Detection:
    where = f"detections[{index}]"
    _require_obj(data, where, {"label", "class_id", "score", "box"})
    score = _num(data["score"], f"{where}.score")
    if not 0.0 <= score <= 1.0:
        raise MessageError(f"{where}.score {score} is outside [0, 1]")
    box = data["box"]
    if not isinstance(box, list) or len(box) != 4:
        raise MessageError(f"{where}.box must be a list of 4 numbers")
    x1, y1, x2, y2 = (_num(v, f"{where}.box") for v in box)
    if not all(0.0 <= v <= 1.0 for v in (x1, y1, x2, y2)):
        raise MessageError(f"{where}.box {box} is outside [0, 1]")
    if x1 > x2 or y1 > y2:
        raise MessageError(f"{where}.box {box} has x1 > x2 or y1 > y2")
    class_id = _int(data["class_id"], f"{where}.class_id")
    if class_id < 0:
        raise MessageError(f"{where}.class_id must not be negative")
    return Detection(label=_str(data["label"], f"{where}.label"), class_id=class_id, score=score, box=(x1, y1, x2, y2))


def _require_obj(data: Any, where: str, keys: Iterable[str], optional: Iterable[str] = ()) -> None:
    if not isinstance(data, dict):
        raise MessageError(f"{where} must be a JSON object")
    keys = set(keys)
    missing = keys - data.keys()
    if missing:
        raise MessageError(f"{where} lacks {', '.join(sorted(missing))}")
    extra = data.keys() - keys - set(optional)
    if extra:
        raise MessageError(f"{where} has unknown keys {', '.join(sorted(extra))}")


def _int(value: Any, where: str) -> int:
    if type(value) is not int or not -_MAX_INT <= value <= _MAX_INT:
        raise MessageError(f"{where} must be an integer")
    return value


def _num(value: Any, where: str) -> float:
    if type(value) is int and -_MAX_INT <= value <= _MAX_INT:
        return float(value)
    if type(value) is not float or not math.isfinite(value):
        raise MessageError(f"{where} must be a finite number")
    return value


def _nonneg(value: Any, where: str) -> Any:
    """The schema's ``minimum: 0`` on counters, rates and durations."""
    if value < 0:
        raise MessageError(f"{where} must not be negative")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_STRING:
        raise MessageError(f"{where} must be a string of at most {MAX_STRING} characters")
    return value
