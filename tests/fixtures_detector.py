"""Shared pytest fixtures for the detector tests (imported by tests/conftest.py).

:func:`make_contract_model` writes a tiny ONNX model, built with
``onnx.helper`` (no torch), that follows the rover model contract: input
``image`` uint8 ``[1, H, W, 3]``, outputs ``boxes`` ``[1, N, 4]`` and softmax
``scores`` ``[1, N, C]``, the contract metadata. Its priors are fixed boxes;
its logits are fixed, except that the first prior's first object class loses
``10 * mean brightness`` (0..1) of logit, so a dark frame shows that object
and a white one does not: the output really depends on the input pixels.
"""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from rover.core.contract import ModelInfo
from rover.core.errors import CameraError

__all__ = ["contract_model", "detector_model"]  # the fixtures; helpers are imported by name

LABELS = ("__background__", "person", "car")
#: x1, y1, x2, y2 of the model's four priors (normalised).
BOXES = (
    (0.10, 0.20, 0.40, 0.90),  # person, 0.99 on a dark frame
    (0.12, 0.21, 0.41, 0.88),  # person again, overlapping: NMS removes it
    (0.50, 0.50, 0.90, 0.80),  # car
    (0.00, 0.00, 1.00, 1.00),  # background
)
#: Logits per prior and class (background, person, car).
LOGITS = (
    (0.0, 6.0, 0.0),
    (0.0, 4.0, 0.0),
    (0.0, 0.0, 5.0),
    (6.0, 0.0, 0.0),
)


def make_contract_model(
    path: Path,
    *,
    labels: Sequence[str] = LABELS,
    input_size: tuple[int, int] = (64, 48),
    boxes: Sequence[Sequence[float]] = BOXES,
    logits: Sequence[Sequence[float]] = LOGITS,
    architecture: str = "synthetic-test",
    precision: str = "float32",
    input_dtype: int = TensorProto.UINT8,
    drop_metadata: Sequence[str] = (),
) -> Path:
    """Write a contract model to ``path`` and return the path.

    ``input_dtype`` and ``drop_metadata`` break the contract on purpose.
    """
    width, height = input_size
    box_arr = np.asarray(boxes, np.float32)[None]
    logit_arr = np.asarray(logits, np.float32)[None]
    n, c = logit_arr.shape[1], logit_arr.shape[2]
    assert box_arr.shape == (1, n, 4) and c == len(labels)
    brightness_weight = np.zeros_like(logit_arr)
    brightness_weight[0, 0, 1] = -10.0
    nodes = [
        helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["image_f"], ["mean"], keepdims=0),
        helper.make_node("Div", ["mean", "c255"], ["brightness"]),
        helper.make_node("Mul", ["weight", "brightness"], ["shift"]),
        helper.make_node("Add", ["logits", "shift"], ["shifted"]),
        helper.make_node("Softmax", ["shifted"], ["scores"], axis=-1),
        helper.make_node("Identity", ["priors"], ["boxes"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(255.0, np.float32), "c255"),
        numpy_helper.from_array(brightness_weight, "weight"),
        numpy_helper.from_array(logit_arr, "logits"),
        numpy_helper.from_array(box_arr, "priors"),
    ]
    graph = helper.make_graph(
        nodes,
        architecture,
        [helper.make_tensor_value_info("image", input_dtype, [1, height, width, 3])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, n, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, n, c]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="rover-tests")
    model.ir_version = 8
    info = ModelInfo(
        labels=tuple(labels), input_width=width, input_height=height, architecture=architecture,
        precision=precision, source_sha256="0" * 64, exporter_version="test",
    )
    helper.set_model_props(model, {k: v for k, v in info.metadata().items() if k not in drop_metadata})
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def contract_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny conforming model: labels background/person/car, input 64x48."""
    return make_contract_model(tmp_path_factory.mktemp("models") / "synthetic.onnx")


@pytest.fixture(scope="session")
def detector_model(exported_models) -> Path:
    """The real int8 SSD300 export (``python -m export`` on a random-weight checkpoint,
    built once per session by tests/fixtures_export.py) for the end-to-end tests."""
    return Path(exported_models.int8_path)


class ScriptedCamera:
    """A live camera whose frames the test releases; records opens and closes.

    ``fail_opens`` open attempts raise CameraError first; a queued exception
    instance is raised by ``read`` instead of returning an image.
    """

    name = "scripted camera"
    order = "bgr"

    def __init__(self, live: bool = True, fail_opens: int = 0) -> None:
        self.live = live
        self.fail_opens = fail_opens
        self.items: queue.Queue = queue.Queue()
        self.opens = 0
        self.closes = 0
        self.reads = 0

    def push(self, *values: int) -> None:
        for v in values:
            self.items.put(np.full((4, 4, 3), v, np.uint8))

    def open(self) -> None:
        self.opens += 1
        if self.opens <= self.fail_opens:
            raise CameraError("scripted camera is unplugged")

    def read(self) -> np.ndarray:
        item = self.items.get(timeout=5)
        self.reads += 1
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.closes += 1


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


def write_video(path: Path, frames: int, fps: float = 20.0, size: tuple[int, int] = (64, 48)) -> Path:
    """An MJPEG AVI whose frame i has brightness 10 * i (so frames can be told apart)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 10 * i, np.uint8))
    writer.release()
    return path


class FakeTime:
    """A clock that only moves when someone sleeps; records every sleep (seconds)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
