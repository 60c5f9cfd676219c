"""Pure estimation for ``rover-calibrate motors``: range readings over time -> speed, dead band, top speed.

No I/O and no clock: plain numbers in, plain numbers out, so every rule is
tested with made-up series.

- :func:`robust_slope` is the Theil-Sen estimator (the median of the slopes
  of every pair of readings): a late ultrasonic reading (each millisecond of
  lateness reads 0.17 m too far, :mod:`rover.hw.ultrasonic`) moves it far
  less than it moves a least-squares line.
- :func:`step_speed` is the speed during one held duty step: the readings
  after the step's settle time (the motors' lag), fitted robustly; the car
  approaches the wall, so its speed is minus the slope of range over time.
- :func:`moved` decides whether the car moved during a step: fast enough
  (``min_speed_mps``) and far enough from where it stood before any duty
  (``min_travel_m``), so sensor noise on a standing car is never "moving".
- :func:`fit_line` is the least-squares line of speed against duty over the
  steps above the dead band, with its RMS residual and sample count; the
  top speed is that line at ``max_duty``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Sequence

#: A reading: (seconds on the caller's clock, range in metres).
Reading = tuple[float, float]
#: A reading this far beyond its step's line is a late echo (always too far, never too near): left out.
LATE_M = 0.03


@dataclass(frozen=True)
class SpeedEstimate:
    """The speed during one step: ``speed_mps`` towards the wall (positive = approaching)."""

    speed_mps: float
    samples: int
    residual_m: float  # RMS distance of the readings from the fitted line
    span_s: float  # time between the first and last reading used
    last_m: float  # the fitted range at the last reading


def robust_slope(readings: Sequence[Reading]) -> tuple[float, float]:
    """Theil-Sen ``(slope, intercept)`` of range against time; ValueError for fewer than 2 distinct times."""
    slopes = [(r2 - r1) / (t2 - t1) for i, (t1, r1) in enumerate(readings)
              for t2, r2 in readings[i + 1:] if t2 != t1]
    if not slopes:
        raise ValueError("a slope needs at least two readings at different times")
    slope = statistics.median(slopes)
    intercept = statistics.median(r - slope * t for t, r in readings)
    return slope, intercept


def step_speed(readings: Sequence[Reading], *, start_s: float, settle_s: float) -> SpeedEstimate | None:
    """Speed of one step from its readings; those before ``start_s + settle_s`` are skipped (the motors' lag).

    None when fewer than 3 readings remain (too short to tell anything).
    Readings must be finite: an unknown or "nothing in range" reading has
    already stopped the run.
    """
    used = [(t, r) for t, r in readings if t >= start_s + settle_s]
    if len(used) < 3:
        return None
    for t, r in used:
        if not (math.isfinite(t) and math.isfinite(r)):
            raise ValueError(f"reading ({t}, {r}) is not finite: an unknown range must stop the run first")
    slope, intercept = robust_slope(used)
    # A late echo reads only too far (0.17 m per ms late): one far above the line is dropped and the line refitted.
    kept = [(t, r) for t, r in used if r - (intercept + slope * t) <= LATE_M]
    if 3 <= len(kept) < len(used):
        used = kept
        slope, intercept = robust_slope(used)
    residual = math.sqrt(sum((r - (intercept + slope * t)) ** 2 for t, r in used) / len(used))
    last_t = used[-1][0]
    return SpeedEstimate(-slope, len(used), residual, last_t - used[0][0], intercept + slope * last_t)


def moved(estimate: SpeedEstimate | None, baseline_m: float, latest_m: float, *,
          min_speed_mps: float, min_travel_m: float) -> bool:
    """True when the car moved: it approached at ``min_speed_mps`` or more and is ``min_travel_m`` nearer than it stood.

    ``baseline_m`` is the median range before any duty, ``latest_m`` a
    median of the step's last readings. Both tests must pass: a noisy slope
    alone, or one low reading alone, is not motion.
    """
    if estimate is None:
        return False
    return estimate.speed_mps >= min_speed_mps and baseline_m - latest_m >= min_travel_m


@dataclass(frozen=True)
class LineFit:
    """``speed = slope * (duty - zero_duty)``, duty in percent, speed in m/s."""

    slope_mps_per_pct: float
    zero_duty_pct: float  # where the line crosses zero speed (the motors' kinetic dead band)
    residual_mps: float  # RMS of the speeds about the line
    samples: int
    mean_duty_pct: float = math.nan
    sxx: float = math.nan  # sum of the squared duty deviations
    sigma_mps: float = math.nan  # the speeds' scatter about the line, n - 2 degrees of freedom (nan for 2 points)

    def speed_at(self, duty_pct: float) -> float:
        return self.slope_mps_per_pct * (duty_pct - self.zero_duty_pct)

    def stderr_at(self, duty_pct: float) -> float:
        """Standard error of the line's speed at ``duty_pct`` (m/s); nan when two points leave no scatter to tell."""
        return self.sigma_mps * math.sqrt(1.0 / self.samples + (duty_pct - self.mean_duty_pct) ** 2 / self.sxx)


def fit_line(points: Sequence[tuple[float, float]]) -> LineFit:
    """Least-squares line of speed (m/s) against duty (percent); ValueError without 2 distinct duties or a rising line."""
    if len(points) < 2 or len({duty for duty, _ in points}) < 2:
        raise ValueError("a speed line needs steps at two different duties above the dead band at least")
    n = len(points)
    mean_d = sum(d for d, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    sxx = sum((d - mean_d) ** 2 for d, _ in points)
    sxy = sum((d - mean_d) * (v - mean_v) for d, v in points)
    slope = sxy / sxx
    if slope <= 0:
        raise ValueError(f"the car did not go faster at a higher duty (slope {slope:.4f} m/s per %): "
                         "is it slipping, blocked or on a stand?")
    zero = mean_d - mean_v / slope
    squares = sum((v - slope * (d - zero)) ** 2 for d, v in points)
    sigma = math.sqrt(squares / (n - 2)) if n > 2 else math.nan
    return LineFit(slope, zero, math.sqrt(squares / n), n, mean_d, sxx, sigma)


@dataclass(frozen=True)
class StepResult:
    """One held duty: what was measured (``estimate`` None: too few readings)."""

    duty_pct: float
    estimate: SpeedEstimate | None
    moved: bool

    @property
    def speed_mps(self) -> float | None:
        return None if self.estimate is None else self.estimate.speed_mps


@dataclass(frozen=True)
class Calibration:
    """What the run found: the dead band, the speed line and the top speed at ``max_duty``."""

    min_duty_pct: float  # the lowest duty that moved the car from rest
    still_duty_pct: float  # the highest duty it stood still at (the dead band lies between the two)
    line: LineFit
    max_duty_pct: float
    top_speed_mps: float  # the line at max_duty
    extrapolated: bool  # True when no step reached max_duty (the line carries the top speed)
    fitted_from_pct: float = math.nan  # the lowest and highest duty of the line's steps
    fitted_to_pct: float = math.nan
    knee_included: bool = False  # True when the line needed the dead-band step (only one step above it)

    @property
    def top_stderr_mps(self) -> float:
        return self.line.stderr_at(self.max_duty_pct)

    @property
    def extrapolated_pct(self) -> float:
        """Duty points from the highest step driven up to max_duty (0 when it was driven)."""
        return max(0.0, self.max_duty_pct - self.fitted_to_pct)


def calibrate(steps: Sequence[StepResult], *, max_duty_pct: float) -> Calibration:
    """The calibration from the steps in the order they were driven.

    The dead band is the first step that moved. The line is fitted to the
    later steps with a speed, leaving out the dead-band step (it sits on
    the knee of the speed curve, where a motor breaking away is not on the
    line), unless only one step follows it (then ``knee_included``).
    ValueError (with what is missing) when the car never moved, stood
    still or went backwards at a duty above the one it moved at, or the
    line cannot be fitted.
    """
    first = next((i for i, s in enumerate(steps) if s.moved), None)
    if first is None:
        tried = max((s.duty_pct for s in steps), default=0.0)
        raise ValueError(f"the car never moved (duty up to {tried:g} %): are the motors powered (battery switch on, "
                         "charged) and the wheels on the floor?")
    for step in steps[first + 1:]:
        if step.estimate is not None and not step.moved:
            raise ValueError(f"the car did not approach the wall at {step.duty_pct:g} % ({step.speed_mps:.3f} m/s) after "
                             f"it had moved at {steps[first].duty_pct:g} %: something held it, or the range was not "
                             "its motion; nothing measured")
    still = max((s.duty_pct for s in steps[:first]), default=0.0)
    above = [(s.duty_pct, s.speed_mps) for s in steps[first + 1:] if s.speed_mps is not None]
    knee = len({d for d, _ in above}) < 2
    points = [(s.duty_pct, s.speed_mps) for s in steps[first:] if s.speed_mps is not None] if knee else above
    line = fit_line(points)  # type: ignore[arg-type]
    reached = max(d for d, _ in points)
    return Calibration(steps[first].duty_pct, still, line, max_duty_pct, line.speed_at(max_duty_pct),
                       reached < max_duty_pct - 1e-9, min(d for d, _ in points), reached, knee)


#: What a calibration must meet before ``--write`` keeps it (review 3, H3 and M4).
MAX_STEP_RESIDUAL_M = 0.02  # the readings of one step about their line
MAX_LINE_RMS_FRACTION = 0.05  # the steps' speeds about the speed line, of the top speed
MAX_STDERR_FRACTION = 0.10  # the line's standard error at max_duty, of the top speed
MAX_EXTRAPOLATION = 1.5  # extrapolated duty points, in units of the duty span the line was fitted over
TOP_SPEED_BOUNDS_MPS = (0.1, 3.0)  # a PiCar-B between a crawl and three times its vendor's figure


def refusals(cal: Calibration, steps: Sequence[StepResult]) -> list[str]:
    """Why ``cal`` is not good enough to write into the config (empty: it is)."""
    found = []
    for step in steps:
        if step.moved and step.estimate is not None and step.estimate.residual_m > MAX_STEP_RESIDUAL_M:
            found.append(f"the readings at {step.duty_pct:g} % scatter {step.estimate.residual_m:.3f} m about their "
                         f"line (limit {MAX_STEP_RESIDUAL_M:g} m): something moved in front, or the sensor is not square to the wall")
    top = cal.top_speed_mps
    low, high = TOP_SPEED_BOUNDS_MPS
    if not low <= top <= high:
        found.append(f"a top speed of {top:.2f} m/s is outside {low:g} to {high:g} m/s: not a PiCar-B's")
    if top > 0 and cal.line.residual_mps > MAX_LINE_RMS_FRACTION * top:
        found.append(f"the steps' speeds scatter {cal.line.residual_mps:.3f} m/s about the speed line "
                     f"(limit {MAX_LINE_RMS_FRACTION:.0%} of the top speed)")
    if cal.knee_included:
        found.append("only one step above the dead band: the line rests on the dead-band step; start farther from the wall")
    stderr = cal.top_stderr_mps
    if not math.isfinite(stderr) or (top > 0 and stderr > MAX_STDERR_FRACTION * top):
        found.append(f"the top speed's standard error is {'unknown (two steps)' if not math.isfinite(stderr) else f'{stderr:.3f} m/s'} "
                     f"(limit {MAX_STDERR_FRACTION:.0%} of it): too few steps; start farther from the wall")
    span = cal.fitted_to_pct - cal.fitted_from_pct
    if not extrapolation_ok(cal.fitted_from_pct, cal.fitted_to_pct, cal.max_duty_pct):
        found.append(f"extrapolated {cal.extrapolated_pct:.1f} duty points beyond the highest step, more than "
                     f"{MAX_EXTRAPOLATION:g} x the {span:.1f} points measured: start farther from the wall, or lower --max-duty")
    return found


def extrapolation_ok(from_pct: float, to_pct: float, max_duty_pct: float) -> bool:
    """Whether a line fitted from ``from_pct`` to ``to_pct`` may carry the top speed to ``max_duty_pct`` (--write)."""
    return max(0.0, max_duty_pct - to_pct) <= MAX_EXTRAPOLATION * (to_pct - from_pct) + 1e-9


def plan_duties(lowest_pct: float, speed: Callable[[float], float], room_m: float, *, max_duty_pct: float,
                top_duty_pct: float, counts: Sequence[int], hold_s: float, tail_s: float,
                line_from_pct: float | None = None) -> list[float]:
    """The next duties above ``lowest_pct`` (the last one driven) that fit in ``room_m``.

    ``line_from_pct`` is the speed line's lowest step (default ``lowest_pct``).

    ``speed(duty)`` is the speed to expect (m/s, generously); each step
    travels ``speed * hold_s`` and the last one ``speed * tail_s`` more (the
    stop margin it is checked against: the reading's age, a poll, the
    coast). For each step count in ``counts`` (most first) the duties are
    evenly spaced up to the highest top (1 % below ``max_duty_pct`` at a
    time) whose travel fits; the first plan whose line may carry the top
    speed to ``top_duty_pct`` (:func:`extrapolation_ok`) wins, else the
    one reaching highest (``--write`` then refuses it, saying why); []
    when nothing fits.
    """
    fallback: list[float] = []
    for count in counts:
        top = max_duty_pct
        while top - lowest_pct >= count - 1e-9:
            duties = [round(lowest_pct + (top - lowest_pct) * (i + 1) / count, 1) for i in range(count)]
            if sum(speed(d) for d in duties) * hold_s + speed(duties[-1]) * tail_s <= room_m:
                if extrapolation_ok(lowest_pct if line_from_pct is None else line_from_pct, duties[-1], top_duty_pct):
                    return duties
                if not fallback or duties[-1] > fallback[-1]:
                    fallback = duties
                break
            top = round(top - 1.0, 3)
    return fallback
