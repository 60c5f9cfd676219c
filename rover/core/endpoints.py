"""Where a ZeroMQ endpoint can be reached from, and where rover's own streams meet.

Rover's own programs meet on ``ipc://`` sockets in a runtime directory
(issue 14: with loopback TCP, any local process that binds the detector's
port while the detector is down is followed by the drive). An ``ipc://``
endpoint with a *relative* path, such as the defaults ``ipc://detections``,
names a socket in :func:`runtime_dir`:

1. ``$ROVER_RUNTIME_DIR`` when set (created 0700 if missing);
2. ``/run/rover`` when this process may create sockets in it: on the car,
   systemd creates it for the rover units (``RuntimeDirectory=rover``, mode
   0770, owner and group ``rover``), so only the ``rover`` user and members
   of the ``rover`` group can bind or connect;
3. ``$XDG_RUNTIME_DIR/rover`` (created 0700): programs started by hand in a
   login session, private to that user;
4. otherwise a ConfigError saying what to set.

A socket rover binds there is made group-readable and -writable (0660): the
directory is the gate. ``tcp://`` and absolute ``ipc:///PATH`` endpoints are
used as given, so old configs keep working.

The detection stream binds up to three endpoints: ``stream.bind`` for the
programs on the car (``ipc://`` by default, or loopback; no keys), the
optional ``stream.local_bind`` (loopback TCP, for other local programs, an
explicit choice) and the optional ``stream.lan_bind`` for other machines
(CURVE keys, or an explicit ``allow_insecure_lan``). The checks need no
ZeroMQ, so the config sections use them too.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket as sock
from pathlib import Path
from typing import Any, Mapping

from rover.core.errors import ConfigError

#: Where rover's programs meet by default: the detector's detection stream,
#: the drive's status stream and the detector's preview frames, in the
#: runtime directory. Each program's config section takes its default from
#: here, and the stream tools too.
DETECTIONS = "ipc://detections"
DRIVE_STATUS = "ipc://drive"
PREVIEW = "ipc://preview"

#: The environment variable that names the runtime directory explicitly.
RUNTIME_DIR_ENV = "ROVER_RUNTIME_DIR"
#: The runtime directory of the rover services (systemd's RuntimeDirectory=rover).
SYSTEM_RUNTIME_DIR = Path("/run/rover")
#: Mode of a socket rover binds in the runtime directory: the directory decides who gets in.
SOCKET_MODE = 0o660
#: sun_path holds 108 bytes with the terminating NUL.
MAX_IPC_PATH = 107

_WILDCARD_HOSTS = {"*", "0.0.0.0", "::", ""}


def _tcp_host_port(rest: str) -> tuple[str, str]:
    host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    return host.strip("[]"), port


def is_local_endpoint(endpoint: str) -> bool:
    """True for ``ipc://``, ``inproc://`` and TCP on a loopback address or ``localhost``."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        raise ConfigError(f"stream endpoint {endpoint!r} has no scheme: use tcp://HOST:PORT or ipc:///PATH")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        raise ConfigError(f"stream endpoint {endpoint!r} must be tcp://, ipc:// or inproc://")
    host, port = _tcp_host_port(rest)
    if port != "*" and not (port.isdigit() and int(port) < 65536):
        # libzmq would wrap 99999 round to another port without a word
        raise ConfigError(f"endpoint {endpoint!r} needs a TCP port from 0 to 65535 (0 or * = any free port): use tcp://HOST:PORT")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a host name: reachable from outside


def runtime_dir(environ: Mapping[str, str] | None = None, system: Path = SYSTEM_RUNTIME_DIR) -> Path:
    """The directory relative ``ipc://`` endpoints live in (see the module's docstring for the order)."""
    env = os.environ if environ is None else environ
    explicit = env.get(RUNTIME_DIR_ENV)
    if explicit:
        return Path(explicit)
    if system.is_dir() and os.access(system, os.W_OK | os.X_OK):
        return system
    session = env.get("XDG_RUNTIME_DIR")
    if session:
        return Path(session) / "rover"
    raise ConfigError(
        f"no runtime directory for rover's ipc:// streams: {system} is absent or not writable by this user "
        f"and XDG_RUNTIME_DIR is not set; set {RUNTIME_DIR_ENV}=/a/private/directory, or give every "
        "endpoint explicitly (ipc:///PATH or tcp://127.0.0.1:PORT)"
    )


