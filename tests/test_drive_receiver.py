"""Receiving: validation and freshness (pure gate), and the real conflating SUB socket."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import zmq

from rover.core.errors import ConfigError, RoverError
from rover.core.messages import MAX_WIRE_BYTES, DetectionMessage, ModelRef, encode
from rover.drive.receiver import DetectionSubscriber, MessageGate, StatusPublisher
from tests.test_drive_fakes import detection_bytes, person


def test_fresh_stale_invalid_and_status_messages_are_told_apart_and_counted() -> None:
    gate = MessageGate(max_age_s=0.5)
    now = 100.0
    fresh = gate.classify(detection_bytes([person(0.5, 0.3)], t_capture_s=now - 0.2), now)
    assert fresh.kind == "fresh" and fresh.age_s == pytest.approx(0.2)
    assert gate.classify(detection_bytes([person(0.5, 0.3)], t_capture_s=now - 0.51), now).kind == "stale"
    assert gate.classify(detection_bytes([], t_capture_s=now + 1.0), now).kind == "stale"  # another host's clock
    assert gate.classify(b"detections {not json", now).kind == "invalid"
    starting = DetectionMessage(seq=0, t_publish_ns=0, status="starting", model=ModelRef("m", "float32", "x"), fps=0.0)
    assert gate.classify(encode(starting), now).kind == "status"
    assert gate.counters == {"fresh": 1, "stale": 2, "invalid": 1, "status": 1}


def test_invalid_reason_names_the_defect() -> None:
    gate = MessageGate(max_age_s=0.5)
    raw = detection_bytes([person(0.5, 0.3)], t_capture_s=1.0).replace(b'"score":0.9', b'"score":1.5')
    received = gate.classify(raw, 1.0)
    assert received.kind == "invalid" and "score" in received.reason


@pytest.mark.slow
def test_subscriber_keeps_only_the_newest_message(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/detections"
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(endpoint)
    sub = DetectionSubscriber(endpoint, context)
    try:
        deadline = time.monotonic() + 10
        while sub.recv(0.05) is None:  # the slow-joiner: publish until the subscription is in place
            pub.send(detection_bytes([], t_capture_s=0.0, seq=0))
            assert time.monotonic() < deadline, "subscription never established"
        pub.send(b"other-topic {}")  # filtered out by the subscription
        for seq in range(1, 6):
            pub.send(detection_bytes([], t_capture_s=0.0, seq=seq))
        time.sleep(0.2)
        newest = sub.recv(1.0)
        assert newest is not None and b'"seq":5' in newest
        assert sub.recv(0.05) is None  # the four older ones were conflated away
    finally:
        sub.close()
        pub.close()
        context.term()


def test_a_malformed_endpoint_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--connect"):
        DetectionSubscriber("nonsense://here")
    with pytest.raises(ConfigError, match="--publish"):
        StatusPublisher("tcp://not a host:-1")


@pytest.mark.slow
def test_a_busy_status_endpoint_is_a_runtime_error_not_a_config_error() -> None:
    first = StatusPublisher("tcp://127.0.0.1:*")  # a free port chosen by the OS
    try:
        endpoint = first.socket.getsockopt(zmq.LAST_ENDPOINT).decode()
        with pytest.raises(RoverError, match="address in use") as info:
            StatusPublisher(endpoint)
        assert not isinstance(info.value, ConfigError) and info.value.exit_code == 1
    finally:
        first.close()


@pytest.mark.slow
def test_an_oversized_message_is_never_delivered_and_the_subscriber_reconnects(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/detections"
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(endpoint)
    sub = DetectionSubscriber(endpoint, context, reconnect_after_s=0.5)
    huge = b"detections " + b"x" * (MAX_WIRE_BYTES + 1)
    try:
        deadline = time.monotonic() + 10
        while sub.recv(0.05) is None:  # the slow-joiner
            pub.send(detection_bytes([], t_capture_s=0.0, seq=0))
            assert time.monotonic() < deadline, "subscription never established"
        pub.send(huge)  # libzmq drops the connection instead of buffering it
        received = []
        deadline = time.monotonic() + 10
        while not any(b'"seq":7' in raw for raw in received):
            pub.send(detection_bytes([], t_capture_s=0.0, seq=7))
            raw = sub.recv(0.1)
            if raw is not None:
                received.append(raw)
            assert time.monotonic() < deadline, "the stream did not recover after the oversized message"
        assert all(len(raw) <= MAX_WIRE_BYTES for raw in received)
        assert sub.reconnects >= 1  # libzmq dropped the session for good; the subscriber made a new one
    finally:
        sub.close()
        pub.close()
        context.term()
