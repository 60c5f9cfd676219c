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
