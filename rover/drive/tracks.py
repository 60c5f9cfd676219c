"""One track per person in view: where they are in metres, where they will be, how well a box fits.

Pure: plain floats, no I/O, times in seconds of the loop's clock (a frame's
capture time). A box becomes a :class:`Sighting`: range and bearing off the
camera's axis through the camera model (:func:`rover.drive.estimate.observe`).
A :class:`Track` follows one person with two constant-velocity Kalman
filters (:class:`rover.drive.kalman.CVFilter`), range and bearing, and says
how well a new sighting fits it (:meth:`Track.cost`). The filters work in
the camera's frame: the car's driving and the head's panning between two
frames are part of the motion they follow (their process noise covers it),
so the lock does not depend on the car moving as commanded (a stuck wheel,
a lagging servo, a car held by hand).

Fits:

- hard gates in the image, from the config, while the person was seen in
  the previous message: the box's height within ``max_size_ratio`` of the
  last box's (appearance), and its centre within ``max_jump`` of the last
  centre or overlapping the last box by ``min_iou`` (a track that coasts,
  unseen, is gated in metres alone: its uncertainty has grown with time).
  The last box is first moved as the car's own motion between the two
  captures moves it (:class:`EgoMotion`, from the controller's odometer:
  :func:`ego_box`): an approach of d metres at range r scales a box by
  r / (r - d), a turn of the car or of the head shifts it. So the gates
  bound what the *person* did in one frame (walked, or the box jittered),
  not the car: a box that grew by what the car's approach explains is the
  person, one that grew 1.3 times more is not. Only the gates use it: the
  filters stay in the camera's frame;
- a statistical gate in metres: the squared Mahalanobis distance of the
  sighting's range and bearing from the prediction, with the prediction's
  uncertainty (it grows while the person is unseen) and the measurement's
  (a box edge jitters by a few per cent: ~6 % of the range), plus the box
  centre's row against the predicted box's (a person at another place on
  the floor whose box happens to be as tall), within :data:`GATE`
  (chi-square, three degrees of freedom, 99.9 %). A person 1 m
  farther than the target predicted at 4 m, 0.2 s after it was last seen,
  is ~4 standard deviations off: not the target, whatever the image says;
- the cost of a fit is the negative log-likelihood (the distance plus the
  log of the uncertainty), so a track unseen for long, whose uncertainty
  has grown, does not take a box from a track that predicts it sharply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from rover.drive.estimate import CameraGeometry, edges_cut, observe
from rover.drive.kalman import CVFilter

Box = tuple[float, float, float, float]

#: Filter tuning (properties of walking people and of box noise, not config).
RANGE_ACCEL_PSD = 2.0  # (m/s^2)^2 s: a walker changes speed by ~1 m/s within a second
BEARING_ACCEL_PSD = 0.5  # (rad/s^2)^2 s
RANGE_NOISE = 0.06  # range std as a fraction of the range (box edges jitter by ~3 % each)
BOUND_RANGE_NOISE = 0.3  # ... of a range that is only an upper bound (the frame's bottom edge on the floor)
BEARING_NOISE_RAD = 0.02  # the box centre's jitter (~1 degree)
INITIAL_BEARING_RATE_VAR = 0.25  # (rad/s)^2: a new track's bearing rate is unknown to +-0.5 rad/s
MAX_PERSON_SPEED_MPS = 3.0
MAX_BEARING_RATE = 2.0  # rad/s
ROW_NOISE = 0.05  # std of the box centre's row, as a share of the box's height (edge jitter, the person's gait)
PITCH_NOISE = 0.02  # std of the row from the car pitching on the floor (fraction of the frame: ~1 degree)
GATE = 16.3  # chi-square with 3 degrees of freedom at 99.9 %
MAX_COAST_S = 1.0  # the mean is extrapolated at most this far past the last sighting (its uncertainty grows on)
MAX_EGO_SCALE = 1.5  # the car's own motion is taken to scale a box by at most this (or 1 / this) between two frames


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two corner boxes; 0 for empty boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def covered(inner: Box, outer: Box) -> float:
    """Share of ``inner``'s area inside ``outer`` (0..1; 1 for an empty ``inner``)."""
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return max(0.0, w) * max(0.0, h) / area if area > 0 else 1.0


