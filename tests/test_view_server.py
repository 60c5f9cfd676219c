"""rover-view's web server and stream reader, in process, fed by real ZeroMQ publishers on ipc://."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from rover.detector.preview import PreviewPublisher
from rover.detector.publisher import DetectionPublisher
from rover.drive import status as drive_status
from rover.sources.base import Frame
from rover.view.hub import Latest
from rover.view.server import BOUNDARY, ViewServer
from rover.view.state import LiveState
from rover.view.streams import StreamReader
from tests.fixtures_detector import wait_until
from tests.test_view_state import PERSON, detection_message
from tests.test_view_state import drive_status as make_status

REPO = Path(__file__).resolve().parents[1]


class Rig:
    """Publishers standing in for the detector and the drive, the reader and the server."""

    def __init__(self, tmp_path: Path, max_clients: int = 8, client_timeout_s: float = 10.0, **server_options) -> None:
        self.ctx = zmq.Context()
        ep = {name: f"ipc://{tmp_path}/{name}.sock" for name in ("detections", "frames", "drive")}
        self.detections = DetectionPublisher(ep["detections"], context=self.ctx)
        self.frames = PreviewPublisher(ep["frames"], width=64, max_fps=60, context=self.ctx)
        self.drive = self.ctx.socket(zmq.PUB)
        self.drive.linger = 0
        self.drive.bind(ep["drive"])
        self.state = LiveState(1.0)
        self.latest = Latest()
        self.reader = StreamReader(self.state, self.latest, detections=ep["detections"], frames_endpoint=ep["frames"],
                                   drive=ep["drive"]).start()
        self.server = ViewServer("127.0.0.1", 0, self.state, self.latest, max_clients=max_clients,
                                 client_timeout_s=client_timeout_s, **server_options)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.port = self.server.server_address[1]

    def publish(self, seq: int) -> None:
        """Detection message ``seq``, a drive status locked on PERSON, then the preview frame of ``seq``."""
        self.detections.publish(detection_message(seq, ("person", PERSON)))
        self.drive.send(drive_status.encode(make_status(PERSON)))
        image = np.full((48, 64, 3), 40 * (seq % 6), np.uint8)
        time.sleep(0.02)  # the reader sees the message before the frame, as from the real detector
        self.frames.offer(Frame(seq=seq, t_capture_ns=time.monotonic_ns(), t_capture=0.0, image=image), "bgr", seq)

    def get(self, path: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", path)
        return conn.getresponse()

    def close(self) -> None:
        self.server.stop()
        self.reader.close()
        self.frames.close()
        self.detections.close()
        self.drive.close()
        self.ctx.term()


@pytest.fixture
def rig(tmp_path):
    rig = Rig(tmp_path, max_clients=2)
    time.sleep(0.3)  # let the subscribers join
    yield rig
    rig.close()


def test_page_and_its_files_are_served_with_a_strict_policy(rig):
    page = rig.get("/")
    body = page.read().decode()
    assert page.status == 200 and "text/html" in page.getheader("Content-Type")
    assert "default-src 'self'" in page.getheader("Content-Security-Policy")
    assert 'src="/stream.mjpg"' in body and 'src="/view.js"' in body
    script = rig.get("/view.js")
    assert script.status == 200 and "EventSource" in script.read().decode()
    assert rig.get("/nope").status == 404
    frame = rig.get("/frame.jpg")
    assert frame.status == 503 and "view.preview" in frame.read().decode()


def test_state_frame_and_event_stream_carry_the_paired_boxes(rig):
    events = rig.get("/events")
    assert events.getheader("Content-Type") == "text/event-stream"
    for seq in range(1, 4):
        rig.publish(seq)
    wait_until(lambda: rig.state.frames >= 3, 10)
    state = json.loads(rig.get("/state.json").read())
    assert state["detector"]["online"] and state["detector"]["seq"] == 3
    assert state["drive"]["online"] and state["drive"]["state"] == "FOLLOWING"
    assert state["video"] == {**state["video"], "online": True, "seq": 3, "width": 64, "height": 48}
    jpeg = rig.get("/frame.jpg")
    assert jpeg.status == 200 and jpeg.read()[:2] == b"\xff\xd8"

    seen: dict[str, list] = {"stats": [], "frame": []}
    deadline = time.monotonic() + 10
    rig.publish(4)
    while not (seen["frame"] and seen["frame"][-1]["seq"] == 4 and len(seen["stats"]) >= 2):
        assert time.monotonic() < deadline, seen
        line = events.readline().decode()
        if line.startswith("event: "):
            seen[line[7:].strip()].append(json.loads(events.readline().decode()[6:]))
    assert seen["stats"][-1]["detector"]["online"]
    assert [f["seq"] for f in seen["frame"]] == sorted({f["seq"] for f in seen["frame"]})  # newest only, in order
    frame = seen["frame"][-1]
    assert frame["detections"] == [{"label": "person", "score": 0.9, "box": list(PERSON), "locked": True}]
    assert frame["seq"] == 4 and frame["target"] == list(PERSON)


def test_mjpeg_stream_sends_each_new_frame_as_a_part_and_caps_open_streams(rig):
    rig.publish(1)
    wait_until(lambda: rig.state.frames >= 1, 10)
    stream = rig.get("/stream.mjpg")
    assert stream.getheader("Content-Type") == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
    assert stream.readline() == f"--{BOUNDARY}\r\n".encode()
    parts = []
    for seq in (2, 3):
        headers = {}
        while (line := stream.readline()) != b"\r\n":
            key, value = line.decode().split(":", 1)
            headers[key] = value.strip()
        body = stream.read(int(headers["Content-Length"]))
        assert headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
        assert stream.readline() == b"\r\n" and stream.readline() == f"--{BOUNDARY}\r\n".encode()
        parts.append(body)
        rig.publish(seq)
    assert len(parts) == 2 and parts[0] != parts[1]  # the newest frame at once, then the next one

    other = rig.get("/events")  # the second of max_clients = 2
    refused = rig.get("/stream.mjpg")
    assert refused.status == 503 and b"view.max_clients" in refused.read()
    other.close()


def test_a_malformed_drive_status_is_counted_and_the_stream_keeps_running(rig):
    bad = {**make_status(PERSON).to_dict(), "state": [1]}  # unhashable: raised TypeError in the decoder
    rig.drive.send(b"drive " + json.dumps(bad).encode())
    wait_until(lambda: rig.state.invalid["drive"] == 1, 10)
    rig.drive.send(drive_status.encode(make_status(None, state="SEARCH")))
    wait_until(lambda: rig.state.snapshot()["drive"].get("state") == "SEARCH", 10)
    assert rig.reader._thread.is_alive()


def test_an_unexpected_decoder_failure_is_counted_logged_once_and_survived(rig, monkeypatch, caplog):
    real = drive_status.decode
    calls = []

    def flaky(raw):
        calls.append(raw)
        if len(calls) <= 2:
            raise KeyError("a decoder bug")
        return real(raw)

    monkeypatch.setattr(drive_status, "decode", flaky)
    for state in ("SAFE", "SAFE", "SEARCH"):
        rig.drive.send(drive_status.encode(make_status(None, state=state)))
    wait_until(lambda: rig.state.snapshot()["drive"].get("state") == "SEARCH", 10)
    assert rig.state.invalid["drive"] == 2 and rig.reader._thread.is_alive()
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "drive message could not be decoded" in r.message]
    assert len(warnings) == 1 and "KeyError" in warnings[0].message


def test_idle_and_stalled_clients_are_dropped_and_free_their_stream_slot(tmp_path):
    rig = Rig(tmp_path, max_clients=1, client_timeout_s=0.5)
    stop = threading.Event()
    big = (b"\xff\xd8" + bytes(1_000_000), {})

    def feed() -> None:  # large frames, so a client that stops reading fills the socket buffers at once
        while not stop.wait(0.01):
            rig.latest.put(big)

    feeder = threading.Thread(target=feed, daemon=True)
    try:
        with socket.create_connection(("127.0.0.1", rig.port), timeout=5) as idle:
            assert idle.recv(1) == b""  # never sent a request: closed by the server, no thread left waiting

        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.settimeout(5)
        stalled.connect(("127.0.0.1", rig.port))
        stalled.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
        head = b""
        while f"--{BOUNDARY}\r\n".encode() not in head:
            head += stalled.recv(1)
        assert head.startswith(b"HTTP/1.0 200")  # it holds the only stream slot, and now never reads again
        feeder.start()
        deadline = time.monotonic() + 10
        while True:
            probe = rig.get("/stream.mjpg")
            status = probe.status
            probe.close()
            if status == 200:
                break
            assert status == 503 and time.monotonic() < deadline, "the stalled client still holds the slot"
            time.sleep(0.05)
        stalled.close()
    finally:
        stop.set()
        if feeder.is_alive():
            feeder.join()
        rig.close()


def test_a_port_in_use_is_one_line_and_exit_78(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "rover.view", "--port", str(port), "--detections", f"ipc://{tmp_path}/d",
             "--frames", f"ipc://{tmp_path}/f", "--drive", ""],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert result.returncode == 78, result.stderr
    assert len(errors) == 1 and f"127.0.0.1:{port} cannot be bound" in errors[0] and "view.port" in errors[0]
    assert "Traceback" not in result.stderr
