"""DetectionPublisher: loopback-only unless CURVE or an explicit opt-in; CURVE over a real socket."""

from __future__ import annotations

import socket as pysocket
import time

import pytest
import zmq
import zmq.auth

from rover.core.endpoints import is_local_endpoint
from rover.core.errors import ConfigError
from rover.core.messages import DetectionMessage, ModelRef, decode
from rover.detector.publisher import DetectionPublisher

MODEL = ModelRef("synthetic-test", "float32", "0" * 64)


def status(seq: int) -> DetectionMessage:
    return DetectionMessage(seq=seq, t_publish_ns=time.monotonic_ns(), status="no_frame", model=MODEL, fps=0.0)


@pytest.mark.parametrize(
    ("endpoint", "local"),
    [
        ("tcp://127.0.0.1:5555", True),
        ("tcp://127.4.5.6:5555", True),
        ("tcp://localhost:5555", True),
        ("tcp://[::1]:5555", True),
        ("ipc:///run/rover/detections", True),
        ("inproc://detections", True),
        ("tcp://0.0.0.0:5555", False),
        ("tcp://*:5555", False),
        ("tcp://192.168.1.20:5555", False),
        ("tcp://eth0:5555", False),
    ],
)
def test_which_endpoints_stay_on_this_host(endpoint, local):
    assert is_local_endpoint(endpoint) is local


@pytest.mark.parametrize("endpoint", ["127.0.0.1:5555", "udp://127.0.0.1:5555", "tcp://127.0.0.1:99999", "tcp://127.0.0.1"])
def test_malformed_endpoints_are_config_errors(endpoint):
    with pytest.raises(ConfigError):
        is_local_endpoint(endpoint)


def test_lan_bind_without_keys_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"server_secret_key.*allow_insecure_lan = true"):
        DetectionPublisher("tcp://0.0.0.0:*")


@pytest.mark.slow
def test_lan_bind_with_explicit_opt_in_works_and_warns(caplog):
    with DetectionPublisher("tcp://0.0.0.0:*", allow_insecure_lan=True) as pub:
        assert pub.address.startswith("tcp://0.0.0.0:")
    assert "NOT encrypted" in caplog.text


def test_missing_key_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="client_keys_dir"):
        DetectionPublisher("tcp://0.0.0.0:*", server_secret_key=tmp_path / "s.key_secret", client_keys_dir=tmp_path / "none")
    with pytest.raises(ConfigError, match="server_secret_key .*create_certificates"):
        DetectionPublisher("tcp://0.0.0.0:*", server_secret_key=tmp_path / "s.key_secret", client_keys_dir=tmp_path)


@pytest.mark.slow
def test_port_in_use_is_a_config_error():
    holder = pysocket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match="cannot be bound"):
            DetectionPublisher(f"tcp://127.0.0.1:{port}")
    finally:
        holder.close()


@pytest.mark.slow
def test_close_is_idempotent(tmp_path):
    pub = DetectionPublisher(f"ipc://{tmp_path}/d.sock")
    pub.close()
    pub.close()
    with pytest.raises(RuntimeError, match="closed"):
        pub.publish(status(0))


@pytest.fixture
def keys(tmp_path):
    """Server keys, one authorised client, one stranger (zmq.auth certificate files)."""
    server_dir, allowed_dir, stranger_dir = (tmp_path / d for d in ("server", "allowed", "stranger"))
    for d in (server_dir, allowed_dir, stranger_dir):
        d.mkdir()
    server_public, server_secret = zmq.auth.create_certificates(server_dir, "server")
    client_public, client_secret = zmq.auth.create_certificates(allowed_dir, "robot-laptop")
    _, stranger_secret = zmq.auth.create_certificates(stranger_dir, "stranger")
    authorised = tmp_path / "authorised"
    authorised.mkdir()
    (authorised / "robot-laptop.key").write_bytes(open(client_public, "rb").read())
    return {"server_public": server_public, "server_secret": server_secret, "authorised": authorised,
            "client_secret": client_secret, "stranger_secret": stranger_secret}


