"""The view's web server: one page, an MJPEG stream and Server-Sent Events.

Python's own :class:`http.server.ThreadingHTTPServer`, one thread per
connection; everything a browser needs is native to it:

- ``/``, ``/view.js``, ``/view.css``: the page (static files of this package);
- ``/stream.mjpg``: ``multipart/x-mixed-replace`` JPEG parts, which an
  ``<img>`` plays by itself (so do VLC, ffplay and home-automation cameras);
- ``/events``: ``text/event-stream`` for ``EventSource``: a ``frame`` event
  with the boxes of each preview frame, sent right after that frame's JPEG
  part, and a ``stats`` event (the panel) every :data:`STATS_INTERVAL_S`;
- ``/frame.jpg``: the newest frame alone; ``/state.json``: the panel once.

Streams wait on :class:`~rover.view.hub.Latest` with a timeout, so they notice
a stopping server within :data:`STATS_INTERVAL_S`; a client that went away
ends its thread on the next write.

Abuse, and what bounds it (one thread per connection, so every bound is a
bound on threads too):

- at most ``max_connections`` connections at once. When all are taken, a
  new connection takes the place of the one that has been sending its request
  head longest (for :data:`HEAD_GRACE_S` or more: a browser sends its request
  at once, a slow-loris client never finishes); without one, it gets a ``503``
  and is closed at once, without a thread;
- the whole request head must arrive within :data:`CLIENT_TIMEOUT_S` (not
  each byte: a slow-loris client sending a byte a second is dropped, with a
  ``408``; a connection that sent nothing is closed silently, as browsers
  open spare ones);
- each blocking write may wait :data:`CLIENT_TIMEOUT_S`;
- at most ``max_clients`` streams: when all are taken, a new viewer takes the
  slot of the stream whose write has been blocked longest (its client stopped
  reading), if blocked for :data:`STALL_S` or more (:mod:`rover.view.slots`);
  otherwise it gets ``503``. Stream sockets get a small send buffer
  (:data:`STREAM_SNDBUF`), so a client that stops reading blocks a write
  within seconds instead of after megabytes.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from rover.core.errors import ConfigError
from rover.view.hub import Latest
from rover.view.slots import Slot, StreamSlots
from rover.view.state import LiveState

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 0.25
#: Seconds a client may take to send its request, and each blocking write may
#: wait on it: an idle or stalled connection is then dropped, freeing its
#: thread and its stream slot.
CLIENT_TIMEOUT_S = 10.0
#: Seconds a stream's write must have been blocked before a new viewer may take its slot.
STALL_S = 2.0
#: Send buffer of a stream's socket (the kernel doubles it): small, so a stalled client blocks a write soon.
STREAM_SNDBUF = 32 * 1024
#: Seconds a connection may take to send its request head before a new connection may take its place when full.
HEAD_GRACE_S = 1.0
#: Longest request head read; a longer one is answered 431 (or 414 when its first line is too long).
MAX_HEAD = 128 * 1024
BOUNDARY = "roverframe"
STATIC = {
    "/": ("page.html", "text/html; charset=utf-8"),
    "/index.html": ("page.html", "text/html; charset=utf-8"),
    "/view.js": ("view.js", "text/javascript; charset=utf-8"),
    "/view.css": ("view.css", "text/css; charset=utf-8"),
}
#: Same-origin only: the page loads nothing from elsewhere and runs no inline script.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ViewServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    #: listen() backlog: a page opens several connections at once, and socketserver's 5 drops the rest of a burst
    #: (their clients retransmit seconds later); the connections beyond max_connections are refused after accept.
    request_queue_size = 64

    def __init__(self, host: str, port: int, state: LiveState, frames: Latest, *, max_clients: int = 8,
                 max_connections: int = 32, client_timeout_s: float = CLIENT_TIMEOUT_S, stall_s: float = STALL_S,
                 head_grace_s: float = HEAD_GRACE_S) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.client_timeout_s = client_timeout_s
        self.state = state
        self.frames = frames
        self.stopping = threading.Event()
        self.streams = StreamSlots(max_clients, stall_s)
        self.max_connections = max(max_connections, 1)
        self.head_grace_s = head_grace_s
        self._connections = 0
        self._connections_lock = threading.Lock()
        #: Connections refused because max_connections were open, and requests dropped unfinished (408).
        self.refused = 0
        self.timed_out = 0
        #: Connections still reading their request head, and since when (monotonic); see process_request.
        self._heads: dict[socket.socket, float] = {}
        self._accepted: dict[socket.socket, float] = {}  # accept times, in accept order (a busy host starts threads late)
        self.head_evictions = 0
        self.static = {path: (resources.files("rover.view").joinpath(name).read_bytes(), kind)
                       for path, (name, kind) in STATIC.items()}
        try:
            super().__init__((host, port), ViewHandler)
        except OSError as exc:
            raise ConfigError(
                f"view.host/view.port {host}:{port} cannot be bound ({exc.strerror or exc}): "
                "pick a free port with --port or view.port, or an address of this machine"
            ) from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def serve_forever(self, poll_interval: float = 0.25) -> None:
        self._serving = True
        super().serve_forever(poll_interval)

    @property
    def connections(self) -> int:
        """Connections open now (each has its thread)."""
        with self._connections_lock:
            return self._connections

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        """A thread for the connection, or, beyond ``max_connections``, a 503 and no thread."""
        victim = None
        with self._connections_lock:
            full = self._connections >= self.max_connections
            if full:  # a connection still sending its request head after HEAD_GRACE_S gives way to this one
                now = time.monotonic()
                waiting = [(t, c) for c, t in self._heads.items() if now - t >= self.head_grace_s]
                if waiting:
                    victim = min(waiting, key=lambda pair: pair[0])[1]
                    del self._heads[victim]
                    full = False
            if not full:
                self._connections += 1
                self._accepted[request] = time.monotonic()
        if victim is not None:
            self.head_evictions += 1
            try:
                victim.shutdown(socket.SHUT_RDWR)  # its handler's recv returns at once, and its thread ends
            except OSError:
                pass
        if full:
            self.refused += 1
            try:
                request.setblocking(False)
                request.send(_plain(HTTPStatus.SERVICE_UNAVAILABLE, b"too many connections (view.max_connections)\n"))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            with self._connections_lock:
                self._accepted.pop(request, None)
            self._connection_ended()
            raise

    def process_request_thread(self, request: socket.socket, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._accepted.pop(request, None)
            self._connection_ended()

    def _connection_ended(self) -> None:
        with self._connections_lock:
            self._connections -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out or went away mid-reply is dropped quietly; anything else is a traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            log.debug("client %s dropped: %s", client_address, sys.exc_info()[1])
            return
        super().handle_error(request, client_address)

    def stop(self) -> None:
        """End the streams and the serving loop (call from another thread than serve_forever)."""
        self.stopping.set()
        if getattr(self, "_serving", False):
            self.shutdown()
        self.server_close()


class ViewHandler(BaseHTTPRequestHandler):
    server: ViewServer
    server_version = "rover-view"

    @property
    def timeout(self) -> float:  # type: ignore[override]  # socketserver sets it on the connection in setup()
        return self.server.client_timeout_s

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    def handle(self) -> None:
        """One request per connection (HTTP/1.0), its head read within the deadline first."""
        head = self._read_head()
        if head is None:
            return
        socket_rfile, self.rfile = self.rfile, io.BytesIO(head)
        socket_rfile.close()
        self.handle_one_request()

    def _read_head(self) -> bytes | None:
        """The request head (request line and headers), all of it within ``client_timeout_s``; None if not.

        A client that sent part of a request in that time gets a 408, one that
        sent nothing is closed silently. A head beyond :data:`MAX_HEAD` is
        handed on cut there, so the parser answers 414 for a long first line;
        any other is answered 431 here.
        """
        with self.server._connections_lock:  # a connection's first head counts from its accept: the oldest is the first accepted
            self.server._heads[self.connection] = self.server._accepted.pop(self.connection, None) or time.monotonic()
        try:
            return self._read_head_until_deadline()
        finally:
            with self.server._connections_lock:
                self.server._heads.pop(self.connection, None)

    def _read_head_until_deadline(self) -> bytes | None:
        deadline = time.monotonic() + self.server.client_timeout_s
        head = bytearray()
        while b"\r\n\r\n" not in head and b"\n\n" not in head and not head.startswith((b"\r\n", b"\n")):
            if len(head) >= MAX_HEAD:
                if b"\n" in head[:65537]:
                    self._send_raw(_plain(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, b"request head too large\n"))
                    return None
                break
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                self.connection.settimeout(remaining)
                chunk = self.connection.recv(MAX_HEAD - len(head))
            except TimeoutError:
                self.server.timed_out += 1
                if head:
                    self._send_raw(_plain(HTTPStatus.REQUEST_TIMEOUT, b"request not complete in time\n"))
                return None
            except OSError:
                return None  # shut down to make room for a newer connection (process_request), or reset
            if not chunk:
                break  # the client closed its side: let the parser judge what came
            head += chunk
        self.connection.settimeout(self.timeout)
        return bytes(head)

    def _send_raw(self, data: bytes) -> None:
        try:
            self.connection.settimeout(1.0)
            self.connection.sendall(data)
        except OSError:
            pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path in self.server.static:
            body, kind = self.server.static[path]
            self._reply(HTTPStatus.OK, kind, body)
        elif path == "/state.json":
            self._reply(HTTPStatus.OK, "application/json", json.dumps(self.server.state.snapshot()).encode())
        elif path == "/frame.jpg":
            _, value = self.server.frames.get()
            if value is None:
                self._reply(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", b"no preview frame yet: is view.preview on in the detector?\n")
            else:
                self._reply(HTTPStatus.OK, "image/jpeg", value[0])
        elif path in ("/stream.mjpg", "/events"):
            slot = self.server.streams.open(on_evict=self._evict)
            if slot is None:
                self._reply(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", b"too many open streams (view.max_clients)\n")
                return
            self._slot = slot
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
                (self._mjpeg if path == "/stream.mjpg" else self._events)()
            except (OSError, ValueError):
                pass  # the client went away, stalled past the timeout, or was evicted (its socket shut down)
            finally:
                slot.close()
        elif path == "/favicon.ico":
            self._reply(HTTPStatus.NO_CONTENT, "image/x-icon", b"")
        else:
            self._reply(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    _slot: Slot | None = None

    def _evict(self) -> None:
        """Called from another viewer's thread: end this stalled stream's blocked write at once."""
        log.info("stream to %s evicted: it stopped reading and a new viewer came", self.address_string())
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _write(self, data: bytes) -> None:
        """A write to a stream, marked so a stalled one can be told from one that reads."""
        assert self._slot is not None
        with self._slot.writing():
            self.wfile.write(data)
            self.wfile.flush()

    def _reply(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self._security_headers()
        self.end_headers()
        self.wfile.write(body)

    def _security_headers(self) -> None:
        for key, value in SECURITY_HEADERS.items():
            self.send_header(key, value)

    def _start_stream(self, kind: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", kind)
        self._security_headers()
        self.end_headers()
        self.close_connection = True

    def _mjpeg(self) -> None:
        self._start_stream(f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        # Each part is followed at once by the next boundary: browsers show a
        # part when they see its end, not one frame late.
        self._write(f"--{BOUNDARY}\r\n".encode())
        seen, value = self.server.frames.get()
        if value is None:
            seen = 0
        else:
            seen -= 1  # send the newest frame at once
        while not self.server.stopping.is_set():
            version, value = self.server.frames.wait_newer(seen, STATS_INTERVAL_S)
            if version == seen or value is None:
                continue
            seen = version
            jpeg = value[0]
            head = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
            self._write(head + jpeg + f"\r\n--{BOUNDARY}\r\n".encode())

    def _events(self) -> None:
        self._start_stream("text/event-stream")
        self._write(b"retry: 1000\n\n")  # EventSource reconnects after 1 s if the view restarts
        seen, _ = self.server.frames.get()
        next_stats = 0.0
        while not self.server.stopping.is_set():
            now = time.monotonic()
            if now >= next_stats:
                self._event("stats", self.server.state.snapshot())
                next_stats = now + STATS_INTERVAL_S
            version, value = self.server.frames.wait_newer(seen, max(0.0, next_stats - time.monotonic()))
            if version != seen and value is not None:
                seen = version
                self._event("frame", value[1])

    def _event(self, name: str, data: dict[str, Any]) -> None:
        self._write(f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode())


def _plain(status: HTTPStatus, body: bytes) -> bytes:
    """A whole plain-text HTTP/1.0 response that closes the connection (for refusals without a handler)."""
    return (f"HTTP/1.0 {status.value} {status.phrase}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body
