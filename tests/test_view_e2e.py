"""The live view in a real browser: detector, drive, rover-view and headless Chromium.

The detector plays ../shared/data/vtest.avi (paced, like a camera) with the
exported int8 model and preview frames on; the drive runs its ``log``
backend; ``rover-view`` serves the page; Debian's ``chromium``, driven by
Playwright (``executable_path``: no browser download), loads it. The test
checks that the picture changes, the panel shows live numbers, the detector
shows as offline when it stops and comes back when it restarts, and saves
screenshots under ``test-output/`` (git-ignored).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "test-output"
HANG_GUARD_MS = 45_000  # only catches a hang; never a timing assertion
# The picture as the page shows it: the <img> drawn to a canvas, summed (same origin: not tainted).
PICTURE_SUM = """() => {
  const img = document.getElementById('video');
  if (!img.naturalWidth) return null;
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, c.width, c.height).data;
  let sum = 0;
  for (let i = 0; i < data.length; i += 4) sum += data[i] + 3 * data[i + 1] + 7 * data[i + 2];
  return sum;
}"""


@pytest.fixture(scope="session")
def browser_setup():
    """Chromium's path and Playwright's sync API, or skip, before the model export is paid for."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed: `make test` installs it as root "
                    "(apt-get install -y --no-install-recommends chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' brings Playwright")
    return path, sync_api


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Program:
    """``python -m MODULE`` with stderr kept in a file."""

    def __init__(self, tmp_path: Path, module: str, *args: str) -> None:
        self.log_path = tmp_path / f"{module}.{time.monotonic_ns()}.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, stdout=subprocess.DEVNULL,
                                     stderr=self.log, env={**os.environ})

    @property
    def stderr(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.log.close()


def wait_for_http(port: int, program: Program) -> None:
    deadline = time.monotonic() + HANG_GUARD_MS / 1000
    while True:
        assert program.proc.poll() is None, program.stderr
        assert time.monotonic() < deadline, program.stderr
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/state.json")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)


def test_the_page_shows_live_video_boxes_and_stats_and_survives_a_detector_restart(
    browser_setup, vtest_video, detector_model, tmp_path
):
    browser_path, sync_api = browser_setup
    port = free_port()
    config = tmp_path / "rover.toml"
    config.write_text(f"""
[stream]
bind = "ipc://{tmp_path}/detections.sock"
[drive]
connect = "ipc://{tmp_path}/detections.sock"
publish = "ipc://{tmp_path}/drive.sock"
backend = "log"
max_age_s = 2.0
[view]
preview = true
frames = "ipc://{tmp_path}/frames.sock"
detections = "ipc://{tmp_path}/detections.sock"
drive = "ipc://{tmp_path}/drive.sock"
port = {port}
offline_after_s = 1.0
""")
    detector_args = ("rover.detector", "--config", str(config), "--model", str(detector_model),
                     "--source", str(vtest_video), "--classes", "person", "--loop")
    programs = [Program(tmp_path, *detector_args),
                Program(tmp_path, "rover.drive", "--config", str(config)),
                Program(tmp_path, "rover.view", "--config", str(config))]
    OUTPUT.mkdir(exist_ok=True)
    try:
        wait_for_http(port, programs[2])
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=browser_path, args=["--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1100, "height": 700})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"http://127.0.0.1:{port}/")

            # Live: frame events arrive, the picture itself changes, the panel has numbers.
            page.wait_for_function("() => window.roverView.frames >= 3", timeout=HANG_GUARD_MS)
            first = page.evaluate(PICTURE_SUM)
            page.wait_for_function(f"(first) => ({PICTURE_SUM})() !== first", arg=first, timeout=HANG_GUARD_MS)
            assert page.evaluate("() => document.getElementById('video').naturalWidth") == 320
            page.wait_for_function(
                "() => document.getElementById('drive-badge').textContent === 'online'"
                " && document.getElementById('drive-state').textContent !== '-'", timeout=HANG_GUARD_MS)
            text = {key: page.inner_text(f"#{key}") for key in (
                "detector-badge", "detector-fps", "detector-inference", "detector-latency", "detector-age",
                "drive-state", "drive-age", "video-frames", "video-size")}
            assert text["detector-badge"] == "online", text
            assert float(text["detector-fps"]) > 0 and float(text["detector-inference"].removesuffix(" ms")) > 0, text
            assert float(text["detector-latency"].removesuffix(" ms")) > 0 and text["detector-age"].endswith(" s"), text
            assert text["drive-state"] in {"SAFE", "ARMED", "FOLLOWING", "LOST", "SEARCH", "STOPPED"}, text
            assert int(text["video-frames"]) >= 3 and text["video-size"] == "320 × 240", text
            frame = page.evaluate("() => window.roverView.lastFrame")
            assert frame["detections"] is not None, "a frame's detection message was not paired with it"
            shot = OUTPUT / "view-live.png"
            page.screenshot(path=str(shot))
            print(f"screenshot: {shot} ({text})")

            # The detector stops: shown offline; it starts again: shown online, frames flow again.
            assert programs[0].stop() == 0, programs[0].stderr
            page.wait_for_function("() => document.getElementById('detector-badge').textContent === 'offline'"
                                   " && document.getElementById('video-badge').textContent === 'offline'",
                                   timeout=HANG_GUARD_MS)
            page.screenshot(path=str(OUTPUT / "view-detector-offline.png"))
            frames_before = page.evaluate("() => window.roverView.frames")
            programs.append(Program(tmp_path, *detector_args))
            page.wait_for_function(
                "(n) => window.roverView.frames > n + 2"
                " && document.getElementById('detector-badge').textContent === 'online'",
                arg=frames_before, timeout=HANG_GUARD_MS)
            print(f"screenshots: {OUTPUT / 'view-detector-offline.png'}, {shot}")
            assert errors == []
            browser.close()
        view = programs[2]
        assert view.stop() == 0, view.stderr
        assert "Traceback" not in view.stderr and "serving http://127.0.0.1:" in view.stderr
    finally:
        for program in programs:
            program.stop()
