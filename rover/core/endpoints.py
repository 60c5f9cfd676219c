"""Where a ZeroMQ endpoint can be reached from: this host only, or the network.

The detection stream binds two endpoints: ``stream.bind`` for the programs on
the car (loopback or ``ipc://``, no keys) and the optional ``stream.lan_bind``
for other machines (CURVE keys, or an explicit ``allow_insecure_lan``).
These checks need no ZeroMQ, so the config sections use them too.
"""

from __future__ import annotations

import ipaddress

from rover.core.errors import ConfigError

#: Where rover's programs meet by default: the detector's detection stream,
#: the drive's status stream and the detector's preview frames. Each program's
#: config section takes its default from here, and the stream tools too.
DETECTIONS = "tcp://127.0.0.1:5555"
DRIVE_STATUS = "tcp://127.0.0.1:5556"
PREVIEW = "tcp://127.0.0.1:5557"

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


def check_lan_bind(bind: str, lan_bind: str) -> None:
    """ConfigError unless ``lan_bind`` is empty or a network endpoint distinct from ``bind``."""
    if not lan_bind:
        return
    if lan_bind == bind:
        raise ConfigError(
            f"stream.lan_bind {lan_bind} is the same endpoint as stream.bind: keep stream.bind on loopback "
            "(tcp://127.0.0.1:5555, for the programs on the car) and give lan_bind its own port, e.g. tcp://0.0.0.0:5565"
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


def check_exposure(key: str, endpoint: str, *, keys: bool, allow_insecure_lan: bool) -> None:
    """ConfigError when ``endpoint`` (the value of ``key``) leaves the host with neither keys nor the opt-in."""
    if not is_local_endpoint(endpoint) and not keys and not allow_insecure_lan:
        raise ConfigError(
            f"{key} {endpoint} is reachable from the network: set stream.server_secret_key and "
            "stream.client_keys_dir (CURVE), or stream.allow_insecure_lan = true"
            + (", or bind tcp://127.0.0.1" if key == "stream.bind" else ", or leave stream.lan_bind empty")
        )
