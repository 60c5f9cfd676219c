"""An emulated Raspberry Pi OS Bookworm (arm64) to run rover's Pi install in.

The root filesystem is arm64 Debian 12 built by ``tests/pi/build-rootfs.sh``
with ``debootstrap`` from the Debian archive this machine's apt uses, cached
in ``~/.cache/rover/pi-rootfs-<hash of the recipe>`` (``ROVER_CACHE`` moves
it), so a second run reuses it. arm64 programs run through qemu-user
(``qemu-user-static``) and binfmt_misc, so every subprocess is emulated too.

Each :class:`EmulatedPi` lays a throw-away overlay over the cached rootfs
and fences it inside a private mount namespace, held open by one process:

- the rootfs is the overlay's lower layer and is never written; everything a
  test does lands in a temporary upper layer removed at close;
- ``/proc/cpuinfo`` is a Raspberry Pi's (Cortex-A72 for a Pi 4, Cortex-A76 for
  a Pi 5): qemu 7.2 shows the guest the host's, and onnxruntime's CPU probing
  then crashes the import; ``QEMU_CPU`` names the same core, since qemu's
  default CPU has SVE2 and i8mm, which no Pi has;
- ``/sys/firmware/devicetree/base/model`` says "Raspberry Pi 4 Model B" (or 5):
  on a Pi ``/proc/device-tree`` is a link to that directory; procfs cannot
  take a new entry on another machine, so the installer reads either;
- this machine's CA bundle, DNS configuration and pip index, so the guest's
  pip reaches the same index (pip's own download cache is not kept between
  sessions: the index here marks its files uncacheable, and an emulated
  install's time is spent in the emulated CPU, not the download);
- what apt gives a Pi that Debian lacks: a ``picamera2`` stand-in
  (``tests/pi/picamera2``) in ``/usr/lib/python3/dist-packages`` with its C
  extension compiled there against Debian's numpy 1.24, and a camera clip
  readable by the ``video`` group.

Commands run with ``nsenter`` into that namespace and ``chroot``; the guest
shares this machine's network, so a guest socket on 127.0.0.1 is reachable
from the test. Nothing stays mounted after :meth:`EmulatedPi.close`: the
namespace ends with its last process, and close kills every process whose
root is the overlay.
"""

from __future__ import annotations

import configparser
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
PI_DIR = REPO / "tests" / "pi"
RECIPE = PI_DIR / "build-rootfs.sh"
STANDIN = PI_DIR / "picamera2"
CACHE = Path(os.environ.get("ROVER_CACHE", Path.home() / ".cache" / "rover"))
BINFMT = Path("/proc/sys/fs/binfmt_misc")
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Where the picamera2 stand-in's camera clip lives in the guest (see tests/pi/picamera2).
GUEST_CLIP = "/var/lib/picamera2-standin/clip.npy"
#: How a test runs what the README runs with sudo as the pi user: as root with sudo's
#: variables. sudo itself cannot gain root here: a set-user-ID program under
#: qemu-user keeps the caller's uid unless binfmt_misc's entry has the C flag,
#: which would change this machine's registration for every program.
SUDO = {"user": "root", "env": {"SUDO_USER": "pi", "SUDO_UID": "1000", "SUDO_GID": "1000"}}
#: The checkout is copied here, as a Pi owner's `git clone` in the pi user's home.
GUEST_CHECKOUT = "/home/pi/rover"

#: Per Raspberry Pi model: QEMU_CPU, /proc/cpuinfo as its 64-bit kernel shows it, device-tree model.
_A72 = ("cortex-a72", "fp asimd evtstrm crc32 cpuid", "0x0", "0xd08", "3", "c03114", "Raspberry Pi 4 Model B Rev 1.4")
_A76 = (
    "cortex-a76",
    "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp",
    "0x4", "0xd0b", "1", "d04170", "Raspberry Pi 5 Model B Rev 1.0",
)  # fmt: skip
PI_MODELS = {4: _A72, 5: _A76}


class EmulationError(RuntimeError):
    """The emulated Pi could not be built or started."""


def _cpuinfo(model: int) -> str:
    _cpu, features, variant, part, revision, board_rev, name = PI_MODELS[model]
    cores = "".join(
        f"processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
        f"CPU architecture: 8\nCPU variant\t: {variant}\nCPU part\t: {part}\nCPU revision\t: {revision}\n\n"
        for n in range(4)
    )
    return f"{cores}Revision\t: {board_rev}\nSerial\t\t: 10000000c0ffee{model:02d}\nModel\t\t: {name}\n"


def recipe_key() -> str:
    """The cache key of the rootfs: a hash of its recipe."""
    return hashlib.sha256(RECIPE.read_bytes()).hexdigest()[:16]


