"""``rover-view`` / ``python -m rover.view``: watch what the rover sees, in a browser.

Reads ``[view]`` from the config file (``--config``, default
/etc/rover/rover.toml), applies flags on top, subscribes to the detector's
detections and preview frames and the drive's status, and serves the page on
``http://view.host:view.port/`` (127.0.0.1:8080 by default: this machine
only) until SIGTERM or SIGINT. Exit codes: 0 stopped, 78 a bad config or a
port that cannot be bound.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Sequence

from rover.core.config import DEFAULT_CONFIG_PATH, default_config_path, load_sections, with_overrides
from rover.core.service import run_until_signal, setup_logging

log = logging.getLogger("rover.view")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rover-view",
        description="A web page with the rover's camera, its detections and the drive's state, live.",
    )
    parser.add_argument("--config", type=Path, help=f"TOML config file (default {DEFAULT_CONFIG_PATH}, defaults if absent)")
    parser.add_argument("--host", help="address to listen on: 127.0.0.1 (this machine, default) or 0.0.0.0 (the LAN)")
    parser.add_argument("--port", type=int, help="TCP port to listen on (default 8080; 0 = any free port)")
    parser.add_argument("--detections", help="ZeroMQ endpoint of the detection stream")
    parser.add_argument("--frames", help="ZeroMQ endpoint of the detector's preview frames")
    parser.add_argument("--drive", help="ZeroMQ endpoint of the drive status stream ('' = none)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (every HTTP request)")
    return parser


def load_config(args: argparse.Namespace):
    from rover.view.config import SECTIONS

    path = args.config
    if path is None:
        path = default_config_path()
    view = load_sections(path, SECTIONS)["view"]
    return with_overrides(view, host=args.host, port=args.port, detections=args.detections, frames=args.frames,
                          drive=args.drive)


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    from rover.core.sdnotify import Notifier
    from rover.view.hub import Latest
    from rover.view.server import ViewServer
    from rover.view.state import LiveState
    from rover.view.streams import StreamReader

    cfg = load_config(args)
    state = LiveState(cfg.offline_after_s, drive_enabled=bool(cfg.drive))
    frames = Latest()
    with Notifier() as notifier:
        server = ViewServer(cfg.host, cfg.port, state, frames, max_clients=cfg.max_clients,
                            max_connections=cfg.max_connections)
        reader = StreamReader(state, frames, detections=cfg.detections, frames_endpoint=cfg.frames, drive=cfg.drive,
                              on_tick=notifier.watchdog if notifier.watchdog_interval else None)
        serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.25}, name="view-http",
                                   daemon=True)
        try:
            reader.start()
            serving.start()
            if server.server_address[0] not in ("127.0.0.1", "::1"):
                log.warning("serving %s to the network: anyone who can reach this port sees the camera", server.url)
            log.info("serving %s (detections %s, frames %s, drive %s)", server.url, cfg.detections, cfg.frames,
                     cfg.drive or "off")
            notifier.ready(f"serving {server.url}")
            stop.wait()
            notifier.stopping()
        finally:
            server.stop()
            reader.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_until_signal(run, args, log)

if __name__ == "__main__":
    sys.exit(main())
