"""Every limit of the message schema is a limit of the config, and one frame's postprocessing is bounded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from rover import cli
from rover.core import messages
from rover.core.messages import MAX_ITEMS, MAX_STRING, MAX_WIRE_BYTES
from rover.detector import postprocess
from rover.detector.postprocess import MAX_CANDIDATES, PostprocessConfig, select

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("toml", "named"), [
    ("[detector]\ntop_k = 5000\nscore_threshold = 0.01\n", f"detector.top_k must be at most {MAX_ITEMS}"),
    (f"[detector]\nclasses = [\"{'p' * (MAX_STRING + 1)}\"]\n", f"a label has at most {MAX_STRING}"),
    (f"[drive]\nfollow = \"{'p' * (MAX_STRING + 1)}\"\n", f"a label has at most {MAX_STRING}"),
])
def test_config_check_refuses_a_value_beyond_the_schema(tmp_path: Path, capsys, toml: str, named: str) -> None:
    path = tmp_path / "rover.toml"
    path.write_text(toml)
    assert cli.main(["config", "check", "--config", str(path)]) == 78
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1


def test_the_schema_limits_themselves_are_accepted(tmp_path: Path, capsys) -> None:
    path = tmp_path / "rover.toml"
    path.write_text(f"[detector]\ntop_k = {MAX_ITEMS}\nclasses = [\"{'p' * MAX_STRING}\"]\n"
                    f"[drive]\nfollow = \"{'p' * MAX_STRING}\"\n")
    assert cli.main(["config", "check", "--config", str(path)]) == 0, capsys.readouterr().err


def test_the_detector_refuses_top_k_beyond_the_schema_at_start(tmp_path: Path) -> None:
    path = tmp_path / "rover.toml"
    path.write_text("[detector]\ntop_k = 5000\n")
    proc = subprocess.run([sys.executable, "-m", "rover.detector", "--config", str(path), "--model", str(tmp_path / "m.onnx"),
                           "--source", str(tmp_path / "v.avi")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 78 and "detector.top_k" in proc.stderr and "Traceback" not in proc.stderr


def test_the_largest_message_the_config_allows_fits_every_subscriber() -> None:
    """top_k at its limit, every string at its longest: still valid, and under ZMQ_MAXMSGSIZE."""
    label = "x" * MAX_STRING
    detection = messages.Detection(label, 999, 0.123456789, (0.123456789, 0.123456789, 0.987654321, 0.987654321))
    message = messages.DetectionMessage(
        seq=2**62, t_publish_ns=2**62, status="ok", fps=12345.678901,
        model=messages.ModelRef(label, label, label, tuple(label for _ in range(MAX_ITEMS))),
        frame=messages.FrameInfo(2**62, 2**62, 1.7e9, 4096, 4096),
        timing_ms=messages.Timing(12345.678901, 12345.678901, 12345.678901, 12345.678901),
        detections=tuple(detection for _ in range(MAX_ITEMS)),
    )
    wire = messages.encode(message)
    assert len(wire) < MAX_WIRE_BYTES
    assert len(messages.decode(wire).detections) == MAX_ITEMS


def _ssd_like(threshold_candidates: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.random((threshold_candidates, 2)) * 0.8
    boxes = np.concatenate([xy, xy + rng.random((threshold_candidates, 2)) * 0.2 + 0.01], 1).astype(np.float32)
    logits = rng.normal(size=(threshold_candidates, 21))
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return boxes, scores.astype(np.float32)


def test_a_low_threshold_feeds_nms_only_the_best_candidates(monkeypatch) -> None:
    boxes, scores = _ssd_like(8732)  # an SSD300's priors; at 0.01 nearly every (prior, class) pair is a candidate
    assert np.count_nonzero(scores[:, 1:] > 0.01) > 50 * MAX_CANDIDATES
    seen: list[int] = []
    real = cv2.dnn.NMSBoxesBatched

    def counting(bboxes, scores_, classes, *args):
        seen.append(len(bboxes))
        return real(bboxes, scores_, classes, *args)

    monkeypatch.setattr(postprocess.cv2.dnn, "NMSBoxesBatched", counting)
    out = select(boxes, scores, PostprocessConfig(score_threshold=0.01, top_k=MAX_ITEMS))
    assert seen == [MAX_CANDIDATES]
    assert len(out) == MAX_ITEMS  # enough candidates survive NMS to fill the largest top_k
    assert out.scores[0] == pytest.approx(scores[:, 1:].max())  # the best detection is never cut
    assert np.all(np.diff(out.scores) <= 0)


def test_sensible_thresholds_are_unchanged_by_the_candidate_cap(monkeypatch) -> None:
    boxes, scores = _ssd_like(8732, seed=1)
    config = PostprocessConfig(score_threshold=0.3, top_k=200)
    assert np.count_nonzero(scores[:, 1:] > 0.3) < MAX_CANDIDATES
    capped = select(boxes, scores, config)
    monkeypatch.setattr(postprocess, "MAX_CANDIDATES", 10**9)
    uncapped = select(boxes, scores, config)
    assert np.array_equal(capped.boxes, uncapped.boxes) and np.array_equal(capped.class_ids, uncapped.class_ids)
