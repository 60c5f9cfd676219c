"""``python -m export.demo`` (what ``make demo`` runs until a simulator exists).

Generates a fixed-seed random-weight checkpoint in the author's format,
exports it exactly as ``python -m export`` would (calibrating on frames of
../shared/data/vtest.avi when present, else on generated frames, and saying
so), and prints a short summary of the report and where everything is.
Random weights detect nothing real: the demo shows the machinery, not a
detector's quality. Takes a minute or two on a 2-core laptop.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from rover.errors import EXIT_CONFIG, RoverError

VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vtest.avi"


def synthetic_frames(folder: Path, count: int = 24, seed: int = 0) -> Path:
    """Frames of coloured shapes on noise, 640x480, for machines without the sample video."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        image = rng.integers(0, 90, (480, 640, 3), dtype=np.uint8)
        for _ in range(4):
            colour = tuple(int(c) for c in rng.integers(80, 256, 3))
            x, y, s = int(rng.integers(0, 560)), int(rng.integers(0, 400)), int(rng.integers(30, 80))
            cv2.rectangle(image, (x, y), (x + s, y + 2 * s), colour, -1)
        cv2.imwrite(str(folder / f"synthetic_{i:03d}.png"), image)
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    from export.__main__ import main as export_main
    from export.checkpoint import make_random_checkpoint

    parser = argparse.ArgumentParser(prog="python -m export.demo", description="Export a random-weight SSD300 end to end.")
    parser.add_argument("--work-dir", type=Path, default=Path("out/demo"), help="where everything goes (default: out/demo)")
    parser.add_argument("--calib-frames", type=int, default=16, help="calibration frames (default: 16)")
    parser.add_argument("--val-frames", type=int, default=8, help="held-out frames (default: 8)")
    args = parser.parse_args(argv)
    try:
        args.work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: work dir {args.work_dir} cannot be created ({exc.strerror or exc}): pass --work-dir", file=sys.stderr)
        return EXIT_CONFIG
    checkpoint = make_random_checkpoint(args.work_dir / "ssd_weights.pth", seed=0)
    print(f"checkpoint: {checkpoint} (random weights, seed 0, the author's format)")
    if VIDEO.is_file():
        calib = VIDEO
        print(f"calibration frames: {VIDEO}")
    else:
        calib = synthetic_frames(args.work_dir / "synthetic_frames")
        print(f"calibration frames: {VIDEO} not found, using SYNTHETIC frames in {calib} instead")
    try:
        return export_main([
            "--weights", str(checkpoint), "--calib", str(calib), "--out", str(args.work_dir / "models"),
            "--calib-frames", str(args.calib_frames), "--val-frames", str(args.val_frames),
        ])  # fmt: skip
    except RoverError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
