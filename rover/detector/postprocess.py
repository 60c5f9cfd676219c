"""From a contract model's raw outputs to a short list of detections.

Pure numpy + OpenCV: score threshold, class allow-list, per-class NMS with
OpenCV's batched NMS (``cv2.dnn.NMSBoxesBatched``: one call for all classes,
boxes of different classes never suppress each other), top-k. Boxes stay
normalised to ``[0, 1]``. Non-finite boxes or scores are dropped and counted,
never passed on.

NMS compares candidates pairwise, so its cost grows faster than their number:
a low ``score_threshold`` on an SSD300 (8732 priors x 20 classes) makes 150,000
candidates and 28 s per frame on this machine. Only the
:data:`MAX_CANDIDATES` best go into NMS (as torchvision's SSD keeps its
``topk_candidates`` per class), which bounds one frame at about 25 ms of NMS
here whatever the threshold, and changes nothing at sensible thresholds
(a few hundred candidates at most).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Most candidates (prior, class pairs above the threshold) that go into NMS, the best first:
#: twice the schema's 1000 detections, so even top_k = 1000 has enough to choose from.
MAX_CANDIDATES = 2000


@dataclass(frozen=True)
class PostprocessConfig:
    score_threshold: float = 0.5
    nms_iou: float = 0.45
    top_k: int = 20
    #: Class indices to keep (None: every class but the background, index 0).
    class_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class RawDetections:
    """Detections of one frame as arrays, highest score first."""

    class_ids: np.ndarray  # (K,) int64, >= 1
    scores: np.ndarray  # (K,) float32 in [0, 1]
    boxes: np.ndarray  # (K, 4) float32, x1 y1 x2 y2 in [0, 1]
    dropped_nonfinite: int = 0

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def select(boxes: np.ndarray, scores: np.ndarray, config: PostprocessConfig) -> RawDetections:
    """Turn ``boxes`` (N, 4) and ``scores`` (N, C) into final detections.

    A leading batch dimension of 1 is accepted and removed.
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    if boxes.ndim == 3:
        boxes = boxes[0]
    if scores.ndim == 3:
        scores = scores[0]
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.ndim != 2 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"expected boxes (N, 4) and scores (N, C), got {boxes.shape} and {scores.shape}")

    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores).all(axis=1)
    dropped = int(boxes.shape[0] - np.count_nonzero(finite))
    if dropped:
        boxes, scores = boxes[finite], scores[finite]

    classes = np.arange(scores.shape[1])
    if config.class_ids is not None:
        classes = np.array([c for c in config.class_ids if 0 < c < scores.shape[1]], dtype=np.int64)
    else:
        classes = classes[1:]
    if classes.size == 0 or boxes.shape[0] == 0:
        return _empty(dropped)

    # Every (prior, class) pair above the threshold is a candidate.
    class_scores = scores[:, classes]
    prior_idx, col_idx = np.nonzero(class_scores > config.score_threshold)
    if prior_idx.size == 0:
        return _empty(dropped)
    cand_scores = class_scores[prior_idx, col_idx]
    cand_classes = classes[col_idx]
    cand_boxes = np.clip(boxes[prior_idx], 0.0, 1.0)
    # A box with no width or height once clipped to the frame (decoded past an
    # edge, or inverted) locates nothing: not a detection.
    sized = (cand_boxes[:, 2] > cand_boxes[:, 0]) & (cand_boxes[:, 3] > cand_boxes[:, 1])
    if not sized.all():
        cand_scores, cand_classes, cand_boxes = cand_scores[sized], cand_classes[sized], cand_boxes[sized]
        if cand_scores.size == 0:
            return _empty(dropped)

    if cand_scores.size > MAX_CANDIDATES:
        best = np.argpartition(-cand_scores, MAX_CANDIDATES - 1)[:MAX_CANDIDATES]
        cand_scores, cand_classes, cand_boxes = cand_scores[best], cand_classes[best], cand_boxes[best]

    # OpenCV's NMS takes (x, y, w, h); scale to a pixel-like range so its
    # integer-free float path keeps precision for small normalised boxes.
    xywh = cand_boxes.copy()
    xywh[:, 2:] -= xywh[:, :2]
    keep = cv2.dnn.NMSBoxesBatched(
        (xywh * 1000.0).tolist(),
        cand_scores.tolist(),
        cand_classes.tolist(),
        float(config.score_threshold),
        float(config.nms_iou),
    )
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    order = keep[np.argsort(-cand_scores[keep], kind="stable")][: max(config.top_k, 0)]
    return RawDetections(
        class_ids=cand_classes[order].astype(np.int64),
        scores=cand_scores[order].astype(np.float32),
        boxes=cand_boxes[order].astype(np.float32),
        dropped_nonfinite=dropped,
    )


def _empty(dropped: int) -> RawDetections:
    return RawDetections(
        class_ids=np.zeros((0,), np.int64),
        scores=np.zeros((0,), np.float32),
        boxes=np.zeros((0, 4), np.float32),
        dropped_nonfinite=dropped,
    )
