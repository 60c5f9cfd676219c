"""``python -m export.avx2check``: the int8 model on onnxruntime's AVX2 kernels, under an emulator or a CPUID mask.

On a CPU with AVX-512 VNNI or AVX-VNNI, onnxruntime multiplies u8 x s8 with
``vpdpbusd`` (32-bit sums); on AVX2 without VNNI (a Zen 3, a Haswell to Comet
Lake) with ``vpmaddubsw``, which adds each pair of products into a
*saturating int16* first: 2 x 255 x 127 = 64770 does not fit. This command
runs the same models natively and under :mod:`export.emulate` (valgrind or
qemu presenting an AVX2-only CPUID, so MLAS dispatches its AVX2 kernels) and
prints, for the int8 model against the float one on the same kernels:
agreement mAP@0.5, mean and max |score difference|; with
``session.x64quantprecision=1`` too (onnxruntime's fix: U8U8 kernels that
do not saturate); the op counts of the graph onnxruntime optimized; with
``--voc`` the true mAP@0.5 under each; with ``--callgrind`` the instructions
of one inference (:mod:`export.callgrind`). ``--emulator cpuid`` runs the
same natively with the CPUID masked (:mod:`export.cpumask`, on a CPU with
CPUID faulting): the same kernels at real speed, in seconds instead of
minutes. Its speed is measured by ``python -m export.bench --cpu avx2``;
the emulators' timings mean nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from export.emulate import (
    EMULATORS,
    PRECISION_KEY,
    ModelRun,
    Outputs,
    run_emulated,
    run_models,
)
from rover.core.errors import EXIT_CONFIG, RoverError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PHOTOS = ("basketball1.png", "building.jpg", "messi5.jpg")
#: The labelled runs: (label, model, session config).
FLOAT, INT8, PRECISE = "float", "int8", "int8-x64quantprecision"


def _runs(float_path: Path, int8_path: Path) -> list[ModelRun]:
    return [ModelRun(FLOAT, float_path), ModelRun(INT8, int8_path), ModelRun(PRECISE, int8_path, {PRECISION_KEY: "1"})]


def inputs_from(video: Path, frames: int, photos: Sequence[Path], width: int, height: int) -> list[tuple[str, np.ndarray]]:
    """Named model inputs: the photos, then ``frames`` frames sampled evenly from ``video``."""
    from export.frames import sample, to_input

    named = []
    for path in photos:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise RoverError(f"image {path} cannot be read: pass readable --images")
        named.append((path.name, to_input(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), width, height)))
    if frames:
        named += [(f"{video.name}:{f.name}", to_input(f.rgb, width, height)) for f in sample(video, frames)]
    return named


def agreement_rows(outputs: Outputs, float_outputs: Outputs | None = None) -> dict[str, object]:
    """int8 (and int8 with the precision mode) against float: ``float_outputs``' float run, else ``outputs``' own."""
    from export.evaluate import agreement_of

    floats = (float_outputs or outputs).outputs[FLOAT]
    return {label: agreement_of(zip(floats, outputs.outputs[label])) for label in (INT8, PRECISE) if label in outputs.outputs}


def _score_diff(a: list, b: list) -> tuple[float, float]:
    diffs = [np.abs(x[1] - y[1]) for x, y in zip(a, b)]
    return float(np.mean([d.mean() for d in diffs])), float(max(d.max() for d in diffs))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.avx2check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--float", dest="float_path", type=Path, help="the float model (default: export a random-weight SSD300, seed 0, as export.bench does)")
    parser.add_argument("--int8", dest="int8_path", type=Path, help="the int8 model (with --float)")
    parser.add_argument("--emulator", choices=[*sorted(EMULATORS), "cpuid"], default="valgrind",
                        help="how to present an AVX2-only CPU: valgrind (default, the faster emulator), qemu, or cpuid "
                        "(native, this CPU with its CPUID masked: needs cpuid_fault and gcc)")  # fmt: skip
    parser.add_argument("--video", type=Path, default=SHARED / "vtest.avi", help="frames to compare on (default: ../shared/data/vtest.avi)")
    parser.add_argument("--frames", type=int, default=3, help="frames sampled from --video (default: 3; each costs ~20 s emulated)")
    parser.add_argument("--images", type=Path, nargs="*", help=f"photos to compare on (default: {', '.join(PHOTOS)} in ../shared/data)")
    parser.add_argument("--voc", type=Path, help="a VOC year folder for the models' labels: true mAP@0.5 of every run on its test split")
    parser.add_argument("--float-on-avx2", action="store_true", help="also run the float model emulated (slow: minutes per image under valgrind) "
                        "and score int8-AVX2 against it; default: against the native float outputs")
    parser.add_argument("--callgrind", action="store_true", help="also count the instructions of one int8 and one fp32 inference (valgrind's callgrind: tens of minutes, each model runs twice)")
    parser.add_argument("--calib-frames", type=int, default=16, help="calibration frames when the models are built here (default: 16)")
    parser.add_argument("--weight-bits", type=int, choices=(8, 7), default=8, help="weight precision of the int8 model built here (default: 8)")
    args = parser.parse_args(argv)
    if (args.float_path is None) != (args.int8_path is None):
        parser.error("give both --float and --int8, or neither")
    if args.float_path is not None and args.weight_bits != 8:
        parser.error("--weight-bits applies to the models built here: not with --float and --int8")
    if args.emulator == "cpuid":
        from export.cpumask import CpuMaskError, emulator as masked

        try:
            emulator = masked("avx2")
        except CpuMaskError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
    else:
        emulator = EMULATORS[args.emulator]
    if not emulator.available() or (args.callgrind and not EMULATORS["valgrind"].available()):
        print(f"error: {emulator.argv[0] if not emulator.available() else 'valgrind'} not found: install it (apt install valgrind / qemu-user-static) "
              "or pass --emulator with the other one", file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    try:
        with tempfile.TemporaryDirectory(prefix="rover-avx2-") as tmp:
            return _run(args, emulator, Path(tmp))
    except RoverError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def _build_models(video: Path, calib_frames: int, tmp: Path, weight_bits: int = 8) -> tuple[Path, Path]:
    """The bench's models: the random-weight SSD300 (seed 0), float and default int8 (with ``weight_bits``)."""
    from export import __version__
    from export.checkpoint import load_checkpoint, make_random_checkpoint
    from export.frames import sample, to_input
    from export.graph import export_onnx
    from export.model import ARCHITECTURE, INPUT_SIZE, VOC_LABELS
    from export.quantize import QuantOptions, quantize_int8
    from rover.core.contract import ModelInfo

    loaded = load_checkpoint(make_random_checkpoint(tmp / "random.pth", seed=0))
    info = ModelInfo(VOC_LABELS, INPUT_SIZE, INPUT_SIZE, ARCHITECTURE, "float32", loaded.sha256, __version__)
    float_path = export_onnx(loaded.model, info, tmp / "float.onnx")
    calib = [to_input(f.rgb, INPUT_SIZE, INPUT_SIZE) for f in sample(video, calib_frames)]
    return float_path, quantize_int8(float_path, tmp / "int8.onnx", calib, info, QuantOptions(weight_bits=weight_bits), progress=False)


