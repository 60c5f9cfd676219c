"""``rover-calibrate``: move one servo so you can find your kit's trims, or measure the motors.

    python -m rover.hw.calibrate steering --ticks 310     # 2019-23 kit: try a centre in ticks
    python -m rover.hw.calibrate steering --degrees 95    # 2024 kit (picar-b2): in degrees
    python -m rover.hw.calibrate steering --position 1    # either: check the direction (should turn left)
    python -m rover.hw.calibrate motors                   # dead band and top speed, against a wall

``motors`` is :mod:`rover.hw.calibrate_motors` (its own options: ``motors --help``).

The kit is ``[drive] backend`` of the config file (``--backend`` overrides):
``picar-b`` servos are in ticks in ``[picar_b]``, ``picar-b2`` servos in
degrees in ``[picar_b2]``. It writes one PCA9685 channel (waking the chip at
the configured frequency if needed; on the 2024 kit the motor channels are
written full off first), leaves the servo there and prints the config line
that makes this position the centre. Values outside the chip's range are
refused (exit 78); values outside the configured ``<servo>_min``/``_max``
are sent with a warning, since finding the real limits is part of calibrating.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from rover.core.config import DEFAULT_CONFIG_PATH, default_config_path, load_sections
from rover.core.errors import EXIT_OK, ConfigError, RoverError
from rover.hw.config import SERVO_NAMES, TICKS_PER_PERIOD
from rover.hw.config_b2 import PicarB2Config
from rover.hw.kits import KITS, check_revision, read_backend
from rover.hw.mapping import servo_ticks, ticks_to_ms
from rover.hw.pca9685 import PCA9685
from rover.hw.picar_b2 import stop_motor_channels
from rover.hw.vendor import open_i2c

PROG = "rover-calibrate"
#: What position +1 should look like, to check ``<servo>_direction``.
PLUS_ONE = {"steering": "the front wheels turned LEFT", "pan": "the head turned LEFT", "tilt": "the head tilted UP"}


def target_ticks(config: Any, name: str, ticks: int | None, position: float | None,
                 degrees: float | None = None) -> int:
    """The ticks to send: ``ticks`` as given (checked against 0..4095), ``degrees`` (2024 kit) or ``position``."""
    if degrees is not None:
        if not isinstance(config, PicarB2Config):
            raise ConfigError("--degrees is for the 2024 kit (drive.backend = \"picar-b2\"); this kit's servos take --ticks")
        if not 0.0 <= degrees <= config.servo_actuation_deg:
            raise ConfigError(f"--degrees {degrees:g} is outside the servo's 0..{config.servo_actuation_deg:g}")
        return config.degrees_to_ticks(degrees)
    if ticks is not None:
        if isinstance(config, PicarB2Config):
            raise ConfigError("the 2024 kit's servos are calibrated in degrees: use --degrees (90 is the middle)")
        if not 0 <= ticks < TICKS_PER_PERIOD:
            raise ConfigError(f"--ticks {ticks} is outside the PCA9685's 0..4095: servos sit near 150..450 at 50 Hz")
        return ticks
    assert position is not None
    if not -1.0 <= position <= 1.0:
        raise ConfigError(f"--position {position} is outside -1..1")
    return servo_ticks(position, config.servo(name))


def limit_warning(config: Any, name: str, ticks: int) -> str | None:
    """A warning line when ``ticks`` is outside the configured min..max, else None."""
    servo = config.servo(name)
    if servo.min <= ticks <= servo.max:
        return None
    if isinstance(config, PicarB2Config):
        low, high = getattr(config, f"{name}_min_deg"), getattr(config, f"{name}_max_deg")
        return (f"warning: {config.ticks_to_degrees(ticks):.0f} degrees is outside {name}_min_deg..{name}_max_deg "
                f"({low:g}..{high:g}) of the config; the car never sends it. If the servo really travels that far, "
                f"widen {name}_min_deg/{name}_max_deg")
    return (f"warning: {ticks} ticks is outside {name}_min..{name}_max ({servo.min}..{servo.max}) of the config; "
            f"the car never sends it. If the servo really travels that far, widen {name}_min/{name}_max")


def calibrate(config: Any, name: str, ticks: int, bus: Any, *,
              sleep: Callable[[float], None] = time.sleep) -> None:
    """Wake the PCA9685 if needed and put servo ``name`` at ``ticks`` (2024 kit: motors off first)."""
    backend = "picar-b2" if isinstance(config, PicarB2Config) else "picar-b"
    check_revision(bus, backend, config.i2c_address, config.i2c_bus)
    chip = PCA9685(bus, config.i2c_address, bus_number=config.i2c_bus, sleep=sleep)
    if isinstance(config, PicarB2Config):
        stop_motor_channels(chip, config)  # waking the chip must not restart a motor duty left in it
    chip.ensure(config.servo_hz)
    chip.set_pulse(config.servo(name).channel, ticks)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Move one servo to find your kit's centre and direction.",
                                     epilog=f"{PROG} motors [--help]: measure the motors' dead band and top speed "
                                            "by driving towards a wall (docs/hardware.md)")
    parser.add_argument("servo", choices=SERVO_NAMES, help="which servo to move (or: motors, see below)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--ticks", type=int, help="2019-23 kit: PCA9685 pulse in ticks (0..4095; about 300 is the centre)")
    where.add_argument("--degrees", type=float, help="2024 kit (picar-b2): servo angle in degrees (90 is the middle)")
    where.add_argument("--position", type=float, help="position -1..1 through the config (checks the direction)")
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help=f"rover config file (default {DEFAULT_CONFIG_PATH} if it exists, else the kit defaults)")
    parser.add_argument("--backend", choices=tuple(KITS), help="which kit (default: drive.backend of the config)")
    return parser


def main(argv: Sequence[str] | None = None, *, bus: Any = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Run the command; ``bus`` replaces smbus2's bus (tests)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["motors"]:
        from rover.hw import calibrate_motors

        return calibrate_motors.main(argv[1:], bus=bus, sleep=sleep)
    args = build_parser().parse_args(argv)
    path = args.config
    if path is None:
        path = default_config_path()
    owned = None
    try:
        backend = args.backend or read_backend(path)
        kit = KITS.get(backend)
        if kit is None:
            raise ConfigError(f"drive.backend = {backend!r} has no servos to calibrate: use --backend picar-b or picar-b2")
        config = load_sections(path, {kit.section: kit.config})[kit.section]
        ticks = target_ticks(config, args.servo, args.ticks, args.position, args.degrees)
        warning = limit_warning(config, args.servo, ticks)
        if warning:
            print(f"{PROG}: {warning}", file=sys.stderr)
        if bus is None:
            bus = owned = open_i2c(config.i2c_bus, hint=None)
        calibrate(config, args.servo, ticks, bus, sleep=sleep)
    except RoverError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        if owned is not None:
            owned.close()
    servo = config.servo(args.servo)
    b2 = isinstance(config, PicarB2Config)
    angle = f", {config.ticks_to_degrees(ticks):.1f} degrees" if b2 else ""
    print(f"{args.servo} (PCA9685 channel {servo.channel}) now at {ticks} ticks "
          f"({ticks_to_ms(ticks, config.servo_hz):.3f} ms at {config.servo_hz:g} Hz{angle})")
    if args.position is not None:
        print(f"position {args.position:+g} should have {PLUS_ONE[args.servo] if args.position > 0 else 'the opposite'}"
              f"{'' if args.position > 0 else ' of position +1'}; if not, set {args.servo}_direction = "
              f"{-servo.direction} in [{kit.section}]")
    print(f"if this is straight ahead, put this line in the [{kit.section}] section of {path or DEFAULT_CONFIG_PATH}:")
    if b2:
        centre = args.degrees if args.degrees is not None else round(config.ticks_to_degrees(ticks), 1)
        print(f"{args.servo}_centre_deg = {centre:g}")
    else:
        print(f"{args.servo}_centre = {ticks}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
