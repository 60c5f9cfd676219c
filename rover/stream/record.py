"""``rover record --out run.jsonl``: write the detection and drive streams to a file.

Subscribes to the detector's stream (topic ``detections``) and the drive's
status stream (topic ``drive``) and writes every message as one JSON line::

    {"t_recv_ns": 123, "t_recv": 1764100000.1, "topic": "detections", "message": {...}}

``t_recv_ns`` is ``time.monotonic_ns()`` of the recording host when the
message arrived and ``t_recv`` the wall clock (unix seconds); ``message`` is
the message's JSON exactly as published. Lines are flushed one by one, so a
recorder stopped by a signal or a power cut leaves a readable file.
``rover replay`` plays the detections back. Exit codes: 0 stopped (Ctrl-C,
SIGTERM, ``--duration`` or ``--count``), 78 a bad endpoint or an output that
cannot be written (endpoints are checked first, so a typo never truncates
an existing file).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

import zmq

from rover.core.endpoints import DETECTIONS, DRIVE_STATUS, resolve
from rover.core.errors import EXIT_CONFIG, EXIT_OK, ConfigError

TOPICS = ("detections", "drive")
_POLL_MS = 100


def to_line(raw: bytes, t_recv_ns: int, t_recv: float) -> str | None:
    """The record line for one wire message ``TOPIC {json}``; None for anything else."""
    topic, sep, payload = bytes(raw).partition(b" ")
    if not sep or topic.decode("ascii", "replace") not in TOPICS:
        return None
    try:
        message = json.loads(payload)
    except ValueError:
        return None
    return json.dumps({"t_recv_ns": t_recv_ns, "t_recv": t_recv, "topic": topic.decode(), "message": message},
                      separators=(",", ":"))


class Recorder:
    """Subscribes to the given endpoints and writes record lines to ``out``."""

    def __init__(self, endpoints: Sequence[str], context: zmq.Context | None = None,
                 clock_ns: Callable[[], int] = time.monotonic_ns, wall: Callable[[], float] = time.time) -> None:
        self._socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.RCVHWM, 100_000)
        for topic in TOPICS:
            self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode() + b" ")
        try:
            for endpoint in endpoints:
                self._socket.connect(endpoint)
        except zmq.ZMQError:
            self._socket.close(0)
            raise
        self._clock_ns, self._wall = clock_ns, wall
        self.count = 0
        self.stop_requested = False

    def run(self, out: TextIO, duration_s: float = 0.0, count: int = 0) -> int:
        """Record until stopped, ``duration_s`` passed (0: no limit) or ``count`` lines (0: no limit)."""
        start = self._clock_ns()
        while not self.stop_requested:
            if duration_s and (self._clock_ns() - start) / 1e9 >= duration_s:
                break
            if count and self.count >= count:
                break
            if not self._socket.poll(_POLL_MS):
                continue
            line = to_line(self._socket.recv(), self._clock_ns(), self._wall())
            if line is not None:
                out.write(line + "\n")
                out.flush()
                self.count += 1
        return self.count

    def close(self) -> None:
        self._socket.close(0)

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="the JSON-lines file to write (replaced if it exists)")
    parser.add_argument("--detections", default=DETECTIONS, metavar="ENDPOINT",
                        help=f"detection stream to subscribe to (default {DETECTIONS})")
    parser.add_argument("--drive", default=DRIVE_STATUS, metavar="ENDPOINT",
                        help=f"drive status stream to subscribe to (default {DRIVE_STATUS}); '' to skip it")
    parser.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--count", type=int, default=0, metavar="N", help="stop after N messages (default: no limit)")


def run(args: argparse.Namespace) -> int:
    # Endpoints first: a typo in one must not truncate an existing --out file.
    try:
        endpoints = [resolve(e) for e in (args.detections, args.drive) if e]  # ipc://NAME: in the runtime directory
    except ConfigError as exc:
        print(f"rover record: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        recorder = Recorder(endpoints)
    except zmq.ZMQError as exc:
        print(f"rover record: bad endpoint in {', '.join(endpoints)}: {exc}; use e.g. ipc://detections or tcp://127.0.0.1:5555", file=sys.stderr)
        return EXIT_CONFIG
    try:
        out = args.out.open("w", encoding="utf-8")
    except OSError as exc:
        recorder.close()
        print(f"rover record: cannot write {args.out}: {exc.strerror or exc}; choose a writable --out", file=sys.stderr)
        return EXIT_CONFIG

    def stop(_signum: int, _frame: Any) -> None:
        recorder.stop_requested = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with recorder, out:
        recorder.run(out, args.duration, args.count)
    print(f"rover record: {recorder.count} messages written to {args.out}", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rover record", description=__doc__.splitlines()[0].split(": ", 1)[1])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
