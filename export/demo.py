"""``python -m export.demo``: the export end to end, without the user's weights.

Generates a fixed-seed random-weight checkpoint in the author's format and
exports it exactly as ``python -m export`` would (calibrating on frames of
../shared/data/vtest.avi when present, else on generated frames, and saying
so); flags it does not know are passed on to ``python -m export``. Random
weights detect nothing real: this shows the machinery and gives models of the
real size and cost to benchmark (``make bench``; the tests' ``exported_models``
fixture is made by it). Takes a minute or two on a 2-core laptop.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from rover.core.errors import EXIT_CONFIG, RoverError

VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vtest.avi"


def main(argv: Sequence[str] | None = None) -> int:
    from export.__main__ import main as export_main
    from export.checkpoint import make_random_checkpoint
    from export.frames import write_synthetic_frames

    parser = argparse.ArgumentParser(prog="python -m export.demo", description="Export a random-weight SSD300 end to end.")
    parser.add_argument("--work-dir", type=Path, default=Path("out/demo"), help="where everything goes (default: out/demo)")
    parser.add_argument("--calib-frames", type=int, default=16, help="calibration frames (default: 16)")
    parser.add_argument("--val-frames", type=int, default=8, help="held-out frames (default: 8)")
    args, export_args = parser.parse_known_args(argv)
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
        calib = write_synthetic_frames(args.work_dir / "synthetic_frames", count=24, size=(640, 480))
        print(f"calibration frames: {VIDEO} not found, using SYNTHETIC frames in {calib} instead")
    try:
        return export_main([
            "--weights", str(checkpoint), "--calib", str(calib), "--out", str(args.work_dir / "models"),
            "--calib-frames", str(args.calib_frames), "--val-frames", str(args.val_frames), *export_args,
        ])  # fmt: skip
    except RoverError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
