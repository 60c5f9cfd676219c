"""The simulated car's ultrasonic: geometry of walls and people in its cone, noise, and the kit's ranger on it."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq

from rover.hw.config import PicarBConfig
from rover.hw.ultrasonic import UltrasonicRanger
from rover.sim.chassis import SimChassis
from rover.sim.scenarios import PersonPath, Scenario
from rover.sim.sonar import SimSonar, SonarModel, Wall, reading, true_range
from rover.sim.wallcal import WallRig
from rover.sim.wire import encode_range
from rover.sim.world import World

QUIET = SonarModel(noise_m=0.0, late_p=0.0)


def test_a_wall_straight_ahead_reads_its_distance_from_the_sensor() -> None:
    wall = Wall(3.0, -1.0, 3.0, 1.0)
    assert true_range(0.0, 0.0, 0.0, [wall], [], QUIET) == pytest.approx(3.0 - QUIET.forward_m)


def test_a_wall_at_an_angle_reads_the_nearest_point_inside_the_cone() -> None:
    wall = Wall(2.0, -5.0, 2.0, 5.0)
    heading = math.radians(30.0)  # the perpendicular foot is 30 deg off: outside the 15 deg cone
    sx = QUIET.forward_m * math.cos(heading)
    expected = (2.0 - sx) / math.cos(math.radians(15.0))  # along the cone's nearer edge
    assert true_range(0.0, 0.0, heading, [wall], [], QUIET) == pytest.approx(expected, rel=1e-6)


def test_nothing_in_range_is_inf_and_behind_is_ignored() -> None:
    assert true_range(0.0, 0.0, 0.0, [Wall(5.0, -1, 5.0, 1)], [], QUIET) == math.inf  # beyond 4 m
    assert true_range(0.0, 0.0, 0.0, [Wall(-1.0, -1, -1.0, 1)], [], QUIET) == math.inf
    assert true_range(0.0, 0.0, 0.0, [Wall(1.0, 2.0, 3.0, 2.0)], [], QUIET) == math.inf  # off to the side


def test_people_in_the_cone_are_seen_at_their_surface() -> None:
    ahead = true_range(0.0, 0.0, 0.0, [], [(2.2, 0.0, 0.25)], QUIET)
    assert ahead == pytest.approx(2.2 - QUIET.forward_m - 0.25)
    grazed = true_range(0.0, 0.0, 0.0, [], [(2.0, 0.7, 0.25)], QUIET)  # centre 20 deg off, the edge ray hits
    assert math.isfinite(grazed) and grazed > 1.8 - 0.25
    assert true_range(0.0, 0.0, 0.0, [], [(2.0, 1.5, 0.25)], QUIET) == math.inf


def test_readings_are_noisy_sometimes_late_and_the_median_drops_the_late_ones() -> None:
    model = SonarModel(late_p=0.2)
    rng = np.random.default_rng(1)
    values = [reading(2.0, model, rng) for _ in range(2000)]
    late = [v for v in values if v > 2.02]
    assert 0.12 < len(late) / len(values) < 0.28 and max(late) < 2.0 + 0.002 * 343 / 2 + 0.02
    assert np.median(values) == pytest.approx(2.0, abs=0.005)
    assert reading(math.inf, model, rng) == math.inf


def test_the_world_sees_its_walls_and_the_people_in_front() -> None:
    scenario = Scenario("t", "", 5.0, (PersonPath((2.0, 0.0)),))
    world = World(scenario, walls=(Wall(3.0, -2.0, 3.0, 2.0),), sonar=QUIET)
    assert world.range_m() == pytest.approx(2.0 - QUIET.forward_m - 0.25)  # the person stands in front of the wall
    hidden = Scenario("t", "", 5.0, (PersonPath((2.0, 0.0), hidden_from=0.0),))
    assert World(hidden, walls=(Wall(3.0, -2.0, 3.0, 2.0),), sonar=QUIET).range_m() == pytest.approx(2.8)


def test_the_kits_ranger_runs_on_the_simulated_sensor_and_a_dead_one_goes_unknown() -> None:
    rig = WallRig(2.0, seed=1)
    rig.sleep(0.5)
    assert rig.chassis.has_ranger and rig.chassis.distance_m() == pytest.approx(2.0, abs=0.02)
    rig.sensor.dead = True
    rig.sleep(rig.config.ultrasonic_stale_s + 0.2)
    assert rig.chassis.distance_m() is None and rig.ranger.misses > 0
    assert isinstance(rig.ranger, UltrasonicRanger)


def test_the_rig_car_drives_into_the_wall_gap_as_the_car_model_says() -> None:
    rig = WallRig(2.5, seed=0, sonar=QUIET)
    rig.chassis.drive(0.575)  # throttle = duty with the default min 0 / max 100: (0.575-0.15)/0.85*1.2 = 0.6 m/s
    rig.sleep(2.0)
    assert rig.gap_m() == pytest.approx(2.5 - 0.6 * (2.0 - 0.15), abs=0.06)  # the 0.15 s lag costs 0.09 m
    rig.chassis.close()
    assert rig.world.command.throttle == 0.0


def test_range_messages_round_trip_and_reject_garbage() -> None:
    from rover.core.errors import MessageError
    from rover.sim.wire import decode_range, encode_range

    assert decode_range(encode_range(1.25, 7)) == (1.25, 7)
    assert decode_range(encode_range(math.inf, 8)) == (math.inf, 8)
    assert decode_range(encode_range(None, 9)) == (None, 9)
    with pytest.raises(MessageError):
        decode_range(b'sim.range {"m": -1.0, "far": false, "t_ns": 1}')
    with pytest.raises(MessageError):
        decode_range(b'sim.range {"far": false}')


@pytest.fixture
def zmq_sim_chassis(tmp_path: Path) -> Iterator[tuple[SimChassis, zmq.Socket]]:
    """The ZeroMQ sim chassis (ultrasonic_stale_s 0.3) and the world's socket that publishes its ranges."""
    context = zmq.Context()
    commands, ranges = context.socket(zmq.PULL), context.socket(zmq.PUB)
    commands.bind(f"ipc://{tmp_path}/commands")
    ranges.bind(f"ipc://{tmp_path}/ranges")
    config = dataclasses.replace(PicarBConfig(), ultrasonic_stale_s=0.3)
    chassis = SimChassis(config, endpoint=f"ipc://{tmp_path}/commands", context=context, ranges=f"ipc://{tmp_path}/ranges")
    try:
        yield chassis, ranges
    finally:
        chassis.close()
        commands.close(0)
        ranges.close(0)
        context.term()


