"""Chassis backends by name: ``open_chassis("picar-b" | "log" | "sim", config)``.

The registry maps a name to ``"module:function"``; the module is imported only
when that backend is opened, so ``import rover.hw`` never loads a vendor
library. A backend factory takes ``(config, *, gpio=None, bus=None,
clock=time.monotonic)`` and returns a :class:`rover.hw.chassis.Chassis`.

- ``picar-b``: the Adeept PiCar-B (:mod:`rover.hw.picar_b`).
- ``log``: prints every command, a dry run (:mod:`rover.hw.log`).
- ``sim``: the simulator's car (:mod:`rover.sim.chassis`).

Beside the backends: :mod:`rover.hw.chassis` (the seam itself, all the drive
logic sees), and the two programs that work on the hardware from outside the
drive, ``rover-safestop`` (:mod:`rover.hw.safestop`) and ``rover-calibrate``
(:mod:`rover.hw.calibrate`).
"""

from __future__ import annotations

import importlib
import time
from typing import Any, Callable

from rover.core.errors import ConfigError, HardwareError
from rover.hw.chassis import Chassis
from rover.hw.config import PicarBConfig

__all__ = ["BACKENDS", "PicarBConfig", "open_chassis", "register_backend"]

#: name -> "module:factory". Add one with :func:`register_backend`.
BACKENDS: dict[str, str] = {
    "picar-b": "rover.hw.picar_b:open_picar_b",
    "log": "rover.hw.log:open_log",
    "sim": "rover.sim.chassis:open_sim",
}


def register_backend(name: str, target: str) -> None:
    """Make ``open_chassis(name, ...)`` call the factory at ``"module:function"``."""
    if ":" not in target:
        raise ValueError(f"backend target must be 'module:function', not {target!r}")
    BACKENDS[name] = target


def open_chassis(name: str, config: PicarBConfig | None = None, *, gpio: Any = None, bus: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> Chassis:
    """Open the backend ``name`` with the ``[picar_b]`` section (None: the defaults).

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
    return factory(config if config is not None else PicarBConfig(), gpio=gpio, bus=bus, clock=clock)
