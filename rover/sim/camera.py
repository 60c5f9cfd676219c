"""The Pi camera as a pinhole, and a person as an upright cylinder.

Pure: numpy and the standard library. A person is a cylinder (default 1.7 m
tall, 0.5 m across) standing on the ground; the camera sits ``height_m``
above the ground, looks along the car's heading plus the pan angle, pitched
up by ``pitch_deg`` (the head's tilt at servo centre). The box is the bounding
box of the projected top and bottom rims: the projection of a straight side
line lies between the projections of its ends, so the rims bound the whole
silhouette. Boxes are normalised ``(x1, y1, x2, y2)`` with y down, as in the
detection messages.

Defaults: Raspberry Pi camera module v2, 62.2 x 48.8 deg field of view,
640 x 480 frames (the detector's default camera size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Box = tuple[float, float, float, float]

_RIM = np.linspace(0.0, 2.0 * math.pi, 48, endpoint=False)


@dataclass(frozen=True)
class CameraModel:
    """Field of view (deg), frame size (px), mounting height (m) and pitch (deg, up > 0)."""

    hfov_deg: float = 62.2
    vfov_deg: float = 48.8
    width: int = 640
    height: int = 480
    height_m: float = 0.15
    pitch_deg: float = 12.0
    min_depth_m: float = 0.05  # points nearer than this to the lens plane are not imaged


@dataclass(frozen=True)
class Person:
    """Where a person stands (m) and the cylinder that stands for them."""

    x: float
    y: float
    height_m: float = 1.7
    radius_m: float = 0.25


def project_person(cam_x: float, cam_y: float, cam_yaw: float, person: Person, camera: CameraModel) -> tuple[Box, float] | None:
    """The person's box in the frame and the fraction of it inside the frame.

    Returns None when any part of the cylinder is behind the lens plane or
    when the box lies entirely outside the frame. The fraction (0..1] is the
    share of the unclipped box's area that is inside the frame; a detector
    rarely finds a person of whom only a sliver is visible.
    """
    dx = person.x + person.radius_m * np.cos(_RIM) - cam_x
    dy = person.y + person.radius_m * np.sin(_RIM) - cam_y
    forward = dx * math.cos(cam_yaw) + dy * math.sin(cam_yaw)
    left = -dx * math.sin(cam_yaw) + dy * math.cos(cam_yaw)
    pitch = math.radians(camera.pitch_deg)
    tan_h = math.tan(math.radians(camera.hfov_deg) / 2)
    tan_v = math.tan(math.radians(camera.vfov_deg) / 2)
    xs, ys = [], []
    for up in (-camera.height_m, person.height_m - camera.height_m):
        depth = forward * math.cos(pitch) + up * math.sin(pitch)
        if np.any(depth < camera.min_depth_m):
            return None
        up_c = -forward * math.sin(pitch) + up * math.cos(pitch)
        xs.append(0.5 - left / depth / (2 * tan_h))
        ys.append(0.5 - up_c / depth / (2 * tan_v))
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    raw = (float(x_all.min()), float(y_all.min()), float(x_all.max()), float(y_all.max()))
    clipped = tuple(min(1.0, max(0.0, v)) for v in raw)
    area = (raw[2] - raw[0]) * (raw[3] - raw[1])
    inside = (clipped[2] - clipped[0]) * (clipped[3] - clipped[1])
    if inside <= 0 or area <= 0:
        return None
    return clipped, inside / area  # type: ignore[return-value]


def in_view(cam_x: float, cam_y: float, cam_yaw: float, person: Person, camera: CameraModel) -> bool:
    """Whether the person's axis is within the horizontal field of view, in front of the camera."""
    bearing = math.atan2(person.y - cam_y, person.x - cam_x) - cam_yaw
    bearing = math.atan2(math.sin(bearing), math.cos(bearing))
    return abs(bearing) <= math.radians(camera.hfov_deg) / 2


def surface_distance(x: float, y: float, person: Person) -> float:
    """Ground distance (m) from a point to the person's near surface (0 when inside)."""
    return max(0.0, math.hypot(person.x - x, person.y - y) - person.radius_m)
