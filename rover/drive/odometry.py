"""Dead reckoning from the commands: distance towards the target, path length, heading, head pan over time.

Pure: plain floats, time passed in. The PiCar-B has no wheel encoders, so
the controller integrates what it commanded. Distance along the line of
sight and path length (what the travel bound counts) are those of the
commanded speed. The heading counts the wheels rolling on after a throttle
cut: the motors need ``stop_time_s`` to stand still, modelled as a
first-order lag of a third of it (95 % in ``stop_time_s``), and while they
roll the steered front wheels still turn the car; without it the bearing
estimate swung by ~5 deg when the car braked while steering (the simulator's
turn at 1 m/s, 3 frames/s). Speeding up, the lag is not known (no figure for
it): the heading takes the commanded speed.
"""

from __future__ import annotations

import math
from collections import deque


class Odometer:
    """Distance driven towards the target, path length and head pan over time, from the commands (for the capture times)."""

    def __init__(self, keep_s: float, roll_lag_s: float = 0.0) -> None:
        self.keep_s = keep_s
        self.roll_lag_s = roll_lag_s  # the wheels' lag after a throttle cut (s)
        self.rolling = 0.0  # the speed the wheels roll at (m/s), for the heading
        self.history: deque[tuple[float, float, float, float, float]] = deque()  # (t, distance m, pan, yaw rad, path m)
        self.distance = 0.0
        self.yaw = 0.0
        self.path = 0.0  # path length driven (m), forwards and backwards: what the travel bound counts

    def drive(self, speed: float, towards: float, curvature: float, dt: float) -> None:
        """``dt`` seconds at the commanded ``speed`` (m/s): ``towards`` is the cosine of the bearing, ``curvature`` 1/m."""
        lag = self.roll_lag_s
        rolled = speed + (self.rolling - speed) * (math.exp(-dt / lag) if lag > 0 else 0.0)
        self.rolling = rolled if abs(rolled) > abs(speed) else speed  # rolls on when slowing; speeding up: unknown
        self.distance += speed * towards * dt
        self.path += abs(speed) * dt
        self.yaw += self.rolling * curvature * dt

    def record(self, t: float, pan: float) -> None:
        self.history.append((t, self.distance, pan, self.yaw, self.path))
        while len(self.history) > 2 and self.history[1][0] < t - self.keep_s:
            self.history.popleft()

    def _row(self, t: float) -> tuple[float, float, float, float, float] | None:
        if not self.history:
            return None
        best = self.history[0]
        for row in self.history:
            if row[0] > t:
                break
            best = row
        return best

    def at(self, t: float) -> tuple[float, float, float]:
        """Distance, pan and yaw at time ``t`` (the nearest record at or before it)."""
        row = self._row(t)
        return (self.distance, 0.0, self.yaw) if row is None else (row[1], row[2], row[3])

    def path_since(self, t: float) -> float:
        """Path length (m) driven since time ``t`` (from the nearest record at or before it: never less)."""
        row = self._row(t)
        return self.path - (0.0 if row is None else row[4])
