"""``python -m rover.view.abuse``: how rover-view holds up under stalled and slow-loris clients.

Starts ``python -m rover.view`` as its own process (``--pythonpath`` picks the
tree it runs, so two versions can be compared on one machine), feeds it
320 x 240 preview frames at 5 fps on ``ipc://`` (noise: the largest JPEGs
at quality 70), then measures:

1. **stalled streams**: ``--stalled`` clients ask for ``/stream.mjpg`` and
   never read again; after ``--settle`` seconds a new viewer asks for the
   stream, retrying every 0.1 s on ``503``: the time until its first JPEG,
   and how many 503s it got;
2. **slow-loris**: ``--loris`` clients each send one byte a second of a
   request that never ends; for ``--loris-s`` seconds the view's threads are
   sampled (``/proc/PID/status``), and a normal ``GET /`` is timed in the
   middle; at the end, how many of those connections the view has closed.

Prints one JSON object. Nothing here is a pass/fail test: the tests are
``tests/test_view_abuse.py``; this puts numbers on the same situations.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import zmq

from rover.detector.preview import TOPIC, FrameHeader, encode_header


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def threads_of(pid: int) -> int:
    """The number of threads of process ``pid`` (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise ValueError(f"no Threads line for process {pid}")


class FrameFeed:
    """A PUB socket sending the same noisy JPEG as preview frames at ``fps``."""

    def __init__(self, endpoint: str, fps: float = 5.0) -> None:
        rng = np.random.default_rng(0)
        ok, jpeg = cv2.imencode(".jpg", rng.integers(0, 255, (240, 320, 3), np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 70])
        assert ok
        self.jpeg = jpeg.tobytes()
        self._ctx = zmq.Context()
        self._pub = self._ctx.socket(zmq.PUB)
        self._pub.linger = 0
        self._pub.bind(endpoint)
        self._period = 1.0 / fps
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seq = 0
        while not self._stop.wait(self._period):
            header = FrameHeader(seq=seq, frame_seq=seq, t_capture_ns=time.monotonic_ns(), width=320, height=240)
            self._pub.send_multipart([TOPIC, encode_header(header), self.jpeg])
            seq += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._pub.close()
        self._ctx.term()


def _stalled_client(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: rover\r\n\r\n")
    deadline = time.monotonic() + 5
    while not _answer(sock) and time.monotonic() < deadline:  # answered (200 or 503), never read
        time.sleep(0.005)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """The first bytes the view sent this client, without reading them (b"" if none yet)."""
    try:
        return sock.recv(12, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""


def time_to_first_frame(port: int, give_up_s: float = 60.0) -> tuple[float | None, int]:
    """Seconds until a new viewer gets its first JPEG part (None: never), and the 503s it got first."""
    start, refused = time.monotonic(), 0
    while time.monotonic() - start < give_up_s:
        with socket.create_connection(("127.0.0.1", port), timeout=give_up_s) as sock:
            sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: rover\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or (data.startswith(b"HTTP/1.0 200") and b"image/jpeg" not in data):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"HTTP/1.0 200") and b"image/jpeg" in data:
                return time.monotonic() - start, refused
        refused += 1
        time.sleep(0.1)
    return None, refused


def _get_page(port: int, timeout: float) -> tuple[str, float]:
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: rover\r\n\r\n")
            status = sock.recv(64).split(b"\r\n", 1)[0].decode(errors="replace")
    except OSError as exc:
        status = f"error: {exc}"
    return status, time.monotonic() - start


def slow_loris(port: int, pid: int, clients: int, duration_s: float) -> dict[str, Any]:
    """``clients`` connections sending a byte a second; the view's threads meanwhile, and how many it closed."""
    socks = []
    for _ in range(clients):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    opened = len(socks)
    request = b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 100_000
    closed: set[int] = set()
    peak, start, page = threads_of(pid), time.monotonic(), None
    sent = 0
    while time.monotonic() - start < duration_s:
        for i, sock in enumerate(socks):
            if i in closed:
                continue
            try:
                sock.sendall(request[sent:sent + 1])
            except OSError:
                closed.add(i)
        sent += 1
        peak = max(peak, threads_of(pid))
        if page is None and time.monotonic() - start >= duration_s / 2:
            page = _get_page(port, timeout=duration_s)
        time.sleep(1.0)
    for i, sock in enumerate(socks):  # closed by the view: EOF, or an answer (408) before it
        if i in closed:
            continue
        sock.setblocking(False)
        try:
            sock.recv(65536)
        except BlockingIOError:
            continue  # still open, still waiting for the rest of its request
        except OSError:
            pass
        closed.add(i)
    for sock in socks:
        sock.close()
    return {"clients": clients, "connected": opened, "threads_peak": peak, "closed_by_view": len(closed),
            "seconds": duration_s, "page_during": {"status": page[0], "seconds": round(page[1], 3)} if page else None}


def measure(pythonpath: str, stalled: int, settle_s: float, loris: int, loris_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rover-view-abuse-") as tmp:
        frames = f"ipc://{tmp}/frames"
        feed = FrameFeed(frames)
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": pythonpath}
        view = subprocess.Popen([sys.executable, "-m", "rover.view", "--config", os.devnull, "--port", str(port),
                                 "--frames", frames, "--detections", f"ipc://{tmp}/det", "--drive", ""],
                                env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while _get_page(port, 1.0)[0].split(" ")[1:2] != ["200"]:
                if time.monotonic() > deadline or view.poll() is not None:
                    raise RuntimeError("rover-view did not start")
                time.sleep(0.1)
            result: dict[str, Any] = {"pythonpath": pythonpath, "jpeg_bytes": len(feed.jpeg),
                                      "threads_idle": threads_of(view.pid)}
            clients = [_stalled_client(port) for _ in range(stalled)]
            time.sleep(settle_s)
            threads_stalled = threads_of(view.pid)
            served = sum(_answer(sock).startswith(b"HTTP/1.0 200") for sock in clients)
            seconds, refused = time_to_first_frame(port)
            result["stalled"] = {"clients": stalled, "streaming": served, "settle_s": settle_s, "threads": threads_stalled,
                                 "new_viewer_first_frame_s": None if seconds is None else round(seconds, 3),
                                 "new_viewer_503s": refused}
            for sock in clients:
                sock.close()
            time.sleep(1.0)
            result["slow_loris"] = slow_loris(port, view.pid, loris, loris_s)
            return result
        finally:
            view.terminate()
            try:
                view.wait(10)
            except subprocess.TimeoutExpired:
                view.kill()
            feed.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rover.view.abuse", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--pythonpath", default=os.environ.get("PYTHONPATH", ""),
                        help="PYTHONPATH of the rover-view process (default: this one's)")
    parser.add_argument("--stalled", type=int, default=50, help="clients that open the stream and stop reading (50)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds for their buffers to fill (5)")
    parser.add_argument("--loris", type=int, default=100, help="slow-loris clients (100)")
    parser.add_argument("--loris-s", type=float, default=15.0, help="seconds of slow-loris (15)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.pythonpath, args.stalled, args.settle, args.loris, args.loris_s), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