def centre_distance(a: Box, b: Box) -> float:
    """Distance between box centres as a fraction of the frame diagonal (0..1)."""
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    return math.hypot(dx, dy) / math.sqrt(2)


def size_ratio(a: Box, b: Box) -> float:
    """Height of the taller box over the shorter one's: 1 for equal heights, inf for an empty box."""
    ha, hb = a[3] - a[1], b[3] - b[1]
    return max(ha, hb) / min(ha, hb) if min(ha, hb) > 0 else math.inf


@dataclass(frozen=True)
class Sighting:
    """One box of one frame captured at ``t``, in metres: range, bearing off the camera's axis (left > 0)."""

    box: Box
    score: float
    t: float
    range_m: float
    bearing_rad: float
    kind: str = "height"  # the range is from the box's height; "feet": from the bottom edge (head cut); "bound": at most

    @property
    def range_var(self) -> float:
        sigma = (RANGE_NOISE if self.kind == "height" else BOUND_RANGE_NOISE) * max(self.range_m, 0.3)
        return sigma * sigma


def sight(box: Box, score: float, t: float, camera: CameraGeometry, person_height_m: float) -> Sighting:
    """The box ``box`` of a frame captured at ``t``, in metres."""
    obs = observe(box, camera, person_height_m)
    kind = "bound" if obs.clipped else "feet" if obs.cut else "height"
    return Sighting(box, score, t, obs.range_m, obs.bearing_rad, kind)


def horizon_row(camera: CameraGeometry) -> float:
    """The image row (0 top .. 1 bottom) of the horizon: a farther person's feet move up towards it."""
    return 0.5 + math.tan(math.radians(camera.tilt_deg)) / (2.0 * math.tan(math.radians(camera.vfov_deg) / 2))


@dataclass(frozen=True)
class EgoMotion:
    """The car's own motion between two captures (from its odometer: the commands, not a measurement).

    ``travel_m`` along the car's heading (< 0 backwards), ``yaw_rad`` the
    heading's turn, ``pan_from_rad`` and ``pan_to_rad`` the head's pan at the
    earlier and the later capture (left > 0).
    """

    travel_m: float = 0.0
    yaw_rad: float = 0.0
    pan_from_rad: float = 0.0
    pan_to_rad: float = 0.0


STILL = EgoMotion()


def ego_motion(then: tuple[float, float, float], now: tuple[float, float, float], path_m: float,
               pan_range_deg: float) -> EgoMotion:
    """The motion between two odometer readings ``(distance towards the target m, pan -1..1, yaw rad)``.

    ``path_m`` is the path length driven in between (the odometer counts it
    unsigned); it is backwards when the distance towards the target fell.
    """
    travel = max(0.0, path_m)
    pan = math.radians(pan_range_deg)
    return EgoMotion(-travel if now[0] < then[0] else travel, now[2] - then[2], then[1] * pan, now[1] * pan)


