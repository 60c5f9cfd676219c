"""Boot a real systemd as PID 1 of private namespaces, to test units for real.

The machine running the tests has systemd installed but not running. As root
it can still boot one: ``unshare`` gives a new PID namespace (so systemd is
PID 1 there and ``reboot()`` only ends that namespace) and a new mount
namespace. The new mount namespace starts as a *copy* of the machine's
filesystem, so everything that could write to the machine is fenced off first,
inside the namespace, before systemd starts:

- private tmpfs over ``/run``, ``/tmp``, ``/var/tmp`` and ``/dev/shm``, so
  systemd's boot-time cleanup and the services' runtime files never touch the
  machine's (the machine's ``/tmp`` is never emptied);
- ``/sys`` and ``/proc/sys`` read-only, so no kernel setting changes;
- a fresh cgroup2 hierarchy rooted at a child cgroup made for this boot (a
  cgroup namespace), so systemd's slices live under that child and the whole
  boot can be killed at once with ``cgroup.kill``;
- ``/dev/console`` replaced by a pseudo-terminal the harness reads into
  ``console.log`` of the stage directory, so PID 1's own messages land there
  and not on the machine's console;
- ``container=rover-test`` in PID 1's environment: systemd and
  systemd-shutdown then skip everything that is machine-wide (no unmount or
  loop/DM detach at shutdown, no clock or kernel module handling);
- ``SYSTEMD_UNIT_PATH=/run/systemd/system`` (the private ``/run``), so the
  only units that exist are the ones the test stages: none of the machine's
  own units can be started, not even as a dependency. Boot goes to the
  test's own target (``--unit=``).

UTS, IPC and network namespaces are private too. :meth:`NamespaceBoot.close`
powers the namespace off with ``systemctl poweroff`` and, if that does not end
it in time (or anything failed), kills every process of the boot with
``cgroup.kill`` and SIGKILL, then removes the boot's cgroups. Every
subprocess call has a timeout, so a hung namespace never outlives its test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping

SYSTEMD = Path("/lib/systemd/systemd")
CGROUP2 = Path("/sys/fs/cgroup/unified")
#: Inside the namespace, the stage directory is bind-mounted here.
STAGE_IN_NS = "/run/rover-stage"
#: systemd's own units needed for ``systemctl poweroff`` to work; copied from
#: the machine into the private unit directory. They start no programs.
SHUTDOWN_UNITS = ("poweroff.target", "systemd-poweroff.service", "shutdown.target", "umount.target", "final.target")
SYSTEM_UNIT_DIR = Path("/lib/systemd/system")
#: The standard targets units order themselves against (DefaultDependencies
#: pulls in sysinit.target and basic.target). Staged as empty targets: the
#: units keep their real dependencies, but nothing of the machine's boot runs.
STUB_TARGETS = (
    "sysinit.target", "basic.target", "local-fs.target", "local-fs-pre.target", "swap.target",
    "sockets.target", "timers.target", "paths.target", "slices.target",
    "network.target", "network-online.target", "network-pre.target", "multi-user.target",
)

# The script PID 1 of the namespace runs before it becomes systemd. $1 is the
# stage directory (as the machine sees it), $2 the target to boot, $3 the
# pseudo-terminal that stands in for /dev/console.
_INIT_SCRIPT = r"""
set -eu
stage="$1"; target="$2"; console="$3"
mount --make-rprivate /
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p /run/rover-stage
mount --bind "$stage" /run/rover-stage
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount --bind "$console" /dev/console
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mount -o remount,bind,ro /sys
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
mkdir -p /run/systemd/system
cp -R /run/rover-stage/units/. /run/systemd/system/
exec env -i container=rover-test SYSTEMD_UNIT_PATH=/run/systemd/system \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    /lib/systemd/systemd --unit="$target" --log-target=console --log-level=info \
    --show-status=no --crash-reboot=no
"""


class BootError(RuntimeError):
    """The namespace could not be booted, or did not answer in time."""


def unavailable_reason() -> str | None:
    """Why a namespace boot is impossible here, or None when it may work.

    Cheap checks only; only a boot (:meth:`NamespaceBoot.start`) tells for sure.
    """
    if os.geteuid() != 0:
        return "booting systemd in a namespace needs root"
    for tool in ("unshare", "nsenter", "mount", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not SYSTEMD.is_file():
        return f"{SYSTEMD} is not installed"
    if not (CGROUP2 / "cgroup.procs").is_file() and not Path("/sys/fs/cgroup/cgroup.procs").is_file():
        return "no cgroup2 hierarchy is mounted"
    for name in SHUTDOWN_UNITS:
        if not (SYSTEM_UNIT_DIR / name).is_file():
            return f"{SYSTEM_UNIT_DIR / name} is missing"
    return None


def _cgroup2_root() -> Path:
    """Where the machine's cgroup2 hierarchy is mounted (hybrid or unified)."""
    if (CGROUP2 / "cgroup.procs").is_file():
        return CGROUP2
    return Path("/sys/fs/cgroup")