def test_the_zmq_sim_chassis_takes_the_worlds_readings_through_the_kits_median(zmq_sim_chassis) -> None:
    chassis, ranges = zmq_sim_chassis
    assert chassis.has_ranger and chassis.distance_m() is None  # nothing measured yet: unknown, not clear
    deadline = time.monotonic() + 10.0
    values = iter([1.50, 1.52, 2.40, 1.51] * 1000)  # one reading seen late among them
    while chassis.distance_m() is None and time.monotonic() < deadline:
        ranges.send(encode_range(next(values), time.monotonic_ns()))
        time.sleep(0.01)
    for _ in range(3):
        ranges.send(encode_range(next(values), time.monotonic_ns()))
    time.sleep(0.05)
    assert chassis.distance_m() == pytest.approx(1.51, abs=0.011)  # the median drops the late 2.40
    for _ in range(5):
        ranges.send(encode_range(None, time.monotonic_ns()))  # the sensor failed: only misses from now on
    time.sleep(0.4)
    assert chassis.distance_m() is None and chassis.ranger.misses >= 1


def test_readings_measured_long_ago_are_stale_however_late_they_arrive(zmq_sim_chassis) -> None:
    """The sim chassis stamps a range with the world's measurement time, not its arrival (review 3, L5)."""
    chassis, ranges = zmq_sim_chassis
    deadline = time.monotonic() + 10.0
    while chassis.distance_m() is None and time.monotonic() < deadline:  # the subscription is up
        ranges.send(encode_range(1.5, time.monotonic_ns()))
        time.sleep(0.01)
    time.sleep(0.4)
    assert chassis.distance_m() is None  # those went stale
    measured = time.monotonic_ns() - 1_000_000_000  # measured 1 s ago, delivered now (a backed-up queue)
    for i in range(3):
        ranges.send(encode_range(0.8, measured + i))
    time.sleep(0.05)
    assert chassis.distance_m() is None, "a reading measured 1 s ago counted as fresh"
    assert chassis.ranger.newest_s() == pytest.approx(measured / 1e9 + 2e-9, abs=1e-6)


def test_in_process_a_dead_simulated_sensor_keeps_the_car_from_driving_forward(monkeypatch) -> None:
    from rover.sim import scenarios
    from rover.sim.inproc import run_inprocess
    from rover.sim.world import TRACE_COLUMNS

    scenario = scenarios.named("straight")
    working = run_inprocess(scenario, ultrasonic=True)
    x = TRACE_COLUMNS.index("car_x")
    assert working.trace[-1, x] > 1.0  # it followed with a working sensor
    monkeypatch.setattr(SimSonar, "measure", lambda self: None)
    dead = run_inprocess(scenario, ultrasonic=True)
    assert dead.trace[:, x].max() < 0.01  # an unknown range blocks forward motion, as on a kit
