"""The motor calibration run: step the duty up towards a wall and watch the ultrasonic range.

:class:`MotorRun` drives any :class:`rover.hw.chassis.Chassis` whose
throttle is the raw duty fraction (``min_duty = 0``, ``max_duty = 100``: the
caller opens the kit so) with an injected ``clock`` and ``sleep``, reads
the kit's ranger (the median of its latest readings, with the time it was
taken) ``POLLS_PER_READ`` times per read interval, and hands the numbers to
:mod:`rover.hw.motorfit`. The run:

1. centres the steering (``safe()``, then ``steer(0)``), reads the range
   with the motors off until the ranger answers, and refuses to start unless
   it is finite, within ``start_min_m..start_max_m`` and steady (a standing
   car: all but two readings within ``STEADY_M / 2`` of their median);
2. raises the duty from 0 in ``step_pct`` increments, each held for
   ``deadband_hold_s``, until the car moves (the dead band);
3. holds a duty ``first_gap_pct`` above it, then up to ``speed_steps - 1``
   more, each for ``speed_hold_s``, planned (and re-planned after each step)
   from the room left so that their predicted travel keeps the car outside
   the stop range and the travel limit (:func:`motorfit.plan_duties`); the
   speed line carries the top speed beyond the highest (said so);
4. stops the motors on every way out.

Safety: every poll reads the kit's ranger with the time its median
reading was taken (:meth:`rover.hw.ultrasonic.UltrasonicRanger.reading`).
Unknown (None: the sensor failed, or its readings went stale), nothing in
range (inf: the wall cannot vanish, so the car turned) and no new reading
for ``stale_s`` (two of the ranger's slowest turns: it stopped measuring)
abort with :class:`CalibrationAborted` in every phase; a dead sensor never
reads as clear. So do a range that jumps farther than the car can move or
rises above the start (:mod:`rover.hw.rangecheck`), and one that stops
changing while the car drives (blocked). The run stops (and keeps what it
measured) when the range falls below ``min_range_m`` plus what the car
covers at the assumed speed during the reading's real age and the longest
gap between two polls seen,
plus its coast (``COAST_S``, an assumption: the kits cannot brake); the
assumed speed is the fastest a PiCar-B can be until the car has moved,
then the highest predicted or measured so far.
It stops too when the travel since the start exceeds ``max_travel_m`` and
when ``max_time_s`` has passed. The ``finally`` of :meth:`MotorRun.run`
sets the throttle to 0 and calls ``safe()``, whatever ended the run
(KeyboardInterrupt included).
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Callable

from rover.hw import motorfit
from rover.hw.motorfit import Reading, StepResult
from rover.hw.motorplan import (BASELINE_READINGS, COAST_S, MIN_RANGE_FLOOR_M, POLLS_PER_READ, RAW_PAIRS,  # noqa: F401
                                START_M, STEADY_M, CalibrationAborted, Limits, Plan, RunResult)
from rover.hw.rangecheck import RangeCheck


class MotorRun:
    """One calibration run on ``chassis`` (throttle = duty fraction). ``say`` gets progress lines."""

    def __init__(self, chassis: Any, ranger: Any, *, clock: Callable[[], float],
                 sleep: Callable[[float], None], plan: Plan = Plan(), limits: Limits = Limits(),
                 wall_m: float | None = None, say: Callable[[str], None] = lambda line: None,
                 reverse_hint: str = "flip the motors' *_direction keys") -> None:
        """``ranger``: the kit's :class:`rover.hw.ultrasonic.UltrasonicRanger` (readings with the time taken)."""
        self.chassis, self.ranger, self.interval_s = chassis, ranger, ranger.interval_s
        self.clock, self.sleep, self.plan, self.limits = clock, sleep, plan, limits
        self.wall_m, self.say, self.reverse_hint = wall_m, say, reverse_hint
        self.poll_s = self.interval_s / POLLS_PER_READ
        self._gap, self._polled = self.poll_s, math.nan  # the longest time between two polls seen, the last poll
        #: No new reading for this long: the ranger has stopped (a miss in between allowed, each turn at its slowest).
        self.stale_s = 2 * ranger.period_max_s() + self.poll_s
        #: The median's usual age (to plan a step; the stop margin takes each reading's real age).
        self.lag_s = self.interval_s * (ranger.samples // 2 + 1)
        self._t0 = 0.0
        self._speed = 0.0  # the speed the safety margin assumes now (lowered once: from the breakaway to the measured)
        self._breakaway = True  # the car has not moved yet
        self._stop: str | None = None
        self._last_m = math.nan  # the last range polled
        self._last_taken = math.nan  # when that reading was taken
        self._changed_t = 0.0  # when it last changed
        self._raw: list[tuple[float, float]] = []  # the ranger's last RAW_PAIRS + 1 raw readings: (taken, metres)
        self._checks = RangeCheck(math.nan, plan.assumed_top_mps, reverse_hint)  # the baseline is set once known
        self.result: RunResult | None = None

    # -- the run ----------------------------------------------------------------------
    def run(self) -> RunResult:
        """Measure; the motors are stopped on every way out. Raises :class:`CalibrationAborted` or what broke."""
        try:
            self.chassis.safe()
            self.chassis.steer(0.0)
            baseline = self._last_m = self._checks.baseline_m = self._baseline()
            self.result = result = RunResult(baseline, [])
            self._t0 = self.clock()
            self._deadband(result)
            if self._stop is None:
                self._speeds(result)
            result.stop_reason = self._stop or "done"
        finally:
            try:
                self.chassis.drive(0.0)
            finally:
                self.chassis.safe()
        # Where the car was when the motors went off: the last range, moved on by its age at the last step's measured
        # speed (the margin's assumed speed is generous: with it the coast would read short, the unsafe side).
        last = result.steps[-1].speed_mps if result.steps and result.steps[-1].moved else None
        result.stop_speed_mps = max(0.0, last) if last is not None else self._speed
        if math.isfinite(self._last_taken):
            result.stop_m = self._last_m - result.stop_speed_mps * max(0.0, self.clock() - self._last_taken)
        result.final_m = self._settled_range()
        try:
            top = self.plan.top_duty_pct if self.plan.top_duty_pct is not None else self.plan.max_duty_pct
            result.calibration = motorfit.calibrate(result.steps, max_duty_pct=top)
        except ValueError as exc:
            if self._breakaway and result.stop_reason.startswith("stop range"):  # the margin grew with the reading age
                raise CalibrationAborted(f"{result.stop_reason} before the car moved: the ultrasonic answers late or "
                                         "not at all, or something is near: motors stopped; check the sensor's wiring "
                                         "and the way to the wall, then start again") from None
            raise CalibrationAborted(f"{exc} (run ended: {result.stop_reason})") from None
        return result

    def _deadband(self, result: RunResult) -> None:
        plan = self.plan
        duty = 0.0
        while self._stop is None:
            duty = round(duty + plan.step_pct, 3)
            if duty > min(plan.search_max_pct, plan.max_duty_pct) + 1e-9:
                raise CalibrationAborted(
                    f"the car did not move at any duty up to {duty - plan.step_pct:g} %: are the motors powered "
                    "(battery switch on, charged) and the wheels on the floor?")
            step = self._hold(result, duty, plan.deadband_hold_s)
            if step.moved:
                self.say(f"moved at {duty:g} % duty: {step.speed_mps:.3f} m/s")
                return

    def _speeds(self, result: RunResult) -> None:
        """The first step ``first_gap_pct`` above the dead band (held as long as a dead-band step: it is slow, and
        the line's lowest point), then the rest planned from the room it leaves, re-planned after each step."""
        plan = self.plan
        duties = [min(result.steps[-1].duty_pct + plan.first_gap_pct, plan.max_duty_pct)]
        first = None
        while duties:
            duty = duties[0]
            fitting = self._highest_fitting(result, result.steps[-1].duty_pct, duty)
            if fitting is None:
                self._stop = f"no room for {duty:g} % duty (it would pass the stop range or the travel limit)"
                return
            step = self._hold(result, fitting, plan.speed_hold_s if first is not None else plan.deadband_hold_s)
            if step.speed_mps is not None:
                self.say(f"{fitting:g} % duty: {step.speed_mps:.3f} m/s")
            if self._stop is not None or fitting < duty:
                self._stop = self._stop or f"no room for {duty:g} % duty: stopped after {fitting:g} %"
                return
            first = fitting if first is None else first
            counts = range(plan.speed_steps - 1, 1, -1) if fitting == first else (len(duties) - 1,)
            duties = self._plan_rest(result, first, fitting, counts) if counts[0] > 0 else []
            if counts[0] > 0 and not duties:
                self._stop = f"no room for a step above {fitting:g} % duty"

    def _plan_rest(self, result: RunResult, first: float, last: float, counts: Any) -> list[float]:
        """The steps after ``last`` (the line starting at ``first``), spaced up to the highest duty whose travel fits
        the room left (:func:`motorfit.plan_duties`), with the speed line measured so far."""
        plan, limits = self.plan, self.limits
        room = min(self._last_m - limits.min_range_m, limits.max_travel_m - (result.baseline_m - self._last_m))
        top = plan.top_duty_pct if plan.top_duty_pct is not None else plan.max_duty_pct
        duties = motorfit.plan_duties(last, lambda d: self._predict(result, d), room, max_duty_pct=plan.max_duty_pct,
                                      top_duty_pct=top, counts=counts, hold_s=plan.speed_hold_s,
                                      tail_s=self.lag_s + self._gap + COAST_S, line_from_pct=first)
        if duties:
            self.say(f"planned {', '.join(f'{d:g}' for d in duties)} % duty for the {room:.2f} m of room left")
        return duties

    def _highest_fitting(self, result: RunResult, floor: float, duty: float) -> float | None:
        """``duty``, or the highest duty below it (down to ``floor``, the last one driven, + 2 %) whose predicted
        travel fits; None if none."""
        here = self._last_m
        travelled = result.baseline_m - here
        candidate = duty
        while candidate >= floor + 2.0 - 1e-9:
            speed = self._predict(result, candidate)
            # The step must end short of the stop margin it will be checked against (a median about
            # samples // 2 + 1 turns old, one poll, the coast): else it would only measure its own stop.
            travel = speed * (self.plan.speed_hold_s + self.lag_s + self._gap + COAST_S)
            if here - travel >= self.limits.min_range_m and travelled + travel <= self.limits.max_travel_m:
                return candidate
            candidate = round(candidate - 1.0, 3)
        return None

    def _predict(self, result: RunResult, duty: float) -> float:
        """The speed to expect at ``duty`` (m/s), generously: 20 % over the line through the steps that moved so far,
        or (before two such steps) the prior ``assumed_top_mps`` scaled by the duty."""
        first = next((i for i, s in enumerate(result.steps) if s.moved), None)
        points = [] if first is None else [(s.duty_pct, s.speed_mps) for s in result.steps[first:] if s.speed_mps is not None]
        if len(points) >= 2:
            try:
                return max(0.0, 1.2 * motorfit.fit_line(points).speed_at(duty))  # type: ignore[arg-type]
            except ValueError:
                pass
        return self.plan.assumed_top_mps * duty / 100.0

    def _hold(self, result: RunResult, duty: float, hold_s: float) -> StepResult:
        """Drive at ``duty`` for ``hold_s`` (or until a limit stops it), checking the range at every poll.

        The range is polled ``POLLS_PER_READ`` times per read interval, and a
        reading enters the fit when its value changed: the ranger's median
        changes when a new measurement arrives, so each one is timed within
        a poll instead of a whole interval (the poll and the ranger's thread
        drift against each other). A standing car's unchanged value adds
        nothing, which is what a standing car should add to a speed fit.
        """
        plan = self.plan
        self.chassis.drive(duty / 100.0)
        start = self.clock()
        readings: list[Reading] = []
        expected = self._predict(result, duty)
        moving = any(s.moved for s in result.steps)
        if moving and self._breakaway:  # the car's speed is measured now: the assumed top speed gives way to it
            self._speed, self._breakaway = max(s.speed_mps or 0.0 for s in result.steps), False
        self._speed = max(self._speed, expected, 0.0 if moving else plan.assumed_top_mps)
        while self.clock() - start < hold_s:
            self.sleep(self.poll_s)
            t, metres, taken = self._read()
            if taken != self._last_taken:  # a new median (a standing car's may have the same value)
                self._check_reading(result, duty, metres, taken)
            self._learn_speed()
            if metres != self._last_m:
                self._changed_t = t
                readings.append((t, metres))
                result.readings.append((t, duty, metres))
            self._last_m, self._last_taken = metres, taken
            if moving and t - max(self._changed_t, start) > self.stale_s:
                self.chassis.drive(0.0)
                raise CalibrationAborted(
                    f"the range has not changed for {t - self._changed_t:.2f} s while the car drives at {duty:g} % "
                    "(the ranger still measures): is the car blocked, or its wheels slipping? Motors stopped")
            if self._check_limits(result, t, metres, taken):
                break
        estimate = motorfit.step_speed(readings, start_s=start, settle_s=plan.settle_s)
        latest = statistics.median(r for _, r in readings[-3:]) if readings else self._last_m
        step = StepResult(duty, estimate, motorfit.moved(estimate, result.baseline_m, latest,
                                                         min_speed_mps=plan.min_speed_mps,
                                                         min_travel_m=plan.min_travel_m))
        result.steps.append(step)
        return step

    def _learn_speed(self) -> None:
        """The speed the margin assumes rises to the lowest of the last ``RAW_PAIRS`` speeds between the ranger's raw
        readings: a period fresher than its median, so a lurch counts ``RAW_PAIRS`` readings after it starts; a late
        echo (it only reads too far) makes the pair after it fast but the pair before it negative, and up to
        ``RAW_PAIRS - 1`` late in a row cannot raise it (the slope of three medians did: 2.5 m/s from a late echo)."""
        newest = self.ranger.newest()
        if newest is None or not math.isfinite(newest[0]) or (self._raw and newest[1] <= self._raw[-1][0]):
            return
        self._raw = [*self._raw[-RAW_PAIRS:], (newest[1], newest[0])]
        if len(self._raw) > RAW_PAIRS:
            pairs = [(m0 - m1) / (t1 - t0) for (t0, m0), (t1, m1) in zip(self._raw, self._raw[1:])]
            self._speed = max(self._speed, min(pairs))

    def _check_reading(self, result: RunResult, duty: float, metres: float, taken: float) -> None:
        """A new median: CalibrationAborted (the motors stopped first) when :class:`RangeCheck` says it is not
        the car's own motion towards the wall."""
        fastest = max((st.speed_mps or 0.0 for st in result.steps), default=0.0)
        problem = self._checks.new_range(metres, taken, driving=duty > 0, fastest_mps=fastest)
        if problem is not None:
            self.chassis.drive(0.0)
            raise CalibrationAborted(problem)

    def _check_limits(self, result: RunResult, t: float, metres: float, taken: float) -> bool:
        """True (and the reason kept) when a limit says stop now."""
        limits = self.limits
        result.travel_m = max(result.travel_m, result.baseline_m - metres)
        # Where the car may be at the next decision: the reading's real age and the longest gap between two polls
        # seen (one poll, or more on a loaded Pi) at the assumed speed, then the coast once the motors are off
        # (COAST_S, an assumption: the kits cannot brake).
        age = max(0.0, t - taken)
        self._gap, self._polled = max(self._gap, t - self._polled if math.isfinite(self._polled) else 0.0), t
        # The newest reading alone is a period fresher than the median: when it says nearer, it counts (a late
        # echo only ever reads farther, so this can only stop sooner).
        newest = self.ranger.newest()
        if newest is not None and math.isfinite(newest[0]) and \
                newest[0] - self._speed * max(0.0, t - newest[1]) < metres - self._speed * age:
            metres, age = newest[0], max(0.0, t - newest[1])
        margin = limits.min_range_m + self._speed * (age + self._gap + COAST_S)
        if metres < margin:
            self._stop = (f"stop range: {metres:.2f} m from the wall (limit {margin:.2f} m at {self._speed:.2f} m/s, "
                          f"the reading {age:.2f} s old)")
        elif result.travel_m > limits.max_travel_m:
            self._stop = f"travel limit: {result.travel_m:.2f} m travelled (limit {limits.max_travel_m:g} m)"
        elif t - self._t0 > limits.max_time_s:
            self._stop = f"time limit: {t - self._t0:.1f} s (limit {limits.max_time_s:g} s)"
        if self._stop is not None:
            self.chassis.drive(0.0)  # at once; the finally stops it again
            return True
        return False

    # -- readings ---------------------------------------------------------------------
    def _read(self) -> tuple[float, float, float]:
        """``(clock, metres, taken)`` of one finite, fresh reading; CalibrationAborted for an unknown or empty range,
        or when the ranger has taken no new reading for ``stale_s`` (checked at every poll, in every phase)."""
        reading = self.ranger.reading()
        t = self.clock()
        newest = self.ranger.newest_s()
        if reading is None:
            raise CalibrationAborted("the ultrasonic range is unknown (no valid echo, or readings went stale): "
                                     "motors stopped; check the sensor's wiring and that it faces the wall")
        if newest is None or t - newest > self.stale_s:
            self._no_reading(t - (newest or t), f"limit {self.stale_s:.2f} s")
        metres, taken = reading
        if not math.isfinite(metres):
            raise CalibrationAborted("the ultrasonic sees nothing in range ahead (the wall is gone, or the car turned "
                                     "away from it): motors stopped; face the wall squarely and start again")
        return t, float(metres), float(taken)

    def _no_reading(self, age: float, why: str) -> None:
        self.chassis.drive(0.0)
        raise CalibrationAborted(
            f"no new ultrasonic reading for {age:.2f} s ({why}, {self.ranger.misses} measurements without an echo): "
            "the sensor stopped answering or the ranger stopped measuring: motors stopped; check the sensor's wiring "
            "and start again")

    def _baseline(self) -> float:
        """The standing range: ``BASELINE_READINGS`` finite, steady readings in range, else refuse to start."""
        limits = self.limits
        wait_until = self.clock() + max(3.0, 10 * self.interval_s)
        metres = None
        while metres is None and self.clock() < wait_until:
            self.sleep(self.interval_s)
            reading = self.ranger.reading()
            metres = None if reading is None else reading[0]
        readings = []
        for _ in range(BASELINE_READINGS):
            if metres is not None and not math.isfinite(metres):
                raise CalibrationAborted(f"the ultrasonic sees nothing in range ahead: place the car "
                                         f"{limits.start_min_m:g} to {limits.start_max_m:g} m from a flat wall, facing it squarely")
            readings.append(self._read()[1])
            self.sleep(self.interval_s)
            reading = self.ranger.reading()
            metres = None if reading is None else reading[0]
        baseline = statistics.median(readings)
        low, high = min(readings), max(readings)
        steady = sum(abs(r - baseline) <= STEADY_M / 2 for r in readings)
        if steady < len(readings) - 2:  # two readings seen late (a loaded Pi) may not refuse the start
            raise CalibrationAborted(f"the range is not steady with the motors off ({low:.2f}..{high:.2f} m): "
                                     "is something moving in front of the car? Clear the way to the wall")
        # Until the car has moved the margin assumes the fastest a PiCar-B can be: nearer, it would stop at once.
        breakaway_m = self.plan.assumed_top_mps * (self.lag_s + self.poll_s + COAST_S)
        near = max(limits.start_min_m, limits.min_range_m + breakaway_m + 0.1)
        if not near <= baseline <= limits.start_max_m:
            raise CalibrationAborted(f"the wall is {baseline:.2f} m away: place the car {near:.2f} to "
                                     f"{limits.start_max_m:g} m from a flat wall (best {START_M:g} m or more), "
                                     "facing it squarely")
        if self.wall_m is not None and abs(baseline - self.wall_m) > 0.15:
            raise CalibrationAborted(f"the ultrasonic reads {baseline:.2f} m but you said the wall is {self.wall_m:g} m "
                                     "away: is the sensor facing the wall squarely?")
        return baseline

    def _settled_range(self) -> float | None:
        """The range once the car has stopped (the coast, 4 of its time constants, after the motors went off);
        None if unknown. Its new readings are checked like those while driving: a jump that was still to be
        confirmed when the run stopped (a person stepping in ends a step at the stop range) aborts here."""
        reading = None
        for _ in range(5 + int(COAST_S * 4 / self.interval_s)):
            self.sleep(self.interval_s)
            reading = self.ranger.reading()
            if reading is not None and self.result is not None and math.isfinite(reading[0]) \
                    and reading[1] != self._last_taken:
                self._check_reading(self.result, 0.0, *reading)
                self._last_m, self._last_taken = reading
        return None if reading is None else reading[0]
