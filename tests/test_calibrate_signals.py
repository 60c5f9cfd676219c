"""rover-calibrate motors under Ctrl-Z, Ctrl-\\ and kill -9, each in a process of its own on the fakes.

Ctrl-Z's default would freeze the process with the last duty still on the motors (the PCA9685 keeps it,
an RPi.GPIO enable pin stays at its level); Ctrl-\\'s and SIGKILL's would end it without its ``finally``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rover.hw.config import PicarBConfig
from tests.fixtures_drive import FakeHwEnv
from tests.test_calibrate_motors import make_rig, no_ranger_thread  # noqa: F401 - the autouse fixture
from tests.test_drive_sentinel import gone
from tests.test_safestop import assert_safe

REPO = Path(__file__).resolve().parents[1]
WAIT_S = 60.0


def child(tmp_path: Path, backend: str, name: str, at_s: float, env: dict[str, str] | None = None,
          *extra: str) -> subprocess.Popen:
    environ = dict(os.environ if env is None else env)
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO), environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.Popen([sys.executable, "-m", "tests.calibrate_child", str(tmp_path), backend, name, str(at_s),
                             *extra], cwd=REPO, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> tuple[dict, str]:
    deadline = time.monotonic() + WAIT_S
    while process.poll() is None:
        try:
            stat = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            stat = "gone"
        if stat == "T" or time.monotonic() > deadline:
            process.kill()
            process.communicate()
            pytest.fail(f"the calibration did not end (process state {stat}: T = stopped with the motors as they were)")
        time.sleep(0.05)
    out, err = process.communicate()
    assert out.strip(), f"exit {process.returncode}, stderr:\n{err}"
    return json.loads(out.strip().splitlines()[-1]), err


@pytest.mark.parametrize("backend", ["picar-b", "picar-b2"])
def test_ctrl_z_sets_the_car_safe_and_ends_the_run(backend: str, tmp_path: Path) -> None:
    result, err = finish(child(tmp_path, backend, "TSTP", 22.0))
    assert result["duty_at_signal"] > 0.2  # the car was driving
    assert result["code"] == 128 + signal.SIGTSTP and result["stopped"] and result["centred"], err
    assert "SIGTSTP: motors stopped (Ctrl-Z ends the run" in err


def test_ctrl_backslash_stops_the_car_and_exits(tmp_path: Path) -> None:
    result, err = finish(child(tmp_path, "picar-b", "QUIT", 22.0))
    assert result["duty_at_signal"] > 0.2
    assert result["code"] == 128 + signal.SIGQUIT and result["stopped"] and result["centred"], err
    assert "SIGQUIT: motors stopped" in err


@pytest.mark.slow
def test_kill_9_mid_run_the_sentinel_stops_the_car(tmp_path: Path, fakehw_env: FakeHwEnv) -> None:
    """SIGKILL while the motors run: the sentinel (its own session) sets every motor pin LOW and the servos centred."""
    process = child(tmp_path, "picar-b", "KILL", 4.0, fakehw_env.env, "--file-state")
    try:
        line = process.stdout.readline()
        while line and not line.startswith("{"):  # the progress lines before
            line = process.stdout.readline()
        assert line, process.communicate(timeout=WAIT_S)[1]
        assert json.loads(line)["driving"] > 0.0  # the dead-band search drives the motors
        board = fakehw_env.board()
        config = PicarBConfig()
        assert any(duty > 0 for duty in board.duties(config.right_enable_pin))
        sentinels = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == process.pid]
        process.send_signal(signal.SIGKILL)
        _, err = process.communicate(timeout=WAIT_S)  # the sentinel shares stderr: EOF once it has done its work
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert_safe(fakehw_env.board(), fakehw_env.chip(), config)
    assert "exited without confirming the car stopped: stopped it" in err and "NOT" not in err, err
    assert len(sentinels) == 1 and gone(sentinels[0])


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_ctrl_c_at_the_prompt_is_one_line_and_nothing_driven(tmp_path: Path, capsys) -> None:
    rig = make_rig("picar-b", tmp_path)

    class Terminal:  # a terminal whose user presses Ctrl-C at "Type yes to start"
        def isatty(self) -> bool:
            return True

        def readline(self) -> str:
            raise KeyboardInterrupt

    try:
        code = rig.run(stdin=Terminal())
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C at the prompt escaped as a traceback")
    assert code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rover-calibrate motors: interrupted: not started, nothing was driven"]
    assert rig.board.history() == []


def test_sighup_mid_run_stops_the_motors_and_exits_129(tmp_path: Path, capsys) -> None:
    rig = make_rig("picar-b", tmp_path)
    before = signal.getsignal(signal.SIGHUP)
    rig.time.at.append((24.5, lambda: os.kill(os.getpid(), signal.SIGHUP)))  # a speed step: the car moving
    assert rig.run("--yes") == 128 + signal.SIGHUP
    assert "SIGHUP: motors stopped" in capsys.readouterr().err
    assert max(rig.duties()) > 0.3 and rig.motors_stopped() and signal.getsignal(signal.SIGHUP) == before


def test_a_sensor_too_short_for_the_start_names_the_users_key(tmp_path: Path, capsys) -> None:
    rig = make_rig("picar-b2", tmp_path)
    rig.path.write_text(rig.path.read_text() + "[picar_b2]\nultrasonic_max_m = 0.9\n")
    assert rig.run("--yes") == 78
    err = capsys.readouterr().err
    assert "picar_b2.ultrasonic_max_m = 0.9" in err and "start_max_m" not in err, err
