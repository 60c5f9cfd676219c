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
ends its thread on the next write, and one that sends no request or stops
reading is dropped after :data:`CLIENT_TIMEOUT_S`. At most ``max_clients``
streams are open at once; more get ``503``.
"""

from __future__ import annotations

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
from rover.view.state import LiveState

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 0.25
#: Seconds a client may take to send its request, and each blocking write may
#: wait on it: an idle or stalled connection is then dropped, freeing its
#: thread and its stream slot.
CLIENT_TIMEOUT_S = 10.0
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

    def __init__(self, host: str, port: int, state: LiveState, frames: Latest, *, max_clients: int = 8,
                 client_timeout_s: float = CLIENT_TIMEOUT_S) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.client_timeout_s = client_timeout_s
        self.state = state
        self.frames = frames
        self.stopping = threading.Event()
        self.streams = threading.BoundedSemaphore(max_clients)
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
            if not self.server.streams.acquire(blocking=False):
                self._reply(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", b"too many open streams (view.max_clients)\n")
                return
            try:
                (self._mjpeg if path == "/stream.mjpg" else self._events)()
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass  # the client went away
            finally:
                self.server.streams.release()
        elif path == "/favicon.ico":
            self._reply(HTTPStatus.NO_CONTENT, "image/x-icon", b"")
        else:
            self._reply(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

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
        self.wfile.write(f"--{BOUNDARY}\r\n".encode())
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
            self.wfile.write(head + jpeg + f"\r\n--{BOUNDARY}\r\n".encode())
            self.wfile.flush()

    def _events(self) -> None:
        self._start_stream("text/event-stream")
        self.wfile.write(b"retry: 1000\n\n")  # EventSource reconnects after 1 s if the view restarts
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
        self.wfile.write(f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode())
        self.wfile.flush()
