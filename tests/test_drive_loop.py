"""The main loop, tick by tick, with an exact clock, a recording chassis and a scripted stream."""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path
from typing import Callable

import jsonschema
import pytest

from rover.core.messages import ModelRef
from rover.core.sdnotify import Notifier
from rover.drive.config import DriveConfig
from rover.drive.loop import DriveLoop
from rover.drive.states import State
from rover.drive.status import decode as decode_status
from tests.test_drive_fakes import FakeClock, RecordingChassis, ScriptedStream, detection_bytes, person

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "rover" / "schemas" / "drive-v1.schema.json").read_text())
Scene = Callable[[float], list]


class Rig:
    """A loop wired to fakes; ``play`` schedules a scene, ``run_until`` steps the loop."""

    def __init__(self, config: DriveConfig | None = None, notifier: Notifier | None = None) -> None:
        self.clock = FakeClock(1000.0)
        self.chassis = RecordingChassis(self.clock)
        self.stream = ScriptedStream(self.clock)
        self.published: list[bytes] = []
        self.sink = type("Sink", (), {"send": lambda _self, raw: self.published.append(raw)})()
        self.loop = DriveLoop(config or DriveConfig(), self.chassis, self.stream, self.sink, clock=self.clock, notifier=notifier)
        self.states: list[tuple[float, State]] = []

    def play(self, scene: Scene, start: float, stop: float, fps: float = 10.0, latency_s: float = 0.05) -> float:
        """Publish ``scene(t)`` at ``fps`` from ``start`` to ``stop`` (offsets from now); return the last publish time."""
        t0 = self.clock.now
        k, last = 0, t0
        while start + k / fps < stop - 1e-9:
            t = t0 + start + k / fps
            self.stream.publish_at(t, detection_bytes(scene(t), t_capture_s=t - latency_s, seq=k))
            last, k = t, k + 1
        return last

    def run_until(self, t: float) -> None:
        while self.clock.now < t - 1e-9:
            self.loop.step()
            self.states.append((self.clock.now, self.loop.state))

    def run_for(self, seconds: float) -> None:
        self.run_until(self.clock.now + seconds)

    def status(self) -> dict:
        return json.loads(self.published[-1].partition(b" ")[2])


def moved(chassis: RecordingChassis) -> bool:
    return any(value != 0.0 for _, kind, value in chassis.history)


def test_person_left_of_centre_steers_left_and_far_person_drives_forward() -> None:
    rig = Rig()
    rig.play(lambda t: [person(centre_x=0.3, height=0.25)], 0.0, 3.0)
    rig.run_for(2.0)
    assert rig.loop.state is State.FOLLOWING
    assert rig.chassis.steering > 0  # positive = left
    assert rig.chassis.throttle > 0
    rig2 = Rig()
    rig2.play(lambda t: [person(centre_x=0.8, height=0.25)], 0.0, 3.0)
    rig2.run_for(2.0)
    assert rig2.chassis.steering < 0


def test_close_person_stops_the_car() -> None:
    rig = Rig()
    start = rig.clock.now
    def height(t: float) -> float:  # far (0.2 of the frame), then walking up to the car within 1.5 s
        return 0.2 + 0.6 * min(1.0, max(0.0, t - start - 2.0) / 1.5)

    rig.play(lambda t: [person(0.5, height(t))], 0.0, 5.0)  # 0.8 of the frame: ~2.2 m, inside the follow distance
    rig.run_for(2.0)
    assert rig.chassis.throttle > 0.3
    rig.run_for(2.0)
    assert rig.loop.state is State.FOLLOWING
    assert rig.chassis.throttle == 0.0
    assert min(rig.chassis.values("throttle")) >= 0.0  # never reversed


