"""Where the int8 model's time goes: onnxruntime's own profile, summed per op type.

:func:`op_shares` runs a model with ``SessionOptions.enable_profiling`` and
sums the kernel time of every node per op type (``QLinearConv``, ``Conv``,
``QuantizeLinear``, ...), as onnxruntime records it (``"cat": "Node"``
events ending in ``_kernel_time``). :func:`optimized_op_counts` reports the
graph onnxruntime actually runs after its graph optimizations (what fused
into int8 kernels). :func:`int8_share` is the part of kernel time spent in
int8 kernels, and :func:`conv_macs` the multiply-accumulates of every
convolution, for the achieved GMAC/s.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import shape_inference

from rover.core.contract import INPUT_NAME

#: Kernels that compute in 8-bit integers (onnxruntime's QLinear* contrib ops
#: and the NHWC int8 pooling it rewrites to).
INT8_OPS = frozenset({"QLinearConv", "QLinearAdd", "QLinearMul", "QLinearConcat", "QLinearAveragePool", "QLinearGlobalAveragePool",
                      "QLinearSigmoid", "QLinearLeakyRelu", "QLinearMatMul", "QLinearSoftmax", "NhwcMaxPool"})  # fmt: skip


def session_options(threads: int, optimized_path: Path | None = None, config: Mapping[str, str] | None = None) -> ort.SessionOptions:
    """CPU session options: ``threads`` intra-op threads, full graph optimization, optional config entries."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    return options


def optimized_op_counts(model_path: Path, config: Mapping[str, str] | None = None) -> Counter:
    """Op types of the graph onnxruntime executes, after its optimizations.

    ``config`` takes session config entries; ``{"session.qdqisint8allowed": "1"}``
    applies the rules onnxruntime uses on ARM, where signed int8 QDQ groups
    fuse directly (``QDQIsInt8Allowed()`` is true only there).
    """
    with tempfile.TemporaryDirectory(prefix="rover-opt-") as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        ort.InferenceSession(str(model_path), session_options(1, optimized, config), providers=["CPUExecutionProvider"])
        return Counter(node.op_type for node in onnx.load(str(optimized)).graph.node)


def op_shares(model_path: Path, inputs: Sequence[np.ndarray], threads: int, config: Mapping[str, str] | None = None) -> dict[str, float]:
    """Kernel time per op type over ``inputs`` (after one warm-up run), as fractions summing to 1, largest first."""
    with tempfile.TemporaryDirectory(prefix="rover-prof-") as tmp:
        options = session_options(threads, config=config)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        session.run(None, {INPUT_NAME: inputs[0]})
        for image in inputs:
            session.run(None, {INPUT_NAME: image})
        events = json.loads(Path(session.end_profiling()).read_text())
    return shares_from_profile(events, skip_runs=1)


def shares_from_profile(events: list[dict], skip_runs: int = 0) -> dict[str, float]:
    """Sum ``*_kernel_time`` node events per op type, leaving out the first ``skip_runs`` model runs."""
    runs = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    start = runs[skip_runs] if len(runs) > skip_runs else 0
    total: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time") or event["ts"] < start:
            continue
        total[event.get("args", {}).get("op_name", "?")] += float(event["dur"])
    whole = sum(total.values()) or 1.0
    return dict(sorted(((op, t / whole) for op, t in total.items()), key=lambda kv: -kv[1]))


def int8_share(shares: Mapping[str, float]) -> float:
    """The fraction of kernel time spent in int8 kernels."""
    return sum(v for op, v in shares.items() if op in INT8_OPS)


def conv_macs(model_path: Path) -> dict[str, int]:
    """Multiply-accumulates of one inference: ``{"conv": all convolutions, "heads": the 12 head convolutions}``.

    Per Conv: output elements x (input channels / group) x kernel area, from
    the float model's inferred shapes.
    """
    from export.quantize import HEAD_WEIGHT

    model = shape_inference.infer_shapes(onnx.load(str(model_path)))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*model.graph.value_info, *model.graph.output, *model.graph.input)}
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    macs = {"conv": 0, "heads": 0}
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        out, weight = shapes[node.output[0]], weights[node.input[1]]
        count = int(np.prod(out)) * int(np.prod(weight[1:]))
        macs["conv"] += count
        if HEAD_WEIGHT.search(node.input[1]):
            macs["heads"] += count
    return macs


