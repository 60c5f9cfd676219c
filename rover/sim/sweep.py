"""``python -m rover.sim.sweep``: every walk at every speed and frame rate, seeds 0-19, in process.

A benchmark, not a test: it runs :func:`rover.sim.inproc.run_inprocess`
(the real drive loop on the simulated clock) for each walk of
:data:`rover.sim.scenarios.WALK_KINDS` at each speed and frame rate (the
detector's processing delay is one frame period, as on a Pi), and prints one
Markdown table row per walk, speed and rate, worst case over the seeds:

- ``in band``: the smallest share of the walk with the distance in the band
  (follow distance - 0.5 m .. + 1.0 m);
- ``closest``: the nearest the camera came to anyone (m; any person in the
  walk, the crossers too), against the stop
  distance;
- ``range err``: the mean |distance - follow distance| (m), largest over seeds;
- ``osc``: steering sign changes per second (largest);
- ``stop``: seconds from the last fresh detection to throttle 0 for good
  (largest), when the person vanished or the detector died;
- ``travel``: metres driven after the capture of the newest detection the
  drive acted on (its target's, whoever it had locked; largest), against the
  stated bound;
- ``trips``: dead-man trips while the detector was alive (total);
- ``locked``: runs that kept the person (crossing: the car points at them at
  the end; others: it followed) over runs;
- ``faster``: mean seconds with "target faster than the car".

``--off 0.15`` runs with the follower's assumptions 15 % off the world
(see :func:`rover.sim.inproc.skewed`; ``--off -0.15`` the other way).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from rover.drive.config import DriveConfig
from rover.hw.config import PicarBConfig
from rover.sim.car import CarModel
from rover.sim.inproc import drive_config_for, run_inprocess, skewed
from rover.sim.noise import DetectorModel
from rover.sim.scenarios import WALK_KINDS, WALK_SPEEDS, walk

FPS = (2.0, 3.0, 5.0, 10.0)
HEADER = ("| walk | m/s | fps | in band (min) | closest m (min) | range err m (max) | osc /s (max) | stop s (max) "
          "| travel m (max) | trips | locked | faster s (mean) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def _worst(values: list[Any], pick) -> Any:
    values = [v for v in values if v is not None]
    return pick(values) if values else None


def _kept(kind: str, summary: dict[str, Any]) -> bool:
    if kind == "crossing":
        return summary.get("followed_person") == 0
    return bool(summary.get("locked"))


def row(kind: str, speed: float, fps: float, seeds: Sequence[int], off: float = 0.0) -> tuple[str, list[dict[str, Any]]]:
    """The table row for one walk, speed and rate, and the summaries it was made of."""
    drive, picar = drive_config_for(), PicarBConfig(min_duty=CarModel().deadband_duty * 100)
    if off:
        drive, picar = skewed(drive, picar, off)
    runs = [run_inprocess(walk(kind, speed), seed=s, detector=DetectorModel(fps=fps), drive=drive, picar=picar).summary
            for s in seeds]

    def fmt(value: Any, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    cells = [
        kind, f"{speed:g}", f"{fps:g}",
        fmt(_worst([r.get("in_band_share") for r in runs], min)),
        fmt(_worst([r.get("closest_approach_m") for r in runs], min)),
        fmt(_worst([r.get("range_error_mean_m") for r in runs], max)),
        fmt(_worst([r.get("steer_sign_changes_per_s") for r in runs], max)),
        fmt(_worst([r.get("stop_command_s") for r in runs], max)),
        fmt(_worst([r.get("travel_after_last_capture_m") for r in runs], max)),
        str(sum(r["deadman_trips"] for r in runs)),
        f"{sum(_kept(kind, r) for r in runs)}/{len(runs)}",
        fmt(sum(r["target_faster_s"] for r in runs) / len(runs), 1),
    ]
    return "| " + " | ".join(cells) + " |", runs


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rover.sim.sweep", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--walks", default=",".join(WALK_KINDS), help="comma-separated walks (default: all)")
    parser.add_argument("--speeds", default=",".join(f"{s:g}" for s in WALK_SPEEDS), help="walking speeds, m/s")
    parser.add_argument("--fps", default=",".join(f"{f:g}" for f in FPS), help="detector frame rates")
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 (default 20; the issue's tables used 5, which hid the worst seeds)")
    parser.add_argument("--off", type=float, default=0.0, help="follower's assumptions off the world by this fraction")
    args = parser.parse_args(argv)
    try:
        walks = [w for w in args.walks.split(",") if w]
        for w in walks:
            walk(w, 1.0)
        speeds, rates = _floats(args.speeds), _floats(args.fps)
        for fps in rates:
            DetectorModel(fps=fps)
    except ValueError as exc:
        print(f"rover.sim.sweep: {exc}", file=sys.stderr)
        return 78
    d = DriveConfig()
    print(f"follow {d.follow_distance_m:g} m, stop {d.stop_distance_m:g} m, travel bound {d.travel_bound_m:g} m, "
          f"seeds 0-{args.seeds - 1}, assumptions off by {args.off:+.0%}")
    print(HEADER)
    for kind in walks:
        for speed in speeds:
            for fps in rates:
                print(row(kind, speed, fps, range(args.seeds), args.off)[0], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
