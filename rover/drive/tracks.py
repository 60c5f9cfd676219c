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
  unseen, is gated in metres alone: its uncertainty has grown with time);
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

from rover.drive.estimate import CameraGeometry, observe
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
             held: bool = False) -> tuple[float, float] | None:
        """How well ``seen`` fits this person: ``(negative log-likelihood, squared Mahalanobis distance)``, None outside the gates.

        ``limits`` are the image gates ``(min_iou, max_jump, max_size_ratio)``.
        ``held``: against the person standing where last seen (the filters'
        estimate then, the box as last seen) with the uncertainty grown since,
        not against their extrapolated walk (a person who stopped, or a rate
        misread from a jittery last box).
        """
        min_iou, max_jump, max_ratio = limits
        if self.matched:  # seen in the previous message: the image gates of one frame's change
            last = self.last.box
            if size_ratio(last, seen.box) > max_ratio:
                return None
            if centre_distance(last, seen.box) > max_jump and iou(last, seen.box) < min_iou:
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
