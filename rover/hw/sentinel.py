"""The car's sentinel: a small process that stops the car when the program driving it dies without doing so.

systemd's ``ExecStopPost=rover-safestop`` covers the service; this covers
``python -m rover.drive`` started by hand, and every other way of ending the
process without its ``finally`` (``kill -9``, the OOM killer, a segfault in
a vendor library). The motors and the PCA9685 keep their last command after
the process is gone, so something outside it has to stop them.

How it works:

- ``rover.drive`` starts it (:meth:`Sentinel.start`) after the config is
  loaded and before the chassis is opened, hands it the loaded config
  sections over its stdin pipe, and waits for its ``armed`` line: a drive
  whose sentinel does not start refuses to drive.
- The sentinel opens a pidfd of the drive (``pidfd_open``, Linux 5.3) and
  waits. It runs in a session of its own, so nothing sent to the drive's
  terminal or process group reaches it (a Ctrl-C, Ctrl-\\, the SIGHUP of a
  dropped SSH session); it ignores SIGINT, SIGTERM and SIGHUP besides (systemd
  sends SIGTERM to the unit's whole cgroup, which a new session is still in:
  the drive handles it and stands the sentinel down).
- On a clean exit, once ``chassis.close()`` succeeded, the drive writes
  ``S`` (stand down) and reaps the sentinel: no orphan, no second stop.
  When ``close()`` failed, the drive only closes the pipe and the sentinel
  tries the safe stop itself after the drive has gone.
- It acts only once the drive is *gone*: the pidfd becomes readable when
  the whole process has exited, after the kernel released its files and
  memory, so RPi.GPIO's software-PWM thread is dead and rpi-lgpio's line
  claims are free; it never fights a live drive for the pins. (Without a
  pidfd it falls back to the pipe's end of file, then polls until it has
  been re-parented.) Then it calls :func:`rover.hw.safestop.safe_stop`
  with the drive's own config, retrying briefly if the pins are still busy,
  and only then reports: a report it cannot write (a hung-up terminal) is
  dropped, never a reason not to stop.
- Once the drive's loop runs, it writes a heartbeat byte every 0.5 s
  (its watchdog ping). A drive silent for 2 s (hung, or SIGSTOPped) is
  killed (through its pidfd) and the car stopped. Ctrl-Z (SIGTSTP) makes
  the drive set the car safe and write PAUSE before it stops itself.
- Should the sentinel itself die while the drive runs, the drive stops the
  car and exits 1 (:meth:`Sentinel.exited`, checked on SIGCHLD and once
  right after the start); the same when it is SIGSTOPped
  (:meth:`Sentinel.stopped`, checked at each heartbeat).

Killing the drive's process group (``kill -9 -PGID``, a terminal closing)
leaves the sentinel running to stop the car. Killing the unit's cgroup
(systemd's ``KillMode``, ``SIGKILL`` at the stop timeout) kills it too;
under systemd ``ExecStopPost`` covers that.

``rover-calibrate motors`` (:mod:`rover.hw.calibrate_motors`) starts the same
sentinel, which is why it lives in rover.hw (``rover.drive.sentinel`` is
the old name, kept).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from typing import Any, Callable, Mapping, Sequence

from rover.core.errors import EXIT_FAILURE, EXIT_OK, RoverError
from rover.hw.safestop import safe_stop, say  # imported before arming: nothing to load once the drive is dead

PROG = "rover-drive sentinel"
ARMED = b"armed\n"
STAND_DOWN = b"S"
#: The drive's loop writes one every HEARTBEAT_S (``Sentinel.heartbeat``); PAUSE before it stops itself (Ctrl-Z).
HEARTBEAT = b"H"
PAUSE = b"P"
HEARTBEAT_S = 0.5
#: No heartbeat for this long once they have started (a hung or SIGSTOPped drive): kill it and stop the car.
QUIET_S = 2.0
#: Attempts of the safe stop when a pin or the bus is still busy, and the pause between them.
ATTEMPTS = 5
RETRY_S = 0.1
#: Without a pidfd: how often to check whether the drive has gone.
POLL_S = 0.005
_HEADER = struct.Struct("!I")


class Sentinel:
    """The drive's handle on its sentinel process."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process

    @classmethod
    def start(cls, sections: Mapping[str, Any], *, timeout_s: float = 20.0,
              command: Sequence[str] | None = None, keep_fds: Sequence[int] = ()) -> "Sentinel":
        """Start the sentinel for this process with the loaded ``sections``; RoverError if it does not arm.

        ``keep_fds`` are inherited by the sentinel (the drive's lock: held until the car is stopped).
        """
        ready_r, ready_w = os.pipe()
        argv = list(command) if command is not None else [sys.executable, "-m", "rover.hw.sentinel"]
        try:
            process = subprocess.Popen([*argv, str(os.getpid()), str(ready_w)], stdin=subprocess.PIPE,
                                       pass_fds=(ready_w, *keep_fds), start_new_session=True)
        except OSError as exc:
            os.close(ready_r)
            os.close(ready_w)
            raise RoverError(f"cannot start the drive's sentinel ({exc}): not driving without it") from None
        os.close(ready_w)
        sentinel = cls(process)
        try:
            payload = pickle.dumps(dict(sections))
            assert process.stdin is not None
            process.stdin.write(_HEADER.pack(len(payload)) + payload)
            process.stdin.flush()
            if _read_line(ready_r, timeout_s) != ARMED:
                raise RoverError(f"the drive's sentinel (pid {process.pid}) did not arm within {timeout_s:g} s "
                                 f"(exit status {process.poll()}): not driving without it")
            os.set_blocking(process.stdin.fileno(), False)  # a heartbeat never blocks the loop
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            os.close(ready_r)
        return sentinel

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> int | None:
        """The sentinel's exit status once it has exited, else None."""
        return self.process.poll()

    def stopped(self) -> bool:
        """True while the sentinel is stopped (SIGSTOP): alive, but it could not stop the car."""
        try:
            with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as handle:
                return handle.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
        except (OSError, IndexError):
            return False  # exited (exited() says so) or no /proc

    def heartbeat(self) -> None:
        """The loop is alive (call at least every HEARTBEAT_S once driving); never blocks."""
        self._send(HEARTBEAT)

    def pause(self) -> None:
        """This process is about to stop itself (SIGTSTP) with the car safe: no heartbeat until it resumes."""
        self._send(PAUSE)

    def _send(self, byte: bytes) -> None:
        try:
            assert self.process.stdin is not None
            os.write(self.process.stdin.fileno(), byte)
        except (OSError, ValueError):
            pass  # gone (SIGCHLD reports it) or not reading: nothing to wait for here

    def stand_down(self, timeout_s: float = 5.0) -> None:
        """The car is stopped: tell the sentinel so and reap it (call only after a successful close)."""
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(STAND_DOWN)
            self.process.stdin.close()
        except OSError:
            pass  # it is gone already
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def release(self) -> None:
        """Leave the sentinel to stop the car once this process has gone (the close failed): not reaped."""
        try:
            assert self.process.stdin is not None
            self.process.stdin.close()
        except OSError:
            pass


