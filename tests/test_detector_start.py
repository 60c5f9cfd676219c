"""The detector checks cheap things first: a wrong source or a busy endpoint is named before the model is loaded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.fixtures_detector import write_video

REPO = Path(__file__).resolve().parents[1]


def _detector(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    # A model file that exists but is no model: loading it would fail, so whatever is named first was checked first.
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    return subprocess.run([sys.executable, "-m", "rover.detector", "--config", str(tmp_path / "empty.toml"),
                           "--model", str(broken), *argv], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path)


def _errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if "ERROR" in line or "rover-detector:" in line]


def test_a_missing_video_file_is_named_before_the_model_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    proc = _detector(tmp_path, "--source", str(tmp_path / "no-such.avi"), "--bind", f"ipc://{tmp_path}/det")
    assert proc.returncode == 78, proc.stderr
    assert "no-such.avi does not exist" in proc.stderr and "camera.source" in proc.stderr
    assert "broken.onnx" not in proc.stderr and "Traceback" not in proc.stderr


def test_an_undecodable_video_or_an_empty_folder_is_named_before_the_model(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    junk = tmp_path / "junk.avi"
    junk.write_bytes(os.urandom(4096))
    proc = _detector(tmp_path, "--source", str(junk), "--bind", f"ipc://{tmp_path}/det")
    assert proc.returncode == 78 and "junk.avi cannot be decoded" in proc.stderr and "broken.onnx" not in proc.stderr
    empty = tmp_path / "frames"
    empty.mkdir()
    proc = _detector(tmp_path, "--source", str(empty), "--bind", f"ipc://{tmp_path}/det")
    assert proc.returncode == 78 and "has no images" in proc.stderr and "broken.onnx" not in proc.stderr


def test_a_busy_endpoint_is_named_before_the_model_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    video = write_video(tmp_path / "clip.avi", 3)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _detector(tmp_path, "--source", str(video), "--bind", f"tcp://127.0.0.1:{port}")
    assert proc.returncode == 78, proc.stderr
    assert f"stream.bind tcp://127.0.0.1:{port} cannot be bound" in proc.stderr and "broken.onnx" not in proc.stderr


def test_with_a_good_source_and_endpoint_the_broken_model_is_what_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    video = write_video(tmp_path / "clip.avi", 3)
    proc = _detector(tmp_path, "--source", str(video), "--bind", f"ipc://{tmp_path}/det")
    assert proc.returncode == 78 and "broken.onnx cannot be loaded by onnxruntime" in proc.stderr
