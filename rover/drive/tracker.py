"""Target lock: which detection is "the" person the car follows.

A small multi-object tracker in the manner of SORT (one Kalman track per
person, gated assignment, tracks that coast while unseen), cut to what a Pi
does in a few milliseconds a message. Every box of the followed label becomes a
sighting in metres and is assigned to one track (:mod:`rover.drive.tracks`:
each track predicts its person's range and bearing off the camera's axis
and scores a box against that prediction, with the prediction's
uncertainty; its image gates take out the car's own motion since the last
box, from the controller's odometer). The assignment is global, by cost (:func:`rover.drive.assign.assign`):
the best fit of all (track, box) pairs first, then two confirmed tracks swap their boxes when the two
fit better swapped (the crosser beside the target, whose box the target's sharp prediction fits as well
as its own); a box that fits the target only loosely
(squared distance above :data:`LOOSE_D2`) is refused when another person's
track, seen within :data:`CLAIM_S`, fits it closer (refusing the target its
own box costs a frame of coasting, taking another's makes the car follow
them). So a box is the target only if it fits the target's prediction *and*
no other person's track explains it better: a
second person walking past keeps their own track, including while they are
hidden behind the target (their track coasts for :data:`KEEP_S`), and is not
taken for the target when they come out in a frame where the detector
missed the target. Boxes no track explains start new tracks.

Locking: a track becomes the target once it has been seen in ``lock_frames``
consecutive fresh messages (so a false box seen once never starts the car)
with a score of at least ``lock_min_score``; among several such tracks, the
person in front of the car (whole boxes before those cut by the frame's
bottom edge, whose range is only a bound): the smallest
range weighted by how far off-centre the box is (``range x (1 + 2 |u -
0.5|)``, 1 to 2 times), not the highest score, so a far person at the edge
of the frame is not followed instead of the one standing in front; while a
person ranked in front (a score that could be locked) was seen within
``relock_after_s``, no one behind them is locked (the detector missed them
in a frame or two: wait for them). Once
locked, only the target's track is followed; another one is locked only
after the target has been unseen for ``relock_after_s``; until then the car
coasts as LOST (the drive's state machine: it slows and stops, never drives
on the prediction for longer than the freshness limits allow). Each lock is
numbered (:attr:`TargetTracker.locks`), so the controller starts its filters
afresh on another person instead of reading the jump as a speed.

Re-acquisition: a target that was not in the previous message (it coasts, its
gate widening with the time unseen) takes a box at once only on a close fit,
within :data:`LOOSE_D2` (of its extrapolated walk, or of it standing where last
seen: a person who stopped, a rate misread from a jittery last box), and within
reach: the bearing may have changed by no more than a walk at
``MAX_PERSON_SPEED_MPS`` sideways over the time unseen, plus one centre-jump
gate (:func:`rover.drive.tracks.reachable`). A box inside the gate but beyond
LOOSE_D2, and within reach, starts a tentative track: it becomes the target
once ``lock_frames`` consecutive messages show it, as a new lock would need
(meanwhile the lock holds, at most :data:`MAX_OCCLUDED_S`), under a new lock
number (a loose fit may be someone else: the controller's filters start
afresh). A single false box never takes the lock back, starts or steers the car.

Occlusion: when the target is not in a message but a nearer person's box (a
person tracked since before the target was last seen, taller than the target's
predicted box by :data:`OCCLUDER_MARGIN`, feet no higher) covers at least
:data:`OCCLUDED_COVER` of the target's predicted box, the target is *occluded*
(:attr:`TargetTracker.occluded`): the nearer person is the occluder, not the
target. The lock then holds until ``relock_after_s`` after the last message
that showed the occlusion (at most :data:`MAX_OCCLUDED_S` after the target was
last seen), the coasting target takes no box the occluder's track fits closely, the
target is re-acquired where its track predicts it, and whoever hid it is not locked next;
nor is a track begun, while the target is unseen, from a box a hider's track fitted (the
hider's boxes may move to a new track: it is barred as the hider is). Past that hold the
target's track takes no box (it is forgotten as any track unseen for long is).

Cost is bounded: of up to 1000 boxes (the schema's limit)
:func:`rover.drive.prefilter.prefilter` keeps ``max_boxes``; at most :data:`MAX_TRACKS_PER_BOX` x ``max_boxes`` tracks
are kept: O(n log k) for the selection plus O(max_boxes^2) fits a message.

Pure: plain tuples and floats, no I/O. Times are seconds of the loop's clock.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

from rover.drive.assign import assign
from rover.drive.estimate import CameraGeometry
from rover.drive.prefilter import prefilter
from rover.drive.tracks import (STILL, Box, EgoMotion, Odometry, Sighting, Track, centre_distance, covered, ego_between,
                                iou, reachable, sight, size_ratio)

if TYPE_CHECKING:
    from rover.drive.config import DriveConfig

__all__ = ["Box", "Target", "TargetTracker", "centre_distance", "iou", "prefilter", "size_ratio"]

KEEP_S = 2.0  # a track unseen this long is forgotten (the target's: once its lock is dropped)
MAX_TRACKS_PER_BOX = 2  # tracks kept: this many per box matched in a message
OCCLUDER_MARGIN = 0.1  # an occluder's box is at least this share taller than the target's predicted box ...
FEET_TOLERANCE = 0.02  # ... its bottom edge no higher than the predicted one's by more than this (frame heights) ...
OCCLUDED_COVER = 0.3  # ... and covers at least this share of the target's predicted box
LOOSE_D2 = 4.0  # a fit of the target beyond this squared distance (3 dof: a quarter of true fits are farther) is loose ...
CLAIM_S = 1.5  # ... and refused when a person tracked until this long ago fits the box closer
MAX_OCCLUDED_S = 4.0  # an occlusion keeps the lock at most this long after the target was last seen


@dataclass(frozen=True)
class Target:
    """The locked target as last seen: box ``(x1, y1, x2, y2)`` in 0..1, score 0..1."""

    box: Box
    score: float

    @property
    def centre_x(self) -> float:
        return (self.box[0] + self.box[2]) / 2

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


class TargetTracker:
    """Keeps the lock on one target across messages.

    ``min_iou``, ``max_jump`` and ``max_size_ratio`` (> 1) are the image
    gates of a box against a track's last box (and it moved by the car's own
    motion: :meth:`update`'s ``odometry``), while the track was seen in
    the previous message (:meth:`rover.drive.tracks.Track.cost`); ``lock_frames`` is how
    many consecutive fresh messages must show a new target before it is
    locked (1: at once); ``relock_after_s`` is how long the target must have
    been unseen before another one may be locked; ``max_boxes`` bounds the
    boxes matched per message (:func:`prefilter`). ``camera`` and
    ``person_height_m`` turn boxes into metres (:mod:`rover.drive.estimate`);
    ``lock_min_score`` is the least score of the box a new target is locked on.
    """

    def __init__(self, min_iou: float = 0.2, max_jump: float = 0.15, relock_after_s: float = 1.0,
                 max_size_ratio: float = 1.5, lock_frames: int = 3, max_boxes: int = 16,
                 camera: CameraGeometry | None = None, person_height_m: float = 1.7, lock_min_score: float = 0.6) -> None:
        self.min_iou, self.max_jump, self.max_size_ratio = min_iou, max_jump, max_size_ratio
        self.relock_after_s, self.lock_frames, self.max_boxes = relock_after_s, lock_frames, max_boxes
        self.camera = camera or CameraGeometry()
        self.person_height_m, self.lock_min_score = person_height_m, lock_min_score
        self.target: Target | None = None
        self.locks = 0  # locks made: a new number is a new person, or maybe one (filters start afresh)
        self.occluded = False  # the target is not in the newest message and a nearer box covers where it should be
        self.seen: Target | None = None  # the target as the newest message showed it (None: not in it)
        self.messages = 0  # messages fed to :meth:`update`
        self.tracks: list[Track] = []
        self._target_track: Track | None = None
        self._last_seen: float | None = None
        self._last_occluded: float | None = None  # the newest message that showed the target occluded
        self._tentative: list[Track] = []  # tracks begun from a box that fitted the coasting target only loosely
        self._hid: list[Track] = []  # who hid the target in this lock: never its successor
        self._ego: dict[float, EgoMotion] = {}  # the car's own motion from a track's last capture to the newest one
        self._fits: dict[tuple[int, int], tuple[float, float]] = {}  # the newest message's fits, before the updates
        self._boxes: list[Box] = []  # ... and the tracks' last boxes then

    @classmethod
    def from_config(cls, config: DriveConfig) -> TargetTracker:
        """The tracker the drive's ``[drive]`` settings describe."""
        camera = CameraGeometry(config.camera_hfov_deg, config.camera_vfov_deg, config.camera_height_m,
                                config.camera_tilt_deg, config.pan_range_deg)
        return cls(config.lock_min_iou, config.lock_max_jump, config.relock_after_s, config.lock_max_size_ratio,
                   config.lock_frames, config.track_max_boxes, camera, config.person_height_m, config.lock_min_score)

    @property
    def locked(self) -> bool:
        return self.target is not None

    def others(self) -> list[tuple[Box, float]]:
        """Everyone else in the newest message (the path's check): their box and bearing rate (rad/s, camera frame)."""
        return [(track.last.box, track.bearing_f.v if track.bearing_f.updates >= 2 else 0.0)
                for track in self.tracks if track.matched and track is not self._target_track]

    def unseen_for(self, now: float) -> float | None:
        """Seconds since the locked target was last seen, or None without a lock."""
        return None if self._last_seen is None else now - self._last_seen

    def reset(self) -> None:
        """Forget the lock and every track (the car went back to SAFE)."""
        self.target = None
        self._target_track = None
        self._last_seen = self._last_occluded = None
        self.occluded = False
        self.seen = None
        self.tracks = []
        self._tentative, self._hid = [], []

    def update(self, candidates: Iterable[tuple[Box, float]], now: float, t_capture: float | None = None,
               odometry: Odometry | None = None) -> Target | None:
        """Feed the detections of the followed label in one fresh message.

        ``candidates`` are ``(box, score)`` pairs already filtered by label and
        minimum score; ``t_capture`` is the frame's capture time (default
        ``now``): the tracks' predictions are made for it. ``odometry``: the
        car's own motion over time (None: taken as standing), which the image
        gates take out between a track's last box and this frame.
        Returns the target seen in this message, or None when it is not in
        view (the lock is kept until ``relock_after_s``, longer while it is
        occluded) or a new target is not confirmed yet.
        """
        t = now if t_capture is None else min(t_capture, now)
        self.messages += 1
        self.seen = None
        self._ego = {then: ego_between(odometry, then, t, self.camera) for then in {tr.last.t for tr in self.tracks
                     if tr.matched}} if odometry is not None else {}  # what the image gates take out, once per time
        anchors = [track.last.box for track in self._anchors()]
        boxes = prefilter(list(candidates), anchors, self.max_boxes)
        sightings = [sight(box, score, t, self.camera, self.person_height_m) for box, score in boxes]
        if (self._target_track is not None and not self._target_track.matched and not self._lock_holds(now)
                and now - self._last_seen >= MAX_OCCLUDED_S):  # type: ignore[operator]
            # Held as long as an occlusion may hold it: its track (unseen for more than KEEP_S) takes no box now.
            self.tracks = [tr for tr in self.tracks if tr is not self._target_track]
            self._drop_target()
        target = self._target_track
        coasting = target is not None and not target.matched
        begun = [(Track(seen), next(si for si, s in enumerate(sightings) if s is seen))
                 for seen in self._associate(sightings)]
        for track, _ in begun:
            self.tracks.append(track)
            if coasting and self._loose_fit(target, track.last):  # type: ignore[arg-type]
                self._tentative.append(track)
        if target is not None:
            # The target's own track found them: closely, if they were unseen (see _cost).
            if target.matched:
                self.occluded = False
                self._tentative = []
                self._prune(t, len(sightings))
                return self._see(target, now)
            self.occluded = self._is_occluded(target, t)
            if self.occluded:
                self._last_occluded = now
            self._bar(begun)
            # A loose re-acquisition counts once lock_frames messages in a row confirm it, as a new lock would;
            # meanwhile the lock holds (at most MAX_OCCLUDED_S): no one else is locked while it is confirmed.
            self._tentative = [tr for tr in self._tentative if tr.matched]
            if self._lock_holds(now):
                self._prune(t, len(sightings))
                self._tentative = [tr for tr in self._tentative if any(tr is k for k in self.tracks)]
                back = [tr for tr in self._tentative if tr.run >= self.lock_frames]
                if back:  # a new lock number: the controller's filters start afresh (it may be someone else)
                    self._tentative, self.locks = [], self.locks + 1
                    self.tracks = [tr for tr in self.tracks if tr is not target]
                    return self._see(min(back, key=lambda tr: tr.first_t), now)
                return None
            self._drop_target()  # lost for long enough: another target may be locked
        self._prune(t, len(sightings))
        eligible = [tr for tr in self.tracks if tr.last.score >= self.lock_min_score and not any(tr is o for o in self._hid)]
        best = min((tr for tr in eligible if tr.matched and tr.run >= self.lock_frames), key=self._in_front, default=None)
        if best is None or any(self._in_front(tr) < self._in_front(best) and tr.unseen_s(t) < self.relock_after_s
                               for tr in eligible):
            return None  # someone in front was missed in a frame or two: wait for them, not the one behind
        self.locks += 1
        self._hid = []
        return self._see(best, now)

    # -- association ------------------------------------------------------

    def _cost(self, track: Track, seen: Sighting) -> tuple[float, float] | None:
        """A track's fit of a box; the coasting target's only close (LOOSE_D2) and physically possible."""
        limits = (self.min_iou, self.max_jump, self.max_size_ratio)
        fit = track.cost(seen, self.camera, limits, ego=self._ego.get(track.last.t, STILL) if track.matched else STILL)
        if track is self._target_track and not track.matched:
            held = track.cost(seen, self.camera, limits, held=True)  # the walk extrapolated, or standing: the closer
            fit = held if fit is None or (held is not None and held[1] < fit[1]) else fit
            if fit is not None and (fit[1] > LOOSE_D2 or not reachable(track.last, seen, self.max_jump, self.camera)):
                return None
        return fit

    def _loose_fit(self, target: Track, seen: Sighting) -> bool:
        """``seen`` fits the coasting target only loosely (beyond LOOSE_D2, inside the gate) but is within reach."""
        limits = (self.min_iou, self.max_jump, self.max_size_ratio)
        fits = (target.cost(seen, self.camera, limits), target.cost(seen, self.camera, limits, held=True))
        return any(fit is not None for fit in fits) and reachable(target.last, seen, self.max_jump, self.camera)

    def _associate(self, sightings: Sequence[Sighting]) -> list[Sighting]:
        """Assign sightings to tracks (:func:`rover.drive.assign.assign`), update them; return those no track explains."""
        fits: dict[tuple[int, int], tuple[float, float]] = {}
        for ti, track in enumerate(self.tracks):
            for si, seen in enumerate(sightings):
                fit = self._cost(track, seen)
                if fit is not None:
                    fits[ti, si] = fit
        self._fits, self._boxes = fits, [track.last.box for track in self.tracks]  # before the updates
        chosen = assign({(ti, si): nll for (ti, si), (nll, _) in fits.items()
                         if not self._claimed_by_another(ti, si, fits, sightings[si].t)},
                        {ti for ti, track in enumerate(self.tracks) if track.hits >= max(2, self.lock_frames)})
        for ti, track in enumerate(self.tracks):
            if ti in chosen:
                track.update(sightings[chosen[ti]], fits[ti, chosen[ti]][1])
            else:
                track.missed()
        taken = set(chosen.values())
        return [s for si, s in enumerate(sightings) if si not in taken]

    def _claimed_by_another(self, ti: int, si: int, fits: dict[tuple[int, int], tuple[float, float]], t: float) -> bool:
        """A box is not the target's when another person's track fits it closer, or a hider's closely (the target coasting).

        Asymmetric on purpose: refusing the target its own box costs a frame of coasting; giving it another
        person's box makes the car follow them. A loose fit (beyond LOOSE_D2) yields to tracks unseen for less
        than CLAIM_S; any fit to a person seen apart from the target in its last message (or since).
        """
        if self.tracks[ti] is not self._target_track:
            return False
        mine, target = fits[ti, si][1], self.tracks[ti]
        if not target.matched and any(self.tracks[oi] is o and fits[oi, osi][1] <= LOOSE_D2
                                      for (oi, osi) in fits if osi == si for o in self._hid):
            return True  # a box the track of a person who hid the target fits closely is theirs
        return any(oi != ti and d2 < mine and (self.tracks[oi].unseen_s(t) < CLAIM_S if mine > LOOSE_D2 else
                                               self.tracks[oi].first_t < target.last.t <= self.tracks[oi].last.t)
                   for (oi, osi), (_, d2) in fits.items() if osi == si)

    def _prune(self, t: float, matched: int) -> None:
        """Forget tracks unseen for KEEP_S, and the longest unseen beyond the bound (never the target's)."""
        self.tracks = [tr for tr in self.tracks if tr is self._target_track or tr.unseen_s(t) < KEEP_S]
        limit = MAX_TRACKS_PER_BOX * max(self.max_boxes, matched)
        if len(self.tracks) > limit:
            keep = sorted(self.tracks, key=lambda tr: (tr is not self._target_track, tr.unseen_s(t)))[:limit]
            self.tracks = [tr for tr in self.tracks if any(tr is k for k in keep)]

    def _anchors(self) -> list[Track]:
        """The tracks whose boxes the prefilter keeps near: the target's, else the confirmed ones seen last."""
        if self._target_track is not None:
            return [self._target_track]
        return heapq.nlargest(3, (t for t in self.tracks if t.matched), key=lambda t: t.run)

    # -- lock -------------------------------------------------------------

    def _in_front(self, track: Track) -> tuple[bool, float]:
        """Rank of a lock candidate: its range, up to twice as long at the frame's edge (smaller: in front).

        A box cut by the frame's bottom edge ranks after every whole one: its
        range is only a bound (<= ~0.7 m), so a bag or a chair leg at the
        bottom of the frame would otherwise always be "in front".
        """
        box = track.last.box
        return track.last.kind == "bound", track.last.range_m * (1.0 + 2.0 * abs((box[0] + box[2]) / 2 - 0.5))

    def _lock_holds(self, now: float) -> bool:
        assert self._last_seen is not None
        if now - self._last_seen < self.relock_after_s:
            return True
        if self._tentative and now - self._last_seen < MAX_OCCLUDED_S:
            return True  # a loose re-acquisition is being confirmed
        return (self._last_occluded is not None and now - self._last_occluded < self.relock_after_s
                and now - self._last_seen < MAX_OCCLUDED_S)

    def _is_occluded(self, target: Track, t: float) -> bool:
        """Another person's box covers the target's predicted box: the target is behind them, not gone.

        The occluder is a person tracked since before the target was last
        seen (they walked in while both were in view: not a new track begun
        from the target's own box), seen in this message, nearer by the
        pixels: taller than the predicted box by OCCLUDER_MARGIN and standing
        no higher in the image (its bottom edge at or below the predicted one's).
        """
        expected = target.predicted_box(t, self.camera)
        height = expected[3] - expected[1]
        for other in self.tracks:
            box = other.last.box
            if (other is not target and other.matched and other.first_t < target.last.t
                    and box[3] - box[1] > height * (1.0 + OCCLUDER_MARGIN) and box[3] >= expected[3] - FEET_TOLERANCE
                    and covered(expected, box) >= OCCLUDED_COVER):
                self._hid += [] if any(other is o for o in self._hid) else [other]
                return True
        return False

    def _bar(self, begun: list[tuple[Track, int]]) -> None:
        """Tracks begun (this message) from a box a hider's track fitted, the target unseen: barred as the hider is.

        Within the size gate of the hider's box, too: the metric gate of a track whose box was cut (its range
        filter's uncertainty grown) does not tell a far small box, the target's own as likely as not, from theirs.
        """
        hiders = [ti for ti, tr in enumerate(self.tracks) if any(tr is o for o in self._hid)]
        for track, si in begun:
            if any((ti, si) in self._fits and size_ratio(self._boxes[ti], track.last.box) <= self.max_size_ratio
                   for ti in hiders):
                self._hid.append(track)
                self._tentative = [tr for tr in self._tentative if tr is not track]

    def _drop_target(self) -> None:
        self.target = None
        self._target_track = None
        self._last_seen = self._last_occluded = None
        self.occluded = False
        self._tentative = []

    def _see(self, track: Track, now: float) -> Target:
        self._target_track = track
        self.target = Target(track.last.box, track.last.score)
        self._last_seen = now
        self.seen = self.target
        return self.target
