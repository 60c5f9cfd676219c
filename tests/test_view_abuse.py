"""The view under abuse: slow-loris clients, too many connections, streams that stopped reading."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from rover.view.server import BOUNDARY
from rover.view.slots import StreamSlots
from tests.fixtures_detector import wait_until
from tests.test_view_server import Rig

BIG = (b"\xff\xd8" + bytes(1_000_000), {})  # a large frame: a client that stops reading fills its buffers at once


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_full_house_evicts_the_longest_stalled_stream_and_never_a_reading_one() -> None:
    clock = Clock()
    slots = StreamSlots(2, stall_s=1.0, clock=clock)
    evicted: list[str] = []
    a, b = slots.open(lambda: evicted.append("a")), slots.open(lambda: evicted.append("b"))
    assert slots.open(lambda: None) is None  # full, nobody stalled: refused
    with a.writing():
        clock.now = 0.5
        with b.writing():
            clock.now = 1.2  # a blocked 1.2 s, b 0.7 s: only a is stalled
            c = slots.open(lambda: evicted.append("c"))
            assert c is not None and evicted == ["a"] and a.evicted and not b.evicted
            assert slots.open(lambda: None) is None  # b has not been blocked long enough
            clock.now = 1.6
            assert slots.open(lambda: None) is not None and evicted == ["a", "b"]
    a.close()  # the evicted stream's own ending frees nothing twice
    assert len(slots) == 2 and slots.evictions == 2


def _feed(rig: Rig, stop: threading.Event) -> threading.Thread:
    def feed() -> None:
        while not stop.wait(0.01):
            rig.latest.put(BIG)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return thread


def _stalled_stream(port: int) -> socket.socket:
    """A client that asks for the MJPEG stream, reads its head, then never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
    head = b""
    while f"--{BOUNDARY}\r\n".encode() not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.0 200")
    return sock


def _first_part(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
        data = b""
        while b"Content-Type: image/jpeg" not in data and len(data) < 100_000:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_a_new_viewer_takes_the_slot_of_a_stream_that_stopped_reading(tmp_path: Path) -> None:
    # Write timeouts stay at 10 s: without eviction the new viewer would get 503 until they expire.
    rig = Rig(tmp_path, max_clients=2, client_timeout_s=10.0, stall_s=0.3)
    stop = threading.Event()
    stalled: list[socket.socket] = []
    try:
        rig.latest.put(BIG)
        stalled = [_stalled_stream(rig.port), _stalled_stream(rig.port)]
        _feed(rig, stop)
        slots = rig.server.streams

        def both_stalled() -> bool:
            now = time.monotonic()
            with slots._lock:
                return len(slots._open) == 2 and all(
                    s.blocked_since is not None and now - s.blocked_since > 0.3 for s in slots._open)

        wait_until(both_stalled, timeout=8)
        assert b"Content-Type: image/jpeg" in _first_part(rig.port)  # served at once, not 503
        assert slots.evictions == 1
    finally:
        stop.set()
        for sock in stalled:
            sock.close()
        rig.close()


def test_viewers_who_read_are_never_displaced(tmp_path: Path) -> None:
    rig = Rig(tmp_path, max_clients=2, stall_s=2.0)
    stop = threading.Event()
    small = (b"\xff\xd8" + bytes(20_000), {})

    def feed() -> None:
        while not stop.wait(0.02):
            rig.latest.put(small)

    def read(sock: socket.socket) -> None:
        try:
            while not stop.is_set() and sock.recv(65536):
                pass
        except OSError:
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    readers = []
    try:
        for _ in range(2):
            sock = socket.create_connection(("127.0.0.1", rig.port), timeout=10)
            sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
            thread = threading.Thread(target=read, args=(sock,), daemon=True)
            thread.start()
            readers.append((sock, thread))
        wait_until(lambda: len(rig.server.streams) == 2)
        time.sleep(0.5)
        refused = rig.get("/stream.mjpg")
        assert refused.status == 503 and b"view.max_clients" in refused.read()
        assert rig.server.streams.evictions == 0
    finally:
        stop.set()
        for sock, thread in readers:
            sock.shutdown(socket.SHUT_RDWR)  # ends the reader's recv at once
            sock.close()
            thread.join(5)
        rig.close()


def test_a_slow_loris_client_is_dropped_when_its_request_is_not_complete_in_time(tmp_path: Path) -> None:
    rig = Rig(tmp_path, client_timeout_s=0.5)
    dribble = b"GET / HTTP/1.0\r\nX-Slow: " + b"a" * 400  # never ends: one byte every 20 ms, 8 s in all
    try:
        with socket.create_connection(("127.0.0.1", rig.port), timeout=5) as sock:
            answer = b""
            for byte in dribble:
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    break  # the server closed the connection
                sock.settimeout(0.02)
                try:
                    answer = sock.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                break
        assert answer.startswith(b"HTTP/1.0 408"), "a client sending a byte at a time was never dropped"
        assert rig.server.timed_out == 1
        wait_until(lambda: rig.server.connections == 0)
        page = rig.get("/")
        assert page.status == 200
    finally:
        rig.close()


def test_connections_are_bounded_and_threads_with_them(tmp_path: Path) -> None:
    rig = Rig(tmp_path, max_clients=2, max_connections=5, head_grace_s=60.0)
    idle: list[socket.socket] = []
    try:
        baseline = threading.active_count()
        for _ in range(12):  # connect and send nothing, as a slow-loris client does at first
            idle.append(socket.create_connection(("127.0.0.1", rig.port), timeout=5))
        wait_until(lambda: rig.server.connections + rig.server.refused == 12)
        assert rig.server.connections == 5 and rig.server.refused == 7
        assert threading.active_count() - baseline <= 5
        answers = []
        for sock in idle[5:]:
            sock.settimeout(5)
            answers.append(sock.recv(4096))
        assert all(a.startswith(b"HTTP/1.0 503") and b"view.max_connections" in a for a in answers)
        for sock in idle:
            sock.close()
        wait_until(lambda: rig.server.connections == 0)
        assert rig.get("/").status == 200  # and the view serves again
    finally:
        for sock in idle:
            sock.close()
        rig.close()


def test_when_slow_clients_hold_every_connection_a_real_request_takes_the_place_of_the_oldest(tmp_path: Path) -> None:
    rig = Rig(tmp_path, max_clients=2, max_connections=4, head_grace_s=0.2)
    loris: list[socket.socket] = []
    try:
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", rig.port), timeout=5)
            sock.sendall(b"GET / HTTP/1.0\r\nX-Slow: a")  # and never more
            loris.append(sock)
        wait_until(lambda: rig.server.connections == 4)
        time.sleep(0.3)  # all four have been sending their head for longer than head_grace_s
        assert rig.get("/").status == 200  # not 503: the oldest unfinished request gave way
        assert rig.server.head_evictions == 1 and rig.server.refused == 0
        loris[0].settimeout(5)
        assert loris[0].recv(100) == b""  # the oldest was closed, without an answer
    finally:
        for sock in loris:
            sock.close()
        rig.close()