def test_stream_stops_then_neutral_exactly_at_the_deadman_after_the_last_fresh_message() -> None:
    rig = Rig()
    last = rig.play(lambda t: [person(0.3, 0.2)], 0.0, 2.0)
    rig.run_until(last + 0.001)
    assert rig.chassis.throttle > 0 and rig.chassis.steering > 0
    deadman = rig.loop.limits.deadman_s  # 1.5 periods of a 10 frames/s stream, at least deadman_min_s
    assert DriveConfig().deadman_min_s <= deadman <= 0.5
    rig.run_for(1.0)
    neutral_at = next(t for t, kind, value in rig.chassis.history if t > last and kind == "throttle" and value == 0.0)
    assert neutral_at - last == pytest.approx(deadman, abs=1e-6)
    assert rig.chassis.neutral and rig.chassis.pan_position == 0.0
    assert rig.loop.state is State.SAFE
    assert rig.status()["state"] == "SAFE"


class Oversleeping:
    """A receiver whose process wakes up ``late_s`` after each poll timeout (a busy or stalled CPU)."""

    def __init__(self, inner, late_s: float) -> None:
        self.inner, self.late_s = inner, late_s

    def recv(self, timeout_s: float):
        return self.inner.recv(timeout_s + self.late_s)


@pytest.mark.parametrize("late_s", [0.002, 0.2])
def test_a_message_received_after_the_deadmans_deadline_does_not_cancel_it(late_s: float) -> None:
    rig = Rig()
    rig.loop.receiver = Oversleeping(rig.stream, late_s)
    last = rig.play(lambda t: [person(0.3, 0.2)], 0.0, 2.0)
    rig.run_until(last + 0.001)
    assert rig.loop.state is State.FOLLOWING and rig.chassis.throttle > 0
    late = last + rig.loop.limits.deadman_s + 0.001  # just after the deadline; the loop wakes up later still
    rig.stream.publish_at(late, detection_bytes([person(0.3, 0.2)], t_capture_s=late - 0.05, seq=999))
    rig.run_until(late + late_s + 0.001)
    assert State.SAFE in [state for t, state in rig.states if t > last]
    neutral = [t for t, kind, value in rig.chassis.history if t > last and kind == "throttle" and value == 0.0]
    assert neutral and rig.chassis.throttle == 0.0  # motors off, and re-arming is needed
    assert rig.loop.state is State.SAFE


def test_a_stalled_loop_does_not_take_its_whole_gap_as_one_acceleration_step() -> None:
    rig = Rig()
    rig.loop.receiver = Oversleeping(rig.stream, 0.2)
    rig.play(lambda t: [person(0.3, 0.05)], 0.0, 3.0, fps=2.5)  # far away: full speed wanted, a slow model
    rig.run_for(3.0)
    throttles = [value for _, kind, value in rig.chassis.history if kind == "throttle"]
    steps = [b - a for a, b in zip(throttles, throttles[1:])]
    assert max(steps) <= DriveConfig().accel_per_s * 2 * DriveConfig().tick_s + 1e-9


def test_rearming_after_the_deadman_needs_k_fresh_messages_again() -> None:
    rig = Rig()
    last = rig.play(lambda t: [person(0.3, 0.2)], 0.0, 1.0)
    rig.run_until(last + 0.6)
    assert rig.loop.state is State.SAFE
    t0 = rig.clock.now
    for k in range(3):
        rig.stream.publish_at(t0 + 0.1 * (k + 1), detection_bytes([person(0.3, 0.2)], t0 + 0.1 * (k + 1) - 0.05))
    rig.run_until(t0 + 0.35)
    assert rig.loop.state is State.ARMED and rig.chassis.neutral


def test_arming_needs_k_consecutive_fresh_messages() -> None:
    config = DriveConfig(arm_count=4)
    rig = Rig(config)
    t0 = rig.clock.now
    states = []
    for k in range(6):
        t = t0 + 0.1 * (k + 1)
        rig.stream.publish_at(t, detection_bytes([person(0.3, 0.2)], t - 0.05))
        rig.run_until(t + 0.01)
        states.append(rig.loop.state)
    assert states == [State.SAFE] * 3 + [State.ARMED, State.FOLLOWING, State.FOLLOWING]
    assert rig.chassis.history and all(v == 0.0 for t, _, v in rig.chassis.history if t <= t0 + 0.4 + 0.01)


