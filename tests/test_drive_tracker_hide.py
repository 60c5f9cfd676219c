"""The one who hid the target stays barred under another track; a lock past its hold takes no box; the ego size gate.

Plain boxes, as the review of the crosses_in_front walk (1.0 m/s, 3 frames/s, simulator seeds 15 and 17) found them.
"""

from __future__ import annotations

import math

import pytest

from rover.drive.estimate import CameraGeometry
from rover.drive.tracker import MAX_OCCLUDED_S, TargetTracker
from rover.drive.tracks import MAX_EGO_SCALE, EgoMotion, ego_box, image_gate, size_ratio

Box = tuple[float, float, float, float]
PERIOD = 1 / 3  # 3 frames/s
TARGET = (0.50 - 0.40 / 6, 0.36, 0.50 + 0.40 / 6, 0.76)  # the followed person, ~5 m ahead, standing


def person_box(cx: float, height: float, bottom: float = 0.82) -> Box:
    """A standing person's box: centre ``cx``, ``height`` of the frame, feet at ``bottom``."""
    return (cx - height / 6, bottom - height, cx + height / 6, bottom)


def hidden_by_a_crosser() -> tuple[TargetTracker, float]:
    """Locked on TARGET; a nearer person walks in from the right (both in view), then stands in front of it."""
    tracker, t = TargetTracker(max_size_ratio=1.3), 0.0  # the config's lock_max_size_ratio
    for _ in range(3):
        tracker.update([(TARGET, 0.9)], now=t)
        t += PERIOD
    assert tracker.locked and tracker.locks == 1
    for k in range(4):
        tracker.update([(TARGET, 0.9), (person_box(0.85 - 0.08 * k, 0.55), 0.9)], now=t)
        t += PERIOD
    return tracker, t


def test_a_box_beside_the_person_who_hid_the_target_never_becomes_the_target() -> None:
    # The person in front covers the target; from the next frame on the detector also gives a second box beside
    # theirs (a part of them), which fits the coasting target only loosely. Their track takes their own box, so the
    # second starts a track of its own inside their gate: it was confirmed as the target after three frames (the
    # tentative re-acquisition), and the car followed the person in front under another track.
    tracker, t = hidden_by_a_crosser()
    beside = (0.41, 0.30, 0.55, 0.80)
    for k in range(8):
        front = person_box(max(0.50, 0.53 - 0.08 * k), 0.55)
        assert tracker.update([(front, 0.9)] + ([(beside, 0.8)] if k else []), now=t) is None
        assert tracker.locks == 1  # held for the target, not given to anyone in front
        t += PERIOD


def test_a_loose_reacquisition_is_a_new_lock_for_the_controller() -> None:
    # The target missed in one frame, then a box inside its gate but fitting only loosely: confirmed after
    # lock_frames messages with a new lock number, so the controller's filters start afresh (the review's seed 15:
    # a range of 4.22 m then 2.44 m read as the same person's walk).
    tracker, t = TargetTracker(), 0.0
    for _ in range(6):
        tracker.update([(person_box(0.5, 0.30, 0.75), 0.9)], now=t)
        t += PERIOD
    tracker.update([], now=t)
    seen = []
    for _ in range(3):
        t += PERIOD
        seen.append(tracker.update([(person_box(0.55, 0.22, 0.71), 0.9)], now=t))
    assert seen[:2] == [None, None] and seen[2] is not None
    assert tracker.locks == 2


def test_a_target_hidden_for_as_long_as_an_occlusion_holds_takes_no_box_in_the_message_that_ends_the_hold() -> None:
    # The review's seed 17: the lock held 4 s for a target hidden behind a person standing in front; in the first
    # message past the hold the target's track, its gate grown over 4 s, took a box (there the hider's) before
    # the hold was checked, and kept the lock on it. Past the hold the target is lost, whatever box comes:
    # a new lock, after lock_frames messages, with filters started afresh.
    tracker, t = hidden_by_a_crosser()
    front = person_box(0.50, 0.55)
    last_seen = t - PERIOD
    while t - last_seen < MAX_OCCLUDED_S:
        assert tracker.update([(front, 0.9)], now=t) is None and tracker.locked
        t += PERIOD
    aside = person_box(0.66, 0.55)  # the person in front steps aside, a box where the target stood
    seen = [tracker.update([(aside, 0.9), (TARGET, 0.9)], now=t + PERIOD * k) for k in range(3)]
    assert seen[0] is None and seen[1] is None
    assert seen[2] is not None and seen[2].box == TARGET and tracker.locks == 2  # not the one who hid it


