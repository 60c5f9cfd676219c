"""rover.detector.postprocess.select with plain numbers: what a subscriber gets from raw model outputs."""

from __future__ import annotations

import numpy as np
import pytest

from rover.detector.postprocess import PostprocessConfig, select

BACKGROUND, CAT, PERSON = 0, 1, 2


def scores_for(rows: list[tuple[int, float]], classes: int = 3) -> np.ndarray:
    """One softmax-like row per prior: ``score`` on ``class_id``, the rest on background."""
    out = np.zeros((len(rows), classes), np.float32)
    for i, (class_id, score) in enumerate(rows):
        out[i, class_id] = score
        out[i, BACKGROUND] += 1.0 - score
    return out


def test_threshold_per_class_nms_and_highest_score_first() -> None:
    boxes = np.array([[0.10, 0.10, 0.40, 0.90],   # person 0.9
                      [0.12, 0.10, 0.42, 0.90],   # same person, weaker: suppressed
                      [0.11, 0.10, 0.41, 0.90],   # a cat on the same spot: another class, kept
                      [0.60, 0.20, 0.80, 0.70],   # another person 0.7
                      [0.50, 0.50, 0.60, 0.60]],  # below the threshold
                     np.float32)
    scores = scores_for([(PERSON, 0.9), (PERSON, 0.8), (CAT, 0.6), (PERSON, 0.7), (PERSON, 0.3)])
    out = select(boxes[None], scores[None], PostprocessConfig(score_threshold=0.5, nms_iou=0.45))
    assert out.class_ids.tolist() == [PERSON, PERSON, CAT]
    assert out.scores.tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert out.boxes[0].tolist() == pytest.approx([0.10, 0.10, 0.40, 0.90])


def test_allow_list_and_top_k() -> None:
    boxes = np.array([[0.0, 0.0, 0.2, 0.2], [0.3, 0.3, 0.5, 0.5], [0.6, 0.6, 0.8, 0.8]], np.float32)
    scores = scores_for([(CAT, 0.95), (PERSON, 0.9), (PERSON, 0.8)])
    only_people = select(boxes, scores, PostprocessConfig(class_ids=(PERSON,)))
    assert only_people.class_ids.tolist() == [PERSON, PERSON]
    best = select(boxes, scores, PostprocessConfig(top_k=1))
    assert best.class_ids.tolist() == [CAT] and len(best) == 1


def test_non_finite_values_are_dropped_and_counted() -> None:
    boxes = np.array([[0.1, 0.1, 0.4, 0.9], [np.nan, 0.1, 0.4, 0.9], [0.5, 0.1, 0.8, 0.9]], np.float32)
    scores = scores_for([(PERSON, 0.9), (PERSON, 0.9), (PERSON, 0.8)])
    scores[2, PERSON] = np.inf
    out = select(boxes, scores, PostprocessConfig())
    assert out.dropped_nonfinite == 2 and len(out) == 1
    assert np.isfinite(out.boxes).all() and np.isfinite(out.scores).all()


def test_boxes_are_clipped_to_the_frame_and_empty_ones_are_not_detections() -> None:
    boxes = np.array([[-0.2, 0.1, 0.3, 1.4],   # partly outside: clipped
                      [1.1, 0.2, 1.5, 0.6],    # wholly right of the frame: nothing left
                      [0.5, 0.5, 0.5, 0.9],    # no width
                      [0.7, 0.8, 0.9, 0.3]],   # inverted
                     np.float32)
    out = select(boxes, scores_for([(PERSON, 0.9)] * 4), PostprocessConfig())
    assert len(out) == 1 and out.boxes[0].tolist() == pytest.approx([0.0, 0.1, 0.3, 1.0])
    nothing = select(boxes[1:], scores_for([(PERSON, 0.9)] * 3), PostprocessConfig())
    assert len(nothing) == 0 and nothing.boxes.shape == (0, 4)


def test_wrong_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="expected boxes"):
        select(np.zeros((5, 3), np.float32), np.zeros((5, 3), np.float32), PostprocessConfig())
    with pytest.raises(ValueError, match="expected boxes"):
        select(np.zeros((5, 4), np.float32), np.zeros((4, 3), np.float32), PostprocessConfig())
