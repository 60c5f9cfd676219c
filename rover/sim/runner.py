"""Run one scenario in real time against the real drive, over real sockets.

Three processes: this one runs the world (physics, camera, noise) in real
time; a child ``rover.sim.publisher`` binds the detection endpoint and
publishes what the world's camera saw (killing it is "the detector dies");
a child ``python -m rover.drive --backend sim`` follows, and its ``sim``
chassis pushes its commands back to the world. All endpoints are ipc://
paths in a fresh temporary directory, so runs never collide.

The scenario clock starts when the drive has opened its chassis (its first
command, the ``safe()`` it sends at start-up); until then the scene stands
still. Scenario time is wall time from there on, so the drive's own
monotonic clock and the world's agree.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import zmq

from rover.core import messages
from rover.core.errors import MessageError, RoverError
from rover.drive.config import DriveConfig
from rover.sim import plot
from rover.sim.camera import CameraModel
from rover.sim.car import CarModel
from rover.sim.chassis import ENV_ENDPOINT, ENV_RANGES
from rover.sim.noise import DetectorModel
from rover.sim.scenarios import Scenario
from rover.sim.summary import Criteria, lost_moments, summarise
from rover.sim.sonar import reading
from rover.sim.wire import decode_command, encode_range, frame_message
from rover.sim.world import TRACE_COLUMNS, Frame, World

STEP_S = 0.01  # physics step: 100 Hz, well above the drive's 20 Hz
_RANGE_INTERVAL_S = 0.1  # the kits' default ultrasonic_interval_s
_STARTUP_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>


class SimError(RoverError):
    """A simulator process could not start or died."""


@dataclass
class RunResult:
    """What one run produced: the summary and the files written."""

    summary: dict
    trace: np.ndarray
    people: np.ndarray
    published: list[Frame]
    drive_states: list[tuple[float, str]]
    picture: Path | None = None
    summary_path: Path | None = None
    drive_log: Path | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Endpoints:
    """The four sockets of a run, as ipc:// paths in ``folder``."""

    folder: Path

    def path(self, name: str) -> str:
        return f"ipc://{self.folder / name}"

    @property
    def detections(self) -> str:
        return self.path("detections")

    @property
    def frames(self) -> str:
        return self.path("frames")

    @property
    def commands(self) -> str:
        return self.path("commands")

    @property
    def status(self) -> str:
        return self.path("drive-status")

    @property
    def ranges(self) -> str:
        return self.path("ranges")


class StatusLine:
    """The live one-line status: rewritten in place on a terminal, a line a second otherwise."""

    def __init__(self, stream=sys.stdout, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.tty = enabled and hasattr(stream, "isatty") and stream.isatty()
        self._last = -1.0

    def show(self, t: float, text: str) -> None:
        if not self.enabled:
            return
        if self.tty and t - self._last >= 0.1:
            self.stream.write("\r" + text.ljust(100)[:110])
            self.stream.flush()
            self._last = t
        elif not self.tty and t - self._last >= 1.0:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last = t

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _load_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None).prctl  # looked up once, in the parent: the child only calls it
    except (OSError, AttributeError):
        return None  # not Linux: the runner's finally still stops the children on a normal exit


_PRCTL = _load_prctl() if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends it SIGTERM when the world's process dies."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with log.open("wb") as handle:
        return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                preexec_fn=_die_with_parent if _PRCTL is not None else None)


