"""``python -m export.bench``: the author's reference path against this project's path.

Both paths take the same decoded video frames (BGR, as a camera delivers
them) and end with final detections, on the same CPU with the same thread
count:

- reference (seed-model.md): PyTorch eager float32; resize and ImageNet
  normalisation; decode and softmax; a Python loop over the 20 classes
  calling ``torchvision.ops.nms`` at IoU 0.45 after a 0.5 score threshold.
- project: OpenCV resize, RGB uint8, onnxruntime int8 ``session.run``,
  :func:`rover.detector.postprocess.select` (threshold 0.5, NMS 0.45).

Prints the per-frame median of each and their ratio. A benchmark, not a
test: timings depend on the machine and on what else runs on it.

``--cpu avx2`` (or ``avx512-novnni``) re-runs the whole bench in a child
whose CPUID is masked (:mod:`export.cpumask`): PyTorch, numpy and
onnxruntime all pick the kernels of such a CPU, natively, at real speed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision

from export import cpumask, profile
from export.frames import sample, to_input
from export.graph import MEAN, STD, decode
from rover.core.errors import EXIT_CONFIG, RoverError
from rover.detector.cpu import X64_PRECISION_KEY, this_cpu_int8_config
from rover.detector.postprocess import PostprocessConfig, select

DEFAULT_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vtest.avi"
THRESHOLD, NMS_IOU = 0.5, 0.45


def reference_path(model: torch.nn.Module, size: int) -> Callable[[np.ndarray], list]:
    """The author's per-frame path, returning ``[(class, score, box), ...]``."""
    mean, std = np.array(MEAN, np.float32), np.array(STD, np.float32)

    def detect(bgr: np.ndarray) -> list:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        x = (cv2.resize(rgb, (size, size)).astype(np.float32) / 255.0 - mean) / std
        with torch.no_grad():
            loc, conf, priors = model(torch.from_numpy(x.transpose(2, 0, 1)).unsqueeze(0))
            boxes, scores = decode(loc, priors)[0], torch.softmax(conf, dim=-1)[0]
            found = []
            for cls in range(1, scores.shape[1]):
                keep = scores[:, cls] > THRESHOLD
                if keep.any():
                    b, s = boxes[keep], scores[keep, cls]
                    for i in torchvision.ops.nms(b, s, NMS_IOU).tolist():
                        found.append((cls, float(s[i]), b[i].tolist()))
        return found

    return detect


def project_path(int8_path: Path, threads: int, size: int) -> Callable[[np.ndarray], object]:
    """This project's per-frame path (what the robot runs)."""
    from export.evaluate import open_session, run

    session = open_session(str(int8_path), threads)
    config = PostprocessConfig(score_threshold=THRESHOLD, nms_iou=NMS_IOU, top_k=100)

    def detect(bgr: np.ndarray) -> object:
        image = to_input(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size, size)
        return select(*run(session, image), config)

    return detect


def time_interleaved(paths: Sequence[Callable[[np.ndarray], object]], frames: Sequence[np.ndarray], warmup: int = 2,
                     clock: Callable[[], float] = time.perf_counter) -> list[list[float]]:
    """Per-frame wall times in ms of each path, the paths taking turns on every frame.

    Taking turns means a burst of other work on the machine slows both paths
    alike instead of skewing the ratio.
    """
    for bgr in frames[:warmup]:
        for detect in paths:
            detect(bgr)
    times: list[list[float]] = [[] for _ in paths]
    for bgr in frames:
        for detect, out in zip(paths, times):
            start = clock()
            detect(bgr)
            out.append((clock() - start) * 1000.0)
    return times


def bare_runs(sessions: Sequence[object], inputs: Sequence[np.ndarray], clock: Callable[[], float] = time.perf_counter) -> list[list[float]]:
    """Per-run wall times in ms of bare ``session.run`` for each session, taking turns on every input."""
    from export.evaluate import run

    return time_interleaved([lambda x, s=s: run(s, x) for s in sessions], inputs, clock=clock)


