"""The simulated detector's publishing process: frames in, detection messages out.

Run by the simulator as its own process (``python -m rover.sim.publisher``),
so a scenario can kill it and the drive really sees its detector die. It
binds the detection endpoint the drive connects to, exactly as
``rover-detector`` does, pulls finished frames from the world, validates each
against schema v1, stamps the publish time and publishes it. It exits on
SIGTERM/SIGINT or when its parent (the world) is gone.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import time

import zmq

from rover.core import messages
from rover.core.errors import EXIT_OK, MessageError

_POLL_MS = 200


def serve(frames_endpoint: str, publish_endpoint: str, parent: int | None = None) -> int:
    """Forward frames to the PUB socket until stopped; returns the number published."""
    context = zmq.Context.instance()
    pull = context.socket(zmq.PULL)
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pull.setsockopt(zmq.LINGER, 0)
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pub.bind(publish_endpoint)
    pull.connect(frames_endpoint)
    count = 0
    try:
        while not stopping:
            if parent is not None and os.getppid() != parent:
                break
            if not pull.poll(_POLL_MS):
                continue
            raw = pull.recv()
            try:
                message = messages.decode(raw)
            except MessageError as exc:
                print(f"rover.sim.publisher: dropped a frame the world sent: {exc}", file=sys.stderr)
                continue
            pub.send(messages.encode(dataclasses.replace(message, t_publish_ns=time.monotonic_ns())))
            count += 1
    finally:
        pull.close()
        pub.close()
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rover.sim.publisher", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", required=True, help="ZeroMQ endpoint of the world's frame PUSH socket")
    parser.add_argument("--publish", required=True, help="ZeroMQ endpoint to bind for the detection stream")
    parser.add_argument("--parent", type=int, default=None, help="exit when this process id is no longer the parent")
    args = parser.parse_args(argv)
    serve(args.frames, args.publish, args.parent)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
