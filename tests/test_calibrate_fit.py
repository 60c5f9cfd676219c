"""The pure parts of rover-calibrate motors: range series -> speed, moving or not, the speed line; the TOML edit."""

from __future__ import annotations

import math
import tomllib

import pytest

from rover.hw import motorfit
from rover.hw.motorfit import (LineFit, SpeedEstimate, StepResult, calibrate, fit_line, moved, plan_duties, refusals,
                              robust_slope, step_speed)
from rover.hw.tomledit import set_keys


def approach(speed: float, start_m: float = 2.0, t0: float = 10.0, n: int = 10, dt: float = 0.1) -> list[tuple[float, float]]:
    return [(t0 + i * dt, start_m - speed * i * dt) for i in range(n)]


def test_the_robust_slope_ignores_a_late_reading_least_squares_would_follow() -> None:
    readings = approach(0.5)
    readings[3] = (readings[3][0], readings[3][1] + 0.34)  # seen 2 ms late: 0.34 m too far
    slope, _ = robust_slope(readings)
    assert slope == pytest.approx(-0.5, abs=0.01)
    ts, rs = zip(*readings)
    mean_t, mean_r = sum(ts) / len(ts), sum(rs) / len(rs)
    ls = sum((t - mean_t) * (r - mean_r) for t, r in readings) / sum((t - mean_t) ** 2 for t in ts)
    assert abs(ls + 0.5) > 0.05  # what a plain line fit would have made of it


def test_step_speed_skips_the_settle_time_and_reports_its_samples() -> None:
    # Accelerating for the first 0.3 s (slow), then 0.8 m/s.
    readings = [(10.0 + 0.1 * i, 2.0 - 0.01 * i) for i in range(4)]
    last_t, last_r = readings[-1]
    readings += [(last_t + 0.1 * i, last_r - 0.08 * i) for i in range(1, 7)]
    estimate = step_speed(readings, start_s=10.0, settle_s=0.35)
    assert estimate is not None and estimate.speed_mps == pytest.approx(0.8, abs=1e-9)
    assert estimate.samples == 6 and estimate.residual_m == pytest.approx(0.0, abs=1e-9)
    assert step_speed(readings[:5], start_s=10.0, settle_s=0.35) is None  # fewer than 3 readings left


def test_step_speed_refuses_a_non_finite_reading() -> None:
    with pytest.raises(ValueError, match="not finite"):
        step_speed([(1.0, 2.0), (1.1, math.inf), (1.2, 1.9)], start_s=0.0, settle_s=0.0)


def test_a_standing_car_with_noise_is_not_moving() -> None:
    noise = [0.003, -0.002, 0.004, -0.003, 0.001, 0.0, -0.004]
    readings = [(10.0 + 0.1 * i, 2.0 + e) for i, e in enumerate(noise)]
    estimate = step_speed(readings, start_s=10.0, settle_s=0.0)
    assert not moved(estimate, 2.0, 2.0, min_speed_mps=0.02, min_travel_m=0.01)


def test_moving_needs_both_the_speed_and_the_travel() -> None:
    estimate = step_speed(approach(0.05), start_s=10.0, settle_s=0.0)
    assert moved(estimate, 2.0, 1.96, min_speed_mps=0.02, min_travel_m=0.01)
    assert not moved(estimate, 2.0, 1.995, min_speed_mps=0.02, min_travel_m=0.01)  # fast slope, no travel: noise
    slow = step_speed(approach(0.01), start_s=10.0, settle_s=0.0)
    assert not moved(slow, 2.0, 1.95, min_speed_mps=0.02, min_travel_m=0.01)  # travelled, but creeping
    assert not moved(None, 2.0, 1.5, min_speed_mps=0.02, min_travel_m=0.01)


def test_the_line_through_exact_points_gives_dead_band_and_top_speed() -> None:
    line = fit_line([(20.0, 0.0 + 0.05), (40.0, 0.3), (60.0, 0.55), (80.0, 0.8)])
    assert line.slope_mps_per_pct == pytest.approx(0.0125, rel=0.02)
    assert line.zero_duty_pct == pytest.approx(16.0, abs=1.0)
    assert line.samples == 4 and line.residual_mps < 0.01
    assert LineFit(0.01, 15.0, 0.0, 2).speed_at(100.0) == pytest.approx(0.85)


