"""rover-drive as a program: refusals, signals, exceptions, and the whole chain over real ZeroMQ."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import zmq

import rover.hw
from rover.core.errors import EXIT_CONFIG, HardwareError
from rover.core.messages import ModelRef
from rover.drive.__main__ import main
from rover.drive.status import decode as decode_status
from rover.hw.config import PicarBConfig
from tests.test_drive_fakes import MODEL, FakeClock, RecordingChassis, detection_bytes, person

REPO = Path(__file__).resolve().parents[1]
WAIT_S = 30.0  # generous: other engineers' tests share the CPU; nothing here asserts a duration


_EMPTY_CONFIG: list[Path] = []


@pytest.fixture(autouse=True, scope="module")
def _empty_config(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("drive-cli") / "empty.toml"
    path.write_text("")
    _EMPTY_CONFIG[:] = [path]


def _hermetic(args: tuple[str, ...]) -> list[str]:
    """Never read this machine's /etc/rover/rover.toml: an empty config unless the test gives one."""
    return list(args) if "--config" in args else ["--config", str(_EMPTY_CONFIG[0]), *args]


def run_drive(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rover.drive", *_hermetic(args)], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=env)


def start_drive(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rover.drive", *_hermetic(args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)


class FakeDetector:
    """Publishes detection messages of ``scene()`` at 10 Hz on a real PUB socket, from a thread."""

    def __init__(self, endpoint: str, scene: Callable[[], list], model: ModelRef = MODEL) -> None:
        self.model = model
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(endpoint)
        self.scene = scene
        self.running = threading.Event()
        self.running.set()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        seq = 0
        while not self.stopped.is_set():
            if self.running.is_set():
                capture = time.monotonic() - 0.03  # same host, same monotonic clock as the drive
                self.socket.send(detection_bytes(self.scene(), t_capture_s=capture, seq=seq, model=self.model))
                seq += 1
            time.sleep(0.1)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.socket.close()
        self.context.term()


class StatusWatcher:
    """Subscribes to the drive's status stream."""

    def __init__(self, endpoint: str) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"drive ")
        self.socket.connect(endpoint)

    def wait_for(self, predicate: Callable[[Any], bool], process: subprocess.Popen, timeout_s: float = WAIT_S) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert process.poll() is None, f"rover-drive exited early: {process.communicate()}"
            if self.socket.poll(100):
                status = decode_status(self.socket.recv())
                if predicate(status):
                    return status
        raise AssertionError("the drive status never showed the expected state")

    def close(self) -> None:
        self.socket.close()
        self.context.term()


@pytest.fixture
def endpoints(tmp_path: Path) -> tuple[str, str]:
    return f"ipc://{tmp_path}/detections", f"ipc://{tmp_path}/drive"


@pytest.fixture
def left_person_detector(endpoints: tuple[str, str]) -> Iterator[FakeDetector]:
    detector = FakeDetector(endpoints[0], lambda: [person(centre_x=0.25, height=0.2)])
    yield detector
    detector.close()


def stop(process: subprocess.Popen, signum: int = signal.SIGTERM) -> tuple[int, str, str]:
    process.send_signal(signum)
    out, err = process.communicate(timeout=WAIT_S)
    return process.returncode, out, err


# --- refusals: one line, exit 78, nothing opened ------------------------------------------


@pytest.mark.slow
def test_a_label_no_model_has_is_refused_before_the_car_is_opened() -> None:
    result = run_drive("--follow", "persn", "--backend", "log")
    assert result.returncode == EXIT_CONFIG
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'persn'" in lines[0] and "did you mean 'person'" in lines[0]
    assert "person" in lines[0].split("labels are:")[1]
    assert "log-chassis" not in result.stdout  # no chassis was opened


@pytest.mark.slow
def test_a_bad_config_key_is_refused_with_its_name(tmp_path: Path) -> None:
    config = tmp_path / "rover.toml"
    config.write_text("[drive]\nmax_speed = 0.5\n")
    result = run_drive("--config", str(config), "--backend", "log")
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.count("\n") == 1 and "drive.max_speed" in result.stderr and "Traceback" not in result.stderr
    config.write_text("[drive]\ndeadman_s = 0.01\ntick_s = 0.05\n")
    result = run_drive("--config", str(config), "--backend", "log")
    assert result.returncode == EXIT_CONFIG and "deadman_s" in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("RPi") is not None, reason="RPi.GPIO is installed: this would drive a real car")
