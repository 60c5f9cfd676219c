"""Target lock: which detection is "the" person the car follows.

A detection *continues* a box when its height (the distance proxy) is within
a factor ``max_size_ratio`` of the box's and it overlaps the box (IoU at least
``min_iou``) or its centre moved less than ``max_jump`` of the frame
diagonal. Among several, the one with the smallest change wins: centre jump
and height ratio, each measured against its limit. A box that better
continues *another* detection of the previous message is that other person,
not the target. So a second person walking past, at another distance or
already seen beside the target, is not taken for it in a frame where the
detector missed the target.

A target is locked only once it has been seen in ``lock_frames`` consecutive
fresh messages, each box continuing the one before (the highest score starts
such a run), so a false box seen once never starts the car. Once locked, only
a continuation of the target is accepted; a different target is locked only
after the old one has been unseen for ``relock_after_s`` (its run may already
count during that time); until then the car coasts as LOST. Each lock is
numbered (:attr:`Tracker.locks`), so the controller starts its filters
afresh on another person instead of reading the jump as a speed.

Matching cost is bounded: a message may carry up to 1000 boxes (the
schema's limit) and matching compares boxes pairwise, so :func:`prefilter`
first keeps at most ``max_boxes`` of them: the best scores and the boxes
nearest the locked target and the newcomer (the only boxes that can continue
them). One message then costs O(n log k) for the selection plus
O(max_boxes^2) comparisons, whatever n is.

Pure: plain tuples and floats, no I/O. Times are seconds of the loop's clock.
"""

from __future__ import annotations

import heapq
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


def size_ratio(a: Box, b: Box) -> float:
    """Height of the taller box over the shorter one's: 1 for equal heights, inf for an empty box."""
    ha, hb = a[3] - a[1], b[3] - b[1]
    return max(ha, hb) / min(ha, hb) if min(ha, hb) > 0 else math.inf


