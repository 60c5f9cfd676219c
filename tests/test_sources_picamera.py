"""PicameraSource against tests/fake_picamera2.py, a fake that behaves as picamera2 does.

The fake follows raspberrypi/picamera2's source (see its docstring); where
picamera2 versions differ, the tests run on the oldest that matters (0.3.12,
the last one without any capture timeout), on 0.3.17 (``wait(job, timeout)``
but no ``capture_array(wait=seconds)``) and on the newest (0.3.36).
"""

from __future__ import annotations

import logging
import sys
import textwrap
import threading

import numpy as np
import pytest

from rover.core.errors import CameraError, ConfigError
from rover.detector.config import CameraSection
from rover.detector.preprocess import Preprocessor
from rover.sources import grabber as g
from rover.sources import make_source
from rover.sources.grabber import FrameGrabber
from rover.sources.picamera import PicameraSource
from tests.fake_picamera2 import LATEST, CameraSystem, WouldHang
from tests.fixtures_detector import FakeTime, wait_until

VERSIONS = [(0, 3, 12), (0, 3, 17), LATEST]
TIMEOUT_S = 0.05  # the capture timeout the tests use: short, the fake's sensor is stalled anyway


def version_id(v) -> str:
    return ".".join(map(str, v))


def in_thread(fn, limit_s: float = 10.0):
    """Run ``fn`` where a hang cannot stall the suite; re-raise what it raised."""
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), f"{fn} still blocked after {limit_s} s"
    if "error" in box:
        raise box["error"]
    return box.get("result")


def open_source(system: CameraSystem, **kwargs) -> PicameraSource:
    source = PicameraSource(64, 48, camera_factory=system.factory, **kwargs)
    source.open()
    return source


# -- the basics: configuration, colours, release -------------------------------


@pytest.mark.parametrize("fmt", ["RGB888", "BGR888"])
def test_configured_size_and_format_reach_the_camera_and_colours_come_out_right(fmt):
    system = CameraSystem()
    source = PicameraSource(320, 240, fmt, buffer_count=3, camera_factory=system.factory)
    source.open()
    camera = system.instances[0]
    camera.sensor_frame()
    image = source.read()
    source.close()
    assert camera.kinds() == ["open", "configure", "start", "completed", "capture_request", "release",
                              "cancel_all_and_flush", "stop_preview", "stop", "close"]
    assert camera.events[1][2:] == ((320, 240), fmt, 3, True)
    assert image.shape == (240, 320, 3)
    # Whatever the format, the model sees the scene's true RGB.
    tensor = Preprocessor(16, 16)(image, source.order)
    assert tensor[0, 8, 8].tolist() == list(system.scene_rgb)


def test_close_is_idempotent_and_safe_before_open_and_releases_the_camera():
    system = CameraSystem()
    source = PicameraSource(camera_factory=system.factory)
    source.close()
    source.open()
    assert system.acquired == {0}
    source.close()
    source.close()
    assert system.instances[0].kinds().count("close") == 1 and system.acquired == set()


def test_unknown_format_is_a_config_error():
    with pytest.raises(ConfigError, match="camera.format"):
        PicameraSource(format="YUV420", camera_factory=CameraSystem().factory)


# -- finding 1: capture_array waits forever; a timeout, then a clean close ------


@pytest.mark.parametrize("version", VERSIONS, ids=version_id)
def test_a_camera_that_stops_delivering_raises_camera_error_after_the_capture_timeout(version):
    system = CameraSystem(version=version)
    source = open_source(system, capture_timeout_s=TIMEOUT_S)
    system.stalled = True  # ribbon cable out: libcamera completes no more requests
    with pytest.raises(CameraError, match=r"no frame for 0.05 s \(camera.capture_timeout_s\)"):
        in_thread(source.read)
    in_thread(source.close)


@pytest.mark.parametrize("version", VERSIONS, ids=version_id)
def test_after_a_timeout_pending_jobs_are_cancelled_and_the_camera_closes_without_hanging(version):
    system = CameraSystem(version=version)
    source = open_source(system, capture_timeout_s=TIMEOUT_S)
    camera = system.instances[0]
    system.stalled = True
    with pytest.raises(CameraError):
        in_thread(source.read)
    in_thread(source.close)  # a stop() queued behind the hung capture job would raise WouldHang here
    kinds = camera.kinds()
    if version >= (0, 3, 20):  # cancel_all_and_flush exists: the pending capture job is cancelled first
        assert ("cancel_all_and_flush", 1) == camera.events[kinds.index("cancel_all_and_flush")][1:]
        assert kinds.index("cancel_all_and_flush") < kinds.index("stop_preview")
    assert kinds[-3:] == ["stop_preview", "stop", "close"]  # close(): event loop first, then the camera
    assert system.acquired == set()  # released: a retry can open it again
    system.stalled = False
    again = open_source(system, capture_timeout_s=1.0)
    system.instances[1].sensor_frame()
    assert in_thread(again.read).shape == (48, 64, 3)
    again.close()


