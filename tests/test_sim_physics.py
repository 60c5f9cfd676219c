"""The simulator's pure models, checked with plain numbers: car, camera, detector noise, scenarios."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rover.sim import car as carlib
from rover.sim.camera import CameraModel, Person, in_view, project_person, surface_distance
from rover.sim.noise import DetectorModel, detect, processing_time
from rover.sim.scenarios import SCENARIOS, PersonPath, get


def drive_for(seconds: float, command: carlib.Command, model: carlib.CarModel | None = None) -> carlib.CarState:
    model = model or carlib.CarModel(speed_noise=0.0)
    state = carlib.CarState()
    for _ in range(round(seconds / 0.01)):
        state = carlib.step(state, command, 0.01, model)
    return state


def test_speed_follows_duty_with_a_dead_band() -> None:
    model = carlib.CarModel()
    assert carlib.duty_to_speed(0.1, model) == 0.0  # below the motors' dead band the wheels do not turn
    assert carlib.duty_to_speed(1.0, model) == pytest.approx(model.max_speed_mps)
    assert carlib.duty_to_speed(-1.0, model) == pytest.approx(-model.max_speed_mps)
    half = carlib.duty_to_speed((1 + model.deadband_duty) / 2, model)
    assert half == pytest.approx(model.max_speed_mps / 2)


def test_straight_throttle_drives_straight_ahead_after_a_lag() -> None:
    model = carlib.CarModel(speed_noise=0.0)
    early = drive_for(0.05, carlib.Command(throttle=1.0), model)
    assert 0 < early.speed < 0.5 * model.max_speed_mps  # the motors need time to spin up
    state = drive_for(2.0, carlib.Command(throttle=1.0), model)
    assert state.speed == pytest.approx(model.max_speed_mps, rel=1e-3)
    assert state.x == pytest.approx(2.0 * model.max_speed_mps - model.max_speed_mps * model.speed_tau_s, rel=0.02)
    assert state.y == pytest.approx(0.0, abs=1e-9)


def test_steering_left_turns_the_car_left_on_the_bicycle_radius() -> None:
    model = carlib.CarModel(speed_noise=0.0)
    state = drive_for(1.0, carlib.Command(throttle=0.6, steering=1.0), model)
    assert state.heading > 0 and state.y > 0  # left = counter-clockwise
    right = drive_for(1.0, carlib.Command(throttle=0.6, steering=-1.0), model)
    assert right.heading == pytest.approx(-state.heading)
    # at steady speed the yaw rate is v * tan(max steer) / wheelbase
    later = drive_for(2.0, carlib.Command(throttle=0.6, steering=1.0), model)
    v = carlib.duty_to_speed(0.6, model)
    assert (later.heading - state.heading) == pytest.approx(v * math.tan(math.radians(30)) / 0.14, rel=0.03)


def test_cutting_the_motors_stops_the_car_within_a_third_of_a_second() -> None:
    model = carlib.CarModel(speed_noise=0.0)
    state = drive_for(1.0, carlib.Command(throttle=0.6), model)
    for _ in range(30):
        state = carlib.step(state, carlib.Command(), 0.01, model)
    assert state.speed == 0.0


def test_pan_servo_slews_to_its_angle() -> None:
    model = carlib.CarModel()
    state = carlib.step(carlib.CarState(), carlib.Command(pan=1.0), 0.05, model)
    assert state.pan == pytest.approx(math.radians(30))  # 600 deg/s for 50 ms
    state = drive_for(0.5, carlib.Command(pan=1.0), model)
    assert state.pan == pytest.approx(math.radians(model.max_pan_deg))
    x, y, yaw = carlib.camera_pose(state, model)
    assert (x, y, yaw) == pytest.approx((model.camera_forward_m, 0.0, math.radians(60)))


def test_person_straight_ahead_gives_a_centred_box_of_pinhole_height() -> None:
    camera = CameraModel(height_m=0.85, pitch_deg=0.0)  # lens at the person's mid-height
    box, visible = project_person(0.0, 0.0, 0.0, Person(4.25, 0.0), camera)
    x1, y1, x2, y2 = box
    tan_v = math.tan(math.radians(48.8 / 2))
    assert (x1 + x2) / 2 == pytest.approx(0.5, abs=1e-6)
    assert (y1 + y2) / 2 == pytest.approx(0.5, abs=1e-6)
    assert y2 - y1 == pytest.approx(1.7 / 4.0 / (2 * tan_v), rel=1e-3)  # near surface 4 m away
    half_angle = math.asin(0.25 / 4.25)
    assert x2 - x1 == pytest.approx(math.tan(half_angle) / math.tan(math.radians(31.1)), rel=1e-2)
    assert visible == pytest.approx(1.0)


def test_a_person_to_the_left_appears_left_and_a_closer_one_is_taller() -> None:
    camera = CameraModel()
    far, _ = project_person(0.0, 0.0, 0.0, Person(4.0, 1.0), camera)
    near, _ = project_person(0.0, 0.0, 0.0, Person(2.5, 0.0), camera)
    assert (far[0] + far[2]) / 2 < 0.5
    assert near[3] - near[1] > far[3] - far[1]


def test_panning_the_head_towards_a_person_centres_them() -> None:
    camera = CameraModel()
    bearing = math.atan2(2.0, 3.0)
    off, _ = project_person(0.0, 0.0, 0.0, Person(3.0, 2.0), camera)
    on, _ = project_person(0.0, 0.0, bearing, Person(3.0, 2.0), camera)
    assert abs((on[0] + on[2]) / 2 - 0.5) < 1e-3 < abs((off[0] + off[2]) / 2 - 0.5)


def test_people_behind_or_beside_the_camera_are_not_seen() -> None:
    camera = CameraModel()
    assert project_person(0.0, 0.0, 0.0, Person(-3.0, 0.0), camera) is None
    assert project_person(0.0, 0.0, 0.0, Person(0.5, 3.0), camera) is None
    assert not in_view(0.0, 0.0, 0.0, Person(1.0, 2.0), camera)
    assert in_view(0.0, 0.0, 0.0, Person(3.0, 0.5), camera)
    assert surface_distance(0.0, 0.0, Person(3.0, 4.0)) == pytest.approx(4.75)


def test_a_person_at_the_frame_edge_reports_the_visible_share() -> None:
    camera = CameraModel()
    edge = math.tan(math.radians(31.1)) * 3.0  # their axis on the frame's left edge
    box, visible = project_person(0.0, 0.0, 0.0, Person(3.0, edge), camera)
    assert box[0] == 0.0
    assert 0.3 < visible < 0.7


def test_detector_noise_is_seeded_and_realistic() -> None:
    model = DetectorModel()
    truth = [((0.4, 0.2, 0.6, 0.8), 1.0, 3.0)]
    runs = [detect(truth, model, np.random.default_rng(7)) for _ in range(2)]
    assert runs[0] == runs[1]  # a seed fixes every outcome
    rng = np.random.default_rng(1)
    frames = [detect(truth, model, rng) for _ in range(2000)]
    found = [d for f in frames for d in f if d.person == 0]
    false = [d for f in frames for d in f if d.person is None]
    assert 0.9 < len(found) / 2000 < 0.99  # ~5 % misses
    assert 0.005 < len(false) / 2000 < 0.04  # ~2 % false boxes
    centres = np.array([(d.box[0] + d.box[2]) / 2 for d in found])
    assert abs(centres.mean() - 0.5) < 0.005 and 0.001 < centres.std() < 0.02


def test_small_hidden_or_clipped_people_are_missed() -> None:
    model = DetectorModel(miss_rate=0.0, false_rate=0.0)
    rng = np.random.default_rng(0)
    assert detect([((0.5, 0.5, 0.51, 0.52), 1.0, 20.0)], model, rng) == []  # 2 % of the frame high
    assert detect([((0.0, 0.2, 0.1, 0.8), 0.2, 3.0)], model, rng) == []  # mostly outside the frame
    near, far = ((0.3, 0.1, 0.7, 0.9), 1.0, 2.0), ((0.4, 0.3, 0.6, 0.7), 1.0, 5.0)
    assert [d.person for d in detect([near, far], model, rng)] == [0]  # the nearer one hides the farther


def test_processing_time_is_about_one_frame_period() -> None:
    rng = np.random.default_rng(0)
    pi4 = [processing_time(DetectorModel(fps=4.0), rng) for _ in range(500)]
    assert np.mean(pi4) == pytest.approx(0.25, rel=0.03)
    with pytest.raises(ValueError, match="fps"):
        DetectorModel(fps=0.0)


def test_paths_walk_turn_and_stand_as_written() -> None:
    path = PersonPath((0.0, 0.0), 0.0, (("walk", 1.0, 2.0), ("turn", 1.0, math.pi / 2, 90.0), ("stand", 1.0)))
    assert path.position(2.0) == pytest.approx((2.0, 0.0))
    end = path.position(10.0)
    assert end == pytest.approx((3.0, 1.0), abs=0.01)  # a quarter circle of radius 1 m
    hidden = PersonPath((0.0, 0.0), hidden_from=1.5)
    assert hidden.visible(1.0) and not hidden.visible(2.0)


def test_every_required_scenario_exists() -> None:
    assert {"straight", "turn", "stop_and_go", "leave_view", "crossing", "standing_close", "detector_dies"} <= set(SCENARIOS)
    assert get("crossing").people[1].start != get("crossing").people[0].start
    with pytest.raises(ValueError, match="choose one of"):
        get("moonwalk")


def test_the_models_import_neither_sockets_nor_opencv() -> None:
    import subprocess
    import sys

    code = ("import sys, rover.sim.world, rover.sim.summary, rover.sim.wire, rover.sim.scenarios; "
            "print(sorted(m for m in ('zmq', 'cv2', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
