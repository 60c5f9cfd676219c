"""``rover soak [DURATION]``: the whole system for minutes or hours, with faults injected, and its figures.

Runs the real programs as their own processes, on ``ipc://`` endpoints in a
work folder: ``rover-detector`` on a looping video with preview frames,
``rover-drive --backend log`` (a dry run), ``rover-view`` with a client
reading its MJPEG stream, and ``rover record``. Every ``--fault-every``
seconds one fault, in turn:

- ``detector-sigstop``: the detector frozen for 3 s (SIGSTOP, SIGCONT);
- ``detector-sigkill``: the detector killed and started again (as systemd would);
- ``drive-sigkill``: the drive killed and started again;
- ``view-abuse``: 20 clients stop reading the stream and 20 slow-loris
  clients dribble a byte a second, for 12 s (at most ``--fault-every``); meanwhile a new viewer asks
  for the stream and the time to its first frame is taken.

At the end it prints, per program, RSS, open file descriptors and threads
at the start, the end and the peak (``/proc``), messages missing from every
``seq`` (detections, drive status), the dead-man time after each fault that
silenced the detector, and the faults' other figures; the same as JSON in
``WORK/soak.json``. Exit 0 when nothing is missing, every program lived to
the end and every dead-man time is within ``drive.deadman_s`` + 0.1 s;
1 otherwise; 78 for a bad argument (a model or video that is not there).

``DURATION`` is ``90s``, ``5m`` (the default), ``2h`` or ``1h30m``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from rover.core.errors import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK
from rover.stream.journal import read_lines
from rover.stream.soakstats import Sample, deadman_times, read_proc, seq_gaps, usage

FAULTS = ("detector-sigstop", "detector-sigkill", "drive-sigkill", "view-abuse")
DEADMAN_S = 0.5  #: the drive's default drive.deadman_s, the limit the soak holds the drive to (+ 0.1 s)
MAX_AGE_S = 0.5  #: the drive's default drive.max_age_s: older detections are stale and do not hold off the dead-man
REPO = Path(__file__).resolve().parents[2]


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``5m``, ``2h``, ``1h30m``; ValueError otherwise."""
    match = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"duration {text!r}: use e.g. 90s, 5m, 2h or 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


class Program:
    """One of the system's processes, restartable, its output in ``WORK/NAME.log``."""

    def __init__(self, name: str, argv: list[str], work: Path) -> None:
        self.name, self.argv, self.work = name, argv, work
        self.proc: subprocess.Popen | None = None
        self.unexpected_exits: list[int] = []
        self._log = (work / f"{name}.log").open("ab")

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=self._log, cwd=self.work)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def kill_and_restart(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.start()

    def check(self) -> None:
        """Note an exit nobody asked for, and start it again (as systemd would)."""
        if self.proc is not None and self.proc.poll() is not None:
            self.unexpected_exits.append(self.proc.returncode)
            self.start()

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class StreamViewer(threading.Thread):
    """A browser's picture: reads ``/stream.mjpg`` all the time, reconnecting when it ends."""

    def __init__(self, port: int) -> None:
        super().__init__(name="soak-viewer", daemon=True)
        self.port, self.bytes, self.reconnects = port, 0, 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: rover\r\n\r\n")
                    while not self.stopping.is_set():
                        chunk = sock.recv(65536)
                        if not chunk:
                            break
                        self.bytes += len(chunk)
            except OSError:
                pass
            self.reconnects += 1
            self.stopping.wait(0.5)


def _first_frame_s(port: int, give_up_s: float = 30.0) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < give_up_s:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=give_up_s) as sock:
                sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: rover\r\n\r\n")
                data = b""
                while len(data) < 200_000:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    if b" 200 " in data[:20] and b"image/jpeg" in data:
                        return round(time.monotonic() - start, 3)
        except OSError:
            pass
        time.sleep(0.1)
    return None