def test_a_one_frame_false_box_never_starts_an_armed_car() -> None:
    rig = Rig()  # lock_frames = 3
    start = rig.clock.now
    rig.play(lambda t: [person(0.3, 0.3)] if abs(t - (start + 1.0)) < 1e-6 else [], 0.0, 2.0)
    rig.run_for(2.0)
    assert rig.loop.state is State.ARMED and not moved(rig.chassis)
    rig.play(lambda t: [person(0.3, 0.3)], 0.0, 1.0)
    rig.run_for(0.25)  # the third message in a row that shows the person locks them
    assert rig.loop.state is State.FOLLOWING and rig.chassis.throttle > 0


def test_stale_messages_never_move_the_car() -> None:
    rig = Rig()
    rig.play(lambda t: [person(0.2, 0.2)], 0.0, 5.0, latency_s=1.1)  # older than the hard bound max_age_s = 1.0
    rig.run_for(5.0)
    assert not moved(rig.chassis)
    assert rig.loop.state is State.SAFE
    counters = rig.status()["counters"]
    assert counters["stale"] == 50 and counters["fresh"] == 0


def test_stale_messages_interleaved_break_arming() -> None:
    rig = Rig()
    rig.play(lambda t: [person(0.2, 0.2)], 0.0, 5.0, fps=10, latency_s=0.05)
    rig.play(lambda t: [person(0.2, 0.2)], 0.05, 5.0, fps=10, latency_s=1.2)  # every other message is stale
    rig.run_for(5.0)
    assert not moved(rig.chassis)


def _mutations(rng) -> Callable[[dict], bytes]:
    """Mutators of a valid message dict that each make it invalid; return wire bytes."""
    nan, inf = float("nan"), float("inf")
    ints = [nan, inf, 10**40, "7", None, [], {}, True, 1.5]
    floats = [nan, inf, -inf, 10**40, "1.0", None, [], {}, True]
    strings = [5, None, [], {}, True, nan, "x" * 300]
    fields = {
        ("v",): [0, 2, "1", 1.0, True, None, nan],
        ("seq",): ints, ("t_publish_ns",): ints, ("frame", "seq"): ints, ("frame", "t_capture_ns"): ints,
        ("frame", "width"): ints + [0], ("frame", "height"): ints + [0], ("detections", 0, "class_id"): ints + [-1],
        ("fps",): floats, ("frame", "t_capture"): floats, ("timing_ms", "inference"): floats,
        ("status",): strings + ["stopping", "no_frame"],
        ("model", "name"): strings, ("model", "sha256"): strings, ("detections", 0, "label"): strings,
        ("model",): ["x", 5, [], None, {}], ("frame",): ["x", 5, [], None, {}], ("timing_ms",): ["x", 5, [], None, {}],
        ("detections",): ["x", 5, {}, None, [None], [5]], ("detections", 0): ["x", 5, [], None, {}],
        ("detections", 0, "score"): [-0.1, 1.5, nan, inf, "0.5", None, True],
        ("detections", 0, "box"): [[0, 0, 1], [0.5, 0, 0.4, 1], [0, 0, 1, 1.5], [-0.1, 0, 1, 1], "x", None, [nan, 0, 1, 1], [0, 0, 1, 1, 1]],
    }
    for k in range(4):
        fields[("detections", 0, "box", k)] = [nan, -0.5, 1.5, "x", None, inf, 10**40]
    paths = list(fields)

    def wire(data: object, topic: bytes = b"detections") -> bytes:
        return topic + b" " + json.dumps(data, allow_nan=True).encode()

    def mutate(data: dict) -> bytes:
        choice = rng.random()
        if choice < 0.1:
            return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 200)))
        if choice < 0.15:
            return b"detections " + bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 200)))
        if choice < 0.22:
            raw = wire(data)
            return raw[: rng.randrange(0, len(raw) - 1)]
        if choice < 0.26:
            return wire(data, rng.choice([b"drive", b"detection", b"DETECTIONS", b""]))
        if choice < 0.32:
            return wire(rng.choice([[], 5, "detections", None, [data]]))
        target_path = rng.choice(paths)
        parent = data
        for key in target_path[:-1]:
            parent = parent[key]
        key = target_path[-1]
        if choice < 0.4 and isinstance(parent, dict):
            del parent[key]
        elif choice < 0.46 and isinstance(parent, dict):
            parent["unexpected_" + str(rng.randrange(100))] = rng.choice([0, "x", None])
        else:
            parent[key] = rng.choice(fields[target_path])
        return wire(data)

    return mutate