def rootfs_path() -> Path:
    return CACHE / f"pi-rootfs-{recipe_key()}"


def debian_mirror() -> str | None:
    """The Debian archive URL of this machine's apt configuration (deb822 or one-line format)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file() or path.suffix not in ("", ".list", ".sources"):
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
                if "bookworm" in fields.get("Suites", "").split() and fields.get("Types", "").split()[:1] == ["deb"]:
                    for uri in fields.get("URIs", "").split():
                        if not uri.rstrip("/").endswith("-security"):
                            return uri.rstrip("/")
        else:
            for line in text.splitlines():
                m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", line)
                if m and not m.group(1).rstrip("/").endswith("-security"):
                    return m.group(1).rstrip("/")
    return None


def _reachable(url: str, timeout: float = 10.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the apt mirror)
            return response.status == 200
    except OSError:
        return False


def pip_index() -> str | None:
    """The index URL this machine's pip uses, if it sets one (else pip's default)."""
    value = os.environ.get("PIP_INDEX_URL")
    if value:
        return value
    for path in (Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"), Path.home() / ".config/pip/pip.conf"):
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except configparser.Error:
            continue
        if parser.has_option("global", "index-url"):
            return parser.get("global", "index-url")
    return None


def ca_bundle() -> Path | None:
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def enable_binfmt() -> str | None:
    """Make sure arm64 binaries run through qemu here; why not, or None."""
    if not (BINFMT / "register").exists():
        result = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True, text=True)
        if result.returncode != 0:
            return f"cannot mount binfmt_misc: {result.stderr.strip()}"
    entry = BINFMT / "qemu-aarch64"
    if not entry.is_file() or not entry.read_text().startswith("enabled"):
        if shutil.which("update-binfmts") is None:
            return "update-binfmts is not installed (apt install binfmt-support)"
        result = subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True, text=True)
        if result.returncode != 0 or not entry.is_file():
            return f"cannot enable the qemu-aarch64 binfmt entry: {(result.stderr or result.stdout).strip()}"
    if "F" not in re.search(r"flags: (\S*)", entry.read_text()).group(1):
        return "the qemu-aarch64 binfmt entry lacks the F flag (use qemu-user-static)"
    return None


def unavailable_reason() -> str | None:
    """Why the emulated Pi cannot run on this machine, or None. Cheap checks only."""
    if os.geteuid() != 0:
        return "the emulated Pi needs root (debootstrap, mounts, chroot)"
    for tool in ("unshare", "nsenter", "chroot", "mount", "qemu-aarch64-static", "tar"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt install qemu-user-static binfmt-support debootstrap)"
    reason = enable_binfmt()
    if reason:
        return reason
    if not rootfs_path().is_dir():
        if shutil.which("debootstrap") is None:
            return "debootstrap is not installed (apt install debootstrap)"
        mirror = debian_mirror()
        if mirror is None:
            return "no Debian bookworm archive in this machine's apt sources"
        if not _reachable(f"{mirror}/dists/bookworm/Release"):
            return f"the Debian archive {mirror} is unreachable"
    return None


def ensure_rootfs(log: Path, timeout: float = 1500.0) -> tuple[Path, float | None]:
    """The cached rootfs, built first if missing; returns (path, build seconds or None if cached)."""
    path = rootfs_path()
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "pi-rootfs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; a second waiter then finds it built
        if path.is_dir():
            return path, None
        mirror = debian_mirror()
        if mirror is None:
            raise EmulationError("no Debian bookworm archive in this machine's apt sources")
        for stale in CACHE.glob("pi-rootfs-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        start = time.monotonic()
        with open(log, "w") as out:
            result = subprocess.run(["bash", str(RECIPE), str(path), mirror], stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
        if result.returncode != 0 or not path.is_dir():
            raise EmulationError(f"building the rootfs failed (exit {result.returncode}); see {log}")
        return path, time.monotonic() - start


# The namespace holder: $1 rootfs, $2 stage directory. It mounts the guest and
# prints "ready", then waits until its stdin closes.
_HOLDER = r"""
set -eu
rootfs="$1"; stage="$2"; m="$stage/merged"
mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$stage/upper,workdir=$stage/work" "$m"
mount -t proc proc "$m/proc"
mount --bind "$stage/cpuinfo" "$m/proc/cpuinfo"
mount -t sysfs sysfs "$m/sys"
mount -t tmpfs -o mode=0755 tmpfs "$m/sys/firmware"
mkdir -p "$m/sys/firmware/devicetree/base"
cp "$stage/model" "$m/sys/firmware/devicetree/base/model"
mount -o remount,ro "$m/sys/firmware"
mount --rbind /dev "$m/dev"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$m/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$m/tmp"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$m/dev/shm"
mkdir -p "$m/run/lock"
mount --bind /etc/resolv.conf "$m/etc/resolv.conf"
mount --bind "$stage/ca.crt" "$m/etc/ssl/certs/ca-certificates.crt"
echo ready
read -r _ || true
"""


class EmulatedPi:
    """One throw-away Raspberry Pi (model 4 or 5) over the cached rootfs."""

    def __init__(self, rootfs: Path, model: int = 4, *, stage: Path | None = None) -> None:
        if model not in PI_MODELS:
            raise ValueError(f"model must be one of {sorted(PI_MODELS)}")
        self.rootfs = rootfs
        self.model = model
        self.qemu_cpu = PI_MODELS[model][0]
        self.stage = Path(stage or tempfile.mkdtemp(prefix="rover-pi-"))
        self.root = self.stage / "merged"
        self._holder: subprocess.Popen[str] | None = None
        self._children: list[subprocess.Popen[bytes]] = []

    # -- life cycle ---------------------------------------------------------------
    def start(self) -> "EmulatedPi":
        for name in ("upper", "work", "merged"):
            (self.stage / name).mkdir(parents=True, exist_ok=True)
        (self.stage / "cpuinfo").write_text(_cpuinfo(self.model))
        (self.stage / "model").write_bytes(PI_MODELS[self.model][6].encode() + b"\0")
        bundle = ca_bundle()
        if bundle is None:
            raise EmulationError("no CA bundle on this machine for the guest's pip")
        shutil.copyfile(bundle, self.stage / "ca.crt")
        self._holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--fork", "--kill-child=SIGKILL",
             "sh", "-c", _HOLDER, "holder", str(self.rootfs), str(self.stage)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        line = self._holder.stdout.readline() if self._holder.stdout else ""
        if line.strip() != "ready":
            err = self._holder.stderr.read() if self._holder.stderr else ""
            self.close()
            raise EmulationError(f"cannot set up the emulated Pi's mounts: {err.strip() or line.strip()}")
        self._write_pip_conf()
        return self

    def __enter__(self) -> "EmulatedPi":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ns_pid(self) -> int:
        """The PID of the shell inside the namespace (unshare --fork's child)."""
        assert self._holder is not None
        children = Path(f"/proc/{self._holder.pid}/task/{self._holder.pid}/children").read_text().split()
        if not children:
            raise EmulationError("the emulated Pi's namespace holder is gone")
        return int(children[0])

    def _write_pip_conf(self) -> None:
        """The guest's pip uses this machine's index and CA bundle, as the Pi's network would need."""
        lines = ["[global]", "cert = /etc/ssl/certs/ca-certificates.crt"]
        index = pip_index()
        if index:
            lines.append(f"index-url = {index}")
        self.write_file("/etc/pip.conf", "\n".join(lines) + "\n")

    def close(self) -> None:
        for child in self._children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=10)
        self._kill_guest_processes()
        if self._holder is not None:
            if self._holder.poll() is None:
                try:
                    self._holder.communicate("", timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self._holder.pid, signal.SIGKILL)
                    self._holder.wait(timeout=10)
            self._holder = None
        shutil.rmtree(self.stage, ignore_errors=True)

    def _kill_guest_processes(self) -> None:
        """SIGKILL whatever still runs inside the overlay (daemons a test left)."""
        if self._holder is None or self._holder.poll() is not None:
            return
        try:
            ns = os.readlink(f"/proc/{self._ns_pid()}/ns/mnt")
        except (OSError, EmulationError):
            return
        holder_pids = {self._holder.pid, self._ns_pid()}
        for _ in range(3):
            victims = []
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit() or int(proc.name) in holder_pids:
                    continue
                try:
                    if os.readlink(proc / "ns/mnt") == ns and os.readlink(proc / "root") != "/":
                        victims.append(int(proc.name))
                except OSError:
                    continue
            if not victims:
                return
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)

    # -- running commands -----------------------------------------------------------
    def command(self, argv: Sequence[str], *, user: str = "root", env: Mapping[str, str] | None = None, cwd: str = "/") -> list[str]:
        """The host command that runs ``argv`` in the guest as ``user`` (a login-less environment)."""
        home = "/root" if user == "root" else ("/home/pi" if user == "pi" else "/")
        base = {"PATH": GUEST_PATH, "LANG": "C.UTF-8", "HOME": home, "USER": user, "QEMU_CPU": self.qemu_cpu}
        base.update(env or {})
        inner = ["env", "-i", *[f"{k}={v}" for k, v in base.items()]]
        if user != "root":
            inner = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--reset-env", *inner]
        script = f"cd {shlex.quote(cwd)} && exec " + " ".join(shlex.quote(a) for a in inner + list(argv))
        return ["nsenter", f"--target={self._ns_pid()}", "--mount", "chroot", str(self.root), "/bin/sh", "-c", script]

    def run(self, argv: Sequence[str], *, timeout: float, user: str = "root", env: Mapping[str, str] | None = None,
            cwd: str = "/", input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the guest to completion (stdout and stderr captured as text)."""
        done = subprocess.run(self.command(argv, user=user, env=env, cwd=cwd), input=input, capture_output=True, timeout=timeout)
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(errors="replace"),
                                           done.stderr.decode(errors="replace"))  # fmt: skip

    def popen(self, argv: Sequence[str], *, stdout: Path, user: str = "root", env: Mapping[str, str] | None = None,
              cwd: str = "/") -> subprocess.Popen[bytes]:
        """Start ``argv`` in the guest in the background, output (both streams) to ``stdout``."""
        with open(stdout, "wb") as out:
            child = subprocess.Popen(self.command(argv, user=user, env=env, cwd=cwd), stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        self._children.append(child)
        return child

    def guest_pids(self, name: str) -> list[int]:
        """Host PIDs of guest processes whose command line contains ``name``."""
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if os.readlink(proc / "root") == str(self.root) and name in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
        return pids

    # -- files ------------------------------------------------------------------------
    def path(self, guest_path: str) -> Path:
        """The host path of a guest file, valid while the Pi runs.

        The overlay is mounted only in the private namespace: it is reached
        through the namespace's /proc/PID/root, never at self.root from here.
        """
        return Path(f"/proc/{self._ns_pid()}/root") / str(self.root).lstrip("/") / guest_path.lstrip("/")

    def write_file(self, guest_path: str, text: str | bytes, mode: int = 0o644) -> None:
        target = self.path(guest_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode() if isinstance(text, str) else text)
        target.chmod(mode)

    def copy_checkout(self, source: Path = REPO, dest: str = GUEST_CHECKOUT, owner: str = "pi") -> None:
        """Copy the checkout's tracked and new files (not ignored ones: no .venv) as a clone would have them."""
        files = subprocess.run(["git", "-C", str(source), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                               capture_output=True, check=True).stdout.split(b"\0")  # fmt: skip
        files = [f for f in files if f and (source / f.decode()).is_file()]
        target = self.path(dest)
        target.mkdir(parents=True, exist_ok=True)
        pack = subprocess.Popen(["tar", "-C", str(source), "--null", "-T", "-", "-cf", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        unpack = subprocess.Popen(["tar", "-C", str(target), "-xf", "-"], stdin=pack.stdout)
        assert pack.stdin is not None and pack.stdout is not None
        pack.stdin.write(b"\0".join(files) + b"\0")
        pack.stdin.close()
        pack.stdout.close()
        if unpack.wait(timeout=120) != 0 or pack.wait(timeout=120) != 0:
            raise EmulationError(f"copying {source} into the emulated Pi failed")
        result = self.run(["chown", "-R", f"{owner}:{owner}", dest], timeout=120)
        if result.returncode != 0:
            raise EmulationError(f"chown {dest}: {result.stderr.strip()}")

    def install_picamera2_standin(self, clip: bytes) -> None:
        """What `apt install python3-picamera2` puts on a Pi, played by the stand-in; ``clip`` is its .npy scene."""
        dest = "/usr/lib/python3/dist-packages/picamera2"
        shutil.copytree(STANDIN, self.path(dest), ignore=shutil.ignore_patterns("__pycache__", "*.so"), dirs_exist_ok=True)
        build = self.run(
            ["sh", "-c",
             "gcc -shared -fPIC -O2 -I/usr/include/python3.11 -I/usr/lib/python3/dist-packages/numpy/core/include "
             f"{dest}/encoders/_pixels.c -o {dest}/encoders/_pixels$(python3 -c "
             "'import sysconfig; print(sysconfig.get_config_var(\"EXT_SUFFIX\"))') "
             f"&& rm {dest}/encoders/_pixels.c && python3 -m compileall -q {dest}"],
            timeout=300,
        )  # fmt: skip
        if build.returncode != 0:
            raise EmulationError(f"building the picamera2 stand-in failed: {build.stderr.strip()}")
        self.write_file(GUEST_CLIP, clip, mode=0o640)
        result = self.run(["chgrp", "-R", "video", str(Path(GUEST_CLIP).parent)], timeout=60)
        if result.returncode != 0:
            raise EmulationError(f"chgrp video {GUEST_CLIP}: {result.stderr.strip()}")
        self.path(str(Path(GUEST_CLIP).parent)).chmod(0o750)
