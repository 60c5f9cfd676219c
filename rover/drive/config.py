"""The ``[drive]`` section of the rover config file.

Every number the follower uses lives here, with its unit and the reason for
its default, so the reference table in ``docs/drive.md`` is generated from the
same text (``rover.core.config.reference``). The section is strict: an unknown key
or a value of the wrong type is refused by ``rover.core.config.load_sections``; the
cross-field checks below turn a nonsensical combination into a ValueError that
the loader reports as one line naming ``drive``.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    # Freshness and arming
    max_age_s: float = doc("a detection older than this (capture to receipt, monotonic clock of the same host) is stale and ignored", 0.5)
    deadman_s: float = doc("no fresh message for this long: motors off, steering neutral, back to SAFE (ROS diff_drive's default command timeout)", 0.5)
    arm_count: int = doc("consecutive fresh messages needed to leave SAFE (K)", 3)
    min_score: float = doc("detections of the followed label below this score are ignored", 0.5)
    # Target lock
    lock_min_iou: float = doc("a detection continues the locked target when its box overlaps the last one at least this much (IoU) ...", 0.2)
    lock_max_jump: float = doc("... or when its centre moved less than this (fraction of the frame diagonal)", 0.15)
    lock_max_size_ratio: float = doc("... and only when its height is within this factor of the last one's (1.5: 1/1.5 to 1.5 times), so a person nearer or farther is not the target", 1.5)
    lock_frames: int = doc("a new target is locked only after this many consecutive fresh messages show it (boxes continuing each other), so a one-frame false box never starts the car", 3)
    relock_after_s: float = doc("a different target may be locked only after the old one has been unseen this long", 1.0)
    # Steering (PD on the horizontal offset, -1 right .. +1 left)
    steer_kp: float = doc("proportional gain: steering per unit offset (offset 1 = target at the frame's edge)", 1.2)
    steer_kd: float = doc("derivative gain: steering per unit offset change per second", 0.1)
    steer_ki: float = doc("integral gain (per unit offset-second); reset whenever the target is lost", 0.0)
    steer_deadband: float = doc("offsets smaller than this (fraction of the half-width) give no steering", 0.05)
    steer_rate_per_s: float = doc("steering may change at most this much per second (full lock to centre in 0.25 s at 4)", 4.0)
    # Speed from box height (the distance proxy)
    target_height: float = doc("box height (fraction of the frame) at which the car is close enough and stops", 0.6)
    speed_gain: float = doc("throttle per unit relative height error ((target - height) / target)", 1.5)
    max_throttle: float = doc("speed limit: largest forward throttle (fraction of the motors' maximum duty)", 0.6)
    allow_reverse: bool = doc("back away when the target is closer than target_height + reverse_margin", False)
    reverse_margin: float = doc("height beyond target_height before reversing (only with allow_reverse)", 0.15)
    max_reverse: float = doc("largest reverse throttle magnitude (only with allow_reverse)", 0.3)
    accel_per_s: float = doc("acceleration ramp: throttle may grow at most this much per second", 1.0)
    decel_per_s: float = doc("braking ramp while following or coasting (dead-man and exits stop at once)", 2.0)
    # Latency scaling
    latency_nominal_s: float = doc("detection latency up to which gains and speed are used in full", 0.15)
    latency_min_scale: float = doc("gains and speed never scale below this fraction, however slow the model (0.4 keeps 0.6 throttle above the motors' ~15 % stall duty)", 0.4)
    latency_smoothing: float = doc("weight of the newest latency in its moving average (1 = no smoothing)", 0.3)
    # Camera head
    pan_follow: bool = doc("the pan servo keeps the target centred and steering follows the pan angle", False)
    pan_gain: float = doc("pan change per unit offset per fresh detection (with pan_follow)", 0.3)
    pan_to_steer: float = doc("steering per unit pan angle (with pan_follow)", 1.0)
    # Losing the target
    lost_coast_s: float = doc("LOST: coast this long (steering neutral, slowing at decel_per_s) before SEARCH or STOPPED", 1.0)
    search: bool = doc("after LOST, sweep the camera head slowly looking for the target (car stopped)", False)
    search_s: float = doc("SEARCH lasts at most this long before STOPPED", 6.0)
    search_pan_rate: float = doc("head sweep speed in SEARCH (pan units per second)", 0.5)
    search_pan_limit: float = doc("head sweep amplitude in SEARCH (pan units either side)", 0.8)
    # Ultrasonic bumper
    bumper_m: float = doc("stop moving forward when the ultrasonic range is closer than this (metres); 0 disables", 0.3)

    def __post_init__(self) -> None:
        positive = ("tick_s", "max_age_s", "deadman_s", "relock_after_s", "target_height", "steer_rate_per_s",
                    "accel_per_s", "decel_per_s", "latency_nominal_s", "lost_coast_s", "search_s")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be greater than 0, not {getattr(self, name)}")
        fractions = ("min_score", "lock_min_iou", "lock_max_jump", "steer_deadband", "target_height",
                     "max_throttle", "max_reverse", "latency_min_scale", "search_pan_limit")
        for name in fractions:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {getattr(self, name)}")
        if not 0.0 < self.latency_smoothing <= 1.0:
            raise ValueError(f"latency_smoothing must be in (0, 1], not {self.latency_smoothing}")
        if self.arm_count < 1:
            raise ValueError(f"arm_count must be at least 1, not {self.arm_count}")
        if self.lock_frames < 1:
            raise ValueError(f"lock_frames must be at least 1, not {self.lock_frames}")
        if not self.lock_max_size_ratio > 1.0:
            raise ValueError(f"lock_max_size_ratio must be greater than 1, not {self.lock_max_size_ratio}")
        if self.tick_s >= self.deadman_s:
            raise ValueError(f"tick_s ({self.tick_s}) must be shorter than deadman_s ({self.deadman_s})")
        if not self.follow.strip():
            raise ValueError("follow must name a label, e.g. \"person\"")
        if len(self.follow) > MAX_STRING:  # the drive status schema's limit, as a model's labels
            raise ValueError(f"follow is {len(self.follow)} characters long; a label has at most {MAX_STRING}")
        if self.bumper_m < 0:
            raise ValueError(f"bumper_m must be 0 (off) or a distance in metres, not {self.bumper_m}")
