"""The detection stream's ZeroMQ PUB socket, with CURVE when it leaves the host.

Binding anything but loopback or ``ipc://`` exposes the stream to the LAN,
so it requires CURVE keys (pyzmq's ``zmq.auth``: a server secret key file
and a folder of authorised client public keys, checked by a
``ThreadAuthenticator``) or an explicit ``allow_insecure_lan`` opt-in.

The socket never blocks the detector: PUB drops messages for a subscriber
whose queue (``send_hwm``) is full, sends use ``NOBLOCK`` with a send
timeout as a second guard, and close uses linger 0.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from rover.errors import ConfigError
from rover.messages import DetectionMessage, encode

log = logging.getLogger(__name__)

SEND_TIMEOUT_MS = 100


def is_local_endpoint(endpoint: str) -> bool:
    """True for ``ipc://``, ``inproc://`` and TCP on a loopback address or ``localhost``."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        raise ConfigError(f"stream endpoint {endpoint!r} has no scheme: use tcp://HOST:PORT or ipc:///PATH")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        raise ConfigError(f"stream endpoint {endpoint!r} must be tcp://, ipc:// or inproc://")
    host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a host name: reachable from outside


def load_server_keys(secret_file: Path, client_keys_dir: Path) -> tuple[bytes, bytes]:
    """The server's (public, secret) CURVE keys; ConfigError naming a missing file or folder."""
    secret_file, client_keys_dir = Path(secret_file), Path(client_keys_dir)
    if not client_keys_dir.is_dir():
        raise ConfigError(f"stream.client_keys_dir {client_keys_dir} is not a folder: create it with the subscribers' *.key files")
    try:
        public, secret = zmq.auth.load_certificate(secret_file)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"stream.server_secret_key {secret_file} cannot be read ({exc}): create it with zmq.auth.create_certificates"
        ) from None
    if not secret:
        raise ConfigError(f"stream.server_secret_key {secret_file} holds no secret key: point it at the *.key_secret file")
    return public, secret


class DetectionPublisher:
    """Binds a PUB socket and sends :class:`~rover.messages.DetectionMessage`.

    Use as a context manager or call :meth:`close` (idempotent).
    """

    def __init__(
        self,
        bind: str,
        *,
        server_secret_key: Path | None = None,
        client_keys_dir: Path | None = None,
        allow_insecure_lan: bool = False,
        send_hwm: int = 10,
        context: zmq.Context | None = None,
    ) -> None:
        self.endpoint = bind
        local = is_local_endpoint(bind)
        self.encrypted = server_secret_key is not None
        if not local and not self.encrypted and not allow_insecure_lan:
            raise ConfigError(
                f"stream.bind {bind} is reachable from the network: set stream.server_secret_key and "
                "stream.client_keys_dir (CURVE), or stream.allow_insecure_lan = true, or bind tcp://127.0.0.1"
            )
        keys = load_server_keys(server_secret_key, client_keys_dir) if self.encrypted else None
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._auth: ThreadAuthenticator | None = None
        self._socket: zmq.Socket | None = None
        try:
            socket = self._context.socket(zmq.PUB)
            self._socket = socket
            socket.linger = 0
            socket.sndhwm = send_hwm
            socket.sndtimeo = SEND_TIMEOUT_MS
            if keys is not None:
                self._auth = ThreadAuthenticator(self._context, log=logging.getLogger("rover.publisher.auth"))
                self._auth.start()
                self._auth.configure_curve(domain="*", location=str(client_keys_dir))
                socket.curve_publickey, socket.curve_secretkey = keys
                socket.curve_server = True
            elif not local:
                log.warning("stream %s is NOT encrypted: anyone on the network can read it (allow_insecure_lan)", bind)
            socket.bind(bind)
        except zmq.ZMQError as exc:
            self.close()
            raise ConfigError(f"stream.bind {bind} cannot be bound ({exc}): pick a free port or a writable ipc path") from None
        #: The endpoint actually bound (a ``tcp://...:*`` wildcard port resolved).
        self.address = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sent = 0
        self.dropped = 0

    def publish(self, message: DetectionMessage) -> bool:
        """Send one message; False if it had to be dropped (never blocks)."""
        return self.send_raw(encode(message))

    def send_raw(self, payload: bytes) -> bool:
        if self._socket is None:
            raise RuntimeError("publisher is closed")
        try:
            self._socket.send(payload, zmq.NOBLOCK, copy=len(payload) < 16384)
        except zmq.Again:
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            socket.close(linger=0)
        auth, self._auth = self._auth, None
        if auth is not None:
            auth.stop()
        if self._own_context and self._context is not None:
            self._context.term()
            self._context = None

    def __enter__(self) -> "DetectionPublisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