def view_abuse(port: int, seconds: float = 12.0, clients: int = 20) -> dict[str, Any]:
    """Stalled streams and slow-loris clients for ``seconds``; a new viewer's time to its first frame meanwhile."""
    stalled, loris = [], []
    for _ in range(clients):
        try:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: rover\r\n\r\n")
            stalled.append(sock)
            loris.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    start, served = time.monotonic(), None
    dribble = b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 10_000
    step = 0
    while time.monotonic() - start < seconds:
        for sock in loris:
            try:
                sock.sendall(dribble[step:step + 1])
            except OSError:
                pass
        step += 1
        if served is None and time.monotonic() - start >= seconds / 2:
            served = _first_frame_s(port, give_up_s=20.0)
        time.sleep(1.0)
    for sock in stalled + loris:
        sock.close()
    return {"stalled_streams": len(stalled), "slow_loris": len(loris), "new_viewer_first_frame_s": served}


class Soak:
    def __init__(self, model: Path, source: Path, work: Path, duration_s: float, fault_every_s: float,
                 sample_s: float = 1.0, warmup_s: float = 15.0, say: Callable[[str], None] = print) -> None:
        self.work, self.duration_s, self.fault_every_s = work, duration_s, fault_every_s
        self.sample_s, self.warmup_s, self.say = sample_s, warmup_s, say
        self.port = _free_port()
        ep = {name: f"ipc://{work}/{name}.sock" for name in ("det", "status", "frames")}
        self.recording = work / "soak.jsonl"
        config = work / "rover.toml"
        config.write_text(
            f'[detector]\nmodel = "{model}"\n'
            f'[camera]\nsource = "{source}"\nloop = true\n'
            f'[stream]\nbind = "{ep["det"]}"\n'
            f'[drive]\nconnect = "{ep["det"]}"\npublish = "{ep["status"]}"\nbackend = "log"\nfollow = "person"\n'
            f'[view]\npreview = true\nframes = "{ep["frames"]}"\ndetections = "{ep["det"]}"\ndrive = "{ep["status"]}"\n'
            f'port = {self.port}\n')
        py = [sys.executable, "-m"]
        self.programs = {
            "recorder": Program("recorder", [*py, "rover.stream.record", "--out", str(self.recording),
                                             "--detections", ep["det"], "--drive", ep["status"]], work),
            "detector": Program("detector", [*py, "rover.detector", "--config", str(config)], work),
            "drive": Program("drive", [*py, "rover.drive", "--config", str(config)], work),
            "view": Program("view", [*py, "rover.view", "--config", str(config)], work),
        }
        self.samples: dict[str, list[Sample]] = {name: [] for name in self.programs}
        self.faults: list[dict[str, Any]] = []

    def run(self) -> dict[str, Any]:
        for program in self.programs.values():
            program.start()
        viewer = StreamViewer(self.port)
        self._start_ns = time.monotonic_ns()
        start = time.monotonic()
        next_sample, next_fault, fault_index = start, start + self.warmup_s, 0
        time.sleep(2.0)
        viewer.start()
        try:
            while (now := time.monotonic()) - start < self.duration_s:
                for program in self.programs.values():
                    program.check()
                if now >= next_sample:
                    self._sample()
                    next_sample += self.sample_s
                if now >= next_fault and now - start < self.duration_s - 5:
                    self._inject(FAULTS[fault_index % len(FAULTS)])
                    fault_index += 1
                    next_fault = time.monotonic() + self.fault_every_s
                time.sleep(0.05)
        finally:
            viewer.stopping.set()
            exits = {name: self.programs[name].stop() for name in ("recorder", "view", "drive", "detector")}
            viewer.join(10)
        return self._figures(time.monotonic() - start, exits, viewer)

    def _after_warmup(self, samples: list[Sample]) -> list[Sample]:
        """The samples from the end of the warm-up on (the system up, models loaded), or all if none."""
        up = self._start_ns / 1e9 + self.warmup_s
        return [s for s in samples if s.t >= up] or samples

    def _sample(self) -> None:
        for name, program in self.programs.items():
            pid = program.pid
            sample = read_proc(pid) if pid is not None else None
            if sample is not None:
                self.samples[name].append(sample)

    def _inject(self, fault: str) -> None:
        t_ns = time.monotonic_ns()
        entry: dict[str, Any] = {"fault": fault, "t_ns": t_ns, "at_s": None}
        self.say(f"rover soak: fault {fault}")
        detector, drive = self.programs["detector"], self.programs["drive"]
        if fault == "detector-sigstop" and detector.proc is not None:
            detector.proc.send_signal(signal.SIGSTOP)
            time.sleep(3.0)
            detector.proc.send_signal(signal.SIGCONT)
        elif fault == "detector-sigkill":
            detector.kill_and_restart()
        elif fault == "drive-sigkill":
            drive.kill_and_restart()
        elif fault == "view-abuse":
            entry.update(view_abuse(self.port, seconds=min(12.0, max(2.0, self.fault_every_s))))
        self.faults.append(entry)

    def _figures(self, elapsed_s: float, exits: dict[str, int | None], viewer: StreamViewer) -> dict[str, Any]:
        detections, drive, det_seqs, drive_seqs, skipped = [], [], [], [], 0
        lines = 0
        last_frame: int | None = None
        for _, line in read_lines(self.recording):
            lines += 1
            record = json.loads(line)
            message = record["message"]
            if record["topic"] == "detections":
                frame = message.get("frame")
                if frame is not None and record["t_recv_ns"] - frame["t_capture_ns"] <= MAX_AGE_S * 1e9:
                    detections.append(record["t_recv_ns"])  # fresh, as the drive judges it: what feeds its dead-man
                det_seqs.append(message["seq"])
                if frame is not None:
                    if last_frame is not None and frame["seq"] > last_frame + 1:
                        skipped += frame["seq"] - last_frame - 1
                    last_frame = frame["seq"]
            else:
                drive.append((message["t_ns"], message["state"]))
                drive_seqs.append(message["seq"])
        silenced = [(f["fault"], f["t_ns"]) for f in self.faults if f["fault"].startswith("detector-")]
        reactions = iter(deadman_times(silenced, detections, drive))
        for fault in self.faults:
            t_fault = fault["t_ns"]
            if fault["fault"] == "drive-sigkill":  # the new drive's first status
                back = next((t for t, _ in drive if t > t_fault), None)
                fault["drive_back_after_s"] = None if back is None else round((back - t_fault) / 1e9, 2)
            elif fault["fault"] == "detector-sigkill":  # the new detector's first message (received)
                back = next((t for t in detections if t > t_fault), None)
                fault["detector_back_after_s"] = None if back is None else round((back - t_fault) / 1e9, 2)
            fault["at_s"] = round((fault.pop("t_ns") - self._start_ns) / 1e9, 1)
            if fault["fault"].startswith("detector-"):
                reaction = next(reactions)
                fault.update({k: v for k, v in reaction.items() if k != "fault"})
        return {
            "seconds": round(elapsed_s, 1),
            "processes": {name: {**usage(self._after_warmup(self.samples[name])),
                                 "unexpected_exits": self.programs[name].unexpected_exits,
                                 "exit_code": exits.get(name)} for name in self.programs},
            "recording": {"lines": lines, "detections_seq": seq_gaps(det_seqs), "drive_seq": seq_gaps(drive_seqs),
                          "frames_skipped_by_inference": skipped},
            "faults": self.faults,
            "viewer": {"bytes": viewer.bytes, "reconnects": viewer.reconnects},
        }


