"""``python -m rover.sim --scenario NAME``: follow a simulated person with the real drive.

Runs the scenario in real time (see :mod:`rover.sim.runner`), prints a live
status line, then where the picture and the JSON summary are, and the
summary itself. Exit codes: 0 done, 1 a process failed, 2 usage, 78 a bad
value (unknown scenario, impossible frame rate).
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--scenario", default="straight", help=f"one of: {', '.join(scenarios.SCENARIOS)} (default straight)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--fps", default="pi4", help=f"detector frame rate: a number or a preset ({', '.join(f'{k}={v:g}' for k, v in FPS_PRESETS.items())}); default pi4")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the world (noise, misses, false boxes); default 0")
    parser.add_argument("--out", type=Path, default=Path("sim-out"), help="folder for the picture, summary and logs (default ./sim-out)")
    parser.add_argument("--drive-config", type=Path, default=None, help="TOML config passed to the drive as --config")
    parser.add_argument("--quiet", action="store_true", help="no live status line")
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
        scenario = scenarios.get(args.scenario)
        detector = DetectorModel(fps=parse_fps(args.fps))
    except ValueError as exc:
        print(f"rover.sim: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.drive_config is not None and not args.drive_config.is_file():
        print(f"rover.sim: --drive-config {args.drive_config} does not exist: pass an existing TOML file", file=sys.stderr)
        return EXIT_CONFIG
    print(f"rover.sim: scenario {scenario.name!r} ({scenario.summary}), {detector.fps:g} fps, seed {args.seed}")
    drive_args = ("--config", str(args.drive_config)) if args.drive_config else ()
    signal.signal(signal.SIGTERM, _interrupt)  # so the runner's cleanup stops the drive and the publisher
    try:
        result = run(scenario, args.out, seed=args.seed, detector=detector, drive_args=drive_args,
                     status=StatusLine(enabled=not args.quiet))
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


if __name__ == "__main__":
    sys.exit(main())
