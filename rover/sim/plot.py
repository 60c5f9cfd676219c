"""The top-down picture of a run: paths of the people and the car, drawn with OpenCV.

The picture shows the followed person's path (green), other people (grey),
the car's path (blue, with its heading every second), red crosses where the
followed person was lost (a published frame without them after one with
them), and a black ring where the detector died. 1 m grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from rover.sim.world import TRACE_COLUMNS

_COL = {name: i for i, name in enumerate(TRACE_COLUMNS)}
_SIZE = 800
_MARGIN = 60
GREEN, GREY, BLUE, RED, BLACK = (40, 160, 40), (150, 150, 150), (200, 90, 20), (30, 30, 220), (0, 0, 0)


def render(trace: np.ndarray, people: np.ndarray, lost_at: Sequence[float], killed_at: float | None, title: str) -> np.ndarray:
    """The picture as a BGR uint8 array, ``_SIZE`` pixels square."""
    xs = np.concatenate([trace[:, _COL["car_x"]], people[:, :, 0].ravel()])
    ys = np.concatenate([trace[:, _COL["car_y"]], people[:, :, 1].ravel()])
    span = max(float(xs.max() - xs.min()), float(ys.max() - ys.min()), 2.0) + 1.0
    scale = (_SIZE - 2 * _MARGIN) / span
    cx, cy = (xs.max() + xs.min()) / 2, (ys.max() + ys.min()) / 2

    def px(x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        # world x to the right, world y (left of the start heading) up
        return np.stack([_SIZE / 2 + (np.asarray(x) - cx) * scale, _SIZE / 2 - (np.asarray(y) - cy) * scale], axis=-1).round().astype(np.int32)

    img = np.full((_SIZE, _SIZE, 3), 255, np.uint8)
    for gx in np.arange(np.floor(cx - span), np.ceil(cx + span) + 1):
        x = int(px(gx, cy)[0])
        cv2.line(img, (x, 0), (x, _SIZE), (230, 230, 230), 1)
    for gy in np.arange(np.floor(cy - span), np.ceil(cy + span) + 1):
        y = int(px(cx, gy)[1])
        cv2.line(img, (0, y), (_SIZE, y), (230, 230, 230), 1)
    t = trace[:, _COL["t"]]
    for i in range(people.shape[1]):
        here = people[:, i, 2] > 0.5
        pts = px(people[here, i, 0], people[here, i, 1])
        if len(pts):
            cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, GREEN if i == 0 else GREY, 2, cv2.LINE_AA)
            cv2.circle(img, tuple(int(v) for v in pts[-1]), 5, GREEN if i == 0 else GREY, -1, cv2.LINE_AA)
    car = px(trace[:, _COL["car_x"]], trace[:, _COL["car_y"]])
    cv2.polylines(img, [car.reshape(-1, 1, 2)], False, BLUE, 2, cv2.LINE_AA)
    for k in np.searchsorted(t, np.arange(0.0, t[-1], 1.0)):
        h = trace[k, _COL["heading"]]
        tip = px(trace[k, _COL["car_x"]] + 0.25 * np.cos(h), trace[k, _COL["car_y"]] + 0.25 * np.sin(h))
        cv2.arrowedLine(img, tuple(int(v) for v in car[k]), tuple(int(v) for v in tip), BLUE, 1, cv2.LINE_AA, tipLength=0.4)
    for when in lost_at:
        k = min(int(np.searchsorted(t, when)), len(t) - 1)
        for p in (car[k], px(people[k, 0, 0], people[k, 0, 1])):
            cv2.drawMarker(img, tuple(int(v) for v in p), RED, cv2.MARKER_TILTED_CROSS, 14, 2)
    if killed_at is not None:
        k = min(int(np.searchsorted(t, killed_at)), len(t) - 1)
        cv2.circle(img, tuple(int(v) for v in car[k]), 12, BLACK, 2, cv2.LINE_AA)
    legend = [(title, BLACK), ("followed person", GREEN), ("car (arrow: heading each 1 s)", BLUE), ("x: target lost", RED)]
    if people.shape[1] > 1:
        legend.append(("other people", GREY))
    if killed_at is not None:
        legend.append(("o: detector killed", BLACK))
    legend.append(("grid: 1 m", GREY))
    for row, (text, colour) in enumerate(legend):
        cv2.putText(img, text, (12, 24 + 20 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return img


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write the picture; OSError with the path when it cannot be written."""
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write the picture to {path}")
    return path
