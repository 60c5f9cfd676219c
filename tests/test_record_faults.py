"""The recorder on a full disk, and replay of a recording whose last line was cut short."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from rover.core import messages
from rover.core.errors import EXIT_CONFIG, EXIT_IOERR, OutputError
from rover.stream.journal import LineFile
from rover.stream.replay import load

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _message(seq: int, boxes: int = 20) -> dict:
    return {"v": 1, "seq": seq, "t_publish_ns": 2_000 + seq, "status": "ok", "fps": 10.0,
            "model": {"name": "simulated", "precision": "simulated", "sha256": "0" * 64},
            "frame": {"seq": seq, "t_capture_ns": 1_000 + seq, "t_capture": 1.0, "width": 640, "height": 480},
            "timing_ms": {"preprocess": 1.0, "inference": 2.0, "postprocess": 0.5, "capture_to_publish": 3.5},
            "detections": [{"label": "person", "class_id": 15, "score": 0.9, "box": [0.1, 0.2, 0.3, 0.9]}] * boxes}


def _line(seq: int) -> str:
    return json.dumps({"t_recv_ns": 5_000 + seq, "t_recv": 1.0, "topic": "detections", "message": _message(seq, 1)})


def _record_until_it_exits(tmp_path: Path, command: list[str], timeout_s: float = 60) -> subprocess.CompletedProcess:
    """Run a recorder ``command`` on ipc://tmp_path/det while publishing detection messages to it."""
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.linger = 0
    pub.bind(f"ipc://{tmp_path}/det")
    proc = subprocess.Popen(command, env=ENV, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seq, deadline = 0, time.monotonic() + timeout_s
        while proc.poll() is None:
            assert time.monotonic() < deadline, "the recorder did not stop"
            pub.send(messages.encode(_message(seq)))
            seq += 1
            time.sleep(0.002)
        out, err = proc.communicate(timeout=10)
        return subprocess.CompletedProcess(command, proc.returncode, out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pub.close()
        ctx.term()


def _can_mount_privately() -> str | None:
    """Why a private tmpfs cannot be mounted here, or None when it can."""
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root (unshare -m)"
    if shutil.which("unshare") is None:
        return "util-linux's unshare is not installed"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"no private mount namespace here ({probe.stderr.strip() or probe.returncode})"
    return None


def _assert_whole_consecutive_lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data and data.endswith(b"\n"), "the file ends in half a line"
    records = [json.loads(line) for line in data.decode().splitlines()]
    seqs = [r["message"]["seq"] for r in records]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a line before the fault is missing"
    return records


def test_a_full_disk_stops_the_recorder_with_one_line_and_every_line_before_it_whole(tmp_path: Path) -> None:
    reason = _can_mount_privately()
    if reason:
        pytest.skip(reason)
    disk, kept = tmp_path / "disk", tmp_path / "kept.jsonl"
    disk.mkdir()
    # A 256 kB tmpfs seen only by this shell and the recorder; the file is copied out before the namespace ends.
    script = (f'mount -t tmpfs -o size=256k rover-test-full "{disk}" || exit 99; '
              f'"{sys.executable}" -m rover.stream.record --out "{disk}/rec.jsonl" --detections "ipc://{tmp_path}/det" '
              f'--drive "" --duration 50; rc=$?; cp "{disk}/rec.jsonl" "{kept}"; exit $rc')
    result = _record_until_it_exits(tmp_path, ["unshare", "-m", "--propagation", "private", "sh", "-c", script])
    assert result.returncode != 99, f"tmpfs mount failed: {result.stderr}"
    assert result.returncode == EXIT_IOERR, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"{disk}/rec.jsonl" in result.stderr and "No space left on device" in result.stderr
    records = _assert_whole_consecutive_lines(kept)
    assert len(records) > 20 and kept.stat().st_size <= 256 * 1024
    assert f"after {len(records)} messages" in result.stderr
    assert len(load(kept, on_cut=pytest.fail)) == len(records)  # replayable as it is, nothing cut


def test_a_write_error_on_dev_full_is_one_line_and_exit_74(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full is not available on this system")
    result = _record_until_it_exits(tmp_path, [sys.executable, "-m", "rover.stream.record", "--out", "/dev/full",
                                               "--detections", f"ipc://{tmp_path}/det", "--drive", "", "--duration", "50"])
    assert result.returncode == EXIT_IOERR, result.stderr
    assert result.stderr.strip() == ("rover record: cannot write /dev/full: No space left on device after 0 messages; "
                                     "those are whole lines in /dev/full (free some space or choose another --out)")


def test_a_failed_write_cuts_the_file_back_to_its_last_whole_line(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "rec.jsonl"
    out = LineFile(path, fsync_s=0)
    out.write_line(_line(0))
    out.write_line(_line(1))
    whole = path.read_bytes()
    # What the kernel does on a full disk: part of the next line is written, then ENOSPC.
    real_write = os.write
    calls = []

    def short_then_full(fd: int, data) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:7]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", short_then_full)
    with pytest.raises(OutputError, match=r"rec.jsonl: No space left on device"):
        out.write_line(_line(2))
    monkeypatch.undo()
    assert path.read_bytes() == whole and out.lines == 2
    out.close()


def test_the_recording_is_fsynced_every_fsync_s_and_at_the_end(tmp_path: Path, monkeypatch) -> None:
    now = [0.0]
    synced: list[float] = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(now[0]))
    out = LineFile(tmp_path / "rec.jsonl", fsync_s=1.0, clock=lambda: now[0])
    for step in range(25):  # 2.5 s of messages at 10 Hz
        now[0] = step * 0.1
        out.write_line(_line(step))
    assert synced == pytest.approx([1.0, 2.0])
    out.close()
    assert len(synced) == 3  # and once more when it closes


def test_replay_accepts_a_recording_whose_last_line_was_cut_and_says_so_once(tmp_path: Path) -> None:
    cut = tmp_path / "cut.jsonl"
    whole = "".join(_line(seq) + "\n" for seq in range(5))
    cut.write_text(whole + _line(5)[:40])
    warnings: list[str] = []
    assert [r.message["seq"] for r in load(cut, on_cut=warnings.append)] == [0, 1, 2, 3, 4]
    assert len(warnings) == 1 and "cut.jsonl:6 is cut short" in warnings[0]
    proc = subprocess.run([sys.executable, "-m", "rover.stream.replay", str(cut), "--publish", f"ipc://{tmp_path / 'r'}",
                           "--wait", "0", "--speed", "100"], capture_output=True, text=True, timeout=60, env=ENV)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].count("cut short") == 1 and "5 detection messages" in lines[1]


def test_a_broken_line_before_the_end_is_still_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_line(0) + "\n" + _line(1)[:40] + "\n" + _line(2) + "\n")
    proc = subprocess.run([sys.executable, "-m", "rover.stream.replay", str(bad), "--publish", f"ipc://{tmp_path / 'r'}",
                           "--wait", "0"], capture_output=True, text=True, timeout=60, env=ENV)
    assert proc.returncode == EXIT_CONFIG and "bad.jsonl:2 is not a record line" in proc.stderr