def _stop(proc: subprocess.Popen, timeout_s: float = 5.0) -> int | None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def run(scenario: Scenario, out_dir: Path, *, seed: int = 0, detector: DetectorModel | None = None,
        car: CarModel | None = None, camera: CameraModel | None = None, criteria: Criteria | None = None,
        drive_args: Sequence[str] = (), status: StatusLine | None = None, python: str = sys.executable,
        record: Callable[[Endpoints], subprocess.Popen] | None = None, ultrasonic: bool = False) -> RunResult:
    """Run ``scenario``; write ``<name>.png`` and ``<name>.json`` into ``out_dir``.

    ``drive_args`` are appended to the drive's command line; without a
    ``--config`` among them the drive gets one that sets ``[picar_b]
    min_duty`` to the simulated motors' stall duty, as a calibrated kit has.
    ``record`` may start a recorder against the endpoints before the drive
    starts (the record/replay test uses it). ``ultrasonic``: the world
    measures the car's ultrasonic range (:mod:`rover.sim.sonar`) every
    ``[picar_b] ultrasonic_interval_s`` (0.1 s) and publishes it to the drive's
    ``sim`` chassis, whose bumper then applies as on a kit.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    world = World(scenario, car or CarModel(), camera or CameraModel(), detector or DetectorModel(), seed)
    criteria = criteria or Criteria.for_drive(DriveConfig())  # the drive runs with its defaults
    status = status or StatusLine(enabled=False)
    folder = Path(tempfile.mkdtemp(prefix="rover-sim-"))
    ends = Endpoints(folder)
    context = zmq.Context()
    frames_out = context.socket(zmq.PUSH)
    frames_out.setsockopt(zmq.LINGER, 0)
    frames_out.setsockopt(zmq.SNDHWM, 10)
    commands_in = context.socket(zmq.PULL)
    commands_in.setsockopt(zmq.LINGER, 0)
    status_in = context.socket(zmq.SUB)
    status_in.setsockopt(zmq.LINGER, 0)
    status_in.setsockopt(zmq.SUBSCRIBE, b"drive ")
    ranges_out = context.socket(zmq.PUB) if ultrasonic else None
    sonar_rng = np.random.default_rng([seed, 2])
    next_range = 0.0
    procs: list[subprocess.Popen] = []
    drive_log = out_dir / f"{scenario.name}.drive.log"
    published: list[Frame] = []
    drive_states: list[tuple[float, str]] = []
    try:
        frames_out.bind(ends.frames)
        commands_in.bind(ends.commands)
        status_in.connect(ends.status)
        publisher = _spawn([python, "-m", "rover.sim.publisher", "--frames", ends.frames, "--publish", ends.detections,
                            "--parent", str(os.getpid())], out_dir / f"{scenario.name}.publisher.log")
        procs.append(publisher)
        if record is not None:
            procs.append(record(ends))
        if "--config" not in drive_args:
            drive_args = (*drive_args, "--config", str(_calibrated_config(folder, world.car_model)))
        env = {**os.environ, ENV_ENDPOINT: ends.commands}
        if ranges_out is not None:
            ranges_out.setsockopt(zmq.LINGER, 0)
            ranges_out.bind(ends.ranges)
            env[ENV_RANGES] = ends.ranges
        drive = _spawn([python, "-m", "rover.drive", "--follow", "person", "--connect", ends.detections,
                        "--publish", ends.status, "--backend", "sim", *drive_args], drive_log, env)
        procs.append(drive)
        _wait_for_drive(commands_in, drive, drive_log, world)
        state = "SAFE"
        t0 = time.monotonic()
        t0_ns, unix0 = int(t0 * 1e9), time.time() - (time.monotonic() - t0)
        last = t0
        killed = False
        while world.t < scenario.duration_s:
            now = time.monotonic()
            for _ in range(1000):
                if not commands_in.poll(0):
                    break
                try:
                    world.apply(decode_command(commands_in.recv())[0])
                except MessageError as exc:
                    print(f"rover.sim: ignored a command: {exc}", file=sys.stderr)
            while status_in.poll(0):
                try:
                    state = json.loads(status_in.recv().partition(b" ")[2])["state"]
                    drive_states.append((world.t, state))
                except (ValueError, KeyError):
                    pass
            remaining = now - last
            last = now
            done: list[Frame] = []
            while remaining > 1e-9:
                dt = min(STEP_S, remaining)
                done += world.step(dt)
                remaining -= dt
            if ranges_out is not None and world.t >= next_range:
                next_range = world.t + _RANGE_INTERVAL_S
                metres = reading(world.range_m(), world.sonar, sonar_rng)
                ranges_out.send(encode_range(metres, time.monotonic_ns()), zmq.NOBLOCK)
            if scenario.kill_detector_at is not None and not killed and world.t >= scenario.kill_detector_at:
                publisher.kill()
                publisher.wait()
                killed = True
            for frame in done:
                if killed:
                    continue
                msg = frame_message(frame, t0_ns + int(frame.t_capture * 1e9), unix0 + frame.t_capture,
                                    time.monotonic_ns(), world.camera, world.detector)
                try:
                    frames_out.send(messages.encode(msg), zmq.NOBLOCK)
                    published.append(Frame(frame.seq, frame.t_capture, world.t, frame.detections))
                except zmq.Again:
                    pass
            if drive.poll() is not None:
                raise SimError(f"the drive exited with code {drive.returncode} mid-run: {_tail(drive_log)}")
            if world.trace:
                status.show(world.t, status_text(world, state, len(published), killed))
            time.sleep(max(0.0, last + STEP_S - time.monotonic()))
        status.end()
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for sock in (frames_out, commands_in, status_in, ranges_out):
            if sock is not None:
                sock.close(0)
        context.term()
        shutil.rmtree(folder, ignore_errors=True)
    trace, people = world.trace_array(), world.people_array()
    summary = {"scenario": scenario.name, "seed": seed, "fps": world.detector.fps,
               **summarise(trace, people, published, kill_at=scenario.kill_detector_at,
                           deadband_duty=world.car_model.deadband_duty, criteria=criteria)}
    result = RunResult(summary, trace, people, published, drive_states, drive_log=drive_log)
    result.summary_path = out_dir / f"{scenario.name}.json"
    result.summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    image = plot.render(trace, people, lost_moments(published), scenario.kill_detector_at, f"{scenario.name} (seed {seed}, {world.detector.fps:g} fps)",
                        criteria.band_m, criteria.stop_distance_m)
    result.picture = plot.write_png(out_dir / f"{scenario.name}.png", image)
    return result


def _calibrated_config(folder: Path, car: CarModel) -> Path:
    """A drive config for a kit calibrated as docs/sim.md says: ``min_duty`` at the motors' stall duty."""
    path = folder / "rover.toml"
    path.write_text(f"# written by rover.sim: the simulated kit's motors stall below this duty\n"
                    f"[picar_b]\nmin_duty = {car.deadband_duty * 100:.1f}\n")
    return path