def _run(args: argparse.Namespace, emulator, tmp: Path) -> int:
    from export.bench import _cpu_name
    from rover.core.contract import parse_metadata

    if args.float_path is None:
        if not args.video.is_file():
            raise RoverError(f"video {args.video} not found: pass --video PATH, or --float and --int8")
        float_path, int8_path = _build_models(args.video, args.calib_frames, tmp, args.weight_bits)
        source = f"random-weight SSD300 (seed 0), default int8 export, {args.weight_bits}-bit weights"
    else:
        float_path, int8_path = args.float_path, args.int8_path
        source = f"{float_path} / {int8_path}"
    import onnxruntime as ort

    meta = ort.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    info = parse_metadata(meta, str(int8_path))
    photos = args.images if args.images is not None else [SHARED / p for p in PHOTOS if (SHARED / p).is_file()]
    named = inputs_from(args.video, args.frames if args.video.is_file() else 0, photos, info.input_width, info.input_height)
    if not named:
        raise RoverError("no images to compare on: pass --images or --video")
    names, inputs = [n for n, _ in named], [x for _, x in named]
    runs = _runs(float_path, int8_path)
    native = run_models(runs, inputs)
    emulated = run_emulated(emulator, runs if args.float_on_avx2 else runs[1:], inputs)
    float_ref = None if args.float_on_avx2 else native
    if emulated.features.get("AVX512F") or emulated.features.get("AVX512VNNI"):
        raise RoverError(f"the {emulator.name} worker still sees AVX-512 ({_features(emulated)}): its kernels are not the AVX2 ones")

    print(f"models: {source}; {len(inputs)} images: {', '.join(names)}")
    print(f"native CPU: {_cpu_name()}; sees {_features(native)}")
    print(f"emulated CPU: {emulator.cpu}; sees {_features(emulated)}")
    for where, result in (("native", native), (emulator.name, emulated)):
        print(f"optimized int8 graph, {where}: " + "; ".join(
            f"{label} QLinearConv {result.ops[label]['QLinearConv']}, QLinearAdd {result.ops[label]['QLinearAdd']}, Conv {result.ops[label]['Conv']}"
            for label in (INT8, PRECISE)))  # fmt: skip
    print(f"int8 vs float ({'each on its own kernels' if args.float_on_avx2 else 'float always native'}; float detections at score >= 0.5 as ground truth):")
    print("| kernels | run | agreement mAP@0.5 | mean abs score diff | max abs score diff | mean abs box diff |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for where, result, ref in (("native", native, None), (f"AVX2 ({emulator.name})", emulated, float_ref)):
        for label, agr in agreement_rows(result, ref).items():
            m = "n/a" if agr.map50 is None else f"{agr.map50:.4f}"
            print(f"| {where} | {label} | {m} | {agr.mean_abs_score_diff:.3e} | {agr.max_abs_score_diff:.3f} | {agr.mean_abs_box_diff:.3e} |")
    for label in emulated.outputs:
        mean, top = _score_diff(emulated.outputs[label], native.outputs[label])
        print(f"{label}: AVX2 ({emulator.name}) vs native outputs: mean abs score diff {mean:.3e}, max {top:.3e}")
    if args.voc:
        _voc(args.voc, info, runs, runs if args.float_on_avx2 else runs[1:], emulator)
    if args.callgrind:
        _callgrind(float_path, int8_path, inputs[0])
    return 0


def _voc(root: Path, info, runs: list[ModelRun], emulated_runs: list[ModelRun], emulator) -> None:
    from export.voc import map50_of, prepare, read_split

    images = read_split(root, info.labels)
    prepared = [prepare(image, info.input_width, info.input_height) for image in images]
    inputs, targets, sizes = [p[0] for p in prepared], [p[1] for p in prepared], [p[2] for p in prepared]
    for where, result in (("native", run_models(runs, inputs)), (f"AVX2 ({emulator.name})", run_emulated(emulator, emulated_runs, inputs))):
        maps = {label: map50_of(result.outputs[label], targets, sizes) for label in result.outputs}
        print(f"true mAP@0.5 on {len(images)} images of {root}, {where}: " + ", ".join(f"{k} {v:.4f}" for k, v in maps.items()))


def _callgrind(float_path: Path, int8_path: Path, image: np.ndarray) -> None:
    from export.callgrind import GROUPS, describe, one_inference

    counts = {}
    for label, path, config in ((INT8, int8_path, {}), (FLOAT, float_path, {}), (PRECISE, int8_path, {PRECISION_KEY: "1"})):
        counts[label] = one_inference(path, image, config)
        print("\n".join(describe(f"callgrind, AVX2 kernels, {label}", counts[label])))
    int8, fp32, precise = counts[INT8], counts[FLOAT], counts[PRECISE]
    print(f"instructions fp32 / int8: {fp32.total / int8.total:.2f}x; int8 with {PRECISION_KEY}=1 / int8: {precise.total / int8.total:.2f}x; "
          f"int8 multiply kernels' share of the int8 model's instructions {int8.share(GROUPS[0]):.1%} "
          "(instructions, not cycles: see docs/export.md for what this does and does not say)")  # fmt: skip


def _features(outputs: Outputs) -> str:
    return ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in outputs.features.items())


if __name__ == "__main__":
    sys.exit(main())
