"""The simulator's edges: message formats, the sim chassis backend, the summary numbers, the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import zmq

from rover.core import messages
from rover.core.errors import EXIT_CONFIG, MessageError
from rover.hw import PicarBConfig, open_chassis
from rover.sim.camera import CameraModel
from rover.sim.car import Command
from rover.sim.chassis import ENV_ENDPOINT
from rover.sim.noise import DetectorModel, SimDetection
from rover.sim.scenarios import get
from rover.sim.summary import Criteria, lost_moments, summarise
from rover.sim.wire import decode_command, encode_command, frame_message
from rover.sim.world import TRACE_COLUMNS, Frame, World

SCHEMA = Path(__file__).resolve().parents[1] / "rover" / "schemas" / "detection-v1.schema.json"


def test_a_simulated_frame_is_a_valid_schema_v1_message_marked_simulated() -> None:
    frame = Frame(7, 1.0, 1.25, (SimDetection((0.4, 0.2, 0.6, 0.9), 0.91, 0), SimDetection((0.1, 0.1, 0.2, 0.3), 0.4, None)))
    msg = frame_message(frame, 5_000_000_000, 1.7e9, 5_250_000_000, CameraModel(), DetectorModel())
    raw = messages.encode(msg)
    back = messages.decode(raw)
    assert back == msg
    jsonschema.validate(json.loads(raw.partition(b" ")[2]), json.loads(SCHEMA.read_text()))
    assert back.model.precision == "simulated" and back.model.name == "simulated"
    assert back.model.labels == ("person",)  # the simulated detector sees people only
    assert back.timing_ms.capture_to_publish == pytest.approx(250.0)
    assert [d.label for d in back.detections] == ["person", "person"]
    assert (back.frame.width, back.frame.height) == (640, 480)


def test_commands_round_trip_and_bad_ones_are_refused() -> None:
    command, t_ns = decode_command(encode_command(Command(0.5, -0.25, 1.0, 0.0, duty=0.6), 42))
    assert command == Command(0.5, -0.25, 1.0, 0.0, duty=0.6) and t_ns == 42
    with pytest.raises(MessageError, match="within -1..1"):
        decode_command(b'sim.cmd {"throttle":2,"steering":0,"pan":0,"tilt":0,"duty":1,"t_ns":1}')
    with pytest.raises(MessageError, match="expected 'sim.cmd'"):
        decode_command(b'drive {}')


@pytest.mark.slow
def test_the_sim_backend_sends_every_command_and_its_motor_duty_to_the_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"ipc://{tmp_path / 'commands'}"
    monkeypatch.setenv(ENV_ENDPOINT, endpoint)
    context = zmq.Context()
    world = context.socket(zmq.PULL)
    world.bind(endpoint)
    try:
        chassis = open_chassis("sim", PicarBConfig(min_duty=20.0, max_duty=80.0))
        chassis.drive(0.4)
        chassis.steer(-3.0)  # clamped, as every backend does
        chassis.pan(0.2)
        with pytest.raises(ValueError, match="finite"):
            chassis.drive(math.nan)
        chassis.close()
        chassis.close()  # idempotent
        seen = []
        while world.poll(2000):
            seen.append(decode_command(world.recv())[0])
            if len(seen) == 4:
                break
        duty = (20.0 + 0.4 * 60.0) / 100  # the PiCar-B backend's duty mapping for throttle 0.4
        assert seen == [Command(0.4, 0, 0, 0, duty), Command(0.4, -1.0, 0, 0, duty), Command(0.4, -1.0, 0.2, 0, duty),
                        Command(0, 0, 0, 0, 0.0)]
        assert chassis.distance_m() is None
    finally:
        world.close(0)
        context.term()


def test_summary_numbers_from_a_hand_made_trace() -> None:
    # 2 s at 10 Hz: the person 3 m away for 1 s, then 6 m away (outside the 2.5-4.5 m band)
    t = np.arange(1, 21) / 10
    trace = np.zeros((20, len(TRACE_COLUMNS)))
    col = {n: i for i, n in enumerate(TRACE_COLUMNS)}
    trace[:, col["t"]] = t
    trace[:, col["target_distance"]] = np.where(t <= 1.0, 3.0, 6.0)
    trace[:, col["min_distance"]] = trace[:, col["target_distance"]]
    trace[:, col["target_in_view"]] = np.where(t <= 1.5, 1.0, 0.0)
    trace[:, col["throttle_cmd"]] = np.where(t < 1.2, 0.5, np.where(t < 1.4, 0.1, 0.0))
    trace[:, col["speed"]] = np.where(t < 1.6, 0.3, 0.0)
    trace[:, col["car_x"]] = np.cumsum(trace[:, col["speed"]]) / 10
    people = np.zeros((20, 1, 3))
    people[:, 0, 2] = 1.0
    frames = [Frame(1, 0.5, 0.75, (SimDetection((0.4, 0.2, 0.6, 0.9), 0.9, 0),)), Frame(2, 0.75, 1.0, ())]
    s = summarise(trace, people, frames, kill_at=None, deadband_duty=0.15, criteria=Criteria())
    assert s["follow_distance_mean_m"] == pytest.approx(4.5)
    assert s["follow_distance_max_m"] == pytest.approx(6.0)
    assert s["in_band_share"] == pytest.approx(0.5)
    assert s["in_view_share"] == pytest.approx(0.75)
    assert s["closest_approach_m"] == pytest.approx(3.0)
    assert s["stop_reason"] == "target_vanished" and s["last_detection_t"] == 0.75
    assert s["motors_off_s"] == pytest.approx(1.2 - 0.75)
    assert s["stop_command_s"] == pytest.approx(1.4 - 0.75)
    assert s["standstill_s"] == pytest.approx(1.6 - 0.75)
    assert lost_moments(frames) == [1.0]


def test_the_travel_after_the_stop_is_measured_from_the_newest_capture_the_drive_acted_on() -> None:
    # The car drives at 0.3 m/s until 1.6 s. The followed person is in the frame captured at 0.5 s only; the drive
    # then took someone else for its target in the frame captured at 0.75 s: its travel bound runs from that one.
    t = np.arange(1, 21) / 10
    trace = np.zeros((20, len(TRACE_COLUMNS)))
    col = {n: i for i, n in enumerate(TRACE_COLUMNS)}
    trace[:, col["t"]] = t
    trace[:, col["target_distance"]] = trace[:, col["min_distance"]] = 3.0
    trace[:, col["speed"]] = np.where(t < 1.6, 0.3, 0.0)
    trace[:, col["car_x"]] = np.cumsum(trace[:, col["speed"]]) / 10
    people = np.zeros((20, 2, 3))
    people[:, :, 2] = 1.0
    people[15:, 0, 2] = 0.0  # the followed person is gone at the end: the stop counts
    frames = [Frame(1, 0.5, 0.75, (SimDetection((0.4, 0.2, 0.6, 0.9), 0.9, 0),)),
              Frame(2, 0.75, 1.0, (SimDetection((0.1, 0.2, 0.3, 0.9), 0.9, 1),))]
    x = trace[:, col["car_x"]]
    driven_after = {c: float(x[-1] - x[t >= c][0]) for c in (0.5, 0.75)}
    s = summarise(trace, people, frames, kill_at=None, deadband_duty=0.15, criteria=Criteria(), acted=[0.75, 1.0])
    assert s["stop_reason"] == "target_vanished"
    assert s["travel_after_last_capture_m"] == pytest.approx(driven_after[0.75], abs=1e-3)
    s = summarise(trace, people, frames, kill_at=None, deadband_duty=0.15, criteria=Criteria(), acted=[0.75])
    assert s["travel_after_last_capture_m"] == pytest.approx(driven_after[0.5], abs=1e-3)  # acted on the person's


def test_the_world_applies_commands_and_publishes_one_frame_per_period() -> None:
    world = World(get("standing_close"), detector=DetectorModel(fps=10.0), seed=3)
    world.apply(Command(throttle=0.8))
    frames = []
    for _ in range(200):
        frames += world.step(0.01)
    assert world.car.x > 0.5  # it drove forward
    assert 17 <= len(frames) <= 23  # ~10 frames/s for 2 s
    assert all(f.t_publish > f.t_capture for f in frames)
    assert all(b.t_capture >= a.t_publish - 1e-9 for a, b in zip(frames, frames[1:]))  # one at a time
    assert world.trace_array().shape == (200, len(TRACE_COLUMNS))


@pytest.mark.parametrize("argv, text", [(["--scenario", "moonwalk"], "unknown scenario 'moonwalk'"),
                                        (["--fps", "fast"], "--fps 'fast' is neither a number"),
                                        (["--fps", "500"], "fps must be between")])
def test_bad_cli_values_exit_78_with_one_line(argv: list[str], text: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "rover.sim", *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == EXIT_CONFIG
    assert text in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_list_names_every_scenario() -> None:
    proc = subprocess.run([sys.executable, "-m", "rover.sim", "--list"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert {line.split()[0] for line in proc.stdout.splitlines()} >= {"straight", "crossing", "detector_dies"}


def test_the_picture_shows_both_paths_and_the_lost_moment() -> None:
    from rover.sim.plot import BLUE, GREEN, RED, render

    world = World(get("straight"), seed=0)
    world.apply(Command(throttle=0.5))
    for _ in range(300):
        world.step(0.01)
    trace, people = world.trace_array(), world.people_array()

    def has(image: np.ndarray, colour: tuple[int, int, int]) -> bool:
        return bool(np.all(image == np.array(colour, np.uint8), axis=-1).any())

    plain = render(trace, people, [], None, "t")
    marked = render(trace, people, [2.0], None, "t")
    assert plain.shape == (800 + 260, 800, 3) and plain.dtype == np.uint8
    assert has(plain[:800], GREEN) and has(plain[:800], BLUE)
    red_plain = np.all(plain == np.array(RED, np.uint8), axis=-1).sum()
    red_marked = np.all(marked == np.array(RED, np.uint8), axis=-1).sum()
    assert red_marked > red_plain + 20  # two crosses: on the car's and the person's path
    with_band = render(trace, people, [], None, "t", band=(2.0, 3.5), stop_m=1.0)
    strip = with_band[800:]
    assert has(strip, (215, 240, 215)) and has(strip, RED) and has(strip, BLUE)  # band, stop distance, throttle
