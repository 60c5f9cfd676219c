"""The safety review's findings, as the behaviour a user relies on (each failed before its fix).

A terminal closing (SIGHUP to the process group) or Ctrl-\\ still stops the
car; a sentinel on a hung-up terminal still stops it; a stop never passes the
2024 kit's motors through a drive state; an unknown range blocks; a bumper
without its sensor is refused; an ipc:// stream cannot be taken over; two
drives never command one car; a sentinel dying before the SIGCHLD handler is
noticed. End to end over the file-backed fakes and real ZeroMQ sockets where
a process is involved, in process otherwise.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq

from rover.core import endpoints as rover_endpoints
from rover.drive.config import DriveConfig
from rover.hw.config_b2 import PicarB2Config
from rover.hw.pca9685 import PCA9685
from rover.hw.picar_b2 import open_picar_b2
from rover.hw.safestop import centre_servos, stop_picar_b2
from tests.fakehw.fakeclock import TickClock
from tests.fakehw.fakehw_state import pid_alive
from tests.fakehw.smbus2 import I2CWorld, SMBus
from tests.fixtures_drive import FakeHwEnv
from tests.test_drive_cli import REPO, WAIT_S, FakeDetector, StatusWatcher, _hermetic, restore_signals  # noqa: F401
from tests.test_drive_fakes import person
from tests.test_drive_loop import Rig
from tests.test_drive_sentinel import children

B2 = 0x5F
MOTORS = (15, 14, 12, 13)  # M1+, M1-, M2+, M2- on the stock HAT
CONFIG_B2 = '[drive]\nbackend = "picar-b2"\nbumper_m = 0\n[picar_b2]\nultrasonic_enabled = false\n'


def motors(state_path: Path) -> tuple[int, ...]:
    chip = I2CWorld(state_path, devices={1: [B2]}).chip(1, B2)
    return tuple(chip.pulse_ticks(ch) for ch in MOTORS)


def follow(tmp_path: Path, env: dict, config: str = CONFIG_B2, **popen) -> tuple[subprocess.Popen, int, FakeDetector]:
    """A 2024-kit drive on the fakes, following a person with its motors running; its sentinel's pid."""
    connect, publish = f"ipc://{tmp_path}/detections", f"ipc://{tmp_path}/drive"
    detector = FakeDetector(connect, lambda: [person(centre_x=0.5, height=0.2)])
    cfg = tmp_path / "rover.toml"
    cfg.write_text(config)
    args = _hermetic(("--config", str(cfg), "--connect", connect, "--publish", publish))
    drive = subprocess.Popen([sys.executable, "-m", "rover.drive", *args], cwd=REPO,
                             env=dict(env, ROVER_FAKEHW_I2C="0x5f"), **popen)
    watcher = StatusWatcher(publish)
    try:
        watcher.wait_for(lambda s: s.state == "FOLLOWING" and s.throttle > 0.1, drive)
    except BaseException:
        detector.close()
        drive.kill()
        raise
    finally:
        watcher.close()
    sentinels = children(drive.pid)
    return drive, (sentinels[0] if sentinels else -1), detector


