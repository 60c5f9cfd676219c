"""``rover listen`` / ``python -m rover.stream.listen``: print the detection stream.

One line per message (message seq, frame seq, status, fps, capture-to-publish
latency, detections), or the raw JSON with ``--json``. With ``--server-key``
and ``--client-key`` it connects with CURVE, as a LAN subscriber must.
Exit codes: 0 after ``--count`` messages or Ctrl-C, 1 if ``--timeout``
passes without a message, 78 for unreadable key files or a bad ``--connect``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence, TextIO

import zmq
import zmq.auth

from rover.core.endpoints import DETECTIONS, resolve
from rover.core.errors import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, ConfigError, MessageError
from rover.core.messages import TOPIC_BYTES, DetectionMessage, decode, split_topic

log = logging.getLogger("rover.stream.listen")


def format_line(message: DetectionMessage) -> str:
    """A human line for one message, e.g. ``#12 frame 40 ok 9.8 fps 103.1 ms  person 0.93 [...]``."""
    head = f"#{message.seq}"
    if message.frame is not None:
        head += f" frame {message.frame.seq}"
    head += f" {message.status} {message.fps:.1f} fps"
    if message.timing_ms is not None:
        head += f" {message.timing_ms.capture_to_publish:.1f} ms"
    if not message.detections:
        return head + ("  -" if message.status == "ok" else "")
    dets = ", ".join(
        f"{d.label} {d.score:.2f} [{d.box[0]:.2f} {d.box[1]:.2f} {d.box[2]:.2f} {d.box[3]:.2f}]" for d in message.detections
    )
    return f"{head}  {dets}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", default=DETECTIONS, help=f"endpoint of the detector (default {DETECTIONS})")
    parser.add_argument("--json", action="store_true", help="print each message's raw JSON")
    parser.add_argument("--count", type=int, default=0, help="exit after this many messages (0: run until Ctrl-C)")
    parser.add_argument("--timeout", type=float, default=0.0, help="exit 1 if no message arrives for this many seconds (0: wait forever)")
    parser.add_argument("--server-key", type=Path, help="the detector's public key file (*.key) for CURVE")
    parser.add_argument("--client-key", type=Path, help="this subscriber's secret key file (*.key_secret) for CURVE")


def curve_client_keys(server_key: Path, client_key: Path) -> tuple[bytes, bytes, bytes]:
    """(client public, client secret, server public) from zmq.auth certificate files."""
    try:
        server_public, _ = zmq.auth.load_certificate(server_key)
        public, secret = zmq.auth.load_certificate(client_key)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read a CURVE key file ({exc}): pass --server-key SERVER.key --client-key CLIENT.key_secret") from None
    if not secret:
        raise ConfigError(f"--client-key {client_key} holds no secret key: pass the *.key_secret file")
    return public, secret, server_public


def listen(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    if (args.server_key is None) != (args.client_key is None):
        raise ConfigError("--server-key and --client-key go together (CURVE needs both)")
    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    socket.linger = 0
    try:
        if args.server_key is not None:
            socket.curve_publickey, socket.curve_secretkey, socket.curve_serverkey = curve_client_keys(args.server_key, args.client_key)
        socket.setsockopt(zmq.SUBSCRIBE, TOPIC_BYTES)
        try:
            socket.connect(resolve(args.connect))  # ipc://NAME: in rover's runtime directory
        except zmq.ZMQError as exc:
            raise ConfigError(f"--connect {args.connect!r} is not a ZeroMQ endpoint ({exc}): use tcp://HOST:PORT or ipc:///PATH") from None
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        received = 0
        while args.count <= 0 or received < args.count:
            if not poller.poll(args.timeout * 1000 if args.timeout > 0 else None):
                log.error("no message from %s within %.1f s: is rover-detector running and are the keys right?", args.connect, args.timeout)
                return EXIT_FAILURE
            raw = socket.recv()
            received += 1
            try:
                if args.json:
                    print(split_topic(raw)[1].decode(), file=out, flush=True)
                else:
                    print(format_line(decode(raw)), file=out, flush=True)
            except (MessageError, UnicodeDecodeError) as exc:
                log.warning("skipping a malformed message: %s", exc)
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        socket.close(linger=0)
        context.term()


def run(args: argparse.Namespace) -> int:
    try:
        return listen(args)
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rover listen", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