def test_the_fake_hangs_where_picamera2_hangs():
    """What the tests above rely on: stop() after a timed-out capture, without cancelling, never returns."""
    system = CameraSystem()
    camera = system.factory()
    camera.configure(camera.create_video_configuration(main={"size": (8, 8), "format": "RGB888"}))
    camera.start()
    with pytest.raises(TimeoutError):
        camera.capture_array(wait=TIMEOUT_S)
    with pytest.raises(WouldHang):
        camera.stop()


def test_a_capture_timeout_goes_down_the_grabbers_retry_path_and_frames_come_back():
    system = CameraSystem(frame_period_s=0.005)
    source = PicameraSource(64, 48, capture_timeout_s=TIMEOUT_S, camera_factory=system.factory)
    grabber = FrameGrabber(source, retry_timeout_s=60.0, retry_backoff_s=0.01).start()
    try:
        assert grabber.next(timeout=5.0) is not None
        system.stalled = True
        wait_until(lambda: grabber.state == g.RETRYING)
        assert "camera.capture_timeout_s" in str(grabber.error)
        system.stalled = False
        wait_until(lambda: grabber.state == g.RUNNING and len(system.instances) >= 2)
        assert grabber.next(timeout=5.0) is not None
    finally:
        grabber.stop(timeout=5.0)
    first = system.instances[0]
    assert first.kinds()[-3:] == ["stop_preview", "stop", "close"] and "cancel_all_and_flush" in first.kinds()
    assert system.acquired == set()


# -- finding 2: queue=True keeps the newest request; buffers for every frame -----


def run_sensor_with_a_late_event_loop(camera, read, frames: int = 40, late_frames: int = 3) -> None:
    """The detector's threads hold the GIL: picamera2's event loop runs only every ``late_frames + 1`` frames.

    The reader is slow too: it reads a frame only at every other run of the
    event loop, so the request picamera2 keeps (queue=True) is held while the
    event loop is late.
    """
    for n in range(frames):
        camera.event_loop_lagging = n % (late_frames + 1) != late_frames
        camera.sensor_frame()
        if not camera.event_loop_lagging:
            camera.run_event_loop()
            if n % (2 * (late_frames + 1)) == late_frames:
                read()


def late_or_lost(camera) -> tuple[int, int]:
    late = sum(1 for e in camera.events if e[1] == "completed" and e[3] > 0)
    return late, camera.dropped


def test_default_settings_deliver_every_frame_on_time_while_picamera2s_event_loop_is_late():
    system = CameraSystem()
    source = make_source(CameraSection(), camera_factory=system.factory)  # the [camera] defaults
    source.open()
    camera = system.instances[0]
    assert camera.events[1][4:] == (4, True)  # buffer_count, queue
    run_sensor_with_a_late_event_loop(camera, source.read)
    assert late_or_lost(camera) == (0, 0)
    source.close()


def test_two_buffers_leave_libcamera_short_so_frames_come_late_or_are_lost():
    system = CameraSystem()
    source = PicameraSource(64, 48, buffer_count=2, camera_factory=system.factory)
    source.open()
    camera = system.instances[0]
    run_sensor_with_a_late_event_loop(camera, source.read)
    late, lost = late_or_lost(camera)
    assert late > 0 and lost > 0
    source.close()


@pytest.mark.parametrize("buffers", [2, 3, 4, 5])
def test_n_buffers_keep_frames_on_time_while_the_event_loop_misses_n_minus_one_frames(buffers):
    def run(late_frames):
        system = CameraSystem()
        source = PicameraSource(64, 48, buffer_count=buffers, camera_factory=system.factory)
        source.open()
        run_sensor_with_a_late_event_loop(system.instances[0], source.read, frames=60, late_frames=late_frames)
        source.close()
        return late_or_lost(system.instances[0])

    assert run(buffers - 1) == (0, 0)
    assert run(buffers)[0] > 0


def test_a_slow_reader_gets_the_newest_frame_at_once_not_a_queue_of_old_ones():
    system = CameraSystem()
    source = open_source(system, capture_timeout_s=1.0)
    camera = system.instances[0]
    for _ in range(5):  # five frames while the detector is busy
        camera.sensor_frame()
    source.read()
    assert camera.kinds()[-2:] == ["capture_request", "release"]
    seq, age = camera.events[-2][2:]
    assert (seq, age) == (5, 0)
    assert camera.held_by_picamera2() == 0  # it took the one request picamera2 kept, and gave it back
    source.close()


