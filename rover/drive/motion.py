"""The motors' dead band: the car either creeps steadily or stands, it never chatters between.

Pure: plain floats, no I/O. The backend maps a throttle in 0..1 onto
``[picar_b] min_duty..max_duty``, so any throttle above 0, however small,
is at least ``min_duty``: a step from standing, and at a duty the geared
motors may hold only unevenly. A control law near the follow distance asks
for small speeds that the estimate's noise pushes across 0 a few times a
second; passed on as they are, the motors would start and stop with every
frame.

:class:`MotionGate` turns the law's wanted speed into one the motors can
hold, with hysteresis (all speeds in m/s):

- a standing car starts once the law asks for at least ``start_speed_mps``;
- a moving car drives at least ``min_speed_mps`` (the slowest speed the
  motors hold steadily) and stands once the law has asked for
  ``stop_speed_mps`` or less (at most ``min_speed_mps``) for
  ``stand_after_s`` in a row, at once while the person is not seen;
  meanwhile it creeps at ``min_speed_mps``. The estimate's noise pushes
  the law's speed under 0 for a frame or two (measured in the simulator at
  5 frames/s: 0.1-0.4 s); a person who stopped keeps it there;
- the safety caps always win: when the smallest cap (stop distance, travel
  budget, speed limit, a cut box: see :mod:`rover.drive.control`) is below
  ``min_speed_mps``, the car stands at once (it cannot move that slowly), and
  the speed is never above the cap. The dead-man, stale information, the
  bumper and the states that stop the car act after this gate, unchanged.

With every threshold and ``stand_after_s`` 0 the gate passes the law's
speed (clipped at 0) on as it is. Time is passed in (seconds of the loop's
clock).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MotionGate:
    """Hysteresis between standing and creeping; :meth:`speed` once per control tick."""

    min_speed_mps: float = 0.0
    start_speed_mps: float = 0.0
    stop_speed_mps: float = 0.0
    stand_after_s: float = 0.0
    moving: bool = False
    below_since: float | None = None  # when the law began asking for less than stop_speed_mps (moving)

    def __post_init__(self) -> None:
        if not self.stop_speed_mps <= self.min_speed_mps <= self.start_speed_mps:
            raise ValueError(f"the motion thresholds must satisfy stop_speed_mps ({self.stop_speed_mps}) <= "
                             f"min_speed_mps ({self.min_speed_mps}) <= start_speed_mps ({self.start_speed_mps})")
        if not self.stand_after_s >= 0:
            raise ValueError(f"stand_after_s must be 0 or more, not {self.stand_after_s}")

    def speed(self, wanted_mps: float, cap_mps: float, now: float, seen: bool = True) -> float:
        """The forward speed to drive at ``now`` (m/s): 0, or between ``min_speed_mps`` and ``cap_mps``.

        ``wanted_mps`` is the control law's speed before any cap (it may be
        negative); ``cap_mps`` the smallest of the safety caps (>= 0). With
        ``seen`` False (the person missing from the newest frame) a stop of
        the law is not debounced: there is no estimate's noise to ride out.
        """
        if cap_mps <= 0.0 or cap_mps < self.min_speed_mps:
            self.stand()  # a cap the motors cannot go under: stand at once
            return 0.0
        if not self.moving:
            if wanted_mps < self.start_speed_mps or wanted_mps <= 0.0:
                return 0.0
            self.moving = True
        if wanted_mps <= self.stop_speed_mps:
            if self.below_since is None:
                self.below_since = now
            if now - self.below_since >= self.stand_after_s or not seen:
                self.stand()
                return 0.0
            return min(cap_mps, self.min_speed_mps)  # creeping while the law keeps asking to stand
        self.below_since = None
        return min(cap_mps, max(wanted_mps, self.min_speed_mps))

    def stand(self) -> None:
        """Standing (stopped by the law, a cap, a state, the dead-man, reversing): a start needs start_speed_mps again."""
        self.moving = False
        self.below_since = None
