"""What the simulator's processes say to each other: pure encode and decode.

- Chassis commands, from the drive's ``sim`` backend to the world: one frame
  ``sim.cmd {json}`` with ``throttle``, ``steering``, ``pan``, ``tilt`` (units
  of :mod:`rover.hw.chassis`), ``duty`` (the signed motor duty fraction the
  backend set, -1..1, through the car's ``[picar_b]`` duty mapping) and ``t_ns`` (``time.monotonic_ns()`` of the
  sender). Every message carries the whole command, so a lost one costs
  nothing but a little delay.
- Ultrasonic readings (``--ultrasonic``), from the world to the drive's
  ``sim`` chassis: one frame ``sim.range {json}`` per measurement with
  ``m`` (metres; null for a failed measurement), ``far`` (true: nothing in
  range, the kit's ``inf``) and ``t_ns`` of the world's clock.
- Detections, from the world to its publisher process and on to the drive:
  schema v1 messages of :mod:`rover.core.messages`, with the model named
  ``simulated`` and precision ``simulated``.
"""

from __future__ import annotations

import json
import math

from rover.core.errors import MessageError
from rover.core.messages import Detection, DetectionMessage, FrameInfo, ModelRef, Timing, parse_wire
from rover.sim.camera import CameraModel
from rover.sim.car import Command
from rover.sim.noise import DetectorModel
from rover.sim.world import Frame

COMMAND_TOPIC = "sim.cmd"
RANGE_TOPIC = "sim.range"
SIM_MODEL = ModelRef(name="simulated", precision="simulated", sha256="0" * 64, labels=("person",))


def encode_command(command: Command, t_ns: int) -> bytes:
    """The wire form of one chassis command."""
    body = {"throttle": command.throttle, "steering": command.steering, "pan": command.pan, "tilt": command.tilt,
            "duty": command.throttle if command.duty is None else command.duty, "t_ns": t_ns}
    return COMMAND_TOPIC.encode() + b" " + json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def decode_command(raw: bytes) -> tuple[Command, int]:
    """Parse one command; MessageError when it is not a well-formed ``sim.cmd``."""
    data = parse_wire(raw, COMMAND_TOPIC)
    try:
        values = [float(data[k]) for k in ("throttle", "steering", "pan", "tilt", "duty")]
        t_ns = int(data["t_ns"])
    except (ValueError, KeyError, TypeError) as exc:
        raise MessageError(f"malformed {COMMAND_TOPIC} message: {exc}") from None
    if not all(math.isfinite(v) and -1.0 <= v <= 1.0 for v in values):
        raise MessageError(f"{COMMAND_TOPIC} values must be finite and within -1..1, got {values}")
    return Command(*values), t_ns


def encode_range(metres: float | None, t_ns: int) -> bytes:
    """The wire form of one ultrasonic measurement: metres, inf (nothing in range) or None (failed)."""
    far = metres is not None and math.isinf(metres)
    body = {"m": None if metres is None or far else float(metres), "far": far, "t_ns": t_ns}
    return RANGE_TOPIC.encode() + b" " + json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def decode_range(raw: bytes) -> tuple[float | None, int]:
    """Parse one measurement; MessageError when it is not a well-formed ``sim.range``."""
    data = parse_wire(raw, RANGE_TOPIC)
    try:
        far, metres, t_ns = bool(data["far"]), data["m"], int(data["t_ns"])
        value = math.inf if far else (None if metres is None else float(metres))
    except (ValueError, KeyError, TypeError) as exc:
        raise MessageError(f"malformed {RANGE_TOPIC} message: {exc}") from None
    if value is not None and not (value == math.inf or (math.isfinite(value) and value >= 0.0)):
        raise MessageError(f"{RANGE_TOPIC} metres must be finite and not negative, got {metres}")
    return value, t_ns


def frame_message(frame: Frame, t_capture_ns: int, t_capture_unix: float, t_publish_ns: int,
                  camera: CameraModel, detector: DetectorModel) -> DetectionMessage:
    """The detection message the real detector would publish for ``frame``."""
    processing_ms = (frame.t_publish - frame.t_capture) * 1000.0
    return DetectionMessage(
        seq=frame.seq,
        t_publish_ns=t_publish_ns,
        status="ok",
        model=SIM_MODEL,
        fps=detector.fps,
        frame=FrameInfo(seq=frame.seq, t_capture_ns=t_capture_ns, t_capture=t_capture_unix,
                        width=camera.width, height=camera.height),
        timing_ms=Timing(preprocess=0.1 * processing_ms, inference=0.85 * processing_ms,
                         postprocess=0.05 * processing_ms, capture_to_publish=processing_ms),
        detections=tuple(Detection(label="person", class_id=1, score=d.score, box=d.box) for d in frame.detections),
    )