def prefilter(boxes: Sequence[tuple[Box, float]], anchors: Sequence[Box], max_boxes: int) -> list[tuple[Box, float]]:
    """At most ``max_boxes`` of ``boxes``: half by score, the rest nearest the ``anchors``.

    The kept boxes are the ones that can matter: a box far from the locked
    target (and from a newcomer) with a low score can neither continue the
    target nor start a lock before the better-scoring ones. Order is kept.
    """
    if len(boxes) <= max_boxes:
        return list(boxes)
    keep = set(heapq.nlargest(max(1, max_boxes // 2), range(len(boxes)), key=lambda i: boxes[i][1]))
    if anchors:
        near = (i for i in heapq.nsmallest(max_boxes, range(len(boxes)),
                                           key=lambda i: min(centre_distance(a, boxes[i][0]) for a in anchors)))
        for i in near:
            if len(keep) >= max_boxes:
                break
            keep.add(i)
    return [boxes[i] for i in sorted(keep)]


class TargetTracker:
    """Keeps the lock on one target across messages.

    ``min_iou``, ``max_jump`` and ``max_size_ratio`` (> 1) decide whether a
    detection continues a box; ``lock_frames`` is how many consecutive fresh
    messages must show a new target before it is locked (1: at once);
    ``relock_after_s`` is how long the target must have been unseen before
    another one may be locked; ``max_boxes`` bounds the boxes matched per
    message (:func:`prefilter`).
    """

    def __init__(self, min_iou: float = 0.2, max_jump: float = 0.15, relock_after_s: float = 1.0,
                 max_size_ratio: float = 1.5, lock_frames: int = 3, max_boxes: int = 16) -> None:
        self.min_iou = min_iou
        self.max_jump = max_jump
        self.relock_after_s = relock_after_s
        self.max_size_ratio = max_size_ratio
        self.lock_frames = lock_frames
        self.max_boxes = max_boxes
        self.target: Target | None = None
        self.locks = 0  # how many targets have been locked: a new number is a new person (filters start afresh)
        self._last_seen: float | None = None
        self._others: list[Box] = []  # the previous message's boxes that were not the target
        self._newcomer: Target | None = None  # a possible new target ...
        self._newcomer_run = 0  # ... seen in this many consecutive messages

    @property
    def locked(self) -> bool:
        return self.target is not None

    def unseen_for(self, now: float) -> float | None:
        """Seconds since the locked target was last seen, or None without a lock."""
        return None if self._last_seen is None else now - self._last_seen

    def reset(self) -> None:
        """Forget the lock, the other boxes and any newcomer (the car went back to SAFE)."""
        self.target = None
        self._last_seen = None
        self._others = []
        self._newcomer, self._newcomer_run = None, 0

    def update(self, candidates: Iterable[tuple[Box, float]], now: float) -> Target | None:
        """Feed the detections of the followed label in one fresh message.

        ``candidates`` are ``(box, score)`` pairs already filtered by label and
        minimum score. Returns the target seen in this message, or None when
        it is not in view (the lock is kept until ``relock_after_s``) or a new
        target is not confirmed yet.
        """
        anchors = [t.box for t in (self.target, self._newcomer) if t is not None]
        boxes: Sequence[tuple[Box, float]] = prefilter(list(candidates), anchors, self.max_boxes)
        if self.target is not None and self._last_seen is not None and now - self._last_seen >= self.relock_after_s:
            self.target = None  # lost for long enough: another target may be locked
        seen = None
        if self.target is not None:
            seen = self.continuation(self.target.box, [c for c in boxes if not self._is_other(c[0])])
        self._others = [box for box, _ in boxes if seen is None or box != seen.box]
        if seen is not None:
            return self._see(seen, now)
        self._follow_newcomer(boxes)
        if self.target is None and self._newcomer is not None and self._newcomer_run >= self.lock_frames:
            self.locks += 1
            return self._see(self._newcomer, now)
        return None

    def change(self, last: Box, box: Box) -> float | None:
        """How much ``box`` differs from ``last`` (0 = same place and height), None if it cannot continue it.

        The centre jump in units of ``max_jump`` plus the height ratio's
        logarithm in units of ``max_size_ratio``'s: 1 + 1 at both limits.
        """
        ratio = size_ratio(last, box)
        if ratio > self.max_size_ratio:
            return None
        jump = centre_distance(last, box)
        if jump > self.max_jump and iou(last, box) < self.min_iou:
            return None
        return jump / max(self.max_jump, 1e-9) + math.log(ratio) / math.log(self.max_size_ratio)

    def continuation(self, last: Box, boxes: Sequence[tuple[Box, float]]) -> Target | None:
        """The detection that continues ``last`` with the smallest change, or None."""
        best: tuple[float, Target] | None = None
        for box, score in boxes:
            change = self.change(last, box)
            if change is not None and (best is None or change < best[0]):
                best = (change, Target(box, score))
        return None if best is None else best[1]

    def _is_other(self, box: Box) -> bool:
        """True when ``box`` continues another box of the previous message better than the target."""
        assert self.target is not None
        mine = self.change(self.target.box, box)
        for other in self._others:
            theirs = self.change(other, box)
            if theirs is not None and (mine is None or theirs < mine):
                return True
        return False

    def _follow_newcomer(self, boxes: Sequence[tuple[Box, float]]) -> None:
        """Extend the run of the possible new target, or start one with the highest score."""
        seen = None if self._newcomer is None else self.continuation(self._newcomer.box, boxes)
        if seen is not None:
            self._newcomer, self._newcomer_run = seen, self._newcomer_run + 1
        elif boxes:
            self._newcomer, self._newcomer_run = Target(*max(boxes, key=lambda c: c[1])), 1
        else:
            self._newcomer, self._newcomer_run = None, 0

    def _see(self, target: Target, now: float) -> Target:
        self.target = target
        self._last_seen = now
        self._newcomer, self._newcomer_run = None, 0
        return target
