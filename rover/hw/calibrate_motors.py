"""``rover-calibrate motors``: measure the motors' dead band and the car's top speed against a wall.

    rover-calibrate motors --backend sim           # the simulator's car, in a fraction of a second
    rover-calibrate motors --backend log           # the same, printing every command (a dry run)
    rover-calibrate motors                         # the kit of [drive] backend: asks before the wheels turn
    rover-calibrate motors --yes --write           # no question; then writes the two lines into the config

Put the car 2.5 to 3 m from a flat wall (the 2024 kit: 1.6 to 1.75 m, its
sensor reads up to 2 m), facing it squarely, wheels on the floor, nothing
between. The run (:mod:`rover.hw.motorcal`) raises the duty
from 0 until the car moves, then holds a few higher duties planned from the
room left, and stops: at the stop range, the travel limit, the time limit, an
unknown ultrasonic range, Ctrl-C, SIGTERM or any error. Every way out
closes the chassis (motors off, steering centred) and then runs the kit's
safe-stop routine (:func:`rover.hw.safestop.safe_stop`, what
``rover-safestop`` does). It prints the steps, the fit, and the lines for
the config file; ``--write`` writes them (never without it).

A real kit runs under the drive's sentinel (:mod:`rover.hw.sentinel`): a
process of its own that stops the car should this one die without its
``finally`` (``kill -9``, a crash) or hang. Ctrl-\\ (SIGQUIT), SIGTERM and
SIGHUP stop the car and exit; Ctrl-Z (SIGTSTP) sets the car safe and ends
the run (a run paused half way through a step measures nothing).

Exit codes: 0 measured, 1 aborted (the line says why; the motors are
stopped) or ``--write`` refused (the fit is not good enough to keep), 2
usage (argparse) or not confirmed, 78 configuration error (bad flag values
too), 128 + the signal number when a signal ended it: 129 SIGHUP, 130
SIGINT, 131 SIGQUIT, 143 SIGTERM, 148 SIGTSTP.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from rover.core.config import DEFAULT_CONFIG_PATH, default_config_path, load_sections
from rover.core.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, ConfigError, RoverError
from rover.hw.carlock import lock_the_car
from rover.hw.kits import KITS, read_backend
from rover.hw.motorcal import START_M, CalibrationAborted, Limits, MotorRun, Plan, RunResult
from rover.hw.motorfit import refusals
from rover.hw.motorreport import check_writable, report, write_keys
from rover.hw.sentinel import STOP_SIGNALS, Sentinel, safe_before_suspend

PROG = "rover-calibrate motors"
#: Backends without a car: the simulator's car facing a wall (``log`` also prints every command).
SIMULATED = ("sim", "log")
#: The ranger's interval during the run (the HC-SR04 datasheet: a measurement cycle over 60 ms): more readings in
#: each short step than the drive's 0.1 s default gives, and a median 0.08 s fresher.
CAL_INTERVAL_S = 0.06
#: Start this far inside ultrasonic_max_m: a late echo reads up to 0.34 m too far, and beyond the limit it reads
#: "nothing in range", which aborts (the simulator from 1.9 m on the 2024 kit's 2 m: 18 of 40 runs aborted so).
LATE_HEADROOM_M = 0.25
#: The keys --sim-kit copies: the sensor's range and its ranger's timing (not its pins).
ULTRASONIC_TIMING = ("ultrasonic_interval_s", "ultrasonic_timeout_s", "ultrasonic_retries", "ultrasonic_max_m",
                     "ultrasonic_stale_s", "ultrasonic_samples")
#: What to change when the car drives away from the wall.
REVERSE_HINT = {"picar_b": "flip right_direction and left_direction in [picar_b] (one of them, if the car turned)",
                "picar_b2": "flip m1_direction and m2_direction in [picar_b2] (one of them, if the car turned)"}


#: The simulator's car facing a wall, as ``rover.hw.BACKENDS`` names the sim chassis: loaded only when asked for,
#: since rover.hw never imports rover.sim (tests/test_layout.py).
SIM_RIG = "rover.sim.wallcal:WallRig"


def _sim_rig() -> Any:
    module, _, name = SIM_RIG.partition(":")
    return getattr(importlib.import_module(module), name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Measure the motors' dead band and the car's top speed "
                                     "by driving towards a wall and reading the ultrasonic range.")
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help=f"rover config file (default {DEFAULT_CONFIG_PATH} if it exists, else the kit defaults)")
    parser.add_argument("--backend", choices=(*KITS, *SIMULATED),
                        help="which car (default: drive.backend of the config); sim and log: the simulator's car")
    parser.add_argument("--yes", action="store_true", help="start without asking (the wheels turn at once)")
    parser.add_argument("--write", action="store_true", help="write min_duty and top_speed_mps into --config")
    parser.add_argument("--wall-m", type=float, metavar="M", help="the distance to the wall you measured: the sensor must agree within 0.15 m")
    parser.add_argument("--max-duty", type=float, metavar="PCT", help="highest duty driven, percent (default: the section's max_duty)")
    parser.add_argument("--step", type=float, default=Plan.step_pct, metavar="PCT", help="duty increment while finding the dead band (default %(default)g)")
    parser.add_argument("--min-range-m", type=float, default=Limits.min_range_m, metavar="M",
                        help="stop this close to the wall, plus what the car covers in the sensor's delay (default %(default)g)")
    parser.add_argument("--max-travel-m", type=float, default=Limits.max_travel_m, metavar="M", help="stop after this much travel (default %(default)g)")
    parser.add_argument("--max-time-s", type=float, default=Limits.max_time_s, metavar="S", help="stop after this long (default %(default)g)")
    parser.add_argument("--sim-wall-m", type=float, metavar="M",
                        help="sim and log: the wall's distance (default 2.5, or 1.7 with --sim-kit picar-b2)")
    parser.add_argument("--sim-kit", choices=KITS, default="picar-b",
                        help="sim and log: whose ultrasonic keys the simulated sensor has (picar-b2: up to 2 m)")
    parser.add_argument("--seed", type=int, default=0, help="sim and log: the random seed (default 0)")
    return parser


class Interrupted(BaseException):
    """SIGTERM, SIGHUP, SIGQUIT or SIGTSTP arrived: unwinds like Ctrl-C through every ``finally`` (the motors stop)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None, *, gpio: Any = None, bus: Any = None,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
         stdin: TextIO | None = None, chassis_hook: Callable[[Any], None] | None = None) -> int:
    """Run the command. ``gpio``/``bus`` replace the vendor libraries, ``clock``/``sleep`` the time (tests);
    ``chassis_hook`` sees the opened chassis before the run (tests drive its ranger in virtual time)."""
    args = build_parser().parse_args(argv)
    path = args.config if args.config is not None else default_config_path()
    try:
        backend = args.backend or read_backend(path)
        kit = KITS.get(backend)
        if kit is None and backend not in SIMULATED:
            raise ConfigError(f"drive.backend = {backend!r} has no motors to calibrate: use --backend picar-b, picar-b2 or sim")
        section = kit.section if kit is not None else "picar_b"
        kit_cls = kit.config if kit is not None else KITS["picar-b"].config
        sections = load_sections(path, {section: kit_cls})
        config = sections[section]
        if kit is None and args.sim_kit != "picar-b":  # the simulated sensor gets that kit's ranger (2024: 2 m)
            other = KITS[args.sim_kit].config()
            config = dataclasses.replace(config, **{key: getattr(other, key) for key in ULTRASONIC_TIMING})
        if not config.ultrasonic_enabled:
            raise ConfigError(f"{section}.ultrasonic_enabled = false: calibrating the motors needs the ultrasonic sensor")
        if args.write and kit is None:
            raise ConfigError(f"--write is for a real kit: --backend {backend} measures the simulator's car, not yours")
        if args.write and path is None:
            raise ConfigError(f"--write needs a config file: pass --config PATH (none at {DEFAULT_CONFIG_PATH})")
        if args.write:
            check_writable(path)  # before the wheels turn, not after
        # Driven up to --max-duty (default max_duty); the top speed is stated at max_duty, what throttle 1 sets.
        plan = Plan(step_pct=args.step, max_duty_pct=args.max_duty if args.max_duty is not None else config.max_duty,
                    top_duty_pct=config.max_duty)
        # The sensor reads "nothing in range" beyond ultrasonic_max_m (2 m on the 2024 kit): start within it.
        if config.ultrasonic_max_m - LATE_HEADROOM_M < Limits.start_min_m:
            raise ConfigError(f"{section}.ultrasonic_max_m = {config.ultrasonic_max_m:g}: calibrating needs a sensor "
                              f"reading to {Limits.start_min_m + LATE_HEADROOM_M:g} m at least (the car starts "
                              f"{Limits.start_min_m:g} m "
                              "or more from the wall)")
        limits = Limits(min_range_m=args.min_range_m, max_travel_m=args.max_travel_m, max_time_s=args.max_time_s,
                        start_max_m=min(Limits.start_max_m, config.ultrasonic_max_m - LATE_HEADROOM_M))
    except (ValueError, RoverError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, RoverError) else ConfigError.exit_code
    print(f"{PROG}: {backend}: duty up from 0 in {plan.step_pct:g} % steps, then up to {plan.max_duty_pct:g} %; "
          f"stops {limits.min_range_m:g} m (plus the reading's age and the coast at speed) from the wall, after "
          f"{limits.max_travel_m:g} m or {limits.max_time_s:g} s, or when the range is unknown; place the car "
          f"{min(START_M if limits.start_max_m < 2.5 else 2.5, limits.start_max_m):g} to {limits.start_max_m:g} m "
          "from a flat wall, facing it squarely", flush=True)
    try:
        confirmed = kit is None or args.yes or _confirmed(stdin if stdin is not None else sys.stdin)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted: not started, nothing was driven", file=sys.stderr)
        return 128 + signal.SIGINT
    if not confirmed:
        print(f"{PROG}: not started: nothing was driven (pass --yes to start without asking)", file=sys.stderr)
        return EXIT_USAGE
    # The run commands raw duty: throttle 1 = 100 %, no dead-band offset; the ranger at the sensor's fastest cycle.
    raw = dataclasses.replace(config, min_duty=0.0, max_duty=100.0,
                              ultrasonic_interval_s=min(config.ultrasonic_interval_s, CAL_INTERVAL_S))
    lock = chassis = sentinel = None

    def on_suspend(signum: int, _frame: object) -> None:
        """Ctrl-Z: the car safe at once (as rover-drive does), then the run ends: it cannot resume mid-step."""
        safe_before_suspend(chassis, sentinel, report=lambda line: print(f"{PROG}: {line}", file=sys.stderr))
        raise Interrupted(signum)

    handlers = {signum: _on_signal for signum in STOP_SIGNALS if signum != signal.SIGINT}  # SIGINT: KeyboardInterrupt
    previous = {signum: signal.signal(signum, handler) for signum, handler in {**handlers, signal.SIGTSTP: on_suspend}.items()}
    code = EXIT_OK
    result: RunResult | None = None
    try:
        if kit is not None:
            lock = lock_the_car(backend)  # one program commands the car at a time (rover-drive takes it too)
            from rover.hw import open_chassis

            # Stops the car should this process die without its finally (kill -9): it holds the lock till then.
            sentinel = Sentinel.start({"drive": {"backend": backend}, section: config},
                                      keep_fds=(lock.fileno(),))
            sleep = _beating(sleep, sentinel)
            chassis = open_chassis(backend, raw, gpio=gpio, bus=bus, clock=clock)
        else:
            wall_m = args.sim_wall_m if args.sim_wall_m is not None else (1.7 if args.sim_kit == "picar-b2" else 2.5)
            rig = _sim_rig()(wall_m, config=raw, seed=args.seed, stream=sys.stdout if backend == "log" else None)
            chassis, clock, sleep = rig.chassis, rig.clock, rig.sleep
        if chassis_hook is not None:
            chassis_hook(chassis)
        ranger = getattr(chassis, "ranger", None) or getattr(chassis, "_ranger", None)  # the kits keep it private
        if ranger is None:
            raise ConfigError(f"{section}: the chassis opened without its ultrasonic ranger: cannot calibrate")
        run = MotorRun(chassis, ranger, clock=clock, sleep=sleep, plan=plan, limits=limits, wall_m=args.wall_m,
                       say=lambda line: print(f"{PROG}: {line}", flush=True), reverse_hint=REVERSE_HINT[section])
        result = run.run()
    except CalibrationAborted as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted: motors stopped", file=sys.stderr)
        code = 128 + signal.SIGINT
    except Interrupted as exc:
        ended = " (Ctrl-Z ends the run: a step paused half way measures nothing; start again)" if exc.signum == signal.SIGTSTP else ""
        print(f"{PROG}: {signal.Signals(exc.signum).name}: motors stopped{ended}", file=sys.stderr)
        code = 128 + exc.signum
    except RoverError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        code = exc.exit_code
    finally:
        # A second Ctrl-C or SIGTERM must not cut the stop short: they wait until it is done.
        held = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, *previous)}
        try:
            if sentinel is not None:
                sentinel.pause()  # no heartbeats while stopping (the ranger's join may take a second)
            # The kit's safe-stop only when this program holds the car: never into another drive's pins.
            stopped = _stop_everything(chassis, kit if lock is not None else None, backend, sections, gpio, bus, EXIT_OK)
            code = stopped if code == EXIT_OK else code
            if sentinel is not None:
                if stopped == EXIT_OK:
                    sentinel.stand_down()  # the car is stopped: nothing left for it to do
                else:
                    sentinel.release()  # it stops the car once this process has gone
            if lock is not None:
                lock.close()
        finally:
            signal.signal(signal.SIGINT, held[signal.SIGINT])
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    if result is None or code != EXIT_OK:
        return code
    assert result.calibration is not None
    refused = refusals(result.calibration, result.steps)
    if result.stop_reason.startswith("stop range"):
        refused.append("the run ended at the stop range (the car came faster than predicted, or something came "
                       "near): start again")
    report(result, section, path, refused)
    if not args.write:
        return EXIT_OK
    assert path is not None
    if refused:
        print(f"{PROG}: --write refused: {refused[0]}{f' (and {len(refused) - 1} more above)' if len(refused) > 1 else ''}; "
              f"{path} is untouched", file=sys.stderr)
        return EXIT_FAILURE
    try:
        write_keys(path, section, kit_cls, result)
    except ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {section}.min_duty and drive.top_speed_mps into {path}")
    return EXIT_OK


