"""rover.detector.preprocess: resize and channel order, into buffers allocated once."""

from __future__ import annotations

import numpy as np
import pytest

from rover.detector.preprocess import Preprocessor


def _frame(h: int, w: int, bgr: tuple[int, int, int]) -> np.ndarray:
    frame = np.empty((h, w, 3), np.uint8)
    frame[:] = bgr
    return frame


def test_bgr_frame_becomes_rgb_tensor_of_the_model_size():
    pre = Preprocessor(width=30, height=20)
    tensor = pre(_frame(480, 640, (255, 10, 0)), "bgr")  # pure blue in OpenCV's order
    assert tensor.shape == (1, 20, 30, 3) and tensor.dtype == np.uint8
    assert tensor[0, 10, 15].tolist() == [0, 10, 255]


def test_rgb_frame_keeps_its_order():
    pre = Preprocessor(width=30, height=20)
    tensor = pre(_frame(40, 60, (255, 10, 0)), "rgb")
    assert tensor[0, 5, 5].tolist() == [255, 10, 0]


@pytest.mark.parametrize("order", ["bgr", "rgb"])
def test_frame_already_at_model_size_is_not_resized(order):
    pre = Preprocessor(width=4, height=3)
    frame = np.arange(36, dtype=np.uint8).reshape(3, 4, 3)
    tensor = pre(frame, order)
    expected = frame[:, :, ::-1] if order == "bgr" else frame
    np.testing.assert_array_equal(tensor[0], expected)


def test_enlarging_a_small_frame_works():
    pre = Preprocessor(width=64, height=48)
    tensor = pre(_frame(12, 16, (1, 2, 3)), "bgr")
    assert tensor[0, 47, 63].tolist() == [3, 2, 1]


def test_resize_keeps_image_content_where_it_was():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[:, 100:] = 200  # right half bright
    tensor = Preprocessor(width=20, height=10)(frame, "bgr")
    assert tensor[0, :, :9].max() == 0 and tensor[0, :, 11:].min() == 200


def test_every_call_reuses_the_same_buffer():
    pre = Preprocessor(width=30, height=20)
    first = pre(_frame(48, 64, (1, 1, 1)), "bgr")
    second = pre(_frame(48, 64, (2, 2, 2)), "bgr")
    assert first is second and second[0, 0, 0].tolist() == [2, 2, 2]


@pytest.mark.parametrize(
    "frame",
    [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3), np.float32)],
    ids=["grey", "four-channels", "float"],
)
def test_frames_that_are_not_hxwx3_uint8_are_refused(frame):
    with pytest.raises(ValueError, match="h x w x 3 uint8"):
        Preprocessor(8, 8)(frame, "bgr")


def test_unknown_channel_order_is_refused():
    with pytest.raises(ValueError, match="channel order"):
        Preprocessor(8, 8)(np.zeros((8, 8, 3), np.uint8), "yuv")  # type: ignore[arg-type]
