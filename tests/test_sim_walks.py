"""Walking pace at a Pi's frame rates: the real drive loop in process on the simulated clock (rover.sim.inproc).

Safety properties for every seed 0-4 and every rate (2, 3, 5, 10 frames/s,
the detector's processing delay one frame period): never nearer anyone than
the stop distance, no dead-man trip while the detector is alive, and after
the person vanishes or the detector dies the car stops within the travel
bound of the last capture it acted on. The in-band share is asserted for the
fixed seeds 0-19 at 1.0 m/s and 3 frames/s (how many meet the 90 % goal, and the worst). In the crossing walk the followed
person stays locked: never another person's box taken for theirs. The same runs with the follower's
assumptions 15 % off the world. The sweep itself is ``python -m rover.sim.sweep``.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest

from rover.drive.config import DriveConfig
from rover.hw.config import PicarBConfig
from rover.sim.inproc import ASSUMPTIONS, drive_config_for, run_inprocess, skewed
from rover.sim.noise import DetectorModel
from rover.sim.scenarios import get, walk

SEEDS = range(5)
RATES = (2.0, 3.0, 5.0, 10.0)
CFG = DriveConfig()


@functools.cache
def summary(kind: str, speed: float, fps: float, seed: int, off: float = 0.0, which: tuple[str, ...] = ASSUMPTIONS) -> dict:
    drive, picar = drive_config_for(), PicarBConfig(min_duty=15.0)
    if off:
        drive, picar = skewed(drive, picar, off, which)
    return run_inprocess(walk(kind, speed), seed=seed, detector=DetectorModel(fps=fps), drive=drive, picar=picar).summary


@pytest.mark.parametrize("fps", RATES)
@pytest.mark.parametrize("kind", ["straight", "stop_and_go", "leave_view", "detector_dies"])
def test_safety_holds_for_every_seed_at_a_normal_and_a_brisk_walk(kind: str, fps: float) -> None:
    for speed in (1.0, 1.3):
        for seed in SEEDS:
            s = summary(kind, speed, fps, seed)
            assert s["closest_approach_m"] >= CFG.stop_distance_m, s
            assert s["deadman_trips"] == 0, s  # at 2 frames/s too: the dead-man follows the stream
            assert s["locked"], s
            if kind in ("leave_view", "detector_dies"):
                # the car's speed is the motors' +-3 % noise off what the drive commands
                assert s["travel_after_last_capture_m"] <= CFG.travel_bound_m * 1.05, s
                assert s["stop_command_s"] <= CFG.max_age_s + CFG.deadman_s, s


@pytest.mark.parametrize("fps", (3.0, 5.0, 10.0))
def test_the_followed_person_stays_locked_while_a_second_person_crosses(fps: float) -> None:
    for speed in (1.0, 1.3):
        for seed in SEEDS:
            s = summary("crossing", speed, fps, seed)
            assert s["followed_other_frames"] == 0, s  # never the crosser's (or a false) box taken for the target
            assert s["followed_person"] == 0 and s["locked"], s  # the car points at them at the end
            assert s["closest_approach_m"] >= CFG.stop_distance_m, s
            assert s["deadman_trips"] == 0, s


@pytest.mark.parametrize("fps", (3.0, 5.0, 10.0))
def test_a_second_person_stepping_into_the_cars_line_is_never_approached_past_the_stop_distance(fps: float) -> None:
    # They stand 3 s between the car and the followed person: the stop distance protects anyone in the path.
    for speed in (0.6, 1.0, 1.3):
        for seed in SEEDS:
            s = summary("crosses_in_front", speed, fps, seed)
            assert s["closest_approach_m"] >= CFG.stop_distance_m, s  # to anyone (the world's nearest person)
            assert s["deadman_trips"] == 0, s


#: The goal (in band >= 90 %) per walk at 1.0 m/s, 3 frames/s: on how many of seeds 0-19 it is met, and the worst
#: seed's share (measured: straight 19/20, worst 0.81; turn 20/20, 0.91; stop and go 15/20, 0.81; see docs/sim.md).
BAND_SEEDS = range(20)
BAND_GOAL = {"straight": (19, 0.78), "turn": (20, 0.9), "stop_and_go": (15, 0.78)}


@pytest.mark.parametrize("kind", sorted(BAND_GOAL))
def test_a_normal_walk_at_3_fps_stays_in_the_band_on_nearly_every_seed(kind: str) -> None:
    # stop and go misses on 5 of 20 seeds: the filter learns of the stop ~1-1.4 s late (a missed or noisy frame
    # right after it), the car rolls 1.2-1.5 m past where it trailed and stands 0.1-0.45 m inside the band
    met, worst = BAND_GOAL[kind]
    runs = [summary(kind, 1.0, 3.0, seed) for seed in BAND_SEEDS]
    shares = [s["in_band_share"] for s in runs]
    assert sum(share >= 0.9 for share in shares) >= met, shares
    assert min(shares) >= worst, shares
    for s in runs:
        assert s["closest_approach_m"] >= CFG.stop_distance_m, s
        assert s["deadman_trips"] == 0 and s["locked"], s


def test_a_person_faster_than_the_car_is_kept_locked_and_flagged() -> None:
    for seed in SEEDS:
        s = summary("straight", 1.3, 2.0, seed)
        assert s["target_faster_s"] > 2.0 and s["locked"], s
        assert s["in_view_share"] >= 0.9, s
    for seed in SEEDS:  # a stroll is never "faster than the car"
        assert summary("straight", 0.6, 3.0, seed)["target_faster_s"] == 0.0


@pytest.mark.parametrize("which", [(name,) for name in ASSUMPTIONS] + [ASSUMPTIONS])
@pytest.mark.parametrize("off", [0.15, -0.15])
def test_safety_holds_with_each_of_the_followers_assumptions_15_percent_off(off: float, which: tuple[str, ...]) -> None:
    for kind in ("straight", "stop_and_go", "detector_dies"):
        for seed in SEEDS:
            s = summary(kind, 1.0, 3.0, seed, off, which)
            assert s["closest_approach_m"] >= CFG.stop_distance_m, s
            assert s["deadman_trips"] == 0, s
            if kind == "detector_dies":  # the car may be faster than it believes by 1 / (1 - off)
                assert s["travel_after_last_capture_m"] <= CFG.travel_bound_m * 1.05 / (1 - abs(off)), s


def test_a_scenario_file_runs_in_process_and_a_bad_one_is_one_line(tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    from rover.sim.scenario_file import load

    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "walk.toml"
    scenario, detector, seed = load(example)
    assert (len(scenario.people), detector.fps, scenario.kill_detector_at) == (2, 3.0, 12.5)
    s = run_inprocess(scenario, seed=seed, detector=detector).summary
    assert s["closest_approach_m"] >= CFG.stop_distance_m and s["stop_reason"] == "detector_died"
    assert s["travel_after_last_capture_m"] <= CFG.travel_bound_m * 1.05
    bad = tmp_path / "bad.toml"
    bad.write_text('[[person]]\nlegs = [["run", 2.0, 3.0]]\n')
    done = subprocess.run([sys.executable, "-m", "rover.sim", "--scenario-file", str(bad), "--in-process"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 78 and "leg 1" in done.stderr and done.stderr.count("\n") == 1


def short(scenario, height_m: float = 1.0):
    """The scenario with every person ``height_m`` tall (a child), the follower still assuming 1.7 m."""
    people = tuple(dataclasses.replace(p, height_m=height_m) for p in scenario.people)
    return dataclasses.replace(scenario, name=f"{scenario.name} ({height_m:g} m tall)", people=people)


@pytest.mark.parametrize("scenario", [get("standing_close"), walk("stop_and_go", 1.0), walk("straight", 1.0)],
                         ids=lambda s: s.name)
def test_a_person_shorter_than_assumed_is_never_approached_past_the_stop_distance(scenario) -> None:
    for seed in range(3):
        s = run_inprocess(short(scenario), seed=seed, detector=DetectorModel(fps=3.0), drive=drive_config_for(),
                          picar=PicarBConfig(min_duty=15.0)).summary
        assert s["closest_approach_m"] >= CFG.stop_distance_m, (seed, s)


def test_a_scenario_file_sets_the_persons_height(tmp_path) -> None:
    from rover.sim import scenario_file

    path = tmp_path / "child.toml"
    path.write_text('duration_s = 3.0\n[[person]]\nstart = [2.0, 0.0]\nheight_m = 1.0\nlegs = [["stand", 3.0]]\n')
    scenario, _, _ = scenario_file.load(path)
    assert scenario.people[0].height_m == 1.0
    path.write_text('[[person]]\nheight_m = 0.1\n')
    with pytest.raises(ValueError, match="height_m"):
        scenario_file.load(path)
