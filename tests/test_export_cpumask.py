"""The CPUID mask (export/cpumask.c, export/cpumask.py): this CPU running the AVX2 kernels natively.

Every masked run is a child process (the mask is per process, set before
any library reads CPUID). Skipped with the reason on a machine without
CPUID faulting, without gcc, or not x86-64.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from export import cpumask
from export.emulate import PRECISION_KEY, ModelRun, cpu_features, run_emulated, run_models
from export.frames import sample, to_input

REASON = cpumask.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no CPUID mask here: {REASON}")
NATIVE_AVX512 = REASON is None and cpu_features()["AVX512F"]
NATIVE_VNNI = REASON is None and cpu_features()["AVX512VNNI"]
TIMEOUT_S = 120

#: Raw CPUID in the main thread and in a second thread: leaf 7.0 EBX/ECX/EDX, leaf 7.1 EAX, leaf 0xD.0 EAX.
PROBE_C = r"""
#include <cpuid.h>
#include <pthread.h>
#include <stdio.h>
static void probe(const char *who) {
    unsigned a, b, c, d, a1, b1, c1, d1, ad, bd, cd, dd;
    __cpuid_count(7, 0, a, b, c, d);
    __cpuid_count(7, 1, a1, b1, c1, d1);
    __cpuid_count(0xd, 0, ad, bd, cd, dd);
    printf("%s %u %u %u %u %u\n", who, b, c, d, a1, ad);
}
static void *thread(void *arg) { (void)arg; probe("thread"); return NULL; }
int main(void) {
    pthread_t t;
    probe("main");
    pthread_create(&t, NULL, thread, NULL);
    pthread_join(t, NULL);
    return 0;
}
"""
AVX2_BIT, AVX512F_BIT, AVX512BW_BIT, VNNI_BIT, AVXVNNI_BIT = 5, 16, 30, 11, 4


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cpumask-cache")


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("probe")
    (work / "probe.c").write_text(PROBE_C)
    subprocess.run(["gcc", "-O2", "-pthread", str(work / "probe.c"), "-o", str(work / "probe")], check=True)
    return work / "probe"


def _registers(out: str) -> dict[str, tuple[int, ...]]:
    return {line.split()[0]: tuple(int(v) for v in line.split()[1:]) for line in out.splitlines() if line.strip()}


def _python(code: str, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


FEATURES_CODE = "from export.emulate import cpu_features; import json; print(json.dumps(cpu_features()))"


def test_masked_process_sees_no_avx512_in_numpy_or_raw_cpuid(cache, probe):
    import json

    env = cpumask.child_env("avx2", cache=cache)
    seen = json.loads(_python(FEATURES_CODE, env).stdout)
    assert seen["AVX2"] and seen["FMA3"], seen
    assert not seen["AVX512F"] and not seen["AVX512_SKX"] and not seen["AVX512VNNI"], seen
    native = _registers(subprocess.run([str(probe)], capture_output=True, text=True, check=True).stdout)["main"]
    masked = _registers(subprocess.run([str(probe)], env=env, capture_output=True, text=True, check=True).stdout)
    for who in ("main", "thread"):  # threads inherit the faulting mode
        ebx, ecx, _, eax71, xsave = masked[who]
        assert ebx >> AVX2_BIT & 1, f"{who}: AVX2 must stay"
        assert not ebx >> AVX512F_BIT & 1 and not ebx >> AVX512BW_BIT & 1, f"{who}: leaf 7.0 EBX {ebx:#x} still has AVX-512"
        assert not ecx >> VNNI_BIT & 1 and not eax71 >> AVXVNNI_BIT & 1, f"{who}: VNNI still visible"
        assert xsave & 0xE0 == 0, f"{who}: leaf 0xD still lists the ZMM state ({xsave:#x})"
    if NATIVE_AVX512:  # the mask, not the machine, hid them
        assert native[0] >> AVX512F_BIT & 1
        assert masked["main"][0] == native[0] & ~(1 << AVX512F_BIT | 1 << 17 | 1 << 21 | 1 << 26 | 1 << 27 | 1 << 28 | 1 << AVX512BW_BIT | 1 << 31)


def test_avx512_novnni_profile_keeps_avx512_and_hides_only_vnni(cache):
    import json

    seen = json.loads(_python(FEATURES_CODE, cpumask.child_env("avx512-novnni", cache=cache)).stdout)
    assert not seen["AVX512VNNI"], seen
    if NATIVE_AVX512:
        assert seen["AVX512F"] and seen["AVX512_SKX"], seen


def test_a_real_segfault_still_crashes_with_and_without_faulthandler(cache):
    env = cpumask.child_env("avx2", cache=cache)
    crash = "import ctypes; print('before', flush=True); ctypes.string_at(0)"
    bare = _python(crash, env)
    assert bare.returncode == -signal.SIGSEGV and bare.stdout.strip() == "before", (bare.returncode, bare.stderr[-500:])
    # faulthandler installs its SIGSEGV handler after the shim's: the shim forwards real faults to it
    handled = _python(crash, env, "-X", "faulthandler")
    assert handled.returncode == -signal.SIGSEGV, handled.stderr[-500:]
    assert "Fatal Python error: Segmentation fault" in handled.stderr


def test_child_processes_keep_the_mask(cache, probe):
    env = cpumask.child_env("avx2", cache=cache)
    code = f"""
        import json, subprocess, sys
        from export.emulate import cpu_features
        child = subprocess.run([sys.executable, "-c", {FEATURES_CODE!r}], capture_output=True, text=True, check=True).stdout
        raw = subprocess.run([{str(probe)!r}], capture_output=True, text=True, check=True).stdout
        print(json.dumps({{"self": cpu_features(), "child": json.loads(child), "raw": raw}}))
    """
    import json

    done = _python(code, env)
    assert done.returncode == 0, done.stderr[-1000:]
    seen = json.loads(done.stdout)
    assert not seen["self"]["AVX512F"] and not seen["child"]["AVX512F"], seen
    assert not _registers(seen["raw"])["main"][0] >> AVX512F_BIT & 1, seen["raw"]


def test_check_refuses_an_unmasked_process_and_bad_profiles_are_named(cache):
    if NATIVE_AVX512:
        with pytest.raises(cpumask.CpuMaskError, match="did not take effect"):
            cpumask.check("avx2")
    with pytest.raises(cpumask.CpuMaskError, match="avx2, avx512-novnni"):
        cpumask.child_env("avx3", cache=cache)
    assert cpumask.unavailable(cpuinfo="flags\t: fpu avx2\n", machine="x86_64").startswith("this CPU or its hypervisor has no CPUID faulting")
    assert "x86-64" in cpumask.unavailable(machine="aarch64")


def test_the_shim_is_built_once_per_source(cache):
    first = cpumask.build(cache)
    stamp = first.stat().st_mtime_ns
    assert cpumask.build(cache) == first and first.stat().st_mtime_ns == stamp
    assert cpumask.SOURCE.read_bytes() and first.name.startswith("cpumask-")


def test_the_bench_computes_the_masked_cpus_peak():
    from export.profile import fp32_peak, int8_peak

    cpuinfo = "cpu MHz\t: 2600.0\nflags\t: fpu fma avx2 avx512f avx512bw avx512dq avx512vl avx512_vnni cpuid_fault\n"
    avx2 = cpumask.masked_cpuinfo(cpuinfo, "avx2")
    assert int8_peak(1, 3.0, avx2).macs_per_cycle == 32 and fp32_peak(1, 3.0, avx2).macs_per_cycle == 16
    novnni = cpumask.masked_cpuinfo(cpuinfo, "avx512-novnni")
    assert "avx512f" in novnni and "avx512_vnni" not in novnni
    assert int8_peak(1, 3.0, cpumask.masked_cpuinfo(cpuinfo, None)).macs_per_cycle == 128


def test_rover_picks_exact_mode_under_the_mask(cache):
    code = "from rover.detector.cpu import this_cpu_int8_config; print(this_cpu_int8_config())"
    masked = _python(code, cpumask.child_env("avx2", cache=cache)).stdout.strip()
    assert masked == f"{{'{PRECISION_KEY}': '1'}}", masked


@pytest.mark.skipif(not NATIVE_VNNI, reason="the comparison needs this CPU's native VNNI kernels as the reference")
def test_int8_on_masked_avx2_kernels_saturates_and_exact_mode_reproduces_vnni(exported_models, cache):
    """The SSD300 int8 model: AVX2 fast kernels move the scores (vpmaddubsw's saturating int16
    pair sums), the exact mode gives VNNI's outputs up to float rounding; same fused graph."""
    images = [to_input(f.rgb, 300, 300) for f in sample(exported_models.calib_path, 2)]
    runs = [ModelRun("fast", exported_models.int8_path), ModelRun("exact", exported_models.int8_path, {PRECISION_KEY: "1"})]
    avx2 = run_emulated(cpumask.emulator("avx2", cache), runs, images, timeout=TIMEOUT_S)
    native = run_models(runs[:1], images)
    assert not avx2.features["AVX512F"] and not avx2.features["AVX512VNNI"], avx2.features
    for label in ("fast", "exact"):
        assert (avx2.ops[label]["QLinearConv"], avx2.ops[label]["QLinearAdd"], avx2.ops[label]["Conv"]) == (70, 16, 0), avx2.ops[label]
    for (_, vnni), (_, fast), (_, exact) in zip(native.outputs["fast"], avx2.outputs["fast"], avx2.outputs["exact"]):
        exact_err, fast_err = np.abs(exact - vnni).max(), np.abs(fast - vnni).max()
        assert exact_err < 1e-4, f"exact AVX2 int8 strays {exact_err} from VNNI"
        assert fast_err > 1e-2 and fast_err > 100 * exact_err, f"AVX2 saturation no longer shows ({fast_err} vs {exact_err}): re-measure docs/export.md"


