"""``python -m rover.detector.bench --model M --source S``: where the detector's time goes.

Runs the real service loop (grabber thread, preprocess, onnxruntime,
postprocess, ZeroMQ publish to a local subscriber) for ``--frames`` frames
and reports, per stage, the median and p99 in milliseconds; the service's
throughput against bare ``session.run`` throughput on the same model and
input; capture-to-publish latency; peak RSS. A benchmark, not a test: it
prints figures and whether this machine meets the targets (service >= 90 %
of bare throughput; capture-to-publish p50 <= inference p50 + 10 ms).

The source is read one frame per request (``pace = false``) unless
``--pace``: a paced source caps throughput at its own frame rate.

``--preview`` adds, in every round, a service run with the live view's
preview publisher (``rover.detector.preview``, ``[view]`` defaults: 320 px, 5 fps)
switched off and on every ``--preview-segment`` frames, and reports the
throughput with preview over without as a ratio: the median over adjacent
off/on segment pairs, so a load change on a shared machine hits both sides
of each pair alike.
"""

from __future__ import annotations

import argparse
import contextlib
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

from rover.core.errors import ConfigError, RoverError
from rover.detector.config import CameraSection
from rover.detector.model import Detector
from rover.detector.preview import PreviewPublisher
from rover.detector.publisher import DetectionPublisher
from rover.detector.service import DetectorService
from rover.detector.stats import FrameStats, percentile
from rover.sources import make_source
from rover.sources.grabber import FrameGrabber
from rover.view.config import ViewSection

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


