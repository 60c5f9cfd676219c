"""One scenario in a single process, on a simulated clock: the real drive loop, no sockets.

The unchanged :class:`rover.drive.loop.DriveLoop` (message gate, tracker,
limits, state machine, control law) runs against the world of
:mod:`rover.sim.world`: its detection source advances the world's physics
(100 Hz) up to the loop's poll timeout or the next published frame, and
hands over that frame encoded as the detector would (schema v1, through the
same decoder); its chassis applies every command to the world with the
PiCar-B backend's throttle-to-duty mapping. Time is the world's time, so a
10 s scenario takes a fraction of a second and a seed gives the same run
every time. What the real processes add (sockets, scheduling) is tested by
:mod:`rover.sim.runner`; the control logic is the same object.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rover.core import messages
from rover.drive.config import DriveConfig
from rover.drive.loop import DriveLoop
from rover.drive.states import State
from rover.hw.config import PicarBConfig
from rover.sim.camera import CameraModel
from rover.sim.car import CarModel, Command
from rover.sim.chassis import CommandChassis
from rover.sim.noise import DetectorModel
from rover.sim.scenarios import Scenario
from rover.sim.sonar import SimRanger, SimSonar
from rover.sim.summary import Criteria, summarise
from rover.sim.wire import frame_message
from rover.sim.world import Frame, World

STEP_S = 0.01
_T0 = 100.0  # the loop's clock at scenario time 0 (monotonic seconds are positive)


class SimClock:
    """The loop's clock: scenario time plus an offset."""

    def __init__(self, world: World) -> None:
        self.world = world

    def __call__(self) -> float:
        return _T0 + self.world.t


class WorldChassis(CommandChassis):
    """A :class:`rover.hw.chassis.Chassis` whose commands go straight to the world (``ranger``: its ultrasonic)."""

    def __init__(self, world: World, config: PicarBConfig, ranger: SimRanger | None = None) -> None:
        super().__init__(config, ranger)
        self.world = world
        self.history: list[tuple[float, Command]] = []

    def distance_m(self) -> float | None:
        if self.ranger is not None:
            self.ranger.catch_up()  # the measurements due by now (the drive asks at every step)
        return super().distance_m()

    def _apply(self, command: Command) -> None:
        self.world.apply(command)
        self.history.append((self.world.t, command))

    def close(self) -> None:
        self.safe()


class WorldStream:
    """The drive's detection source: advances the world until a frame is published or the timeout ends."""

    def __init__(self, world: World, scenario: Scenario) -> None:
        self.world, self.scenario = world, scenario
        self.published: list[Frame] = []
        self.dead = False

    def recv(self, timeout_s: float) -> bytes | None:
        world = self.world
        end = world.t + max(0.001, timeout_s)  # the subscriber polls in whole milliseconds, and time passes
        while world.t < end - 1e-12:
            done = world.step(min(STEP_S, end - world.t))
            kill = self.scenario.kill_detector_at
            if kill is not None and world.t >= kill:
                self.dead = True
            if done and not self.dead:
                frame = done[-1]  # conflate: the newest
                self.published.append(Frame(frame.seq, frame.t_capture, world.t, frame.detections))
                capture_ns = round((_T0 + frame.t_capture) * 1e9)
                msg = frame_message(frame, capture_ns, 1.7e9 + frame.t_capture, round((_T0 + world.t) * 1e9),
                                    world.camera, world.detector)
                return messages.encode(msg)
        return None


@dataclass
class InProcessResult:
    summary: dict[str, Any]
    trace: np.ndarray
    people: np.ndarray
    published: list[Frame]
    drive_states: list[tuple[float, str]] = field(default_factory=list)
    faster_s: float = 0.0
    deadman_trips: int = 0
    followed: list[tuple[float, int | None]] = field(default_factory=list)  # (publish time, person) the drive took as its target


def drive_config_for(scenario_follow: DriveConfig | None = None, **changes: Any) -> DriveConfig:
    """The drive's config for a simulated run: the defaults (or ``scenario_follow``) with ``changes``."""
    return dataclasses.replace(scenario_follow or DriveConfig(), backend="sim", **changes)


