"""rover-detector.service under a real systemd, booted in private namespaces.

One systemd boot (see tests/systemd_harness.py for how it is fenced off from
the machine) serves the whole module. The unit under test is the repository's
``systemd/rover-detector.service`` with three kinds of change, in a drop-in or
by rendering, because the test machine is not a Pi:

- the program runs as ``python -m rover.detector`` from this checkout's venv,
  with a staged config (``--config``), instead of /opt/rover/venv/bin;
- ``DynamicUser=yes``: the ``rover`` user does not exist here, so systemd
  allocates a transient user of that name (the same User=, Group= and
  SupplementaryGroups=video apply); the machine's /etc/passwd is not touched;
- ``ProtectHome=tmpfs`` plus ``BindReadOnlyPaths=`` of the interpreter, when
  the interpreter lives under /root (pyenv), and output to a file, since no
  journald runs in the namespace.

Everything else of the sandbox is the installed unit's: Type=notify with the
watchdog, Restart=, RestartPreventExitStatus=78, ProtectSystem=strict, the
device policy, the system call filter, RuntimeDirectory= for the ipc://
stream. What is not covered: the camera devices themselves (no Pi here), and
the real ``rover`` user created by install.sh.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import time
from pathlib import Path

import pytest

from rover.core.errors import EXIT_CONFIG
from tests.systemd_harness import STAGE_IN_NS, BootError, NamespaceBoot, unavailable_reason
from tests.test_systemd_units import interpreter_home_dir, parse_unit, render_unit

pytestmark = [pytest.mark.slow, pytest.mark.systemd]

REPO = Path(__file__).resolve().parents[1]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
UNIT = "rover-detector.service"
DRIVE = "rover-drive.service"
ENDPOINT = "ipc:///run/rover/detections"
BAD_MODEL_DROPIN = f"/run/systemd/system/{UNIT}.d/zz-bad-model.conf"

# Receives ``count`` detection messages inside the namespace and prints what
# a subscriber (the drive) would see, as one JSON line.
SUBSCRIBER = textwrap.dedent(
    """
    import json, sys, zmq
    from rover.core.messages import TOPIC_BYTES, decode
    endpoint, count = sys.argv[1], int(sys.argv[2])
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVTIMEO, 20000)
    sub.setsockopt(zmq.SUBSCRIBE, TOPIC_BYTES)
    sub.connect(endpoint)
    seen = []
    for _ in range(count):
        message = decode(sub.recv())
        seen.append({"frame": message.frame.seq, "detections": len(message.detections)})
    print(json.dumps(seen))
    sub.close()
    ctx.term()
    """
)


def _python() -> Path:
    return VENV_PYTHON if VENV_PYTHON.is_file() else Path(shutil.which("python3") or "python3")


def _test_dropin(unit: str) -> str:
    lines = [
        "[Service]",
        "# No rover user on the test machine: a transient user of that name stands in.",
        "DynamicUser=yes",
        "# This checkout's rover, not whichever one the venv has installed (a worktree shares main's venv).",
        f"Environment=PYTHONPATH={REPO}",
        f"StandardOutput=append:{STAGE_IN_NS}/logs/{unit.removesuffix('.service')}.log",
        "StandardError=inherit",
    ]
    if unit == DRIVE:
        lines += ["# No gpio and i2c groups on a machine that is not a Pi.", "SupplementaryGroups="]
    home = interpreter_home_dir()
    if home is not None:
        lines += [
            "# The interpreter lives under a home directory: show only it.",
            "ProtectHome=tmpfs",
            f"BindReadOnlyPaths={home}",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def detector_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exported float model of the suite, or the detector's contract model."""
    try:
        exported = request.getfixturevalue("exported_models")
    except pytest.FixtureLookupError:
        from tests.fixtures_detector import make_contract_model

        return make_contract_model(tmp_path_factory.mktemp("systemd-model") / "detector.onnx")
    return Path(exported.float_path)


