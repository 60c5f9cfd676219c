"""``python -m export`` / ``rover-export``: checkpoint to float and int8 ONNX models plus a report."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from rover.core.errors import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, RoverError

EPILOG = f"""\
exit codes:
  {EXIT_OK}   models and report written
  {EXIT_USAGE}   bad command-line usage (argparse)
  {EXIT_CONFIG}  input or configuration error, reported in one line on stderr:
      missing or unreadable checkpoint, a file that is not a PyTorch checkpoint,
      a checkpoint of another architecture (first missing/unexpected keys named),
      a --calib/--val path with no readable frames, a bad --voc folder, an
      --out folder that cannot be written
  {EXIT_FAILURE}   any other failure while exporting (a bug: please report it)

example:
  python -m export --weights ssd_weights.pth --calib ../shared/data/vtest.avi --out models/
"""


def build_parser() -> argparse.ArgumentParser:
    from export.quantize import (
        ACTIVATION_TYPES,
        CALIB_METHODS,
        DEFAULT_ACTIVATIONS,
        DEFAULT_CALIB_METHOD,
        QuantOptions,
    )

    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Export the author's SSD300 checkpoint to the rover model contract: "
        "a float32 and an int8 ONNX model, a JSON and Markdown report and a picture.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--weights", type=Path, required=True, help="the author's ssd_weights.pth (a bare state_dict)")
    parser.add_argument("--calib", type=Path, required=True, help="calibration frames: a folder of images or a video file")
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default: models/)")
    parser.add_argument("--val", type=Path, help="held-out frames for the report (default: frames of --calib not used for calibration)")
    parser.add_argument("--voc", type=Path, help="a VOCdevkit year folder: also report true mAP@0.5 on its test split")
    parser.add_argument("--calib-method", choices=sorted(CALIB_METHODS), default=DEFAULT_CALIB_METHOD, help=f"activation range calibration (default: {DEFAULT_CALIB_METHOD}, measured best)")
    parser.add_argument("--activations", choices=sorted(ACTIVATION_TYPES), default=DEFAULT_ACTIVATIONS, help=f"int8 model activation type (default: {DEFAULT_ACTIVATIONS}: every convolution and addition fuses on x86 and ARM; see docs/export.md)")
    defaults = QuantOptions()
    for part, what in (("heads", "the 12 detection-head convolutions"), ("first-conv", "the first convolution"), ("l2norm", "the L2Norm chain")):
        default = "int8" if getattr(defaults, "int8_" + part.replace("-", "_")) else "float"
        parser.add_argument(f"--{part}", choices=("int8", "float"), default=default, help=f"precision of {what} in the int8 model (default: {default}, measured: docs/export.md)")
    parser.add_argument("--weight-bits", type=int, choices=(8, 7), default=defaults.weight_bits,
                        help=f"weight precision (default: {defaults.weight_bits}; 7 cannot saturate on x86 without VNNI: docs/export.md, On AVX2-only CPUs)")
    parser.add_argument("--calib-frames", type=_positive, default=64, help="frames sampled evenly for calibration (default: 64)")
    parser.add_argument("--val-frames", type=_positive, default=16, help="held-out frames for parity and agreement (default: 16)")
    parser.add_argument("--threads", type=_positive, default=os.cpu_count() or 1, help="onnxruntime threads for the latency figures (default: all cores)")
    parser.add_argument("--latency-runs", type=_positive, default=20, help="timed runs per model for the median latency (default: 20)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    return parser


def quant_options(args: argparse.Namespace):
    """The :class:`export.quantize.QuantOptions` the flags ask for."""
    from export.quantize import QuantOptions

    return QuantOptions(
        method=args.calib_method, activations=args.activations,
        int8_heads=args.heads == "int8", int8_first_conv=args.first_conv == "int8", int8_l2norm=args.l2norm == "int8",
        weight_bits=args.weight_bits,
    )  # fmt: skip


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    # Heavy imports here, so --help and argument errors are instant.
    from export import __version__, frames, pipeline, voc
    from export.checkpoint import load_checkpoint
    from export.model import ARCHITECTURE, INPUT_SIZE, VOC_LABELS
    from rover.core.contract import ModelInfo

    pipeline.prepare_out_dir(args.out)
    loaded = load_checkpoint(args.weights)
    if args.val is not None:
        calib = frames.sample(args.calib, args.calib_frames, "--calib")
        held_out = frames.sample(args.val, args.val_frames, "--val")
        held_source = str(args.val)
    else:
        calib, held_out = frames.sample_split(args.calib, args.calib_frames, args.val_frames, "--calib")
        held_source = f"{args.calib} (frames not used for calibration)" if held_out else f"{args.calib} (too few frames: calibration frames reused)"
    voc_images = voc.read_split(args.voc, VOC_LABELS) if args.voc is not None else None
    info = ModelInfo(VOC_LABELS, INPUT_SIZE, INPUT_SIZE, ARCHITECTURE, "float32", loaded.sha256, __version__)
    quant = quant_options(args)
    options = pipeline.ExportOptions(quant=quant, threads=args.threads, latency_runs=args.latency_runs, progress=not args.no_progress)
    source = {"checkpoint": str(args.weights), "variant": loaded.variant, "calib": str(args.calib), "held_out": held_source}
    result = pipeline.export_all(loaded.model, info, calib, held_out, args.out, source, options, voc_images)
    summary(result.report, result)
    return EXIT_OK


def summary(report: dict, result) -> None:
    """A few lines on stdout: where the files are and the key figures."""
    agr, lat, files = report["agreement"], report["latency_ms"], report["files"]
    agreement = "n/a (no float detections)" if agr["map50"] is None else f"{agr['map50']:.4f}"
    print(f"float model: {result.float_path} ({files['float']['bytes'] / 1e6:.1f} MB, {lat['float']:.1f} ms)")
    print(f"int8 model:  {result.int8_path} ({files['int8']['bytes'] / 1e6:.1f} MB, {lat['int8']:.1f} ms, {files['int8_over_float']:.1%} of float)")
    print(f"parity PyTorch vs float ONNX: boxes {report['parity']['max_abs_boxes']:.1e}, scores {report['parity']['max_abs_scores']:.1e}")
    print(f"int8 vs float: mAP@0.5 {agreement}, mean |score diff| {agr['mean_abs_score_diff']:.1e}")
    if report.get("voc"):
        print(f"VOC mAP@0.5: float {report['voc']['float']:.4f}, int8 {report['voc']['int8']:.4f}")
    print(f"report: {result.report_json_path}, {result.report_md_path}; picture: {result.picture_path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except RoverError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
