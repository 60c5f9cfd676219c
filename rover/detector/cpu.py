"""Session options this CPU needs for exact int8 results.

On x86-64, onnxruntime multiplies uint8 activations by int8 weights with
``vpmaddubsw`` unless the CPU has VNNI: that instruction adds each pair of
products into a *saturating* int16 (2 x 255 x 127 does not fit), so a
model's int8 outputs differ from what the same model computes on a CPU with
AVX-512 VNNI or AVX-VNNI (``vpdpbusd``, 32-bit sums) or on ARM. Measured on
the SSD300 (docs/export.md, ``python -m export.avx2check``): the AVX2
kernels move a score by up to 0.3; with ``session.x64quantprecision=1``
(onnxruntime turns weights that need 8 bits into uint8 and takes its U8U8
kernels, which widen to int16 before multiplying) the outputs equal the
VNNI ones. The option is set only where it is needed: on a VNNI CPU it would
swap the fast kernels for slower exact ones it does not need. ARM never
needs it. Its cost on real AVX2 kernels (docs/export.md): 1.44x the fast
mode's time for 8-bit weights, nothing for a model exported with
``--weight-bits 7`` (its weights fit, so none is rewritten).

Pure logic (:func:`int8_config`) on the machine name and ``/proc/cpuinfo``
flags; :func:`this_cpu` reads them, :func:`this_cpu_int8_config` applies them.
What the mode costs with a given model: :mod:`rover.detector.int8mode`. Under ``export/cpumask.c``'s
CPUID mask (``ROVER_CPUMASK``, set only by ``export.cpumask`` to benchmark
this machine as an AVX2 one) the flags it hides from CPUID are dropped
first, so the decision follows the kernels onnxruntime picks.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path

#: ``kOrtSessionOptionsAvx2PrecisionMode`` (onnxruntime_session_options_config_keys.h).
X64_PRECISION_KEY = "session.x64quantprecision"
X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686"})
#: What MLAS needs for its AVX-512 VNNI kernels (platform.cpp: AVX-512 F, BW, DQ, VL and VNNI).
AVX512_VNNI = frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni"})


#: The environment variable naming ``export/cpumask.c``'s profile (the shim reads it too).
CPUMASK_ENV = "ROVER_CPUMASK"
#: /proc/cpuinfo flags that vanish under each profile of that mask: VNNI and AMX always,
#: AVX-512 as a whole for ``avx2``.
_VNNI_FLAGS = frozenset({"avx512_vnni", "avx512_4vnniw", "avx512_bf16", "avx_vnni", "avx_vnni_int8", "avx_vnni_int16",
                         "avx_ne_convert", "avx_ifma", "amx_tile", "amx_int8", "amx_bf16", "amx_fp16", "amx_complex"})  # fmt: skip
CPUMASK_PROFILES = ("avx2", "avx512-novnni")


def masked_flags(flags: frozenset[str], profile: str) -> frozenset[str]:
    """``flags`` as a process under the CPUID mask ``profile`` sees them."""
    if profile not in CPUMASK_PROFILES:
        raise ValueError(f"{CPUMASK_ENV} must be one of {', '.join(CPUMASK_PROFILES)}, got {profile!r}")
    hidden = _VNNI_FLAGS | (frozenset(f for f in flags if f.startswith("avx512")) if profile == "avx2" else frozenset())
    return frozenset(flags - hidden)


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The first ``flags`` line of ``/proc/cpuinfo`` text (empty when there is none, as on ARM)."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def has_vnni(flags: frozenset[str]) -> bool:
    """True when onnxruntime's u8 x s8 kernels sum in 32 bits: AVX-VNNI, or AVX-512 with VNNI."""
    return "avx_vnni" in flags or AVX512_VNNI <= flags


def int8_config(machine: str, flags: frozenset[str]) -> dict[str, str]:
    """Session config entries for exact int8 results on ``machine`` with these CPU ``flags``."""
    if machine.lower() in X86_MACHINES and not has_vnni(flags):
        return {X64_PRECISION_KEY: "1"}
    return {}


def this_cpu(cpuinfo_path: Path = Path("/proc/cpuinfo"), environ: Mapping[str, str] = os.environ) -> tuple[str, frozenset[str]]:
    """The machine name and the CPU flags this process sees (under the CPUID mask: the ones it leaves)."""
    try:
        text = cpuinfo_path.read_text()
    except OSError:
        text = ""
    flags = cpu_flags(text)
    if environ.get(CPUMASK_ENV):
        flags = masked_flags(flags, environ[CPUMASK_ENV])
    return platform.machine(), flags


def this_cpu_int8_config(cpuinfo_path: Path = Path("/proc/cpuinfo"), environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """:func:`int8_config` for the CPU this process runs on (no flags readable: treated as no VNNI)."""
    return int8_config(*this_cpu(cpuinfo_path, environ))
