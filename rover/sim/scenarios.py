"""The scenarios: who walks where, and what goes wrong. Data, not code.

Pure: numpy and the standard library. The car starts at the origin facing
+x. Each person follows a path built from legs, each a plain tuple:

- ``("walk", speed_mps, seconds)``: straight on at the current heading;
- ``("turn", speed_mps, seconds, degrees)``: along an arc, turning
  ``degrees`` in total (positive = left);
- ``("stand", seconds)``: stand still;
- ``("face", degrees)``: turn on the spot to an absolute heading.

Person 0 is the one the car is meant to follow. ``hidden_from`` makes a
person vanish (through a door) at that scenario time; ``kill_detector_at``
kills the process that publishes the detections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Leg = tuple[Any, ...]
_STEP_S = 0.05


@dataclass(frozen=True)
class PersonPath:
    """Start (m), start heading (deg), legs and the person's height (m); times in seconds from the start."""

    start: tuple[float, float]
    heading_deg: float = 0.0
    legs: tuple[Leg, ...] = ()
    hidden_from: float | None = None
    height_m: float = 1.7

    def keyframes(self) -> np.ndarray:
        """``[[t, x, y], ...]`` every 50 ms along the path."""
        t, (x, y), heading = 0.0, self.start, math.radians(self.heading_deg)
        rows = [(t, x, y)]
        for leg in self.legs:
            kind = leg[0]
            if kind == "face":
                heading = math.radians(leg[1])
                continue
            if kind == "stand":
                speed, seconds, turn = 0.0, leg[1], 0.0
            elif kind == "walk":
                speed, seconds, turn = leg[1], leg[2], 0.0
            elif kind == "turn":
                speed, seconds, turn = leg[1], leg[2], math.radians(leg[3])
            else:
                raise ValueError(f"unknown leg {kind!r}: use walk, turn, stand or face")
            steps = max(1, round(seconds / _STEP_S))
            for _ in range(steps):
                dt = seconds / steps
                heading += turn / steps / 2
                x, y = x + speed * math.cos(heading) * dt, y + speed * math.sin(heading) * dt
                heading += turn / steps / 2
                t += dt
                rows.append((t, x, y))
        return np.array(rows)

    def position(self, t: float, frames: np.ndarray | None = None) -> tuple[float, float]:
        """Where the person is at scenario time ``t`` (stays at the end of the path)."""
        k = self.keyframes() if frames is None else frames
        return float(np.interp(t, k[:, 0], k[:, 1])), float(np.interp(t, k[:, 0], k[:, 2]))

    def visible(self, t: float) -> bool:
        return self.hidden_from is None or t < self.hidden_from


@dataclass(frozen=True)
class Scenario:
    """A named run: people, how long it lasts, and when the detector dies."""

    name: str
    summary: str
    duration_s: float
    people: tuple[PersonPath, ...]
    kill_detector_at: float | None = None
    expect: tuple[str, ...] = field(default=())  # the checks that apply: follow, stop, lock

    @property
    def vanish_at(self) -> float | None:
        """When the followed person vanishes or the detector dies, whichever the scenario has."""
        return self.people[0].hidden_from if self.kill_detector_at is None else self.kill_detector_at


#: Everyone starts ~3 m ahead of the camera: about where the drive's default
#: target box height (0.6 of the frame) puts the car at rest.
_AHEAD = (3.45, 0.0)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("straight", "the person walks straight away from the car at a stroll",
             9.0, (PersonPath(_AHEAD, 0.0, (("stand", 1.0), ("walk", 0.35, 8.0))),), expect=("follow",)),
    Scenario("turn", "the person walks, turns 90 degrees left along an arc, walks on",
             10.0, (PersonPath(_AHEAD, 0.0, (("stand", 1.0), ("walk", 0.35, 1.5), ("turn", 0.35, 4.0, 90.0), ("walk", 0.35, 3.5))),),
             expect=("follow",)),
    Scenario("stop_and_go", "the person walks, stops for 2.5 s, walks on",
             10.0, (PersonPath(_AHEAD, 0.0, (("stand", 1.0), ("walk", 0.35, 3.0), ("stand", 2.5), ("walk", 0.35, 3.5))),),
             expect=("follow",)),
    Scenario("leave_view", "the person walks, steps sideways out of view and through a door",
             8.0, (PersonPath(_AHEAD, 0.0, (("stand", 1.0), ("walk", 0.35, 3.0), ("face", 90.0), ("walk", 1.6, 4.0)), hidden_from=4.8),),
             expect=("stop",)),
    Scenario("crossing", "a second person comes into view and crosses behind the followed one, right to left",
             9.0, (PersonPath(_AHEAD, 0.0, (("stand", 1.0), ("walk", 0.35, 8.0))),
                   PersonPath((6.5, -5.5), 90.0, (("walk", 1.0, 9.0),))),
             expect=("follow", "lock")),
    Scenario("standing_close", "a person stands still 1.2 m in front of the car",
             5.0, (PersonPath((1.6, 0.0), 0.0, (("stand", 5.0),)),), expect=("close",)),
    Scenario("detector_dies", "the person walks; the detector process is killed mid-run",
             8.0, (PersonPath(_AHEAD, 0.0, (("stand", 1.0), ("walk", 0.35, 7.0))),), kill_detector_at=4.5,
             expect=("stop",)),
)}


