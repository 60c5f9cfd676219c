"""The PiCar-B kit revisions: which config section each backend reads, and telling them apart.

Two kits are sold with the same name (docs/hardware.md has the table):

- ``picar-b``: 2019-2023, motors on GPIO (an H-bridge), servos on a PCA9685
  at I2C 0x40 (adeept/adeept_picar-b), section ``[picar_b]``;
- ``picar-b2``: since 2024 (Adeept ADR012, Robot HAT V3.1), motors and
  servos on one PCA9685 at 0x5f (adeept/adeept_picar-b2), section ``[picar_b2]``.

:func:`check_revision` runs before a backend touches anything: if its chip is
silent at its address while the other kit's answers, the config names the
wrong kit, and the error says which ``drive.backend`` to set (exit 78).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from rover.core.config import read_toml
from rover.core.errors import ConfigError
from rover.hw.config import PicarBConfig
from rover.hw.config_b2 import PICAR_B2_ADDRESS, PICAR_B_ADDRESS, PicarB2Config
from rover.hw.pca9685 import PCA9685


@dataclass(frozen=True)
class Kit:
    backend: str
    section: str
    config: type
    address: int
    label: str


KITS: dict[str, Kit] = {
    "picar-b": Kit("picar-b", "picar_b", PicarBConfig, PICAR_B_ADDRESS, "the 2019-2023 PiCar-B (motors on GPIO, PCA9685 at 0x40)"),
    "picar-b2": Kit("picar-b2", "picar_b2", PicarB2Config, PICAR_B2_ADDRESS,
                    "the PiCar-B sold since 2024 (Robot HAT V3.1, PCA9685 at 0x5f)"),
}
#: Every kit section by name, for ``load_sections``.
KIT_SECTIONS: dict[str, type] = {kit.section: kit.config for kit in KITS.values()}
#: The backends that drive no hardware use the [picar_b] section for their mapping.
DEFAULT_BACKEND = "picar-b"


#: The device classes (systemd ``DeviceAllow=`` names, /proc/devices majors) each kit opens, and why.
GPIO_DEVICES = ("char-*gpiomem", "char-gpiochip")  # RPi.GPIO: /dev/gpiomem*; rpi-lgpio: /dev/gpiochip*
I2C_DEVICES = ("char-i2c",)  # smbus2: /dev/i2c-N


def devices_for(backend: str, config: Any = None) -> tuple[str, ...]:
    """What the drive's sandbox must allow for ``backend`` (its section ``config``; None: the defaults).

    ``picar-b``: GPIO for the motors (and the ultrasonic), I2C for the servos.
    ``picar-b2``: I2C for the motors and servos, GPIO only for the ultrasonic.
    """
    kit = KITS.get(backend)
    if kit is None:
        return ()
    config = config if config is not None else kit.config()
    if backend == "picar-b2":
        return I2C_DEVICES + (GPIO_DEVICES if config.ultrasonic_enabled else ())
    return GPIO_DEVICES + I2C_DEVICES


def section_for(backend: str) -> str:
    """The config section a backend reads (``log`` and ``sim`` map like the 2019-23 kit)."""
    kit = KITS.get(backend)
    return kit.section if kit is not None else "picar_b"


def backend_of(sections: Mapping[str, Any]) -> str:
    """``drive.backend`` from loaded sections: ``sections["drive"]`` is a DriveConfig or a table."""
    drive = sections.get("drive")
    if drive is None:
        return DEFAULT_BACKEND
    backend = drive.get("backend", DEFAULT_BACKEND) if isinstance(drive, Mapping) else getattr(drive, "backend")
    if not isinstance(backend, str):
        raise ConfigError(f"drive.backend must be a string, not {backend!r}")
    return backend


def read_backend(path: Path | None) -> str:
    """Only ``[drive] backend`` from the file (the default when absent), for the programs beside the drive.

    ``rover-safestop`` and ``rover-calibrate`` must not fail on a [drive] key
    they do not use, so they read just this one.
    """
    if path is None:
        return DEFAULT_BACKEND
    return backend_of({"drive": read_toml(path).get("drive", {})})


class WrongKitError(ConfigError):
    """The configured kit's PCA9685 is silent, the other kit's answers: ``backend`` is the one to set."""

    def __init__(self, message: str, backend: str) -> None:
        super().__init__(message)
        self.backend = backend


def check_revision(bus: Any, backend: str, address: int, bus_number: int) -> None:
    """Raise :class:`WrongKitError` (a ConfigError) when ``backend``'s PCA9685 is silent but the other kit's answers.

    Silent at both addresses: nothing is raised here; opening the chip then
    fails with the usual "did not answer" HardwareError.
    """
    if PCA9685(bus, address).answers():
        return
    for other in KITS.values():
        if other.backend == backend or other.address == address:
            continue
        if PCA9685(bus, other.address).answers():
            raise WrongKitError(
                f"no PCA9685 answers at {address:#04x} on /dev/i2c-{bus_number} but one does at {other.address:#04x}: "
                f"this is {other.label}; set drive.backend = \"{other.backend}\" (and its [{other.section}] section)",
                other.backend,
            )
