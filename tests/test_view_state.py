"""The live view's pure parts: preview wire format, rate cap, JPEG encoding, pairing and the panel."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
import zmq

from rover.core.errors import ConfigError, MessageError
from rover.core.messages import Detection, DetectionMessage, FrameInfo, ModelRef, Timing
from rover.detector.preview import FrameHeader, PreviewPublisher, RateCap, decode_frame, encode_header, encode_jpeg
from rover.drive.status import DriveStatus, TargetInfo
from rover.sources.base import Frame
from rover.view.hub import Latest
from rover.view.state import LOCK_IOU, LiveState, iou

MODEL = ModelRef("ssd", "int8", "0" * 64, ("person", "car"))


def detection_message(seq: int, *boxes: tuple[str, tuple[float, float, float, float]], status: str = "ok") -> DetectionMessage:
    if status != "ok":
        return DetectionMessage(seq=seq, t_publish_ns=seq, status=status, model=MODEL, fps=0.0)
    return DetectionMessage(
        seq=seq, t_publish_ns=seq, status="ok", model=MODEL, fps=10.0,
        frame=FrameInfo(seq, 1_000_000_000, 0.0, 768, 576),
        timing_ms=Timing(2.0, 100.0, 1.0, 110.0),
        detections=tuple(Detection(label, 1 if label == "person" else 2, 0.9, box) for label, box in boxes),
    )


def drive_status(target: tuple[float, float, float, float] | None, state: str = "FOLLOWING") -> DriveStatus:
    return DriveStatus(seq=1, t_ns=1, state=state, follow="person", throttle=0.3, steering=-0.1, pan=0.0, scale=1.0,
                       target=None if target is None else TargetInfo(target, 0.9), detection_age_ms=40.0, latency_ms=120.0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def header(seq: int) -> FrameHeader:
    return FrameHeader(seq=seq, frame_seq=seq, t_capture_ns=1, width=320, height=240)


# -- wire format, rate cap, JPEG ----------------------------------------------
def test_frame_round_trips_and_bad_frames_are_refused():
    head = header(7)
    jpeg = encode_jpeg(np.zeros((48, 64, 3), np.uint8), "bgr", 320, 70)[0]
    assert decode_frame([b"frame", encode_header(head), jpeg]) == (head, jpeg)
    with pytest.raises(MessageError, match="3 parts"):
        decode_frame([b"frame", encode_header(head)])
    with pytest.raises(MessageError, match="exactly the keys"):
        decode_frame([b"frame", b'{"v": 1}', jpeg])
    with pytest.raises(MessageError, match="not a JPEG"):
        decode_frame([b"frame", encode_header(head), b"GIF89a"])
    with pytest.raises(MessageError, match="non-negative"):
        decode_frame([b"frame", encode_header(header(-1)), jpeg])
    with pytest.raises(MessageError, match="not JSON"):  # json.loads raises RecursionError, not ValueError
        decode_frame([b"frame", b"[" * 100_000 + b"]" * 100_000, jpeg])


def test_rate_cap_keeps_the_average_rate_without_a_burst_after_a_pause():
    cap = RateCap(5.0)  # one per 0.2 s
    taken = [t for t in np.arange(0.0, 2.0, 1 / 12) if cap.accept(float(t))]  # a 12 fps detector
    assert 9 <= len(taken) <= 10  # 5 fps over 2 s, not 4 (every 3rd frame)
    assert all(b - a >= 1 / 12 - 1e-9 for a, b in zip(taken, taken[1:]))
    assert cap.accept(10.0) and not cap.accept(10.05)  # after a pause: one frame, then the cap again


def test_encode_jpeg_downscales_keeps_aspect_never_upscales_and_fixes_rgb():
    image = np.zeros((576, 768, 3), np.uint8)
    image[..., 2] = 255  # red in BGR
    jpeg, w, h = encode_jpeg(image, "bgr", 320, 80)
    assert (w, h) == (320, 240)
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (240, 320, 3) and decoded[..., 2].mean() > 200 and decoded[..., 0].mean() < 50
    rgb = image[..., ::-1].copy()  # the same red, in RGB order
    decoded = cv2.imdecode(np.frombuffer(encode_jpeg(rgb, "rgb", 320, 80)[0], np.uint8), cv2.IMREAD_COLOR)
    assert decoded[..., 2].mean() > 200
    assert encode_jpeg(np.zeros((48, 64, 3), np.uint8), "bgr", 320, 80)[1:] == (64, 48)


def test_preview_publisher_sends_capped_frames_with_their_message_seq(tmp_path):
    ctx = zmq.Context()
    endpoint = f"ipc://{tmp_path}/preview.sock"
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    sub.rcvtimeo = 5000
    sub.subscribe(b"frame")
    clock = Clock()
    try:
        with PreviewPublisher(endpoint, width=32, max_fps=5.0, context=ctx, clock=clock) as pub:
            sub.connect(endpoint)
            time.sleep(0.2)  # let the subscriber join
            image = np.full((48, 64, 3), 128, np.uint8)
            assert pub.offer(Frame(seq=3, t_capture_ns=11, t_capture=0.0, image=image), "bgr", 42)
            assert not pub.offer(Frame(seq=4, t_capture_ns=12, t_capture=0.0, image=image), "bgr", 43)  # capped
            head, jpeg = decode_frame(sub.recv_multipart())
            assert head == FrameHeader(seq=42, frame_seq=3, t_capture_ns=11, width=32, height=24)
            assert (pub.offered, pub.taken) == (2, 1)
    finally:
        sub.close()
        ctx.term()


def test_preview_publisher_refuses_a_lan_endpoint():
    with pytest.raises(ConfigError, match="view.frames tcp://0.0.0.0:5557 is reachable from the network"):
        PreviewPublisher("tcp://0.0.0.0:5557")


# -- pairing and the panel ----------------------------------------------------
PERSON = (0.1, 0.1, 0.4, 0.9)
OTHER = (0.6, 0.2, 0.8, 0.9)


def test_a_frame_gets_the_boxes_of_its_own_message_and_the_locked_one_is_marked():
    clock = Clock()
    state = LiveState(2.0, clock=clock, clock_ns=lambda: 1_050_000_000)
    state.on_detection(detection_message(1, ("person", OTHER)))
    state.on_detection(detection_message(2, ("person", PERSON), ("person", OTHER), ("car", PERSON)))
    state.on_detection(detection_message(3))
    state.on_drive(drive_status((0.12, 0.1, 0.42, 0.88)))
    event = state.on_frame(header(2))
    assert event["seq"] == 2 and event["target"] == [0.12, 0.1, 0.42, 0.88]
    assert [(d["label"], d["box"], d["locked"]) for d in event["detections"]] == [
        ("person", list(PERSON), True), ("person", list(OTHER), False), ("car", list(PERSON), False)]
    assert state.on_frame(header(3))["detections"] == []
    assert state.on_frame(header(99))["detections"] is None  # its message was not received


def test_nothing_is_locked_without_a_fresh_drive_target_or_enough_overlap():
    clock = Clock()
    state = LiveState(2.0, clock=clock)
    state.on_detection(detection_message(1, ("person", PERSON)))
    assert not state.on_frame(header(1))["detections"][0]["locked"]  # no drive at all
    state.on_drive(drive_status((0.5, 0.5, 0.6, 0.6)))
    assert iou(PERSON, (0.5, 0.5, 0.6, 0.6)) < LOCK_IOU
    assert not state.on_frame(header(1))["detections"][0]["locked"]
    state.on_drive(drive_status(PERSON))
    assert state.on_frame(header(1))["detections"][0]["locked"]
    clock.now += 2.5  # the drive went silent
    event = state.on_frame(header(1))
    assert not event["detections"][0]["locked"] and event["target"] is None


def test_panel_shows_live_figures_then_offline_then_recovers_after_a_restart():
    clock = Clock()
    state = LiveState(2.0, clock=clock, clock_ns=lambda: 1_130_000_000)
    snap = state.snapshot()
    assert not snap["detector"]["online"] and not snap["drive"]["online"] and not snap["video"]["online"]
    for seq in range(10, 13):
        state.on_detection(detection_message(seq, ("person", PERSON)))
    state.on_drive(drive_status(PERSON))
    state.on_frame(header(12))
    clock.now += 0.5
    state.on_frame(header(12))
    snap = state.snapshot()
    assert snap["detector"] == {"online": True, "age_s": 0.5, "status": "ok", "seq": 12, "fps": 10.0,
                                "model": "ssd int8", "inference_ms": 100.0, "capture_to_publish_ms": 110.0,
                                "capture_to_view_ms": 130.0, "detections": 1}
    assert snap["drive"]["online"] and snap["drive"]["state"] == "FOLLOWING" and snap["drive"]["locked"]
    assert snap["drive"]["latency_ms"] == 120.0 and snap["drive"]["detection_age_ms"] == 40.0
    assert snap["video"] == {"online": True, "age_s": 0.0, "frames": 2, "fps": 2.0, "seq": 12, "width": 320, "height": 240}

    clock.now += 2.1  # everything went silent: the detector is restarting
    snap = state.snapshot()
    assert not snap["detector"]["online"] and not snap["drive"]["online"] and not snap["video"]["online"]
    assert snap["detector"]["age_s"] == 2.6

    state.on_detection(detection_message(0, status="starting"))  # seq starts again: old pairs are forgotten
    state.on_detection(detection_message(1, ("car", OTHER)))
    assert state.on_frame(header(12))["detections"] is None
    assert state.on_frame(header(1))["detections"][0]["label"] == "car"
    snap = state.snapshot()
    assert snap["detector"]["online"] and snap["detector"]["seq"] == 1 and snap["video"]["online"]


def test_a_disabled_drive_is_reported_as_such():
    assert LiveState(drive_enabled=False).snapshot()["drive"] == {"enabled": False, "online": False, "age_s": None}


def test_latest_wakes_waiters_with_the_newest_value_only():
    latest = Latest()
    assert latest.wait_newer(0, 0.01) == (0, None)
    got = []
    waiter = threading.Thread(target=lambda: got.append(latest.wait_newer(0, 5.0)))
    waiter.start()
    latest.put("a")
    waiter.join()
    latest.put("b")
    latest.put("c")
    assert got == [(1, "a")] and latest.wait_newer(1, 0.01) == (3, "c")
