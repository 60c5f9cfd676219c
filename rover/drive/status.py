"""The drive status message, schema version 1: what the drive is doing.

One ZeroMQ frame, ``drive {json}``, published every control tick (so a live
view, a recorder or the simulator sees the state, the commands actually sent
and why). The JSON Schema is ``rover/schemas/drive-v1.schema.json``;
:func:`decode` enforces the same rules in plain Python plus finiteness.

Fields: ``v`` (1), ``seq`` (message number), ``t_ns`` (``time.monotonic_ns()``
of the drive's host), ``state``, ``follow`` (the label followed),
``target`` (``null`` or ``{"box": [x1, y1, x2, y2], "score": s}``, as last
seen, 0..1), ``throttle``, ``steering``, ``pan`` (the commands sent, -1..1,
units of ``rover.hw.chassis``), ``detection_age_ms`` (age of the last fresh
detection now, ``null`` before any), ``latency_ms`` (smoothed capture-to-receipt
latency, ``null`` before any), ``scale`` (gain and speed scale from latency,
0..1), ``obstacle_m`` (ultrasonic range, ``null`` when unknown) and
``counters`` (messages ``fresh``, ``stale``, ``invalid``, ``status``-only),
``estimate`` (``null`` or the target now: ``range_m``, ``bearing_deg`` left
> 0, ``range_rate_mps``, ``bearing_rate_dps``, ``target_speed_mps`` the
person's own speed along the line of sight), ``target_faster`` (true while
the person walks faster than the car's speed limit: the car drives at the
limit), ``limits`` (``max_age_ms``, ``deadman_ms``, ``speed_limit_mps``,
``travel_bound_m``: the limits in force, which follow the stream) and
``bumper`` (``off``, ``clear``, ``obstacle`` or ``unknown``: whether the
ultrasonic range blocks forward motion and why; see :mod:`rover.drive.bumper`).

Compatibility (docs/drive.md, "Schema versions"): version 1 only ever gains
*optional* keys, each with a documented meaning when absent, so a line of
any earlier v1 drive (a recording) still decodes: the keys in
:data:`OPTIONAL_DEFAULTS` were added after the first v1 drive, and a reader
fills in their value there (``None``: "not reported"). The drive itself
always sends every key. A message of another version is refused at once
with one line naming both versions.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from rover.core.errors import MessageError
from rover.core.messages import MAX_STRING, parse_wire
from rover.drive.bumper import STATES as BUMPER_STATES
from rover.drive.states import State

SCHEMA_VERSION = 1
TOPIC = "drive"
TOPIC_BYTES = TOPIC.encode()
COUNTERS = ("fresh", "stale", "invalid", "status")
#: The keys of the first v1 drive (2026-11): every v1 message has them.
REQUIRED_KEYS = frozenset({"v", "seq", "t_ns", "state", "follow", "target", "throttle", "steering", "pan",
                           "detection_age_ms", "latency_ms", "scale", "obstacle_m", "counters"})
#: Keys added to v1 later, and what a reader takes when a (older) message lacks one:
#: no estimate; ``target_faster``, ``limits`` and ``bumper`` not reported (None).
OPTIONAL_DEFAULTS: dict[str, Any] = {"estimate": None, "target_faster": None, "limits": None, "bumper": None}
_ESTIMATE_KEYS = ("range_m", "bearing_deg", "range_rate_mps", "bearing_rate_dps", "target_speed_mps")
_LIMITS_KEYS = ("max_age_ms", "deadman_ms", "speed_limit_mps", "travel_bound_m")
_MAX_INT = 2**63 - 1


@dataclass(frozen=True)
class TargetInfo:
    box: tuple[float, float, float, float]
    score: float


@dataclass(frozen=True)
class EstimateInfo:
    range_m: float
    bearing_deg: float
    range_rate_mps: float
    bearing_rate_dps: float
    target_speed_mps: float


@dataclass(frozen=True)
class LimitsInfo:
    max_age_ms: float
    deadman_ms: float
    speed_limit_mps: float
    travel_bound_m: float


@dataclass(frozen=True)
class DriveStatus:
    """One message of the drive status stream."""

    seq: int
    t_ns: int
    state: str
    follow: str
    throttle: float
    steering: float
    pan: float
    scale: float
    target: TargetInfo | None = None
    detection_age_ms: float | None = None
    latency_ms: float | None = None
    obstacle_m: float | None = None
    counters: dict[str, int] = field(default_factory=lambda: {name: 0 for name in COUNTERS})
    estimate: EstimateInfo | None = None
    #: None: not reported (a message from a drive older than the key).
    target_faster: bool | None = None
    #: None: not reported (a message from a drive older than the key).
    limits: LimitsInfo | None = None
    #: The bumper's state (rover.drive.bumper.STATES): why forward motion is blocked, if it is. None: not reported.
    bumper: str | None = None
    v: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON object; an optional key that is not reported (None, where null is not its value) is left out."""
        data = asdict(self)
        if self.target is not None:
            data["target"] = {"box": list(self.target.box), "score": self.target.score}
        for key in ("target_faster", "limits", "bumper"):
            if data[key] is None:
                del data[key]
        return data


