"""PicameraSource with a faithful fake Picamera2 that records what the camera was told."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rover.core.errors import CameraError, ConfigError
from rover.detector.preprocess import Preprocessor
from rover.sources.grabber import FrameGrabber
from rover.sources.picamera import PicameraSource


class FakePicamera2:
    """Mimics picamera2.Picamera2: configuration dicts, start/stop/close, and
    ``capture_array`` returning the sensor's frame in the byte order the
    configured format really produces (RGB888 -> B, G, R in memory)."""

    instances: list["FakePicamera2"] = []
    #: The scene, as true R, G, B.
    scene_rgb = (200, 100, 30)
    frame_period_s = 0.01  # a 100 fps sensor

    def __init__(self, camera_num: int = 0, fail: Exception | None = None) -> None:
        if fail is not None:
            raise fail
        self.camera_num = camera_num
        self.events: list[tuple] = []
        self.config: dict | None = None
        self.started = False
        self.closed = False
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main: dict, buffer_count: int = 6, **kwargs) -> dict:
        return {"use_case": "video", "main": dict(main), "buffer_count": buffer_count, **kwargs}

    def configure(self, config: dict) -> None:
        assert not self.started, "picamera2 refuses configure while running"
        self.config = config
        self.events.append(("configure", config["main"]["size"], config["main"]["format"], config["buffer_count"]))

    def start(self) -> None:
        assert self.config is not None, "picamera2 needs configure before start"
        self.started = True
        self.events.append(("start",))

    def capture_array(self, name: str = "main") -> np.ndarray:
        if not self.started:
            raise RuntimeError("camera is not running")
        width, height = self.config["main"]["size"]
        rgb = np.array(self.scene_rgb, np.uint8)
        pixel = rgb[::-1] if self.config["main"]["format"] == "RGB888" else rgb
        self.events.append(("capture", name))
        time.sleep(self.frame_period_s)  # capture_array blocks until the sensor's next frame
        return np.broadcast_to(pixel, (height, width, 3)).copy()

    def stop(self) -> None:
        self.started = False
        self.events.append(("stop",))

    def close(self) -> None:
        self.closed = True
        self.events.append(("close",))


@pytest.fixture(autouse=True)
def _fresh_instances():
    FakePicamera2.instances = []
    yield


@pytest.mark.parametrize("fmt", ["RGB888", "BGR888"])
def test_configured_size_and_format_reach_the_camera_and_colours_come_out_right(fmt):
    source = PicameraSource(320, 240, fmt, buffer_count=3, camera_factory=FakePicamera2)
    source.open()
    image = source.read()
    source.close()
    camera = FakePicamera2.instances[0]
    assert camera.events == [("configure", (320, 240), fmt, 3), ("start",), ("capture", "main"), ("stop",), ("close",)]
    assert image.shape == (240, 320, 3)
    # Whatever the format, the model sees the scene's true RGB.
    tensor = Preprocessor(16, 16)(image, source.order)
    assert tensor[0, 8, 8].tolist() == list(FakePicamera2.scene_rgb)


def test_close_is_idempotent_and_safe_before_open():
    source = PicameraSource(camera_factory=FakePicamera2)
    source.close()
    source.open()
    source.close()
    source.close()
    assert [e[0] for e in FakePicamera2.instances[0].events].count("close") == 1


def test_camera_that_cannot_be_opened_raises_camera_error_so_it_is_retried():
    def busy(camera_num: int = 0):
        return FakePicamera2(camera_num, fail=RuntimeError("Device or resource busy"))

    with pytest.raises(CameraError, match="busy"):
        PicameraSource(camera_factory=busy).open()


def test_camera_failing_mid_capture_raises_camera_error():
    source = PicameraSource(camera_factory=FakePicamera2)
    source.open()
    FakePicamera2.instances[0].started = False  # libcamera stopped the stream under us
    with pytest.raises(CameraError, match="stopped delivering"):
        source.read()
    source.close()
    assert FakePicamera2.instances[0].closed


def test_unknown_format_is_a_config_error():
    with pytest.raises(ConfigError, match="camera.format"):
        PicameraSource(format="YUV420", camera_factory=FakePicamera2)


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
    source = PicameraSource(64, 48, camera_factory=FakePicamera2)
    grabber = FrameGrabber(source).start()
    frame = grabber.next(timeout=5.0)
    grabber.stop(timeout=5.0)
    camera = FakePicamera2.instances[0]
    assert frame is not None and frame.image.shape == (48, 64, 3)
    assert camera.events[-2:] == [("stop",), ("close",)] and not camera.started