#: Signals whose default action would end a process driving the car without its ``finally``: they must stop the car.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def safe_before_suspend(chassis: Any, sentinel: "Sentinel | None", *, report: Callable[[str], None]) -> None:
    """Ctrl-Z (SIGTSTP) arrived: the car safe first, then PAUSE to the sentinel (no heartbeats from a stopped process).

    Shared by every program that drives the car with a sentinel (rover-drive suspends itself
    afterwards; rover-calibrate motors aborts its run). A failing ``safe()`` is reported, never
    raised: the sentinel's heartbeat check remains.
    """
    if chassis is not None:
        try:
            chassis.safe()
        except Exception as exc:  # noqa: BLE001 - stopping anyway
            report(f"setting the car safe before suspending failed: {exc}")
    if sentinel is not None:
        sentinel.pause()


def _read_line(fd: int, timeout_s: float) -> bytes:
    deadline = time.monotonic() + timeout_s
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return data
        chunk = os.read(fd, 64)
        if not chunk:
            return data
        data += chunk
    return data


# --- the sentinel process ------------------------------------------------------------------


def _read_exact(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux 5.3+, or refused by a seccomp filter
        return None


def wait_for_parent(parent: int, stdin: int, pidfd: int | None, *, poll_s: float = POLL_S,
                    quiet_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> bool:
    """Block until the drive stands down (False) or has gone (True).

    With ``quiet_s``: once heartbeats have started, a drive silent for
    ``quiet_s`` (hung, or stopped by SIGSTOP) is killed, and this returns
    True once it is gone. A PAUSE suspends that until the next heartbeat.
    """
    watched = [stdin] if pidfd is None else [stdin, pidfd]
    last_beat: float | None = None
    while True:
        timeout = None
        if quiet_s is not None and last_beat is not None:
            timeout = max(0.0, last_beat + quiet_s - clock())
        readable = select.select(watched, [], [], timeout)[0]
        if not readable:
            say(f"{PROG}: the drive (pid {parent}) sent no heartbeat for {quiet_s:g} s (hung or stopped): "
                "killing it to stop the car", stream=sys.stderr)
            _kill(parent, pidfd)
            if pidfd is not None:
                select.select([pidfd], [], [])
            else:
                while os.getppid() == parent:
                    time.sleep(poll_s)
            return True
        if stdin in readable:  # first: a stand-down written just before a clean exit wins
            data = os.read(stdin, 64)
            if STAND_DOWN in data:
                return False
            if not data:  # end of file: the drive is exiting (its files are being closed)
                if pidfd is None:
                    while os.getppid() == parent:  # re-parented once it has fully exited
                        time.sleep(poll_s)
                    return True
                watched = [pidfd]
                continue
            for byte in data:
                if byte == PAUSE[0]:
                    last_beat = None
                elif byte == HEARTBEAT[0]:
                    last_beat = clock()
            continue
        if pidfd is not None and pidfd in readable:
            return True


def _kill(parent: int, pidfd: int | None) -> None:
    """SIGKILL the drive: through its pidfd (never a recycled pid), else only while it is still our parent."""
    try:
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        elif os.getppid() == parent:
            os.kill(parent, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # gone already


def stop_car(sections: Mapping[str, Any], *, stop: Callable[[Mapping[str, Any]], list[str]] | None = None,
             attempts: int = ATTEMPTS, retry_s: float = RETRY_S, sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """The safe stop, retried while a part fails (a pin still busy); the last attempt's failures."""
    if stop is None:
        stop = safe_stop
    failures: list[str] = []
    for attempt in range(attempts):
        failures = stop(sections)
        if not failures:
            break
        if attempt + 1 < attempts:
            sleep(retry_s)
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parent, ready = int(args[0]), int(args[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    stdin = sys.stdin.fileno()
    try:
        (size,) = _HEADER.unpack(_read_exact(stdin, _HEADER.size))
        sections = pickle.loads(_read_exact(stdin, size))  # from our own parent, over a private pipe
    except EOFError:
        return EXIT_OK  # the drive died before it opened anything
    pidfd = _open_pidfd(parent)
    gone = os.getppid() != parent  # died before the pidfd was open
    try:
        os.write(ready, ARMED)
    except OSError:
        gone = True
    os.close(ready)
    if not gone and not wait_for_parent(parent, stdin, pidfd, quiet_s=QUIET_S):
        return EXIT_OK  # stood down: the drive stopped the car itself
    failures = stop_car(sections)  # first: reporting can never prevent a stop
    say(f"{PROG}: the drive (pid {parent}) exited without confirming the car stopped: "
        f"{'stopping it failed' if failures else 'stopped it'}", stream=sys.stderr)
    for line in failures:
        say(f"{PROG}: {line}; run rover-safestop", stream=sys.stderr)
    return EXIT_FAILURE if failures else EXIT_OK


def _exit(code: int) -> None:
    """Exit with ``code`` even if the terminal is gone (a failed flush at shutdown would make it 120)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
