"""``rover replay run.jsonl``: publish a recorded detection stream again, with its timing.

Reads a file written by ``rover record`` and republishes its ``detections``
messages on a PUB socket it binds (default the detector's endpoint, so an
unchanged ``rover-drive`` connects to it), each at its original offset from
the first one (receive times of the recording, divided by ``--speed``).

Clock rewrite: a message's ``frame.t_capture_ns`` and ``t_publish_ns`` are
``time.monotonic_ns()`` values of the *recording* host, meaningless on any
other host or after a reboot, and the drive drops a detection whose capture
is older than ``max_age_s`` on its own monotonic clock. So replay rewrites
them to this host's monotonic clock, keeping each message's original age:
``t_capture_ns = now - (t_recv_ns - t_capture_ns)`` as recorded, likewise
``t_publish_ns``; ``frame.t_capture`` (unix seconds) is shifted the same way.
Everything else (seq, boxes, scores, status, timing_ms) is sent unchanged.
Every message is validated against schema v1 before it is sent.

The stream has no keys, so ``--publish`` must stay on this host (loopback or
``ipc://``) unless ``--allow-insecure-lan`` is given.

A recording whose last line was cut short (a power cut, or a disk that
filled under another program) is replayed up to that line, with one warning
naming it; a broken line anywhere else is refused.

Exit codes: 0 done, 1 the file cannot be read, 78 a malformed record (its
line number is named), a bad endpoint or a network endpoint without
``--allow-insecure-lan``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import zmq

from rover.core import endpoints, messages
from rover.core.endpoints import DETECTIONS, is_local_endpoint
from rover.core.errors import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, ConfigError, MessageError
from rover.stream.journal import Lines, read_lines


@dataclass(frozen=True)
class Recorded:
    """One recorded detection message and when it was received (recording host's clock)."""

    t_recv_ns: int
    message: dict[str, Any]


def load(path: Path, on_cut: Callable[[str], object] | None = None) -> list[Recorded]:
    """The detection messages of a record file, in file order.

    Raises OSError when the file cannot be read and MessageError naming the
    line when a line is not a record or its message breaks schema v1. A last
    line cut short (no newline) is left out, and ``on_cut`` is told once.
    """
    out = []
    lines = Lines(path)
    try:
        for number, line in read_lines(path, lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                topic, t_recv_ns, message = record["topic"], int(record["t_recv_ns"]), record["message"]
            except (ValueError, KeyError, TypeError) as exc:
                raise MessageError(f"{path}:{number} is not a record line ({exc})") from None
            if topic != messages.TOPIC:
                continue
            try:
                messages.from_dict(message)
            except MessageError as exc:
                raise MessageError(f"{path}:{number}: {exc}") from None
            out.append(Recorded(t_recv_ns, message))
    except UnicodeDecodeError as exc:
        raise MessageError(f"{path} is not a record file: not UTF-8 text ({exc.reason})") from None
    if lines.cut is not None and on_cut is not None:
        on_cut(f"{path}:{lines.cut} is cut short (no newline: the recording stopped mid-line, e.g. a power cut "
               f"or a full disk); replaying the {len(out)} detection messages before it")
    return out


def rewrite(recorded: Recorded, now_ns: int, now_unix: float) -> dict[str, Any]:
    """The message with its clocks moved to ``now`` (see the module docstring); the original is untouched."""
    message = dict(recorded.message)
    message["t_publish_ns"] = now_ns - (recorded.t_recv_ns - message["t_publish_ns"])
    if message["frame"] is not None:
        frame = dict(message["frame"])
        age_ns = recorded.t_recv_ns - frame["t_capture_ns"]
        frame["t_capture_ns"] = now_ns - age_ns
        frame["t_capture"] = now_unix - age_ns / 1e9
        message["frame"] = frame
    return message


def replay(records: Sequence[Recorded], socket: zmq.Socket, speed: float = 1.0,
           clock_ns: Callable[[], int] = time.monotonic_ns, wall: Callable[[], float] = time.time,
           sleep: Callable[[float], None] = time.sleep) -> int:
    """Send ``records`` on ``socket`` at their recorded offsets; returns the number sent."""
    if not records:
        return 0
    first, start = records[0].t_recv_ns, clock_ns()
    for record in records:
        due = start + (record.t_recv_ns - first) / speed
        wait = (due - clock_ns()) / 1e9
        if wait > 0:
            sleep(wait)
        now = clock_ns()
        message = messages.from_dict(rewrite(record, now, wall()))
        socket.send(messages.encode(message))
    return len(records)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="a JSON-lines file written by `rover record`")
    parser.add_argument("--publish", default=DETECTIONS, metavar="ENDPOINT",
                        help=f"endpoint to bind for the detection stream (default {DETECTIONS}, the detector's)")
    parser.add_argument("--speed", type=float, default=1.0, help="play faster (2) or slower (0.5) than recorded (default 1)")
    parser.add_argument("--wait", type=float, default=1.0, metavar="S",
                        help="seconds to wait after binding so subscribers connect before the first message (default 1)")
    parser.add_argument("--allow-insecure-lan", action="store_true",
                        help="allow a --publish endpoint reachable from the network, WITHOUT keys (anyone on the LAN can listen)")


def run(args: argparse.Namespace) -> int:
    if not 0.01 <= args.speed <= 100:
        print(f"rover replay: --speed {args.speed} is out of range: use 0.01..100", file=sys.stderr)
        return EXIT_CONFIG
    try:
        local = is_local_endpoint(args.publish)
    except ConfigError as exc:
        print(f"rover replay: --publish: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if not local and not args.allow_insecure_lan:
        print(f"rover replay: --publish {args.publish} is reachable from the network and replay has no keys: "
              "publish on tcp://127.0.0.1:PORT or ipc://, or pass --allow-insecure-lan", file=sys.stderr)
        return EXIT_CONFIG
    try:
        records = load(args.file, on_cut=lambda warning: print(f"rover replay: WARNING {warning}", file=sys.stderr))
    except OSError as exc:
        print(f"rover replay: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILURE
    except MessageError as exc:
        print(f"rover replay: {exc}; is this a file written by `rover record`?", file=sys.stderr)
        return EXIT_CONFIG
    socket = zmq.Context.instance().socket(zmq.PUB)
    socket.setsockopt(zmq.LINGER, 1000)
    try:
        endpoints.bind(socket, args.publish)  # ipc://detections: in rover's runtime directory
    except ConfigError as exc:
        socket.close(0)
        print(f"rover replay: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except zmq.ZMQError as exc:
        socket.close(0)
        print(f"rover replay: cannot bind {args.publish}: {exc}; pick a free endpoint with --publish", file=sys.stderr)
        return EXIT_CONFIG
    if not local:
        print(f"rover replay: WARNING --publish {args.publish} is NOT encrypted: anyone on the network can read it "
              "(--allow-insecure-lan)", file=sys.stderr)
    try:
        time.sleep(max(0.0, args.wait))
        sent = replay(records, socket, args.speed)
    except KeyboardInterrupt:
        sent = -1
    finally:
        socket.close()
    if sent >= 0:
        print(f"rover replay: {sent} detection messages published on {args.publish}", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rover replay", description=__doc__.splitlines()[0].split(": ", 1)[1])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
