"""A scenario of the user's own, from a TOML file: ``python -m rover.sim --scenario-file walk.toml``.

Pure: reads the file and builds a :class:`rover.sim.scenarios.Scenario` and
the detector's model; every mistake is a ValueError naming the key (the
command turns it into one line and exit code 78). Format (docs/sim.md)::

    name = "my_walk"
    duration_s = 12.0
    fps = 3                     # detector frame rate; processing delay = one frame period
    seed = 0
    kill_detector_at = 9.0      # optional: the detector dies then
    [noise]                     # optional: any field of rover.sim.noise.DetectorModel but fps
    miss_rate = 0.05
    [[person]]                  # the first person is the one followed
    start = [3.45, 0.0]         # metres, the car at the origin facing +x
    heading_deg = 0.0
    legs = [["stand", 2.0], ["walk", 1.0, 4.0], ["turn", 1.0, 3.0, 90], ["stand", 1.0], ["face", 180]]
    hidden_from = 10.0          # optional: goes through a door then
    height_m = 1.7              # optional: the person's height (a child: ~1.0)
    [[person]]                  # optional: a second person ...
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from rover.sim.noise import DetectorModel
from rover.sim.scenarios import PersonPath, Scenario

_TOP = {"name", "duration_s", "fps", "seed", "kill_detector_at", "noise", "person"}
_PERSON = {"start", "heading_deg", "legs", "hidden_from", "height_m"}
_LEGS = {"walk": 3, "turn": 4, "stand": 2, "face": 2}


def _number(value: Any, where: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low:
        raise ValueError(f"{where} must be a number >= {low:g}, not {value!r}")
    return float(value)


def _leg(raw: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(raw, list) or not raw or raw[0] not in _LEGS:
        raise ValueError(f"{where} must be a list starting with one of {', '.join(_LEGS)}, not {raw!r}")
    if len(raw) != _LEGS[raw[0]]:
        raise ValueError(f"{where}: a {raw[0]!r} leg has {_LEGS[raw[0]] - 1} numbers, not {len(raw) - 1}")
    numbers = [_number(v, where, -360.0) for v in raw[1:]]
    if raw[0] in ("walk", "turn", "stand") and any(v < 0 for v in numbers[:2]):
        raise ValueError(f"{where}: speeds and durations must not be negative")
    return (raw[0], *numbers)


def load(path: Path) -> tuple[Scenario, DetectorModel, int]:
    """The scenario, detector model and seed of the file at ``path``."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"--scenario-file {path}: cannot be read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--scenario-file {path} is not valid TOML: {exc}") from None
    unknown = set(data) - _TOP
    if unknown:
        raise ValueError(f"{path}: unknown key {min(unknown)!r}: known keys are {', '.join(sorted(_TOP))}")
    people = data.get("person")
    if not isinstance(people, list) or not people:
        raise ValueError(f"{path}: at least one [[person]] is needed (the first is the one followed)")
    paths = []
    for i, person in enumerate(people):
        where = f"{path}: person {i + 1}"
        if not isinstance(person, dict) or set(person) - _PERSON:
            raise ValueError(f"{where}: keys must be among {', '.join(sorted(_PERSON))}")
        start = person.get("start", [3.45, 0.0])
        if not isinstance(start, list) or len(start) != 2:
            raise ValueError(f"{where}: start must be [x, y] in metres")
        legs = tuple(_leg(leg, f"{where} leg {k + 1}") for k, leg in enumerate(person.get("legs", [])))
        hidden = person.get("hidden_from")
        paths.append(PersonPath((_number(start[0], f"{where} start", -100), _number(start[1], f"{where} start", -100)),
                                _number(person.get("heading_deg", 0.0), f"{where} heading_deg", -360.0), legs,
                                None if hidden is None else _number(hidden, f"{where} hidden_from"),
                                _number(person.get("height_m", 1.7), f"{where} height_m", 0.3)))
    kill = data.get("kill_detector_at")
    scenario = Scenario(str(data.get("name", Path(path).stem)), f"from {Path(path).name}",
                        _number(data.get("duration_s", 10.0), f"{path}: duration_s", 0.5), tuple(paths),
                        None if kill is None else _number(kill, f"{path}: kill_detector_at"))
    noise = data.get("noise", {})
    fields = {f.name for f in dataclasses.fields(DetectorModel)} - {"fps"}
    if not isinstance(noise, dict) or set(noise) - fields:
        raise ValueError(f"{path}: [noise] keys must be among {', '.join(sorted(fields))}")
    try:
        detector = DetectorModel(fps=_number(data.get("fps", 3.0), f"{path}: fps"),
                                 **{k: tuple(v) if isinstance(v, list) else v for k, v in noise.items()})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{path}: seed must be a non-negative integer")
    return scenario, detector, seed