def test_picar_b_without_rpi_gpio_names_the_dry_run() -> None:
    result = run_drive("--backend", "picar-b")
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "--backend log" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        # rpi-lgpio: lgpio creates its notify pipe in the working directory at import
        ("FileNotFoundError(2, 'No such file or directory', '.lgd-nfy-3')", "writable working directory"),
        ("RuntimeError('No access to /dev/mem.  Try running as root!')", "sudo adduser $USER gpio"),
        ("type('error', (Exception,), {})('GPIO busy')", "RPi.GPIO cannot be loaded (error: GPIO busy)"),
    ],
    ids=["lgpio-cwd", "dev-mem", "lgpio-error"],
)
def test_a_gpio_library_failing_at_import_is_one_hardware_line(tmp_path: Path, raised: str, expected: str) -> None:
    gpio = tmp_path / "vendor" / "RPi"
    gpio.mkdir(parents=True)
    (gpio / "__init__.py").write_text("")
    (gpio / "GPIO.py").write_text(f"raise {raised}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "vendor"), str(REPO)])}
    result = run_drive("--backend", "picar-b", env=env)
    assert result.returncode == 1, result.stderr  # HardwareError
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("rover-drive: RPi.GPIO") and expected in result.stderr
    assert "--backend log" in result.stderr


def open_broken(config: PicarBConfig, **_kwargs: Any) -> Any:
    raise OSError(121, "Remote I/O error")  # e.g. a library call on a device that is not there


def test_any_exception_while_the_chassis_opens_is_one_hardware_line(monkeypatch: pytest.MonkeyPatch,
                                                                      restore_signals: None,
                                                                      capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(rover.hw.BACKENDS, "broken", f"{__name__}:open_broken")
    code = main(["--config", str(_EMPTY_CONFIG[0]), "--backend", "broken", "--connect", "ipc:///nonexistent/x", "--publish", ""])
    assert code == HardwareError.exit_code
    assert capsys.readouterr().err == (
        "rover-drive: chassis backend 'broken' cannot be opened (OSError: [Errno 121] Remote I/O error); "
        "use --backend log for a dry run\n"
    )


@pytest.mark.slow
def test_a_label_the_streams_model_lacks_stops_the_drive_listing_the_models_labels(endpoints: tuple[str, str]) -> None:
    connect, publish = endpoints
    animals = ModelRef("pets-detector", "int8", "1" * 64, labels=("cat", "dog"))
    detector = FakeDetector(connect, lambda: [("cat", 0.9, (0.4, 0.2, 0.6, 0.8))], model=animals)
    try:
        result = run_drive("--backend", "log", "--follow", "person", "--connect", connect, "--publish", publish)
    finally:
        detector.close()
    assert result.returncode == EXIT_CONFIG
    assert "'person'" in result.stderr and "cat, dog" in result.stderr and "Traceback" not in result.stderr
    lines = log_lines(result.stdout)
    assert lines[-1].startswith("close motors=stopped")
    assert not any(line.startswith("drive throttle=+0.") and "duty=0%" not in line for line in lines)  # never moved


# --- the log backend over real ZeroMQ -----------------------------------------------------


def log_lines(stdout: str) -> list[str]:
    return [line.split(" ", 2)[2] for line in stdout.splitlines() if line.startswith("log-chassis ")]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_following_exits_0_with_outputs_safe(endpoints: tuple[str, str], left_person_detector: FakeDetector, signum: int) -> None:
    connect, publish = endpoints
    process = start_drive("--backend", "log", "--connect", connect, "--publish", publish)
    watcher = StatusWatcher(publish)
    try:
        status = watcher.wait_for(lambda s: s.state == "FOLLOWING" and s.throttle > 0.1 and s.steering > 0.1, process)
        assert status.target is not None and status.counters["fresh"] >= 4
        code, out, err = stop(process, signum)
    finally:
        watcher.close()
        if process.poll() is None:
            process.kill()
    assert code == 0, err
    lines = log_lines(out)
    assert lines[0].startswith("open") and lines[1].startswith("safe")  # neutral before any socket opened
    steering = [int(line.split("ticks=")[1].split()[0]) for line in lines if line.startswith("steering ticks=")]
    assert max(steering) > 300  # turned left of the 300-tick centre (steering_direction 1)
    assert any(line.startswith("drive throttle=+0.") and "duty=0%" not in line for line in lines)
    assert lines[-2] == "safe motors=stopped steering=300/300 pan=300/300 tilt=300/300 (ticks now/centre)"
    assert lines[-1].startswith("close motors=stopped steering=300/300")
    assert "Traceback" not in err


@pytest.mark.slow
def test_the_detector_going_quiet_stops_the_car(endpoints: tuple[str, str], left_person_detector: FakeDetector) -> None:
    connect, publish = endpoints
    process = start_drive("--backend", "log", "--connect", connect, "--publish", publish)
    watcher = StatusWatcher(publish)
    try:
        watcher.wait_for(lambda s: s.state == "FOLLOWING" and s.throttle > 0.1, process)
        left_person_detector.running.clear()
        status = watcher.wait_for(lambda s: s.state == "SAFE", process)
        assert status.throttle == 0.0 and status.steering == 0.0
        assert status.detection_age_ms is not None and status.detection_age_ms >= status.limits.deadman_ms - 1
        code, out, err = stop(process)
    finally:
        watcher.close()
        if process.poll() is None:
            process.kill()
    assert code == 0, err
    assert "back to SAFE" in err


# --- an exception anywhere stops the car --------------------------------------------------

_FLAKY: list[RecordingChassis] = []


class FlakyChassis(RecordingChassis):
    """A car whose ultrasonic read fails on its third call (``error`` is raised)."""

    error: Exception = HardwareError("ultrasonic: echo pin stuck high")

    def distance_m(self) -> float | None:
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls >= 3:
            raise self.error
        return None


def open_flaky(config: PicarBConfig, **_: Any) -> RecordingChassis:
    chassis = FlakyChassis(FakeClock())
    _FLAKY.append(chassis)
    return chassis


@pytest.fixture
def restore_signals() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                                               signal.SIGCHLD, signal.SIGTSTP)}  # what main() installs
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


