"""The detection stream's ZeroMQ PUB sockets: one for the car, one for the LAN.

``bind`` serves the programs on the car (rover-drive, rover-view, rover
record): on loopback or ``ipc://`` it needs no keys and never gets CURVE, so
they connect with plain SUB sockets. The optional ``lan_bind`` serves other
machines and gets the same bytes; it requires CURVE keys (pyzmq's
``zmq.auth``: a server secret key file and a folder of authorised client
public keys, checked by a ``ThreadAuthenticator``) or an explicit
``allow_insecure_lan`` opt-in. A non-loopback ``bind`` still works as before
(keys or the opt-in), but keeping it on loopback is the documented setup.

The authenticator serves the whole context, yet the loopback socket stays
open to keyless local subscribers: libzmq consults ZAP for a NULL-mechanism
socket only when that socket has a ``zap_domain`` (``session_base_t::
zap_enabled``), and none is set here (tests prove it over real sockets).

The sockets never block the detector: PUB drops messages for a subscriber
whose queue (``send_hwm``) is full, sends use ``NOBLOCK`` with a send
timeout as a second guard, and close uses linger 0.
"""

from __future__ import annotations

import logging
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from rover.core import endpoints
from rover.core.endpoints import check_exposure, check_lan_bind, check_local_bind, is_local_endpoint
from rover.core.errors import ConfigError
from rover.core.messages import DetectionMessage, encode

__all__ = ["DetectionPublisher", "load_server_keys"]

log = logging.getLogger(__name__)

SEND_TIMEOUT_MS = 100


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
    """Binds the PUB socket(s) and sends :class:`~rover.core.messages.DetectionMessage` to all of them.

    Use as a context manager or call :meth:`close` (idempotent).
    """

    def __init__(
        self,
        bind: str,
        *,
        lan_bind: str = "",
        local_bind: str = "",
        server_secret_key: Path | None = None,
        client_keys_dir: Path | None = None,
        allow_insecure_lan: bool = False,
        send_hwm: int = 10,
        context: zmq.Context | None = None,
    ) -> None:
        self.endpoint = bind
        has_keys = server_secret_key is not None
        check_lan_bind(bind, lan_bind)
        check_local_bind(local_bind)
        wanted = [("stream.bind", bind)] + ([("stream.lan_bind", lan_bind)] if lan_bind else [])
        wanted += [("stream.local_bind", local_bind)] if local_bind else []
        for key, endpoint in wanted:
            check_exposure(key, endpoint, keys=has_keys, allow_insecure_lan=allow_insecure_lan)
        # CURVE goes on every socket that leaves the host, never on loopback or ipc://.
        curve = {key for key, endpoint in wanted if has_keys and not is_local_endpoint(endpoint)}
        if has_keys and not curve:
            log.warning("stream.server_secret_key is set but every endpoint stays on this host: "
                        "set stream.lan_bind (e.g. tcp://0.0.0.0:5565) to serve other machines")
        keys = load_server_keys(server_secret_key, client_keys_dir) if has_keys else None
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._auth: ThreadAuthenticator | None = None
        self._sockets: list[zmq.Socket] = []
        try:
            if curve:
                self._auth = ThreadAuthenticator(self._context, log=logging.getLogger("rover.detector.publisher.auth"))
                self._auth.start()
                self._auth.configure_curve(domain="*", location=str(client_keys_dir))
            for key, endpoint in wanted:
                self._open(key, endpoint, send_hwm, keys if key in curve else None)
        except BaseException:
            self.close()
            raise
        #: The endpoints actually bound (a ``tcp://...:*`` wildcard port resolved).
        addresses = [socket.getsockopt_string(zmq.LAST_ENDPOINT) for socket in self._sockets]
        self.address = addresses[0]
        #: The LAN endpoint actually bound, or "" when ``lan_bind`` is off.
        self.lan_address = addresses[1] if lan_bind else ""
        #: The loopback TCP endpoint for other local programs actually bound, or "" when off.
        self.local_address = addresses[-1] if local_bind else ""
        #: True when CURVE protects a socket (the LAN one, or a non-loopback ``bind``).
        self.encrypted = bool(curve)
        self.bind_encrypted = "stream.bind" in curve
        self.lan_encrypted = "stream.lan_bind" in curve
        self.sent = 0
        self.dropped = 0

    def _open(self, key: str, endpoint: str, send_hwm: int, keys: tuple[bytes, bytes] | None) -> None:
        """Add one PUB socket bound to ``endpoint`` (CURVE server with ``keys``); same options for each."""
        socket = self._context.socket(zmq.PUB)
        self._sockets.append(socket)  # closed by close() if anything below fails
        socket.linger = 0
        socket.sndhwm = send_hwm
        socket.sndtimeo = SEND_TIMEOUT_MS
        if keys is not None:
            socket.curve_publickey, socket.curve_secretkey = keys
            socket.curve_server = True
        elif not is_local_endpoint(endpoint):
            log.warning("%s %s is NOT encrypted: anyone on the network can read it (allow_insecure_lan)", key, endpoint)
        try:
            endpoints.bind(socket, endpoint)  # ipc://detections: in rover's runtime directory
        except zmq.ZMQError as exc:
            raise ConfigError(f"{key} {endpoint} cannot be bound ({exc}): pick a free port or a writable ipc path") from None

    def publish(self, message: DetectionMessage) -> bool:
        """Send one message to every socket; False if a socket had to drop it (never blocks)."""
        return self.send_raw(encode(message))

    def send_raw(self, payload: bytes) -> bool:
        if not self._sockets:
            raise RuntimeError("publisher is closed")
        copy = len(payload) < 16384
        delivered = True
        for socket in self._sockets:
            try:
                socket.send(payload, zmq.NOBLOCK, copy=copy)
            except zmq.Again:
                delivered = False
        if delivered:
            self.sent += 1
        else:
            self.dropped += 1
        return delivered

    def close(self) -> None:
        sockets, self._sockets = self._sockets, []
        for socket in sockets:
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