def subscriber(ctx: zmq.Context, address: str, client_secret=None, server_public=None) -> zmq.Socket:
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    if client_secret is not None:
        sub.curve_publickey, sub.curve_secretkey = zmq.auth.load_certificate(client_secret)
        sub.curve_serverkey = zmq.auth.load_certificate(server_public)[0]
    sub.subscribe(b"detections")
    sub.connect(address)
    return sub


@pytest.mark.slow
def test_curve_subscriber_with_the_right_keys_receives_others_do_not(keys):
    ctx = zmq.Context()
    with DetectionPublisher(
        "tcp://0.0.0.0:*", server_secret_key=keys["server_secret"], client_keys_dir=keys["authorised"]
    ) as pub:
        address = pub.address.replace("0.0.0.0", "127.0.0.1")
        good = subscriber(ctx, address, keys["client_secret"], keys["server_public"])
        plain = subscriber(ctx, address)
        stranger = subscriber(ctx, address, keys["stranger_secret"], keys["server_public"])
        got: dict[str, list] = {"good": [], "plain": [], "stranger": []}
        poller = zmq.Poller()
        for sock in (good, plain, stranger):
            poller.register(sock, zmq.POLLIN)
        names = {good: "good", plain: "plain", stranger: "stranger"}
        seq = 0
        deadline = time.monotonic() + 10.0
        # Publish until the authorised subscriber has 5 messages (the handshake takes a moment).
        while len(got["good"]) < 5 and time.monotonic() < deadline:
            pub.publish(status(seq))
            seq += 1
            for sock, _ in poller.poll(20):
                got[names[sock]].append(decode(sock.recv()))
        for _ in range(10):  # give the others every chance
            pub.publish(status(seq))
            seq += 1
            for sock, _ in poller.poll(20):
                got[names[sock]].append(decode(sock.recv()))
        for sock in (good, plain, stranger):
            sock.close()
    ctx.term()
    assert pub.encrypted
    assert len(got["good"]) >= 5 and got["good"][0].status == "no_frame"
    assert got["plain"] == [] and got["stranger"] == []


# --- Two sockets: ``bind`` for the car (no keys), ``lan_bind`` for other machines (CURVE) ---


@pytest.mark.parametrize(
    ("bind", "lan_bind", "message"),
    [
        ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5555", "same endpoint as stream.bind"),
        ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5565", "stays on this host"),
        ("tcp://127.0.0.1:5555", "tcp://localhost:5565", "stays on this host"),
        ("tcp://127.0.0.1:5555", "ipc:///run/rover/lan", "stays on this host"),
        ("tcp://127.0.0.1:5555", "tcp://0.0.0.0:5555", "same port 5555"),
        ("tcp://0.0.0.0:5555", "tcp://192.168.1.20:5555", "same port 5555"),
        ("tcp://127.0.0.1:5555", "udp://0.0.0.0:5565", "must be tcp://"),
    ],
)
def test_pointless_or_clashing_lan_binds_are_refused_before_any_socket(tmp_path, keys, bind, lan_bind, message):
    with pytest.raises(ConfigError, match=message):
        DetectionPublisher(bind, lan_bind=lan_bind, server_secret_key=keys["server_secret"],
                           client_keys_dir=keys["authorised"])


def test_lan_bind_without_keys_is_refused_naming_lan_bind():
    with pytest.raises(ConfigError, match=r"^stream\.lan_bind tcp://0\.0\.0\.0:\* is reachable .*allow_insecure_lan = true"):
        DetectionPublisher("tcp://127.0.0.1:*", lan_bind="tcp://0.0.0.0:*")


@pytest.mark.slow
def test_a_loopback_bind_never_gets_curve_even_with_keys(tmp_path, keys, caplog):
    with DetectionPublisher(f"ipc://{tmp_path}/d.sock", server_secret_key=keys["server_secret"],
                            client_keys_dir=keys["authorised"]) as pub:
        assert not pub.encrypted and pub.lan_address == "" and pub._auth is None
    assert "set stream.lan_bind" in caplog.text


