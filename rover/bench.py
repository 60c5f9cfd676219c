"""``python -m rover.bench --model M --source S``: where the detector's time goes.

Runs the real service loop (grabber thread, preprocess, onnxruntime,
postprocess, ZeroMQ publish to a local subscriber) for ``--frames`` frames
and reports, per stage, the median and p99 in milliseconds; the service's
throughput against bare ``session.run`` throughput on the same model and
input; capture-to-publish latency; peak RSS. A benchmark, not a test: it
prints figures and whether this machine meets the targets (service >= 90 %
of bare throughput; capture-to-publish p50 <= inference p50 + 10 ms).

The source is read one frame per request (``pace = false``) unless
``--pace``: a paced source caps throughput at its own frame rate.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import zmq

from rover.detector.config import CameraSection
from rover.detector.model import Detector
from rover.detector.service import DetectorService
from rover.detector.stats import FrameStats, percentile
from rover.errors import RoverError
from rover.publisher import DetectionPublisher
from rover.sources import make_source
from rover.sources.grabber import FrameGrabber

STAGES = (
    ("waiting for a frame", "wait_ms"),
    ("preprocess", "preprocess_ms"),
    ("inference", "inference_ms"),
    ("postprocess", "postprocess_ms"),
    ("publish (build, encode, send)", "publish_ms"),
    ("capture to publish", "capture_to_publish_ms"),
)


def bare_throughput(detector: Detector, tensor: np.ndarray, runs: int) -> tuple[float, list[float]]:
    """Frames per second of ``session.run`` alone on ``tensor``, and each run's ms."""
    times = []
    start = time.perf_counter()
    for _ in range(runs):
        t0 = time.perf_counter()
        detector.run(tensor)
        times.append((time.perf_counter() - t0) * 1e3)
    return runs / (time.perf_counter() - start), times


def first_frame(camera: CameraSection) -> tuple[np.ndarray, str]:
    source = make_source(replace(camera, pace=False))
    source.open()
    try:
        return source.read(), source.order
    finally:
        source.close()


def run_service(detector: Detector, camera: CameraSection, frames: int) -> tuple[list[FrameStats], list[float], int]:
    """The real loop on a private ipc endpoint with a subscriber draining it."""
    stats: list[FrameStats] = []
    stamps: list[float] = []

    def observe(s: FrameStats) -> None:
        stats.append(s)
        stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory(prefix="rover-bench-") as tmp:
        endpoint = f"ipc://{tmp}/bench.sock"
        received = [0]
        done = threading.Event()
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.subscribe(b"detections")
        sub.rcvtimeo = 100
        sub.connect(endpoint)

        def drain() -> None:
            while not done.is_set():
                try:
                    sub.recv()
                    received[0] += 1
                except zmq.Again:
                    pass

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        with DetectionPublisher(endpoint, context=ctx) as publisher:
            time.sleep(0.2)  # let the subscriber join before the first frame
            grabber = FrameGrabber(make_source(camera)).start()
            try:
                DetectorService(detector, grabber, publisher, max_frames=frames, observer=observe,
                                summary_interval_s=3600).run()
            finally:
                grabber.stop()
            time.sleep(0.1)
            done.set()
            reader.join()
        sub.close()
        ctx.term()
    return stats, stamps, received[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rover.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="contract ONNX model")
    parser.add_argument("--source", required=True, help="video file, image folder, device index or URL")
    parser.add_argument("--frames", type=int, default=100, help="frames through the service (default 100)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = all cores)")
    parser.add_argument("--classes", default="", help="comma-separated allow-list, as detector.classes (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/service rounds (default 3)")
    parser.add_argument("--pace", action="store_true", help="play a file at its own frame rate")
    args = parser.parse_args(argv)
    try:
        return bench(args)
    except RoverError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def bench(args: argparse.Namespace) -> int:
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    detector = Detector(args.model, intra_op_threads=args.threads, classes=classes)
    load_before = os.getloadavg()[0]
    camera = CameraSection(source=args.source, pace=args.pace, loop=True)
    image, order = first_frame(camera)
    tensor = detector.preprocess(image, order).copy()
    runs = max(10, args.frames // 2)

    # Bare and service runs alternate, round by round, so a load change on a
    # shared machine hits both sides alike; the ratio is the median of rounds.
    stats: list[FrameStats] = []
    bare_ms: list[float] = []
    ratios, services, bares = [], [], []
    received = 0
    per_round = max(2, args.frames // args.rounds)
    for _ in range(args.rounds):
        bare_fps, times = bare_throughput(detector, tensor, max(10, per_round // 2))
        round_stats, stamps, got = run_service(detector, camera, per_round)
        service_fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
        stats += round_stats
        bare_ms += times
        received += got
        services.append(service_fps)
        bares.append(bare_fps)
        ratios.append(service_fps / bare_fps if bare_fps else 0.0)
    service, bare, ratio = (float(np.median(v)) for v in (services, bares, ratios))
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    info = detector.info
    print(f"model {args.model.name}: {info.architecture} {info.precision}, input {info.input_width}x{info.input_height}")
    print(f"source {args.source} ({image.shape[1]}x{image.shape[0]}), {len(stats)} frames through the service, "
          f"{args.threads or 'all'} intra-op threads, classes {classes or 'all'}, {received} messages received by a subscriber\n")
    print("| stage | median ms | p99 ms |\n| --- | ---: | ---: |")
    for name, attr in STAGES:
        values = [getattr(s, attr) for s in stats]
        print(f"| {name} | {percentile(values, 50):.1f} | {percentile(values, 99):.1f} |")
    print(f"| bare session.run | {percentile(bare_ms, 50):.1f} | {percentile(bare_ms, 99):.1f} |")
    print()
    c2p = percentile([s.capture_to_publish_ms for s in stats], 50)
    inference = percentile([s.inference_ms for s in stats], 50)
    print(f"throughput (median of {args.rounds} alternating rounds): service {service:.2f} fps, "
          f"bare session.run {bare:.2f} fps; service/bare {100 * ratio:.1f} % "
          f"(rounds: {', '.join(f'{100 * r:.0f} %' for r in ratios)})")
    print(f"capture-to-publish p50 {c2p:.1f} ms vs inference p50 {inference:.1f} ms: +{c2p - inference:.1f} ms")
    print(f"peak RSS {peak_rss_mb:.0f} MB; 1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
          f"on {os.cpu_count()} CPUs (other work on the machine slows both sides)")
    print(f"target service >= 90 % of bare: {'met' if ratio >= 0.9 else 'NOT met'}; "
          f"target capture-to-publish p50 <= inference + 10 ms: {'met' if c2p <= inference + 10 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
