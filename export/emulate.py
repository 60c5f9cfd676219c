"""Run onnxruntime under a CPU emulator, to exercise the kernels another x86 CPU gets.

onnxruntime's MLAS picks its kernels once per process from CPUID
(``MLAS_PLATFORM::MLAS_PLATFORM``, onnxruntime ``core/mlas/lib/platform.cpp``):
AVX2 + FMA (CPUID.7.0:EBX bit 5, CPUID.1:ECX bit 12) selects
``MlasConvSymDispatchAvx2`` / ``MlasGemmU8S8KernelAvx2`` (``vpmaddubsw``);
AVX-VNNI (CPUID.7.1:EAX bit 4) the ``AvxVnni`` ones; AVX-512 BW/DQ/VL with
VNNI (CPUID.7.0:ECX bit 11) the ``Avx512Vnni`` ones. A process cannot ask for
fewer, so on an AVX-512 machine the AVX2 kernels run only in a process
shown another CPUID: natively under :mod:`export.cpumask` where the CPU has
CPUID faulting (:func:`export.cpumask.emulator` plugs it in here, real
timings), else under an emulator:

- ``valgrind``: valgrind 3.19 emulates AVX2 but not AVX-512 and presents an
  Intel Haswell (family 6 model 60: AVX2 and FMA, no AVX-512, CPUID leaf 7
  subleaf 1 all zero, so no AVX-VNNI). About 100x slower than native.
- ``qemu``: ``qemu-x86_64-static -cpu EPYC-Milan`` (qemu 7.2's TCG has AVX2),
  a Zen 3 model: same kernels, about 250x slower.

Timings under either mean nothing; outputs do (the emulated instructions
compute what the real ones do, saturation included). The worker
(``python -m export.emulate JOB.json``, started by :func:`run_emulated`)
imports numpy and onnxruntime only, runs each model of the job on the same
inputs and writes their outputs, the graph onnxruntime optimized, and the
CPU features the process saw (numpy's own CPUID probe).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: onnxruntime's AVX2 precision mode (``kOrtSessionOptionsAvx2PrecisionMode``,
#: ``onnxruntime_session_options_config_keys.h``): "x64 SSE4.1/AVX2/AVX512(with
#: no VNNI) has overflow problem with quantized matrix multiplication with U8S8.
#: ... use slower U8U8 matrix multiplications". It makes ``Avx2WeightS8ToU8Transformer``
#: turn every int8 weight that does not fit in 7 bits into uint8 (+128), so the
#: convolutions take the U8U8 GEMM, which widens to int16 before ``vpmaddwd``.
PRECISION_KEY = "session.x64quantprecision"
#: CPU features recorded from numpy's CPUID probe (it has no AVX-VNNI entry).
FEATURES = ("AVX2", "FMA3", "AVX512F", "AVX512_SKX", "AVX512VNNI")


@dataclass(frozen=True)
class Emulator:
    name: str
    argv: tuple[str, ...]
    cpu: str  #: what the emulated CPU is, for the printout

    def available(self) -> bool:
        return shutil.which(self.argv[0]) is not None


EMULATORS = {
    "valgrind": Emulator("valgrind", ("valgrind", "--tool=none", "-q"),
                         "valgrind's Haswell CPUID (AVX2, FMA; no AVX-512, no AVX-VNNI)"),
    "qemu": Emulator("qemu", ("qemu-x86_64-static", "-cpu", "EPYC-Milan"),
                     "qemu TCG, -cpu EPYC-Milan (Zen 3: AVX2, FMA; no AVX-512, no AVX-VNNI)"),
}  # fmt: skip


@dataclass(frozen=True)
class ModelRun:
    """One model to run in the worker: ``label``, its file, and session config entries."""

    label: str
    model: Path
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outputs:
    """What one process computed: per label, ``(boxes, scores)`` per input and the optimized graph's op counts."""

    features: dict[str, bool]
    outputs: dict[str, list[tuple[np.ndarray, np.ndarray]]]
    ops: dict[str, Counter]


