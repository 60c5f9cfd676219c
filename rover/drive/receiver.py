"""Receiving detections: the SUB socket, validation and freshness.

:class:`MessageGate` is pure: it decodes one raw frame with
``rover.core.messages.decode`` (schema v1, finite numbers, boxes and scores in
``[0, 1]``), classifies it and counts. Nothing malformed gets past it and
nothing in it raises: the loop acts only on *fresh* messages.

:class:`DetectionSubscriber` is the socket: ``SUB`` with ``ZMQ_CONFLATE`` so a
slow loop always acts on the newest message, ``ZMQ_MAXMSGSIZE`` so a huge
frame cannot eat the Pi's memory, linger 0 so closing never blocks. libzmq
treats an oversized message as a protocol error and never reconnects that
session, so the subscriber makes a new socket as soon as the drive's
dead-man fires with no message of any kind in its window
(:meth:`DetectionSubscriber.reconnect_if_silent`, called by the loop), and
again after every ``reconnect_after_s`` of silence.
:class:`StatusPublisher` is the drive's own ``PUB`` socket.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Literal

import zmq

from rover.core import endpoints
from rover.core.errors import ConfigError, MessageError, RoverError
from rover.core.messages import MAX_WIRE_BYTES, TOPIC_BYTES, DetectionMessage, decode
from rover.drive.status import COUNTERS

log = logging.getLogger(__name__)

#: Largest detection message accepted (bytes); 1000 detections fit in ~120 kB.
MAX_MESSAGE_BYTES = MAX_WIRE_BYTES
#: A capture time this far in the future means a different clock (another host).
FUTURE_TOLERANCE_S = 0.05

Kind = Literal["fresh", "stale", "invalid", "status"]


@dataclass(frozen=True)
class Received:
    """One classified message: ``kind``, the message (None when invalid), its age in seconds."""

    kind: Kind
    message: DetectionMessage | None = None
    age_s: float | None = None
    reason: str = ""


@dataclass
class MessageGate:
    """Validates and classifies raw messages; counts each kind.

    ``max_age_s``: a message whose frame was captured longer ago than this
    (``frame.t_capture_ns``, ``time.monotonic_ns()`` of the detector, which
    must run on the same host) is stale.
    """

    max_age_s: float
    counters: dict[str, int] = field(default_factory=lambda: {name: 0 for name in COUNTERS})

    def classify(self, raw: bytes, now_s: float) -> Received:
        """Classify ``raw`` received at ``now_s`` (seconds of the monotonic clock)."""
        received = self._classify(raw, now_s)
        self.counters[received.kind] += 1
        return received

    def _classify(self, raw: bytes, now_s: float) -> Received:
        try:
            message = decode(raw)
        except MessageError as exc:
            return Received("invalid", reason=str(exc))
        except Exception as exc:  # noqa: BLE001 - a decoder bug must never stop the car's loop
            return Received("invalid", reason=f"undecodable ({type(exc).__name__})")
        if message.frame is None or message.status != "ok":
            return Received("status", message, reason=f"detector status {message.status!r}")
        age = now_s - message.frame.t_capture_ns / 1e9
        if age > self.max_age_s:
            return Received("stale", message, age, f"{age * 1000:.0f} ms old")
        if age < -FUTURE_TOLERANCE_S:
            return Received("stale", message, age, "captured in the future: is the detector on another host?")
        return Received("fresh", message, max(0.0, age))


class DetectionSubscriber:
    """``SUB`` socket on the detection stream, always holding only the newest message."""

    def __init__(self, endpoint: str, context: zmq.Context | None = None, *, reconnect_after_s: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._context = context or zmq.Context.instance()
        self._endpoint = endpoints.resolve(endpoint)  # ipc://detections: in rover's runtime directory
        self.reconnect_after_s = reconnect_after_s
        self._clock = clock
        self._last_message = clock()
        self.reconnects = 0
        self._open()

    def _open(self) -> None:
        endpoint = self._endpoint
        self.socket = self._context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.CONFLATE, 1)  # before connect; single-frame messages only
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.socket.setsockopt(zmq.SUBSCRIBE, TOPIC_BYTES + b" ")
        try:
            self.socket.connect(endpoint)
        except zmq.ZMQError as exc:
            self.socket.close()
            raise _endpoint_error(exc, "detection stream", endpoint, "--connect") from None
        self._poller = zmq.Poller()
        self._poller.register(self.socket, zmq.POLLIN)

    @property
    def endpoint(self) -> str:
        """The endpoint connected to (a relative ``ipc://`` one placed in the runtime directory)."""
        return self._endpoint

    def recv(self, timeout_s: float) -> bytes | None:
        """The newest message, waiting at most ``timeout_s`` seconds; None when none came."""
        raw = None
        if self._poller.poll(max(0, math.ceil(timeout_s * 1000))):  # ms, rounded up: never a busy spin
            try:
                raw = self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                raw = None
        now = self._clock()
        if raw is not None:
            self._last_message = now
        elif now - self._last_message >= self.reconnect_after_s:
            self._reconnect(now, now - self._last_message)
        return raw

    def reconnect_if_silent(self, quiet_s: float) -> bool:
        """A new socket now if no message of any kind came for ``quiet_s`` seconds; True if it made one.

        The loop calls it when its dead-man fires: the car is already
        stopped, and a session libzmq dropped (an oversized message) costs
        the dead-man's time, not ``reconnect_after_s``. A stream that keeps
        sending (stale or invalid messages) is connected: left alone.
        """
        now = self._clock()
        if now - self._last_message < quiet_s:
            return False
        self._reconnect(now, now - self._last_message)
        return True

    def _reconnect(self, now: float, silent_s: float) -> None:
        """A new socket: recovers a session libzmq dropped for good (an oversized message)."""
        self.socket.close(linger=0)
        self._open()
        self._last_message = now
        self.reconnects += 1
        if self.reconnects == 1:
            log.info("no detection message for %.1f s: reconnecting to %s (again every %.1f s while silent)",
                     silent_s, self._endpoint, self.reconnect_after_s)

    def close(self) -> None:
        self.socket.close(linger=0)


class StatusPublisher:
    """``PUB`` socket for the drive status; sending never blocks the loop."""

    def __init__(self, endpoint: str, context: zmq.Context | None = None) -> None:
        self._context = context or zmq.Context.instance()
        self.socket = self._context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, 10)
        try:
            self.address = endpoints.bind(self.socket, endpoint)
        except zmq.ZMQError as exc:
            self.socket.close()
            raise _endpoint_error(exc, "drive status endpoint", endpoint, "--publish") from None

    def send(self, raw: bytes) -> None:
        try:
            self.socket.send(raw, zmq.NOBLOCK)
        except zmq.Again:
            pass  # no subscriber keeping up: status is best-effort

    def close(self) -> None:
        self.socket.close(linger=0)


def _endpoint_error(exc: zmq.ZMQError, what: str, endpoint: str, flag: str) -> RoverError:
    """A malformed endpoint is a config error (78); a busy one may clear on restart (1)."""
    if exc.errno == zmq.EADDRINUSE:
        return RoverError(f"cannot bind {what} {endpoint!r}: address in use (another rover-drive running?)")
    return ConfigError(f"cannot use {what} {endpoint!r}: {exc.strerror}; fix {flag} or [drive] in the config")
