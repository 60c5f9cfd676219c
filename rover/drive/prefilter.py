"""Which boxes of a message are matched to the tracks: at most a bound, the ones that can matter.

Pure: plain tuples. A message may carry up to 1000 boxes (the schema's
limit); :func:`prefilter` keeps ``max_boxes`` of them in O(n log k), so the
tracker's fits stay O(max_boxes^2) a message
(:mod:`rover.drive.tracker`).
"""

from __future__ import annotations

import heapq
from typing import Sequence

from rover.drive.tracks import Box, centre_distance

__all__ = ["prefilter"]


def prefilter(boxes: Sequence[tuple[Box, float]], anchors: Sequence[Box], max_boxes: int) -> list[tuple[Box, float]]:
    """At most ``max_boxes`` of ``boxes``: a quarter by score, a quarter by height, the rest nearest the ``anchors``.

    The kept boxes are the ones that can matter: a box far from every
    tracked person, small and with a low score can neither continue a track
    nor be the person in front to lock before the others. Order is kept.
    """
    if len(boxes) <= max_boxes:
        return list(boxes)
    quarter = max(1, max_boxes // 4)
    keep = set(heapq.nlargest(quarter, range(len(boxes)), key=lambda i: boxes[i][1]))
    keep.update(heapq.nlargest(quarter, range(len(boxes)), key=lambda i: boxes[i][0][3] - boxes[i][0][1]))
    if anchors:
        near = heapq.nsmallest(max_boxes, range(len(boxes)),
                               key=lambda i: min(centre_distance(a, boxes[i][0]) for a in anchors))
        for i in near:
            if len(keep) >= max_boxes:
                break
            keep.add(i)
    return [boxes[i] for i in sorted(keep)][:max_boxes]