def test_a_line_needs_two_duties_and_a_rising_speed() -> None:
    with pytest.raises(ValueError, match="two different duties"):
        fit_line([(30.0, 0.2), (30.0, 0.21)])
    with pytest.raises(ValueError, match="did not go faster"):
        fit_line([(30.0, 0.5), (60.0, 0.2)])


def step(duty: float, speed: float | None, is_moving: bool) -> StepResult:
    estimate = None if speed is None else motorfit.SpeedEstimate(speed, 5, 0.001, 0.4, 1.0)
    return StepResult(duty, estimate, is_moving)


def test_calibrate_takes_the_first_step_that_moved_and_the_line_above_it() -> None:
    steps = [step(d, 0.0, False) for d in (1, 2, 3)] + [step(4, 0.03, True), step(40, 0.45, True), step(70, 0.83, True)]
    cal = calibrate(steps, max_duty_pct=100.0)
    assert cal.min_duty_pct == 4 and cal.still_duty_pct == 3
    # The dead-band step sits on the knee of the speed curve: the line is the two steps above it (review 3, M4).
    assert cal.line.samples == 2 and cal.fitted_from_pct == 40 and not cal.knee_included and cal.extrapolated
    assert cal.top_speed_mps == pytest.approx(cal.line.speed_at(100.0))
    reached = calibrate(steps + [step(100, 1.2, True)], max_duty_pct=100.0)
    assert not reached.extrapolated


def test_calibrate_says_what_is_missing() -> None:
    with pytest.raises(ValueError, match="never moved"):
        calibrate([step(d, 0.0, False) for d in (1, 2, 3)], max_duty_pct=100.0)
    with pytest.raises(ValueError, match="two different duties"):
        calibrate([step(1, 0.0, False), step(2, 0.05, True)], max_duty_pct=100.0)


def line_speed(duty: float) -> float:
    """A car of 1.2 m/s at 100 % with a 15 % dead band (the simulator's)."""
    return max(0.0, 1.2 * (duty - 15.0) / 85.0)


def travel(duties: list[float], hold_s: float, tail_s: float) -> float:
    return sum(line_speed(d) for d in duties) * hold_s + line_speed(duties[-1]) * tail_s


def test_the_duties_are_planned_up_to_what_the_room_allows() -> None:
    """The old run spread 4 duties up to 100 % whatever the room: from 1.9 m (the 2024 kit's 2 m sensor) it drove
    two of them and --write refused. Planned from the room, the steps fit and the line may carry the top speed."""
    kwargs = dict(max_duty_pct=100.0, top_duty_pct=100.0, counts=(3, 2), hold_s=0.7, tail_s=0.47)
    duties = plan_duties(26.0, line_speed, 1.35, **kwargs)
    assert len(duties) == 3 and 26.0 < duties[0] < duties[1] < duties[2] < 100.0
    assert travel(duties, 0.7, 0.47) <= 1.35
    assert travel([d + 3 for d in duties], 0.7, 0.47) > 1.35  # the highest that fits, within the 1 % search step
    assert motorfit.extrapolation_ok(26.0, duties[-1], 100.0)
    # Plenty of room: up to max_duty; none: nothing.
    assert plan_duties(26.0, line_speed, 10.0, **kwargs)[-1] == 100.0
    assert plan_duties(26.0, line_speed, 0.01, **kwargs) == []


def test_a_plan_that_cannot_meet_the_extrapolation_rule_is_the_one_reaching_highest() -> None:
    """Too little room for a line --write may keep: the plan drives as high as it can (the refusal says why)."""
    duties = plan_duties(26.0, line_speed, 0.6, max_duty_pct=100.0, top_duty_pct=100.0, counts=(3, 2),
                         hold_s=0.7, tail_s=0.47)
    assert len(duties) == 2 and not motorfit.extrapolation_ok(26.0, duties[-1], 100.0)
    assert travel(duties, 0.7, 0.47) <= 0.6
    # Re-planned from the last step driven, the line still counted from its first step.
    later = plan_duties(40.0, line_speed, 1.0, max_duty_pct=100.0, top_duty_pct=100.0, counts=(1,), hold_s=0.7,
                        tail_s=0.47, line_from_pct=26.0)
    assert len(later) == 1 and later[0] > 40.0 and travel(later, 0.7, 0.47) <= 1.0