def image_gate(last: Box, moved: Box, seen: Box, limits: tuple[float, float, float]) -> str | None:
    """Which image gate refuses ``seen`` as the next box of a person whose box was ``last``: "size", "jump" or None.

    ``moved`` is ``last`` as the car's own motion alone moves it
    (:func:`ego_box`); the person may have stood (``moved``) or kept their
    place in the image (``last``: walked with the car, or the car did not
    move as commanded), or anything between. ``limits``: ``(min_iou,
    max_jump, max_size_ratio)``. Size: the height within ``max_size_ratio``
    of the range between the two boxes' heights; of ``last``'s alone when
    ``seen`` is cut by the frame's top or bottom edge and ``moved`` is not
    there (its height is only a bound, and an edge at the frame's that the
    car's motion does not explain is a sign of another, nearer person).
    Jump: the centre within
    ``max_jump`` (of the frame diagonal) of the line between the two
    centres, or overlapping either box by ``min_iou``.
    """
    min_iou, max_jump, max_ratio = limits
    sized = last if any(c and not m for c, m in zip(edges_cut(seen), edges_cut(moved))) else moved
    h, lo, hi = seen[3] - seen[1], min(last[3] - last[1], sized[3] - sized[1]), max(last[3] - last[1], sized[3] - sized[1])
    if not (lo > 0 and h > 0 and lo / max_ratio <= h <= hi * max_ratio):
        return "size"
    if segment_distance(seen, last, moved) > max_jump and max(iou(last, seen), iou(moved, seen)) < min_iou:
        return "jump"
    return None


def segment_distance(box: Box, a: Box, b: Box) -> float:
    """Distance of ``box``'s centre from the line between ``a``'s and ``b``'s centres (fraction of the frame diagonal)."""
    def centre(x: Box) -> tuple[float, float]:
        return (x[0] + x[2]) / 2, (x[1] + x[3]) / 2

    (px, py), (ax, ay), (bx, by) = centre(box), centre(a), centre(b)
    dx, dy = bx - ax, by - ay
    k = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy))) if dx or dy else 0.0
    return math.hypot(px - ax - k * dx, py - ay - k * dy) / math.sqrt(2)


def reachable(last: Sighting, seen: Sighting, max_jump: float, camera: CameraGeometry) -> bool:
    """A person last seen as ``last`` could be ``seen``: no faster sideways than MAX_PERSON_SPEED_MPS.

    The bearing may change by the walk's angle at the nearer of the two
    ranges plus one centre-jump gate (the head's turn and a box's jitter
    in one frame; ``max_jump`` of the diagonal is ``sqrt(2)`` times that of
    the width).
    """
    unseen = max(0.0, seen.t - last.t)
    near = max(0.3, min(last.range_m, seen.range_m))
    jump = max_jump * math.sqrt(2) * math.radians(camera.hfov_deg)
    return abs(seen.bearing_rad - last.bearing_rad) <= math.atan(MAX_PERSON_SPEED_MPS * unseen / near) + jump


class Odometry(Protocol):
    """The car's own motion by time (:class:`rover.drive.odometry.Odometer`)."""

    def at(self, t: float) -> tuple[float, float, float]: ...  # distance towards the target (m), pan (-1..1), yaw (rad)

    def path_since(self, t: float) -> float: ...  # path length (m) driven since t


def ego_between(odometry: Odometry, then: float, t: float, camera: CameraGeometry) -> EgoMotion:
    """The car's own motion from the capture at ``then`` to the one at ``t``, by its odometer (still if ``t <= then``)."""
    if t <= then:
        return STILL
    path = odometry.path_since(then) - odometry.path_since(t)
    return ego_motion(odometry.at(then), odometry.at(t), path, camera.pan_range_deg)


def ego_view(range_m: float, bearing_rad: float, ego: EgoMotion) -> tuple[float, float]:
    """Range and bearing off the camera's axis of a person standing still, after the car's own motion ``ego``.

    The person at ``range_m``, ``bearing_rad`` off the camera's axis at the
    earlier capture; the car moves ``travel_m`` along the chord of its turn
    (half the yaw off its heading), then faces ``yaw_rad`` further left, the
    head at ``pan_to_rad``. Plain geometry in the floor's plane.
    """
    b = bearing_rad + ego.pan_from_rad  # off the car's heading
    x = range_m * math.cos(b) - ego.travel_m * math.cos(ego.yaw_rad / 2)
    y = range_m * math.sin(b) - ego.travel_m * math.sin(ego.yaw_rad / 2)
    return math.hypot(x, y), math.atan2(y, x) - ego.yaw_rad - ego.pan_to_rad


