"""The target in metres: range and bearing from a box and the camera model.

Pure arithmetic on plain floats, no I/O. The camera is a pinhole: its focal
length follows from the field of view (a normalised image coordinate ``u``
in 0..1 lies at ``atan((0.5 - u) * 2 * tan(fov / 2))`` from the axis, the
resolution cancels out), it sits ``mount_height_m`` above the floor, pitched
up by ``tilt_deg`` and turned by the head's pan angle. A person is upright,
``person_height_m`` tall, standing on the floor.

Range (ground distance from the camera to the person's near side):

- from the box's height: the top and bottom edges are seen at elevations
  ``a_top`` and ``a_bottom``; a person of height H at distance d spans
  ``tan(a_top) - tan(a_bottom) = H / d``, so ``d = H / (tan a_top - tan a_bottom)``;
- from the bottom edge (the feet on the floor): ``d = h / tan(-a_bottom)``.

The height is used while the box is whole; once the head leaves the frame
(the top edge at the frame's edge: a near person) the box is cut short and
the height would put the person too far, so the bottom edge is used
instead, which is exact for a near person but sensitive to the tilt and
field of view (a 15 % error in the focal length puts a person at 1 m at
~1.4 m), and as noisy as the feet (:attr:`Observation.from_feet` says so:
a filter must take it with :attr:`Observation.feet_sigma_m`, not the
height's few per cent). While the feet are in the frame the bottom-edge range is also
given on its own (:attr:`Observation.feet_m`, with its standard deviation
from the edge's jitter): it does not depend on the person's height, so the
controller's stop-distance cap takes the (filtered) range from the feet
once it is nearer than the height's by two of its standard deviations, and
a person shorter than ``person_height_m`` (a child, someone sitting or
crouching) is not put too far; an error in the tilt only makes it more
cautious. It is much the noisier of the two (a box edge jitters by a share
of the box's size: ~30 % of the range from one edge, ~4 % from the
height), hence filtered apart and not used for the following distance. Once the feet leave the
frame (the bottom edge at the frame's edge: a person nearer than the floor
distance of the frame's bottom edge, ~0.7 m with the defaults, or a small
person whose box the height would put metres away) the range is at most
that floor distance: the smaller of it and the height range is returned,
flagged ``clipped``. Either edge cut (:attr:`Observation.cut`) means the
person is too near to approach, a fact of the pixels, whatever the
assumptions: the controller never drives towards them. Bearing: the box
centre's angle off the camera axis plus the pan angle, left positive, off
the car's heading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Box = tuple[float, float, float, float]

#: A box edge this close to the frame's edge is taken as cut by it (box edges jitter by a few per cent).
EDGE = 0.05


@dataclass(frozen=True)
class CameraGeometry:
    """Field of view (deg), mount height (m), tilt (deg, up > 0), head pan range (deg at pan = +-1)."""

    hfov_deg: float = 62.2
    vfov_deg: float = 48.8
    mount_height_m: float = 0.15
    tilt_deg: float = 12.0
    pan_range_deg: float = 60.0

    def elevation(self, v: float) -> float:
        """Angle (rad) above the horizontal of the image row ``v`` (0 top .. 1 bottom)."""
        return math.radians(self.tilt_deg) + math.atan((0.5 - v) * 2.0 * math.tan(math.radians(self.vfov_deg) / 2))

    def azimuth(self, u: float) -> float:
        """Angle (rad, left > 0) off the camera axis of the image column ``u`` (0 left .. 1 right)."""
        return math.atan((0.5 - u) * 2.0 * math.tan(math.radians(self.hfov_deg) / 2))


@dataclass(frozen=True)
class Observation:
    """One box in metres: ground range (m), bearing off the car's heading (rad, left > 0)."""

    range_m: float
    bearing_rad: float
    clipped: bool = False  # the bottom edge is cut by the frame: the person is at most this far
    cut: bool = False  # the top or bottom edge is cut by the frame: too near to approach
    feet_m: float | None = None  # range from the bottom edge alone, while the feet are in the frame (height-free)
    feet_sigma_m: float = 0.0  # its standard deviation from the edge's jitter (EDGE_JITTER of the box's height)
    from_feet: bool = False  # range_m is feet_m (the head cut by the frame, the feet in it): as noisy as the feet


#: A box edge's jitter, as a share of the box's height (a detector's boxes; the simulator's edge_noise).
EDGE_JITTER = 0.03


def edges_cut(box: Box) -> tuple[bool, bool]:
    """Whether the box's top and bottom edges are cut by the frame."""
    return box[1] <= EDGE, box[3] >= 1.0 - EDGE


def ground_range(box: Box, camera: CameraGeometry, person_height_m: float) -> tuple[float, bool]:
    """Range (m) of a person whose box is ``box``, and whether it is only an upper bound."""
    top_cut, bottom_cut = edges_cut(box)
    tan_bottom = math.tan(camera.elevation(box[3]))
    from_height = math.inf
    if not top_cut:
        span = math.tan(camera.elevation(box[1])) - tan_bottom
        if span > 1e-6:
            from_height = person_height_m / span
    if not bottom_cut:
        if math.isfinite(from_height):
            return from_height, False
        if tan_bottom < -1e-6:
            return camera.mount_height_m / -tan_bottom, False
    edge = math.tan(camera.elevation(1.0))
    frame_bottom = camera.mount_height_m / -edge if edge < -1e-6 else 0.0
    return min(from_height, frame_bottom), True


def feet_range(box: Box, camera: CameraGeometry) -> tuple[float, float] | None:
    """Range (m) from the bottom edge (the feet on the floor) and its std; None when the feet are not in view."""
    if edges_cut(box)[1]:
        return None
    tan_bottom = math.tan(camera.elevation(box[3]))
    if tan_bottom >= -1e-6:
        return None  # the bottom edge at or above the horizon: not feet on this floor
    d = camera.mount_height_m / -tan_bottom
    # d(range)/d(row) = range^2 / h x d(tan)/d(row), the row jittering by EDGE_JITTER of the box's height
    k = 2.0 * math.tan(math.radians(camera.vfov_deg) / 2)
    dtan = (1 + tan_bottom ** 2) * k / (1 + ((0.5 - box[3]) * k) ** 2)
    return d, d * d / camera.mount_height_m * dtan * EDGE_JITTER * max(box[3] - box[1], 0.0)


def observe(box: Box, camera: CameraGeometry, person_height_m: float, pan: float = 0.0) -> Observation:
    """Range and bearing of the person in ``box``, the head at ``pan`` (-1 right .. +1 left)."""
    range_m, clipped = ground_range(box, camera, person_height_m)
    bearing = camera.azimuth((box[0] + box[2]) / 2) + pan * math.radians(camera.pan_range_deg)
    feet = feet_range(box, camera)
    if feet is None:
        return Observation(range_m, bearing, clipped, cut=any(edges_cut(box)))
    return Observation(range_m, bearing, clipped, cut=any(edges_cut(box)), feet_m=feet[0], feet_sigma_m=feet[1],
                       from_feet=not clipped and range_m == feet[0])
