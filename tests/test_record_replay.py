"""Record a simulated run, replay it to a fresh drive: the drive sees the same detections."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rover.core import messages
from rover.core.errors import EXIT_CONFIG, MessageError
from rover.sim.chassis import ENV_ENDPOINT
from rover.sim.noise import DetectorModel
from rover.sim.runner import Endpoints, run
from rover.sim.scenarios import PersonPath, Scenario
from rover.stream.record import to_line
from rover.stream.replay import Recorded, load, rewrite

SHORT = Scenario("short_walk", "stand, then walk away for 4 s", 5.5,
                 (PersonPath((3.45, 0.0), 0.0, (("stand", 1.0), ("walk", 0.35, 4.5))),))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_record_line_keeps_the_message_and_its_receive_time() -> None:
    line = to_line(b'drive {"state":"SAFE"}', 123, 1.5)
    assert json.loads(line) == {"t_recv_ns": 123, "t_recv": 1.5, "topic": "drive", "message": {"state": "SAFE"}}
    assert to_line(b"other {}", 1, 1.0) is None
    assert to_line(b"detections not json", 1, 1.0) is None


def test_replay_moves_the_clocks_and_keeps_each_message_age() -> None:
    message = {"v": 1, "seq": 5, "t_publish_ns": 900, "status": "ok", "fps": 4.0,
               "model": {"name": "simulated", "precision": "simulated", "sha256": "0" * 64},
               "frame": {"seq": 5, "t_capture_ns": 700, "t_capture": 10.0, "width": 640, "height": 480},
               "timing_ms": {"preprocess": 1.0, "inference": 2.0, "postprocess": 0.5, "capture_to_publish": 3.5},
               "detections": [{"label": "person", "class_id": 1, "score": 0.9, "box": [0.1, 0.2, 0.3, 0.9]}]}
    out = rewrite(Recorded(t_recv_ns=1000, message=message), now_ns=50_000, now_unix=2000.0)
    assert out["frame"]["t_capture_ns"] == 50_000 - 300  # 300 ns old on receipt, then and now
    assert out["t_publish_ns"] == 50_000 - 100
    assert out["frame"]["t_capture"] == pytest.approx(2000.0 - 300e-9)
    assert out["detections"] == message["detections"] and out["seq"] == 5
    assert message["frame"]["t_capture_ns"] == 700  # the record is untouched
    messages.from_dict(out)


@pytest.mark.slow
def test_record_is_a_subcommand_module_that_stops_after_its_duration(tmp_path: Path) -> None:
    import argparse

    from rover.stream import record

    parser = argparse.ArgumentParser(prog="rover record")
    record.add_arguments(parser)  # what rover.cli does with a subcommand module
    out = tmp_path / "empty.jsonl"
    args = parser.parse_args(["--out", str(out), "--detections", f"ipc://{tmp_path / 'd'}", "--drive", "", "--duration", "0.3"])
    assert record.run(args) == 0
    assert out.read_text() == ""
    bad = parser.parse_args(["--out", str(tmp_path / "no" / "such" / "dir.jsonl"), "--duration", "0.1"])
    assert record.run(bad) == EXIT_CONFIG  # a configuration error: restarting cannot fix it


def test_a_bad_endpoint_is_refused_before_an_existing_out_file_is_touched(tmp_path: Path) -> None:
    kept = tmp_path / "yesterday.jsonl"
    kept.write_text('{"t_recv_ns": 1}\n')
    proc = subprocess.run([sys.executable, "-m", "rover.stream.record", "--out", str(kept), "--detections", "garbage",
                           "--drive", "", "--duration", "0.1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == EXIT_CONFIG and "bad endpoint" in proc.stderr and "Traceback" not in proc.stderr
    assert kept.read_text() == '{"t_recv_ns": 1}\n'
    proc = subprocess.run([sys.executable, "-m", "rover.stream.record", "--out", str(tmp_path), "--detections",
                           f"ipc://{tmp_path / 'd'}", "--drive", "", "--duration", "0.1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == EXIT_CONFIG and f"cannot write {tmp_path}" in proc.stderr and "--out" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_broken_record_file_names_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t_recv_ns": 1, "t_recv": 1.0, "topic": "detections", "message": {"v": 2}}\n')
    with pytest.raises(MessageError, match="bad.jsonl:1"):
        load(bad)
    proc = subprocess.run([sys.executable, "-m", "rover.stream.replay", str(bad), "--publish", f"ipc://{tmp_path / 'x'}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == EXIT_CONFIG and "bad.jsonl:1" in proc.stderr and "Traceback" not in proc.stderr


def test_replay_refuses_a_network_endpoint_without_the_opt_in(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")

    def replay(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rover.stream.replay", str(empty), "--wait", "0", *extra],
                              capture_output=True, text=True, timeout=60)

    refused = replay("--publish", "tcp://0.0.0.0:*")
    assert refused.returncode == EXIT_CONFIG and "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1 and "reachable from the network" in refused.stderr
    assert "--allow-insecure-lan" in refused.stderr
    allowed = replay("--publish", "tcp://0.0.0.0:*", "--allow-insecure-lan")
    assert allowed.returncode == 0 and "NOT encrypted" in allowed.stderr
    local = replay("--publish", f"ipc://{tmp_path / 'replay'}")
    assert local.returncode == 0 and "NOT encrypted" not in local.stderr
    assert replay("--publish", "garbage").returncode == EXIT_CONFIG


@pytest.mark.slow
def test_record_a_simulated_run_replay_it_and_the_drive_sees_the_same_sequence(tmp_path: Path) -> None:
    original = tmp_path / "run.jsonl"

    def recorder(ends: Endpoints) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "rover.stream.record", "--out", str(original),
                                 "--detections", ends.detections, "--drive", ends.status])

    run(SHORT, tmp_path / "sim", seed=0, record=recorder, detector=DetectorModel(fps=4.0))  # 4 frames/s: enough messages in 5.5 s
    recorded = _lines(original)
    detections = [r["message"] for r in recorded if r["topic"] == "detections"]
    drive_before = [r["message"] for r in recorded if r["topic"] == "drive"]
    assert len(detections) >= 15 and len(drive_before) >= 50
    assert all(m["model"]["precision"] == "simulated" for m in detections)

    # Replay to a fresh, unchanged drive, and record what it and its detection stream do.
    replayed = tmp_path / "replayed.jsonl"
    det, status = f"ipc://{tmp_path / 'replay-det'}", f"ipc://{tmp_path / 'replay-status'}"
    env = {**os.environ, ENV_ENDPOINT: f"ipc://{tmp_path / 'nowhere'}"}
    procs = [subprocess.Popen([sys.executable, "-m", "rover.drive", "--follow", "person", "--connect", det,
                               "--publish", status, "--backend", "sim"], env=env, stderr=subprocess.DEVNULL),
             subprocess.Popen([sys.executable, "-m", "rover.stream.record", "--out", str(replayed), "--detections", det,
                               "--drive", status])]
    try:
        assert subprocess.run([sys.executable, "-m", "rover.stream.replay", str(original), "--publish", det, "--wait", "2"],
                              timeout=60).returncode == 0
        time.sleep(0.3)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    again = _lines(replayed)
    seen = [r for r in again if r["topic"] == "detections"]
    assert [(m["message"]["seq"], m["message"]["detections"]) for m in seen] == [(m["seq"], m["detections"]) for m in detections]
    ages = [(r["t_recv_ns"] - r["message"]["frame"]["t_capture_ns"]) / 1e9 for r in seen]
    assert all(0 <= age < 0.5 for age in ages)  # fresh on this host's clock: rewritten
    drive_after = [r["message"] for r in again if r["topic"] == "drive"]
    assert drive_after[-1]["counters"]["fresh"] == len(detections)
    assert drive_after[-1]["counters"]["stale"] == 0

    def boxes(stream: list[dict]) -> list[list[float]]:
        out: list[list[float]] = []
        for m in stream:
            if m["target"] is not None and (not out or out[-1] != m["target"]["box"]):
                out.append(m["target"]["box"])
        return out

    before, after = boxes(drive_before), boxes(drive_after)
    assert after and after == before[before.index(after[0]):]  # the same targets, in the same order
    assert {"FOLLOWING"} <= {m["state"] for m in drive_after}