def main(argv: Sequence[str] | None = None) -> int:
    from export.quantize import QuantOptions

    defaults = QuantOptions()
    parser = argparse.ArgumentParser(prog="python -m export.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help=f"frames to time on (default: {DEFAULT_VIDEO})")
    parser.add_argument("--frames", type=int, default=30, help="frames sampled evenly from the video (default: 30)")
    parser.add_argument("--weights", type=Path, help="the author's checkpoint (default: a fixed-seed random one)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="threads for every path (default: all cores)")
    parser.add_argument("--activations", choices=("int8", "uint8"), default=defaults.activations, help=f"int8 model activation type (default: {defaults.activations})")
    parser.add_argument("--heads", choices=("int8", "float"), default="int8" if defaults.int8_heads else "float", help="precision of the head convolutions in the int8 model")
    parser.add_argument("--weight-bits", type=int, choices=(8, 7), default=defaults.weight_bits, help=f"int8 model weight precision (default: {defaults.weight_bits})")
    parser.add_argument("--calib-frames", type=int, default=16, help="calibration frames for the int8 model (default: 16)")
    parser.add_argument("--profile", action="store_true", help="also print onnxruntime's kernel time per op type for both models")
    parser.add_argument("--cpu-time", action="store_true", help="time each path by the CPU time of its thread, not wall time (needs --threads 1): "
                        "what each frame costs, robust to other jobs on a shared machine")
    parser.add_argument("--clock-ghz", type=float, help="the cores' real clock for the peak (default: /proc/cpuinfo's, the nominal one in a VM)")
    parser.add_argument("--cpu", choices=("native", *cpumask.PROFILES), default="native",
                        help="run every path on the kernels of another x86 CPU, natively, by masking CPUID (export.cpumask; needs cpuid_fault and gcc)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.cpu_time and args.threads != 1:
        parser.error("--cpu-time needs --threads 1 (with more threads the work runs outside the timed thread)")
    try:
        if args.cpu != "native" and cpumask.active() != args.cpu:
            return cpumask.rerun_masked(args.cpu, "export.bench", argv)  # this process's libraries already chose their kernels
        if args.cpu != "native":
            cpumask.check(args.cpu)
        return _run(args)
    except RoverError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def _run(args: argparse.Namespace) -> int:
    from export import __version__
    from export.checkpoint import load_checkpoint, make_random_checkpoint
    from export.evaluate import open_session
    from export.graph import export_onnx
    from export.model import ARCHITECTURE, INPUT_SIZE, VOC_LABELS
    from export.quantize import QuantOptions, quantize_int8
    from rover.core.contract import ModelInfo

    if not args.video.is_file():
        print(f"error: video {args.video} not found: pass --video PATH", file=sys.stderr)
        return EXIT_CONFIG
    torch.set_num_threads(args.threads)
    clock = time.thread_time if args.cpu_time else time.perf_counter
    quant = QuantOptions(activations=args.activations, int8_heads=args.heads == "int8", weight_bits=args.weight_bits)
    with tempfile.TemporaryDirectory(prefix="rover-bench-") as tmp:
        weights = args.weights or make_random_checkpoint(Path(tmp) / "random.pth", seed=0)
        loaded = load_checkpoint(weights)
        info = ModelInfo(VOC_LABELS, INPUT_SIZE, INPUT_SIZE, ARCHITECTURE, "float32", loaded.sha256, __version__)
        float_path = export_onnx(loaded.model, info, Path(tmp) / "float.onnx")
        calib = [to_input(f.rgb, INPUT_SIZE, INPUT_SIZE) for f in sample(args.video, args.calib_frames)]
        int8_path = quantize_int8(float_path, Path(tmp) / "int8.onnx", calib, info, quant, progress=False)
        frames = [cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR) for f in sample(args.video, args.frames)]
        paths = [reference_path(loaded.model, INPUT_SIZE), project_path(int8_path, args.threads, INPUT_SIZE), project_path(float_path, args.threads, INPUT_SIZE)]
        ref, ours, fp32 = (statistics.median(t) for t in time_interleaved(paths, frames, clock=clock))
        inputs = [to_input(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), INPUT_SIZE, INPUT_SIZE) for bgr in frames]
        # int8 as rover runs it here (exact mode on x86 without VNNI), the other mode beside it
        mode = this_cpu_int8_config()
        other = {} if mode else {X64_PRECISION_KEY: "1"}
        sessions = [open_session(str(int8_path), args.threads), open_session(str(float_path), args.threads), _session(int8_path, args.threads, other)]
        bare = bare_runs(sessions, inputs, clock)
        bare_int8, bare_fp32, bare_other = (statistics.median(t) for t in bare)
        ratios = [f / q for q, f in zip(*bare[:2])]
        macs = profile.conv_macs(float_path)
        shares = {name: profile.op_shares(path, inputs[:8], args.threads, config) for name, path, config in
                  (("int8", int8_path, mode), ("fp32", float_path, {}))} if args.profile else None  # fmt: skip
    cpuinfo = cpumask.masked_cpuinfo(_cpuinfo(), cpumask.active())
    cpu = _cpu_name()
    if cpumask.active():
        cpu += f"; kernels: {cpumask.DESCRIPTIONS[cpumask.active()]}, via the CPUID mask"
    print(f"CPU: {cpu}, threads: {args.threads}; frames: {len(frames)} of {args.video.name}; weights: {args.weights or 'random (seed 0)'}")
    print(f"int8 model: {quant.activations} activations, {quant.weight_bits}-bit weights, heads {args.heads}, "
          f"{'exact mode (' + X64_PRECISION_KEY + '=1, as rover sets on x86 without VNNI)' if mode else 'fast mode (no ' + X64_PRECISION_KEY + ')'}; every path takes its turn on every frame; "
          f"{'CPU time of the thread' if args.cpu_time else 'wall time'}")
    print(f"reference      (PyTorch eager float32, torchvision nms loop):   median {ref:6.1f} ms/frame")
    print(f"project int8   (onnxruntime int8 + rover.detector.postprocess): median {ours:6.1f} ms/frame   {ref / ours:.2f}x the reference (target: 4x)")
    print(f"project fp32   (onnxruntime float32, same pre/post-processing): median {fp32:6.1f} ms/frame   {ref / fp32:.2f}x the reference")
    print(f"bare session.run: int8 {bare_int8:.1f} ms, fp32 {bare_fp32:.1f} ms: int8 {bare_fp32 / bare_int8:.2f}x faster "
          f"(per-frame ratio quartiles {_quartiles(ratios)}; target: 2.5x)")
    exact, fast = (bare_int8, bare_other) if mode else (bare_other, bare_int8)
    print(f"bare int8 in the other mode ({'fast' if mode else 'exact'}): {bare_other:.1f} ms ({bare_fp32 / bare_other:.2f}x faster than fp32); "
          f"the exact mode takes {exact / fast:.2f}x the fast mode's time")
    gmacs = macs["conv"] / 1e6 / bare_int8
    print(f"convolutions: {macs['conv'] / 1e9:.2f} GMAC per frame ({macs['heads'] / 1e9:.2f} in the heads): int8 {gmacs:.0f} GMAC/s, fp32 {macs['conv'] / 1e6 / bare_fp32:.0f} GMAC/s")
    for name, peak in (("int8", profile.int8_peak(args.threads, args.clock_ghz, cpuinfo)), ("fp32", profile.fp32_peak(args.threads, args.clock_ghz, cpuinfo))):
        if peak is None:
            print(f"{name} peak: unknown for this CPU (no table entry for its instruction set)")
        else:
            achieved = gmacs if name == "int8" else macs["conv"] / 1e6 / bare_fp32
            print(f"{name} peak: {peak.describe()}: achieved {achieved / peak.gmacs:.0%} of it")
    if shares:
        for name, share in shares.items():
            top = ", ".join(f"{op} {v:.1%}" for op, v in list(share.items())[:8])
            print(f"{name} kernel time by op type (onnxruntime profile, {min(8, len(inputs))} frames): {top}; int8 kernels {profile.int8_share(share):.1%}")
    return 0


def _session(path: Path, threads: int, config: dict[str, str]):
    """A session as :func:`export.evaluate.open_session` opens one, with ``config`` instead of this CPU's int8 entries."""
    import onnxruntime as ort

    options = profile.session_options(threads, config={"session.intra_op.allow_spinning": "0", **config})
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _quartiles(values: Sequence[float]) -> str:
    if len(values) < 2:
        return "n/a"
    q = statistics.quantiles(values, n=4)
    return f"{q[0]:.2f}-{q[2]:.2f}"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _cpu_name() -> str:
    """The CPU's model name, family and model and its widest int8 instruction set, from /proc/cpuinfo."""
    text = _cpuinfo()
    if not text:
        return "unknown"
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(("model name", "Model"))), "unknown")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    isa = next((label for flag, label in (("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"), ("avx2", "AVX2")) if flag in flags), "")
    family = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("cpu family")), "")
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.split(":")[0].strip() == "model"), "")
    details = ", ".join(x for x in (f"family {family}" if family else "", f"model {model}" if model else "", isa) if x)
    return f"{name} ({details})" if details else name


if __name__ == "__main__":
    sys.exit(main())
