"""``rover-detector`` / ``python -m rover.detector``: the on-robot detection service.

Reads ``[detector]``, ``[camera]`` and ``[stream]`` from the config file
(``--config``, default /etc/rover/rover.toml), applies command-line flags on
top, and runs :class:`~rover.detector.service.DetectorService` until SIGTERM
or SIGINT. Cheap checks come first, so a mistake is reported at once: the
config, then the frame source (a missing or undecodable file or folder),
then the endpoints it binds; the model (seconds to load) comes last. Exit codes: 0 stopped on request (or max frames / end of file
reached), 1 the camera failed for longer than ``camera.retry_timeout_s``
(systemd restarts it), 78 a bad config or model (a restart cannot help).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
from pathlib import Path
from typing import Sequence

from rover.core.config import DEFAULT_CONFIG_PATH, default_config_path, load_sections, with_overrides
from rover.core.sdnotify import Notifier
from rover.core.service import run_until_signal, setup_logging

log = logging.getLogger("rover.detector")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rover-detector",
        description="The on-robot detection service: camera frames in, one ZeroMQ detection message per frame out.",
    )
    parser.add_argument("--config", type=Path, help=f"TOML config file (default {DEFAULT_CONFIG_PATH}, defaults if absent)")
    parser.add_argument("--source", help="picamera2, a device index, a video file, a URL or an image folder")
    parser.add_argument("--model", type=Path, help="ONNX model that follows the rover model contract")
    parser.add_argument("--bind", help="ZeroMQ endpoint to publish on (default ipc://detections, in rover's runtime directory; "
                        "or e.g. tcp://127.0.0.1:5555)")
    parser.add_argument("--lan-bind", help="second endpoint for other machines, e.g. tcp://0.0.0.0:5565 (needs the "
                        "[stream] CURVE keys or allow_insecure_lan); \"\" = off")
    parser.add_argument("--max-frames", type=int, help="stop after this many processed frames")
    parser.add_argument("--classes", help="comma-separated label names to report, e.g. person")
    parser.add_argument("--threads", type=int, dest="intra_op_threads", help="onnxruntime intra-op threads (0 = all cores)")
    parser.add_argument("--score-threshold", type=float, help="minimum score to report")
    parser.add_argument("--pace", action=argparse.BooleanOptionalAction, default=None,
                        help="play a file or folder at its own frame rate (--no-pace: one frame per request)")
    parser.add_argument("--loop", action=argparse.BooleanOptionalAction, default=None, help="loop a file or folder")
    parser.add_argument("--exit-at-end", action=argparse.BooleanOptionalAction, default=None,
                        help="exit 0 when a file or folder ends")
    parser.add_argument("--preview", action=argparse.BooleanOptionalAction, default=None,
                        help="publish JPEG preview frames for rover-view on view.frames (default: view.preview)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def config_path(args: argparse.Namespace, quiet: bool = False) -> Path | None:
    """``--config``, else the default file if it exists, else None (built-in defaults)."""
    if args.config is not None:
        return args.config
    path = default_config_path()
    if path is not None:
        return path
    if not quiet:
        log.info("no config file at %s: running on the built-in defaults", DEFAULT_CONFIG_PATH)
    return None


def load_preview(args: argparse.Namespace):
    """The ``[view]`` section (preview frames), file then ``--preview``."""
    from rover.view.config import ViewSection

    view = load_sections(config_path(args, quiet=True), {"view": ViewSection})["view"]
    return with_overrides(view, preview=args.preview)


def load_config(args: argparse.Namespace):
    """The three sections, file then flags; ConfigError on anything wrong."""
    from rover.detector.config import SECTIONS

    sections = load_sections(config_path(args), SECTIONS)
    classes = None if args.classes is None else [c.strip() for c in args.classes.split(",") if c.strip()]
    detector = with_overrides(
        sections["detector"], model=args.model, max_frames=args.max_frames, classes=classes,
        intra_op_threads=args.intra_op_threads, score_threshold=args.score_threshold,
    )
    camera = with_overrides(sections["camera"], source=args.source, pace=args.pace, loop=args.loop, exit_at_end=args.exit_at_end)
    stream = with_overrides(sections["stream"], bind=args.bind, lan_bind=args.lan_bind)
    return detector, camera, stream


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    from rover.detector.publisher import DetectionPublisher
    from rover.sources import check_source, make_source

    detector_cfg, camera_cfg, stream_cfg = load_config(args)
    view_cfg = load_preview(args)
    check_source(camera_cfg)  # milliseconds: a wrong path is reported before the model's seconds of loading
    source = make_source(camera_cfg)
    with contextlib.ExitStack() as stack:
        publisher = stack.enter_context(DetectionPublisher(
            stream_cfg.bind,
            lan_bind=stream_cfg.lan_bind,
            local_bind=stream_cfg.local_bind,
            server_secret_key=stream_cfg.server_secret_key,
            client_keys_dir=stream_cfg.client_keys_dir,
            allow_insecure_lan=stream_cfg.allow_insecure_lan,
            send_hwm=stream_cfg.send_hwm,
        ))
        preview = None
        if view_cfg.preview:
            from rover.detector.preview import PreviewPublisher

            preview = stack.enter_context(PreviewPublisher(
                view_cfg.frames, width=view_cfg.width, max_fps=view_cfg.max_fps, jpeg_quality=view_cfg.jpeg_quality))
            log.info("preview frames on %s: %d px wide, at most %g fps", preview.address, view_cfg.width, view_cfg.max_fps)
        detector = load_detector(detector_cfg)
        return _serve(detector, source, detector_cfg, camera_cfg, stream_cfg, stop, publisher, preview)


def load_detector(detector_cfg):
    """The model, checked against the contract: the slow step of the start (about 2 s), so the last one."""
    from rover.detector.model import Detector

    detector = Detector(
        detector_cfg.model,
        intra_op_threads=detector_cfg.intra_op_threads,
        score_threshold=detector_cfg.score_threshold,
        nms_iou=detector_cfg.nms_iou,
        top_k=detector_cfg.top_k,
        classes=detector_cfg.classes,
    )
    info = detector.info
    log.info("model %s: %s %s, input %dx%d, %d classes", detector_cfg.model, info.architecture, info.precision,
             info.input_width, info.input_height, info.num_classes)
    return detector


def _serve(detector, source, detector_cfg, camera_cfg, stream_cfg, stop: threading.Event, publisher, preview) -> int:
    """Publish detections of ``source`` on ``publisher`` until stopped (``preview``: a PreviewPublisher or None)."""
    from rover.detector.service import DetectorService
    from rover.sources.grabber import FrameGrabber

    with Notifier() as notifier:
        lan = publisher.lan_address and f", for other machines on {publisher.lan_address}" + (
            " (CURVE)" if publisher.lan_encrypted else "")
        lan += publisher.local_address and f", for other local programs on {publisher.local_address}"
        log.info("publishing on %s%s%s, reading %s", publisher.address, " (CURVE)" if publisher.bind_encrypted else "",
                 lan, source.name)
        grabber = FrameGrabber(source, retry_timeout_s=camera_cfg.retry_timeout_s, retry_backoff_s=camera_cfg.retry_backoff_s)
        service = DetectorService(
            detector, grabber, publisher, notifier=notifier,
            status_interval_s=stream_cfg.status_interval_s,
            summary_interval_s=detector_cfg.summary_interval_s,
            max_frames=detector_cfg.max_frames,
            exit_at_end=camera_cfg.exit_at_end,
            stop=stop,
            preview=None if preview is None else preview.offer,
        )
        grabber.start()
        try:
            return service.run()
        finally:
            # A read in flight returns within the capture timeout: wait that long for a clean close.
            grabber.stop(timeout=camera_cfg.capture_timeout_s + 1.0)
            log.info("stopped after %d frames (%d skipped), %d messages", service.processed, grabber.skipped, publisher.sent)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_until_signal(run, args, log)

if __name__ == "__main__":
    sys.exit(main())