def verdict(figures: dict[str, Any], deadman_limit_s: float = DEADMAN_S + 0.1) -> list[str]:
    """What went wrong, one line each; empty when the soak passed."""
    problems = []
    for stream in ("detections_seq", "drive_seq"):
        missing = figures["recording"][stream]["missing"]
        if missing:
            problems.append(f"{missing} messages missing from {stream}")
    for name, proc in figures["processes"].items():
        if proc["unexpected_exits"]:
            problems.append(f"{name} exited by itself ({proc['unexpected_exits']}) and was started again")
    for fault in figures["faults"]:
        dead = fault.get("deadman_s")
        if dead is not None and dead > deadman_limit_s:
            problems.append(f"dead-man after {fault['fault']} at {fault['at_s']} s took {dead} s")
        if fault["fault"] == "view-abuse" and fault.get("new_viewer_first_frame_s") is None:
            problems.append(f"the view served no new viewer during the abuse at {fault['at_s']} s")
    return problems


def report(figures: dict[str, Any]) -> str:
    """The figures as a few aligned lines for a terminal."""
    out = [f"soak: {figures['seconds']} s"]
    out.append(f"{'program':<9} {'RSS MB start/end/peak':>22} {'fds':>12} {'threads':>12}  restarts")
    for name, p in figures["processes"].items():
        if not p.get("samples"):
            out.append(f"{name:<9} (no samples)")
            continue
        cells = ["/".join(str(p[k][w]) for w in ("start", "end", "peak")) for k in ("rss_mb", "fds", "threads")]
        out.append(f"{name:<9} {cells[0]:>22} {cells[1]:>12} {cells[2]:>12}  {p['restarts']}"
                   + (f"  (RSS {p['rss_change_last_half_pct']:+.2f} % over the last half)" if "rss_change_last_half_pct" in p else ""))
    rec = figures["recording"]
    for stream in ("detections_seq", "drive_seq"):
        g = rec[stream]
        out.append(f"{stream}: {g['messages']} messages in {g['runs']} runs, {g['gaps']} gaps, {g['missing']} missing")
    out.append(f"recorded lines: {rec['lines']}; frames skipped by inference (not a loss): {rec['frames_skipped_by_inference']}")
    for f in figures["faults"]:
        extra = {k: v for k, v in f.items() if k not in ("fault", "at_s")}
        out.append(f"fault {f['fault']:<17} at {f['at_s']:>7} s: " + ", ".join(f"{k} {v}" for k, v in extra.items()))
    out.append(f"stream viewer: {figures['viewer']['bytes'] / 1e6:.1f} MB received, {figures['viewer']['reconnects']} reconnects")
    return "\n".join(out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("duration", nargs="?", default="5m", help="how long: 90s, 5m (default), 2h, 1h30m")
    parser.add_argument("--model", type=Path, default=REPO / ".bench" / "models" / "ssd300_voc_int8.onnx",
                        help="the detector's model (default .bench/models/ssd300_voc_int8.onnx, from make bench)")
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "vtest.avi",
                        help="a video file, played in a loop (default ../shared/data/vtest.avi)")
    parser.add_argument("--fault-every", default="30s", metavar="DURATION", help="time between two faults (default 30s)")
    parser.add_argument("--warmup", default="15s", metavar="DURATION", help="time before the first fault (default 15s)")
    parser.add_argument("--work-dir", type=Path, help="where the recording, logs and soak.json go (default: a new temp folder)")


def run(args: argparse.Namespace) -> int:
    try:
        duration_s, fault_every_s, warmup_s = (parse_duration(t) for t in (args.duration, args.fault_every, args.warmup))
    except ValueError as exc:
        print(f"rover soak: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    for what, path in (("--model", args.model), ("--source", args.source)):
        if not path.is_file():
            print(f"rover soak: {what} {path} does not exist: pass one (`make bench` exports a model)", file=sys.stderr)
            return EXIT_CONFIG
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="rover-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"rover soak: {duration_s:g} s, a fault every {fault_every_s:g} s; recording and logs in {work}", flush=True)
    soak = Soak(args.model.resolve(), args.source.resolve(), work, duration_s, fault_every_s, warmup_s=warmup_s,
                say=lambda text: print(text, flush=True))
    figures = soak.run()
    problems = verdict(figures)
    figures["problems"] = problems
    (work / "soak.json").write_text(json.dumps(figures, indent=1))
    print(report(figures))
    for problem in problems:
        print(f"rover soak: PROBLEM {problem}")
    return EXIT_FAILURE if problems else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rover soak", description=__doc__.splitlines()[0].split(": ", 1)[1])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
