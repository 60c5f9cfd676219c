"""Which box each track takes when two people's boxes fit the target about equally well."""

from __future__ import annotations

from rover.drive.assign import assign
from rover.drive.tracker import Box, TargetTracker


def person_box(cx: float, height: float, bottom: float = 0.76) -> Box:
    """A standing person's box: centre ``cx``, ``height`` of the frame, feet at ``bottom``."""
    return (cx - height / 8, bottom - height, cx + height / 8, bottom)


def test_two_tracks_that_fit_better_with_their_boxes_swapped_swap() -> None:
    # Track 0 predicts sharply and fits both boxes about equally (box 1 by 0.1 better); track 1 fits box 1 far better.
    costs = {(0, 0): -10.7, (0, 1): -10.8, (1, 0): -2.5, (1, 1): -3.9}
    assert assign(costs, {0, 1}) == {0: 0, 1: 1}
    assert assign(costs, {0}) == {0: 1, 1: 0}  # track 1 unconfirmed (seen once): no exchange
    # Greedy alone is kept where no exchange lowers the sum; absent pairs are never made.
    assert assign({(0, 0): -5.0, (0, 1): -1.0, (1, 0): -4.5, (1, 1): -4.0}, {0, 1}) == {0: 0, 1: 1}
    assert assign({(0, 1): -10.8, (1, 1): -3.9, (1, 0): -2.5}, {0, 1}) == {0: 1, 1: 0}
    assert assign({(0, 0): -1.0, (1, 0): -2.0}, {0, 1}) == {1: 0}
    assert assign({}, {0, 1}) == {}


def test_the_crosser_coming_out_beside_the_target_after_a_frame_missing_both_is_not_taken() -> None:
    """The crossing walk at 1.3 m/s and 3 frames/s (simulator, seed 11), as box numbers.

    The target (centre 0.5, ~5 m) is followed; a second person 2 m behind
    walks right to left, is hidden behind them, the detector misses both in
    one frame, finds the target alone in the next, then both side by side:
    the crosser's box just left of the target's, the target's own box a
    little taller than its last (jitter). The target's sharp prediction fits
    the crosser's box a little better than its own (cost 0.10 lower); the
    crosser's track, coasting, fits the crosser's box far better (1.41
    lower). Best fit first gave the target the crosser's box (and the
    crosser's track the target's): the car followed the crosser.
    """
    target = person_box(0.50, 0.36)
    tracker = TargetTracker(lock_frames=3)
    t = 0.0
    for cx in (0.64, 0.62, 0.60, 0.58, 0.56):  # both in view, the crosser farther, to the right, walking left
        seen = tracker.update([(target, 0.8), (person_box(cx, 0.29), 0.8)], now=t)
        t += 1 / 3
    assert seen is not None and seen.box == target and tracker.locks == 1
    for _ in range(2):  # the crosser behind the target
        assert tracker.update([(target, 0.8)], now=t) is not None
        t += 1 / 3
    assert tracker.update([], now=t) is None  # the detector misses both
    t += 1 / 3
    assert tracker.update([(target, 0.8)], now=t) is not None
    t += 1 / 3
    own, crosser = person_box(0.50, 0.40), person_box(0.45, 0.33)
    seen = tracker.update([(own, 0.8), (crosser, 0.8)], now=t)
    assert seen is not None and seen.box == own and tracker.locks == 1
    t += 1 / 3
    seen = tracker.update([(person_box(0.50, 0.38), 0.8), (person_box(0.40, 0.33), 0.8)], now=t)
    assert seen is not None and seen.box == person_box(0.50, 0.38) and tracker.locks == 1
