"""The only place the vendor libraries (RPi.GPIO, smbus2) are imported.

Both imports happen when a backend opens, never at module import, so every
other rover module imports and runs on any machine. A missing or unusable
library becomes one :class:`~rover.core.errors.HardwareError` line that says how to
fix it and how to do a dry run instead.
"""

from __future__ import annotations

import importlib
from typing import Any

from rover.core.errors import HardwareError

DRY_RUN_HINT = "use --backend log for a dry run"


def _hint(hint: str | None) -> str:
    return f"; {hint}" if hint else ""


def import_gpio(hint: str | None = DRY_RUN_HINT) -> Any:
    """The RPi.GPIO module (on a Pi 5: the one rpi-lgpio provides)."""
    try:
        return importlib.import_module("RPi.GPIO")
    except ImportError:
        raise HardwareError(
            "RPi.GPIO is not installed, so this machine cannot drive the PiCar-B's motors "
            f"(on the Pi: pip install 'rover[pi]', on a Pi 5: pip install 'rover[pi5]'){_hint(hint)}"
        ) from None
    except RuntimeError as exc:  # "This module can only be run on a Raspberry Pi!" (RPi.GPIO and rpi-lgpio)
        raise gpio_error(exc, hint) from None
    except OSError as exc:  # lgpio (rpi-lgpio) creates its notify pipe in the working directory at import
        raise HardwareError(
            f"RPi.GPIO (rpi-lgpio) cannot start ({type(exc).__name__}: {exc}): lgpio needs a writable working "
            f"directory and access to /dev/gpiochip*; run from a writable folder, in the gpio group{_hint(hint)}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a vendor library may raise anything at import (lgpio.error...)
        raise HardwareError(
            f"RPi.GPIO cannot be loaded ({type(exc).__name__}: {exc}): check the GPIO library install "
            f"(pip install 'rover[pi]', on a Pi 5 'rover[pi5]') and this user's gpio access{_hint(hint)}"
        ) from None


def gpio_error(exc: BaseException, hint: str | None = DRY_RUN_HINT) -> HardwareError:
    """One line for a RuntimeError of RPi.GPIO / rpi-lgpio, saying what its message really means.

    - "This module can only be run on a Raspberry Pi!" (at import; rpi-lgpio
      too, when /proc/device-tree/system/linux,revision is missing): not a Pi,
      no group membership will help.
    - "No access to /dev/mem.  Try running as root!" (RPi.GPIO at setup()):
      /dev/gpiomem is missing or not readable to this user.
    - "Cannot determine SOC peripheral base address" (RPi.GPIO on a Pi 5):
      RPi.GPIO cannot drive that SoC; rpi-lgpio can.
    """
    text = str(exc)
    if "only be run on a Raspberry Pi" in text:
        return HardwareError(f"this machine is not a Raspberry Pi (RPi.GPIO: {text}){_hint(hint)}")
    if "/dev/mem" in text:
        return HardwareError(
            f"RPi.GPIO has no access to the GPIO registers ({text}): /dev/gpiomem must exist and this user be in "
            f"the gpio group (sudo adduser $USER gpio, then log in again); do not run as root{_hint(hint)}"
        )
    if "SOC peripheral base address" in text:
        return HardwareError(
            f"RPi.GPIO cannot drive this Pi ({text}); on a Raspberry Pi 5 use rpi-lgpio "
            f"(pip install 'rover[pi5]'){_hint(hint)}"
        )
    return HardwareError(f"RPi.GPIO cannot run here ({text}){_hint(hint)}")


def open_i2c(bus_number: int, hint: str | None = DRY_RUN_HINT) -> Any:
    """An open ``smbus2.SMBus`` for ``/dev/i2c-<bus_number>``."""
    try:
        smbus2 = importlib.import_module("smbus2")
    except ImportError:
        raise HardwareError(f"smbus2 is not installed (pip install smbus2){_hint(hint)}") from None
    try:
        return smbus2.SMBus(bus_number)
    except FileNotFoundError:
        raise HardwareError(
            f"/dev/i2c-{bus_number} does not exist: enable I2C (sudo raspi-config, Interface Options, I2C) "
            f"or set [picar_b] i2c_bus{_hint(hint)}"
        ) from None
    except PermissionError:
        raise HardwareError(
            f"/dev/i2c-{bus_number} is not accessible to this user: add it to the i2c group "
            f"(sudo adduser $USER i2c){_hint(hint)}"
        ) from None
    except OSError as exc:
        raise HardwareError(f"/dev/i2c-{bus_number} cannot be opened ({exc}){_hint(hint)}") from None
