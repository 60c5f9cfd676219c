"""``python -m rover.sim --scenario NAME``: follow a simulated person with the real drive.

Runs the scenario in real time (see :mod:`rover.sim.runner`), prints a live
status line, then where the picture and the JSON summary are, and the
summary itself. Exit codes: 0 done, 1 a process failed, 2 usage, 78 a bad
value (unknown scenario, impossible frame rate).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from pathlib import Path
from typing import Sequence

from rover.core.errors import EXIT_CONFIG, EXIT_OK, RoverError
from rover.sim import scenarios
from rover.sim.noise import FPS_PRESETS, DetectorModel
from rover.sim.runner import StatusLine, run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rover.sim", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--scenario", default="straight", help=f"one of: {', '.join(scenarios.SCENARIOS)}, or a walk at a speed: "
                        f"{'|'.join(scenarios.WALK_KINDS)}@M/S, e.g. straight@1.0 (default straight)")
    parser.add_argument("--scenario-file", type=Path, default=None, help="a scenario of your own (TOML, see docs/sim.md); its fps and seed apply unless given")
    parser.add_argument("--in-process", action="store_true", help="run the drive loop in this process on a simulated clock (fast, no sockets)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--fps", default=None, help=f"detector frame rate: a number or a preset ({', '.join(f'{k}={v:g}' for k, v in FPS_PRESETS.items())}); default pi5")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the world (noise, misses, false boxes); default 0")
    parser.add_argument("--out", type=Path, default=Path("sim-out"), help="folder for the picture, summary and logs (default ./sim-out)")
    parser.add_argument("--drive-config", type=Path, default=None, help="TOML config passed to the drive as --config")
    parser.add_argument("--quiet", action="store_true", help="no live status line")
    parser.add_argument("--ultrasonic", action="store_true",
                        help="give the car its ultrasonic sensor (it sees the people; the drive's bumper applies)")
    return parser


def parse_fps(text: str) -> float:
    """A frame rate from a preset name or a number; ValueError naming the choices."""
    if text in FPS_PRESETS:
        return FPS_PRESETS[text]
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--fps {text!r} is neither a number nor one of {', '.join(FPS_PRESETS)}") from None


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for name, s in scenarios.SCENARIOS.items():
            print(f"{name:<15} {s.duration_s:4.1f} s  {s.summary}")
        return EXIT_OK
    try:
        if args.scenario_file is not None:
            from rover.sim.scenario_file import load

            scenario, detector, seed = load(args.scenario_file)
        else:
            scenario, detector, seed = scenarios.named(args.scenario), DetectorModel(fps=parse_fps("pi5")), 0
        if args.fps is not None:
            detector = dataclasses.replace(detector, fps=parse_fps(args.fps))
        args.seed = seed if args.seed is None else args.seed
    except ValueError as exc:
        print(f"rover.sim: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.drive_config is not None and not args.drive_config.is_file():
        print(f"rover.sim: --drive-config {args.drive_config} does not exist: pass an existing TOML file", file=sys.stderr)
        return EXIT_CONFIG
    from rover.drive.config import DriveConfig
    from rover.hw.config import PicarBConfig
    from rover.sim.summary import Criteria

    loaded = None  # the drive's and the chassis' sections of --drive-config (None: the defaults)
    if args.drive_config is not None:
        from rover.core.config import load_sections

        try:
            loaded = load_sections(args.drive_config, {"drive": DriveConfig, "picar_b": PicarBConfig})
        except RoverError as exc:
            print(f"rover.sim: {exc}", file=sys.stderr)
            return exc.exit_code
    print(f"rover.sim: scenario {scenario.name!r} ({scenario.summary}), {detector.fps:g} fps, seed {args.seed}")
    drive_args = ("--config", str(args.drive_config)) if args.drive_config else ()
    if args.in_process:
        return _in_process(scenario, detector, args, loaded)
    signal.signal(signal.SIGTERM, _interrupt)  # so the runner's cleanup stops the drive and the publisher
    try:
        criteria = Criteria.for_drive(loaded["drive"] if loaded else DriveConfig())  # the drive's own distances
        result = run(scenario, args.out, seed=args.seed, detector=detector, drive_args=drive_args, criteria=criteria,
                     status=StatusLine(enabled=not args.quiet), ultrasonic=args.ultrasonic)
    except RoverError as exc:
        print(f"rover.sim: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\nrover.sim: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result.summary, indent=2))
    print(f"rover.sim: picture {result.picture}")
    print(f"rover.sim: summary {result.summary_path}")
    print(f"rover.sim: drive log {result.drive_log}")
    return EXIT_OK


def _in_process(scenario: scenarios.Scenario, detector: DetectorModel, args: argparse.Namespace,
                loaded: dict | None) -> int:
    """The run on a simulated clock (rover.sim.inproc): summary, picture, no drive log (``loaded``: --drive-config's sections)."""
    from rover.sim import plot
    from rover.sim.inproc import run_inprocess
    from rover.sim.summary import lost_moments

    result = run_inprocess(scenario, seed=args.seed, detector=detector, drive=loaded["drive"] if loaded else None,
                           picar=loaded["picar_b"] if loaded else None, ultrasonic=args.ultrasonic)
    args.out.mkdir(parents=True, exist_ok=True)
    name = scenario.name.replace("@", "-")
    summary_path = args.out / f"{name}.json"
    summary_path.write_text(json.dumps(result.summary, indent=2) + "\n")
    image = plot.render(result.trace, result.people, lost_moments(result.published), scenario.kill_detector_at,
                        f"{scenario.name} (seed {args.seed}, {detector.fps:g} fps, in process)",
                        tuple(result.summary["band_m"]), result.summary["stop_distance_m"])
    picture = plot.write_png(args.out / f"{name}.png", image)
    print(json.dumps(result.summary, indent=2))
    print(f"rover.sim: picture {picture}")
    print(f"rover.sim: summary {summary_path}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
