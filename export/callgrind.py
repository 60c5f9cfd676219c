"""Instruction counts of one inference under ``valgrind --tool=callgrind``, grouped by kind of kernel.

A proxy, not a time: callgrind counts executed instructions (``Ir``),
repeatably, on valgrind's emulated CPU (AVX2, no AVX-512, so onnxruntime's
AVX2 kernels). It says nothing about cycles: a ``vpmaddubsw`` and a scalar
``add`` count one each.

onnxruntime's wheel is stripped, so its functions appear as entry
addresses; each is classified by the instructions of its body (objdump from
the entry to its first ``ret``): a function that multiplies bytes
(``vpmaddubsw``, ``vpdpbusd``) or 16-bit words (``vpmaddwd``) is an int8
multiply kernel; one with ``vfmadd`` an fp32 FMA kernel. One steady-state
inference is the difference of a process that runs the model twice and one
that runs it once (session creation, imports and the first run's
allocations cancel out).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from export.emulate import ModelRun, run_emulated

INT8_MNEMONICS = ("vpmaddubsw", "vpdpbusd", "vpdpbusds", "vpmaddwd")
FP32_MNEMONICS = ("vfmadd", "vfnmadd")
GROUPS = ("int8 multiply kernels", "fp32 FMA kernels", "other onnxruntime code", "libc (memset, memcpy, malloc)", "Python, numpy, other")
#: Functions below this share of the instructions are not disassembled: they count as
#: "other onnxruntime code" (hundreds of them, together well under 1 %).
SMALLEST_CLASSIFIED = 1e-4
_LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*?):(\S.*?)\s+\[(.+)\]\s*$")


@dataclass(frozen=True)
class Counts:
    """Instructions of one inference: total, per group, and the largest functions."""

    total: int
    groups: dict[str, int]
    functions: list[tuple[str, str, int]]  #: (function, group, instructions), largest first

    def share(self, group: str) -> float:
        return self.groups.get(group, 0) / self.total if self.total else 0.0


def callgrind_prefix(out_file: Path) -> tuple[str, ...]:
    return ("valgrind", "--tool=callgrind", "-q", f"--callgrind-out-file={out_file}")


def per_function(out_file: Path) -> Counter:
    """Self instructions per ``(function, object)`` from ``callgrind_annotate``."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", str(out_file)],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    counts: Counter = Counter()
    for line in text.splitlines():
        match = _LINE.match(line)
        if match and match.group(3) != "PROGRAM TOTALS":  # f'2: f at recursion depth 2, the same code
            counts[(match.group(3).split("'")[0], match.group(4))] += int(match.group(1).replace(",", ""))
    return counts


@cache
def _mnemonics(obj: str, address: int) -> frozenset[str]:
    """Mnemonics from ``address`` in ``obj`` to the first ``ret`` (at most 16 KiB)."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={address}", f"--stop-address={address + 0x4000}", obj],
                          capture_output=True, text=True, check=False).stdout  # fmt: skip
    found = set()
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].strip().endswith(":"):
            mnemonic = parts[1].split()[0] if parts[1].split() else ""
            found.add(mnemonic)
            if mnemonic.startswith("ret"):
                break
    return frozenset(found)


def classify(function: str, obj: str) -> str:
    """The group of one function (see the module docstring)."""
    if "onnxruntime" in obj:
        if function.startswith("0x"):
            body = _mnemonics(obj, int(function, 16))
            if any(m.startswith(INT8_MNEMONICS) for m in body):
                return GROUPS[0]
            if any(m.startswith(FP32_MNEMONICS) for m in body):
                return GROUPS[1]
        return GROUPS[2]
    if "libc.so" in obj:
        return GROUPS[3]
    return GROUPS[4]


def one_inference(model: Path, image: np.ndarray, config: dict[str, str] | None = None, timeout: float | None = None) -> Counts:
    """Instructions of one steady-state inference of ``model`` on ``image`` (one thread), grouped."""
    runs = [ModelRun("m", Path(model), config or {})]
    counts = []
    with tempfile.TemporaryDirectory(prefix="rover-cg-") as tmp:
        for repeat in (1, 2):
            out = Path(tmp) / f"callgrind.{repeat}.out"
            run_emulated(callgrind_prefix(out), runs, [image], threads=1, repeat=repeat, timeout=timeout)
            counts.append(per_function(out))
    diff = {key: counts[1][key] - counts[0].get(key, 0) for key in counts[1]}
    smallest = SMALLEST_CLASSIFIED * sum(diff.values())
    groups: dict[str, int] = defaultdict(int)
    functions = []
    for (function, obj), n in diff.items():
        group = classify(function, obj) if n >= smallest else classify("", obj)
        groups[group] += n
        functions.append((f"{function} [{Path(obj).name}]", group, n))
    functions.sort(key=lambda f: -f[2])
    return Counts(sum(groups.values()), dict(groups), functions)


def describe(label: str, counts: Counts, top: int = 5) -> Sequence[str]:
    """Printable lines: the total, the share of each group and the largest functions."""
    lines = [f"{label}: {counts.total / 1e9:.2f} G instructions per inference; "
             + ", ".join(f"{g} {counts.share(g):.1%}" for g in GROUPS if counts.groups.get(g))]  # fmt: skip
    for function, group, n in counts.functions[:top]:
        lines.append(f"    {n / counts.total:6.1%}  {function}  ({group})")
    return lines

