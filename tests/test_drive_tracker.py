"""Target lock with plain boxes: highest score first, then continuity, relock only after a while."""

from __future__ import annotations

import pytest

from rover.drive.tracker import TargetTracker, centre_distance, iou

LEFT = (0.10, 0.2, 0.30, 0.8)
RIGHT = (0.60, 0.2, 0.80, 0.8)


def test_iou_and_centre_distance() -> None:
    assert iou(LEFT, LEFT) == pytest.approx(1.0)
    assert iou(LEFT, RIGHT) == 0.0
    assert iou((0, 0, 0.5, 1), (0.25, 0, 0.75, 1)) == pytest.approx(1 / 3)
    assert centre_distance((0, 0, 0, 0), (1, 1, 1, 1)) == pytest.approx(1.0)


def test_locks_the_highest_scoring_detection() -> None:
    tracker = TargetTracker()
    target = tracker.update([(LEFT, 0.6), (RIGHT, 0.9)], now=0.0)
    assert target is not None and target.box == RIGHT


def test_two_people_keeps_the_locked_one_even_when_the_other_scores_higher() -> None:
    tracker = TargetTracker()
    tracker.update([(LEFT, 0.9)], now=0.0)
    for i in range(1, 20):
        shifted = (LEFT[0] + 0.005 * i, LEFT[1], LEFT[2] + 0.005 * i, LEFT[3])
        target = tracker.update([(RIGHT, 0.99), (shifted, 0.55)], now=0.1 * i)
        assert target is not None and target.box == shifted


def test_prefers_the_continuation_among_nearby_boxes() -> None:
    tracker = TargetTracker()
    tracker.update([(LEFT, 0.9)], now=0.0)
    near = (0.12, 0.2, 0.32, 0.8)
    farther = (0.35, 0.2, 0.55, 0.8)
    assert tracker.update([(farther, 0.95), (near, 0.6)], now=0.1).box == near


def test_a_different_target_only_after_the_old_one_is_lost_for_relock_after() -> None:
    tracker = TargetTracker(relock_after_s=1.0)
    tracker.update([(LEFT, 0.9)], now=0.0)
    assert tracker.update([(RIGHT, 0.9)], now=0.5) is None  # not the locked person
    assert tracker.update([(RIGHT, 0.9)], now=0.99) is None
    assert tracker.unseen_for(0.99) == pytest.approx(0.99)
    target = tracker.update([(RIGHT, 0.9)], now=1.0)
    assert target is not None and target.box == RIGHT


def test_small_box_that_moved_between_slow_frames_is_still_the_target() -> None:
    tracker = TargetTracker(min_iou=0.2, max_jump=0.15)
    small = (0.40, 0.40, 0.44, 0.50)
    moved = (0.46, 0.40, 0.50, 0.50)  # no overlap, centre moved 0.06 of the width
    tracker.update([(small, 0.9)], now=0.0)
    assert tracker.update([(moved, 0.7)], now=0.4).box == moved


def test_reset_forgets_the_lock() -> None:
    tracker = TargetTracker()
    tracker.update([(LEFT, 0.9)], now=0.0)
    tracker.reset()
    assert not tracker.locked
    assert tracker.update([(RIGHT, 0.8)], now=0.1).box == RIGHT