def encode(status: DriveStatus) -> bytes:
    """The wire form: ``b"drive " + JSON``."""
    return TOPIC_BYTES + b" " + json.dumps(status.to_dict(), separators=(",", ":"), allow_nan=False).encode()


def decode(raw: bytes) -> DriveStatus:
    """Parse and validate one status message; raise MessageError on any defect."""
    return from_dict(parse_wire(raw, TOPIC))


def from_dict(data: Any) -> DriveStatus:
    """Validate a parsed status message against schema v1 (any of its revisions) and build it.

    The version is checked first, so a message of a newer schema is refused
    with one line saying so rather than with whatever key it changed.
    """
    if not isinstance(data, dict):
        raise MessageError("status must be a JSON object")
    if "v" in data and (type(data["v"]) is not int or data["v"] != SCHEMA_VERSION):
        raise MessageError(f"drive status schema version {data['v']!r} is not one this reader knows "
                           f"(it reads version {SCHEMA_VERSION}): update rover where this status is read")
    _keys(data, "status", REQUIRED_KEYS, OPTIONAL_DEFAULTS.keys())
    if not isinstance(data["state"], str) or data["state"] not in {s.value for s in State}:
        raise MessageError(f"state {data['state']!r} is not one of {', '.join(s.value for s in State)}")
    if not isinstance(data["follow"], str) or len(data["follow"]) > MAX_STRING:
        raise MessageError(f"follow must be a string of at most {MAX_STRING} characters")
    target = data["target"]
    if target is not None:
        _keys(target, "target", {"box", "score"})
        box = target["box"]
        if not isinstance(box, list) or len(box) != 4:
            raise MessageError("target.box must be a list of 4 numbers")
        target = TargetInfo(tuple(_num(v, "target.box", 0.0, 1.0) for v in box), _num(target["score"], "target.score", 0.0, 1.0))
    counters = data["counters"]
    _keys(counters, "counters", set(COUNTERS))
    estimate = data.get("estimate", OPTIONAL_DEFAULTS["estimate"])
    if estimate is not None:
        _keys(estimate, "estimate", set(_ESTIMATE_KEYS))
        estimate = EstimateInfo(_num(estimate["range_m"], "estimate.range_m", 0.0),
                                *(_num(estimate[k], f"estimate.{k}") for k in _ESTIMATE_KEYS[1:]))
    # Absent: not reported. Present: never null (the schema's types), so "absent" stays distinguishable.
    limits = data.get("limits", OPTIONAL_DEFAULTS["limits"])
    if "limits" in data:
        _keys(limits, "limits", set(_LIMITS_KEYS))
        limits = LimitsInfo(*(_num(limits[k], f"limits.{k}", 0.0) for k in _LIMITS_KEYS))
    target_faster = data.get("target_faster", OPTIONAL_DEFAULTS["target_faster"])
    if "target_faster" in data and type(target_faster) is not bool:
        raise MessageError("target_faster must be true or false")
    bumper = data.get("bumper", OPTIONAL_DEFAULTS["bumper"])
    if "bumper" in data and (not isinstance(bumper, str) or bumper not in BUMPER_STATES):
        raise MessageError(f"bumper {bumper!r} is not one of {', '.join(BUMPER_STATES)}")
    return DriveStatus(
        seq=_int(data["seq"], "seq"),
        t_ns=_int(data["t_ns"], "t_ns"),
        state=data["state"],
        follow=data["follow"],
        throttle=_num(data["throttle"], "throttle", -1.0, 1.0),
        steering=_num(data["steering"], "steering", -1.0, 1.0),
        pan=_num(data["pan"], "pan", -1.0, 1.0),
        scale=_num(data["scale"], "scale", 0.0, 1.0),
        target=target,
        detection_age_ms=_opt(data["detection_age_ms"], "detection_age_ms"),
        latency_ms=_opt(data["latency_ms"], "latency_ms"),
        obstacle_m=_opt(data["obstacle_m"], "obstacle_m"),
        counters={name: _int(counters[name], f"counters.{name}") for name in COUNTERS},
        estimate=estimate,
        target_faster=target_faster,
        limits=limits,
        bumper=bumper,
    )


def _keys(data: Any, where: str, keys: Iterable[str], optional: Iterable[str] = ()) -> None:
    if not isinstance(data, dict):
        raise MessageError(f"{where} must be a JSON object")
    missing = set(keys) - data.keys()
    if missing:
        raise MessageError(f"{where} lacks {', '.join(sorted(missing))}")
    extra = data.keys() - set(keys) - set(optional)
    if extra:
        raise MessageError(f"{where} has unknown keys {', '.join(sorted(extra))}")


def _int(value: Any, where: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_INT:
        raise MessageError(f"{where} must be a non-negative integer")
    return value


def _num(value: Any, where: str, low: float = -math.inf, high: float = math.inf) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or not low <= value <= high:
        raise MessageError(f"{where} must be a finite number in [{low}, {high}]")
    return float(value)


def _opt(value: Any, where: str) -> float | None:
    return None if value is None else _num(value, where, 0.0)