def status_text(world: World, state: str, frames: int, killed: bool) -> str:
    """The live line: scenario time, drive state, distance to the person, commands, speed."""
    row = dict(zip(TRACE_COLUMNS, world.trace[-1]))
    return (f"t={row['t']:5.2f}s {state:<9} dist={row['target_distance']:5.2f}m "
            f"thr={row['throttle_cmd']:+.2f} steer={row['steering_cmd']:+.2f} pan={row['pan_cmd']:+.2f} "
            f"speed={row['speed']:.2f}m/s frames={frames}{' DETECTOR DEAD' if killed else ''}")


def _wait_for_drive(commands_in: zmq.Socket, drive: subprocess.Popen, log: Path, world: World) -> None:
    """Block until the drive's chassis sends its first command; SimError if it never does."""
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if commands_in.poll(100):
            try:
                world.apply(decode_command(commands_in.recv())[0])
            except MessageError as exc:
                raise SimError(f"the drive's sim chassis sent a malformed command: {exc}") from None
            return
        if drive.poll() is not None:
            raise SimError(f"the drive exited with code {drive.returncode} before it opened its chassis: {_tail(log)}")
    raise SimError(f"the drive did not open its chassis within {_STARTUP_TIMEOUT_S:g} s: {_tail(log)}")
