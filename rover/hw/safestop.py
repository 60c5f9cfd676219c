"""``rover-safestop``: force the car into its safe state from outside the drive process.

Meant for ``ExecStopPost=`` of the drive service and for a user at a shell,
it works when the drive process was SIGKILLed and cleaned nothing up:

- RPi.GPIO's software PWM dies with its process, but the pins keep the level
  they had (an enable pin may be stuck HIGH mid-period), so every motor pin
  (both enables and all four inputs) is set up as an output and driven LOW.
  The pins are left as LOW outputs, not cleaned up to floating inputs, so
  they hold the H-bridge off until the next program takes them.
- The PCA9685 keeps driving the last pulse after its process died, so the
  steering, pan and tilt channels are written to their configured centres
  (after waking the chip at the configured frequency if it is asleep).

It is idempotent and fast: no waits except the PCA9685's 500 us oscillator
start-up when the chip had to be woken. Each half runs even if the other
fails, whatever the failure. Exit codes: 0 both done, 1 a part failed (the
line says which), 78 the config file is invalid or unreadable (the kit
defaults were applied anyway, since stopping the car matters more than the
file).

Stop the drive process first: while it lives, RPi.GPIO's software PWM thread
rewrites the enable pins every period, and rpi-lgpio (Pi 5) refuses pins that
another process holds. The drive unit runs this after the process is gone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from rover.core.config import DEFAULT_CONFIG_PATH, default_config_path, load_sections
from rover.core.errors import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, ConfigError, HardwareError
from rover.hw.config import SERVO_NAMES, PicarBConfig
from rover.hw.mapping import servo_ticks
from rover.hw.pca9685 import PCA9685
from rover.hw.vendor import import_gpio, open_i2c

PROG = "rover-safestop"


def stop_motors(gpio: Any, config: PicarBConfig) -> list[int]:
    """Every motor pin an output driven LOW, enables first. Returns the pins."""
    gpio.setwarnings(False)  # the dead process still "uses" these pins; that is expected here
    gpio.setmode(gpio.BCM)
    pins = list(config.motor_pins)
    for pin in pins:
        gpio.setup(pin, gpio.OUT, initial=gpio.LOW)
        gpio.output(pin, gpio.LOW)  # explicit, whatever setup() did with the initial level
    return pins


def centre_servos(bus: Any, config: PicarBConfig, *, sleep: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """Steering, pan and tilt channels at their centres. Returns ``{name: ticks}``."""
    chip = PCA9685(bus, config.i2c_address, bus_number=config.i2c_bus, sleep=sleep)
    chip.ensure(config.servo_hz)
    written = {}
    for name in SERVO_NAMES:
        servo = config.servo(name)
        ticks = servo_ticks(0.0, servo)
        chip.set_pulse(servo.channel, ticks)
        written[name] = ticks
    return written


def safe_stop(config: PicarBConfig, *, gpio: Any = None, bus: Any = None,
              sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Both halves, each attempted; returns one line per failure (empty: all done).

    ``gpio``/``bus`` replace the vendor libraries (tests); a bus passed in is
    not closed.
    """
    failures: list[str] = []
    try:
        pins = stop_motors(gpio if gpio is not None else import_gpio(hint=None), config)
        print(f"{PROG}: motors off: BCM {', '.join(map(str, pins))} LOW")
    except HardwareError as exc:
        failures.append(f"motors NOT stopped: {exc}")
    except Exception as exc:  # noqa: BLE001 - whatever the GPIO library raised, the servos still get centred
        failures.append(f"motors NOT stopped: the GPIO library refused ({type(exc).__name__}: {exc}); "
                        "is the drive still running? sudo systemctl stop rover-drive")
    owned = None
    try:
        if bus is None:
            bus = owned = open_i2c(config.i2c_bus, hint=None)
        written = centre_servos(bus, config, sleep=sleep)
        shown = ", ".join(f"{name} ch{config.servo(name).channel}={ticks}" for name, ticks in written.items())
        print(f"{PROG}: servos centred: {shown} ticks")
    except HardwareError as exc:
        failures.append(f"servos NOT centred: {exc}")
    except Exception as exc:  # noqa: BLE001 - report it as one line like the others
        failures.append(f"servos NOT centred: {type(exc).__name__}: {exc}")
    finally:
        if owned is not None:
            try:
                owned.close()
            except OSError:
                pass  # the bus is gone with the process anyway
    return failures


# --- The one routine for a drive that died: whichever backend its config names ---------------
# (issue 14: the drive's sentinel calls it; a new backend adds its own branch here)


def safe_stop_backend(sections: Mapping[str, Any], *, gpio: Any = None, bus: Any = None,
                      sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Stop the backend that ``sections`` (loaded config: ``drive`` names it, ``picar_b`` the kit) drove.

    ``picar-b``: :func:`safe_stop` with that kit's pins and channels. Any other
    backend holds no pins (``log`` prints, ``sim`` sends to the simulator):
    it is opened and closed, which leaves it in its safe state. Returns one
    line per failure, like :func:`safe_stop`.
    """
    backend = getattr(sections.get("drive"), "backend", "picar-b")
    picar = sections.get("picar_b") or PicarBConfig()
    if backend == "picar-b":
        return safe_stop(picar, gpio=gpio, bus=bus, sleep=sleep)
    from rover.hw import open_chassis  # the registry; imports only the backend named

    try:
        open_chassis(backend, picar).close()
    except Exception as exc:  # noqa: BLE001 - one line, like the others
        return [f"backend {backend!r} NOT stopped: {type(exc).__name__}: {exc}"]
    return []


def load_config(path: Path | None) -> tuple[PicarBConfig, ConfigError | None]:
    """The [picar_b] section, or the kit defaults plus the error when the file is bad."""
    try:
        if path is None:
            path = default_config_path()
        return load_sections(path, {"picar_b": PicarBConfig})["picar_b"], None
    except ConfigError as exc:
        return PicarBConfig(), exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=(
        "Stop the PiCar-B now: motor pins LOW, steering, pan and tilt centred. "
        "Works without (and after the death of) the drive process."))
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help=f"rover config file (default {DEFAULT_CONFIG_PATH} if it exists, else the kit defaults)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config, config_error = load_config(args.config)
    if config_error is not None:
        print(f"{PROG}: {config_error}; stopping with the kit defaults instead", file=sys.stderr)
    failures = safe_stop(config)
    for line in failures:
        print(f"{PROG}: {line}", file=sys.stderr)
    if config_error is not None:
        return EXIT_CONFIG
    return EXIT_FAILURE if failures else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
