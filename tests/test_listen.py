"""rover listen: line format, --json, --count, --timeout, CURVE keys, the rover command."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq.auth

from rover import cli
from rover.core.messages import Detection, DetectionMessage, FrameInfo, ModelRef, Timing
from rover.detector.publisher import DetectionPublisher
from rover.stream.listen import add_arguments, format_line, listen

REPO = Path(__file__).resolve().parents[1]

MODEL = ModelRef("ssd300-resnet50", "int8", "ab" * 32)


def ok_message(seq: int, detections=()) -> DetectionMessage:
    return DetectionMessage(
        seq=seq, t_publish_ns=5_000_000, status="ok", model=MODEL, fps=9.84,
        frame=FrameInfo(seq + 100, 4_000_000, 1.7e9, 640, 480),
        timing_ms=Timing(1.2, 80.5, 0.4, 95.25), detections=tuple(detections),
    )


PERSON = Detection("person", 15, 0.934, (0.1, 0.2, 0.45, 0.9))


def test_line_shows_seq_status_fps_latency_and_detections():
    assert format_line(ok_message(12, [PERSON])) == "#12 frame 112 ok 9.8 fps 95.2 ms  person 0.93 [0.10 0.20 0.45 0.90]"


def test_line_for_a_frame_without_detections_and_for_a_status():
    assert format_line(ok_message(3)) == "#3 frame 103 ok 9.8 fps 95.2 ms  -"
    status = DetectionMessage(seq=4, t_publish_ns=1, status="camera_error", model=MODEL, fps=0.0)
    assert format_line(status) == "#4 camera_error 0.0 fps"


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def publish_until_done(pub: DetectionPublisher, done: threading.Event, detections=()) -> threading.Thread:
    def loop() -> None:
        seq = 0
        while not done.is_set():
            pub.publish(ok_message(seq, detections))
            seq += 1
            time.sleep(0.005)

    thread = threading.Thread(target=loop)
    thread.start()
    return thread


@pytest.mark.slow
@pytest.mark.parametrize("as_json", [False, True])
def test_listen_prints_count_messages_and_exits_0(tmp_path, as_json):
    endpoint = f"ipc://{tmp_path}/d.sock"
    out = io.StringIO()
    done = threading.Event()
    with DetectionPublisher(endpoint) as pub:
        thread = publish_until_done(pub, done, [PERSON])
        try:
            code = listen(args("--connect", endpoint, "--count", "3", "--timeout", "10", *(["--json"] if as_json else [])), out)
        finally:
            done.set()
            thread.join()
    lines = out.getvalue().splitlines()
    assert code == 0 and len(lines) == 3
    if as_json:
        assert all(json.loads(line)["detections"][0]["label"] == "person" for line in lines)
    else:
        assert all(line.endswith("person 0.93 [0.10 0.20 0.45 0.90]") for line in lines)


@pytest.mark.slow
def test_listen_gives_up_after_timeout_with_exit_1(tmp_path, caplog):
    code = listen(args("--connect", f"ipc://{tmp_path}/nobody.sock", "--timeout", "0.2"), io.StringIO())
    assert code == 1 and "no message from" in caplog.text


@pytest.mark.slow
def test_listen_with_curve_keys_receives_from_an_encrypted_stream(tmp_path):
    for d in ("server", "client", "authorised"):
        (tmp_path / d).mkdir()
    server_public, server_secret = zmq.auth.create_certificates(tmp_path / "server", "server")
    client_public, client_secret = zmq.auth.create_certificates(tmp_path / "client", "laptop")
    (tmp_path / "authorised" / "laptop.key").write_bytes(open(client_public, "rb").read())
    out = io.StringIO()
    done = threading.Event()
    with DetectionPublisher("tcp://0.0.0.0:*", server_secret_key=server_secret, client_keys_dir=tmp_path / "authorised") as pub:
        connect = pub.address.replace("0.0.0.0", "127.0.0.1")
        thread = publish_until_done(pub, done)
        try:
            code = listen(args("--connect", connect, "--count", "2", "--timeout", "10",
                               "--server-key", server_public, "--client-key", client_secret), out)
        finally:
            done.set()
            thread.join()
    assert code == 0 and len(out.getvalue().splitlines()) == 2


def test_rover_command_dispatches_to_listen_and_refuses_half_a_key_pair(tmp_path, caplog):
    code = cli.main(["listen", "--connect", f"ipc://{tmp_path}/x.sock", "--server-key", str(tmp_path / "s.key")])
    assert code == 78 and "go together" in caplog.text


def test_a_bad_connect_endpoint_is_one_line_and_exit_78():
    result = subprocess.run([sys.executable, "-m", "rover.stream.listen", "--connect", "garbage", "--timeout", "1"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 78, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "--connect 'garbage' is not a ZeroMQ endpoint" in result.stderr and "tcp://HOST:PORT" in result.stderr


def test_rover_command_without_a_known_subcommand_is_a_usage_error():
    with pytest.raises(SystemExit) as exc:
        cli.main(["nonsense"])
    assert exc.value.code == 2
    assert "listen" in cli.SUBCOMMANDS


def test_rover_command_runs_record_and_replay(tmp_path, capsys):
    out = tmp_path / "run.jsonl"
    code = cli.main(["record", "--out", str(out), "--detections", f"ipc://{tmp_path}/d.sock", "--drive", "",
                     "--duration", "0.2"])
    assert code == 0 and out.is_file()
    with pytest.raises(SystemExit) as exc:
        cli.main(["replay", "--help"])
    assert exc.value.code == 0 and "recorded" in capsys.readouterr().out
