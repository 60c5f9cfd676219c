"""Which person is locked first: the one in front, also when the detector missed them in a frame or two."""

from __future__ import annotations

from rover.drive.tracker import TargetTracker

FRONT = (0.43, 0.21, 0.57, 0.80)  # ~3 m straight ahead
FAR = (0.90, 0.55, 0.96, 0.75)  # ~9 m away at the frame's right edge (someone crossing far behind)


def test_the_person_in_front_missed_twice_is_locked_not_the_one_behind() -> None:
    tracker = TargetTracker()
    assert tracker.update([(FRONT, 0.9), (FAR, 0.9)], now=0.0) is None
    assert tracker.update([(FAR, 0.9)], now=0.33) is None  # the detector missed the person in front ...
    assert tracker.update([(FAR, 0.9)], now=0.67) is None  # ... twice: the far one is seen a third time, not locked
    assert tracker.update([(FRONT, 0.9), (FAR, 0.9)], now=1.0) is None
    assert tracker.update([(FRONT, 0.9), (FAR, 0.9)], now=1.33) is None
    target = tracker.update([(FRONT, 0.9), (FAR, 0.9)], now=1.67)
    assert target is not None and target.box == FRONT and tracker.locks == 1


def test_someone_in_front_who_is_gone_delays_a_lock_at_most_relock_after() -> None:
    tracker = TargetTracker(relock_after_s=1.0)
    assert tracker.update([(FRONT, 0.9), (FAR, 0.9)], now=0.0) is None
    for now in (0.33, 0.67):
        assert tracker.update([(FAR, 0.9)], now=now) is None
    target = tracker.update([(FAR, 0.9)], now=1.0)  # the person in front unseen for 1 s: the far one is locked
    assert target is not None and target.box == FAR


def test_a_weak_box_in_front_does_not_delay_a_lock() -> None:
    tracker = TargetTracker(lock_min_score=0.6)
    assert tracker.update([(FRONT, 0.4), (FAR, 0.9)], now=0.0) is None  # scores too low to be locked itself
    assert tracker.update([(FAR, 0.9)], now=0.33) is None
    target = tracker.update([(FAR, 0.9)], now=0.67)
    assert target is not None and target.box == FAR


TARGET = (0.46, 0.40, 0.54, 0.70)  # the followed person, ~5 m ahead


def test_whoever_hid_the_target_for_longer_than_the_occlusion_hold_is_not_locked_after_it() -> None:
    tracker = TargetTracker(relock_after_s=1.0)
    now = 0.0
    for _ in range(3):
        tracker.update([(TARGET, 0.9)], now=now)
        now += 0.33
    assert tracker.target is not None and tracker.target.box == TARGET
    for k in range(4):  # someone walks in from the right, nearer, both in view
        x = 0.80 - 0.07 * k
        tracker.update([(TARGET, 0.9), ((x - 0.09, 0.15, x + 0.09, 0.85), 0.9)], now=now)
        now += 0.33
    front = (0.41, 0.15, 0.59, 0.85)
    hidden_from = now
    while now < hidden_from + 6.0:  # they stand in front, hiding the target, for 6 s (the hold is 4 s at most)
        assert tracker.update([(front, 0.9)], now=now) is None  # the one in front is never the target
        now += 0.33
    assert tracker.locks == 1
    seen = [tracker.update([(front, 0.9), ((0.60, 0.42, 0.66, 0.66), 0.8)], now=now + 0.33 * k) for k in range(3)]
    assert seen[-1] is not None and seen[-1].box == (0.60, 0.42, 0.66, 0.66)  # the followed person, out again
    assert tracker.locks == 2

