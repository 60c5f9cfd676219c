"""DetectionPublisher: loopback-only unless CURVE or an explicit opt-in; CURVE over a real socket."""

from __future__ import annotations

import socket as pysocket
import time

import pytest
import zmq
import zmq.auth

from rover.errors import ConfigError
from rover.messages import DetectionMessage, ModelRef, decode
from rover.publisher import DetectionPublisher, is_local_endpoint

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


@pytest.mark.parametrize("endpoint", ["127.0.0.1:5555", "udp://127.0.0.1:5555"])
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