class ManualNs:
    def __init__(self, t: int = 1_000_000_000) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def test_a_frame_is_stamped_when_the_sensor_took_it_not_when_it_was_read():
    clock = ManualNs()
    system = CameraSystem(clock_ns=clock)
    source = open_source(system, capture_timeout_s=1.0)
    system.instances[0].sensor_frame()  # taken now ...
    taken = clock.t
    clock.t += 30_000_000  # ... read 30 ms later (the grabber was busy)
    grabber = FrameGrabber(source, clock_ns=clock, wall=lambda: 1.7e9)
    grabber._publish(source.read())
    frame = grabber.next(timeout=0)
    assert source.last_capture_ns == taken
    assert frame.t_capture_ns == taken and frame.t_capture == pytest.approx(1.7e9 - 0.030)
    source.close()


# -- finding 3: why "Camera __init__ sequence did not complete." -----------------


@pytest.mark.parametrize("version", [(0, 3, 12), LATEST], ids=version_id)
def test_no_camera_attached_says_so(version):
    # 0.3.13 and later: IndexError from global_camera_info(); 0.3.12: the wrapped "Camera(s) not found"
    system = CameraSystem(version=version, attached=0)
    with pytest.raises(CameraError, match="no camera") as info:
        PicameraSource(camera_factory=system.factory).open()
    assert "ribbon cable" in str(info.value)


@pytest.mark.parametrize("version", [(0, 3, 17), LATEST], ids=version_id)
def test_busy_camera_names_the_cause_under_camera_init_did_not_complete(version, caplog):
    # the cause is __cause__ since 0.3.35 and only __context__ before
    system = CameraSystem(version=version)
    system.held_elsewhere.add(0)
    source = PicameraSource(camera_factory=system.factory)
    with pytest.raises(CameraError) as info:
        source.open()
    message = str(info.value)
    assert "Camera __init__ sequence did not complete." in message
    assert "Failed to acquire camera: Device or resource busy" in message and "another process" in message
    # ...and the grabber's retry log line carries it.
    fake = FakeTime()
    grabber = FrameGrabber(source, retry_timeout_s=1.0, retry_backoff_s=0.5, clock=fake.clock, sleep=fake.sleep)
    with caplog.at_level(logging.WARNING):
        grabber._run()
    assert "Device or resource busy" in caplog.text and grabber.state == g.FAILED


# -- issue 10: any failure to import picamera2, in one line -----------------------


def fake_apt_picamera2(tmp_path, monkeypatch, body: str) -> None:
    package = tmp_path / "picamera2"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)


def test_picamera2_broken_by_numpy_2_names_the_numpy_cause_and_the_fix(tmp_path, monkeypatch):
    # What apt's picamera2 does under a venv's numpy 2: picamera2 -> encoders -> jpeg_encoder -> simplejpeg
    fake_apt_picamera2(tmp_path, monkeypatch, """
        raise ValueError("numpy.dtype size changed, may indicate binary incompatibility. "
                         "Expected 96 from C header, got 88 from PyObject")
    """)
    with pytest.raises(ConfigError) as info:
        PicameraSource().open()
    message = str(info.value)
    assert "\n" not in message
    assert "ValueError: numpy.dtype size changed" in message
    assert f"numpy {np.__version__}" in message and "apt" in message and "numpy<2" in message


def test_any_other_failure_to_import_picamera2_is_one_line_naming_it(tmp_path, monkeypatch):
    fake_apt_picamera2(tmp_path, monkeypatch, """
        import libcamera_not_in_this_venv  # python3-libcamera not visible: venv without system site packages
    """)
    with pytest.raises(ConfigError, match=r"ModuleNotFoundError: No module named 'libcamera_not_in_this_venv'.*"
                                          r"--system-site-packages") as info:
        PicameraSource().open()
    assert "\n" not in str(info.value)


def test_without_picamera2_installed_the_error_says_how_to_install_it():
    source = PicameraSource()  # no factory: the real, lazy import (absent on this machine)
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="python3-picamera2"):
            source.open()
    else:  # pragma: no cover - only on a Pi
        pytest.skip("picamera2 is installed here")


def test_grabber_releases_the_camera_on_stop():
    system = CameraSystem(frame_period_s=0.005)
    source = PicameraSource(64, 48, camera_factory=system.factory)
    grabber = FrameGrabber(source).start()
    frame = grabber.next(timeout=5.0)
    grabber.stop(timeout=5.0)
    camera = system.instances[0]
    assert frame is not None and frame.image.shape == (48, 64, 3)
    assert camera.kinds()[-3:] == ["stop_preview", "stop", "close"] and not camera.started
    assert system.acquired == set()