def test_set_keys_replaces_in_place_and_keeps_comments_and_order() -> None:
    text = ("# rover\n[drive]\nbackend = \"picar-b\"  # the kit\ntop_speed_mps = 1.2   # guessed\n\n"
            "[picar_b]\nmin_duty = 0\nmax_duty = 80\n")
    new = set_keys(text, {"picar_b": {"min_duty": "17"}, "drive": {"top_speed_mps": "1.05"}})
    assert new == ("# rover\n[drive]\nbackend = \"picar-b\"  # the kit\ntop_speed_mps = 1.05   # guessed\n\n"
                   "[picar_b]\nmin_duty = 17\nmax_duty = 80\n")


def test_set_keys_adds_missing_keys_and_sections() -> None:
    text = "[drive]\nbackend = \"picar-b2\"\n\n[view]\nport = 8080\n"
    new = set_keys(text, {"picar_b2": {"min_duty": "21"}, "drive": {"top_speed_mps": "0.98"}})
    data = tomllib.loads(new)
    assert data == {"drive": {"backend": "picar-b2", "top_speed_mps": 0.98}, "view": {"port": 8080},
                    "picar_b2": {"min_duty": 21}}
    assert new.index("top_speed_mps") < new.index("[view]")  # in its own section, not the next one
    assert tomllib.loads(set_keys("", {"drive": {"top_speed_mps": "1"}})) == {"drive": {"top_speed_mps": 1}}


def test_set_keys_leaves_a_key_of_the_same_name_in_another_section() -> None:
    text = "[picar_b]\nmin_duty = 5\n[picar_b2]\nmin_duty = 7\n"
    assert tomllib.loads(set_keys(text, {"picar_b2": {"min_duty": "20"}})) == {
        "picar_b": {"min_duty": 5}, "picar_b2": {"min_duty": 20}}


def test_a_step_that_stood_still_above_the_dead_band_is_refused() -> None:
    """Something held the car (or the range was not its motion): never a fit (review 3, H3)."""
    steps = [step(1, 0.0, False), step(2, 0.05, True), step(40, -0.4, False), step(70, 0.83, True)]
    with pytest.raises(ValueError, match="did not approach the wall at 40 %"):
        calibrate(steps, max_duty_pct=100.0)


def test_only_one_step_above_the_dead_band_rests_on_the_knee_and_is_refused() -> None:
    cal = calibrate([step(1, 0.0, False), step(2, 0.05, True), step(40, 0.45, True)], max_duty_pct=100.0)
    assert cal.knee_included and cal.line.samples == 2
    assert any("rests on the dead-band step" in why for why in refusals(cal, []))


def test_refusals_name_scatter_bounds_uncertainty_and_extrapolation() -> None:
    good = [step(1, 0.0, False), step(20, 0.02, True)] + [step(d, 0.0125 * (d - 20), True) for d in (40, 60, 80, 100)]
    cal = calibrate(good, max_duty_pct=100.0)
    assert refusals(cal, good) == [] and cal.top_speed_mps == pytest.approx(1.0)
    scattered = good[:-1] + [StepResult(100, SpeedEstimate(1.0, 8, 0.05, 0.5, 1.0), True)]
    assert any("scatter 0.050 m" in why for why in refusals(calibrate(scattered, max_duty_pct=100.0), scattered))
    fast = [step(1, 0.0, False), step(2, 0.05, True)] + [step(d, 0.05 * d, True) for d in (40, 60, 80, 100)]
    assert any("outside 0.1 to 3 m/s" in why for why in refusals(calibrate(fast, max_duty_pct=100.0), fast))
    noisy = good[:2] + [step(40, 0.30, True), step(50, 0.30, True), step(60, 0.55, True)]
    why = refusals(calibrate(noisy, max_duty_pct=100.0), noisy)
    assert any("standard error" in w for w in why) and any("extrapolated 40.0 duty points" in w for w in why)
    two = good[:2] + [step(40, 0.25, True), step(60, 0.5, True)]
    assert any("unknown (two steps)" in w for w in refusals(calibrate(two, max_duty_pct=100.0), two))
