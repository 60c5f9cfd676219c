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
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
import torchvision

from export.frames import sample, to_input
from export.graph import MEAN, STD, decode
from rover.core.errors import EXIT_CONFIG, RoverError
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help=f"frames to time on (default: {DEFAULT_VIDEO})")
    parser.add_argument("--frames", type=int, default=30, help="frames sampled evenly from the video (default: 30)")
    parser.add_argument("--weights", type=Path, help="the author's checkpoint (default: a fixed-seed random one)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="threads for both paths (default: all cores)")
    parser.add_argument("--activations", choices=("int8", "uint8"), default="int8", help="int8 model activation type (default: int8)")
    parser.add_argument("--calib-frames", type=int, default=16, help="calibration frames for the int8 model (default: 16)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except RoverError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def _run(args: argparse.Namespace) -> int:
    from export import __version__
    from export.checkpoint import load_checkpoint, make_random_checkpoint
    from export.graph import export_onnx
    from export.model import ARCHITECTURE, INPUT_SIZE, VOC_LABELS
    from export.quantize import quantize_int8
    from rover.core.contract import ModelInfo

    if not args.video.is_file():
        print(f"error: video {args.video} not found: pass --video PATH", file=sys.stderr)
        return EXIT_CONFIG
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="rover-bench-") as tmp:
        weights = args.weights or make_random_checkpoint(Path(tmp) / "random.pth", seed=0)
        loaded = load_checkpoint(weights)
        info = ModelInfo(VOC_LABELS, INPUT_SIZE, INPUT_SIZE, ARCHITECTURE, "float32", loaded.sha256, __version__)
        float_path = export_onnx(loaded.model, info, Path(tmp) / "float.onnx")
        calib = [to_input(f.rgb, INPUT_SIZE, INPUT_SIZE) for f in sample(args.video, args.calib_frames)]
        int8_path = quantize_int8(float_path, Path(tmp) / "int8.onnx", calib, info, activations=args.activations)
        frames = [cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR) for f in sample(args.video, args.frames)]
        paths = [reference_path(loaded.model, INPUT_SIZE), project_path(int8_path, args.threads, INPUT_SIZE)]
        ref, ours = (statistics.median(t) for t in time_interleaved(paths, frames))
    print(f"frames: {len(frames)} of {args.video.name}, threads: {args.threads}, activations: {args.activations}, weights: {args.weights or 'random (seed 0)'}")
    print(f"reference (PyTorch eager float32, torchvision nms loop): median {ref:.1f} ms/frame")
    print(f"project   (onnxruntime int8 + rover.detector.postprocess.select): median {ours:.1f} ms/frame")
    print(f"speed-up: {ref / ours:.2f}x (target: 4x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
