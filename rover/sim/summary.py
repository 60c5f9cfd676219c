"""The numbers a run is judged by, from the world's trace. Pure: numpy only.

Distances are from the camera to the followed person's near surface (what
the box height measures), in metres. "Stopped" is measured three ways after
the last fresh detection (the last published frame showing the person, or
the last frame at all when the detector died), each as the first moment
from which it holds to the end of the run:

- ``motors_off_s``: the throttle command is below the motors' dead band, so
  the wheels are no longer driven;
- ``stop_command_s``: the throttle command is exactly 0;
- ``standstill_s``: the car no longer moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from rover.sim.world import TRACE_COLUMNS, Frame

_COL = {name: i for i, name in enumerate(TRACE_COLUMNS)}


@dataclass(frozen=True)
class Criteria:
    """The closed-loop pass marks (metres, seconds, fractions).

    ``band_m``: the drive's ``follow_distance_m`` (the defaults here are an
    example; :meth:`for_drive` takes them from the drive's config) from
    0.5 m inside to 1.0 m beyond, the lag a follower may have while the
    person walks. ``stop_distance_m``: the drive's; nearer than this is a
    near-collision. ``travel_bound_m``: the drive's bound on the distance
    travelled after the capture of the last fresh detection it acted on.
    """

    band_m: tuple[float, float] = (2.0, 3.5)
    stop_distance_m: float = 1.0
    travel_bound_m: float = 1.5
    follow_distance_m: float = 2.5

    @classmethod
    def for_drive(cls, drive: Any) -> "Criteria":
        """The marks for a drive configured as ``drive`` (a :class:`rover.drive.config.DriveConfig`)."""
        follow = drive.follow_distance_m
        return cls(band_m=(follow - 0.5, follow + 1.0), stop_distance_m=drive.stop_distance_m,
                   travel_bound_m=drive.travel_bound_m, follow_distance_m=follow)


def _held_from(t: np.ndarray, ok: np.ndarray, start: float) -> float | None:
    """First time >= start from which ``ok`` holds to the end, or None."""
    after = t >= start
    if not after.any() or not ok[after][-1]:
        return None
    bad = np.nonzero(after & ~ok)[0]
    first = np.nonzero(after)[0][0] if bad.size == 0 else bad[-1] + 1
    return float(max(t[first], start))


def bearings(trace: np.ndarray, people: np.ndarray) -> np.ndarray:
    """Angle (rad, left > 0) of each person seen from the camera, off the car's heading."""
    dx = people[:, :, 0] - trace[:, _COL["cam_x"], None]
    dy = people[:, :, 1] - trace[:, _COL["cam_y"], None]
    angle = np.arctan2(dy, dx) - trace[:, _COL["heading"], None]
    return np.arctan2(np.sin(angle), np.cos(angle))


def summarise(trace: np.ndarray, people: np.ndarray, published: Sequence[Frame], *,
              kill_at: float | None, deadband_duty: float, criteria: Criteria,
              acted: Sequence[float] | None = None) -> dict[str, Any]:
    """The JSON summary of one run.

    ``trace`` has the columns of :data:`rover.sim.world.TRACE_COLUMNS`;
    ``people`` is (rows x people x 3): x, y and 1.0 while the person is there
    (not hidden); ``published`` are the frames that reached the drive;
    ``acted`` the publish times of those in which the drive saw its target
    (whoever it had locked). ``travel_after_last_capture_m`` is measured from
    the capture of the newest of those (the drive's bound is from the newest
    capture it acts on: after a re-lock onto someone else, theirs; after
    frames it missed the person in, the one before), else from the last frame
    showing the followed person.
    """
    people_present = people[:, :, 2] > 0.5
    t = trace[:, _COL["t"]]
    dist = trace[:, _COL["target_distance"]]
    alive = t < kill_at if kill_at is not None else np.ones_like(t, dtype=bool)
    walk = people_present[:, 0] & alive
    in_view = trace[:, _COL["target_in_view"]] > 0.5
    lo, hi = criteria.band_m
    out: dict[str, Any] = {
        "duration_s": round(float(t[-1]) if t.size else 0.0, 3),
        "frames_published": len(published),
        "band_m": list(criteria.band_m),
        "stop_distance_m": criteria.stop_distance_m,
    }
    if walk.any():
        d = dist[walk]
        out.update(
            follow_distance_mean_m=round(float(d.mean()), 3),
            follow_distance_max_m=round(float(d.max()), 3),
            in_band_share=round(float(((d >= lo) & (d <= hi)).mean()), 3),
            in_view_share=round(float(in_view[walk].mean()), 3),
            range_error_mean_m=round(float(np.abs(d - criteria.follow_distance_m).mean()), 3),
        )
        steer = trace[walk, _COL["steering_cmd"]]
        signs = np.sign(steer[np.abs(steer) > 0.05])
        span = float(t[walk][-1] - t[walk][0]) if walk.sum() > 1 else 0.0
        out["steer_sign_changes_per_s"] = round(float((np.diff(signs) != 0).sum()) / span, 3) if span > 0 else 0.0
    nearest = trace[:, _COL["min_distance"]]
    out["closest_approach_m"] = round(float(nearest[np.isfinite(nearest)].min()), 3) if np.isfinite(nearest).any() else None
    out["distance_travelled_m"] = round(float(np.hypot(np.diff(trace[:, _COL["car_x"]]), np.diff(trace[:, _COL["car_y"]])).sum()), 3)
    seen = [f.t_publish for f in published if f.sees(0)]
    if kill_at is not None:
        last = max((f.t_publish for f in published), default=None)
        out["last_detection_t"] = last
        reason = "detector_died"
    else:
        last = seen[-1] if seen else None
        out["last_detection_t"] = last
        reason = "target_vanished" if not people_present[-1, 0] or not in_view[-1] else None
    out["stop_reason"] = reason
    last_capture = None
    if reason is not None and last is not None:
        newest = max(acted) if acted else last
        frames = [f for f in published if f.t_publish == newest]
        last_capture = frames[0].t_capture if frames else None
    if last_capture is not None:
        after = t >= last_capture
        xy = trace[after][:, [_COL["car_x"], _COL["car_y"]]]
        out["travel_after_last_capture_m"] = round(float(np.hypot(*np.diff(xy, axis=0).T).sum()), 3) if len(xy) > 1 else 0.0
        out["travel_bound_m"] = criteria.travel_bound_m
    if reason is not None and last is not None:
        throttle = np.abs(trace[:, _COL["throttle_cmd"]])
        for key, ok in (("motors_off_s", throttle < deadband_duty), ("stop_command_s", throttle == 0.0),
                        ("standstill_s", trace[:, _COL["speed"]] == 0.0)):
            held = _held_from(t, ok, last)
            out[key] = None if held is None else round(held - last, 3)
    if people.shape[1] > 1:
        tail = t >= t[-1] - 2.0
        mean_abs = np.abs(bearings(trace, people)[tail]).mean(axis=0)
        out["followed_person"] = int(np.argmin(mean_abs))
        out["final_bearing_deg"] = [round(math.degrees(float(b)), 1) for b in mean_abs]
    return out


def lost_moments(published: Sequence[Frame]) -> list[float]:
    """Publish times of frames where the followed person was not seen after being seen."""
    moments, was_seen = [], False
    for frame in published:
        now_seen = frame.sees(0)
        if was_seen and not now_seen:
            moments.append(frame.t_publish)
        was_seen = now_seen
    return moments
