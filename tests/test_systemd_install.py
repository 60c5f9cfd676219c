"""systemd/install.sh, staged with --destdir so the machine is not changed.

With ``--destdir`` the script writes every file under that folder and skips
what would change the machine itself (creating the ``rover`` user, running
``systemctl``); the user creation is therefore not covered here. The script
runs from a copy of the checkout, so pip's build leaves nothing in this one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_systemd_units import INSTALL_PREFIX

pytestmark = pytest.mark.systemd

REPO = Path(__file__).resolve().parents[1]
#: What a checkout needs for ``pip install .`` and for install.sh.
CHECKOUT_PARTS = ("setup.cfg", "pyproject.toml", "README.md", "rover", "export", "systemd", "config", "docs", "requirements")
UNITS = ("rover-detector.service", "rover-drive.service", "rover-view.service")
SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.fixture()
def checkout(tmp_path: Path) -> Path:
    """A copy of the parts of this checkout that install.sh reads."""
    if not (REPO / "config" / "rover.example.toml").is_file():
        pytest.skip("config/rover.example.toml is not in this checkout yet")
    copy = tmp_path / "checkout"
    copy.mkdir()
    for part in CHECKOUT_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, copy / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.is_file():
            shutil.copy(source, copy / part)
    return copy


def install(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(checkout / "systemd" / "install.sh"), *args],
        capture_output=True, text=True, timeout=240,
    )


@pytest.mark.slow
def test_install_stages_units_config_and_a_venv_that_sees_apt_packages(checkout: Path, tmp_path: Path) -> None:
    if not SYSTEM_PYTHON.is_file():
        pytest.skip(f"{SYSTEM_PYTHON} (the interpreter apt's picamera2 is built for) is not installed")
    root = tmp_path / "root"
    result = install(
        checkout, "--destdir", str(root), "--python", str(SYSTEM_PYTHON), "--extras", "none",
        # Offline: the runtime dependencies come from the system or are not needed to check the layout.
        "--pip-args", "--no-deps --no-index --no-build-isolation",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    venv = root / INSTALL_PREFIX.lstrip("/") / "venv"
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    # apt installs picamera2 into the system's dist-packages: the venv must search it.
    paths = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print('\\n'.join(sys.path))"],
                           capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()
    assert any(p.startswith("/usr/lib/python3") and p.endswith("dist-packages") for p in paths), paths
    for program in ("rover-detector", "rover-drive", "rover-safestop", "rover-view"):
        assert (venv / "bin" / program).is_file(), f"{program} is not installed in the venv"
    for unit in UNITS:
        installed = (root / "etc/systemd/system" / unit).read_text()
        assert installed == (checkout / "systemd" / unit).read_text()
    assert (root / "etc/rover/rover.toml").read_text() == (checkout / "config/rover.example.toml").read_text()
    assert (root / "var/lib/rover/models").is_dir()


@pytest.mark.slow
def test_a_pi_install_without_picamera2_in_the_venv_exits_78_naming_the_fix(checkout: Path, tmp_path: Path) -> None:
    """On a Pi (--extras pi) the detector's default camera needs picamera2 in the venv: no note, an error.

    The numpy cause of the same check is proven on the emulated Pi (tests/test_pi_emulated.py).
    """
    if not SYSTEM_PYTHON.is_file():
        pytest.skip(f"{SYSTEM_PYTHON} is not installed")
    probe = subprocess.run([str(SYSTEM_PYTHON), "-c", "import picamera2"], capture_output=True, timeout=60)
    if probe.returncode == 0:
        pytest.skip("this machine has picamera2")
    root = tmp_path / "root"
    offline = ["--pip-args", "--no-deps --no-index --no-build-isolation"]
    result = install(checkout, "--destdir", str(root), "--python", str(SYSTEM_PYTHON), "--extras", "pi", *offline)
    assert result.returncode == 78, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "install.sh: picamera2 is not installed: sudo apt install python3-picamera2, then run this again "
        "(or --no-picamera2 for a USB camera)"
    ]
    again = install(checkout, "--destdir", str(root), "--python", str(SYSTEM_PYTHON), "--extras", "pi", "--no-picamera2", *offline)
    assert again.returncode == 0, again.stdout + again.stderr


def test_an_existing_config_is_never_overwritten(checkout: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    mine = root / "etc/rover/rover.toml"
    mine.parent.mkdir(parents=True)
    mine.write_text("[detector]\nscore_threshold = 0.7\n")
    result = install(checkout, "--destdir", str(root), "--no-venv")
    assert result.returncode == 0, result.stdout + result.stderr
    assert mine.read_text() == "[detector]\nscore_threshold = 0.7\n"
    assert "kept the existing /etc/rover/rover.toml" in result.stdout


def test_another_prefix_is_written_into_every_unit_path(checkout: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = install(checkout, "--destdir", str(root), "--no-venv", "--prefix", "/srv/car")
    assert result.returncode == 0, result.stdout + result.stderr
    drive = (root / "etc/systemd/system/rover-drive.service").read_text()
    assert "ExecStart=/srv/car/venv/bin/rover-drive " in drive
    assert "ExecStopPost=/srv/car/venv/bin/rover-safestop " in drive
    assert f"{INSTALL_PREFIX}/" not in drive, "a path still points into the default prefix"
    # --no-venv leaves the programs missing, and says so.
    assert "not installed yet" in result.stdout and "/srv/car/venv/bin/rover-detector" in result.stdout


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--frobnicate"], 2, "unknown option --frobnicate"),
    (["--prefix", "opt/rover"], 2, "--prefix must be an absolute path"),
    (["--extras", "pi6"], 2, "--extras must be pi, pi5, none or auto"),
])
def test_bad_usage_is_one_clear_line(checkout: Path, args: list[str], code: int, words: str) -> None:
    result = install(checkout, *args)
    assert result.returncode == code
    errors = [line for line in result.stderr.splitlines() if line.startswith("install.sh:")]
    assert len(errors) == 1 and words in errors[0], result.stderr


def test_refuses_to_run_without_root_unless_staging() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux) to run the script as another user")
    # This checkout's own script: it stops at the root check, before writing anything.
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "bash", str(REPO / "systemd" / "install.sh"), "--no-venv"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 78
    assert "run as root" in result.stderr
