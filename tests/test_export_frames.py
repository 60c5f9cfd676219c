"""Sampling calibration and held-out frames from folders and videos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from export.frames import even_indices, sample, sample_split, split_calib_val, to_input, write_synthetic_frames
from rover.core.errors import ConfigError


def test_even_indices_spread_over_the_whole_source():
    assert even_indices(795, 5) == [0, 198, 397, 596, 794]
    assert even_indices(3, 10) == [0, 1, 2]
    assert even_indices(0, 4) == [] and even_indices(10, 0) == []


def test_calibration_and_held_out_frames_are_disjoint_and_interleaved():
    calib, val = split_calib_val(even_indices(100, 20), 5)
    assert len(calib) == 15 and len(val) == 5
    assert not set(calib) & set(val)
    assert min(val) < 50 < max(val)  # held-out frames come from both halves


def test_folder_sampling_reads_rgb_frames_and_skips_broken_images(tmp_path):
    folder = write_synthetic_frames(tmp_path / "f", count=6)
    (folder / "broken.jpg").write_bytes(b"not an image")
    blue = np.zeros((20, 30, 3), np.uint8)
    blue[..., 0] = 255  # BGR on disk
    cv2.imwrite(str(folder / "zz_blue.png"), blue)
    frames = sample(folder, 100)
    assert len(frames) == 7 and all(f.rgb.dtype == np.uint8 for f in frames)
    assert frames[-1].name == "zz_blue.png" and frames[-1].rgb[0, 0].tolist() == [0, 0, 255]


def test_split_from_a_folder_keeps_held_out_frames_out_of_calibration(tmp_path):
    folder = write_synthetic_frames(tmp_path / "f", count=10)
    calib, val = sample_split(folder, 6, 3)
    assert len(calib) == 6 and len(val) == 3
    assert not {f.name for f in calib} & {f.name for f in val}


def test_video_frames_are_sampled_evenly(vtest_video):
    frames = sample(vtest_video, 4)
    assert [f.name for f in frames] == [f"vtest.avi#{i}" for i in even_indices(795, 4)]
    assert frames[0].name == "vtest.avi#0" and frames[-1].name == "vtest.avi#794"  # all 795 frames decoded
    assert frames[0].rgb.shape == (576, 768, 3)


def test_no_readable_frames_is_a_config_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(ConfigError, match="has no readable frames"):
        sample(tmp_path, 4)
    not_video = tmp_path / "clip.avi"
    not_video.write_bytes(b"\x00" * 100)
    with pytest.raises(ConfigError, match="clip.avi has no readable frames"):
        sample_split(not_video, 4, 2)
    with pytest.raises(ConfigError, match="does not exist"):
        sample(tmp_path / "missing", 4)


def test_model_input_is_a_plain_resize_to_uint8_nhwc():
    rgb = np.zeros((576, 768, 3), np.uint8)
    rgb[:, 384:] = (10, 20, 30)
    x = to_input(rgb, 300, 300)
    assert x.shape == (1, 300, 300, 3) and x.dtype == np.uint8
    assert x[0, 150, 0].tolist() == [0, 0, 0] and x[0, 150, 299].tolist() == [10, 20, 30]