def test_ten_thousand_malformed_or_random_messages_cause_no_crash_and_no_motion() -> None:
    import random

    rng = random.Random(20261125)
    rig = Rig()
    mutate = _mutations(rng)
    n = 10_000
    for k in range(n):
        t = rig.clock.now + 0.01
        base = json.loads(detection_bytes([person(rng.random() * 0.6 + 0.2, 0.3), person(0.8, 0.2, 0.6)], t - 0.02, seq=k).partition(b" ")[2])
        rig.stream.publish_at(t, mutate(base))
        rig.loop.step()
        assert rig.loop.state is State.SAFE
    counters = rig.status()["counters"]
    assert counters == {"fresh": 0, "stale": 0, "invalid": n, "status": 0}
    assert not moved(rig.chassis)
    assert all(value == 0.0 for _, _, value in rig.chassis.history)


def test_invalid_messages_between_fresh_ones_break_arming() -> None:
    rig = Rig()
    rig.play(lambda t: [person(0.3, 0.2)], 0.0, 3.0, fps=10)
    t0 = rig.clock.now
    for k in range(30):
        rig.stream.publish_at(t0 + 0.05 + 0.1 * k, b"detections {\"v\": 1}")
    rig.run_for(3.0)
    assert not moved(rig.chassis)
    assert rig.status()["counters"]["invalid"] == 30


def test_two_people_in_view_the_car_keeps_the_locked_one() -> None:
    rig = Rig()
    start = rig.clock.now

    def scene(t: float) -> list:
        # The locked person walks slowly from left of centre; a second one, farther and
        # scoring higher after the lock, stands on the right.
        walker = person(0.30 + 0.02 * (t - start), 0.3, score=0.9 if t < start + 0.5 else 0.6)
        other = person(0.80, 0.25, score=0.7 if t < start + 0.5 else 0.99)
        return [other, walker]

    rig.play(scene, 0.0, 4.0)
    rig.run_for(4.0)
    box = rig.status()["target"]["box"]
    assert (box[0] + box[2]) / 2 < 0.5  # still the walker
    following = [s for t, s in rig.states if t > start + 0.5]
    assert all(s is State.FOLLOWING for s in following)
    assert min(v for t, k, v in rig.chassis.history if k == "steering" and t > start + 0.5) >= 0.0