#: int8 multiply-accumulates one core can issue per cycle, by the widest
#: u8 x s8 instruction onnxruntime's MLAS kernels use (checked in order):
#: AVX-512 VNNI ``vpdpbusd zmm`` is 64 MACs, two per cycle on AMD Zen 4/5
#: and Intel server cores (measured here: docs/export.md); AVX-VNNI is the
#: same on 256 bits; AVX-512 without VNNI (a Skylake-SP, or ``--cpu
#: avx512-novnni``) pairs ``vpmaddubsw zmm`` and ``vpmaddwd zmm`` (an upper
#: bound: the loop measured 38.7 MACs per cycle on Ice Lake-SP, docs/export.md);
#: AVX2 has no dot-product instruction: ``vpmaddubsw``
#: (32 products to int16 pairs) then ``vpmaddwd`` and ``vpaddd``, both
#: multiplies on the two multiply pipes: 32 MACs per cycle.
INT8_MACS_PER_CYCLE = (("avx512_vnni", 128, "AVX-512 VNNI: 2 x vpdpbusd zmm (64 MACs) per cycle"),
                       ("avx_vnni", 64, "AVX-VNNI: 2 x vpdpbusd ymm (32 MACs) per cycle"),
                       ("avx512bw", 64, "AVX-512BW without VNNI: vpmaddubsw + vpmaddwd zmm, at most one pair (64 MACs) per cycle"),
                       ("avx2", 32, "AVX2: vpmaddubsw + vpmaddwd, 32 MACs per cycle"))  # fmt: skip


#: float32 multiply-accumulates (FMA lanes) per core and cycle: two FMA pipes.
#: Zen 5 and Intel server cores run 512-bit FMAs at full width (measured
#: here); Zen 4 splits each into two 256-bit halves (half this figure).
FP32_FMAS_PER_CYCLE = (("avx512f", 32, "AVX-512: 2 x vfmadd zmm (16 lanes) per cycle"),
                       ("fma", 16, "AVX2/FMA: 2 x vfmadd ymm (8 lanes) per cycle"))  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Peak:
    """The machine's int8 multiply-accumulate limit and how it was computed."""

    cores: int
    clock_ghz: float
    macs_per_cycle: int
    instruction: str

    @property
    def gmacs(self) -> float:
        return self.cores * self.clock_ghz * self.macs_per_cycle

    def describe(self) -> str:
        return f"{self.cores} cores x {self.clock_ghz:.2f} GHz x {self.macs_per_cycle} MACs/cycle ({self.instruction}) = {self.gmacs:.0f} GMAC/s"


def int8_peak(cores: int, clock_ghz: float | None = None, cpuinfo: str | None = None) -> Peak | None:
    """The int8 peak of ``cores`` cores from ``/proc/cpuinfo``'s flags; None on CPUs not in the table (e.g. ARM)."""
    return _peak(INT8_MACS_PER_CYCLE, cores, clock_ghz, cpuinfo)


def fp32_peak(cores: int, clock_ghz: float | None = None, cpuinfo: str | None = None) -> Peak | None:
    """The float32 FMA peak, as :func:`int8_peak`."""
    return _peak(FP32_FMAS_PER_CYCLE, cores, clock_ghz, cpuinfo)


def _peak(table, cores: int, clock_ghz: float | None, cpuinfo: str | None) -> Peak | None:
    """``cores`` x clock x the first entry of ``table`` whose flag the CPU has.

    ``clock_ghz`` defaults to /proc/cpuinfo's ``cpu MHz``, which in a virtual
    machine is the nominal clock, not the boost one: pass the real clock when known.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags = set(next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), []))
    if clock_ghz is None:
        mhz = [float(line.split(":", 1)[1]) for line in cpuinfo.splitlines() if line.startswith("cpu MHz")]
        if not mhz:
            return None
        clock_ghz = max(mhz) / 1000.0
    for flag, macs, instruction in table:
        if flag in flags:
            return Peak(cores, clock_ghz, macs, instruction)
    return None
