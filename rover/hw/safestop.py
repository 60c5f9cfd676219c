"""``rover-safestop``: force the car into its safe state from outside the drive process.

Meant for ``ExecStopPost=`` of the drive service, for a user at a shell, and
for a sentinel process watching the drive. It works when the drive process
was SIGKILLed and cleaned nothing up. It stops whichever kit ``[drive]
backend`` names (``--backend`` overrides):

- ``picar-b`` (2019-23): RPi.GPIO's software PWM dies with its process, but
  the pins keep the level they had (an enable pin may be stuck HIGH
  mid-period), so every motor pin (both enables and all four inputs) is set
  up as an output and driven LOW, and left so (not cleaned up to floating
  inputs) to hold the H-bridge off until the next program takes them. Then
  the PCA9685 at 0x40 gets the servo centres: it keeps driving the last
  pulse after its process died.
- ``picar-b2`` (since 2024): the motors are on the PCA9685 at 0x5f, which
  keeps driving the last duty, so the wheels turn until zero duty is
  written: the four motor channels are set full off first (one byte each,
  before the chip is woken if it sleeps), then the servos are centred.
- ``log`` and ``sim`` drive no hardware: the backend is opened and closed,
  which prints the stop (dry run) or sends it to the simulated car.

The one routine is :func:`safe_stop` ``(sections) -> list[str]``: give it the
loaded config sections (``{"drive": DriveConfig or {"backend": ...},
"picar_b": PicarBConfig, "picar_b2": PicarB2Config}``; a missing kit section
means its defaults) and it stops that backend's car, returning one line per
part that failed (empty: all done). It never raises for a hardware failure.

It is idempotent and fast: no waits except the PCA9685's 500 us oscillator
start-up when the chip had to be woken. Each part runs even if another
fails. Exit codes: 0 all done, 1 a part failed (the line says which), 78 the
config file is invalid or unreadable (the kit defaults were applied anyway,
since stopping the car matters more than the file).

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
from rover.hw.config_b2 import PicarB2Config
from rover.hw.kits import KIT_SECTIONS, KITS, WrongKitError, backend_of, check_revision, read_backend
from rover.hw.mapping import servo_ticks
from rover.hw.pca9685 import PCA9685
from rover.hw.picar_b2 import stop_motor_channels
from rover.hw.vendor import gpio_error, import_gpio, open_i2c

PROG = "rover-safestop"
#: Backends that drive no hardware: safe-stop has nothing to do for them.
NO_HARDWARE = ("log", "sim")


def say(line: str, *, stream: Any = None) -> None:
    """Print one report line; a write error (a hung-up terminal: EIO, a closed pipe) is dropped.

    Reporting never prevents or fails a stop: every print here comes after
    the hardware writes it reports, outside the try blocks that judge them.
    """
    try:
        print(line, file=stream if stream is not None else sys.stdout, flush=True)
    except (OSError, ValueError):  # EIO / EPIPE, or a stream already closed
        pass


def stop_motors(gpio: Any, config: PicarBConfig) -> list[int]:
    """Every motor pin an output driven LOW, enables first. Returns the pins."""
    gpio.setwarnings(False)  # the dead process still "uses" these pins; that is expected here
    gpio.setmode(gpio.BCM)
    pins = list(config.motor_pins)
    for pin in pins:
        gpio.setup(pin, gpio.OUT, initial=gpio.LOW)
        gpio.output(pin, gpio.LOW)  # explicit, whatever setup() did with the initial level
    return pins


def centre_servos(bus: Any, config: Any, *, sleep: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """Steering, pan and tilt channels at their centres (either kit's section). Returns ``{name: ticks}``."""
    chip = PCA9685(bus, config.i2c_address, bus_number=config.i2c_bus, sleep=sleep)
    chip.ensure(config.servo_hz)
    written = {}
    for name in SERVO_NAMES:
        servo = config.servo(name)
        ticks = servo_ticks(0.0, servo)
        chip.set_pulse(servo.channel, ticks)
        written[name] = ticks
    return written


def safe_stop(sections: Mapping[str, Any], *, backend: str | None = None, gpio: Any = None, bus: Any = None,
              sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Stop the car that ``sections`` describe; one line per part that failed (empty: all done).

    ``sections``: the loaded config, ``{"drive": ..., "picar_b": ..., "picar_b2": ...}``
    (``sections["drive"]`` a DriveConfig or a table with ``backend``; absent
    kit sections take their defaults). ``backend`` overrides ``drive.backend``.
    ``gpio``/``bus`` replace the vendor libraries (tests); a bus passed in is
    not closed. Never raises for a hardware failure: it reports it.
    """
    name = backend if backend is not None else backend_of(sections)
    if name in NO_HARDWARE:
        # No pins or chips: opening and closing the backend is its whole safe stop (the dry run
        # prints it, the simulated car gets its stop command).
        from rover.hw import open_chassis  # the registry; imports only the backend named

        say(f"{PROG}: backend {name} drives no hardware: sending its stop")  # say() cannot raise
        try:
            open_chassis(name, sections.get("picar_b") or PicarBConfig()).close()
        except Exception as exc:  # noqa: BLE001 - one line, like every other part
            return [f"backend {name!r} NOT stopped: {type(exc).__name__}: {exc}"]
        return []
    kit = KITS.get(name)
    if kit is None:
        return [f"unknown backend {name!r}: nothing stopped; choose one of {', '.join([*KITS, *NO_HARDWARE])}"]
    found: list[str] = []
    failures = _stop(name, sections, gpio=gpio, bus=bus, sleep=sleep, found=found)
    if found:
        # The config names the other kit than the one on the bus. Whatever drove it may have left its
        # motors running: stop the kit that is there too (its section, else its defaults), and say so.
        say(f"{PROG}: the config names {name} but this is {found[0]}: stopping {found[0]} too")
        failures += _stop(found[0], sections, gpio=gpio, bus=bus, sleep=sleep, found=None)
    return failures


def _stop(name: str, sections: Mapping[str, Any], *, gpio: Any, bus: Any, sleep: Callable[[float], None],
          found: list[str] | None) -> list[str]:
    kit = KITS[name]
    config = sections.get(kit.section) or kit.config()
    if name == "picar-b2":
        return stop_picar_b2(config, bus=bus, sleep=sleep, found=found)
    return stop_picar_b(config, gpio=gpio, bus=bus, sleep=sleep, found=found)


def stop_picar_b2(config: PicarB2Config, *, bus: Any = None, sleep: Callable[[float], None] = time.sleep,
                  found: list[str] | None = None) -> list[str]:
    """The 2024 kit: zero duty on the four motor channels first, then the servos centred.

    ``found`` (a list) receives the other kit's backend when its chip answers instead of this one's.
    """
    failures: list[str] = []
    owned = None
    try:
        if bus is None:
            bus = owned = open_i2c(config.i2c_bus, hint=None)
        check_revision(bus, "picar-b2", config.i2c_address, config.i2c_bus)
        chip = PCA9685(bus, config.i2c_address, bus_number=config.i2c_bus, sleep=sleep)
        motors_off = False
        try:
            stop_motor_channels(chip, config)
            motors_off = True
        except HardwareError as exc:
            failures.append(f"motors NOT stopped: {exc}")
        if motors_off:
            say(f"{PROG}: motors off: PCA9685 {config.i2c_address:#04x} channels "
                f"{', '.join(map(str, config.motor_channels))} full off")
        written = None
        try:
            written = centre_servos(bus, config, sleep=sleep)
        except HardwareError as exc:
            failures.append(f"servos NOT centred: {exc}")
        if written is not None:
            shown = ", ".join(f"{name} ch{config.servo(name).channel}={ticks}" for name, ticks in written.items())
            say(f"{PROG}: servos centred: {shown} ticks")
    except WrongKitError as exc:
        failures.append(f"motors NOT stopped, servos NOT centred: {exc}")
        if found is not None:
            found.append(exc.backend)
    except (HardwareError, ConfigError) as exc:
        failures.append(f"motors NOT stopped, servos NOT centred: {exc}")
    except Exception as exc:  # noqa: BLE001 - report it as one line like the others
        failures.append(f"motors NOT stopped, servos NOT centred: {type(exc).__name__}: {exc}")
    finally:
        if owned is not None:
            try:
                owned.close()
            except OSError:
                pass
    return failures


def stop_picar_b(config: PicarBConfig, *, gpio: Any = None, bus: Any = None,
                 sleep: Callable[[float], None] = time.sleep, found: list[str] | None = None) -> list[str]:
    """The 2019-23 kit: motor pins LOW, then the servos centred; each half attempted.

    ``found`` (a list) receives the other kit's backend when its chip answers instead of this one's.
    """
    failures: list[str] = []
    pins = None
    try:
        pins = stop_motors(gpio if gpio is not None else import_gpio(hint=None), config)
    except HardwareError as exc:
        failures.append(f"motors NOT stopped: {exc}")
    except RuntimeError as exc:  # RPi.GPIO at setup(): "No access to /dev/mem..." and the like
        failures.append(f"motors NOT stopped: {gpio_error(exc, hint=None)}")
    except Exception as exc:  # noqa: BLE001 - whatever the GPIO library raised, the servos still get centred
        failures.append(f"motors NOT stopped: {_gpio_refusal(exc)}")
    if pins is not None:
        say(f"{PROG}: motors off: BCM {', '.join(map(str, pins))} LOW")
    owned = None
    written = None
    try:
        if bus is None:
            bus = owned = open_i2c(config.i2c_bus, hint=None)
        check_revision(bus, "picar-b", config.i2c_address, config.i2c_bus)
        written = centre_servos(bus, config, sleep=sleep)
    except WrongKitError as exc:
        failures.append(f"servos NOT centred: {exc}")
        if found is not None:
            found.append(exc.backend)
    except (HardwareError, ConfigError) as exc:
        failures.append(f"servos NOT centred: {exc}")
    except Exception as exc:  # noqa: BLE001 - report it as one line like the others
        failures.append(f"servos NOT centred: {type(exc).__name__}: {exc}")
    finally:
        if owned is not None:
            try:
                owned.close()
            except OSError:
                pass  # the bus is gone with the process anyway
    if written is not None:
        shown = ", ".join(f"{name} ch{config.servo(name).channel}={ticks}" for name, ticks in written.items())
        say(f"{PROG}: servos centred: {shown} ticks")
    return failures


def _gpio_refusal(exc: Exception) -> str:
    """What an error of the GPIO library while taking the motor pins means."""
    text = str(exc).strip("'\"")
    if type(exc).__name__ == "error" and "busy" in text.lower():  # lgpio.error: 'GPIO busy'
        return (f"a motor pin is held by another process (lgpio: {text}): is the drive still running? "
                "sudo systemctl stop rover-drive (`gpioinfo` shows who holds it)")
    return f"the GPIO library refused ({type(exc).__name__}: {text})"


def load_config(path: Path | None, backend: str | None = None) -> tuple[dict[str, Any], ConfigError | None]:
    """The sections :func:`safe_stop` takes, or the kit defaults plus the error when the file is bad.

    Only ``[drive] backend`` and the kit sections are read, so a [drive] key
    this program does not use can never keep the car from being stopped.
    """
    try:
        if path is None:
            path = default_config_path()
        sections: dict[str, Any] = dict(load_sections(path, KIT_SECTIONS))
        sections["drive"] = {"backend": backend if backend is not None else read_backend(path)}
        return sections, None
    except ConfigError as exc:
        defaults: dict[str, Any] = {name: cls() for name, cls in KIT_SECTIONS.items()}
        fallback = backend
        if fallback is None:
            try:
                fallback = read_backend(path)
            except ConfigError:
                fallback = None
        defaults["drive"] = {"backend": fallback or "picar-b"}
        return defaults, exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=(
        "Stop the PiCar-B now: motors off, steering, pan and tilt centred. "
        "Works without (and after the death of) the drive process."))
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help=f"rover config file (default {DEFAULT_CONFIG_PATH} if it exists, else the kit defaults)")
    parser.add_argument("--backend", metavar="NAME",
                        help="which kit to stop: picar-b (2019-23) or picar-b2 (since 2024); default: drive.backend")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sections, config_error = load_config(args.config, args.backend)
    if config_error is not None:
        say(f"{PROG}: {config_error}; stopping with the kit defaults instead", stream=sys.stderr)
    failures = safe_stop(sections)
    for line in failures:
        say(f"{PROG}: {line}", stream=sys.stderr)
    if config_error is not None:
        return EXIT_CONFIG
    return EXIT_FAILURE if failures else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
