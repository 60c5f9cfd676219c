"""Run a child process on this CPU with part of its CPUID hidden: AVX2 kernels at native speed.

onnxruntime's MLAS (and PyTorch, numpy, oneDNN) choose their kernels from
CPUID once per process, so on an AVX-512 VNNI machine the AVX2 kernels of a
Zen 3 run only if CPUID says AVX2. On a CPU and kernel with *CPUID faulting*
(``cpuid_fault`` in /proc/cpuinfo: Intel since Ivy Bridge, and Linux passes
it to KVM guests) ``export/cpumask.c``, loaded with ``LD_PRELOAD``, makes
every CPUID of the process trap and answers it with the profile's feature
bits cleared (:data:`PROFILES`). Everything else runs natively: unlike
:mod:`export.emulate`'s valgrind and qemu, timings under the mask are real.

What it cannot hide: the C library picked its string functions (``memcpy``
...) from CPUID before the shim's constructor ran, so those may still use
AVX-512 (1.6 % of an int8 inference's instructions, docs/export.md), and the
CPU's clock and caches are this machine's, not a Zen 3's.

:func:`build` compiles the shim once into a cache keyed by the source's
hash; :func:`child_env` is the environment of a masked child; :func:`check`
(run in the child) verifies that the mask took effect; :func:`emulator`
plugs it into :func:`export.emulate.run_emulated`.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from rover.core.errors import EXIT_CONFIG, RoverError
from rover.detector.cpu import CPUMASK_ENV, CPUMASK_PROFILES, cpu_flags, masked_flags

SOURCE = Path(__file__).with_name("cpumask.c")
#: What numpy's CPUID probe must report under each profile (the child checks it).
PROFILES: dict[str, dict[str, bool]] = {
    "avx2": {"AVX2": True, "FMA3": True, "AVX512F": False, "AVX512VNNI": False},
    "avx512-novnni": {"AVX2": True, "AVX512F": True, "AVX512_SKX": True, "AVX512VNNI": False},
}
assert tuple(PROFILES) == CPUMASK_PROFILES
#: What each profile makes this machine look like, for printouts.
DESCRIPTIONS = {
    "avx2": "AVX2 + FMA only (no AVX-512, no VNNI: the kernels of a Zen 3 or a Haswell to Comet Lake)",
    "avx512-novnni": "AVX-512 F/BW/DQ/VL without VNNI (the kernels of a Skylake-SP)",
}


class CpuMaskError(RoverError):
    """The mask cannot be used here (no CPUID faulting, no gcc, not x86-64) or did not take effect."""

    exit_code = EXIT_CONFIG


def unavailable(cpuinfo: str | None = None, machine: str | None = None) -> str | None:
    """Why the mask cannot run on this machine, or None when it can."""
    machine = machine or platform.machine()
    if machine.lower() not in ("x86_64", "amd64"):
        return f"the CPUID mask needs an x86-64 CPU (this is {machine})"
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "/proc/cpuinfo is not readable (the CPUID mask needs Linux)"
    if "cpuid_fault" not in cpu_flags(cpuinfo):
        return ("this CPU or its hypervisor has no CPUID faulting (no cpuid_fault in /proc/cpuinfo): "
                "run the AVX2 kernels under valgrind or qemu instead (python -m export.avx2check --emulator valgrind)")  # fmt: skip
    if shutil.which("gcc") is None:
        return "gcc not found: the CPUID mask is compiled on first use (apt install gcc)"
    return None


def cache_dir() -> Path:
    """Where the compiled shim is kept: ``$XDG_CACHE_HOME/rover/cpumask`` (default ``~/.cache``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rover" / "cpumask"


def build(cache: Path | None = None) -> Path:
    """The shim's shared object, compiled on first use; rebuilt only when ``cpumask.c`` changes."""
    reason = unavailable()
    if reason:
        raise CpuMaskError(reason)
    cache = cache or cache_dir()
    source = SOURCE.read_bytes()
    target = cache / f"cpumask-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix="build-") as tmp:
        out = Path(tmp) / target.name
        done = subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", str(SOURCE), "-o", str(out)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise CpuMaskError(f"gcc could not build {SOURCE}: {done.stderr.strip()[-500:]}")
        os.replace(out, target)  # atomic: a concurrent build finds a whole file or none
    return target


def child_env(profile: str, base: Mapping[str, str] | None = None, cache: Path | None = None) -> dict[str, str]:
    """The environment of a child process masked to ``profile`` (``base``: default this process's).

    Python's faulthandler is turned off in the child: the shim chains to a
    handler installed after it, but a fault handler is no use where every
    CPUID faults.
    """
    if profile not in PROFILES:
        raise CpuMaskError(f"unknown CPU mask profile {profile!r}: use one of {', '.join(PROFILES)}")
    env = dict(os.environ if base is None else base)
    shim = str(build(cache))
    env["LD_PRELOAD"] = " ".join(p for p in (shim, env.get("LD_PRELOAD", "")) if p)
    env[CPUMASK_ENV] = profile
    env.pop("PYTHONFAULTHANDLER", None)
    return env


def prefix(profile: str, cache: Path | None = None) -> list[str]:
    """A command prefix (``env ...``) that starts the rest of the command masked to ``profile``."""
    env = child_env(profile, {}, cache)
    return ["env", "-u", "PYTHONFAULTHANDLER", *(f"{k}={v}" for k, v in env.items())]


def active() -> str | None:
    """The profile this process runs under (None: unmasked)."""
    return os.environ.get(CPUMASK_ENV) or None


def check(profile: str | None = None) -> dict[str, bool]:
    """In the masked process: numpy's CPUID probe must show the profile's features; returns them.

    Raises :class:`CpuMaskError` when a feature the profile hides is still
    visible (the shim was not loaded, or a library cached CPUID before it).
    """
    from export.emulate import FEATURES, cpu_features

    profile = profile or active()
    if profile not in PROFILES:
        raise CpuMaskError(f"not running under the CPU mask ({CPUMASK_ENV}={profile!r})")
    seen = cpu_features()
    wrong = {k: seen.get(k) for k, want in PROFILES[profile].items() if seen.get(k) != want and k in FEATURES}
    if wrong:
        raise CpuMaskError(f"the CPUID mask {profile} did not take effect: numpy sees {wrong} (expected {PROFILES[profile]}); "
                           f"is {SOURCE.name} in LD_PRELOAD ({os.environ.get('LD_PRELOAD', '')!r})?")  # fmt: skip
    return seen


def masked_cpuinfo(text: str, profile: str | None) -> str:
    """``/proc/cpuinfo`` text with the ``flags`` lines as the masked process sees its CPU (unchanged for None)."""
    if not profile:
        return text
    lines = []
    for line in text.splitlines():
        if line.startswith("flags"):
            key, _, value = line.partition(":")
            kept = masked_flags(frozenset(value.split()), profile)
            line = f"{key}: " + " ".join(f for f in value.split() if f in kept)
        lines.append(line)
    return "\n".join(lines) + "\n"


def emulator(profile: str = "avx2", cache: Path | None = None):
    """An :class:`export.emulate.Emulator` that runs the worker natively under the mask."""
    from export.emulate import Emulator

    return Emulator("cpuid", tuple(prefix(profile, cache)), f"this CPU with its CPUID masked to {DESCRIPTIONS[profile]}")


def rerun_masked(profile: str, module: str, argv: list[str]) -> int:
    """Run ``python -m module argv`` in a child masked to ``profile``; its exit code (output passes through)."""
    return subprocess.run([sys.executable, "-m", module, *argv], env=child_env(profile), check=False).returncode