def get(name: str) -> Scenario:
    """The scenario called ``name``; ValueError listing the known names otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}: choose one of {', '.join(SCENARIOS)}") from None


#: The walks of the sweep (``python -m rover.sim.sweep``): each at any speed.
WALK_KINDS = ("straight", "turn", "stop_and_go", "crossing", "crosses_in_front", "leave_view", "detector_dies")
#: Walking speeds of the sweep (m/s): a stroll, a normal walk, a brisk walk.
WALK_SPEEDS = (0.6, 1.0, 1.3)
_STAND_S = 2.0  # time for the drive to arm and lock at 2 frames/s (3 + 3 messages)


def walk(kind: str, speed: float) -> Scenario:
    """The walk ``kind`` (one of :data:`WALK_KINDS`) at ``speed`` m/s, named ``kind@speed``."""
    s, stand = speed, ("stand", _STAND_S)
    name = f"{kind}@{speed:g}"
    if kind == "straight":
        return Scenario(name, f"walks straight away at {s:g} m/s", 12.0,
                        (PersonPath(_AHEAD, 0.0, (stand, ("walk", s, 10.0))),), expect=("follow",))
    if kind == "turn":
        return Scenario(name, f"walks at {s:g} m/s, turns 90 degrees left along a 4 s arc, walks on", 12.0,
                        (PersonPath(_AHEAD, 0.0, (stand, ("walk", s, 2.0), ("turn", s, 4.0, 90.0), ("walk", s, 4.0))),),
                        expect=("follow",))
    if kind == "stop_and_go":
        return Scenario(name, f"walks at {s:g} m/s, stops for 2.5 s, walks on", 12.0,
                        (PersonPath(_AHEAD, 0.0, (stand, ("walk", s, 3.0), ("stand", 2.5), ("walk", s, 4.5))),),
                        expect=("follow",))
    if kind == "crossing":
        cross_x = _AHEAD[0] + s * (5.5 - _STAND_S) + 2.0  # 2 m behind the followed person when crossing their path
        return Scenario(name, f"walks at {s:g} m/s; a second person crosses 2 m behind them, right to left, at 1.0 m/s", 12.0,
                        (PersonPath(_AHEAD, 0.0, (stand, ("walk", s, 10.0))),
                         PersonPath((cross_x, -5.5), 90.0, (("walk", 1.0, 12.0),))), expect=("follow", "lock"))
    if kind == "crosses_in_front":
        # From the right into the car's line, 1.5 m in front of the followed person (1 m ahead of a car at the follow
        # distance) at 4.5 s, 3 s standing there, then on to the left: the stop distance is anyone's, not the target's.
        front_x = _AHEAD[0] + s * (4.5 - _STAND_S) - 1.5
        return Scenario(name, f"walks at {s:g} m/s; a second person steps into the car's line between them and stands 3 s", 12.0,
                        (PersonPath(_AHEAD, 0.0, (stand, ("walk", s, 10.0))),
                         PersonPath((front_x, -2.0), 90.0, (("stand", 2.5), ("walk", 1.0, 2.0), ("stand", 3.0), ("walk", 1.0, 5.0)))),
                        expect=("follow",))
    if kind == "leave_view":
        return Scenario(name, f"walks at {s:g} m/s, steps sideways out of view and through a door", 9.0,
                        (PersonPath(_AHEAD, 0.0, (stand, ("walk", s, 3.0), ("face", 90.0), ("walk", 1.6, 4.0)),
                                    hidden_from=_STAND_S + 3.8),), expect=("stop",))
    if kind == "detector_dies":
        return Scenario(name, f"walks at {s:g} m/s; the detector process dies mid-run", 9.0,
                        (PersonPath(_AHEAD, 0.0, (stand, ("walk", s, 7.0))),), kill_detector_at=6.0, expect=("stop",))
    raise ValueError(f"unknown walk {kind!r}: choose one of {', '.join(WALK_KINDS)}")


def named(name: str) -> Scenario:
    """A scenario by name: one of :data:`SCENARIOS`, or ``kind@speed`` for a walk (``straight@1.0``)."""
    if "@" in name:
        kind, _, speed = name.partition("@")
        try:
            value = float(speed)
        except ValueError:
            raise ValueError(f"scenario {name!r}: the speed after @ must be a number in m/s") from None
        if not 0.0 < value <= 3.0:
            raise ValueError(f"scenario {name!r}: walking speed must be in (0, 3] m/s")
        return walk(kind, value)
    return get(name)
