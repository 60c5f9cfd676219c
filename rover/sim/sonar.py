"""The simulated car's ultrasonic sensor (HC-SR04): what it would read, given walls and people.

Pure: the standard library and a numpy random generator passed in. The
sensor sits ``forward_m`` ahead of the rear axle on the car's centre line and
looks along the car's heading (not the head's pan). Its echo comes from the
nearest surface inside its cone: the datasheet's 15 degree measuring angle,
taken here as the half-angle, and its 4 m range (beyond: ``math.inf``,
nothing in range, as :func:`rover.hw.ultrasonic.echo_distance_m` reports).
Walls are line segments; people are the camera model's cylinders.

A reading adds the sensor's noise (the datasheet's 3 mm resolution as a
standard deviation) and, with probability ``late_p``, a late-seen falling
edge as on a loaded Pi (:mod:`rover.hw.ultrasonic`: each millisecond late
reads 0.17 m too far), which the kit's median filter is there to drop. The
numbers are the datasheet's or stated assumptions, not measurements of a kit.
:class:`SimSonar` has the ``measure()`` of :class:`rover.hw.ultrasonic.HCSR04`,
so the kit's own :class:`~rover.hw.ultrasonic.UltrasonicRanger` (retries,
staleness, median) runs on it unchanged: :class:`SimRanger` is that ranger
with its thread's loop run on simulated time instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from rover.hw.ultrasonic import SPEED_OF_SOUND_M_S, UltrasonicRanger


@dataclass(frozen=True)
class Wall:
    """A flat obstacle from ``(x0, y0)`` to ``(x1, y1)`` in world metres."""

    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class SonarModel:
    forward_m: float = 0.2  # ahead of the rear axle: the front of a 0.26 m car (assumption)
    half_angle_deg: float = 15.0  # HC-SR04 datasheet "measuring angle 15 degree"
    max_m: float = 4.0  # datasheet: 2 cm to 4 m
    noise_m: float = 0.003  # datasheet resolution 0.3 cm, used as the standard deviation
    late_p: float = 0.05  # share of readings whose falling edge the polling thread sees late (assumption)
    late_max_s: float = 0.002  # up to this late (the GIL's 5 ms switch interval bounds it; assumption)


def _angle_off(dx: float, dy: float, heading: float) -> float:
    return abs(math.remainder(math.atan2(dy, dx) - heading, math.tau))


def _wall_range(sx: float, sy: float, heading: float, wall: Wall, half: float) -> float:
    """Nearest point of ``wall`` inside the cone: the foot of the perpendicular, or where the cone's edges or the
    wall's ends bound it (the distance along a line is convex, the cone cuts an interval of it)."""
    ex, ey = wall.x1 - wall.x0, wall.y1 - wall.y0
    length2 = ex * ex + ey * ey
    candidates = [(wall.x0, wall.y0), (wall.x1, wall.y1)]
    if length2 > 0:
        u = max(0.0, min(1.0, ((sx - wall.x0) * ex + (sy - wall.y0) * ey) / length2))
        candidates.append((wall.x0 + u * ex, wall.y0 + u * ey))
    for edge in (heading - half, heading + half):
        dx, dy = math.cos(edge), math.sin(edge)
        denom = dx * ey - dy * ex
        if abs(denom) < 1e-12:
            continue
        # sensor + s * ray = wall start + u * wall vector
        s = ((wall.x0 - sx) * ey - (wall.y0 - sy) * ex) / denom
        u = ((wall.x0 - sx) * dy - (wall.y0 - sy) * dx) / denom
        if s > 0 and 0.0 <= u <= 1.0:
            candidates.append((sx + s * dx, sy + s * dy))
    best = math.inf
    for px, py in candidates:
        dx, dy = px - sx, py - sy
        if (dx or dy) and _angle_off(dx, dy, heading) <= half + 1e-9:
            best = min(best, math.hypot(dx, dy))
    return best