def test_a_slow_late_stream_lowers_the_speed_limit_and_the_car_keeps_to_it() -> None:
    results = {}
    # a bound whose speed limit at 2 frames/s (~1.5/1.7 s) is below the car's top speed (1.2 m/s)
    config = DriveConfig(travel_bound_m=1.5, follow_distance_m=2.5)
    for fps, latency in ((10, 0.05), (2, 0.5)):
        rig = Rig(config)
        rig.play(lambda t: [person(0.5, 0.1)], 0.0, 6.0, fps=fps, latency_s=latency)  # far away: full speed wanted
        rig.run_for(6.0)
        status = rig.status()
        assert status["state"] == "FOLLOWING"
        results[fps] = (max(rig.chassis.values("throttle")), status["limits"])
    (fast_thr, fast), (slow_thr, slow) = results[10], results[2]
    assert slow["deadman_ms"] > fast["deadman_ms"] and slow["max_age_ms"] > fast["max_age_ms"]
    assert slow["speed_limit_mps"] < fast["speed_limit_mps"]
    assert slow_thr * config.top_speed_mps <= slow["speed_limit_mps"] + 1e-9
    assert slow_thr < fast_thr
    horizon = (slow["max_age_ms"] + slow["deadman_ms"]) / 1000 + config.stop_time_s
    assert slow["speed_limit_mps"] * horizon == pytest.approx(config.travel_bound_m)


def test_target_leaves_view_lost_coasts_then_stops() -> None:
    rig = Rig()
    start = rig.clock.now
    rig.play(lambda t: [person(0.3, 0.2)] if t < start + 2.0 else [], 0.0, 5.0)
    rig.run_until(start + 2.0)
    moving = rig.chassis.throttle
    assert moving > 0
    last_capture = rig.loop.controller.target_capture
    horizon = rig.loop.limits.horizon_s
    rig.run_until(start + 2.15)
    assert rig.loop.state is State.LOST
    rig.run_until(last_capture + horizon + 0.06)
    stopped_at = next(t for t, kind, value in rig.chassis.history if t > start + 2.0 and kind == "throttle" and value == 0.0)
    assert stopped_at <= last_capture + horizon + 1e-6  # no more driving on information older than the horizon
    rig.run_until(start + 3.2)
    assert rig.loop.state is State.STOPPED and rig.chassis.neutral


def test_search_sweeps_the_head_then_stops() -> None:
    rig = Rig(DriveConfig(search=True, search_s=2.0))
    start = rig.clock.now
    rig.play(lambda t: [person(0.3, 0.2)] if t < start + 1.0 else [], 0.0, 6.0)
    rig.run_until(start + 2.5)
    assert rig.loop.state is State.SEARCH and rig.chassis.throttle == 0.0
    assert rig.chassis.pan_position != 0.0
    rig.run_until(start + 4.5)
    assert rig.loop.state is State.STOPPED and rig.chassis.pan_position == 0.0


def test_ultrasonic_bumper_stops_forward_motion() -> None:
    rig = Rig()
    rig.play(lambda t: [person(0.5, 0.2)], 0.0, 4.0)
    rig.run_for(2.0)
    assert rig.chassis.throttle > 0
    rig.chassis.distance = 0.2  # closer than bumper_m = 0.3
    rig.run_for(0.1)
    assert rig.chassis.throttle == 0.0
    assert rig.status()["obstacle_m"] == 0.2
    rig.chassis.distance = 2.0
    rig.run_for(1.0)
    assert rig.chassis.throttle > 0


def test_status_is_published_every_tick_and_matches_the_schema() -> None:
    rig = Rig()
    rig.play(lambda t: [person(0.3, 0.2)], 0.0, 1.0)
    rig.run_for(1.5)
    assert len(rig.published) >= 30
    seqs = []
    for raw in rig.published:
        jsonschema.validate(json.loads(raw.partition(b" ")[2]), SCHEMA)
        seqs.append(decode_status(raw).seq)
    assert seqs == list(range(len(seqs)))
    states = {decode_status(raw).state for raw in rig.published}
    assert {"SAFE", "ARMED", "FOLLOWING"} <= states