def _beating(sleep: Callable[[float], None], sentinel: Sentinel) -> Callable[[float], None]:
    """``sleep``, then a heartbeat to the sentinel: a run silent for its QUIET_S (hung, SIGSTOPped) is killed."""

    def beat(seconds: float) -> None:
        sleep(seconds)
        sentinel.heartbeat()

    return beat


def _confirmed(stdin: TextIO) -> bool:
    """Ask on the terminal; never start on a closed or non-interactive stdin."""
    if not (hasattr(stdin, "isatty") and stdin.isatty()):
        print(f"{PROG}: stdin is not a terminal: cannot ask", file=sys.stderr)
        return False
    print("The car will drive FORWARD towards the wall. Clear the way, keep a hand near it. Type yes to start: ",
          end="", flush=True)
    try:
        return stdin.readline().strip().lower() == "yes"
    except (OSError, ValueError):
        return False


def _stop_everything(chassis: Any, kit: Any, backend: str, sections: Any, gpio: Any, bus: Any, code: int) -> int:
    """Close the chassis (motors off, servos centred), then the kit's safe-stop routine; one line per failure."""
    failures: list[str] = []
    if chassis is not None:
        try:
            chassis.close()
        except Exception as exc:  # noqa: BLE001 - the safe-stop routine below still runs
            failures.append(f"closing the chassis failed: {exc}")
    if kit is not None:
        from rover.hw.safestop import safe_stop

        failures += safe_stop({**sections, "drive": {"backend": backend}}, gpio=gpio, bus=bus)
    for line in failures:
        print(f"{PROG}: {line}", file=sys.stderr)
    return EXIT_FAILURE if failures and code == EXIT_OK else code
