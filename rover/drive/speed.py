"""The forward speed law and the caps on it: pure arithmetic on plain floats (m, s, m/s).

- **The law** (:func:`law_speed`): the person's own speed along the line of
  sight + ``range_gain`` x (range - the wanted range). The wanted range
  (:func:`wanted_range`) is ``follow_distance_m`` + ``follow_gap_s`` x the
  person's own speed (never less than the follow distance): a walking person
  is trailed farther back, a standing one at the follow distance. At 3
  frames/s the car learns of a stop ~1-1.4 s late (the filter needs frames
  to tell a stop from box noise) and rolls 1.2-1.5 m past where it trailed
  at 1 m/s; trailing at follow + 0.6 m it stands 0.3 m inside the follow
  distance instead of 0.6 m (tests/test_drive_control.py), and in the
  simulator's stop_and_go@1 at 3 frames/s 15 of seeds 0-19 stay in the band
  >= 90 % of the time instead of 1 without the gap.
- **Braking** (:func:`braking_speed`): never more than the speed from which
  the ramp still slows the car to the person's speed at the follow distance;
  from the ``UNSEEN_FRAMES``-th fresh frame in a row without them, from where
  they were last seen (they may have stopped while hidden).
- **Safety caps**, each applied at once by the controller:
  :func:`safe_speed` (still stop outside ``stop_distance_m`` of a range if
  the information stops now) and :func:`budget_speed` (the travel bound,
  see there).
"""

from __future__ import annotations

import math

from rover.drive.config import DriveConfig
from rover.drive.limits import Limits
from rover.drive.target import Estimate

UNSEEN_FRAMES = 2  # fresh frames in a row without the person before the car stops extrapolating their walk


def wanted_range(config: DriveConfig, own_speed_mps: float) -> float:
    """The range the law steers to: the follow distance plus ``follow_gap_s`` x the person's speed away from the car."""
    return config.follow_distance_m + config.follow_gap_s * max(0.0, own_speed_mps)


def law_speed(config: DriveConfig, estimate: Estimate) -> float:
    """Feed-forward of the person's own speed plus a damped correction of the range error (m/s, may be negative)."""
    own = estimate.target_speed_mps
    return own + config.range_gain * (estimate.range_m - wanted_range(config, own))


def braking_speed(config: DriveConfig, estimate: Estimate, unseen: int) -> float:
    """The fastest speed from which the braking ramp still slows the car to the person's speed at the follow distance.

    The ramp (``decel_per_s``) smooths the throttle, but a car that only
    learns of a stop late (the filter needs a few frames) must not be
    carried inside ``follow_distance_m`` by it: above this speed the
    throttle is cut at once (``v = own + sqrt(2 a (range - follow))``).
    Once the person has been missing from ``UNSEEN_FRAMES`` fresh frames in
    a row (``unseen``), their walk is no longer extrapolated: the car keeps
    the speed from which it stops at the follow distance from where they were
    last seen (the range if they stood still since).
    """
    brake = config.decel_per_s * config.top_speed_mps  # m/s^2
    speed = max(0.0, estimate.target_speed_mps) + math.sqrt(2 * brake * max(0.0, estimate.range_m - config.follow_distance_m))
    if unseen >= UNSEEN_FRAMES:
        speed = min(speed, math.sqrt(2 * brake * max(0.0, estimate.held_m - config.follow_distance_m)))
    return speed


def safe_speed(range_m: float, stop_distance_m: float, limits: Limits) -> float:
    """The fastest speed from which the car stops outside ``stop_distance_m`` of ``range_m`` if the information stops now.

    The car acts on what it knows for at most the horizon (freshness limit +
    dead-man) and then needs ``stop_time_s``: at most ``v x (horizon +
    stop_time)`` more.
    """
    return max(0.0, range_m - stop_distance_m) / (limits.horizon_s + limits.stop_time_s)


def budget_speed(travel_bound_m: float, driven_m: float, capture_s: float, now: float, tick_s: float,
                 limits: Limits) -> float:
    """The fastest speed that keeps the travel since the newest capture acted on within ``travel_bound_m``.

    ``driven_m`` is the path driven since that capture (``capture_s``). The
    speed limit alone does not keep the bound: when the limits grow (a
    slower or older frame) the cut-off moves later while the distance
    already driven at the earlier, higher limit stays driven. So the distance
    left is spread over the time left before the cut-off (the capture a
    horizon old), one tick more (the tick's rounding, a real car's
    slow-down), and the stop.
    """
    left = max(0.0, travel_bound_m - driven_m)
    remaining = max(0.0, capture_s + limits.horizon_s - now) + tick_s
    return left / (remaining + limits.stop_time_s)
