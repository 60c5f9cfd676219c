"""The view's ZeroMQ side: subscribe to detections, drive status and preview frames.

One thread polls three SUB sockets and feeds a :class:`~rover.view.state.LiveState`
and a :class:`~rover.view.hub.Latest` (``(jpeg, frame event)`` pairs).
Subscribers connect, never bind, so the detector and the drive may start,
stop and restart in any order: ZeroMQ reconnects by itself, and the state
shows a silent stream as offline. Detections are drained before frames in
every round, so a frame's detection message (published first) is known
when the frame is paired. A malformed message is counted and skipped; so is
one the decoder fails on unexpectedly (logged once per stream), so the
thread never dies.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

import zmq

from rover.core import endpoints
from rover.core.errors import ConfigError, MessageError
from rover.core.messages import TOPIC_BYTES, decode
from rover.detector.preview import TOPIC as FRAME_TOPIC
from rover.detector.preview import decode_frame
from rover.drive import status as drive_status
from rover.view.hub import Latest
from rover.view.state import LiveState

log = logging.getLogger(__name__)

POLL_MS = 250


class StreamReader:
    """Owns the SUB sockets and their thread. ``on_tick`` runs at least every 0.25 s (systemd watchdog)."""

    def __init__(
        self,
        state: LiveState,
        frames: Latest,
        *,
        detections: str,
        frames_endpoint: str,
        drive: str = "",
        on_tick: Callable[[], object] | None = None,
    ) -> None:
        self.state = state
        self.frames = frames
        self._on_tick = on_tick
        self._stop = threading.Event()
        self._context = zmq.Context()
        self._sockets: list[tuple[str, zmq.Socket]] = []
        self._unexpected: set[str] = set()  # streams whose undecodable message was already logged
        try:
            self._detections = self._sub("detections", detections, TOPIC_BYTES, hwm=100)
            self._frames = self._sub("frames", frames_endpoint, FRAME_TOPIC, hwm=2)
            self._drive = self._sub("drive", drive, drive_status.TOPIC_BYTES, hwm=10) if drive else None
        except zmq.ZMQError:
            self.close()
            raise
        self._thread = threading.Thread(target=self._run, name="view-streams", daemon=True)

    def _sub(self, name: str, endpoint: str, topic: bytes, hwm: int) -> zmq.Socket:
        sock = self._context.socket(zmq.SUB)
        sock.linger = 0
        sock.rcvhwm = hwm
        sock.reconnect_ivl = 100  # ms; doubles up to reconnect_ivl_max while a peer is away
        sock.reconnect_ivl_max = 1000
        sock.subscribe(topic)
        self._sockets.append((name, sock))
        try:
            sock.connect(endpoints.resolve(endpoint))  # ipc://NAME: in rover's runtime directory
        except zmq.ZMQError as exc:
            raise ConfigError(f"view.{name} {endpoint!r} is not a ZeroMQ endpoint ({exc}): use tcp://HOST:PORT or ipc:///PATH") from None
        return sock

    def start(self) -> "StreamReader":
        self._thread.start()
        return self

    def _run(self) -> None:
        poller = zmq.Poller()
        for _, sock in self._sockets:
            poller.register(sock, zmq.POLLIN)
        while not self._stop.is_set():
            ready = dict(poller.poll(POLL_MS))
            if self._detections in ready:
                self._drain(self._detections, self._on_detection)
            if self._drive is not None and self._drive in ready:
                self._drain(self._drive, self._on_drive)
            if self._frames in ready:
                self._drain(self._frames, self._on_frame, multipart=True)
            if self._on_tick is not None:
                self._on_tick()

    def _drain(self, sock: zmq.Socket, handle: Callable, multipart: bool = False) -> None:
        while True:
            try:
                raw = sock.recv_multipart(zmq.NOBLOCK) if multipart else sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                handle(raw)
            except MessageError as exc:
                name = self._name(sock)
                self.state.on_invalid(name)
                log.debug("invalid %s message skipped: %s", name, exc)
            except Exception as exc:  # a decoder bug must not end the thread (the panel would stay offline)
                name = self._name(sock)
                self.state.on_invalid(name)
                if name not in self._unexpected:
                    self._unexpected.add(name)
                    log.warning("a %s message could not be decoded (%s: %s); counted as invalid, further ones are "
                                "logged at debug level", name, type(exc).__name__, exc)
                else:
                    log.debug("undecodable %s message skipped: %s: %s", name, type(exc).__name__, exc)

    def _name(self, sock: zmq.Socket) -> str:
        return next(n for n, s in self._sockets if s is sock)

    def _on_detection(self, raw: bytes) -> None:
        self.state.on_detection(decode(raw))

    def _on_drive(self, raw: bytes) -> None:
        self.state.on_drive(drive_status.decode(raw))

    def _on_frame(self, parts: list[bytes]) -> None:
        header, jpeg = decode_frame(parts)
        self.frames.put((jpeg, self.state.on_frame(header)))

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        for _, sock in self._sockets:
            sock.close(linger=0)
        self._sockets = []
        self._context.term()
