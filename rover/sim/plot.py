"""The top-down picture of a run: paths of the people and the car, drawn with OpenCV.

The picture shows the followed person's path (green), other people (grey),
the car's path (blue, with its heading every second), red crosses where the
followed person was lost (a published frame without them after one with
them), and a black ring where the detector died. 1 m grid. Below it, over
time: the distance to the person against the band and the stop distance,
and the throttle.
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


_STRIP = 260


def render(trace: np.ndarray, people: np.ndarray, lost_at: Sequence[float], killed_at: float | None, title: str,
           band: tuple[float, float] | None = None, stop_m: float | None = None) -> np.ndarray:
    """The picture as a BGR uint8 array: the top-down view, and below it distance and throttle over time."""
    top = _top_down(trace, people, lost_at, killed_at, title)
    return np.vstack([top, strip(trace, band, stop_m)])


def strip(trace: np.ndarray, band: tuple[float, float] | None, stop_m: float | None) -> np.ndarray:
    """Distance to the person over time against the band (green) and the stop distance (red), throttle below (blue)."""
    img = np.full((_STRIP, _SIZE, 3), 255, np.uint8)
    t, dist, thr = trace[:, _COL["t"]], trace[:, _COL["target_distance"]], trace[:, _COL["throttle_cmd"]]
    if not len(t):
        return img
    x0, x1, d_top, d_bot, th_top, th_bot = 50, _SIZE - 10, 20, 160, 180, 245
    d_max = max(5.0, float(np.nanmax(dist)) + 0.5, (band[1] + 0.5) if band else 0.0)

    def px(tt: np.ndarray | float) -> np.ndarray:
        return (x0 + (np.asarray(tt) / max(float(t[-1]), 1e-6)) * (x1 - x0)).round().astype(np.int32)

    def py(d: np.ndarray | float) -> np.ndarray:
        return (d_bot - np.clip(np.asarray(d), 0, d_max) / d_max * (d_bot - d_top)).round().astype(np.int32)

    if band:
        cv2.rectangle(img, (x0, int(py(band[1]))), (x1, int(py(band[0]))), (215, 240, 215), -1)
    if stop_m:
        cv2.line(img, (x0, int(py(stop_m))), (x1, int(py(stop_m))), RED, 1)
    cv2.polylines(img, [np.stack([px(t), py(dist)], axis=-1).reshape(-1, 1, 2)], False, BLACK, 1, cv2.LINE_AA)
    cv2.line(img, (x0, th_bot), (x1, th_bot), GREY, 1)
    thr_y = (th_bot - np.clip(thr, 0, 1) * (th_bot - th_top)).round().astype(np.int32)
    cv2.polylines(img, [np.stack([px(t), thr_y], axis=-1).reshape(-1, 1, 2)], False, BLUE, 1, cv2.LINE_AA)
    for sec in range(0, int(t[-1]) + 1):
        cv2.putText(img, str(sec), (int(px(sec)) - 4, _STRIP - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.35, GREY, 1, cv2.LINE_AA)
    cv2.putText(img, f"distance to the person (0-{d_max:.0f} m; green: band, red: stop distance)", (x0, 14),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, BLACK, 1, cv2.LINE_AA)
    cv2.putText(img, "throttle 0-1", (x0, th_top - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, BLUE, 1, cv2.LINE_AA)
    return img


def _top_down(trace: np.ndarray, people: np.ndarray, lost_at: Sequence[float], killed_at: float | None, title: str) -> np.ndarray:
    """The top-down view, ``_SIZE`` pixels square."""
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