@pytest.mark.slow
def test_watchdog_and_status_reach_systemd_from_the_ticking_loop(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.setblocking(False)
    lines: list[str] = []

    def drain() -> None:  # as systemd does: read every datagram (a full queue would block the sender)
        while True:
            try:
                lines.extend(server.recv(4096).decode().splitlines())
            except BlockingIOError:
                return

    try:
        notifier = Notifier(environ={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})  # ping every 0.1 s
        rig = Rig(notifier=notifier)
        rig.play(lambda t: [person(0.3, 0.2)], 0.0, 1.0)
        end = rig.clock.now + 1.0
        while rig.clock.now < end - 1e-9:
            rig.loop.step()
            drain()
        notifier.close()
    finally:
        server.close()
    assert 9 <= lines.count("WATCHDOG=1") <= 11
    statuses = [line for line in lines if line.startswith("STATUS=")]
    assert [s.split(":")[0] for s in statuses] == ["STATUS=SAFE", "STATUS=ARMED", "STATUS=FOLLOWING"]


def test_pan_follow_turns_the_head_and_steers_with_it() -> None:
    rig = Rig(dataclasses.replace(DriveConfig(), pan_follow=True))
    rig.play(lambda t: [person(0.25, 0.2)], 0.0, 2.0)
    rig.run_for(1.5)
    assert rig.chassis.pan_position > 0 and rig.chassis.steering > 0


@pytest.mark.parametrize("status", ["stopping", "camera_error", "source_ended"])
def test_detector_reporting_blindness_stops_the_car_at_once(status: str) -> None:
    from rover.core.messages import DetectionMessage, encode

    rig = Rig()
    last = rig.play(lambda t: [person(0.3, 0.2)], 0.0, 2.0)
    blind = DetectionMessage(seq=99, t_publish_ns=0, status=status, model=ModelRef("m", "float32", "x"), fps=0.0)
    rig.stream.publish_at(last + 0.02, encode(blind))
    rig.run_until(last + 0.2)
    safe_at = next(t for t, state in rig.states if t > last and state is State.SAFE)
    assert safe_at == pytest.approx(last + 0.02)  # at once, not after the dead-man's 0.5 s
    assert [v for t, k, v in rig.chassis.history if k == "throttle" and t < safe_at][-1] > 0
    assert rig.chassis.neutral and rig.status()["counters"]["status"] == 1


def test_detector_starting_or_briefly_without_frame_leaves_it_to_the_deadman() -> None:
    from rover.core.messages import DetectionMessage, encode

    rig = Rig()
    last = rig.play(lambda t: [person(0.3, 0.2)], 0.0, 2.0)
    no_frame = DetectionMessage(seq=99, t_publish_ns=0, status="no_frame", model=ModelRef("m", "float32", "x"), fps=0.0)
    rig.stream.publish_at(last + 0.02, encode(no_frame))
    rig.run_until(last + 1.0)
    safe_at = next(t for t, state in rig.states if t > last and state is State.SAFE)
    assert safe_at == pytest.approx(last + rig.loop.limits.deadman_s)  # the dead-man, as without the message


def test_a_stream_that_slows_down_mid_run_slows_the_car_without_a_deadman_trip() -> None:
    rig = Rig()
    start, t = rig.clock.now, 0.0
    segments = []
    for fps in (10, 5, 3, 2):  # the detector slows down, one step a second and a half
        stop = t + 1.5
        last = rig.play(lambda _t: [person(0.5, 0.1)], t, stop, fps=fps, latency_s=1 / fps)  # far: full speed wanted
        t = last - start + 1 / fps
        segments.append((fps, last))
    limits = []
    for fps, last in segments:
        rig.run_until(last + 0.01)
        status = rig.status()
        assert status["state"] == "FOLLOWING", (fps, status["state"])
        assert status["estimate"] is not None and status["estimate"]["range_m"] > 5
        jsonschema.validate(status, SCHEMA)  # the estimate, the limits and target_faster are in the drive schema
        assert decode_status(rig.published[-1]).estimate is not None
        limits.append(status["limits"]["speed_limit_mps"])
        assert rig.chassis.throttle * DriveConfig().top_speed_mps <= status["limits"]["speed_limit_mps"] + 1e-9
    assert State.SAFE not in [s for when, s in rig.states if when > start + 1.0]  # armed once, never tripped
    assert limits[-1] < limits[0] and limits == sorted(limits, reverse=True)


def test_a_small_person_whose_feet_are_below_the_frame_is_not_approached() -> None:
    # A toddler (or someone sitting on the floor) 0.6 m away: the head in view, the feet below the frame's bottom.
    # The box height alone would put them 2.7-3.9 m away and ask for full speed.
    rig = Rig()
    start = rig.clock.now
    rig.play(lambda t: [("person", 0.9, (0.4, 0.30 + 0.1 * min(1.0, max(0.0, t - start - 1.0)), 0.6, 1.0))],
             0.0, 4.0, fps=5, latency_s=0.2)
    rig.run_for(4.0)
    assert State.FOLLOWING in [s for _, s in rig.states]  # the person is locked and followed, not ignored
    assert max(rig.chassis.values("throttle")) == 0.0
    assert rig.loop.controller.estimate is not None and rig.loop.controller.estimate.range_m < 0.7


def test_another_person_locked_after_the_first_left_starts_with_a_fresh_estimate() -> None:
    # A walks towards the car, leaves the view; 1.3 s later B, standing farther to the right, is locked.
    # B's first frames fall inside the old filter's gate: without a fresh start, the jump reads as a speed.
    rig = Rig()
    start = rig.clock.now

    def scene(t: float) -> list:
        s = t - start
        if s < 3.0:
            return [person(0.5, 0.20 + 0.10 * s / 3.0)]
        return [] if s < 4.3 else [person(0.7, 0.14)]
    rig.play(scene, 0.0, 7.0, fps=5, latency_s=0.2)
    rig.run_until(start + 3.0)
    locks = rig.loop.tracker.locks
    speeds = []
    while rig.clock.now < start + 7.0:
        rig.run_for(0.05)
        estimate = rig.loop.controller.estimate
        if rig.loop.tracker.locks > locks and estimate is not None:
            speeds.append(estimate.target_speed_mps)
    assert rig.loop.tracker.locks == locks + 1 and speeds  # B was locked and followed
    # B stands: no phantom speed from A's filter in the first half second (later the scripted box, which does not
    # grow as the car nears, reads as B walking away at the car's own speed)
    assert max(abs(v) for v in speeds[:10]) < 0.2


def test_a_capture_stamped_in_the_future_counts_as_captured_when_received() -> None:
    # Clocks 40 ms apart (within the gate's tolerance): the frame is fresh, but information is never newer than
    # its arrival, or the car would act on it 40 ms longer than the horizon allows.
    rig = Rig()
    rig.play(lambda t: [person(0.5, 0.2)], 0.0, 2.0, latency_s=-0.04)
    captures = []
    while rig.clock.now < 1002.0:
        rig.loop.step()
        if rig.loop.controller.target_capture is not None:
            captures.append(rig.loop.controller.target_capture - rig.clock.now)
    assert captures and max(captures) <= 1e-9
    assert rig.loop.gate.counters.get("stale", 0) == 0  # the frames were accepted as fresh


def test_the_published_estimate_stays_in_the_schema_when_an_approaching_person_vanishes() -> None:
    # The filter predicts the walker on past the car: the range must not go negative (schema minimum 0).
    rig = Rig()
    start = rig.clock.now

    def scene(t: float) -> list:
        s = t - start
        h = 0.25 + 0.2 * s
        return [] if s > 3.0 else [person(0.5, min(h, 0.85), top=max(0.0, 0.6 - h))]
    rig.play(scene, 0.0, 5.0)
    bad = []
    for _ in range(100):
        rig.run_for(0.05)
        status = rig.status()
        try:
            jsonschema.validate(status, SCHEMA)
            decode_status(rig.published[-1])
        except Exception as exc:  # noqa: BLE001 - any rejection is a failure to report
            bad.append((round(rig.clock.now - start, 2), status["estimate"], repr(exc)[:80]))
    assert not bad
