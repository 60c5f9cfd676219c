"""The speed law's spacing and caps (rover.drive.speed) and the feet's confirmation (rover.drive.target)."""

from __future__ import annotations

import dataclasses

import pytest

from rover.drive import speed
from rover.drive.config import DriveConfig
from rover.drive.limits import Limits
from rover.drive.odometry import Odometer
from rover.drive.target import Estimate, TargetEstimate
from tests.test_drive_estimate import box_of

CFG = DriveConfig()
LIMITS = Limits(max_age_s=0.45, deadman_s=0.75, stop_time_s=0.2, travel_bound_m=2.0)  # ~3 frames/s


def estimate(range_m: float, own: float) -> Estimate:
    return Estimate(range_m, 0.0, 0.0, 0.0, own)


def test_a_walker_is_trailed_farther_back_by_the_gap_and_a_standing_person_at_the_follow_distance() -> None:
    assert speed.wanted_range(CFG, 0.0) == CFG.follow_distance_m
    assert speed.wanted_range(CFG, -1.0) == CFG.follow_distance_m  # walking towards the car: no nearer than follow
    assert speed.wanted_range(CFG, 1.0) == pytest.approx(CFG.follow_distance_m + CFG.follow_gap_s)
    # at the trailing distance the law asks for the walker's own speed: a steady follow, not a chase
    trailing = speed.wanted_range(CFG, 1.0)
    assert speed.law_speed(CFG, estimate(trailing, 1.0)) == pytest.approx(1.0)
    assert speed.law_speed(CFG, estimate(trailing - 0.5, 1.0)) < 1.0 < speed.law_speed(CFG, estimate(trailing + 0.5, 1.0))
    # the person stops: the law brings the car to the follow distance, and stands it nearer
    assert speed.law_speed(CFG, estimate(trailing, 0.0)) > 0 > speed.law_speed(CFG, estimate(CFG.follow_distance_m - 0.1, 0.0))
    no_gap = dataclasses.replace(CFG, follow_gap_s=0.0)
    assert speed.law_speed(no_gap, estimate(CFG.follow_distance_m, 1.0)) == pytest.approx(1.0)


def test_a_negative_gap_is_refused() -> None:
    with pytest.raises(ValueError, match="follow_gap_s"):
        DriveConfig(follow_gap_s=-0.1)


def test_the_default_travel_bound_gives_headroom_above_a_walker_at_3_frames_per_second() -> None:
    # speed limit = bound / (horizon + stop): ~1.4 m/s at 3 frames/s, more than a 1 m/s walker and the car's top speed
    assert LIMITS.speed_limit_mps > CFG.top_speed_mps > 1.0
    assert CFG.follow_distance_m >= CFG.stop_distance_m + CFG.travel_bound_m
    # and at the trailing distance the stop distance's cap does not hold the car under the walker's speed either
    assert speed.safe_speed(speed.wanted_range(CFG, 1.0), CFG.stop_distance_m, LIMITS) > CFG.top_speed_mps


def test_the_travel_budget_spends_exactly_the_bound_at_its_speed() -> None:
    # driving at the budget from a capture: the path so far + speed x (the rest of the window + a tick + the stop) = bound
    capture, now, driven = 10.0, 10.4, 0.5
    v = speed.budget_speed(2.0, driven, capture, now, 0.05, LIMITS)
    rest = capture + LIMITS.horizon_s - now
    assert driven + v * (rest + 0.05 + LIMITS.stop_time_s) == pytest.approx(2.0)
    assert speed.budget_speed(2.0, 2.0, capture, now, 0.05, LIMITS) == 0.0  # the bound used up: stand
    assert speed.budget_speed(2.0, driven, capture, now + 5.0, 0.05, LIMITS) == pytest.approx(1.5 / 0.25)  # past the cut


def feed(target: TargetEstimate, boxes: list[tuple], fps: float = 3.0) -> None:
    for k, box in enumerate(boxes):
        target.observe(box, k / fps)


def near_after(boxes: list[tuple]) -> float:
    target = TargetEstimate(CFG, Odometer(3.0, 0.0))
    feed(target, boxes)
    est = target.predict(len(boxes) / 3.0, 0.0)
    assert est is not None
    return est.near_m


def low_feet(distance: float, feet_m: float) -> tuple:
    """A box at ``distance`` by its height whose bottom edge says ``feet_m`` (a bottom edge jittered low)."""
    box, feet = box_of(distance), box_of(feet_m)
    return (box[0], box[1] + feet[3] - box[3], box[2], feet[3])


def test_one_bottom_edge_far_too_low_does_not_cap_a_walk_but_two_in_a_row_do() -> None:
    steady = [box_of(3.5)] * 6
    assert near_after(steady) == pytest.approx(3.5, abs=0.2)
    # one box whose feet read 2.1 m (the bottom edge 3 std low, seen at 3 frames/s): the range from the height stands
    assert near_after(steady + [low_feet(3.5, 2.1)]) > 3.0
    # two in a row: the feet are believed (a child, someone sitting: the height puts them too far)
    assert near_after(steady + [low_feet(3.5, 2.1)] * 2) < 3.0
    # a child standing 1.3 m away: from the second box on
    assert near_after([box_of(1.3, height_m=1.0)] * 2) == pytest.approx(1.3, abs=0.15)