@pytest.fixture(scope="module")
def namespace_boot_works() -> None:
    """Skip the module, with the reason, where systemd cannot boot in a namespace.

    A bare boot (no service) takes about a second; it runs before the
    expensive fixtures (the exported model).
    """
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"cannot boot systemd in a namespace: {reason}")
    probe = NamespaceBoot({})
    try:
        probe.start()
    except BootError as exc:
        pytest.skip(f"this machine cannot boot systemd in a namespace: {exc}")
    finally:
        probe.close()


@pytest.fixture(scope="module")
def boot(namespace_boot_works: None, request: pytest.FixtureRequest):
    """One namespace boot with both units staged, for the whole module."""
    vtest_video = request.getfixturevalue("vtest_video")
    detector_model = request.getfixturevalue("detector_model")
    units = {}
    for unit in (UNIT, DRIVE):
        text = (REPO / "systemd" / unit).read_text()
        units[unit] = render_unit(text, _python(), config=f"{STAGE_IN_NS}/rover.toml")
        units[f"{unit}.d/test-machine.conf"] = _test_dropin(unit)
    nsboot = NamespaceBoot(units)
    try:
        _stage_files(nsboot, vtest_video, detector_model)
        nsboot.start()
        yield nsboot
    finally:
        nsboot.close()


def _stage_files(nsboot: NamespaceBoot, vtest_video: Path, detector_model: Path) -> None:
    """The model, a broken model and the config, where the services can read them."""
    models = nsboot.stage / "models"
    models.mkdir(mode=0o755)
    shutil.copy(detector_model, models / "detector.onnx")
    (models / "not-a-model.onnx").write_text("this is not an ONNX model\n")
    for path in (models / "detector.onnx", models / "not-a-model.onnx"):
        path.chmod(0o644)
    config = nsboot.stage / "rover.toml"
    config.write_text(textwrap.dedent(f"""\
        [detector]
        model = "{STAGE_IN_NS}/models/detector.onnx"
        intra_op_threads = 1
        [camera]
        source = "{vtest_video}"
        loop = true
        [stream]
        # bind: the default, ipc://detections in /run/rover
        [drive]
        backend = "log"
        # connect: the default, ipc://detections in /run/rover
        """))
    config.chmod(0o644)


def _restart_sec() -> float:
    """The unit's RestartSec= in seconds (written as ``Ns``)."""
    value = parse_unit((REPO / "systemd" / UNIT).read_text())["Service"]["RestartSec"][-1]
    return float(value.removesuffix("s"))


def _state(boot: NamespaceBoot) -> dict[str, str]:
    return boot.show(UNIT, "ActiveState", "SubState", "MainPID", "NRestarts", "Result", "ExecMainStatus", "ExecMainCode")


def _wait_active(boot: NamespaceBoot, not_pid: str | None = None) -> dict[str, str]:
    def active() -> dict[str, str] | None:
        state = _state(boot)
        if state["ActiveState"] == "active" and state["MainPID"] not in ("0", not_pid):
            return state
        return None

    return boot.wait_for(active, f"{UNIT} to be active again")


def _receive(boot: NamespaceBoot, count: int) -> list[dict[str, int]]:
    result = boot.run([str(_python()), "-c", SUBSCRIBER, ENDPOINT, str(count)], timeout=40.0, check=False)
    assert result.returncode == 0, f"no detections received: {result.stderr.strip()[-800:]}"
    return json.loads(result.stdout)


@pytest.fixture()
def stopped(boot: NamespaceBoot):
    """Each test starts with both services stopped and their failure state cleared."""
    boot.systemctl("stop", DRIVE, UNIT, check=False)
    boot.systemctl("reset-failed", DRIVE, UNIT, check=False)
    yield boot
    boot.systemctl("stop", DRIVE, UNIT, check=False)
    boot.systemctl("reset-failed", DRIVE, UNIT, check=False)


