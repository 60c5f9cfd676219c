"""``rover record --out run.jsonl``: write the detection and drive streams to a file.

Subscribes to the detector's stream (topic ``detections``) and the drive's
status stream (topic ``drive``) and writes every message as one JSON line::

    {"t_recv_ns": 123, "t_recv": 1764100000.1, "topic": "detections", "message": {...}}

``t_recv_ns`` is ``time.monotonic_ns()`` of the recording host when the
message arrived and ``t_recv`` the wall clock (unix seconds); ``message`` is
the message's JSON exactly as published. Each line is handed to the kernel
as it arrives and the file is ``fsync``-ed every ``--fsync`` seconds (1 by
default; :mod:`rover.stream.journal`), so a recorder that is killed loses
nothing and a power cut at most the last second. On a full disk (or any
write error) the file is cut back to its last whole line and the recorder
stops with one line naming the file and the cause.
``rover replay`` plays the detections back. Exit codes: 0 stopped (Ctrl-C,
SIGTERM, ``--duration`` or ``--count``), 74 the output could not be written
any more (disk full, I/O error: every line before is whole), 78 a bad
endpoint or an output that cannot be opened (endpoints are checked first,
so a typo never truncates an existing file).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import zmq

from rover.core.endpoints import DETECTIONS, DRIVE_STATUS, resolve
from rover.core.errors import EXIT_CONFIG, EXIT_OK, ConfigError, OutputError
from rover.stream.journal import FSYNC_S, LineFile

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

    def run(self, out: LineFile, duration_s: float = 0.0, count: int = 0) -> int:
        """Record until stopped, ``duration_s`` passed (0: no limit) or ``count`` lines (0: no limit).

        OutputError when ``out`` cannot take a line any more (its earlier lines stay whole).
        """
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
                out.write_line(line)
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
    parser.add_argument("--fsync", type=float, default=FSYNC_S, metavar="S",
                        help=f"fsync the file every S seconds: what a power cut can lose (default {FSYNC_S:g}; 0 = never, "
                             "leaving it to the kernel's writeback, about 30 s)")


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
        out = LineFile(args.out, fsync_s=max(0.0, args.fsync))
    except OSError as exc:
        recorder.close()
        print(f"rover record: cannot write {args.out}: {exc.strerror or exc}; choose a writable --out", file=sys.stderr)
        return EXIT_CONFIG

    def stop(_signum: int, _frame: Any) -> None:
        recorder.stop_requested = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        with recorder, out:
            recorder.run(out, args.duration, args.count)
    except OutputError as exc:
        print(f"rover record: cannot write {exc} after {recorder.count} messages; those are whole lines in "
              f"{args.out} (free some space or choose another --out)", file=sys.stderr)
        return exc.exit_code
    print(f"rover record: {recorder.count} messages written to {args.out}", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rover record", description=__doc__.splitlines()[0].split(": ", 1)[1])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
