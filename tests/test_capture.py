"""``rover capture``: frames for the export's calibration, from the camera or the preview stream."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from rover.core.errors import CameraError, ConfigError
from rover.sources.base import Frame
from rover.stream.capture import Sampler, _Stop, capture_from_preview, capture_from_source, prepare_out
from tests.fixtures_detector import ScriptedCamera, write_video

REPO = Path(__file__).resolve().parents[1]


def test_sampler_keeps_one_frame_per_interval_and_stops_at_the_count():
    sampler = Sampler(frames=3, every_s=0.5)
    times_s = [0.0, 0.2, 0.49, 0.5, 0.7, 1.1, 1.2, 2.0, 3.0]
    kept = [t for t in times_s if sampler.take(int(t * 1e9))]
    assert kept == [0.0, 0.5, 1.1]
    assert sampler.done and not sampler.take(int(9e9))


@pytest.mark.parametrize("frames, every", [(0, 0.5), (3, -1.0)])
def test_sampler_refuses_nonsense(frames, every):
    with pytest.raises(ConfigError):
        Sampler(frames, every)


class _StepClock:
    """monotonic_ns that moves ``step_s`` on every call."""

    def __init__(self, step_s: float) -> None:
        self.now, self.step = 0, int(step_s * 1e9)

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def test_camera_frames_are_saved_every_interval_as_lossless_bgr(tmp_path):
    camera = ScriptedCamera()
    camera.push(*range(0, 100, 10))  # ten frames, brightness 0, 10, ... 90
    out = prepare_out(tmp_path / "calib")
    code = capture_from_source(camera, out, Sampler(3, 0.5), _Stop(), timeout_s=5, clock_ns=_StepClock(0.25))
    assert code == 0
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    # A frame every 0.25 s, one kept per 0.5 s: every second frame.
    assert [int(cv2.imread(str(f))[0, 0, 0]) for f in files] == [0, 20, 40]
    assert camera.opens == 1 and camera.closes == 1


def test_rgb_sources_are_written_in_opencv_order(tmp_path):
    class RgbCamera(ScriptedCamera):
        order = "rgb"

    camera = RgbCamera()
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = 200  # red, in R,G,B order
    camera.items.put(image)
    out = prepare_out(tmp_path / "calib")
    assert capture_from_source(camera, out, Sampler(1, 0), _Stop(), timeout_s=5) == 0
    assert cv2.imread(str(out / "frame_00000.png"))[0, 0].tolist() == [0, 0, 200]


def test_a_camera_failure_closes_it_and_propagates(tmp_path):
    camera = ScriptedCamera()
    camera.items.put(CameraError("scripted camera stopped delivering frames"))
    with pytest.raises(CameraError):
        capture_from_source(camera, prepare_out(tmp_path / "c"), Sampler(2, 0), _Stop(), timeout_s=5)
    assert camera.closes == 1


def test_an_output_folder_with_frames_is_refused(tmp_path):
    (tmp_path / "frame_00000.png").write_bytes(b"x")
    with pytest.raises(ConfigError, match="already holds frame_"):
        prepare_out(tmp_path)


def _rover(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "rover.cli", "capture", *args], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip


def test_the_command_saves_a_folder_the_export_reads(tmp_path):
    from export import frames

    video = write_video(tmp_path / "clip.avi", frames=8)
    out = tmp_path / "calib"
    result = _rover("--out", str(out), "--frames", "4", "--every", "0", "--source", str(video),
                    "--config", str(REPO / "config" / "rover.example.toml"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"rover capture: saved 4 frames in {out} (python -m export --calib {out} ...)"
    assert frames.count_frames(out) == 4
    # The first four frames in order (brightness 10 * i, give or take the video's MJPEG coding).
    assert np.allclose([f.rgb.mean() for f in frames.sample(out, 4)], [0, 10, 20, 30], atol=3)


def test_the_command_says_one_line_and_78_for_a_used_folder(tmp_path):
    (tmp_path / "frame_00000.png").write_bytes(b"x")
    result = _rover("--out", str(tmp_path), "--source", str(tmp_path / "none.avi"))
    assert result.returncode == 78
    assert result.stderr.strip().splitlines() == [f"rover capture: --out {tmp_path} already holds frame_* files: choose an empty folder"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_preview_frames_of_a_running_detector_are_saved_as_jpegs(tmp_path):
    from rover.detector.preview import PreviewPublisher

    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    out = prepare_out(tmp_path / "calib")
    result: list[int] = []
    with PreviewPublisher(endpoint, width=64, max_fps=1000) as publisher:
        worker = threading.Thread(
            target=lambda: result.append(capture_from_preview(endpoint, out, Sampler(3, 0.0), _Stop(), timeout_s=10)))
        worker.start()
        seq = 0
        deadline = time.monotonic() + 20
        while worker.is_alive() and time.monotonic() < deadline:
            image = np.full((48, 64, 3), 10 * (seq % 20), np.uint8)
            publisher.offer(Frame(seq, time.monotonic_ns(), time.time(), image), "bgr", seq)
            seq += 1
            time.sleep(0.02)
        worker.join(timeout=5)
    assert result == [0]
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["frame_00000.jpg", "frame_00001.jpg", "frame_00002.jpg"]
    assert all(cv2.imread(str(f)).shape == (48, 64, 3) for f in files)


def test_preview_outside_the_car_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not loopback"):
        capture_from_preview("tcp://0.0.0.0:5557", tmp_path, Sampler(1, 0), _Stop(), timeout_s=1)
