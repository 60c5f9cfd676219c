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
needs it.

Pure logic (:func:`int8_config`) on the machine name and ``/proc/cpuinfo``
flags; :func:`this_cpu_int8_config` reads them.
"""

from __future__ import annotations

import platform
from pathlib import Path

#: ``kOrtSessionOptionsAvx2PrecisionMode`` (onnxruntime_session_options_config_keys.h).
X64_PRECISION_KEY = "session.x64quantprecision"
X86_MACHINES = frozenset({"x86_64", "amd64", "i386", "i686"})
#: What MLAS needs for its AVX-512 VNNI kernels (platform.cpp: AVX-512 F, BW, DQ, VL and VNNI).
AVX512_VNNI = frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni"})


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


def this_cpu_int8_config(cpuinfo_path: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """:func:`int8_config` for the CPU this process runs on (no flags readable: treated as no VNNI)."""
    try:
        text = cpuinfo_path.read_text()
    except OSError:
        text = ""
    return int8_config(platform.machine(), cpu_flags(text))
