"""Faithful fakes for the drive tests, and tests that they are faithful.

- :class:`FakeClock`: the injected monotonic clock (seconds), advanced only by
  the fakes, so every timeout is exact.
- :class:`RecordingChassis`: a car that records what its outputs are set to,
  with timestamps, and applies the ``rover.hw.chassis`` contract (clamping,
  refusing non-finite values, idempotent ``safe``/``close``).
- :class:`ScriptedStream`: a detection stream as a ``ZMQ_CONFLATE`` SUB socket
  sees it: messages become available at given times, ``recv`` returns the
  newest one available within the timeout and drops older ones, and waiting
  advances the clock as a real poll would.
- :func:`detection_bytes`: a valid wire message built with rover.core.messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from rover.core.messages import Detection, DetectionMessage, FrameInfo, ModelRef, Timing, encode
from rover.hw.chassis import Chassis

MODEL = ModelRef("ssd300-resnet50", "float32", "0" * 64)


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


@dataclass
class RecordingChassis:
    """Records every output level with the time it was set."""

    clock: FakeClock
    distance: float | None = None
    has_ranger: bool = False  # True: a fitted ultrasonic sensor, whose None means "unknown"
    throttle: float = 0.0
    steering: float = 0.0
    pan_position: float = 0.0
    tilt_position: float = 0.0
    closed: bool = False
    history: list[tuple[float, str, float]] = field(default_factory=list)

    def _set(self, name: str, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, not {value}")
        value = max(-1.0, min(1.0, float(value)))
        self.history.append((self.clock(), name, value))
        return value

    def drive(self, throttle: float) -> None:
        self.throttle = self._set("throttle", throttle)

    def steer(self, steering: float) -> None:
        self.steering = self._set("steering", steering)

    def pan(self, position: float) -> None:
        self.pan_position = self._set("pan", position)

    def tilt(self, position: float) -> None:
        self.tilt_position = self._set("tilt", position)

    def distance_m(self) -> float | None:
        return self.distance

    def safe(self) -> None:
        self.drive(0.0)
        self.steer(0.0)
        self.pan(0.0)
        self.tilt(0.0)

    def close(self) -> None:
        if not self.closed:
            self.safe()
            self.closed = True

    @property
    def neutral(self) -> bool:
        return self.throttle == 0.0 and self.steering == 0.0

    def values(self, name: str) -> list[float]:
        return [value for _, kind, value in self.history if kind == name]


class ScriptedStream:
    """The receiving end of a conflating SUB socket, on the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.pending: list[tuple[float, bytes]] = []

    def publish_at(self, t: float, raw: bytes) -> None:
        self.pending.append((t, raw))
        self.pending.sort(key=lambda item: item[0])

    def recv(self, timeout_s: float) -> bytes | None:
        deadline = self.clock.now + timeout_s
        available = [item for item in self.pending if item[0] <= deadline]
        if not available:
            self.clock.advance(timeout_s)
            return None
        first_t = available[0][0]
        arrived = [item for item in available if item[0] <= max(first_t, self.clock.now)]
        self.pending = [item for item in self.pending if item not in arrived]
        self.clock.advance(max(0.0, first_t - self.clock.now))
        return arrived[-1][1]  # conflate: only the newest survives


def detection_bytes(
    detections: list[tuple[str, float, tuple[float, float, float, float]]],
    t_capture_s: float,
    seq: int = 0,
    model: ModelRef = MODEL,
) -> bytes:
    """A valid v1 message whose frame was captured at ``t_capture_s`` (fake clock seconds)."""
    capture_ns = int(round(t_capture_s * 1e9))
    message = DetectionMessage(
        seq=seq,
        t_publish_ns=capture_ns + 1_000_000,
        status="ok",
        model=model,
        fps=10.0,
        frame=FrameInfo(seq=seq, t_capture_ns=capture_ns, t_capture=1.7e9 + t_capture_s, width=640, height=480),
        timing_ms=Timing(1.0, 50.0, 1.0, 52.0),
        detections=tuple(
            Detection(label=label, class_id=15 if label == "person" else 1, score=score, box=box)
            for label, score, box in detections
        ),
    )
    return encode(message)


def person(centre_x: float, height: float, score: float = 0.9, top: float = 0.1) -> tuple[str, float, tuple[float, float, float, float]]:
    """A person box of ``height`` (fraction of the frame) centred at ``centre_x``."""
    width = height * 0.4
    return ("person", score, (max(0.0, centre_x - width / 2), top, min(1.0, centre_x + width / 2), min(1.0, top + height)))


# --- the fakes' own contract -------------------------------------------------------------


def test_recording_chassis_follows_the_chassis_contract() -> None:
    clock = FakeClock()
    car = RecordingChassis(clock)
    assert isinstance(car, Chassis)
    car.drive(3.0)
    car.steer(-7.0)
    assert (car.throttle, car.steering) == (1.0, -1.0)  # clamped, as every backend does
    with pytest.raises(ValueError):
        car.drive(float("nan"))
    clock.advance(0.5)
    car.close()
    car.close()
    assert car.neutral and car.closed
    assert car.history[-4:] == [(1000.5, "throttle", 0.0), (1000.5, "steering", 0.0), (1000.5, "pan", 0.0), (1000.5, "tilt", 0.0)]


def test_scripted_stream_conflates_and_waits_like_a_poll() -> None:
    clock = FakeClock(0.0)
    stream = ScriptedStream(clock)
    for i in range(3):
        stream.publish_at(0.01 * i, f"m{i}".encode())
    stream.publish_at(0.2, b"later")
    clock.advance(0.05)
    assert stream.recv(0.05) == b"m2"  # the newest of those already queued
    assert clock.now == pytest.approx(0.05)
    assert stream.recv(0.05) is None  # nothing before 0.10: the poll times out
    assert clock.now == pytest.approx(0.10)
    assert stream.recv(0.5) == b"later"  # returns as soon as it arrives
    assert clock.now == pytest.approx(0.2)
