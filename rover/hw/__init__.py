"""Chassis backends by name: ``open_chassis("picar-b" | "picar-b2" | "log" | "sim", config)``.

The registry maps a name to ``"module:function"``; the module is imported only
when that backend is opened, so ``import rover.hw`` never loads a vendor
library. A backend factory takes ``(config, *, gpio=None, bus=None,
clock=time.monotonic)`` and returns a :class:`rover.hw.chassis.Chassis`.

- ``picar-b``: the Adeept PiCar-B of 2019-2023, section ``[picar_b]`` (:mod:`rover.hw.picar_b`).
- ``picar-b2``: the PiCar-B sold since 2024 (Robot HAT V3.1), section
  ``[picar_b2]`` (:mod:`rover.hw.picar_b2`). :mod:`rover.hw.kits` says which
  section a backend reads and tells the two kits apart.
- ``log``: prints every command, a dry run (:mod:`rover.hw.log`).
- ``sim``: the simulator's car (:mod:`rover.sim.chassis`).

Beside the backends: :mod:`rover.hw.chassis` (the seam itself, all the drive
logic sees), and the two programs that work on the hardware from outside the
drive, ``rover-safestop`` (:mod:`rover.hw.safestop`) and ``rover-calibrate``
(:mod:`rover.hw.calibrate`; its ``motors`` command: :mod:`rover.hw.calibrate_motors`,
the run :mod:`rover.hw.motorcal`, the pure fit :mod:`rover.hw.motorfit`), and
the car's lock they share with the drive (:mod:`rover.hw.carlock`).
"""

from __future__ import annotations

import importlib
import time
from typing import Any, Callable

from rover.core.errors import ConfigError, HardwareError
from rover.hw.chassis import Chassis
from rover.hw.config import PicarBConfig
from rover.hw.config_b2 import PicarB2Config
from rover.hw.kits import KIT_SECTIONS, section_for

__all__ = ["BACKENDS", "KIT_SECTIONS", "PicarB2Config", "PicarBConfig", "open_chassis", "register_backend",
           "section_for"]

#: name -> "module:factory". Add one with :func:`register_backend`.
BACKENDS: dict[str, str] = {
    "picar-b": "rover.hw.picar_b:open_picar_b",
    "picar-b2": "rover.hw.picar_b2:open_picar_b2",
    "log": "rover.hw.log:open_log",
    "sim": "rover.sim.chassis:open_sim",
}


def register_backend(name: str, target: str) -> None:
    """Make ``open_chassis(name, ...)`` call the factory at ``"module:function"``."""
    if ":" not in target:
        raise ValueError(f"backend target must be 'module:function', not {target!r}")
    BACKENDS[name] = target


def open_chassis(name: str, config: Any = None, *, gpio: Any = None, bus: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> Chassis:
    """Open the backend ``name`` with its section (:func:`section_for`; None: that section's defaults).

    ``gpio`` (an RPi.GPIO-like module) and ``bus`` (an open smbus2-like bus)
    replace the vendor libraries, for tests. Raises :class:`ConfigError` for
    an unknown name and :class:`HardwareError` when the hardware is missing.
    """
    target = BACKENDS.get(name)
    if target is None:
        raise ConfigError(f"unknown chassis backend {name!r}: choose one of {', '.join(BACKENDS)}")
    module_name, _, attr = target.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise HardwareError(f"chassis backend {name!r} is not available ({exc}); use --backend log for a dry run") from None
    if config is None:
        config = KIT_SECTIONS[section_for(name)]()
    return factory(config, gpio=gpio, bus=bus, clock=clock)