def test_start_reaches_active_and_publishes_detections(stopped: NamespaceBoot) -> None:
    boot = stopped
    # Type=notify: `systemctl start` returns only after READY=1 (first frame processed).
    boot.systemctl("start", UNIT, timeout=60.0)
    state = _state(boot)
    assert (state["ActiveState"], state["SubState"]) == ("active", "running")
    seen = _receive(boot, 3)
    frames = [item["frame"] for item in seen]
    assert frames == sorted(frames) and len(set(frames)) == 3, f"frames not progressing: {seen}"


def test_service_runs_sandboxed_as_rover_with_the_video_group(stopped: NamespaceBoot) -> None:
    boot = stopped
    boot.systemctl("start", UNIT, timeout=60.0)
    pid = _state(boot)["MainPID"]
    status = boot.path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uid = int(fields["Uid"].split()[0])
    assert uid != 0, "the detector must not run as root"
    user = boot.run(["getent", "passwd", str(uid)], check=False).stdout
    assert user.startswith("rover:"), f"uid {uid} is not the rover user: {user!r}"
    video_gid = boot.run(["getent", "group", "video"]).stdout.split(":")[2]
    assert video_gid in fields["Groups"].split()
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2", "the system call filter is not applied"
    assert fields["CapEff"].strip() == "0000000000000000"


def test_restarts_after_being_killed(stopped: NamespaceBoot) -> None:
    boot = stopped
    boot.systemctl("start", UNIT, timeout=60.0)
    first = _state(boot)
    boot.systemctl("kill", "--signal=SIGKILL", UNIT)
    second = _wait_active(boot, not_pid=first["MainPID"])
    assert int(second["NRestarts"]) == int(first["NRestarts"]) + 1
    assert _receive(boot, 1), "the restarted detector publishes again"


def test_stop_is_clean(stopped: NamespaceBoot) -> None:
    boot = stopped
    boot.systemctl("start", UNIT, timeout=60.0)
    boot.systemctl("stop", UNIT, timeout=30.0)
    state = _state(boot)
    assert state["ActiveState"] == "inactive"
    assert state["Result"] == "success", f"stop was not clean: {state}"
    assert state["ExecMainStatus"] == "0"
    assert "stopped after" in boot.log("rover-detector.log")
    # Shared by the three units (RuntimeDirectoryPreserve=yes): stopping one must not pull it from the others.
    assert boot.run(["stat", "-L", "-c", "%a", "/run/rover"]).stdout.strip() == "770"


def test_bad_model_fails_once_without_restart_loop(stopped: NamespaceBoot) -> None:
    boot = stopped
    dropin = boot.path(BAD_MODEL_DROPIN)
    python = _python()
    dropin.write_text(
        "[Service]\nExecStart=\n"
        f"ExecStart={python} -m rover.detector --config {STAGE_IN_NS}/rover.toml "
        f"--model {STAGE_IN_NS}/models/not-a-model.onnx\n"
    )
    try:
        boot.systemctl("daemon-reload")
        started = boot.systemctl("start", UNIT, check=False, timeout=60.0)
        assert started.returncode != 0
        failed = boot.wait_for(
            lambda: (s := _state(boot))["ActiveState"] == "failed" and s, f"{UNIT} to fail"
        )
        assert failed["ExecMainStatus"] == str(EXIT_CONFIG)
        # Were a restart coming, it would start within RestartSec; wait twice that.
        time.sleep(2 * _restart_sec() + 0.5)
        stayed = _state(boot)
        assert stayed["ActiveState"] == "failed" and stayed["NRestarts"] == "0", stayed
        assert "not-a-model.onnx" in boot.log("rover-detector.log")
    finally:
        dropin.unlink(missing_ok=True)
        boot.systemctl("daemon-reload")


