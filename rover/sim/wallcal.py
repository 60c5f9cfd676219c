"""The simulator's car facing a wall, on a simulated clock: ``rover-calibrate motors --backend sim`` (and ``log``).

:class:`WallRig` puts the car of :mod:`rover.sim.car` (its dead band and top
speed are what the calibration should find) in a :class:`rover.sim.world.World`
with one wall ``wall_m`` ahead of its ultrasonic sensor and nobody in front.
Its chassis is a :class:`rover.sim.chassis.CommandChassis` whose commands go
to the world, and whose range comes from the kit's own
:class:`rover.hw.ultrasonic.UltrasonicRanger` (median, staleness, retries)
measuring a :class:`rover.sim.sonar.SimSonar`. ``sleep`` advances the world
and runs the ranger every read interval, as its thread does on the car
(:class:`rover.sim.sonar.SimRanger`), so a
whole calibration takes a fraction of a second and a seed repeats it.

With ``stream`` set (the ``log`` backend, a dry run), every command is also
printed by :class:`rover.hw.log.LogChassis`, with the pins and duty the
``picar-b`` backend would set.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TextIO

import numpy as np

from rover.hw.config import PicarBConfig
from rover.hw.log import LogChassis
from rover.sim.car import CarModel
from rover.sim.chassis import CommandChassis
from rover.sim.scenarios import PersonPath, Scenario
from rover.sim.sonar import SimRanger, SimSonar, SonarModel, Wall
from rover.sim.world import World

STEP_S = 0.01
_T0 = 100.0  # the rig's clock at world time 0
#: Nobody in front: the one person the world needs stands far behind the car, outside the sensor's cone.
_SCENARIO = Scenario("wall", "the car alone, facing a wall", 3600.0, (PersonPath((-30.0, 0.0)),))


class RigChassis(CommandChassis):
    """The rig's car: commands to the world (and to a LogChassis when printing), range from the ranger."""

    def __init__(self, world: World, config: PicarBConfig, ranger: SimRanger, log: LogChassis | None) -> None:
        super().__init__(config, ranger)
        self.world, self.log = world, log
        self.closed = False

    def _apply(self, command: Any) -> None:
        self.world.apply(command)

    def drive(self, throttle: float) -> None:
        super().drive(throttle)
        if self.log is not None:
            self.log.drive(throttle)

    def steer(self, steering: float) -> None:
        super().steer(steering)
        if self.log is not None:
            self.log.steer(steering)

    def safe(self) -> None:
        super().safe()
        if self.log is not None:
            self.log.safe()

    def close(self) -> None:
        if self.closed:
            return
        self.safe()
        self.closed = True
        if self.log is not None:
            self.log.close()


class WallRig:
    """The simulated car ``wall_m`` from a wall; ``clock``/``sleep`` are its simulated time."""

    def __init__(self, wall_m: float = 2.5, *, config: PicarBConfig | None = None, car: CarModel | None = None,
                 sonar: SonarModel | None = None, seed: int = 0, stream: TextIO | None = None) -> None:
        self.config = config or PicarBConfig()
        # The kit's ranger reads nothing in range beyond ultrasonic_max_m (2 m on the 2024 kit), as HCSR04 does.
        sonar = sonar or SonarModel()
        sonar = dataclasses.replace(sonar, max_m=min(sonar.max_m, self.config.ultrasonic_max_m))
        x = sonar.forward_m + wall_m  # the sensor starts at forward_m ahead of the origin
        self.world = World(_SCENARIO, car or CarModel(), seed=seed, walls=(Wall(x, -3.0, x, 3.0),), sonar=sonar)
        self.sensor = SimSonar(self.world.range_m, sonar, np.random.default_rng([seed, 2]))
        self.ranger = SimRanger(self.sensor, self.clock, self.config)
        log = LogChassis(self.config, stream=stream, clock=self.clock) if stream is not None else None
        self.chassis = RigChassis(self.world, self.config, self.ranger, log)

    @property
    def wall_x(self) -> float:
        return self.world.walls[0].x0

    def clock(self) -> float:
        return _T0 + self.world.t

    def sleep(self, seconds: float) -> None:
        """Advance the world by ``seconds`` in physics steps, the ranger measuring every read interval."""
        world = self.world
        end = world.t + max(0.0, seconds)
        while world.t < end - 1e-12:
            self.ranger.catch_up()
            world.step(min(STEP_S, end - world.t))
        self.ranger.catch_up()

    def gap_m(self) -> float:
        """The true distance from the sensor to the wall now."""
        return self.world.range_m()