@pytest.mark.slow
@pytest.mark.parametrize("error", [HardwareError("ultrasonic: echo pin stuck high"), RuntimeError("a bug")])
def test_an_exception_in_the_loop_closes_the_chassis(monkeypatch: pytest.MonkeyPatch, endpoints: tuple[str, str],
                                                     restore_signals: None, error: Exception, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(rover.hw.BACKENDS, "flaky", f"{__name__}:open_flaky")
    monkeypatch.setattr(FlakyChassis, "error", error)
    _FLAKY.clear()
    code = main(["--config", str(_EMPTY_CONFIG[0]), "--backend", "flaky", "--connect", endpoints[0], "--publish", ""])
    assert code == 1
    (chassis,) = _FLAKY
    assert chassis.closed and chassis.neutral
    if isinstance(error, HardwareError):
        assert capsys.readouterr().err.strip() == "rover-drive: ultrasonic: echo pin stuck high"


# --- the real picar-b backend on the fake RPi.GPIO and PCA9685 ----------------------------


@pytest.mark.slow
@pytest.mark.parametrize("direction", [1, -1])
def test_picar_b_on_fake_hardware_steers_left_then_sigterm_leaves_it_safe(
    endpoints: tuple[str, str], left_person_detector: FakeDetector, fakehw_env: Any, tmp_path: Path, direction: int
) -> None:
    config_path = tmp_path / "rover.toml"
    config_path.write_text(f"[drive]\nbumper_m = 0\n[picar_b]\nultrasonic_enabled = false\nsteering_direction = {direction}\n")
    config = PicarBConfig(ultrasonic_enabled=False, steering_direction=direction)
    connect, publish = endpoints
    process = start_drive("--config", str(config_path), "--backend", "picar-b", "--connect", connect,
                          "--publish", publish, env=fakehw_env.env)
    watcher = StatusWatcher(publish)
    try:
        watcher.wait_for(lambda s: s.state == "FOLLOWING" and s.steering > 0.3 and s.throttle > 0.1, process)
        chip, board = fakehw_env.chip(), fakehw_env.board()
        steering = config.servo("steering")
        # Left is centre + range * direction: above the centre on a stock kit, below it with direction -1.
        assert (chip.pulse_ticks(steering.channel) - steering.centre) * direction > 0
        assert any(duty > 0 for duty in board.duties(config.right_enable_pin))
        code, out, err = stop(process)
    finally:
        watcher.close()
        if process.poll() is None:
            process.kill()
    assert code == 0, err
    chip, board = fakehw_env.chip(), fakehw_env.board()
    assert chip.pulse_ticks(steering.channel) == steering.centre
    assert chip.pulse_ticks(config.servo("pan").channel) == config.servo("pan").centre
    for pin in (config.right_enable_pin, config.left_enable_pin):
        assert board.duties(pin)[-1] == 0
        assert board.pin(pin).level in (0, None) and board.pin(pin).duty in (0, None)
    for pin in config.motor_pins:
        assert board.pin(pin).level in (0, None)


# --- the picar-b2 backend (kit sold since 2024) on the fake PCA9685 at 0x5f -----------------


@pytest.mark.slow
def test_picar_b2_on_fake_hardware_follows_then_sigterm_zeroes_the_motor_channels(
    endpoints: tuple[str, str], left_person_detector: FakeDetector, fakehw_env: Any, tmp_path: Path
) -> None:
    from tests.fakehw.smbus2 import I2CWorld

    config_path = tmp_path / "rover.toml"
    config_path.write_text('[drive]\nbackend = "picar-b2"\nbumper_m = 0\n[picar_b2]\nultrasonic_enabled = false\n')
    env = dict(fakehw_env.env, ROVER_FAKEHW_I2C="0x5f")
    connect, publish = endpoints
    process = start_drive("--config", str(config_path), "--connect", connect, "--publish", publish, env=env)
    watcher = StatusWatcher(publish)
    motor_channels = (15, 14, 12, 13)
    try:
        watcher.wait_for(lambda s: s.state == "FOLLOWING" and s.steering > 0.3 and s.throttle > 0.1, process)
        chip = I2CWorld(fakehw_env.state_path, devices={1: [0x5F]}).chip(1, 0x5F)
        assert chip.pulse_ticks(0) > 297  # left = more degrees than the 90-degree centre
        assert chip.pulse_ticks(15) == 4096 and chip.pulse_ticks(13) == 4096  # both motors forward (M2 mirrored)
        code, out, err = stop(process)
    finally:
        watcher.close()
        if process.poll() is None:
            process.kill()
    assert code == 0, err
    chip = I2CWorld(fakehw_env.state_path, devices={1: [0x5F]}).chip(1, 0x5F)
    assert [chip.pulse_ticks(ch) for ch in motor_channels] == [0, 0, 0, 0]
    assert [chip.pulse_ticks(ch) for ch in (0, 1, 2)] == [297, 297, 297]


@pytest.mark.slow
def test_the_wrong_kit_is_one_line_naming_the_right_backend(fakehw_env: Any) -> None:
    result = run_drive("--backend", "picar-b", env=dict(fakehw_env.env, ROVER_FAKEHW_I2C="0x5f"))
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'drive.backend = "picar-b2"' in lines[0], result.stderr
