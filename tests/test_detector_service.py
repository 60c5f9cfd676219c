"""DetectorService with a real tiny model, a scripted source and a recording publisher."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from rover.core.errors import CameraError
from rover.core.messages import decode, encode
from rover.core.sdnotify import Notifier
from rover.detector.model import Detector
from rover.detector.service import DetectorService
from rover.detector.stats import FrameStats, RateMeter, Summary
from rover.sources.grabber import FrameGrabber
from rover.sources.images import ImageFolderSource
from tests.fixtures_detector import ScriptedCamera, wait_until

pytestmark = pytest.mark.slow  # loads ONNX models (tiny ones: the whole file runs in about a second)

class RecordingPublisher:
    """Stands in for the PUB socket: keeps every message after a wire round trip."""

    def __init__(self) -> None:
        self.messages = []
        self.lock = threading.Lock()

    def publish(self, message) -> bool:
        decoded = decode(encode(message))  # what a subscriber would get
        with self.lock:
            self.messages.append(decoded)
        return True

    def statuses(self) -> list[str]:
        with self.lock:
            return [m.status for m in self.messages]


class NotifySocket:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, folder: Path) -> None:
        self.path = str(folder / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.received: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.received.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.received

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    sock = NotifySocket(tmp_path)
    yield sock
    sock.close()


def image_folder(folder: Path, values: list[int]) -> Path:
    folder.mkdir(exist_ok=True)
    for i, v in enumerate(values):
        cv2.imwrite(str(folder / f"{i:02d}.png"), np.full((48, 64, 3), v, np.uint8))
    return folder


def run_in_thread(service: DetectorService) -> tuple[threading.Thread, dict]:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", service.run()))
    thread.start()
    return thread, result


def test_one_message_per_frame_also_without_detections_then_source_ended(tmp_path, contract_model, notify):
    # dark -> a person, white -> nothing (threshold 0.99), dark -> a person
    source = ImageFolderSource(image_folder(tmp_path / "img", [0, 255, 0]), pace=False)
    grabber = FrameGrabber(source).start()
    publisher = RecordingPublisher()
    notifier = Notifier({"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "200000"})
    service = DetectorService(Detector(contract_model, score_threshold=0.99, classes=["person"]), grabber, publisher,
                              notifier=notifier, status_interval_s=0.02)
    thread, result = run_in_thread(service)
    wait_until(lambda: publisher.statuses().count("source_ended") >= 3)
    service.stop.set()
    thread.join(5)
    grabber.stop()
    assert result["code"] == 0
    ok = [m for m in publisher.messages if m.status == "ok"]
    assert [m.frame.seq for m in ok] == [0, 1, 2]
    assert [[d.label for d in m.detections] for m in ok] == [["person"], [], ["person"]]
    assert all(m.frame.width == 64 and m.timing_ms.inference >= 0 for m in ok)
    seqs = [m.seq for m in publisher.messages]
    assert seqs == sorted(set(seqs))  # strictly increasing
    assert publisher.statuses()[-1] == "stopping"
    assert set(publisher.statuses()) <= {"starting", "ok", "source_ended", "stopping"}
    lines = notify.drain()
    assert "READY=1" in lines[0] and any(line == "WATCHDOG=1" for line in lines)
    assert lines[-1] == "STOPPING=1"


def test_status_messages_do_not_feed_the_watchdog(contract_model, notify):
    camera = ScriptedCamera()  # opens, but no frame comes: a stuck camera
    grabber = FrameGrabber(camera).start()
    publisher = RecordingPublisher()
    service = DetectorService(Detector(contract_model), grabber, publisher, status_interval_s=0.01,
                              notifier=Notifier({"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "20000"}))
    thread, result = run_in_thread(service)
    wait_until(lambda: len(publisher.messages) >= 5)
    assert set(publisher.statuses()) == {"starting"}
    assert notify.drain() == []  # neither READY nor WATCHDOG while blind
    camera.push(0)  # the camera wakes up
    wait_until(lambda: "ok" in publisher.statuses())
    wait_until(lambda: any(line == "WATCHDOG=1" for line in notify.drain()))
    service.stop.set()
    camera.items.put(CameraError("unplugged"))
    thread.join(5)
    grabber.stop()
    assert result["code"] == 0 and any("READY=1" in line for line in notify.received)
    assert publisher.statuses().count("ok") == 1 and service.processed == 1


def test_camera_error_statuses_while_retrying_then_exit_1(contract_model):
    camera = ScriptedCamera(fail_opens=10**6)
    grabber = FrameGrabber(camera, retry_timeout_s=0.3, retry_backoff_s=0.02).start()
    publisher = RecordingPublisher()
    service = DetectorService(Detector(contract_model), grabber, publisher, status_interval_s=0.02)
    code = service.run()
    grabber.stop()
    assert code == 1
    assert "camera_error" in publisher.statuses() and publisher.statuses()[-1] == "stopping"


def test_camera_retries_feed_the_watchdog_until_the_logged_exit(contract_model, notify):
    camera = ScriptedCamera(fail_opens=10**6)
    grabber = FrameGrabber(camera, retry_timeout_s=0.5, retry_backoff_s=0.02).start()
    service = DetectorService(Detector(contract_model), grabber, RecordingPublisher(), status_interval_s=0.02,
                              notifier=Notifier({"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "40000"}))
    assert service.run() == 1  # the service's own exit, not the watchdog's kill
    grabber.stop()
    lines = notify.drain()
    assert lines.count("WATCHDOG=1") >= 3 and not any("READY=1" in line for line in lines)


class HangingCamera(ScriptedCamera):
    """Fails its first open, then hangs inside the second until released."""

    def __init__(self) -> None:
        super().__init__(fail_opens=1)
        self.release = threading.Event()

    def open(self) -> None:
        super().open()
        self.release.wait(10)


def test_a_retry_that_hangs_stops_feeding_the_watchdog():
    camera, ticks = HangingCamera(), [0.0]
    grabber = FrameGrabber(camera, retry_backoff_s=0.01, clock=lambda: ticks[0]).start()
    wait_until(lambda: camera.opens == 2)  # retrying, and stuck in the second open
    assert grabber.retrying_actively()
    ticks[0] = 5.0 + 3.0 + 0.1  # longer than the longest backoff plus the slack since the failure
    assert not grabber.retrying_actively()
    camera.release.set()
    grabber.stop()


def test_fatal_source_config_error_keeps_exit_78(tmp_path, contract_model):
    from rover.sources.opencv import VideoFileSource

    grabber = FrameGrabber(VideoFileSource(tmp_path / "missing.avi")).start()
    code = DetectorService(Detector(contract_model), grabber, RecordingPublisher(), status_interval_s=0.02).run()
    grabber.stop()
    assert code == 78


def test_max_frames_and_exit_at_end(tmp_path, contract_model):
    folder = image_folder(tmp_path / "img", [0, 0, 0, 0])
    for max_frames, exit_at_end, expected_ok in ((2, False, 2), (0, True, 4)):
        grabber = FrameGrabber(ImageFolderSource(folder, pace=False)).start()
        publisher = RecordingPublisher()
        code = DetectorService(Detector(contract_model), grabber, publisher, max_frames=max_frames,
                               exit_at_end=exit_at_end, status_interval_s=0.02).run()
        grabber.stop()
        assert code == 0 and publisher.statuses().count("ok") == expected_ok
        assert "source_ended" not in publisher.statuses()


def test_observer_sees_every_stage(tmp_path, contract_model):
    grabber = FrameGrabber(ImageFolderSource(image_folder(tmp_path / "img", [0, 9]), pace=False)).start()
    seen: list[FrameStats] = []
    DetectorService(Detector(contract_model), grabber, RecordingPublisher(), max_frames=2, observer=seen.append).run()
    grabber.stop()
    assert [s.frame_seq for s in seen] == [0, 1]
    assert all(s.capture_to_publish_ms >= s.inference_ms >= 0 and s.publish_ms >= 0 for s in seen)


def test_preview_is_offered_each_frame_with_the_seq_of_its_message(tmp_path, contract_model):
    grabber = FrameGrabber(ImageFolderSource(image_folder(tmp_path / "img", [0, 9, 18]), pace=False)).start()
    publisher, offered = RecordingPublisher(), []
    DetectorService(Detector(contract_model), grabber, publisher, max_frames=3,
                    preview=lambda frame, order, seq: offered.append((frame.seq, int(frame.image[0, 0, 0]), order, seq))).run()
    grabber.stop()
    ok = [m for m in publisher.messages if m.status == "ok"]
    assert offered == [(m.frame.seq, 9 * m.frame.seq, "bgr", m.seq) for m in ok] and len(offered) == 3


def test_summary_line_and_status_go_out_every_interval(tmp_path, contract_model, notify, caplog):
    caplog.set_level("INFO")
    ticks = iter(np.arange(0.0, 1000.0, 1.0))  # every clock read is one second later
    grabber = FrameGrabber(ImageFolderSource(image_folder(tmp_path / "img", [0, 0, 0]), pace=False)).start()
    DetectorService(Detector(contract_model), grabber, RecordingPublisher(), max_frames=3, summary_interval_s=2.0,
                    clock=lambda: float(next(ticks)), notifier=Notifier({"NOTIFY_SOCKET": notify.path})).run()
    grabber.stop()
    assert "fps, inference p50" in caplog.text and "skipped frames 0" in caplog.text
    assert any(line.startswith("STATUS=") and "fps" in line for line in notify.drain())


def test_rate_meter_counts_events_in_its_window():
    meter = RateMeter(window_s=2.0)
    assert meter.rate(0.0) == 0.0
    for t in (0.0, 0.1, 0.2, 0.3, 0.4):
        meter.add(t)
    assert meter.rate(0.4) == pytest.approx(10.0)
    assert meter.rate(10.0) == 0.0  # all events fell out of the window


def test_summary_line_reports_medians():
    summary = Summary()
    for ms in (10.0, 20.0, 30.0):
        summary.add(FrameStats(0, 0.0, 1.0, ms, 1.0, 0.1, ms + 5, 0))
    line = summary.line(fps=9.5, skipped=3, dropped=1)
    assert "3 frames, 9.5 fps, inference p50 20.0 ms" in line and "skipped frames 3" in line
    assert summary.frames == 0  # a new period starts