def ego_box(box: Box, range_m: float, bearing_rad: float, ego: EgoMotion, camera: CameraGeometry) -> Box:
    """Where ``box`` of a person at ``range_m`` and ``bearing_rad`` moves when only the car moves (``ego``).

    Its size goes as 1 / range: an approach of d at range r scales it by
    r / (r - d) (within :data:`MAX_EGO_SCALE` of 1: the odometer counts the
    commands, and a car held or slipping would widen the gate by the error),
    the tangents of its top and bottom edges' elevations with it (a point
    at a fixed height above the floor); its centre column goes to the new
    bearing. Clipped to the frame, as a detector's box is.
    """
    if ego == STILL:
        return box
    r1, b1 = ego_view(max(0.3, range_m), bearing_rad, ego)
    scale = max(1.0 / MAX_EGO_SCALE, min(MAX_EGO_SCALE, max(0.3, range_m) / max(0.1, r1)))
    x1, y1, x2, y2 = box
    tan_v = math.tan(math.radians(camera.vfov_deg) / 2)
    half = math.tan(math.radians(camera.hfov_deg) / 2)
    tilt = math.radians(camera.tilt_deg)

    def row(v: float) -> float:  # the image row of a point at v, its elevation's tangent scaled
        a = math.atan(max(-50.0, min(50.0, math.tan(camera.elevation(v)) * scale)))
        return 0.5 - math.tan(max(-1.5, min(1.5, a - tilt))) / (2.0 * tan_v)

    u = 0.5 - math.tan(max(-1.5, min(1.5, b1))) / (2.0 * half)
    w = (x2 - x1) * scale

    def clip(x: float) -> float:
        return max(0.0, min(1.0, x))

    return clip(u - w / 2), clip(row(y1)), clip(u + w / 2), clip(row(y2))