def test_drive_pulls_in_the_detector_and_safe_stops_after_a_kill(stopped: NamespaceBoot) -> None:
    boot = stopped
    boot.systemctl("start", DRIVE, timeout=60.0)
    detector = boot.show(UNIT, "ActiveState", "ActiveEnterTimestampMonotonic")
    drive = boot.show(DRIVE, "ActiveState", "MainPID", "ExecMainStartTimestampMonotonic", "NRestarts")
    assert detector["ActiveState"] == "active", "Wants=rover-detector.service starts the detector"
    assert drive["ActiveState"] == "active", boot.log("rover-drive.log")[-800:]
    # After=: the drive starts only once the detector reported READY=1.
    assert int(detector["ActiveEnterTimestampMonotonic"]) <= int(drive["ExecMainStartTimestampMonotonic"])
    before = boot.log("rover-drive.log").count("rover-safestop:")
    boot.systemctl("kill", "--signal=SIGKILL", DRIVE)
    boot.wait_for(lambda: boot.log("rover-drive.log").count("rover-safestop:") > before,
                  "ExecStopPost=rover-safestop to run after the drive was killed")
    restarted = boot.wait_for(
        lambda: (s := boot.show(DRIVE, "ActiveState", "MainPID", "NRestarts"))["ActiveState"] == "active"
        and s["MainPID"] not in ("0", drive["MainPID"]) and s,
        f"{DRIVE} to restart",
    )
    assert int(restarted["NRestarts"]) == int(drive["NRestarts"]) + 1


def test_a_frozen_detector_is_killed_by_the_watchdog_and_restarted(stopped: NamespaceBoot) -> None:
    boot = stopped
    # Shorter limits than the unit's (10 s watchdog, 10 s abort) keep the test quick.
    dropin = boot.path(f"/run/systemd/system/{UNIT}.d/zz-quick-watchdog.conf")
    dropin.write_text("[Service]\nWatchdogSec=3s\nTimeoutAbortSec=2s\n")
    try:
        boot.systemctl("daemon-reload")
        boot.systemctl("start", UNIT, timeout=60.0)
        first = _state(boot)
        boot.systemctl("kill", "--signal=SIGSTOP", UNIT)  # frozen: no frames, no WATCHDOG=1
        second = _wait_active(boot, not_pid=first["MainPID"])
        assert int(second["NRestarts"]) == int(first["NRestarts"]) + 1
        assert f"{UNIT}: Watchdog timeout" in boot.console()
    finally:
        dropin.unlink(missing_ok=True)
        boot.systemctl("daemon-reload")


# Starts as root (the venv's interpreter may live under /root), then becomes
# `nobody` without groups before it binds: a local process of another user.
ROGUE = textwrap.dedent(
    """
    import os, sys, zmq
    pub = zmq.Context().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
    try:
        pub.bind(sys.argv[1])
    except zmq.ZMQError as exc:
        print("refused:", exc)
    else:
        print("bound")
    """
)


def test_only_rover_may_bind_or_connect_the_streams_the_drive_follows(stopped: NamespaceBoot) -> None:
    boot = stopped
    boot.systemctl("start", DRIVE, timeout=60.0)  # the default endpoints: ipc://detections, ipc://drive
    listing = boot.run(["stat", "-L", "-c", "%n %a %U %G", "/run/rover", "/run/rover/detections",
                        "/run/rover/drive"]).stdout.split("\n")
    assert listing[:3] == ["/run/rover 770 rover rover", "/run/rover/detections 660 rover rover",
                           "/run/rover/drive 660 rover rover"], listing
    boot.systemctl("stop", UNIT, timeout=30.0)  # the detector is down, the drive still runs
    rogue = boot.run([str(_python()), "-c", ROGUE, ENDPOINT], check=False)
    assert rogue.stdout.startswith("refused: Permission denied"), (rogue.stdout, rogue.stderr[-400:])
    assert boot.show(DRIVE, "ActiveState")["ActiveState"] == "active"
    assert "state ARMED" not in boot.log("rover-drive.log").rsplit("following 'person' from", 1)[-1]

