"""Target lock: which detection is "the" person the car follows.

When nothing is locked, the highest-scoring detection of the followed label
becomes the target. Afterwards, only a detection that *continues* the locked
target is accepted: the one with the best overlap (IoU) with the last box, or,
for a small box that moved between two slow frames, the nearest centre. So a
second person walking through the view does not steal the car. A different
target is locked only after the old one has been unseen for
``relock_after_s``; until then the car coasts as LOST.

Pure: plain tuples and floats, no I/O. Times are seconds of the loop's clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Target:
    """The locked target as last seen: box ``(x1, y1, x2, y2)`` in 0..1, score 0..1."""

    box: Box
    score: float

    @property
    def centre_x(self) -> float:
        return (self.box[0] + self.box[2]) / 2

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two corner boxes; 0 for empty boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def centre_distance(a: Box, b: Box) -> float:
    """Distance between box centres as a fraction of the frame diagonal (0..1)."""
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    return math.hypot(dx, dy) / math.sqrt(2)


class TargetTracker:
    """Keeps the lock on one target across messages.

    ``min_iou`` and ``max_jump`` decide whether a detection continues the
    target; ``relock_after_s`` is how long the target must have been unseen
    before another one may be locked.
    """

    def __init__(self, min_iou: float = 0.2, max_jump: float = 0.15, relock_after_s: float = 1.0) -> None:
        self.min_iou = min_iou
        self.max_jump = max_jump
        self.relock_after_s = relock_after_s
        self.target: Target | None = None
        self._last_seen: float | None = None

    @property
    def locked(self) -> bool:
        return self.target is not None

    def unseen_for(self, now: float) -> float | None:
        """Seconds since the locked target was last seen, or None without a lock."""
        return None if self._last_seen is None else now - self._last_seen

    def reset(self) -> None:
        """Forget the lock (the car went back to SAFE)."""
        self.target = None
        self._last_seen = None

    def update(self, candidates: Iterable[tuple[Box, float]], now: float) -> Target | None:
        """Feed the detections of the followed label in one fresh message.

        ``candidates`` are ``(box, score)`` pairs already filtered by label and
        minimum score. Returns the target seen in this message, or None when
        it is not in view (the lock is kept until ``relock_after_s``).
        """
        boxes: Sequence[tuple[Box, float]] = list(candidates)
        if self.target is not None and self._last_seen is not None and now - self._last_seen >= self.relock_after_s:
            self.target = None  # lost for long enough: any target may be locked again
        if self.target is None:
            if not boxes:
                return None
            box, score = max(boxes, key=lambda c: c[1])
            return self._see(Target(box, score), now)
        best = self._continuation(boxes)
        return None if best is None else self._see(best, now)

    def _continuation(self, boxes: Sequence[tuple[Box, float]]) -> Target | None:
        assert self.target is not None
        last = self.target.box
        best: tuple[float, float, Target] | None = None
        for box, score in boxes:
            overlap = iou(last, box)
            jump = centre_distance(last, box)
            if overlap < self.min_iou and jump > self.max_jump:
                continue
            key = (overlap, -jump, Target(box, score))
            if best is None or key[:2] > best[:2]:
                best = key
        return None if best is None else best[2]

    def _see(self, target: Target, now: float) -> Target:
        self.target = target
        self._last_seen = now
        return target