def resolve(endpoint: str, environ: Mapping[str, str] | None = None, *, create: bool = False,
            system: Path = SYSTEM_RUNTIME_DIR) -> str:
    """``endpoint`` with a relative ``ipc://`` path placed in :func:`runtime_dir`; others unchanged.

    ``create``: make the runtime directory (mode 0700) when it is missing,
    for a program about to bind there. ConfigError for a path too long for
    a Unix socket.
    """
    scheme, sep, path = endpoint.partition("://")
    if scheme != "ipc" or not sep or not path or path.startswith("/") or path.startswith("@"):
        return endpoint
    folder = runtime_dir(environ, system)
    if create and not folder.is_dir():
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the runtime directory {folder} for {endpoint} ({exc.strerror}): "
                              f"set {RUNTIME_DIR_ENV} to a writable directory") from None
    full = str(folder / path)
    if len(full.encode()) > MAX_IPC_PATH:
        raise ConfigError(f"{endpoint} resolves to {full}, longer than a Unix socket path may be "
                          f"({MAX_IPC_PATH} bytes): set {RUNTIME_DIR_ENV} to a shorter directory")
    return f"ipc://{full}"


def refuse_if_served(path: str) -> None:
    """``zmq.ZMQError(EADDRINUSE)`` when a live socket listens at the Unix socket ``path``.

    libzmq unlinks an existing socket file before it binds an ``ipc://``
    path, so a second publisher would silently take the stream over from
    the first (TCP refuses with "address in use"). A connect tells a live
    listener from a stale file (ECONNREFUSED: left by a killed process,
    which the bind may replace). Abstract (``@``) names are left to libzmq.
    """
    if not path or path.startswith("@"):
        return
    probe = sock.socket(sock.AF_UNIX, sock.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except OSError:
        return  # no file, a stale one, or not a socket: the bind decides
    finally:
        probe.close()
    import zmq  # here: this module is imported by programs that need no ZeroMQ

    raise zmq.ZMQError(errno.EADDRINUSE, f"Address already in use: a live socket serves {path}")


def bind(socket: Any, endpoint: str) -> str:
    """Bind a ZeroMQ ``socket`` to ``endpoint`` (resolved); returns the endpoint as bound.

    An ``ipc://`` path a live socket already serves raises
    ``zmq.ZMQError(EADDRINUSE)``, as a TCP port in use does (:func:`refuse_if_served`).

    A socket file in the runtime directory gets :data:`SOCKET_MODE`, so the
    directory's group (``rover`` on the car) may connect whatever the umask.
    ZeroMQ's errors propagate; the caller words them.
    """
    resolved = resolve(endpoint, create=True)
    if resolved.startswith("ipc://"):
        refuse_if_served(resolved[len("ipc://"):])
    socket.bind(resolved)
    if resolved != endpoint:
        try:
            os.chmod(resolved[len("ipc://"):], SOCKET_MODE)
        except OSError:
            pass  # a private directory (0700) keeps everyone else out anyway
    return resolved


def check_lan_bind(bind: str, lan_bind: str) -> None:
    """ConfigError unless ``lan_bind`` is empty or a network endpoint distinct from ``bind``."""
    if not lan_bind:
        return
    if lan_bind == bind:
        raise ConfigError(
            f"stream.lan_bind {lan_bind} is the same endpoint as stream.bind: keep stream.bind on this host "
            "(ipc://detections or loopback, for the programs on the car) and give lan_bind its own port, e.g. tcp://0.0.0.0:5565"
        )
    if is_local_endpoint(lan_bind):
        raise ConfigError(
            f"stream.lan_bind {lan_bind} stays on this host, where stream.bind already serves: set it to an "
            "address other machines reach, e.g. tcp://0.0.0.0:5565, or leave it empty"
        )
    if bind.startswith("tcp://"):
        (bind_host, bind_port), (lan_host, lan_port) = _tcp_host_port(bind[6:]), _tcp_host_port(lan_bind[6:])
        wildcard = bind_host in _WILDCARD_HOSTS or lan_host in _WILDCARD_HOSTS
        if bind_port == lan_port and bind_port not in ("*", "0", "") and (wildcard or bind_host == lan_host):
            raise ConfigError(
                f"stream.lan_bind {lan_bind} and stream.bind {bind} use the same port {lan_port}: "
                "give lan_bind its own port, e.g. tcp://0.0.0.0:5565"
            )


def check_local_bind(local_bind: str) -> None:
    """ConfigError unless ``local_bind`` is empty or TCP on a loopback address."""
    if local_bind and not (local_bind.startswith("tcp://") and is_local_endpoint(local_bind)):
        raise ConfigError(
            f"stream.local_bind {local_bind} must be TCP on loopback, e.g. tcp://127.0.0.1:5555 (other local "
            "programs); rover's own programs use stream.bind, other machines stream.lan_bind"
        )


def check_exposure(key: str, endpoint: str, *, keys: bool, allow_insecure_lan: bool) -> None:
    """ConfigError when ``endpoint`` (the value of ``key``) leaves the host with neither keys nor the opt-in."""
    if not is_local_endpoint(endpoint) and not keys and not allow_insecure_lan:
        raise ConfigError(
            f"{key} {endpoint} is reachable from the network: set stream.server_secret_key and "
            "stream.client_keys_dir (CURVE), or stream.allow_insecure_lan = true"
            + (", or bind tcp://127.0.0.1" if key == "stream.bind" else ", or leave stream.lan_bind empty")
        )
