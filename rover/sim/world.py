"""The simulated world: the car, the people, and the camera's frames over time.

Pure: numpy and the standard library. Time is scenario time in seconds; the
caller decides how it maps to the clock (the runner runs it in real time).
Each :meth:`World.step` advances the physics, appends one row to the trace,
and returns the frames whose processing finished in this step, ready to be
published. Frames are captured one at a time: a frame is captured, processed
for one (jittered) period, and the next frame is captured when it is done,
as the detector on a Pi does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rover.sim import car as carlib
from rover.sim.camera import CameraModel, Person, in_view, project_person, surface_distance
from rover.sim.noise import DetectorModel, SimDetection, detect, processing_time
from rover.sim.scenarios import Scenario
from rover.sim.sonar import SonarModel, Wall, true_range

#: Columns of the trace, one row per step.
TRACE_COLUMNS = ("t", "car_x", "car_y", "heading", "speed", "steer", "pan",
                 "throttle_cmd", "steering_cmd", "pan_cmd", "cam_x", "cam_y", "cam_yaw",
                 "target_distance", "target_in_view", "min_distance")


@dataclass(frozen=True)
class Frame:
    """One processed frame: captured at ``t_capture``, published at ``t_publish`` (scenario s)."""

    seq: int
    t_capture: float
    t_publish: float
    detections: tuple[SimDetection, ...]

    def sees(self, person: int) -> bool:
        return any(d.person == person for d in self.detections)


@dataclass
class World:
    """Car, people and camera of one scenario, advanced step by step."""

    scenario: Scenario
    car_model: carlib.CarModel = field(default_factory=carlib.CarModel)
    camera: CameraModel = field(default_factory=CameraModel)
    detector: DetectorModel = field(default_factory=DetectorModel)
    seed: int = 0
    #: Flat obstacles (a wall to calibrate against): only the ultrasonic sees them.
    walls: tuple[Wall, ...] = ()
    sonar: SonarModel = field(default_factory=SonarModel)

    def __post_init__(self) -> None:
        # Two streams: the car's noise is drawn every step (their number depends
        # on the wall clock), each frame's detector noise from its own seed, so
        # a seed fixes what the detector reports in frame n however the steps fell.
        self.rng = np.random.default_rng([self.seed, 0])
        self.t = 0.0
        self.car = carlib.CarState()
        self.command = carlib.Command()
        self._paths = [p.keyframes() for p in self.scenario.people]
        self.trace: list[tuple[float, ...]] = []
        self.people_trace: list[list[tuple[float, float, bool]]] = []
        self.frames: list[Frame] = []
        self._pending: Frame | None = None
        self._seq = 0
        self._pending = self._capture()

    def people(self) -> list[tuple[Person, bool]]:
        """Each person where they stand now, and whether they are still there (not hidden)."""
        out = []
        for path, frames in zip(self.scenario.people, self._paths):
            x, y = path.position(self.t, frames)
            out.append((Person(x, y, path.height_m), path.visible(self.t)))
        return out

    def range_m(self) -> float:
        """What the car's ultrasonic would see now without noise: the nearest wall or person in its cone (inf: none)."""
        people = [(p.x, p.y, p.radius_m) for p, here in self.people() if here]
        return true_range(self.car.x, self.car.y, self.car.heading, self.walls, people, self.sonar)

    def apply(self, command: carlib.Command) -> None:
        """The newest chassis command; it acts from the next step on."""
        self.command = command

    def step(self, dt: float) -> list[Frame]:
        """Advance ``dt`` seconds; return the frames published during this step."""
        self.car = carlib.step(self.car, self.command, dt, self.car_model, self.rng)
        self.t += dt
        self._record()
        done: list[Frame] = []
        while self._pending is not None and self._pending.t_publish <= self.t:
            done.append(self._pending)
            self.frames.append(self._pending)
            self._pending = self._capture(at=self._pending.t_publish)
        return done

    def _capture(self, at: float | None = None) -> Frame:
        cam_x, cam_y, cam_yaw = carlib.camera_pose(self.car, self.car_model)
        truth = []
        for person, present in self.people():
            seen = project_person(cam_x, cam_y, cam_yaw, person, self.camera) if present else None
            truth.append(None if seen is None else (seen[0], seen[1], surface_distance(cam_x, cam_y, person)))
        t = self.t if at is None else at
        self._seq += 1
        frame_rng = np.random.default_rng([self.seed, 1, self._seq])
        detections = detect(truth, self.detector, frame_rng)
        return Frame(self._seq, t, t + processing_time(self.detector, frame_rng), tuple(detections))

    def _record(self) -> None:
        cam_x, cam_y, cam_yaw = carlib.camera_pose(self.car, self.car_model)
        people = self.people()
        target, present = people[0]
        dist = surface_distance(cam_x, cam_y, target)
        nearest = min(surface_distance(cam_x, cam_y, p) for p, here in people if here) if any(h for _, h in people) else math.inf
        c = self.car
        self.trace.append((self.t, c.x, c.y, c.heading, c.speed, c.steer, c.pan,
                           self.command.throttle, self.command.steering, self.command.pan,
                           cam_x, cam_y, cam_yaw, dist,
                           float(present and in_view(cam_x, cam_y, cam_yaw, target, self.camera)), nearest))
        self.people_trace.append([(p.x, p.y, here) for p, here in people])

    def people_array(self) -> np.ndarray:
        """(rows x people x 3): each person's x, y (m) and 1.0 while there, per trace row."""
        return np.array(self.people_trace, dtype=float).reshape(-1, len(self.scenario.people), 3)

    def trace_array(self) -> np.ndarray:
        """The trace as an array with the columns of :data:`TRACE_COLUMNS`."""
        return np.array(self.trace, dtype=float).reshape(-1, len(TRACE_COLUMNS))
