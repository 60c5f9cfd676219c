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
the height would put the person too far, so the bottom edge is used instead,
which is exact for a near person but sensitive to the tilt and field of
view (a 15 % error in the focal length puts a person at 1 m at ~1.4 m);
so the controller never drives towards a person whose head is cut
(:attr:`Observation.head_cut`), a fact of the pixels, whatever the
assumptions. With both edges cut (nearer still) the
range is at most the floor distance of the frame's bottom edge: that value is
returned and flagged ``clipped``. Bearing: the box centre's angle off the
camera axis plus the pan angle, left positive, off the car's heading.
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
    clipped: bool = False  # both edges cut by the frame: the person is at most this far
    head_cut: bool = False  # the top edge is cut: the person is nearer than where they fill the frame's height


def ground_range(box: Box, camera: CameraGeometry, person_height_m: float) -> tuple[float, bool]:
    """Range (m) of a person whose box is ``box``, and whether it is only an upper bound."""
    top_cut, bottom_cut = box[1] <= EDGE, box[3] >= 1.0 - EDGE
    tan_bottom = math.tan(camera.elevation(box[3]))
    if not top_cut:
        span = math.tan(camera.elevation(box[1])) - tan_bottom
        if span > 1e-6:
            return person_height_m / span, False
    if not bottom_cut and tan_bottom < -1e-6:
        return camera.mount_height_m / -tan_bottom, False
    edge = math.tan(camera.elevation(1.0))
    return (camera.mount_height_m / -edge if edge < -1e-6 else 0.0), True


def observe(box: Box, camera: CameraGeometry, person_height_m: float, pan: float = 0.0) -> Observation:
    """Range and bearing of the person in ``box``, the head at ``pan`` (-1 right .. +1 left)."""
    range_m, clipped = ground_range(box, camera, person_height_m)
    bearing = camera.azimuth((box[0] + box[2]) / 2) + pan * math.radians(camera.pan_range_deg)
    return Observation(range_m, bearing, clipped, head_cut=box[1] <= EDGE)