def _person_range(sx: float, sy: float, heading: float, px: float, py: float, radius: float, half: float) -> float:
    dx, dy = px - sx, py - sy
    centre = math.hypot(dx, dy)
    if centre <= radius:
        return 0.0
    if _angle_off(dx, dy, heading) <= half:
        return centre - radius
    best = math.inf
    for edge in (heading - half, heading + half):  # the cone's edge may still graze the cylinder
        rx, ry = math.cos(edge), math.sin(edge)
        along = dx * rx + dy * ry
        off2 = centre * centre - along * along
        if along > 0 and off2 <= radius * radius:
            best = min(best, along - math.sqrt(radius * radius - off2))
    return best


def true_range(x: float, y: float, heading: float, walls: Iterable[Wall],
               people: Iterable[tuple[float, float, float]], model: SonarModel) -> float:
    """Range (m) from a car at rear axle ``(x, y)``, ``heading`` (rad) to the nearest surface in the cone; inf if none
    within ``max_m``. ``people``: ``(x, y, radius)`` of each person there."""
    sx, sy = x + model.forward_m * math.cos(heading), y + model.forward_m * math.sin(heading)
    half = math.radians(model.half_angle_deg)
    best = min((_wall_range(sx, sy, heading, w, half) for w in walls), default=math.inf)
    for px, py, radius in people:
        best = min(best, _person_range(sx, sy, heading, px, py, radius, half))
    return best if best <= model.max_m else math.inf


def reading(true_m: float, model: SonarModel, rng: np.random.Generator) -> float:
    """One measurement of a surface at ``true_m``: noise, sometimes seen late; inf stays inf."""
    if not math.isfinite(true_m):
        return math.inf
    metres = true_m + float(rng.normal(0.0, model.noise_m))
    if model.late_p > 0 and rng.random() < model.late_p:
        metres += float(rng.uniform(0.0, model.late_max_s)) * SPEED_OF_SOUND_M_S / 2.0
    metres = max(0.02, metres)  # the datasheet's minimum
    return metres if metres <= model.max_m else math.inf


class SimSonar:
    """A sensor with :meth:`rover.hw.ultrasonic.HCSR04.measure`'s contract over ``source`` (the true range now).

    ``dead = True`` models an unplugged sensor: every measurement fails (None).
    """

    def __init__(self, source: Callable[[], float], model: SonarModel, rng: np.random.Generator) -> None:
        self.source, self.model, self.rng = source, model, rng
        self.dead = False
        self.measurements = 0

    def measure(self) -> float | None:
        self.measurements += 1
        if self.dead:
            return None
        return reading(self.source(), self.model, self.rng)


class SimRanger(UltrasonicRanger):
    """The kit's ranger on simulated time: :meth:`catch_up` runs the turns of its thread's loop that are due.

    Built from a kit section's ``ultrasonic_*`` keys; no thread is started and
    no real time is waited (a retry follows at once).
    """

    def __init__(self, sensor: SimSonar, clock: Callable[[], float], config: object) -> None:
        super().__init__(sensor, clock=clock, interval_s=getattr(config, "ultrasonic_interval_s"),  # type: ignore[arg-type]
                         retries=getattr(config, "ultrasonic_retries"), stale_s=getattr(config, "ultrasonic_stale_s"),
                         retry_gap_s=0.0, samples=getattr(config, "ultrasonic_samples"))
        self._next: float | None = None

    def catch_up(self) -> None:
        """Measure once per ``interval_s`` of simulated time passed since the last call (the first call measures)."""
        now = self._clock()
        if self._next is None:
            self._next = now
        while self._next <= now + 1e-9:
            self.turn()
            self._next += self.interval_s

    def turn(self) -> None:
        """One turn of :meth:`UltrasonicRanger._run`: a reading (with retries) kept, or a miss counted."""
        distance = self.read()
        if distance is None:
            self.misses += 1
        else:
            self.add(distance)
