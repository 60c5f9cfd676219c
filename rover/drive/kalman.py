"""A constant-velocity Kalman filter in one dimension, over capture times.

Pure: plain floats, no I/O, time passed in (seconds). The state is a value
and its rate; :meth:`CVFilter.update` takes a measurement with the time the
frame was *captured*, so a frame that arrives late still lands where it
belongs, and :meth:`CVFilter.predict` extrapolates to any later time ("now"),
which compensates the age of the detection (~0.3-0.5 s on a Pi 4).

- Process noise: white acceleration of spectral density ``accel_psd``
  ((m/s^2)^2 s for a range): a walker who stops or starts within a second.
- Measurement noise: variance ``meas_var`` per update (given with each
  measurement, since the range error of a box grows with the range).
- Gating: a measurement farther than ``gate`` standard deviations from the
  prediction restarts the filter at it (a new target, a jump), so one bad
  frame cannot drag the rate far for long, and the filter never diverges.
- A measurement older than the newest one (out of order), or not a finite
  number, is ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class CVFilter:
    """Value ``x`` and rate ``v`` at time ``t``, with their covariance."""

    accel_psd: float
    gate: float = 4.0
    initial_rate_var: float = 1.0
    max_rate: float = math.inf  # rates are clamped to +-max_rate (physical limit)
    t: float | None = None
    x: float = 0.0
    v: float = 0.0
    p_xx: float = 0.0
    p_xv: float = 0.0
    p_vv: float = 0.0
    updates: int = 0

    def reset(self) -> None:
        self.t, self.updates = None, 0

    @property
    def ready(self) -> bool:
        return self.t is not None

    def _start(self, z: float, r: float, t: float) -> None:
        self.t, self.x, self.v = t, z, 0.0
        self.p_xx, self.p_xv, self.p_vv = r, 0.0, self.initial_rate_var
        self.updates = 1

    def _propagate(self, dt: float) -> tuple[float, float, float, float, float]:
        q = self.accel_psd
        x = self.x + self.v * dt
        p_xx = self.p_xx + 2 * dt * self.p_xv + dt * dt * self.p_vv + q * dt ** 3 / 3
        p_xv = self.p_xv + dt * self.p_vv + q * dt ** 2 / 2
        p_vv = self.p_vv + q * dt
        return x, self.v, p_xx, p_xv, p_vv

    def update(self, z: float, meas_var: float, t: float) -> None:
        """Fuse measurement ``z`` (variance ``meas_var``) taken at time ``t``."""
        if not (math.isfinite(z) and math.isfinite(meas_var) and math.isfinite(t)):
            return  # not a measurement: the filter keeps what it knows (a NaN would clamp to +max_rate)
        if self.t is None:
            self._start(z, meas_var, t)
            return
        dt = t - self.t
        if dt < 0:
            return  # out of order: the filter is already past it
        x, v, p_xx, p_xv, p_vv = self._propagate(dt)
        s = p_xx + meas_var
        innovation = z - x
        if innovation * innovation > self.gate * self.gate * s:
            self._start(z, meas_var, t)
            return
        k_x, k_v = p_xx / s, p_xv / s
        self.x = x + k_x * innovation
        self.v = max(-self.max_rate, min(self.max_rate, v + k_v * innovation))
        self.p_xx = (1 - k_x) * p_xx
        self.p_xv = (1 - k_x) * p_xv
        self.p_vv = p_vv - k_v * p_xv
        self.t = t
        self.updates += 1

    def std(self, t: float) -> float:
        """Standard deviation of the value extrapolated to time ``t``."""
        if self.t is None:
            raise ValueError("the filter has no measurement yet")
        return math.sqrt(max(0.0, self._propagate(max(0.0, t - self.t))[2]))

    def predict(self, t: float) -> tuple[float, float]:
        """Value and rate extrapolated to time ``t`` (not before the last update)."""
        if self.t is None:
            raise ValueError("the filter has no measurement yet")
        dt = max(0.0, t - self.t)
        return self.x + self.v * dt, self.v
