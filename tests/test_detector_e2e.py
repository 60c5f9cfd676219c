"""rover-detector end to end: a real process, real sockets, a real model, real video.

The detector runs as ``python -m rover.detector``; a plain pyzmq subscriber
and a unix datagram socket standing in for systemd's NOTIFY_SOCKET watch it.
The model is the int8 SSD300 export (``exported_models.int8_path``); the
synthetic contract model shows that another detector runs unchanged.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import jsonschema
import pytest
import zmq

from rover.core.messages import decode, split_topic

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "rover" / "schemas" / "detection-v1.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
CLIP_FRAMES = 12
HANG_GUARD_S = 60.0  # only catches a hang; never a timing assertion


@pytest.fixture(scope="module")
def vtest_clip(vtest_video, tmp_path_factory) -> Path:
    """The first CLIP_FRAMES frames of vtest.avi, so a run reaches the end quickly."""
    path = tmp_path_factory.mktemp("clip") / "vtest-start.avi"
    cap = cv2.VideoCapture(str(vtest_video))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (768, 576))
    for _ in range(CLIP_FRAMES):
        ok, image = cap.read()
        assert ok
        writer.write(image)
    writer.release()
    cap.release()
    return path


class Detector:
    """``python -m rover.detector`` as a subprocess, stderr kept in a file."""

    def __init__(self, tmp_path: Path, *args: str, env: dict | None = None, config: str | None = None) -> None:
        self.log_path = tmp_path / "detector.log"
        argv = [sys.executable, "-m", "rover.detector", *args]
        if config is not None:
            cfg = tmp_path / "rover.toml"
            cfg.write_text(config)
            argv += ["--config", str(cfg)]
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=self.log,
                                     env={**os.environ, **(env or {})})

    def wait(self) -> int:
        try:
            return self.proc.wait(HANG_GUARD_S)
        finally:
            self.log.close()

    @property
    def stderr(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def run_detector(tmp_path):
    started: list[Detector] = []

    def start(*args: str, **kwargs) -> Detector:
        det = Detector(tmp_path, *args, **kwargs)
        started.append(det)
        return det

    yield start
    for det in started:
        det.kill()


@pytest.fixture
def subscriber(tmp_path):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    sock.reconnect_ivl = 10  # ms: join the publisher as soon as it binds
    sock.subscribe(b"detections")
    endpoint = f"ipc://{tmp_path}/detections.sock"
    sock.connect(endpoint)
    sock.rcvtimeo = int(HANG_GUARD_S * 1000)
    yield endpoint, sock
    sock.close()
    ctx.term()


class NotifyListener:
    """systemd's side of NOTIFY_SOCKET: a bound unix datagram socket read by a thread
    (as systemd does, so the sender's queue never fills)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.lines.append(self.sock.recv(4096).decode())
            except socket.timeout:
                continue

    def close(self) -> list[str]:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.lines


@pytest.fixture
def notify_socket(tmp_path):
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    if not listener._stop.is_set():
        listener.close()


def receive(sock: zmq.Socket) -> tuple[dict, object]:
    """One message: its JSON checked against the JSON Schema and through messages.decode."""
    raw = sock.recv()
    data = json.loads(split_topic(raw)[1])
    VALIDATOR.validate(data)
    return data, decode(raw)


def test_every_frame_gets_a_valid_message_then_status_until_sigterm(
    run_detector, subscriber, notify_socket, vtest_clip, detector_model
):
    endpoint, sub = subscriber
    notify = notify_socket
    det = run_detector("--model", str(detector_model), "--source", str(vtest_clip), "--no-pace", "--bind", endpoint,
                       env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "100000"})
    messages = []
    while sum(m.status == "source_ended" for m in messages) < 3:
        messages.append(receive(sub)[1])
    det.proc.send_signal(signal.SIGTERM)
    t_term = time.monotonic()
    while messages[-1].status != "stopping":
        messages.append(receive(sub)[1])
    code = det.wait()
    took = time.monotonic() - t_term
    assert code == 0, det.stderr
    assert "Traceback" not in det.stderr

    seqs = [m.seq for m in messages]
    assert all(b > a for a, b in zip(seqs, seqs[1:])), "message seq must strictly increase"
    ok = [m for m in messages if m.status == "ok"]
    frame_seqs = [m.frame.seq for m in ok]
    # One message per frame: from the first message this subscriber saw to the
    # end of the clip, no frame is missing (unpaced file: nothing is skipped).
    assert frame_seqs == list(range(frame_seqs[0], CLIP_FRAMES)) and frame_seqs[0] <= 2
    assert all((m.frame.width, m.frame.height) == (768, 576) for m in ok)
    assert all(m.timing_ms.capture_to_publish >= m.timing_ms.inference for m in ok)
    after = [m.status for m in messages[messages.index(ok[-1]) + 1:]]
    assert set(after) <= {"source_ended", "stopping"} and after[-1] == "stopping"
    assert "stopped after 12 frames" in det.stderr

    time.sleep(0.2)  # let the last datagram land
    lines = notify.close()
    assert any("READY=1" in line for line in lines) and "WATCHDOG=1" in lines
    ready_at = next(i for i, line in enumerate(lines) if "READY=1" in line)
    assert lines.index("WATCHDOG=1") > ready_at  # WATCHDOG only once frames flow
    assert lines[-1] == "STOPPING=1"
    print(f"SIGTERM to exit: {took:.2f} s (target 2 s)")


