"""What ``rover-calibrate motors`` drives and where it stops: the plan, the limits, the result (no I/O).

:class:`Plan` (duties, hold times, the assumed top speed), :class:`Limits`
(the hard safety limits) and :class:`RunResult` (what the run saw) of
:class:`rover.hw.motorcal.MotorRun`, and the numbers it assumes. Which of them
are assumptions, not measurements of a kit, is said at each: the coast
(``COAST_S``), the fastest a PiCar-B can be (``Plan.assumed_top_mps``), the
motors' lag (``Plan.settle_s``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rover.core.errors import RoverError
from rover.hw.motorfit import Calibration, StepResult

#: Readings of a standing car agree within this (m) before the run may start.
STEADY_M = 0.05
#: Readings taken with the motors off before starting (and while waiting for the ranger).
BASELINE_READINGS = 7
#: Range polls per read interval while driving (the safety checks run at every poll).
POLLS_PER_READ = 4
#: Where to start (m from the wall) to have the three steps --write needs: the simulator's 2024 kit (2 m sensor)
#: had them in 5 of 40 runs from 1.5 m, 32 from 1.6 m, 36 from 1.7 m (docs/hardware.md).
START_M = 1.6
#: The speed the stop margin assumes learns from the lowest of this many speeds between consecutive raw readings.
RAW_PAIRS = 3
#: --min-range-m may not be lower than this (the coast and a late reading must still end short of the wall).
MIN_RANGE_FLOOR_M = 0.25
#: ASSUMED, not measured: the car coasts (the kits cannot brake) like a first-order lag of this time constant,
#: so it rolls ``speed * COAST_S`` after the motors stop. Neither docs/picar-b.md nor the vendor's code gives
#: it; the simulator's car brakes with 0.08 s (rover/sim/car.py, an assumption too), the test car with 0.25 s
#: (tests/fakehw/wallcar.py). Every run measures and prints the real coast (docs/hardware.md).
COAST_S = 0.3


class CalibrationAborted(RoverError):
    """The run stopped before it could measure (sensor failure, no room): the message says why and what to do."""


@dataclass(frozen=True)
class Limits:
    """The hard safety limits of a run (metres, seconds)."""

    min_range_m: float = 0.4
    max_travel_m: float = 2.5
    max_time_s: float = 60.0
    start_min_m: float = 1.0
    start_max_m: float = 3.0

    def __post_init__(self) -> None:
        for key in ("min_range_m", "max_travel_m", "max_time_s", "start_min_m", "start_max_m"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{key} = {value} must be a positive number")
        if self.min_range_m < MIN_RANGE_FLOOR_M:
            raise ValueError(f"min_range_m = {self.min_range_m:g} must be at least {MIN_RANGE_FLOOR_M:g} m "
                             "(the car coasts and a reading is late: nearer than that it may reach the wall)")
        if not self.min_range_m < self.start_min_m <= self.start_max_m:
            raise ValueError(f"min_range_m < start_min_m <= start_max_m must hold, not "
                             f"{self.min_range_m:g} < {self.start_min_m:g} <= {self.start_max_m:g}")


@dataclass(frozen=True)
class Plan:
    """What the run drives: duties in percent, times in seconds."""

    step_pct: float = 1.0
    deadband_hold_s: float = 1.0
    search_max_pct: float = 60.0  # the motors are broken or unpowered if nothing moved by then
    speed_steps: int = 4  # steps above the dead band, at most: the first one, then as many as the room allows (>= 3)
    first_gap_pct: float = 10.0  # the first of them this far above the dead band (off the knee of the speed curve)
    speed_hold_s: float = 0.7
    settle_s: float = 0.35  # readings this soon after a duty change are not used (the motors' lag)
    max_duty_pct: float = 100.0
    #: The duty the top speed is stated at: the section's max_duty (throttle 1); None: ``max_duty_pct``.
    top_duty_pct: float | None = None
    min_speed_mps: float = 0.02
    min_travel_m: float = 0.01
    #: ASSUMED: more than any PiCar-B does (the sim car's 1.2 m/s is an assumption too, rover/sim/car.py). It predicts
    #: a step's travel before two speeds are known, and until the car has moved the stop margin assumes it: nothing
    #: says how fast a motor breaks away from its dead band (the 0.6 m/s assumed before let a 1.5 m/s lurch with
    #: missed echoes come to rest 0.28 m from the wall, tests/test_calibrate_margin.py).
    assumed_top_mps: float = 1.5

    def __post_init__(self) -> None:
        if not 0.0 < self.step_pct <= 10.0:
            raise ValueError(f"step_pct = {self.step_pct} must be in (0, 10] percent")
        if not 0.0 < self.max_duty_pct <= 100.0:
            raise ValueError(f"max_duty_pct = {self.max_duty_pct} must be in (0, 100] percent")
        if self.speed_steps < 3:
            raise ValueError(f"speed_steps = {self.speed_steps} must be at least 3 (--write needs three speeds)")
        if not self.settle_s < min(self.deadband_hold_s, self.speed_hold_s):
            raise ValueError("settle_s must be shorter than both hold times")


@dataclass
class RunResult:
    """Everything the run saw: for the report and the tests."""

    baseline_m: float
    steps: list[StepResult]
    readings: list[tuple[float, float, float]] = field(default_factory=list)  # (t, duty %, range m)
    stop_reason: str = "done"
    final_m: float | None = None
    calibration: Calibration | None = None
    travel_m: float = 0.0
    #: The range when the motors went off, the speed then, and where the car came to rest: the measured coast.
    stop_m: float | None = None
    stop_speed_mps: float = 0.0

    @property
    def coast_m(self) -> float | None:
        """How far the car rolled after the motors went off (None when unknown)."""
        if self.stop_m is None or self.final_m is None or not math.isfinite(self.final_m):
            return None
        return max(0.0, self.stop_m - self.final_m)
