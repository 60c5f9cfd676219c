"""The bumper: whether the ultrasonic range lets the car drive forward, and if not, why.

Pure logic on one reading of the chassis's non-blocking ``distance_m()``
(metres; ``math.inf`` when nothing is in range; None when unknown) and the
chassis's ``has_ranger`` (the sensor is fitted and open). The drive cuts
forward throttle while the state :func:`blocks`, and publishes the state in
its status (``bumper``, docs/drive.md), so a user sees why the car will not
go forward.
"""

from __future__ import annotations

import math

OFF = "off"
CLEAR = "clear"
OBSTACLE = "obstacle"
UNKNOWN = "unknown"

#: Every state, and what it means (the status schema's ``bumper`` enum says the same).
STATES = {
    OFF: "the bumper does not act: drive.bumper_m = 0, or a backend without an ultrasonic sensor (log, sim)",
    CLEAR: "the range is known and not nearer than bumper_m (nothing in range counts as clear)",
    OBSTACLE: "an obstacle is nearer than bumper_m: forward motion blocked",
    UNKNOWN: "the fitted sensor has no valid reading (unplugged, dead, echo stuck, readings stale): forward motion blocked",
}


def bumper_state(bumper_m: float, distance_m: float | None, has_ranger: bool) -> str:
    """The bumper's state for one range reading (see :data:`STATES`).

    A fitted sensor that cannot tell (None, or NaN) blocks like an obstacle;
    without a sensor an unknown range cannot block, and the state says so.
    """
    if bumper_m <= 0:
        return OFF
    if distance_m is None or math.isnan(distance_m):
        return UNKNOWN if has_ranger else OFF
    return OBSTACLE if distance_m < bumper_m else CLEAR


def blocks(state: str) -> bool:
    """True when the bumper keeps the car from driving forward in ``state``."""
    return state in (OBSTACLE, UNKNOWN)