class Track:
    """One person: the last box, range and bearing filters, the run of consecutive messages showing them."""

    def __init__(self, seen: Sighting) -> None:
        self.range_f = CVFilter(RANGE_ACCEL_PSD, max_rate=MAX_PERSON_SPEED_MPS)
        self.bearing_f = CVFilter(BEARING_ACCEL_PSD, initial_rate_var=INITIAL_BEARING_RATE_VAR, max_rate=MAX_BEARING_RATE)
        self.last = seen
        self.first_t = seen.t  # capture time of the first sighting
        self.run = 0  # consecutive messages showing this person (the newest included)
        self.hits = 0
        self.matched = False  # seen in the newest message
        self._predicted: tuple[tuple[float, int], tuple[float, float, float, float]] | None = None
        self._box: tuple[tuple[float, int], Box] | None = None
        self.update(seen)

    def update(self, seen: Sighting, d2: float = 0.0) -> None:
        """Add ``seen``, which fitted the prediction at squared distance ``d2``."""
        # Only ranges from the box's height feed the range filter: the feet's depend on the tilt and field
        # of view, so an error in those would make the two disagree by far more than their noise.
        if seen.kind == "height":
            self.range_f.update(seen.range_m, seen.range_var, seen.t)
        self.bearing_f.update(seen.bearing_rad, BEARING_NOISE_RAD ** 2, seen.t)
        self.last = seen
        self.fit_d2 = d2
        self.run += 1
        self.hits += 1
        self.matched = True

    def missed(self) -> None:
        """The newest message did not show this person."""
        self.run = 0
        self.matched = False

    def unseen_s(self, t: float) -> float:
        return max(0.0, t - self.last.t)

    def predict(self, t: float) -> tuple[float, float, float, float]:
        """Range and bearing at ``t`` and their variances (the mean coasts at most MAX_COAST_S)."""
        key = (t, self.hits)  # one prediction per message and state: a message's boxes are all fitted against it
        if self._predicted is not None and self._predicted[0] == key:
            return self._predicted[1]
        b, _ = self.bearing_f.predict(min(t, self.bearing_f.t + MAX_COAST_S))  # type: ignore[operator]
        if self.range_f.ready:
            r, _ = self.range_f.predict(min(t, self.range_f.t + MAX_COAST_S))  # type: ignore[operator]
            var_r = self.range_f.std(t) ** 2
        else:  # never seen whole: no range to predict
            r, var_r = self.last.range_m, math.inf
        value = (r, b, var_r, self.bearing_f.std(t) ** 2)
        self._predicted = (key, value)
        return value

    def predicted_box(self, t: float, camera: CameraGeometry) -> Box:
        """Where this person's box should be in a frame captured at ``t``.

        The last box moved to the predicted bearing and scaled by the
        predicted range (its size goes as 1 / range, its bottom edge towards
        the horizon row as 1 / range).
        """
        key = (t, self.hits)
        if self._box is not None and self._box[0] == key:
            return self._box[1]
        r, b, var_r, _ = self.predict(t)
        last = self.last
        scale = 1.0
        if math.isfinite(var_r):  # the size changes with the predicted range since the last box
            r_then = self.predict(last.t)[0] if last.t != t else r
            scale = max(0.5, min(2.0, r_then / max(0.1, r)))
        half = math.tan(math.radians(camera.hfov_deg) / 2)
        u = 0.5 - math.tan(max(-1.5, min(1.5, b))) / (2.0 * half)
        x1, y1, x2, y2 = last.box
        w, h = (x2 - x1) * scale, (y2 - y1) * scale
        v0 = horizon_row(camera)
        bottom = v0 + (y2 - v0) * scale
        box = (u - w / 2, bottom - h, u + w / 2, bottom)
        self._box = (key, box)
        return box

    def cost(self, seen: Sighting, camera: CameraGeometry, limits: tuple[float, float, float],
             held: bool = False, ego: EgoMotion = STILL) -> tuple[float, float] | None:
        """How well ``seen`` fits this person: ``(negative log-likelihood, squared Mahalanobis distance)``, None outside the gates.

        ``limits`` are the image gates ``(min_iou, max_jump, max_size_ratio)``.
        ``held``: against the person standing where last seen (the filters'
        estimate then, the box as last seen) with the uncertainty grown since,
        not against their extrapolated walk (a person who stopped, or a rate
        misread from a jittery last box). ``ego``: the car's own motion since
        the last box (the image gates compare with the box it moved).
        """
        min_iou, max_jump, max_ratio = limits
        if self.matched:  # seen in the previous message: the image gates of one frame's change
            range_then = self.predict(self.last.t)[0] if ego != STILL and self.range_f.ready else self.last.range_m
            moved = ego_box(self.last.box, range_then, self.last.bearing_rad, ego, camera)
            if image_gate(self.last.box, moved, seen.box, limits) is not None:
                return None
        expected = self.predicted_box(seen.t, camera)
        r, b, var_r, var_b = self.predict(seen.t)
        if held:
            r, b = self.predict(self.last.t)[:2]
            expected = self.last.box
        s_r, s_b = var_r + seen.range_var, var_b + BEARING_NOISE_RAD ** 2
        row, row_seen = (expected[1] + expected[3]) / 2, (seen.box[1] + seen.box[3]) / 2
        # the predicted row moves towards the horizon as 1 / range: its spread from the range's
        drow_dr = (row - horizon_row(camera)) / max(0.1, r)
        s_row = (ROW_NOISE * (expected[3] - expected[1])) ** 2 + PITCH_NOISE ** 2
        d2 = (seen.bearing_rad - b) ** 2 / s_b
        if math.isfinite(var_r):
            s_row += drow_dr ** 2 * var_r
            range_error = seen.range_m - r
            if seen.kind == "bound":
                range_error = min(0.0, range_error)  # the person is at most that far: any nearer prediction fits
            elif seen.kind == "feet":
                range_error = 0.0  # another measure (tilt, field of view): the image gates and the row decide
            d2 += range_error ** 2 / s_r
        else:
            s_r = 1.0
        d2 += (row_seen - row) ** 2 / s_row
        if not d2 <= GATE:
            return None
        return d2 + math.log(s_r * s_b * s_row), d2