@pytest.mark.skipif(not NATIVE_VNNI, reason="the comparison needs this CPU's native VNNI kernels as the reference")
def test_7_bit_weights_do_not_saturate_on_avx2_fast_kernels(tmp_path, trained_tiny_ssd, cache):
    """The trained tiny SSD: 8-bit weights on AVX2's fast kernels move scores away from VNNI's,
    7-bit weights (``--weight-bits 7``) give VNNI's outputs, in the fast mode and in rover's exact mode."""
    import torch

    from export.graph import export_onnx
    from export.quantize import QuantOptions, quantize_int8
    from rover.core.contract import ModelInfo
    from tests.test_export_trained import LABELS, SIZE, make_scene

    rng = np.random.default_rng(7)
    calib = [to_input(make_scene(rng)[0], SIZE, SIZE) for _ in range(8)]
    images = [to_input(make_scene(rng)[0], SIZE, SIZE) for _ in range(12)]
    info = ModelInfo(LABELS, SIZE, SIZE, "tiny-ssd-test", "float32", "0" * 64, "test")
    with torch.no_grad():
        float_path = export_onnx(trained_tiny_ssd, info, tmp_path / "float.onnx")
    w8 = quantize_int8(float_path, tmp_path / "w8.onnx", calib, info, progress=False)
    w7 = quantize_int8(float_path, tmp_path / "w7.onnx", calib, info, QuantOptions(weight_bits=7), progress=False)
    runs = [ModelRun("w8", w8), ModelRun("w7", w7), ModelRun("w7-exact", w7, {PRECISION_KEY: "1"})]
    avx2 = run_emulated(cpumask.emulator("avx2", cache), runs, images, timeout=TIMEOUT_S)
    native = run_models(runs[:2], images)

    def err(label: str, reference: str) -> float:
        return max(float(np.abs(a[1] - b[1]).max()) for a, b in zip(avx2.outputs[label], native.outputs[reference]))

    assert err("w8", "w8") > 1e-3, "8-bit weights no longer saturate on AVX2: re-measure docs/export.md"
    assert err("w7", "w7") < 1e-6 and err("w7-exact", "w7") < 1e-6, (err("w7", "w7"), err("w7-exact", "w7"))


def test_bench_reruns_itself_masked_and_passes_the_childs_exit_code(tmp_path, capfd):
    """``python -m export.bench --cpu avx2`` runs in a masked child (which checks the mask) and exits as it does."""
    from export import bench

    assert bench.main(["--cpu", "avx2", "--video", str(tmp_path / "absent.avi")]) == 78
    assert f"video {tmp_path / 'absent.avi'} not found" in capfd.readouterr().err