def collect(pub: DetectionPublisher, subs: dict[str, zmq.Socket], until: tuple[str, ...]) -> dict[str, list[bytes]]:
    """Publish until every ``until`` subscriber has 5 messages (handshakes take a moment), then 10 more."""
    got: dict[str, list[bytes]] = {name: [] for name in subs}
    names = {sock: name for name, sock in subs.items()}
    poller = zmq.Poller()
    for sock in subs.values():
        poller.register(sock, zmq.POLLIN)
    seq = 0

    def step() -> None:
        nonlocal seq
        pub.publish(status(seq))
        seq += 1
        for sock, _ in poller.poll(20):
            got[names[sock]].append(sock.recv())

    deadline = time.monotonic() + 10.0
    while any(len(got[name]) < 5 for name in until) and time.monotonic() < deadline:
        step()
    for _ in range(10):  # give the others every chance
        step()
    return got


@pytest.mark.slow
@pytest.mark.parametrize("local", ["ipc", "tcp"])
def test_car_programs_need_no_keys_while_the_lan_socket_demands_them(tmp_path, keys, local):
    """The defect this guards against: with CURVE configured, the keyless subscribers on the car
    (rover-drive, rover-view, rover record) must still receive. The ThreadAuthenticator runs on the
    publisher's context, but libzmq consults ZAP for a NULL socket only when it has a zap_domain."""
    bind = f"ipc://{tmp_path}/d.sock" if local == "ipc" else "tcp://127.0.0.1:*"
    ctx = zmq.Context()
    with DetectionPublisher(bind, lan_bind="tcp://0.0.0.0:*", server_secret_key=keys["server_secret"],
                            client_keys_dir=keys["authorised"], send_hwm=7) as pub:
        assert pub._auth is not None and pub.lan_encrypted and not pub.bind_encrypted
        assert [(s.sndhwm, s.linger, s.curve_server) for s in pub._sockets] == [(7, 0, False), (7, 0, True)]
        lan = pub.lan_address.replace("0.0.0.0", "127.0.0.1")
        subs = {
            "car": subscriber(ctx, pub.address),  # a plain SUB, as rover-drive connects
            "laptop": subscriber(ctx, lan, keys["client_secret"], keys["server_public"]),
            "plain_on_lan": subscriber(ctx, lan),
            "stranger_on_lan": subscriber(ctx, lan, keys["stranger_secret"], keys["server_public"]),
        }
        got = collect(pub, subs, until=("car", "laptop"))
        for sock in subs.values():
            sock.close()
    ctx.term()
    assert pub._sockets == [] and pub._auth is None  # both sockets and the authenticator closed
    assert len(got["car"]) >= 5, "a keyless subscriber on the local bind must receive"
    assert len(got["laptop"]) >= 5 and decode(got["laptop"][0]).status == "no_frame"
    assert len(set(got["car"]) & set(got["laptop"])) >= 5  # one publish, the same bytes on both sockets
    assert got["plain_on_lan"] == [] and got["stranger_on_lan"] == []


@pytest.mark.slow
def test_insecure_lan_bind_gets_the_same_messages_and_warns(tmp_path, caplog):
    ctx = zmq.Context()
    with DetectionPublisher(f"ipc://{tmp_path}/d.sock", lan_bind="tcp://0.0.0.0:*", allow_insecure_lan=True) as pub:
        assert not pub.encrypted and pub._auth is None
        subs = {"car": subscriber(ctx, pub.address),
                "lan": subscriber(ctx, pub.lan_address.replace("0.0.0.0", "127.0.0.1"))}
        got = collect(pub, subs, until=("car", "lan"))
        for sock in subs.values():
            sock.close()
    ctx.term()
    assert len(set(got["car"]) & set(got["lan"])) >= 5 and pub.dropped == 0
    assert "stream.lan_bind tcp://0.0.0.0:* is NOT encrypted" in caplog.text
    assert "stream.bind" not in caplog.text  # the local socket is not reported as exposed


@pytest.mark.slow
def test_a_lan_port_in_use_closes_the_local_socket_too(tmp_path):
    holder = pysocket.socket()
    holder.bind(("0.0.0.0", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=rf"stream\.lan_bind tcp://0\.0\.0\.0:{port} cannot be bound"):
            DetectionPublisher(f"ipc://{tmp_path}/d.sock", lan_bind=f"tcp://0.0.0.0:{port}", allow_insecure_lan=True)
        with DetectionPublisher(f"ipc://{tmp_path}/d.sock"):  # the ipc path was released
            pass
    finally:
        holder.close()