CAMERA = CameraGeometry()
LIMITS = (0.2, 0.15, 1.3)  # the config's defaults: lock_min_iou, lock_max_jump, lock_max_size_ratio


def test_the_ego_gate_does_not_widen_the_size_gate_for_a_box_cut_by_the_frame() -> None:
    # The review's numbers (crosses_in_front 0.6 m/s, 2 frames/s, assumptions off by 15 %, seed 8): the target's
    # last box 0.621 high, moved by the car's approach to 0.686; a nearer person's box 0.840 high with its top at the
    # frame's edge (a height that is only a lower bound) was taken for the target.
    last = (0.403, 0.188, 0.549, 0.808)
    moved = (0.422, 0.127, 0.584, 0.813)
    cut = (0.454, 0.000, 0.734, 0.840)
    assert image_gate(last, moved, cut, LIMITS) == "size"
    whole = (0.454, 0.02 + 0.06, 0.734, 0.840)  # the same height ratio to the moved box (1.11), the head in view
    assert image_gate(last, moved, whole, LIMITS) is None  # the approach explains it: still the target
    assert image_gate(last, last, (0.42, 0.0, 0.58, 0.80), LIMITS) is None  # a cut box as tall as the last: fine


@pytest.mark.parametrize("travel", [1.0, 1.5])
def test_the_car_s_own_motion_scales_a_box_by_at_most_max_ego_scale(travel: float) -> None:
    # 1.0 m at 2 m (2 x by r / (r - d)): the odometer counts commands, a held car would widen the gate by that much.
    box = (0.45, 0.40, 0.55, 0.70)
    moved = ego_box(box, 2.0, 0.0, EgoMotion(travel_m=travel), CAMERA)
    assert (moved[2] - moved[0]) / (box[2] - box[0]) == pytest.approx(MAX_EGO_SCALE)  # the width: the scale itself
    assert size_ratio(box, moved) <= MAX_EGO_SCALE  # the height: its edges' elevations scaled, the camera tilted
    assert math.isclose(MAX_EGO_SCALE, 1.5)


def test_the_target_back_where_it_stood_is_its_own_though_the_track_of_the_one_who_hid_it_fits_it_loosely() -> None:
    # The review's seed 17 at 1.3 m/s: the person in front came so near that their box was cut by the frame's top
    # (their range then from the feet only: their track's range grew uncertain), then the detector missed everyone
    # once; the target's box came back where it stood, a close fit of the target's track (squared distance 0.35)
    # and a loose one of the other person's (8.9, beyond LOOSE_D2). It was given to the one who had hidden the
    # target (a box their track explains was theirs, however loosely), the target was lost and that person followed.
    tracker, t = hidden_by_a_crosser()
    for k in range(4):  # they step nearer, in front of the target: the head leaves the frame
        tracker.update([((0.40, 0.0, 0.60, 0.84) if k >= 2 else person_box(0.50, 0.60 + 0.1 * k, 0.83), 0.9)], now=t)
        t += PERIOD
    assert tracker.update([], now=t) is None  # the detector misses everyone once
    for _ in range(3):
        t += PERIOD
        seen = tracker.update([(TARGET, 0.9)], now=t)
        assert seen is not None and seen.box == TARGET and tracker.locks == 1  # at once, the same lock


def test_a_coasting_target_fits_a_box_by_the_closer_of_its_walk_and_its_standing_where_last_seen() -> None:
    # The target walks right, another person of the same size left, both in view; the target is missed once, then
    # is back where it was last seen (it stopped), the other person's box beside it. Its walk extrapolated fits that
    # box less closely than the other person's track does, standing where last seen far more closely: the target's
    # (the review's seed 15 at 1.3 m/s, 3 frames/s: taken as the other's, the two boxes changed hands).
    def box(cx: float) -> Box:
        return person_box(cx, 0.40, 0.78)

    tracker, t, x, other = TargetTracker(max_size_ratio=1.3), 0.0, 0.40, 0.68
    for _ in range(6):
        tracker.update([(box(x), 0.9), (box(other), 0.9)], now=t)
        t, x, other = t + PERIOD, x + 0.03, other - 0.02
    assert tracker.target is not None and tracker.target.box == box(x - 0.03)
    tracker.update([(box(other), 0.9)], now=t)  # the target missed
    t, other = t + PERIOD, other - 0.02
    seen = tracker.update([(box(x - 0.03), 0.9), (box(other), 0.9)], now=t)
    assert seen is not None and seen.box == box(x - 0.03) and tracker.locks == 1
    assert [b for b, _ in tracker.others()] == [box(other)]  # the other person keeps their own box
