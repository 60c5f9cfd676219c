"""The picamera2 stand-in of the emulated Pi (tests/pi/picamera2), on this machine.

The emulated Pi is only as good as its stand-in: these check, against this
machine's numpy, the behaviour of raspberrypi/picamera2 it claims to keep
(errors, queueing, timeouts, buffer accounting, pixel layouts), and the
harness's pure parts. The stand-in's C extension is compiled here against
this venv's numpy, so its import succeeds; in the emulated Pi it is compiled
against Debian's numpy 1.24 and refuses numpy 2 (tests/test_pi_emulated.py).
"""

from __future__ import annotations

import concurrent.futures
import importlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from tests import pi_harness

CLIP_SHAPE = (4, 60, 80, 3)


@pytest.fixture(scope="module")
def picamera2(tmp_path_factory):
    """The stand-in package, its extension built for this interpreter, on a 4-frame clip."""
    if shutil.which("gcc") is None or not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        pytest.skip("no C compiler or Python headers to build the stand-in's extension")
    root = tmp_path_factory.mktemp("standin")
    package = root / "picamera2"
    shutil.copytree(pi_harness.STANDIN, package, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    source = package / "encoders" / "_pixels.c"
    build = subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", f"-I{sysconfig.get_paths()['include']}", f"-I{np.get_include()}", str(source),
         "-o", str(source.with_name("_pixels" + sysconfig.get_config_var("EXT_SUFFIX")))],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    clip = np.zeros(CLIP_SHAPE, np.uint8)
    for i in range(CLIP_SHAPE[0]):
        clip[i, ..., 0], clip[i, ..., 1], clip[i, ..., 2] = 10 * i, 100, 200  # B, G, R
    np.save(root / "clip.npy", clip)
    os.environ["PICAMERA2_STANDIN_CLIP"] = str(root / "clip.npy")
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("picamera2")
    finally:
        sys.path.remove(str(root))
        os.environ.pop("PICAMERA2_STANDIN_CLIP", None)
        for name in [m for m in sys.modules if m == "picamera2" or m.startswith("picamera2.")]:
            del sys.modules[name]


@pytest.fixture()
def camera(picamera2):
    cam = picamera2.Picamera2(0)
    yield cam
    cam.close()


def test_camera_list_and_a_missing_camera(picamera2):
    assert [c["Num"] for c in picamera2.Picamera2.global_camera_info()] == [0]
    with pytest.raises(IndexError):
        picamera2.Picamera2(1)


def test_a_second_user_of_the_camera_is_refused_as_libcamera_does(picamera2, camera):
    with pytest.raises(RuntimeError, match="Camera __init__ sequence did not complete") as info:
        picamera2.Picamera2(0)
    assert "Device or resource busy" in str(info.value.__cause__)


def test_video_configuration_defaults_and_checks(camera):
    config = camera.create_video_configuration()
    assert (config["buffer_count"], config["queue"], config["main"]["format"], config["main"]["size"]) == (6, True, "XBGR8888", (1280, 720))
    assert config["controls"]["FrameDurationLimits"] == (33333, 33333)
    with pytest.raises(ValueError, match="Bad key 'colour'"):
        camera.create_video_configuration(main={"colour": "red"})
    with pytest.raises(RuntimeError, match="width and height should be even"):
        camera.configure(camera.create_video_configuration(main={"size": (641, 480), "format": "RGB888"}) | {"main": {"size": (641, 480), "format": "RGB888"}})


@pytest.mark.parametrize("fmt, first_pixel", [("RGB888", [0, 100, 200]), ("BGR888", [200, 100, 0]),
                                              ("XRGB8888", [0, 100, 200, 255]), ("XBGR8888", [200, 100, 0, 255])])  # fmt: skip
def test_formats_lay_out_bytes_as_picamera2_documents(camera, fmt, first_pixel):
    camera.configure(camera.create_video_configuration(main={"size": (40, 30), "format": fmt}, buffer_count=2))
    camera.start()
    image = camera.capture_array("main", wait=5)
    assert image.shape == (30, 40, len(first_pixel))
    assert image[0, 0].tolist() == first_pixel


def test_configuring_a_started_camera_is_refused(camera):
    config = camera.create_video_configuration(main={"size": (40, 30), "format": "RGB888"}, buffer_count=2)
    camera.start(config)
    with pytest.raises(RuntimeError, match="must be stopped before configuring"):
        camera.configure(config)


def test_held_buffers_stall_the_sensor_and_a_wait_times_out(picamera2, camera):
    """Two buffers both held by the program: no frame can complete; wait=SECONDS raises TimeoutError."""
    camera.start(camera.create_video_configuration(main={"size": (40, 30), "format": "RGB888"}, buffer_count=2))
    held = [camera.capture_request(wait=5), camera.capture_request(wait=5)]
    with pytest.raises(concurrent.futures.TimeoutError):
        camera.capture_array("main", wait=0.3)
    assert picamera2.TimeoutError is concurrent.futures.TimeoutError and issubclass(picamera2.TimeoutError, OSError)
    for request in held:
        request.release()
    camera.cancel_all_and_flush()
    assert camera.capture_array("main", wait=5).shape == (30, 40, 3)


def test_frames_advance_and_carry_metadata(camera):
    camera.start(camera.create_video_configuration(main={"size": (40, 30), "format": "RGB888"}, buffer_count=4))
    first = camera.capture_request(wait=5)
    second = camera.capture_request(wait=5)
    try:
        assert second.get_metadata()["SensorTimestamp"] > first.get_metadata()["SensorTimestamp"]
        assert first.get_metadata()["FrameDuration"] == 33333
        assert first.make_array("main")[0, 0, 0] != second.make_array("main")[0, 0, 0]  # the clip's next frame
    finally:
        first.release()
        second.release()
    job = camera.capture_array("main", wait=False)
    assert camera.wait(job, timeout=5).shape == (30, 40, 3)


def test_without_a_clip_there_is_no_camera(picamera2, monkeypatch, tmp_path):
    monkeypatch.setattr(picamera2.picamera2, "CLIP", str(tmp_path / "none.npy"))
    assert picamera2.Picamera2.global_camera_info() == []


def test_debian_mirror_is_read_from_deb822_and_one_line_sources(tmp_path, monkeypatch):
    sources = tmp_path / "sources.list.d"
    sources.mkdir()
    (sources / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n"
    )
    real_path = pi_harness.Path

    def fake_path(p="", *rest):
        p = str(p)
        if p == "/etc/apt/sources.list":
            return real_path(tmp_path / "sources.list")
        if p == "/etc/apt/sources.list.d":
            return real_path(sources)
        return real_path(p, *rest)

    monkeypatch.setattr(pi_harness, "Path", fake_path)
    assert pi_harness.debian_mirror() == "http://mirror.example/debian"
    (sources / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://old.example/debian/ bookworm main\n")
    assert pi_harness.debian_mirror() == "http://old.example/debian"


@pytest.mark.parametrize("model, part, name", [(4, "0xd08", "Raspberry Pi 4 Model B"), (5, "0xd0b", "Raspberry Pi 5 Model B")])
def test_cpuinfo_is_a_pis(model, part, name):
    text = pi_harness._cpuinfo(model)
    assert text.count("processor\t:") == 4 and f"CPU part\t: {part}" in text
    assert f"Model\t\t: {name}" in text and "Revision\t:" in text


def test_the_skip_reason_is_one_line_without_root(monkeypatch):
    monkeypatch.setattr(pi_harness.os, "geteuid", lambda: 1000)
    assert pi_harness.unavailable_reason() == "the emulated Pi needs root (debootstrap, mounts, chroot)"
