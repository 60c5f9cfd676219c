"""Who is in the car's path: the stop distance protects anyone ahead, not only the followed person.

Pure arithmetic on plain floats. Every person box of the newest fresh
message (not only the target's) is a range and a bearing
(:func:`rover.drive.estimate.observe`); the car's swept path is the corridor
straight ahead, ``half_width_m`` either side of its axis (half the car's
width plus a margin for the person's own width and the bearing's error). A
person in it (``|range x sin(bearing)| < half_width_m``), or walking into it
within the time the car needs to stop (their bearing's rate), caps the speed by the
stop distance like the target does (:meth:`rover.drive.control.Controller.safe_speed`);
one whose box is cut by the frame's bottom edge (the range only an upper
bound, ~0.7 m or nearer) stops forward motion.
"""

from __future__ import annotations

import math
from typing import Iterable

from rover.drive.estimate import Observation


def nearest_in_path(people: Iterable[tuple[Observation, float]], turned_rad: float, half_width_m: float,
                    within_s: float = 0.0) -> float:
    """Range (m) of the nearest person in the swept path; 0 for a box cut at the bottom in it; inf for nobody.

    ``people`` are ``(observation, bearing rate)`` pairs: each in the car's
    frame at its capture, its bearing's rate (rad/s) relative to the car;
    ``turned_rad`` is how far the car has turned since (left > 0), so a
    bearing then is ``bearing - turned_rad`` now. A person counts who is in
    the path or walks into it within ``within_s`` at their sideways speed
    (``range x bearing rate``; the time the car needs to stop on what it
    knows). The range is the nearer of the height's and the feet's (the feet
    do not depend on the assumed height), one standard deviation of the
    feet's nearer for a box whose head is cut (nearer than ~2 m: the feet's
    range alone, which jitters with the bottom edge).
    """
    nearest = math.inf
    for person, rate in people:
        bearing = person.bearing_rad - turned_rad
        if abs(bearing) >= math.pi / 2:
            continue  # beside or behind the car now: not ahead of it
        range_m = person.range_m if person.feet_m is None else min(person.range_m, person.feet_m)
        if person.cut and not person.clipped:
            range_m = max(0.0, range_m - person.feet_sigma_m)  # the head cut: from the feet alone, noisy: one std nearer
        side = range_m * math.sin(bearing)  # left > 0
        towards = -math.copysign(1.0, side) * range_m * math.cos(bearing) * rate  # m/s towards the axis
        if abs(side) < half_width_m or abs(side) - half_width_m < max(0.0, towards) * within_s:
            nearest = min(nearest, 0.0 if person.clipped else range_m)
    return nearest