def cpu_features() -> dict[str, bool]:
    """The CPU features this process sees, from numpy's CPUID probe (which valgrind and qemu answer)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as found
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__ as found
    return {name: bool(found.get(name, False)) for name in FEATURES}


def run_models(runs: Sequence[ModelRun], inputs: Sequence[np.ndarray], threads: int = 1, repeat: int = 1) -> Outputs:
    """Run every model on every input in this process (``repeat`` times each, the last result kept)."""
    import onnx
    import onnxruntime as ort

    from rover.core.contract import INPUT_NAME

    outputs, ops = {}, {}
    for spec in runs:
        with tempfile.TemporaryDirectory(prefix="rover-emu-") as tmp:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
            for key, value in spec.config.items():
                options.add_session_config_entry(key, value)
            session = ort.InferenceSession(str(spec.model), options, providers=["CPUExecutionProvider"])
            ops[spec.label] = Counter(node.op_type for node in onnx.load(options.optimized_model_filepath, load_external_data=False).graph.node)
        results = []
        for image in inputs:
            for _ in range(max(repeat, 1)):
                boxes, scores = session.run(None, {INPUT_NAME: image})
            results.append((boxes, scores))
        outputs[spec.label] = results
    return Outputs(cpu_features(), outputs, ops)


def run_emulated(emulator: Emulator | Sequence[str], runs: Sequence[ModelRun], inputs: Sequence[np.ndarray],
                 threads: int = 1, repeat: int = 1, timeout: float | None = None) -> Outputs:
    """:func:`run_models` in a worker process started under ``emulator`` (an :class:`Emulator` or a command prefix)."""
    prefix = list(emulator.argv if isinstance(emulator, Emulator) else emulator)
    with tempfile.TemporaryDirectory(prefix="rover-emu-") as tmp:
        work = Path(tmp)
        np.save(work / "inputs.npy", np.stack(inputs))
        job = {"inputs": str(work / "inputs.npy"), "out": str(work), "threads": threads, "repeat": repeat,
               "runs": [{"label": r.label, "model": str(r.model), "config": dict(r.config)} for r in runs]}  # fmt: skip
        (work / "job.json").write_text(json.dumps(job))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
               "OPENBLAS_NUM_THREADS": "1"}  # numpy's idle BLAS threads would spin under the emulator  # fmt: skip
        done = subprocess.run([*prefix, sys.executable, "-m", "export.emulate", str(work / "job.json")], env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
        if done.returncode != 0:
            tail = "\n".join(line for line in done.stderr.splitlines() if "TCG doesn't support" not in line)[-2000:]
            raise RuntimeError(f"emulated worker ({' '.join(prefix)}) exited {done.returncode}: {tail}")
        return _read(work, runs)


def _read(work: Path, runs: Sequence[ModelRun]) -> Outputs:
    meta = json.loads((work / "result.json").read_text())
    outputs = {}
    for spec in runs:
        with np.load(work / f"{spec.label}.npz") as data:
            outputs[spec.label] = list(zip(data["boxes"], data["scores"]))
    return Outputs(meta["features"], outputs, {k: Counter(v) for k, v in meta["ops"].items()})


def worker(job_path: Path) -> int:
    """The worker's body: read the job, run it, write ``<label>.npz`` and ``result.json`` next to it."""
    job = json.loads(Path(job_path).read_text())
    inputs = list(np.load(job["inputs"]))
    runs = [ModelRun(r["label"], Path(r["model"]), r["config"]) for r in job["runs"]]
    result = run_models(runs, inputs, job["threads"], job["repeat"])
    out = Path(job["out"])
    for label, pairs in result.outputs.items():
        np.savez(out / f"{label}.npz", boxes=np.stack([b for b, _ in pairs]), scores=np.stack([s for _, s in pairs]))
    (out / "result.json").write_text(json.dumps({"features": result.features, "ops": {k: dict(v) for k, v in result.ops.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(worker(Path(sys.argv[1])))
