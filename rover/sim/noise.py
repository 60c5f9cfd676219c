"""What a real detector makes of the true boxes: noise, misses, false boxes, delay.

Pure: numpy and the standard library; the random generator is passed in, so
a seed fixes every outcome. Defaults follow what SSD300 on a Pi does with a
640 x 480 camera: box edges jitter by a few per cent of the box, about one
person in twenty is missed, a person smaller than ~4 % of the frame height
or mostly outside the frame is usually missed, a nearer person hides a
farther one they overlap, and now and then a false box appears.

Timing: the detector of a Pi runs one frame at a time, so a frame is captured,
processed for about one frame period, published, and the next frame is then
captured. ``fps`` sets both. The presets are projections of published
figures (docs/sim.md, "Pi frame rates"): SSD300-ResNet-50 (9.6 GMAC a frame)
runs at ~2 frames/s on a Pi 4 and ~5 on a Pi 5 with the CPU alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rover.sim.camera import Box

#: Frame rates of the documented targets (frames per second): the int8 SSD300
#: under onnxruntime, projected in docs/export.md ("The Pi, on paper": Pi 4
#: ~1.1 frames/s, range 0.7-1.9; Pi 5 ~5.6, range 3.4-9.1), rounded down.
FPS_PRESETS = {"pi4": 1.0, "pi5": 5.0}


@dataclass(frozen=True)
class DetectorModel:
    """The simulated detector; fractions 0..1, times in seconds."""

    fps: float = FPS_PRESETS["pi5"]
    period_jitter: float = 0.1  # relative std of the per-frame processing time
    edge_noise: float = 0.03  # std of each box edge, as a fraction of the box size
    miss_rate: float = 0.05  # chance a fully visible person is not reported
    min_height: float = 0.04  # boxes lower than this (fraction of frame) are missed
    min_visible: float = 0.35  # a person less visible than this is missed
    occlusion_iou: float = 0.5  # a farther person covered this much by a nearer one is missed
    false_rate: float = 0.02  # chance of one false "person" box per frame
    false_score: tuple[float, float] = (0.3, 0.55)
    score_range: tuple[float, float] = (0.6, 0.97)

    def __post_init__(self) -> None:
        if not 0.2 <= self.fps <= 60.0:
            raise ValueError(f"fps must be between 0.2 and 60 frames per second, not {self.fps}")

    @property
    def period_s(self) -> float:
        return 1.0 / self.fps


@dataclass(frozen=True)
class SimDetection:
    """One reported box, with the index of the person it came from (None: false box)."""

    box: Box
    score: float
    person: int | None


def processing_time(model: DetectorModel, rng: np.random.Generator) -> float:
    """Seconds the detector spends on one frame: one period, with jitter, at least 20 %."""
    return model.period_s * max(0.2, 1.0 + float(rng.normal(0.0, model.period_jitter)))


def _covered(inner: Box, outer: Box) -> float:
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return max(0.0, w) * max(0.0, h) / area if area > 0 else 1.0


def detect(truth: Sequence[tuple[Box, float, float] | None], model: DetectorModel, rng: np.random.Generator) -> list[SimDetection]:
    """Turn true boxes into detections.

    ``truth[i]`` is ``(box, visible_fraction, distance_m)`` for person ``i``
    or None when person ``i`` is not in the frame. Returns the detections in
    no particular order, as a detector would.
    """
    found: list[SimDetection] = []
    for i, item in enumerate(truth):
        if item is None:
            continue
        box, visible, distance = item
        if box[3] - box[1] < model.min_height or visible < model.min_visible:
            continue
        nearer = (t for j, t in enumerate(truth) if t is not None and j != i and t[2] < distance)
        if any(_covered(box, other[0]) >= model.occlusion_iou for other in nearer):
            continue
        if rng.random() < model.miss_rate:
            continue
        w, h = box[2] - box[0], box[3] - box[1]
        jitter = rng.normal(0.0, model.edge_noise, 4) * np.array([w, h, w, h])
        x1, y1, x2, y2 = (float(v) for v in np.clip(np.array(box) + jitter, 0.0, 1.0))
        if x2 - x1 < 1e-3 or y2 - y1 < 1e-3:
            continue
        lo, hi = model.score_range
        score = float(rng.uniform(lo, hi)) * (0.7 + 0.3 * visible)
        found.append(SimDetection((x1, y1, x2, y2), round(score, 4), i))
    if rng.random() < model.false_rate:
        w, h = rng.uniform(0.03, 0.15), rng.uniform(0.08, 0.4)
        x1, y1 = rng.uniform(0.0, 1.0 - w), rng.uniform(0.0, 1.0 - h)
        lo, hi = model.false_score
        found.append(SimDetection((float(x1), float(y1), float(x1 + w), float(y1 + h)), round(float(rng.uniform(lo, hi)), 4), None))
    return found