def wait_gone(pid: int, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not pid_alive(pid)


def wait_stopped(state_path: Path, timeout: float = WAIT_S) -> tuple[int, ...]:
    deadline = time.monotonic() + timeout
    seen = motors(state_path)
    while seen != (0, 0, 0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = motors(state_path)
    return seen


# --- 1: the terminal closing, Ctrl-\, kill -9 of the process group ----------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGQUIT, signal.SIGKILL], ids=["SIGHUP", "SIGQUIT", "SIGKILL"])
def test_a_signal_to_the_drives_process_group_stops_the_b2_motors(fakehw_env: FakeHwEnv, tmp_path: Path,
                                                                  signum: int) -> None:
    """SIGHUP: an SSH session dropping; SIGQUIT: Ctrl-\\; SIGKILL: kill -9 -PGID. The sentinel is in its own
    session, so it survives all three; the drive handles the first two like SIGTERM."""
    drive, sentinel, det = follow(tmp_path, fakehw_env.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
    try:
        assert sentinel > 0 and os.getsid(sentinel) != os.getsid(drive.pid)
        assert motors(fakehw_env.state_path) != (0, 0, 0, 0)
        os.killpg(drive.pid, signum)
        drive.wait(timeout=WAIT_S)
        assert wait_stopped(fakehw_env.state_path) == (0, 0, 0, 0)
        assert wait_gone(sentinel)  # stood down (clean exit) or done (killed drive): no orphan
        if signum != signal.SIGKILL:
            assert drive.returncode == 0  # the finally ran: the drive stopped the car itself
    finally:
        det.close()
        if drive.poll() is None:
            drive.kill()


# --- 2: a report that cannot be written never prevents a stop ------------------------------------------------


@pytest.mark.slow
def test_a_sentinel_on_a_hung_up_terminal_still_stops_the_car(fakehw_env: FakeHwEnv, tmp_path: Path) -> None:
    """stdout and stderr on a pty whose master is closed (SSH gone): every write fails with EIO."""
    master, slave = pty.openpty()
    drive, sentinel, det = follow(tmp_path, fakehw_env.env, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        os.close(master)  # hang-up
        time.sleep(0.3)
        drive.send_signal(signal.SIGKILL)
        drive.wait(timeout=WAIT_S)
        assert wait_gone(sentinel)
        assert motors(fakehw_env.state_path) == (0, 0, 0, 0)
        chip = I2CWorld(fakehw_env.state_path, devices={1: [B2]}).chip(1, B2)
        assert chip.pulse_ticks(0) == 297  # and the steering centred
    finally:
        det.close()
        if drive.poll() is None:
            drive.kill()


class HungUp(io.TextIOBase):
    """A terminal that has gone: every write raises EIO."""

    def write(self, text: str) -> int:
        raise OSError(errno.EIO, "Input/output error")


def test_safestop_stops_and_centres_when_its_reports_cannot_be_written(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = TickClock()
    world = I2CWorld(clock=clock, devices={1: [B2]})
    config = PicarB2Config(ultrasonic_enabled=False)
    prev = open_picar_b2(config, bus=SMBus(1, world=world), sleep=clock.sleep)
    prev.drive(0.8)
    prev.steer(-1.0)
    prev._abandon()
    monkeypatch.setattr(sys, "stdout", HungUp())
    monkeypatch.setattr(sys, "stderr", HungUp())
    assert stop_picar_b2(config, bus=SMBus(1, world=world), sleep=clock.sleep) == []
    chip = world.chip(1, B2)
    assert tuple(chip.pulse_ticks(c) for c in MOTORS) == (0, 0, 0, 0)
    assert [chip.pulse_ticks(c) for c in (0, 1, 2)] == [297, 297, 297]


# --- 6: the 2024 kit's motors stop in one transaction -----------------------------------------------------------


def running_b2() -> tuple[I2CWorld, TickClock, PicarB2Config]:
    """A 2024 kit whose drive was killed at throttle 0.8: both motors left running forward."""
    clock = TickClock()
    world = I2CWorld(clock=clock, devices={1: [B2]})
    config = PicarB2Config(ultrasonic_enabled=False)
    prev = open_picar_b2(config, bus=SMBus(1, world=world), sleep=clock.sleep)
    prev.drive(0.8)
    prev._abandon()
    assert tuple(world.chip(1, B2).pulse_ticks(c) for c in MOTORS) == (4096, 819, 819, 4096)
    return world, clock, config


def test_the_b2_safe_stop_never_passes_a_motor_through_a_drive_state() -> None:
    world, clock, config = running_b2()
    chip = world.chip(1, B2)
    n = len(chip.transactions())
    assert stop_picar_b2(config, bus=SMBus(1, world=world), sleep=clock.sleep) == []
    after = chip.pulses_after_each_transaction(MOTORS)[n:]  # what a scope on the inputs shows, write by write
    assert after and all(row == (0, 0, 0, 0) for row in after), after


def test_one_all_led_off_byte_stops_every_motor_input_and_the_servos_are_centred_after() -> None:
    world, clock, config = running_b2()
    chip = world.chip(1, B2)
    n = len(chip.transactions())
    bus = SMBus(1, world=world)
    PCA9685(bus, B2).all_off()
    assert len(chip.transactions()) == n + 1
    assert tuple(chip.pulse_ticks(c) for c in (*MOTORS, 0)) == (0, 0, 0, 0, 0)
    assert chip.pulses_after_each_transaction(MOTORS)[-1] == (0, 0, 0, 0)  # the fake's replay agrees
    centre_servos(bus, config, sleep=clock.sleep)
    assert tuple(chip.pulse_ticks(c) for c in (*MOTORS, 0)) == (0, 0, 0, 0, 297) and chip.violations() == []


def test_a_bus_error_while_opening_the_b2_never_leaves_a_motor_running() -> None:
    from rover.core.errors import HardwareError

    world, clock, config = running_b2()
    chip = world.chip(1, B2)

    class Glitchy(SMBus):
        """One NACK on the open's first write, whatever it is (a byte or a block)."""
        failed = False

        def _glitch(self) -> None:
            if not Glitchy.failed:
                Glitchy.failed = True
                raise OSError(errno.EREMOTEIO, "Remote I/O error")

        def write_byte_data(self, addr, reg, value, force=None):
            self._glitch()
            return super().write_byte_data(addr, reg, value, force)

        def write_i2c_block_data(self, addr, reg, data, force=None):
            self._glitch()
            return super().write_i2c_block_data(addr, reg, data, force)

    try:
        open_picar_b2(config, bus=Glitchy(1, world=world), sleep=clock.sleep).close()
    except HardwareError:
        pass  # refusing is fine; a motor left driven is not
    assert Glitchy.failed
    assert tuple(chip.pulse_ticks(c) for c in MOTORS) == (0, 0, 0, 0)


# --- 3: the bumper: unknown blocks, far is far, a bumper without its sensor is refused ----------------------


def test_an_unknown_range_from_a_fitted_sensor_blocks_forward_motion(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(DriveConfig(bumper_m=0.3))
    rig.chassis.has_ranger = True
    rig.chassis.distance = None  # unplugged, stuck echo, readings stale, or the ranger thread dead
    rig.play(lambda t: [person(0.5, 0.2)], 0.0, 4.0)
    with caplog.at_level(logging.WARNING, logger="rover.drive"):
        rig.run_for(3.0)
    assert rig.chassis.throttle == 0.0 and not any(v > 0 for _, kind, v in rig.chassis.history if kind == "throttle")
    assert [r.getMessage() for r in caplog.records].count(
        "ultrasonic range unknown (no valid reading): forward motion blocked by the bumper until it reads again") == 1
    rig.chassis.distance = float("inf")  # nothing in range: clear
    rig.run_for(0.5)
    assert rig.chassis.throttle > 0


def test_a_fitted_sensor_reporting_far_lets_the_car_follow() -> None:
    rig = Rig(DriveConfig(bumper_m=0.3))
    rig.chassis.has_ranger = True
    rig.chassis.distance = float("inf")  # the 2024 kit: anything beyond 2 m
    rig.play(lambda t: [person(0.5, 0.2)], 0.0, 4.0)
    rig.run_for(2.0)
    assert rig.chassis.throttle > 0
    assert rig.status()["obstacle_m"] is None  # the schema's "no number": nothing measured in range


def test_an_unplugged_sensor_on_the_fake_picar_reports_unknown_and_says_it_is_fitted() -> None:
    from rover.hw.config import PicarBConfig
    from tests.fixtures_drive import build_fake_picar

    car = build_fake_picar(PicarBConfig(), obstacle_m=None)
    try:
        assert car.chassis.has_ranger and car.chassis.distance_m() is None
    finally:
        car.chassis.close()
    car = build_fake_picar(PicarBConfig(ultrasonic_enabled=False))
    try:
        assert not car.chassis.has_ranger
    finally:
        car.chassis.close()


@pytest.mark.parametrize("backend, section", [("picar-b", "picar_b"), ("picar-b2", "picar_b2")])
@pytest.mark.usefixtures("restore_signals")
def test_a_bumper_with_the_kits_sensor_disabled_is_refused_naming_the_way_out(
        tmp_path: Path, capsys: pytest.CaptureFixture, backend: str, section: str) -> None:
    from rover.drive.__main__ import main

    cfg = tmp_path / "rover.toml"
    cfg.write_text(f'[drive]\nbackend = "{backend}"\n[{section}]\nultrasonic_enabled = false\n')
    assert main(["--config", str(cfg), "--connect", f"ipc://{tmp_path}/d", "--publish", ""]) == 78
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "drive.bumper_m = 0" in err and f"{section}.ultrasonic_enabled = false" in err


class RecordingSentinel:
    """Stands in for the sentinel process: records whether the drive stood it down or left it armed."""

    calls: list[str] = []
    pid = 4242

    @classmethod
    def start(cls, sections, **kwargs) -> "RecordingSentinel":
        return cls()

    def exited(self) -> None:
        return None

    def stand_down(self) -> None:
        self.calls.append("stand_down")

    def release(self) -> None:
        self.calls.append("release")


@pytest.mark.usefixtures("restore_signals")
@pytest.mark.parametrize("touched, expected", [(True, "release"), (False, "stand_down")])
def test_an_open_that_failed_after_touching_the_chip_leaves_the_sentinel_armed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture, touched: bool,
        expected: str) -> None:
    """A failed open may have left a motor driven: the sentinel stops the car once the drive has exited.
    An open that never reached the chip (no bus, no library) stands it down: nothing to stop."""
    import rover.drive.__main__ as drive_main
    from rover.core.errors import HardwareError

    def failing_open(name, config):
        error = HardwareError("PCA9685 at 0x5f did not answer (Remote I/O error)")
        if touched:
            error.hardware_touched = True
        raise error

    RecordingSentinel.calls = []
    monkeypatch.setattr(drive_main, "Sentinel", RecordingSentinel)
    monkeypatch.setattr(drive_main, "open_backend", failing_open)
    cfg = tmp_path / "rover.toml"
    cfg.write_text(CONFIG_B2)
    assert drive_main.main(["--config", str(cfg), "--connect", f"ipc://{tmp_path}/d", "--publish", ""]) == 1
    assert RecordingSentinel.calls == [expected]
    assert "did not answer" in capsys.readouterr().err


def test_a_failed_b2_open_after_the_chip_answered_is_marked_for_the_sentinel() -> None:
    from rover.core.errors import HardwareError

    world, clock, config = running_b2()

    class DeadAfterStop(SMBus):
        """The bus fails every block write (the servo centring, the motor zeros) after the all-off bytes."""

        def write_i2c_block_data(self, addr, reg, data, force=None):
            raise OSError(errno.EREMOTEIO, "Remote I/O error")

    with pytest.raises(HardwareError) as caught:
        open_picar_b2(config, bus=DeadAfterStop(1, world=world), sleep=clock.sleep)
    assert getattr(caught.value, "hardware_touched", False)


# --- 4: ipc:// streams cannot be taken over; one drive per car -------------------------------------------------


def test_a_second_bind_of_a_live_ipc_path_is_address_in_use(tmp_path: Path) -> None:
    context = zmq.Context()
    first, second = context.socket(zmq.PUB), context.socket(zmq.PUB)
    try:
        rover_endpoints.bind(first, f"ipc://{tmp_path}/detections")
        with pytest.raises(zmq.ZMQError) as caught:
            rover_endpoints.bind(second, f"ipc://{tmp_path}/detections")
        assert caught.value.errno == zmq.EADDRINUSE
        first.close(0)  # ZeroMQ closes the listener in its I/O thread, a moment later
        deadline = time.monotonic() + WAIT_S
        while True:  # then the file left behind is stale, and is reused
            try:
                rover_endpoints.bind(second, f"ipc://{tmp_path}/detections")
                break
            except zmq.ZMQError:
                assert time.monotonic() < deadline, "the path stayed in use after its socket closed"
                time.sleep(0.01)
    finally:
        first.close(0)
        second.close(0)
        context.term()


def test_a_second_detection_publisher_on_a_live_ipc_path_is_refused(tmp_path: Path) -> None:
    """The detector (or rover replay, whose default --publish is ipc://detections) must not take a live stream."""
    from rover.core.errors import ConfigError
    from rover.detector.publisher import DetectionPublisher

    with DetectionPublisher(f"ipc://{tmp_path}/detections"):
        with pytest.raises(ConfigError, match="cannot be bound"):
            DetectionPublisher(f"ipc://{tmp_path}/detections")


@pytest.mark.slow
def test_two_drives_never_command_one_car(fakehw_env: FakeHwEnv, tmp_path: Path) -> None:
    first, sentinel, det = follow(tmp_path, fakehw_env.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cfg = tmp_path / "rover.toml"  # the same config, its own endpoints: only the car is shared
        second = subprocess.run([sys.executable, "-m", "rover.drive", "--config", str(cfg), "--connect",
                                 f"ipc://{tmp_path}/other", "--publish", f"ipc://{tmp_path}/other-status"],
                                capture_output=True, text=True, timeout=60, cwd=REPO,
                                env=dict(fakehw_env.env, ROVER_FAKEHW_I2C="0x5f"))
        assert second.returncode == 1 and second.stderr.count("\n") == 1, second.stderr
        assert f"another rover-drive (pid {first.pid})" in second.stderr
        assert first.poll() is None and motors(fakehw_env.state_path) != (0, 0, 0, 0)  # the first drives on
    finally:
        det.close()
        first.terminate()
        first.wait(timeout=WAIT_S)


@pytest.mark.slow
def test_a_second_drive_publishing_on_the_same_status_path_is_refused(tmp_path: Path) -> None:
    connect, publish = f"ipc://{tmp_path}/detections", f"ipc://{tmp_path}/drive"
    cfg = tmp_path / "e.toml"
    cfg.write_text("")
    argv = [sys.executable, "-m", "rover.drive", "--config", str(cfg), "--backend", "log",
            "--connect", connect, "--publish", publish]
    first = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watcher = StatusWatcher(publish)
    try:
        watcher.wait_for(lambda s: True, first)
        second = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)
        assert second.returncode == 1 and "address in use (another rover-drive running?)" in second.stderr, second.stderr
        assert first.poll() is None
    finally:
        watcher.close()
        first.terminate()
        first.wait(timeout=WAIT_S)


# --- 7: a sentinel dying before the SIGCHLD handler existed ---------------------------------------------------


def test_a_sentinel_dead_before_the_sigchld_handler_is_noticed(tmp_path: Path) -> None:
    code = r"""
import os, signal, sys, time, threading
import rover.drive.__main__ as m
from rover.drive import sentinel as s
real_start = s.Sentinel.start
def start(*a, **k):
    sent = real_start(*a, **k)
    os.kill(sent.pid, signal.SIGKILL); sent.process.wait()  # reaped here: no SIGCHLD reaches a handler later
    return sent
m.Sentinel.start = start
def later():
    time.sleep(20); os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=later, daemon=True).start()
sys.exit(m.main(sys.argv[1:]))
"""
    cfg = tmp_path / "e.toml"
    cfg.write_text("")
    done = subprocess.run([sys.executable, "-c", code, "--config", str(cfg), "--backend", "log",
                           "--connect", f"ipc://{tmp_path}/d", "--publish", ""],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 1 and "sentinel" in done.stderr and "died" in done.stderr, done.stderr


# --- 5: a stopped or hung drive outside systemd -----------------------------------------------------------------


def proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.slow
def test_a_sigstopped_drive_is_killed_by_its_sentinel_which_stops_the_car(fakehw_env: FakeHwEnv, tmp_path: Path) -> None:
    """SIGSTOP cannot be caught: the loop's heartbeat stops, and the sentinel acts after 2 s of quiet."""
    drive, sentinel, det = follow(tmp_path, fakehw_env.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert motors(fakehw_env.state_path) != (0, 0, 0, 0)
        os.kill(drive.pid, signal.SIGSTOP)
        drive.wait(timeout=WAIT_S)
        assert drive.returncode == -signal.SIGKILL
        assert wait_stopped(fakehw_env.state_path) == (0, 0, 0, 0)
        assert wait_gone(sentinel)
    finally:
        det.close()
        if drive.poll() is None:
            os.kill(drive.pid, signal.SIGCONT)
            drive.kill()


@pytest.mark.slow
def test_ctrl_z_sets_the_car_safe_before_the_drive_stops_and_it_follows_again_after_fg(
        fakehw_env: FakeHwEnv, tmp_path: Path) -> None:
    drive, sentinel, det = follow(tmp_path, fakehw_env.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    publish = f"ipc://{tmp_path}/drive"
    try:
        os.kill(drive.pid, signal.SIGTSTP)
        deadline = time.monotonic() + WAIT_S
        while proc_state(drive.pid) != "T" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc_state(drive.pid) == "T"
        assert motors(fakehw_env.state_path) == (0, 0, 0, 0)  # safe before it stopped
        time.sleep(3.0)  # longer than the sentinel's quiet limit: paused, it leaves a suspended drive alone
        assert proc_state(drive.pid) == "T" and pid_alive(sentinel)
        os.kill(drive.pid, signal.SIGCONT)
        watcher = StatusWatcher(publish)
        try:
            watcher.wait_for(lambda s: s.state == "FOLLOWING" and s.throttle > 0.1, drive)
        finally:
            watcher.close()
        deadline = time.monotonic() + WAIT_S
        while motors(fakehw_env.state_path) == (0, 0, 0, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert motors(fakehw_env.state_path) != (0, 0, 0, 0)  # the commands were sent again after the resume
        drive.terminate()
        drive.wait(timeout=WAIT_S)
        assert drive.returncode == 0 and motors(fakehw_env.state_path) == (0, 0, 0, 0)
    finally:
        det.close()
        if drive.poll() is None:
            os.kill(drive.pid, signal.SIGCONT)
            drive.kill()


@pytest.mark.slow
def test_a_stopped_sentinel_stops_the_drive_and_the_car(fakehw_env: FakeHwEnv, tmp_path: Path) -> None:
    drive, sentinel, det = follow(tmp_path, fakehw_env.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
    try:
        os.kill(sentinel, signal.SIGSTOP)
        _, err = drive.communicate(timeout=WAIT_S)
        assert drive.returncode == 1 and "sentinel" in err and "is stopped (SIGSTOP)" in err, err
        assert motors(fakehw_env.state_path) == (0, 0, 0, 0)  # the drive stopped the car itself
    finally:
        det.close()
        if pid_alive(sentinel):
            os.kill(sentinel, signal.SIGCONT)
        if drive.poll() is None:
            drive.kill()
        wait_gone(sentinel)