def run_inprocess(scenario: Scenario, *, seed: int = 0, detector: DetectorModel | None = None,
                  car: CarModel | None = None, camera: CameraModel | None = None,
                  drive: DriveConfig | None = None, picar: PicarBConfig | None = None,
                  ultrasonic: bool = False) -> InProcessResult:
    """Run ``scenario`` to its end on the simulated clock and summarise it (``ultrasonic``: the car has one)."""
    car = car or CarModel()
    world = World(scenario, car, camera or CameraModel(), detector or DetectorModel(), seed)
    drive = drive or drive_config_for()
    picar = picar or PicarBConfig(min_duty=car.deadband_duty * 100)
    ranger = None
    if ultrasonic:
        sensor = SimSonar(world.range_m, world.sonar, np.random.default_rng([seed, 2]))
        ranger = SimRanger(sensor, SimClock(world), picar)
    chassis = WorldChassis(world, picar, ranger)
    stream = WorldStream(world, scenario)
    loop = DriveLoop(drive, chassis, stream, None, clock=SimClock(world))
    chassis.safe()
    states: list[tuple[float, str]] = []
    faster_s, trips, last_state = 0.0, 0, State.SAFE
    followed: list[tuple[float, int | None]] = []
    while world.t < scenario.duration_s:
        before, messages = world.t, loop.tracker.messages
        loop.step()
        if loop.tracker.messages > messages and loop.tracker.seen is not None and stream.published:
            followed.append((stream.published[-1].t_publish, _person(stream.published[-1], loop.tracker.seen.box)))
        if loop.state is not last_state:
            if loop.state is State.SAFE and last_state is not State.SAFE:
                trips += 1
            states.append((world.t, loop.state.value))
            last_state = loop.state
        if loop.controller.faster:
            faster_s += world.t - before
    chassis.close()
    world.step(STEP_S)
    trace, people = world.trace_array(), world.people_array()
    criteria = Criteria.for_drive(drive)
    summary = {"scenario": scenario.name, "seed": seed, "fps": world.detector.fps,
               **summarise(trace, people, stream.published, kill_at=scenario.kill_detector_at,
                           deadband_duty=car.deadband_duty, criteria=criteria, acted=[t for t, _ in followed])}
    summary["deadman_trips"] = max(0, trips - (1 if scenario.kill_detector_at is not None else 0))
    summary["target_faster_s"] = round(faster_s, 2)
    summary["locked"] = _locked(states)
    # frames in which the drive took someone else (another person, a false box) for the followed person
    summary["followed_other_frames"] = sum(1 for _, who in followed if who != 0)
    return InProcessResult(summary, trace, people, stream.published, states, faster_s, trips, followed)


def _person(frame: Frame, box: tuple[float, float, float, float]) -> int | None:
    """The person whose detection in ``frame`` is ``box`` (the box came through the wire: nearest corners)."""
    best = min(frame.detections, key=lambda d: sum(abs(a - b) for a, b in zip(d.box, box)), default=None)
    return None if best is None or sum(abs(a - b) for a, b in zip(best.box, box)) > 1e-3 else best.person


def _locked(states: list[tuple[float, str]]) -> bool:
    """Whether the drive followed at some point and never fell back to SAFE while the stream was alive."""
    return any(s == "FOLLOWING" for _, s in states)


ASSUMPTIONS = ("person_height", "focal_length", "top_speed", "dead_band")


def skewed(drive: DriveConfig, picar: PicarBConfig, factor: float,
           which: tuple[str, ...] = ASSUMPTIONS) -> tuple[DriveConfig, PicarBConfig]:
    """The follower's assumptions ``which`` ``factor`` off the world's truth (0.15: 15 %).

    A positive factor errs in the unsafe direction: person height and focal
    length too high (the range comes out too long: the car drives nearer than
    it thinks), top speed too low (the car is faster than it believes, so it
    travels farther than the limit says), motor dead band too low (small
    throttles do not move the car). A negative factor errs the other way.
    """
    unknown = set(which) - set(ASSUMPTIONS)
    if unknown:
        raise ValueError(f"unknown assumption {min(unknown)!r}: choose from {', '.join(ASSUMPTIONS)}")
    changes: dict[str, float] = {}
    if "person_height" in which:
        changes["person_height_m"] = drive.person_height_m * (1 + factor)
    if "focal_length" in which:
        for name in ("camera_hfov_deg", "camera_vfov_deg"):
            changes[name] = 2 * math.degrees(math.atan(math.tan(math.radians(getattr(drive, name)) / 2) / (1 + factor)))
    if "top_speed" in which:
        changes["top_speed_mps"] = drive.top_speed_mps * (1 - factor)
    duty = picar.min_duty * (1 - factor) if "dead_band" in which else picar.min_duty
    return dataclasses.replace(drive, **changes), dataclasses.replace(picar, min_duty=duty)
