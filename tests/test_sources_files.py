"""Video files and image folders: order, pacing (injected clock), looping, bad input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from rover.core.errors import ConfigError
from rover.detector.config import CameraSection
from rover.sources import SourceEnded, make_source, parse_source
from rover.sources.images import ImageFolderSource
from rover.sources.opencv import CaptureSource, VideoFileSource
from tests.fixtures_detector import FakeTime, write_video


def brightness(image: np.ndarray) -> int:
    return int(round(float(image.mean()) / 10))


def read_all(source) -> list[np.ndarray]:
    images = []
    with pytest.raises(SourceEnded):
        while True:
            images.append(source.read())
    return images


def test_video_file_reads_every_frame_in_order_then_ends(tmp_path):
    source = VideoFileSource(write_video(tmp_path / "v.avi", 5), pace=False)
    source.open()
    assert source.live is False and source.order == "bgr" and source.fps == pytest.approx(20.0)
    assert [brightness(im) for im in read_all(source)] == [0, 1, 2, 3, 4]
    source.close()
    source.close()  # idempotent


def test_paced_video_file_sleeps_to_its_own_frame_rate(tmp_path):
    fake = FakeTime(start=100.0)
    source = VideoFileSource(write_video(tmp_path / "v.avi", 4, fps=20.0), pace=True, clock=fake.clock, sleep=fake.sleep)
    source.open()
    assert source.live is True
    read_all(source)
    # frame 0 at once, then one every 1/20 s
    assert fake.sleeps == pytest.approx([0.05, 0.05, 0.05])


def test_paced_video_file_does_not_sleep_when_the_reader_is_late(tmp_path):
    fake = FakeTime(start=100.0)
    source = VideoFileSource(write_video(tmp_path / "v.avi", 3, fps=20.0), pace=True, clock=fake.clock, sleep=fake.sleep)
    source.open()
    source.read()
    fake.now += 0.5  # the consumer was slow: frames 1 and 2 are already due
    source.read()
    source.read()
    assert fake.sleeps == []


def test_looped_video_file_starts_again_and_keeps_pacing(tmp_path):
    fake = FakeTime(start=100.0)
    source = VideoFileSource(write_video(tmp_path / "v.avi", 3), pace=True, loop=True, clock=fake.clock, sleep=fake.sleep)
    source.open()
    seen = [brightness(source.read()) for _ in range(7)]
    assert seen == [0, 1, 2, 0, 1, 2, 0]
    assert len(fake.sleeps) == 6 and fake.now == pytest.approx(100.0 + 6 / 20)


def test_real_pedestrian_video_decodes(vtest_video):
    source = VideoFileSource(vtest_video, pace=False)
    source.open()
    image = source.read()
    source.close()
    assert image.shape == (576, 768, 3) and source.fps == pytest.approx(10.0)


def test_missing_video_file_is_a_config_error_naming_it(tmp_path):
    source = VideoFileSource(tmp_path / "nope.avi")
    with pytest.raises(ConfigError, match="nope.avi does not exist"):
        source.open()


def test_undecodable_video_file_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video" * 100)
    with pytest.raises(ConfigError, match="cannot be decoded"):
        VideoFileSource(bad).open()


def write_images(folder: Path, values: list[int]) -> None:
    folder.mkdir(exist_ok=True)
    for i, v in enumerate(values):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((12, 16, 3), 10 * v, np.uint8))


def test_image_folder_reads_images_in_name_order_and_skips_undecodable(tmp_path, caplog):
    write_images(tmp_path, [3, 1, 2])
    (tmp_path / "001b.jpg").write_bytes(b"broken")
    (tmp_path / "notes.txt").write_text("not an image")
    source = ImageFolderSource(tmp_path, pace=False)
    source.open()
    assert [brightness(im) for im in read_all(source)] == [3, 1, 2]
    assert "001b.jpg" in caplog.text


def test_paced_looping_image_folder(tmp_path):
    write_images(tmp_path, [1, 2])
    fake = FakeTime(start=100.0)
    source = ImageFolderSource(tmp_path, pace=True, fps=4.0, loop=True, clock=fake.clock, sleep=fake.sleep)
    source.open()
    assert [brightness(source.read()) for _ in range(5)] == [1, 2, 1, 2, 1]
    assert fake.sleeps == pytest.approx([0.25] * 4)


def test_image_folder_without_images_is_a_config_error(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(ConfigError, match="has no images"):
        ImageFolderSource(tmp_path).open()


def test_real_images_read_as_bgr(shared_data):
    source = ImageFolderSource(shared_data, pace=False)
    source.open()
    images = read_all(source)
    assert len(images) == 3 and all(im.ndim == 3 and im.shape[2] == 3 for im in images)


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("picamera2", "picamera2", 0),
        ("0", "device", 0),
        ("2", "device", 2),
        ("rtsp://cam.local/stream", "url", "rtsp://cam.local/stream"),
        ("http://10.0.0.2:8080/video", "url", "http://10.0.0.2:8080/video"),
        ("clip.avi", "file", Path("clip.avi")),
    ],
)
def test_parse_source(text, kind, target):
    spec = parse_source(text)
    assert (spec.kind, spec.target) == (kind, target)


def test_parse_source_recognises_a_folder(tmp_path):
    assert parse_source(str(tmp_path)).kind == "folder"


def test_make_source_builds_the_backend_the_config_names(tmp_path):
    write_images(tmp_path, [1])
    folder = make_source(CameraSection(source=str(tmp_path), pace=False))
    video = make_source(CameraSection(source=str(tmp_path / "x.avi"), loop=True))
    device = make_source(CameraSection(source="1"))
    camera = make_source(CameraSection(source="picamera2", format="BGR888"))
    assert isinstance(folder, ImageFolderSource) and folder.live is False
    assert isinstance(video, VideoFileSource) and video.loop and video.live
    assert isinstance(device, CaptureSource) and device.target == 1
    assert camera.order == "rgb"


def test_camera_device_that_does_not_exist_raises_camera_error():
    from rover.core.errors import CameraError

    source = CaptureSource(97)
    with pytest.raises(CameraError, match="cannot open camera 97"):
        source.open()
    source.close()