def remove_stale_cgroups(root: Path) -> None:
    """Remove what boots whose test process was killed left: empty cgroups, stages.

    Their processes are already gone (``--pdeathsig``); a boot still running
    has processes in its cgroup and is left alone.
    """
    for top in root.glob("rover-nsboot-*"):
        if any((d / "cgroup.procs").read_text().strip() for d in [top, *top.rglob("*")] if d.is_dir()):
            continue
        NamespaceBoot._remove_cgroup(top)
        suffix = top.name.rsplit("-", 1)[-1]
        shutil.rmtree(Path(tempfile.gettempdir()) / f"rover-nsboot-{suffix}", ignore_errors=True)


class NamespaceBoot:
    """One systemd boot in private namespaces, with the given units staged.

    ``units`` maps a unit file name (or ``name.d/drop-in.conf``) to its text;
    ``target`` is the unit systemd boots to. Use as a context manager: the
    namespace is always gone when the ``with`` block ends.
    """

    def __init__(
        self,
        units: Mapping[str, str],
        target: str = "rover-test.target",
        *,
        boot_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stage = Path(tempfile.mkdtemp(prefix="rover-nsboot-"))
        self.stage.chmod(0o755)
        self.target = target
        self.boot_timeout = boot_timeout
        self._clock = clock
        self._process: subprocess.Popen[bytes] | None = None
        self.init_pid: int | None = None
        self._cgroup: Path | None = None
        self._console_fds: tuple[int, int] | None = None
        self._console_reader: threading.Thread | None = None
        units_dir = self.stage / "units"
        units_dir.mkdir()
        for name in SHUTDOWN_UNITS:
            shutil.copy(SYSTEM_UNIT_DIR / name, units_dir / name)
        all_units = {name: f"[Unit]\nDescription=stand-in for {name}\n" for name in STUB_TARGETS}
        all_units.update(units)
        all_units.setdefault(target, "[Unit]\nDescription=rover test boot target\n")
        for name, text in all_units.items():
            path = units_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (self.stage / "logs").mkdir(mode=0o777)
        (self.stage / "logs").chmod(0o777)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> "NamespaceBoot":
        """Boot, and return once systemd answers and the boot job is done."""
        root = _cgroup2_root()
        remove_stale_cgroups(root)
        self._cgroup = root / f"rover-nsboot-{os.getpid()}-{self.stage.name[-8:]}"
        self._cgroup.mkdir()
        # setpriv --pdeathsig: should the test process die without cleaning up,
        # unshare gets SIGKILL, and --kill-child takes the namespace with it.
        argv = [
            "setpriv", "--pdeathsig", "KILL",
            "sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(self._cgroup),
            "unshare", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc",
            "--uts", "--ipc", "--net", "--cgroup", "--propagation", "private",
            "sh", "-c", _INIT_SCRIPT, "rover-nsboot-init", str(self.stage), self.target,
            self._open_console(),
        ]
        with open(self.stage / "unshare.log", "wb") as errors:
            self._process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=errors, stderr=errors, start_new_session=True
            )
        try:
            self.init_pid = self._wait(self._find_init_pid, "the namespace's PID 1 to appear", 10.0)
            self._wait(self._booted, "systemd to finish booting", self.boot_timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def _open_console(self) -> str:
        """A pseudo-terminal for PID 1's console, drained into console.log."""
        master, slave = os.openpty()
        self._console_fds = (master, slave)
        log_path = self.stage / "console.log"

        def drain() -> None:
            with open(log_path, "ab", buffering=0) as log:
                while True:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # the slave side closed, or close() closed master
                        return
                    if not chunk:
                        return
                    log.write(chunk.replace(b"\r\n", b"\n"))

        self._console_reader = threading.Thread(target=drain, name="nsboot-console", daemon=True)
        self._console_reader.start()
        return os.ttyname(slave)

    def _close_console(self) -> None:
        if self._console_fds is not None:
            for fd in self._console_fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._console_fds = None
        if self._console_reader is not None:
            self._console_reader.join(2.0)
            self._console_reader = None

    def _find_init_pid(self) -> int | None:
        assert self._process is not None
        if self._process.poll() is not None:
            raise BootError(f"the namespace ended during boot (exit {self._process.returncode}): {self.diagnostics()}")
        try:
            children = Path(f"/proc/{self._process.pid}/task/{self._process.pid}/children").read_text().split()
        except OSError:
            return None
        if not children:
            return None
        pid = int(children[0])
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return None
        return pid if exe == os.path.realpath(SYSTEMD) else None

    def _booted(self) -> bool:
        state = self.systemctl("is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return True
        if state in ("maintenance", "stopping", "offline"):
            raise BootError(f"systemd in the namespace is {state}: {self.diagnostics()}")
        return False

    def _wait(self, probe: Callable[[], object], what: str, timeout: float) -> object:
        deadline = self._clock() + timeout
        while True:
            value = probe()
            if value:
                return value
            if self._clock() > deadline:
                raise BootError(f"timed out after {timeout:g} s waiting for {what}: {self.diagnostics()}")
            time.sleep(0.1)

    def wait_for(self, probe: Callable[[], object], what: str, timeout: float = 30.0) -> object:
        """Poll ``probe`` until it returns something true; BootError on timeout."""
        return self._wait(probe, what, timeout)

    def close(self, poweroff_timeout: float = 20.0) -> int | None:
        """Power the namespace off; kill it if it does not end in time.

        Returns the exit status of the namespace's PID 1 after a clean
        ``systemctl poweroff``, or None when it had to be killed.
        """
        if self._process is None:
            self._remove_stage()
            return None
        status: int | None = None
        try:
            if self._process.poll() is None and self.init_pid is not None:
                self.run(["systemctl", "--no-block", "poweroff"], timeout=10.0, check=False)
                try:
                    status = self._process.wait(poweroff_timeout)
                except subprocess.TimeoutExpired:
                    status = None
        except (OSError, subprocess.SubprocessError):
            status = None
        finally:
            self.kill()
            self._remove_stage()
        return status

    def kill(self) -> None:
        """End every process of the boot at once and remove its cgroups."""
        if self._cgroup is not None and self._cgroup.exists():
            try:
                (self._cgroup / "cgroup.kill").write_text("1")
            except OSError:
                pass
        if self._process is not None:
            if self._process.poll() is None:
                try:
                    os.killpg(self._process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                self._process.wait(10.0)
            except subprocess.TimeoutExpired:
                pass
        if self._cgroup is not None:
            self._remove_cgroup(self._cgroup)
        self._close_console()

    @staticmethod
    def _remove_cgroup(top: Path) -> None:
        deadline = time.monotonic() + 10.0
        while top.exists() and time.monotonic() < deadline:
            for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                try:
                    path.rmdir()
                except OSError:
                    pass
            try:
                top.rmdir()
            except OSError:
                time.sleep(0.1)

    def _remove_stage(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)

    def __enter__(self) -> "NamespaceBoot":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside the namespace ---------------------------------------------
    def run(self, argv: Iterable[str], *, timeout: float = 30.0, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command inside every namespace of the boot (``nsenter --all``)."""
        if self.init_pid is None:
            raise BootError("the namespace is not booted")
        command = ["nsenter", "--target", str(self.init_pid), "--all", "--", *argv]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise BootError(f"{' '.join(argv)} failed with exit {result.returncode}: {result.stderr.strip()}")
        return result

    def systemctl(self, *args: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """``systemctl`` against the namespace's systemd."""
        return self.run(["systemctl", "--no-pager", *args], check=check, timeout=timeout)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """Unit properties as a dict (``systemctl show -p ...``)."""
        out = self.systemctl("show", unit, *(f"--property={p}" for p in properties)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def path(self, inside: str) -> Path:
        """A path of the namespace's filesystem, as the machine can open it."""
        assert self.init_pid is not None
        return Path(f"/proc/{self.init_pid}/root") / inside.lstrip("/")

    def log(self, name: str) -> str:
        """A service's output file in the stage's ``logs/`` directory ('' if none)."""
        try:
            return (self.stage / "logs" / name).read_text(errors="replace")
        except OSError:
            return ""

    def console(self) -> str:
        """What PID 1 of the namespace has logged so far."""
        try:
            return (self.stage / "console.log").read_text(errors="replace")
        except OSError:
            return ""

    def diagnostics(self) -> str:
        """The tails of unshare's errors, PID 1's console and the services' logs."""
        parts = []
        names = ["unshare.log", "console.log"]
        names += sorted(f"logs/{p.name}" for p in (self.stage / "logs").glob("*.log"))
        for name in names:
            try:
                text = (self.stage / name).read_text(errors="replace").strip()
            except OSError:
                continue
            if text:
                parts.append(f"[{name}] " + " | ".join(text.splitlines()[-15:]))
        return " ".join(parts) or "(no output)"
