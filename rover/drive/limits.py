"""Freshness, dead-man and speed limits that follow the detection stream.

Pure: plain floats, the time passed in (seconds). :class:`StreamTiming`
measures the stream as TCP measures a round trip (Jacobson's estimator: a
moving mean and a moving mean deviation, gains 1/8 and 1/4): the period
between frames (receipt to receipt) and the latency (a frame's age when it
arrives). From those, within the hard bounds of the config:

- ``max_age_s`` (a detection older than this is stale) = latency + 4
  deviations + ``AGE_MARGIN_S``, between ``max_age_min_s`` and ``max_age_s``;
- ``deadman_s`` (no fresh message for this long: SAFE) = ``DEADMAN_PERIODS``
  periods (each period + 4 deviations), between ``deadman_min_s`` and
  ``deadman_s``; so at 2 frames/s (0.5 s apart) a normal stream never trips
  it and a dead one trips it within about a second;
- the *information horizon* ``horizon_s = max_age + deadman``: the oldest a
  capture can be while the car still acts on it;
- the speed limit ``travel_bound_m / (horizon_s + stop_time_s)``: whatever
  happens after a capture (the person vanishes, the detector dies, the stream
  slows), the car is stopped before it has travelled ``travel_bound_m`` from
  where it was at that capture. A slower stream raises both limits and so
  lowers the speed at once; a faster one lowers them and allows more speed.

Why the travel bound is a guarantee (``tests/test_drive_travel.py`` checks
it against streams that slow and age as far as the limits allow). Let ``c``
be the capture of the newest detection of the target the car acts on, ``B``
= ``travel_bound_m``. (1) The controller cuts the throttle to 0 once ``c``
is a horizon old, and the dead-man (counted from the receipt of a fresh
message, at most ``max_age_s`` after its capture) cuts the motors no later;
so the car is commanded forward only within ``[c, c + horizon]``. (2) Each
tick its commanded speed is at most the travel budget ``(B - path since c)
/ (time left to c + horizon + one tick + stop_time_s)``: driving at it, the
path since ``c`` plus that speed times the rest of the window and the stop
is ``B``; a lower speed leaves more, and limits that grow later only add
time to the same budget. (3) After the cut the car rolls at most ``speed x
stop_time_s`` (its speed falls from the last commanded one within
``stop_time_s``). A newer capture starts a new window from a newer
position. The speeds are the commanded ones: a car faster than
``top_speed_mps`` says travels farther by that factor (the simulator's runs
with the assumptions 15 % off measure it). The speed limit below is the
budget of a capture acted on at once with nothing driven since: the
fastest the car can go steadily.

The measured mean period is passed on too (:attr:`Limits.period_s`): the
controller paces the camera head by it. Before any measurement the limits
are the hard upper bounds (the slowest, safest case). A gap between frames longer than the hard dead-man is not a
period (the detector restarted) and is not measured.
"""

from __future__ import annotations

from dataclasses import dataclass

GAIN = 0.125
DEV_GAIN = 0.25
DEVIATIONS = 4.0
AGE_MARGIN_S = 0.05
DEADMAN_PERIODS = 1.5


@dataclass
class _Moving:
    mean: float | None = None
    dev: float = 0.0

    def add(self, sample: float) -> None:
        if self.mean is None:
            self.mean, self.dev = sample, sample / 4
            return
        self.dev += DEV_GAIN * (abs(sample - self.mean) - self.dev)
        self.mean += GAIN * (sample - self.mean)

    @property
    def high(self) -> float | None:
        return None if self.mean is None else self.mean + DEVIATIONS * self.dev


@dataclass(frozen=True)
class Limits:
    """The limits in force: seconds, and the speed limit in m/s."""

    max_age_s: float
    deadman_s: float
    stop_time_s: float
    travel_bound_m: float
    period_s: float = 0.0  # the measured mean time between frames (0 before any measurement)

    @property
    def horizon_s(self) -> float:
        """The oldest a capture may be while the car still acts on it."""
        return self.max_age_s + self.deadman_s

    @property
    def speed_limit_mps(self) -> float:
        """The fastest the car may go so that it stops within ``travel_bound_m`` of any capture."""
        return self.travel_bound_m / (self.horizon_s + self.stop_time_s)


class StreamTiming:
    """Measures the period and latency of valid frames; gives the :class:`Limits`."""

    def __init__(self, max_age_min_s: float, max_age_s: float, deadman_min_s: float, deadman_s: float,
                 stop_time_s: float, travel_bound_m: float) -> None:
        self.bounds = (max_age_min_s, max_age_s, deadman_min_s, deadman_s)
        self.stop_time_s = stop_time_s
        self.travel_bound_m = travel_bound_m
        self.period = _Moving()
        self.latency = _Moving()
        self._last_receipt: float | None = None

    def frame(self, receipt_s: float, age_s: float) -> None:
        """A valid message with a frame arrived at ``receipt_s``, ``age_s`` after its capture."""
        if age_s >= 0:
            self.latency.add(min(age_s, self.bounds[1]))
        if self._last_receipt is not None:
            gap = receipt_s - self._last_receipt
            if 0 < gap <= self.bounds[3]:
                self.period.add(gap)
        self._last_receipt = receipt_s

    def limits(self) -> Limits:
        age_min, age_max, dead_min, dead_max = self.bounds
        latency, period = self.latency.high, self.period.high
        max_age = age_max if latency is None else min(age_max, max(age_min, latency + AGE_MARGIN_S))
        deadman = dead_max if period is None else min(dead_max, max(dead_min, DEADMAN_PERIODS * period))
        return Limits(max_age, deadman, self.stop_time_s, self.travel_bound_m, self.period.mean or 0.0)