def test_paced_real_video_with_person_filter_and_sigterm_mid_stream(run_detector, subscriber, vtest_video, detector_model):
    endpoint, sub = subscriber
    det = run_detector("--model", str(detector_model), "--source", str(vtest_video), "--bind", endpoint,
                       "--classes", "person")
    received = []
    while sum(m.status == "ok" for m in received) < 5:
        received.append(receive(sub)[1])
    det.proc.send_signal(signal.SIGTERM)
    assert det.wait() == 0, det.stderr
    assert all(d.label == "person" for m in received for d in m.detections)
    assert {m.model.precision for m in received} <= {"int8", "float32"}


@pytest.mark.parametrize(("classes", "threshold", "labels"), [("car", "0.5", {"car"}), ("person", "0.99", set())])
def test_a_different_contract_model_runs_unchanged(run_detector, subscriber, vtest_clip, contract_model,
                                                   classes, threshold, labels):
    """The synthetic model (other labels, 64x48 input) through the same program. With
    person at 0.99 nothing passes on these frames: every frame still gets its message."""
    endpoint, sub = subscriber
    # Paced at the clip's 10 fps, so the subscriber has joined long before the clip ends.
    det = run_detector("--model", str(contract_model), "--source", str(vtest_clip), "--bind", endpoint,
                       "--classes", classes, "--score-threshold", threshold)
    messages = []
    while sum(m.status == "source_ended" for m in messages) < 2:
        messages.append(receive(sub)[1])
    det.proc.send_signal(signal.SIGTERM)
    assert det.wait() == 0, det.stderr
    ok = [m for m in messages if m.status == "ok"]
    assert {m.model.name for m in messages} == {"synthetic-test"}
    assert {m.model.labels for m in messages} == {("person", "car")}
    assert ok and ok[-1].frame.seq == CLIP_FRAMES - 1
    assert [m.frame.seq for m in ok] == list(range(ok[0].frame.seq, CLIP_FRAMES))
    assert {d.label for m in ok for d in m.detections} == labels
    assert "synthetic-test float32, input 64x48, 3 classes" in det.stderr


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if " ERROR " in f" {line}" or line.startswith("ERROR")]


