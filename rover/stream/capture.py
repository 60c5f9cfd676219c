"""``rover capture --out calib/ --frames 200 --every 0.5``: camera frames for the export's calibration.

int8 quantization calibrates its activation ranges on sample frames; it
calibrates best on frames from the camera the model will see. This saves
``--frames`` images, one at most every ``--every`` seconds of capture time,
as ``frame_00000.png`` ... in ``--out``: a folder that ``python -m export
--calib calib/`` reads.

Two ways to get them:

- from the camera of ``[camera]`` in the config (default; ``--source``
  overrides it), at full camera resolution and lossless (PNG). The CSI
  camera has one user at a time: stop the detector first
  (``sudo systemctl stop rover-detector``), and run it as a user in the
  ``video`` group (``sudo -u rover``);
- ``--preview tcp://127.0.0.1:5557``: from the running detector's preview
  stream (``[view] preview = true``), its JPEGs as they are (``.jpg``,
  downscaled to ``view.preview_width``), with the detector left running.

Exit codes: 0 done (all frames, or stopped by Ctrl-C/SIGTERM with what was
saved kept), 1 the camera failed or ``--timeout`` passed with no frame,
78 a configuration error (bad config, a camera that cannot be opened,
an output folder that already holds frames or cannot be written).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rover.core.errors import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, ConfigError, MessageError, RoverError

log = logging.getLogger(__name__)
_POLL_MS = 200


@dataclass
class Sampler:
    """Keeps one frame every ``every_s`` seconds of capture time, ``frames`` in all (pure logic)."""

    frames: int
    every_s: float
    kept: int = 0
    _last_ns: int | None = None

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ConfigError(f"--frames must be at least 1, not {self.frames}")
        if self.every_s < 0:
            raise ConfigError(f"--every must be 0 or more seconds, not {self.every_s}")

    @property
    def done(self) -> bool:
        return self.kept >= self.frames

    def take(self, t_capture_ns: int) -> bool:
        """True when the frame captured at ``t_capture_ns`` is to be saved (and counts it)."""
        if self.done:
            return False
        if self._last_ns is not None and t_capture_ns - self._last_ns < self.every_s * 1e9:
            return False
        self._last_ns = t_capture_ns
        self.kept += 1
        return True


def prepare_out(out: Path) -> Path:
    """Create ``out``; refuse a folder that already holds frames (never overwrite a calibration set)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create --out {out} ({exc.strerror or exc}): choose a writable folder") from None
    if any(out.glob("frame_*")):
        raise ConfigError(f"--out {out} already holds frame_* files: choose an empty folder")
    probe = out / ".rover-capture-probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--out {out} is not writable ({exc.strerror or exc}): choose a writable folder") from None
    return out


class _Stop:
    def __init__(self) -> None:
        self.requested = False

    def __call__(self, *_: object) -> None:
        self.requested = True


def capture_from_source(source: Any, out: Path, sampler: Sampler, stop: _Stop, *, timeout_s: float,
                        clock_ns: Callable[[], int] = time.monotonic_ns) -> int:
    """Read ``source`` (a :class:`rover.sources.FrameSource`) until the sampler is done; write PNGs."""
    import cv2
    import numpy as np

    from rover.sources.base import SourceEnded

    source.open()
    try:
        last_frame_ns = clock_ns()
        while not sampler.done and not stop.requested:
            try:
                image = source.read()
            except SourceEnded:
                log.info("%s ended after %d saved frames", source.name, sampler.kept)
                break
            now = clock_ns()
            if (now - last_frame_ns) / 1e9 > timeout_s:
                log.error("%s gave no frame for %.1f s", source.name, timeout_s)
                return EXIT_FAILURE
            last_frame_ns = now
            if not sampler.take(now):
                continue
            bgr = image if source.order == "bgr" else np.ascontiguousarray(image[:, :, ::-1])
            path = out / f"frame_{sampler.kept - 1:05d}.png"
            if not cv2.imwrite(str(path), bgr):
                raise ConfigError(f"cannot write {path}: is the disk full?")
    finally:
        source.close()
    return EXIT_OK


def capture_from_preview(endpoint: str, out: Path, sampler: Sampler, stop: _Stop, *, timeout_s: float,
                         context: Any = None, clock_ns: Callable[[], int] = time.monotonic_ns) -> int:
    """Subscribe to the detector's preview stream and save its JPEGs as they are."""
    import zmq

    from rover.core.endpoints import is_local_endpoint
    from rover.detector.preview import TOPIC, decode_frame

    if not is_local_endpoint(endpoint):
        raise ConfigError(f"--preview {endpoint} is not loopback or ipc://: the preview stream is local to the car")
    socket = (context or zmq.Context.instance()).socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.SUBSCRIBE, TOPIC)
    try:
        socket.connect(endpoint)
    except zmq.ZMQError as exc:
        socket.close(0)
        raise ConfigError(f"--preview {endpoint} is not a valid ZeroMQ endpoint ({exc})") from None
    try:
        last_frame_ns = clock_ns()
        while not sampler.done and not stop.requested:
            if not socket.poll(_POLL_MS):
                if (clock_ns() - last_frame_ns) / 1e9 > timeout_s:
                    log.error("no preview frame on %s for %.1f s: is the detector running with [view] preview = true?",
                              endpoint, timeout_s)
                    return EXIT_FAILURE
                continue
            try:
                header, jpeg = decode_frame(socket.recv_multipart())
            except MessageError as exc:
                log.warning("skipped a malformed preview message: %s", exc)
                continue
            last_frame_ns = clock_ns()
            if sampler.take(header.t_capture_ns):
                (out / f"frame_{sampler.kept - 1:05d}.jpg").write_bytes(jpeg)
    finally:
        socket.close(0)
    return EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder for frame_NNNNN.png (created; must hold no frames yet)")
    parser.add_argument("--frames", type=int, default=200, help="frames to save (default: 200)")
    parser.add_argument("--every", type=float, default=0.5, help="seconds of capture time between saved frames (default: 0.5)")
    parser.add_argument("--config", type=Path, help="config file for [camera] (default: /etc/rover/rover.toml if present)")
    parser.add_argument("--source", help="override camera.source: picamera2, a device index, a video file, a URL")
    parser.add_argument("--preview", metavar="ENDPOINT",
                        help="save the running detector's preview JPEGs instead (e.g. tcp://127.0.0.1:5557)")
    parser.add_argument("--timeout", type=float, default=10.0, help="give up after this many seconds without a frame (default: 10)")


def run(args: argparse.Namespace) -> int:
    stop = _Stop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    try:
        sampler = Sampler(args.frames, args.every)
        out = prepare_out(args.out)
        if args.preview:
            code = capture_from_preview(args.preview, out, sampler, stop, timeout_s=args.timeout)
        else:
            from rover.core.config import default_config_path, load_sections, with_overrides
            from rover.detector.config import CameraSection
            from rover.sources import make_source

            config_path = args.config if args.config is not None else default_config_path()
            camera = load_sections(config_path, {"camera": CameraSection})["camera"]
            camera = with_overrides(camera, source=args.source)
            code = capture_from_source(make_source(camera), out, sampler, stop, timeout_s=args.timeout)
    except ConfigError as exc:
        print(f"rover capture: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except RoverError as exc:  # the camera failed (CameraError): retrying may help, so not 78
        print(f"rover capture: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"rover capture: saved {sampler.kept} frames in {out} (python -m export --calib {out} ...)")
    return code