def run_service(
    detector: Detector, camera: CameraSection, frames: int, preview: ViewSection | None = None, segment: int = 0
) -> tuple[list[FrameStats], list[float], int, tuple[int, list[float]] | None]:
    """The real loop on a private ipc endpoint with a subscriber draining it.

    With ``preview``, a PreviewPublisher on its own ipc endpoint (also drained)
    is offered the frames of every second run of ``segment`` frames (all
    frames if ``segment`` is 0); the 4th item is then (preview frames sent,
    encode ms each).
    """
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
        frame_sub = ctx.socket(zmq.SUB)
        frame_sub.linger = 0
        frame_sub.subscribe(b"")
        frame_sub.connect(f"ipc://{tmp}/preview.sock")
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(frame_sub, zmq.POLLIN)

        def drain() -> None:
            while not done.is_set():
                for sock, _ in poller.poll(100):
                    if sock is sub:
                        sub.recv()
                        received[0] += 1
                    else:
                        sock.recv_multipart()

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        preview_out = None
        with contextlib.ExitStack() as stack:
            publisher = stack.enter_context(DetectionPublisher(endpoint, context=ctx))
            frames_pub = None
            if preview is not None:
                frames_pub = stack.enter_context(PreviewPublisher(
                    f"ipc://{tmp}/preview.sock", width=preview.width, max_fps=preview.max_fps,
                    jpeg_quality=preview.jpeg_quality, context=ctx))
            time.sleep(0.2)  # let the subscriber join before the first frame
            grabber = FrameGrabber(make_source(camera)).start()
            try:
                DetectorService(detector, grabber, publisher, max_frames=frames, observer=observe,
                                summary_interval_s=3600,
                                preview=None if frames_pub is None else _gated(frames_pub.offer, segment)).run()
            finally:
                grabber.stop()
            time.sleep(0.1)
            done.set()
            reader.join()
            if frames_pub is not None:
                frames_pub.close()
                preview_out = (frames_pub.sent, list(frames_pub.encode_ms))
        sub.close()
        frame_sub.close()
        ctx.term()
    return stats, stamps, received[0], preview_out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rover.detector.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="contract ONNX model")
    parser.add_argument("--source", required=True, help="video file, image folder, device index or URL")
    parser.add_argument("--frames", type=int, default=100, help="frames through the service (default 100)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = all cores)")
    parser.add_argument("--classes", default="", help="comma-separated allow-list, as detector.classes (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/service rounds (default 3)")
    parser.add_argument("--pace", action="store_true", help="play a file at its own frame rate")
    parser.add_argument("--preview", action="store_true",
                        help="also run with the live view's preview frames on, and report with/without as a ratio")
    parser.add_argument("--preview-fps", type=float, default=ViewSection.max_fps,
                        help=f"preview frames per second (default {ViewSection.max_fps:g}, as view.max_fps)")
    parser.add_argument("--preview-width", type=int, default=ViewSection.width,
                        help=f"preview width in pixels (default {ViewSection.width}, as view.width)")
    parser.add_argument("--preview-segment", type=int, default=5,
                        help="frames between switching the preview off and on (default 5)")
    args = parser.parse_args(argv)
    try:
        return bench(args)
    except RoverError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def bench(args: argparse.Namespace) -> int:
    try:
        preview = ViewSection(preview=True, max_fps=args.preview_fps, width=args.preview_width) if args.preview else None
    except ValueError as exc:
        raise ConfigError(str(exc).replace("view.max_fps", "--preview-fps").replace("view.width", "--preview-width")) from None
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    detector = Detector(args.model, intra_op_threads=args.threads, classes=classes)
    load_before = os.getloadavg()[0]
    camera = CameraSection(source=args.source, pace=args.pace, loop=True)
    image, order = first_frame(camera)
    tensor = detector.preprocess(image, order).copy()

    # Bare and service runs alternate, round by round, so a load change on a
    # shared machine hits both sides alike; the ratio is the median of rounds.
    stats: list[FrameStats] = []
    bare_ms: list[float] = []
    ratios, services, bares = [], [], []
    received = 0
    per_round = max(2, args.frames // args.rounds)
    preview_ratios: list[float] = []
    preview_sent, encode_ms = 0, []
    for _ in range(args.rounds):
        bare_fps, times = bare_throughput(detector, tensor, max(10, per_round // 2))
        round_stats, stamps, got, _ = run_service(detector, camera, per_round)
        service_fps = _fps(stamps)
        if preview is not None:
            pairs, sent, encoded = _preview_round(detector, camera, per_round, preview, args.preview_segment)
            preview_ratios += pairs
            preview_sent += sent
            encode_ms += encoded
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
    if preview is not None:
        print_preview(preview, preview_ratios, preview_sent, encode_ms)
    return 0


def _fps(stamps: list[float]) -> float:
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


def _gated(offer, segment: int):
    """``offer`` called only for frames in odd-numbered runs of ``segment`` frames (off, on, off, on ...)."""
    count = [0]

    def gate(frame, order: str, seq: int) -> None:
        on = segment <= 0 or (count[0] // segment) % 2 == 1
        count[0] += 1
        if on:
            offer(frame, order, seq)

    return gate


def _preview_round(detector: Detector, camera: CameraSection, frames: int, preview: ViewSection,
                   segment: int) -> tuple[list[float], int, list[float]]:
    """Throughput ratios (preview on / off) of adjacent segment pairs of one toggled run."""
    _, stamps, _, (sent, encode_ms) = run_service(detector, camera, frames, preview, segment)
    ratios = []
    for start in range(0, len(stamps) - 2 * segment + 1, 2 * segment):
        # A segment's time runs from the last frame before it to its own last frame.
        off = stamps[max(0, start - 1):start + segment]
        on = stamps[start + segment - 1:start + 2 * segment]
        if len(off) > 1 and len(on) > 1:
            ratios.append(_fps(on) / _fps(off))
    return ratios, sent, encode_ms


def print_preview(preview: ViewSection, ratios: list[float], sent: int, encode_ms: list[float]) -> None:
    ratio = float(np.median(ratios)) if ratios else 0.0
    print(f"preview ({preview.width} px, <= {preview.max_fps:g} fps, JPEG quality {preview.jpeg_quality}): "
          f"service throughput with preview / without: {100 * ratio:.1f} % "
          f"(median of {len(ratios)} adjacent off/on segment pairs; quartiles "
          f"{100 * percentile(ratios, 25):.1f} %, {100 * percentile(ratios, 75):.1f} %); "
          f"{sent} preview frames sent, resize + encode p50 {percentile(encode_ms, 50):.1f} ms, "
          f"p99 {percentile(encode_ms, 99):.1f} ms (in the encoder thread)")
    busy = percentile(encode_ms, 50) * min(preview.max_fps, 1e3 / max(percentile(encode_ms, 50), 1e-3)) / 10
    print(f"preview encoder load at {preview.max_fps:g} fps: {busy:.1f} % of one core (p50 encode x rate)")
    print(f"target preview costs <= 5 % of the detector's frame rate: {'met' if ratio >= 0.95 else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