@pytest.mark.parametrize(
    ("case", "expect_code", "expect_text"),
    [
        ("missing_config", 78, "config file .*missing.toml does not exist"),
        ("unknown_key", 78, r"unknown key detector\.modle"),
        ("missing_model", 78, r"nope\.onnx does not exist: export one"),
        ("corrupt_model", 78, "cannot be loaded by onnxruntime"),
        ("nonconforming_model", 78, "lacks metadata labels"),
        ("too_many_labels", 78, r"1001 class labels .* at most 1000"),
        ("unknown_class", 78, "'giraffe'.*its labels are"),
        ("lan_without_keys", 78, "reachable from the network"),
        ("lan_bind_without_keys", 78, r"stream\.lan_bind tcp://0\.0\.0\.0:0 is reachable from the network"),
        ("lan_bind_on_loopback", 78, r"stream\.lan_bind tcp://127\.0\.0\.1:0 stays on this host"),
        ("missing_video", 78, r"missing\.avi does not exist"),
        ("camera_gone", 1, r"cannot open camera 97.*gave up after"),
    ],
)
def test_bad_input_gets_one_clear_line_and_its_exit_code(tmp_path, run_detector, contract_model, case, expect_code, expect_text):
    from tests.fixtures_detector import make_contract_model, write_video

    model = str(contract_model)
    # A real (tiny) video: the source is checked before the model, so the model cases need a good one.
    args: list[str] = ["--bind", f"ipc://{tmp_path}/d.sock", "--source", str(write_video(tmp_path / "clip.avi", 3))]
    config = None
    if case == "missing_config":
        args += ["--config", str(tmp_path / "missing.toml")]
    elif case == "unknown_key":
        config = "[detector]\nmodle = 'x.onnx'\n"
    elif case == "missing_model":
        model = str(tmp_path / "nope.onnx")
    elif case == "corrupt_model":
        model = str(tmp_path / "corrupt.onnx")
        Path(model).write_bytes(b"\x00garbage" * 64)
    elif case == "nonconforming_model":
        model = str(make_contract_model(tmp_path / "bad.onnx", drop_metadata=("labels",)))
    elif case == "too_many_labels":  # loads, but every message would be refused by its subscribers
        labels = ["__background__", *(f"class{i}" for i in range(1001))]
        model = str(make_contract_model(tmp_path / "many.onnx", labels=labels, logits=[[0.0] * len(labels)] * 4))
    elif case == "unknown_class":
        args += ["--classes", "giraffe"]
    elif case == "lan_without_keys":
        args += ["--bind", "tcp://0.0.0.0:0"]
    elif case == "lan_bind_without_keys":
        args += ["--lan-bind", "tcp://0.0.0.0:0"]
    elif case == "lan_bind_on_loopback":
        args += ["--lan-bind", "tcp://127.0.0.1:0"]
    elif case == "missing_video":
        args += ["--source", str(tmp_path / "missing.avi")]
    elif case == "camera_gone":
        args += ["--source", "97"]
        config = "[camera]\nretry_timeout_s = 0.3\nretry_backoff_s = 0.05\n"
    det = run_detector("--model", model, *args, config=config)
    code = det.wait()
    errors = error_lines(det.stderr)
    assert code == expect_code, det.stderr
    assert "Traceback" not in det.stderr
    import re

    assert len(errors) == 1 and re.search(expect_text, errors[0]), det.stderr


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]


def test_with_curve_keys_the_car_subscribes_without_keys_and_the_lan_with_them(
    tmp_path, run_detector, subscriber, vtest_clip, contract_model
):
    """The README's LAN setup through the real program: ``bind`` on this host (keyless, as
    rover-drive connects), ``lan_bind`` with CURVE keys. Both get the stream; a keyless
    subscriber on the LAN endpoint gets nothing."""
    import zmq.auth

    for d in ("server", "laptop", "authorized"):
        (tmp_path / d).mkdir()
    server_public, server_secret = zmq.auth.create_certificates(tmp_path / "server", "server")
    laptop_public, laptop_secret = zmq.auth.create_certificates(tmp_path / "laptop", "laptop")
    (tmp_path / "authorized" / "laptop.key").write_bytes(Path(laptop_public).read_bytes())
    endpoint, car = subscriber
    port = free_tcp_port()
    config = (f"[stream]\nlan_bind = 'tcp://0.0.0.0:{port}'\nserver_secret_key = '{server_secret}'\n"
              f"client_keys_dir = '{tmp_path / 'authorized'}'\n")
    ctx = zmq.Context()
    lan, keyless = ctx.socket(zmq.SUB), ctx.socket(zmq.SUB)
    lan.curve_publickey, lan.curve_secretkey = zmq.auth.load_certificate(laptop_secret)
    lan.curve_serverkey = zmq.auth.load_certificate(server_public)[0]
    for sock in (lan, keyless):
        sock.linger = 0
        sock.reconnect_ivl = 10
        sock.subscribe(b"detections")
        sock.connect(f"tcp://127.0.0.1:{port}")
    lan.rcvtimeo = int(HANG_GUARD_S * 1000)
    try:
        det = run_detector("--model", str(contract_model), "--source", str(vtest_clip), "--bind", endpoint,
                           config=config)
        from_car = [receive(car)[1] for _ in range(3)]
        from_lan = [receive(lan)[1] for _ in range(3)]
        det.proc.send_signal(signal.SIGTERM)
        assert det.wait() == 0, det.stderr
        assert keyless.poll(0) == 0, "a subscriber without keys must get nothing on lan_bind"
    finally:
        lan.close()
        keyless.close()
        ctx.term()
    assert {m.model.name for m in from_car + from_lan} == {"synthetic-test"}
    assert f"publishing on {endpoint}, for other machines on tcp://0.0.0.0:{port} (CURVE)" in det.stderr
