"""The ``[drive]`` section of the rover config file.

Every number the follower uses lives here, with its unit and the reason for
its default, so the reference table in ``docs/drive.md`` is generated from the
same text (``rover.core.config.reference``). The section is strict: an unknown key
or a value of the wrong type is refused by ``rover.core.config.load_sections``; the
cross-field checks below turn a nonsensical combination into a ValueError that
the loader reports as one line naming ``drive``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from rover.core import endpoints
from rover.core.config import doc
from rover.core.messages import MAX_STRING

#: The detector's default endpoint (its ``[stream]`` section).
DEFAULT_CONNECT = endpoints.DETECTIONS
#: Where the drive publishes its own status (topic ``drive``).
DEFAULT_PUBLISH = endpoints.DRIVE_STATUS


@dataclass(frozen=True)
class DriveConfig:
    """Settings of ``rover-drive``; every time in seconds, every fraction 0..1."""

    follow: str = doc("label of the object to follow (a class name of the detector's model)", "person")
    connect: str = doc("ZeroMQ endpoint of the detector's detection stream", DEFAULT_CONNECT)
    publish: str = doc("ZeroMQ endpoint the drive binds to publish its status (topic `drive`); empty to disable", DEFAULT_PUBLISH)
    backend: str = doc("chassis backend: `picar-b` (the 2019-23 kit, [picar_b]), `picar-b2` (the kit sold since 2024, [picar_b2]), `log` (prints commands, a dry run), `sim` (the simulator's car)", "picar-b")
    tick_s: float = doc("control period: the poll timeout of the loop, so timers run without messages (20 Hz)", 0.05)
    # Freshness, dead-man and the speed limit: they follow the stream's measured rate and latency (docs/drive.md)
    max_age_s: float = doc("hard upper bound of the freshness limit: a detection older than this (capture to receipt, monotonic clock of the same host) is always stale; below it the limit follows the measured latency", 1.0)
    max_age_min_s: float = doc("lower bound of the freshness limit, however fast the stream", 0.25)
    deadman_s: float = doc("hard upper bound of the dead-man: no fresh message for this long and the motors are off, steering neutral, back to SAFE; below it the dead-man is 1.5 measured frame periods", 1.2)
    deadman_min_s: float = doc("lower bound of the dead-man, however fast the stream", 0.3)
    travel_bound_m: float = doc("the car stops before travelling this far from where it was at the capture of the newest detection it acts on (the speed limit is this over the freshness limit + dead-man + stop_time_s: 2.0 m gives ~1.3-1.5 m/s at 3 frames/s, headroom above a 1 m/s walker)", 2.0)
    stop_time_s: float = doc("time from motors off to standstill (an assumption for the kit's gear motors; the simulator's car needs ~0.2 s)", 0.2)
    arm_count: int = doc("consecutive fresh messages needed to leave SAFE (K)", 3)
    min_score: float = doc("detections of the followed label below this score are ignored", 0.5)
    # Target lock
    lock_min_iou: float = doc("a detection continues the locked target when its box overlaps the last one at least this much (IoU) ...", 0.2)
    lock_max_jump: float = doc("... or when its centre moved less than this (fraction of the frame diagonal)", 0.15)
    lock_max_size_ratio: float = doc("... and only when its height is within this factor of the last one's (1.3: 1/1.3 to 1.3 times), so a person nearer or farther is not the target", 1.3)
    lock_frames: int = doc("a new target is locked only after this many consecutive fresh messages show it (boxes continuing each other), so a one-frame false box never starts the car", 3)
    lock_min_score: float = doc("a new target is locked only on a box of at least this score (the detector's false boxes score lower); among those, the person in front, a box cut by the frame's bottom edge (its range only a bound) after every whole one", 0.6)
    relock_after_s: float = doc("a different target may be locked only after the old one has been unseen this long", 1.0)
    track_max_boxes: int = doc("boxes of the followed label matched per message: the best scores and those nearest the target (bounds the cost of a 1000-box message)", 16)
    # The target in metres (camera model: docs/drive.md)
    person_height_m: float = doc("assumed height of the person followed (metres); the range is estimated from it and the box", 1.7)
    camera_hfov_deg: float = doc("camera's horizontal field of view (degrees; Pi camera v2: 62.2)", 62.2)
    camera_vfov_deg: float = doc("camera's vertical field of view (degrees; Pi camera v2: 48.8)", 48.8)
    camera_height_m: float = doc("height of the camera above the floor (metres)", 0.15)
    camera_tilt_deg: float = doc("camera pitch above the horizontal with the tilt servo centred (degrees)", 12.0)
    pan_range_deg: float = doc("head angle (degrees) at full pan (+-1)", 60.0)
    # Speed: the target's speed along the line of sight plus a damped correction of the range error
    follow_distance_m: float = doc("distance (camera to the person) the car keeps from a standing person (a walking one: + follow_gap_s x their speed); at least stop_distance_m + travel_bound_m", 3.2)
    follow_gap_s: float = doc("a walking person is trailed this many seconds of their own speed farther back than follow_distance_m (0.6 s: 3.8 m at 1 m/s), so a stop the car learns of late (~1 s at 3 frames/s) still ends near the follow distance; 0: always at follow_distance_m; at most 3", 0.6)
    stop_distance_m: float = doc("never drive towards a person nearer than this (metres)", 1.0)
    path_half_width_m: float = doc("half the width of the car's path straight ahead (metres: half the car's width + a margin for a person's own width): any person seen in it, not only the one followed, caps the speed by stop_distance_m; one whose box is cut by the frame's bottom edge stops forward motion", 0.4)
    range_gain: float = doc("speed per metre of range error (1/s): how fast the car closes a gap on top of the target's own speed", 1.2)
    top_speed_mps: float = doc("the car's speed at throttle 1 (the [picar_b] max_duty; with min_duty at the motors' dead band, speed is linear in throttle); measure it on your kit", 1.2)
    max_throttle: float = doc("speed limit: largest forward throttle (fraction of the motors' maximum duty)", 1.0)
    # The motors' dead band: creep steadily or stand (rover/drive/motion.py)
    min_speed_mps: float = doc("slowest speed the car drives at while moving (m/s): the motors hold it steadily (at [picar_b] min_duty a kit may only judder); 0: any speed", 0.1)
    start_speed_mps: float = doc("a standing car starts only once the control law asks for at least this speed (m/s); at least min_speed_mps (both at most max_throttle x top_speed_mps)", 0.15)
    stop_speed_mps: float = doc("a moving car stands once the control law has asked for this speed or less (m/s; at most min_speed_mps) for stand_after_s; the safety stops never wait", 0.0)
    stand_after_s: float = doc("... in a row (seconds; meanwhile it creeps at min_speed_mps; at once while the person is not seen): the estimate's noise near the follow distance asks for a stop for a frame or two, a person who stopped keeps asking", 0.5)
    allow_reverse: bool = doc("back away when the person is nearer than follow_distance_m - reverse_margin_m", False)
    reverse_margin_m: float = doc("range below follow_distance_m before reversing (only with allow_reverse)", 0.5)
    max_reverse: float = doc("largest reverse throttle magnitude (only with allow_reverse)", 0.3)
    accel_per_s: float = doc("acceleration ramp: throttle may grow at most this much per second", 2.5)
    decel_per_s: float = doc("braking ramp while following (limits, dead-man, stop distance and exits cut at once)", 2.0)
    # Steering from bearing (left > 0) and bearing rate
    steer_gain: float = doc("turn rate wanted per radian of bearing to the person (1/s; bearing off the car's heading, head pan included)", 1.5)
    steer_rate_gain: float = doc("share of the person's own bearing rate (as seen from the car's odometry frame) added to the turn rate: 1 turns with them", 0.7)
    wheelbase_m: float = doc("distance between the axles (metres; turn rate = speed x tan(wheel angle) / wheelbase)", 0.14)
    max_steer_deg: float = doc("front wheel angle at full steering (degrees; the kit's linkage)", 30.0)
    steer_deadband_deg: float = doc("bearings smaller than this give no steering (degrees)", 2.0)
    steer_rate_per_s: float = doc("steering may change at most this much per second (full lock to centre in 0.25 s at 4)", 4.0)
    # Camera head
    pan_follow: bool = doc("the pan servo points the camera at the person's estimated bearing (keeps a turning walker in view)", True)
    # Losing the target
    lost_coast_s: float = doc("LOST: after this long (or when the newest capture of the person is older than the freshness limit + dead-man: at once) the car stops; then SEARCH or STOPPED", 1.0)
    search: bool = doc("after LOST, sweep the camera head slowly looking for the target (car stopped)", False)
    search_s: float = doc("SEARCH lasts at most this long before STOPPED", 6.0)
    search_pan_rate: float = doc("head sweep speed in SEARCH (pan units per second)", 0.5)
    search_pan_limit: float = doc("head sweep amplitude in SEARCH (pan units either side)", 0.8)
    # Ultrasonic bumper
    bumper_m: float = doc("stop moving forward when the ultrasonic range is closer than this (metres); 0 disables", 0.3)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, not {value!r}")
        positive = ("tick_s", "max_age_s", "max_age_min_s", "deadman_s", "deadman_min_s", "travel_bound_m",
                    "relock_after_s", "steer_rate_per_s", "accel_per_s", "decel_per_s", "lost_coast_s", "search_s",
                    "person_height_m", "camera_hfov_deg", "camera_vfov_deg", "camera_height_m", "pan_range_deg",
                    "follow_distance_m", "stop_distance_m", "path_half_width_m", "top_speed_mps", "range_gain", "wheelbase_m", "max_steer_deg")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be greater than 0, not {getattr(self, name)}")
        fractions = ("min_score", "lock_min_score", "lock_min_iou", "lock_max_jump", "max_throttle", "max_reverse", "search_pan_limit")
        for name in fractions:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {getattr(self, name)}")
        for name in ("stop_time_s", "follow_gap_s", "steer_gain", "steer_rate_gain", "steer_deadband_deg", "reverse_margin_m"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be 0 or more, not {getattr(self, name)}")
        if not self.follow_gap_s <= MAX_FOLLOW_GAP_S:
            raise ValueError(f"follow_gap_s must be at most {MAX_FOLLOW_GAP_S:g} s (seconds of the person's speed, e.g. 0.6), "
                             f"not {self.follow_gap_s}")
        if self.arm_count < 1:
            raise ValueError(f"arm_count must be at least 1, not {self.arm_count}")
        if self.lock_frames < 1:
            raise ValueError(f"lock_frames must be at least 1, not {self.lock_frames}")
        if self.track_max_boxes < 2:
            raise ValueError(f"track_max_boxes must be at least 2, not {self.track_max_boxes}")
        if not self.lock_max_size_ratio > 1.0:
            raise ValueError(f"lock_max_size_ratio must be greater than 1, not {self.lock_max_size_ratio}")
        if self.max_age_min_s > self.max_age_s:
            raise ValueError(f"max_age_min_s ({self.max_age_min_s}) must not exceed max_age_s ({self.max_age_s})")
        if self.deadman_min_s > self.deadman_s:
            raise ValueError(f"deadman_min_s ({self.deadman_min_s}) must not exceed deadman_s ({self.deadman_s})")
        if self.tick_s >= self.deadman_min_s:
            raise ValueError(f"tick_s ({self.tick_s}) must be shorter than deadman_min_s ({self.deadman_min_s})")
        for name in ("camera_hfov_deg", "camera_vfov_deg"):
            if not getattr(self, name) < 180:
                raise ValueError(f"{name} must be less than 180 degrees (a pinhole camera), not {getattr(self, name)}")
        if not self.pan_range_deg <= 90:
            raise ValueError(f"pan_range_deg must be at most 90 degrees, not {self.pan_range_deg}")
        if not self.max_steer_deg < 90:
            raise ValueError(f"max_steer_deg must be less than 90 degrees, not {self.max_steer_deg}")
        for name in ("max_age_s", "deadman_s"):
            if not getattr(self, name) <= MAX_LIMIT_S:
                raise ValueError(f"{name} must be at most {MAX_LIMIT_S:g} s (the car acts on information this old), "
                                 f"not {getattr(self, name)}")
        if not abs(self.camera_tilt_deg) < 60:
            raise ValueError(f"camera_tilt_deg must be within +-60 degrees, not {self.camera_tilt_deg}")
        if self.follow_distance_m < self.stop_distance_m + self.travel_bound_m - 1e-9:
            raise ValueError(
                f"follow_distance_m ({self.follow_distance_m}) must be at least stop_distance_m + travel_bound_m "
                f"({self.stop_distance_m + self.travel_bound_m:g}), so a stop on old information ends outside the stop distance")
        if not self.follow.strip():
            raise ValueError("follow must name a label, e.g. \"person\"")
        if len(self.follow) > MAX_STRING:  # the drive status schema's limit, as a model's labels
            raise ValueError(f"follow is {len(self.follow)} characters long; a label has at most {MAX_STRING}")
        if not self.stop_speed_mps <= self.min_speed_mps <= self.start_speed_mps:
            raise ValueError(f"the motion thresholds must satisfy stop_speed_mps ({self.stop_speed_mps:g}) <= min_speed_mps "
                             f"({self.min_speed_mps:g}) <= start_speed_mps ({self.start_speed_mps:g})")
        for name in ("min_speed_mps", "stand_after_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be 0 or more, not {getattr(self, name)}")
        if self.bumper_m < 0:
            raise ValueError(f"bumper_m must be 0 (off) or a distance in metres, not {self.bumper_m}")


#: The largest freshness limit and dead-man a config may set (seconds).
MAX_LIMIT_S = 5.0
MAX_FOLLOW_GAP_S = 3.0  # s: 3 s of a 1 m/s walk is 3 m beyond the follow distance, already out of the band


#: Keys of earlier releases, and what replaced them: an old config file is refused with this line (exit 78).
REMOVED_KEYS = {
    "target_height": "follow_distance_m (metres; the range is estimated from the box with person_height_m and the camera model)",
    "speed_gain": "range_gain (speed per metre of range error, on top of the person's own speed)",
    "latency_nominal_s": "travel_bound_m (the speed limit now follows the stream's measured rate and latency)",
    "latency_min_scale": "travel_bound_m (the speed limit now follows the stream's measured rate and latency)",
    "latency_smoothing": "travel_bound_m (the speed limit now follows the stream's measured rate and latency)",
    "steer_kp": "steer_gain (turn rate per radian of bearing, 1/s)",
    "steer_kd": "steer_rate_gain (share of the person's bearing rate added to the turn rate)",
    "steer_ki": "nothing: steering on the bearing needs no integral; delete the key",
    "steer_deadband": "steer_deadband_deg (degrees of bearing)",
    "pan_gain": "nothing: with pan_follow the head points at the estimated bearing; delete the key",
    "pan_to_steer": "nothing: steering follows the bearing, head pan included; delete the key",
    "reverse_margin": "reverse_margin_m (metres)",
}
DriveConfig.REMOVED_KEYS = REMOVED_KEYS  # type: ignore[attr-defined]  # read by rover.core.config.from_dict
