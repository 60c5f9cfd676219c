"""What the report measures: parity, int8-vs-float agreement, latency.

Detections always come from :func:`rover.detector.postprocess.select`, the very
post-processing the robot runs, so the numbers describe what the robot sees.
mAP is torchmetrics' ``MeanAveragePrecision(iou_thresholds=[0.5])``, as the
model's author measured it. (True VOC mAP is in :mod:`export.voc`.)
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from torchmetrics.detection import MeanAveragePrecision
from tqdm import tqdm

from export.graph import ContractWrapper
from rover.core.contract import INPUT_NAME
from rover.detector.cpu import this_cpu_int8_config
from rover.detector.postprocess import PostprocessConfig, RawDetections, select

#: The mAP convention of the author's evaluation: keep scores above 0.01,
#: per-class NMS at IoU 0.45; torchmetrics counts the top 100 per image.
MAP_POSTPROCESS = PostprocessConfig(score_threshold=0.01, nms_iou=0.45, top_k=100)
#: Float detections above this score are the "ground truth" int8 is held to
#: (0.5 is the author's demo threshold, what a user would see).
AGREEMENT_POSTPROCESS = PostprocessConfig(score_threshold=0.5, nms_iou=0.45, top_k=100)


#: Candidates kept per class before NMS when scoring int8 against float, as
#: SSD implementations do (torchvision's SSD keeps 400): random-weight
#: checkpoints put thousands of priors over 0.01 and NMS would take seconds.
CANDIDATES_PER_CLASS = 200


def cap_candidates(scores: np.ndarray, per_class: int = CANDIDATES_PER_CLASS) -> np.ndarray:
    """``scores`` with all but each class's ``per_class`` best priors set to 0."""
    flat = scores.reshape(-1, scores.shape[-1])
    if flat.shape[0] <= per_class:
        return scores
    kth = np.partition(flat, flat.shape[0] - per_class, axis=0)[flat.shape[0] - per_class]
    return np.where(flat >= kth, flat, 0.0).astype(scores.dtype).reshape(scores.shape)


def open_session(path: str, threads: int) -> ort.InferenceSession:
    """A CPU session with ``threads`` intra-op threads (same for every model compared)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as rover.detector.model does
    for key, value in this_cpu_int8_config().items():  # exact int8 on x86 without VNNI, as rover does
        options.add_session_config_entry(key, value)
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(session: ort.InferenceSession, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes [1, N, 4], scores [1, N, C])`` for one ``uint8 [1, H, W, 3]`` input."""
    boxes, scores = session.run(None, {INPUT_NAME: image})
    return boxes, scores


def torch_reference(detector: nn.Module, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same computation in PyTorch eager mode, outside any graph."""
    with torch.no_grad():
        boxes, scores = ContractWrapper(detector).eval()(torch.from_numpy(image))
    return boxes.numpy(), scores.numpy()


@dataclass(frozen=True)
class Parity:
    max_abs_boxes: float
    max_abs_scores: float
    frames: int


def parity(detector: nn.Module, session: ort.InferenceSession, inputs: Sequence[np.ndarray], progress: bool = True) -> Parity:
    """Largest absolute difference between PyTorch and the float ONNX model over ``inputs``."""
    box_err = score_err = 0.0
    for image in tqdm(inputs, desc="parity", unit="frame", disable=not progress):
        ref_boxes, ref_scores = torch_reference(detector, image)
        boxes, scores = run(session, image)
        box_err = max(box_err, float(np.abs(boxes - ref_boxes).max()))
        score_err = max(score_err, float(np.abs(scores - ref_scores).max()))
    return Parity(box_err, score_err, len(inputs))


@dataclass(frozen=True)
class Agreement:
    #: mAP@0.5 of int8 detections against the float detections (None: float found nothing).
    map50: float | None
    mean_abs_score_diff: float
    max_abs_score_diff: float
    mean_abs_box_diff: float
    float_detections: int
    int8_detections: int
    frames: int


def to_metric(det: RawDetections, width: float = 1.0, height: float = 1.0) -> dict[str, torch.Tensor]:
    """torchmetrics' prediction dict, boxes scaled to ``width`` x ``height``."""
    scale = np.array([width, height, width, height], dtype=np.float32)
    return {
        "boxes": torch.from_numpy(det.boxes * scale),
        "scores": torch.from_numpy(det.scores),
        "labels": torch.from_numpy(det.class_ids),
    }


def map50(preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]]) -> float | None:
    """torchmetrics mAP@0.5 (None when the targets hold no box at all)."""
    if not any(len(t["boxes"]) for t in targets):
        return None
    metric = MeanAveragePrecision(iou_thresholds=[0.5])
    metric.update(preds, targets)
    return float(metric.compute()["map_50"])


def agreement(
    float_session: ort.InferenceSession,
    int8_session: ort.InferenceSession,
    inputs: Sequence[np.ndarray],
    truth: PostprocessConfig = AGREEMENT_POSTPROCESS,
    progress: bool = True,
) -> Agreement:
    """How closely the int8 model reproduces the float one on ``inputs``."""
    pairs = ((run(float_session, image), run(int8_session, image)) for image in tqdm(inputs, desc="int8 vs float", unit="frame", disable=not progress))
    return agreement_of(pairs, truth)


def agreement_of(pairs: Iterable[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]],
                 truth: PostprocessConfig = AGREEMENT_POSTPROCESS) -> Agreement:
    """:func:`agreement` on outputs already computed: ``((float boxes, scores), (int8 boxes, scores))`` per frame.

    Lets outputs computed elsewhere (another process, an emulated CPU:
    :mod:`export.avx2check`) be scored exactly as the report scores them.
    """
    preds, targets = [], []
    abs_diffs, max_diff, box_diffs = [], 0.0, []
    n_float = n_int8 = 0
    for (f_boxes, f_scores), (q_boxes, q_scores) in pairs:
        diff = np.abs(q_scores - f_scores)
        abs_diffs.append(float(diff.mean()))
        max_diff = max(max_diff, float(diff.max()))
        box_diffs.append(float(np.abs(q_boxes - f_boxes).mean()))
        truth_det = select(f_boxes, f_scores, truth)
        pred_det = select(q_boxes, cap_candidates(q_scores), MAP_POSTPROCESS)
        n_float += len(truth_det)
        n_int8 += len(select(q_boxes, q_scores, truth))
        targets.append({k: v for k, v in to_metric(truth_det).items() if k != "scores"})
        preds.append(to_metric(pred_det))
    return Agreement(
        map50=map50(preds, targets),
        mean_abs_score_diff=float(np.mean(abs_diffs)) if abs_diffs else 0.0,
        max_abs_score_diff=max_diff,
        mean_abs_box_diff=float(np.mean(box_diffs)) if box_diffs else 0.0,
        float_detections=n_float,
        int8_detections=n_int8,
        frames=len(abs_diffs),
    )


def median_latencies_ms(
    sessions: dict[str, ort.InferenceSession],
    image: np.ndarray,
    runs: int = 20,
    warmup: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median wall time of ``session.run`` on ``image`` for each session, in milliseconds.

    The sessions take turns run by run, so other work on the machine slows
    them alike instead of skewing the comparison.
    """
    for _ in range(warmup):
        for session in sessions.values():
            run(session, image)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(max(runs, 1)):
        for name, session in sessions.items():
            start = clock()
            run(session, image)
            times[name].append((clock() - start) * 1000.0)
    return {name: statistics.median(t) for name, t in times.items()}
