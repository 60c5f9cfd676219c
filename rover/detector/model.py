"""The detector: an onnxruntime session on a contract model, plus pre- and post-processing.

:class:`Detector` checks the model against :mod:`rover.core.contract` when it is
loaded (labels and input size come from the model's metadata, so any model
exported to the contract runs unchanged), resolves the class allow-list by
label name once, runs one warm-up inference, and then turns a frame into
labelled, normalised detections with per-stage timings. On loading it logs
one line on what the CPU and the model's recorded quantization mean together
(:mod:`rover.detector.int8mode`: exact mode, its cost, the re-export that
removes it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnxruntime as ort

from rover.core.contract import BOXES_NAME, INPUT_NAME, SCORES_NAME, ModelInfo, check_io, parse_metadata
from rover.core.errors import ConfigError, ModelError
from rover.core.messages import Detection
from rover.detector.cpu import this_cpu, this_cpu_int8_config
from rover.detector.int8mode import Int8Mode, QuantInfo, int8_mode, quant_info
from rover.detector.postprocess import PostprocessConfig, select
from rover.detector.preprocess import ChannelOrder, Preprocessor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorResult:
    """Detections of one frame and what each stage cost (milliseconds)."""

    detections: tuple[Detection, ...]
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float
    dropped_nonfinite: int  #: candidates dropped for NaN/inf values


def resolve_classes(names: Sequence[str], labels: Sequence[str], where: str = "model") -> tuple[int, ...] | None:
    """Class indices for the allow-list ``names``; None (every class) when empty."""
    if not names:
        return None
    index = {label: i for i, label in enumerate(labels) if i > 0}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise ConfigError(
            f"detector.classes has {', '.join(repr(n) for n in unknown)}, which {where} does not know: "
            f"its labels are {', '.join(labels[1:])}"
        )
    return tuple(sorted({index[n] for n in names}))


def open_session(path: Path, intra_op_threads: int = 0) -> ort.InferenceSession:
    """An onnxruntime CPU session; a missing or unreadable model raises ModelError."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist: export one (`python -m export`) and set detector.model or --model")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads  # 0: onnxruntime's default, one per physical core
    options.inter_op_num_threads = 1
    # Worker threads sleep instead of spinning between frames: they shared the cores with
    # the capture thread and the drive; measured 26 % less CPU per frame and 1.5x lower
    # median latency with other work on the cores (docs/export.md, "Session options").
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Exact int8 on x86 CPUs without VNNI, whose u8 x s8 kernels saturate (rover.detector.cpu).
    for key, value in this_cpu_int8_config().items():
        options.add_session_config_entry(key, value)
    options.log_severity_level = 3  # errors only: its warnings are not actionable on the car
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime's pybind errors share no base class
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model file {path} cannot be loaded by onnxruntime ({first}): re-export it with `python -m export`") from None


class Detector:
    """Frame in, detections out. Build once; call :meth:`detect` per frame."""

    def __init__(
        self,
        model: Path,
        *,
        intra_op_threads: int = 0,
        score_threshold: float = 0.5,
        nms_iou: float = 0.45,
        top_k: int = 20,
        classes: Sequence[str] = (),
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.path = Path(model)
        self.session = open_session(self.path, intra_op_threads)
        where = f"model {self.path}"
        meta = self.session.get_modelmeta().custom_metadata_map
        self.info: ModelInfo = parse_metadata(meta, where)
        check_io(self.session.get_inputs(), self.session.get_outputs(), self.info, where)
        #: The export's quantization choices (None each where the model records none).
        self.quant: QuantInfo = quant_info(meta)
        #: How the int8 kernels run on this CPU, and what that costs.
        self.int8_mode: Int8Mode = int8_mode(*this_cpu(), self.info.precision, self.quant)
        log.log(logging.WARNING if self.int8_mode.advice else logging.INFO, "%s", self.int8_mode.message)
        self.labels = self.info.labels
        self.postprocess = PostprocessConfig(
            score_threshold=score_threshold,
            nms_iou=nms_iou,
            top_k=top_k,
            class_ids=resolve_classes(classes, self.labels, where),
        )
        self.preprocess = Preprocessor(self.info.input_width, self.info.input_height)
        self._outputs = [BOXES_NAME, SCORES_NAME]
        self._clock = clock
        self.warm_up()

    def warm_up(self) -> None:
        """One inference on a grey image: allocates onnxruntime's buffers before the first real frame."""
        grey = np.full((self.info.input_height, self.info.input_width, 3), 114, np.uint8)
        self.run(self.preprocess(grey, "rgb"))

    def run(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bare inference on a ``[1, H, W, 3]`` uint8 tensor: ``(boxes, scores)``."""
        boxes, scores = self.session.run(self._outputs, {INPUT_NAME: tensor})
        return boxes, scores

    def detect(self, image: np.ndarray, order: ChannelOrder) -> DetectorResult:
        """Detect objects in ``image`` (``h x w x 3`` uint8 in ``order``)."""
        clock = self._clock
        t0 = clock()
        tensor = self.preprocess(image, order)
        t1 = clock()
        boxes, scores = self.run(tensor)
        t2 = clock()
        raw = select(boxes, scores, self.postprocess)
        labels = self.labels
        # select() already dropped inverted and empty boxes, which the message schema refuses.
        detections = tuple(
            Detection(label=labels[c], class_id=c, score=s, box=(b[0], b[1], b[2], b[3]))
            for c, s, b in zip(raw.class_ids.tolist(), raw.scores.tolist(), raw.boxes.tolist())
        )
        t3 = clock()
        return DetectorResult(
            detections=detections,
            preprocess_ms=(t1 - t0) * 1e3,
            inference_ms=(t2 - t1) * 1e3,
            postprocess_ms=(t3 - t2) * 1e3,
            dropped_nonfinite=raw.dropped_nonfinite,
        )
