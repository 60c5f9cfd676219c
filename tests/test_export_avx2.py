"""The int8 models on onnxruntime's AVX2 kernels (a Zen 3's), run under valgrind's AVX2-only CPU.

onnxruntime picks its kernels from CPUID, so on an AVX-512 VNNI machine
the AVX2 kernels run under an emulator (:mod:`export.emulate`: valgrind
presents a CPU without AVX-512 and AVX-VNNI) or, where the CPU has CPUID
faulting, natively under :mod:`export.cpumask` (tests/test_export_cpumask.py).
The first test checks that both compute the same. Correctness only, never
speed. Skipped without valgrind.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export import cpumask
from export.emulate import EMULATORS, PRECISION_KEY, ModelRun, run_emulated, run_models
from export.frames import Frame, sample, to_input
from tests.test_export_trained import (
    INT8_MAP_MARGIN,
    LABELS,
    SIZE,
    make_scene,
    write_voc,
)

#: The emulated tests: slow, and only where valgrind is.
needs_valgrind = pytest.mark.skipif(not EMULATORS["valgrind"].available(), reason="valgrind not installed (apt install valgrind): "
                                    "it is how this machine runs onnxruntime's AVX2 kernels")  # fmt: skip

#: Emulated runs are ~100x slower than native: a stuck worker fails the test instead of hanging the suite.
TIMEOUT_S = 300


@pytest.mark.slow
@needs_valgrind
def test_ssd300_fuses_the_same_int8_graph_on_avx2_and_exact_mode_matches_vnni(exported_models):
    """Graph fusions are the optimizer's, not the kernels': 70 QLinearConv and 16 QLinearAdd on AVX2 too.

    The AVX2 kernels' saturating int16 pair sums move the scores; with
    ``session.x64quantprecision=1`` (what rover sets on such CPUs) the
    outputs are the VNNI ones up to float rounding. Where the CPUID mask
    runs, its native AVX2 kernels give valgrind's outputs.
    """
    image = to_input(sample(exported_models.calib_path, 1)[0].rgb, 300, 300)
    runs = [ModelRun("fast", exported_models.int8_path), ModelRun("exact", exported_models.int8_path, {PRECISION_KEY: "1"})]
    avx2 = run_emulated(EMULATORS["valgrind"], runs, [image], timeout=TIMEOUT_S)
    native = run_models(runs[:1], [image])
    assert avx2.features["AVX2"] and not avx2.features["AVX512F"], f"the emulated CPU must be AVX2-only: {avx2.features}"
    for label in ("fast", "exact"):
        ops = avx2.ops[label]
        assert (ops["QLinearConv"], ops["QLinearAdd"], ops["Conv"]) == (70, 16, 0), (label, ops)
    vnni_scores = native.outputs["fast"][0][1]
    exact = np.abs(avx2.outputs["exact"][0][1] - vnni_scores).max()
    fast = np.abs(avx2.outputs["fast"][0][1] - vnni_scores).max()
    if native.features["AVX512VNNI"]:
        assert exact < 1e-4, f"exact AVX2 int8 strays {exact} from VNNI"
        assert fast > 10 * exact, f"AVX2 saturation no longer shows ({fast} vs {exact}): re-measure docs/export.md"
    if cpumask.unavailable() is None:
        masked = run_emulated(cpumask.emulator("avx2"), runs, [image], timeout=TIMEOUT_S)
        for label in ("fast", "exact"):
            for got, want in zip(masked.outputs[label][0], avx2.outputs[label][0]):
                assert np.abs(got - want).max() <= 1e-6, f"{label}: the CPUID mask's AVX2 kernels and valgrind's differ by {np.abs(got - want).max()}"


@pytest.mark.slow
@needs_valgrind
def test_trained_detector_keeps_its_true_map_on_avx2_kernels(tmp_path, trained_tiny_ssd):
    """The tiny trained SSD's true mAP@0.5 on AVX2 int8 kernels, both modes, within the trained test's margin of float."""
    from export.graph import export_onnx
    from export.quantize import quantize_int8
    from export.voc import map50_of, prepare, read_split
    from rover.core.contract import ModelInfo

    model = trained_tiny_ssd
    rng = np.random.default_rng(123)
    calib = [to_input(Frame(f"calib{i}", make_scene(rng)[0]).rgb, SIZE, SIZE) for i in range(16)]
    write_voc(tmp_path / "VOC", rng, 40)
    info = ModelInfo(LABELS, SIZE, SIZE, "tiny-ssd-test", "float32", "0" * 64, "test")
    with torch.no_grad():
        float_path = export_onnx(model, info, tmp_path / "float.onnx")
    int8_path = quantize_int8(float_path, tmp_path / "int8.onnx", calib, info, progress=False)
    prepared = [prepare(image, SIZE, SIZE) for image in read_split(tmp_path / "VOC", LABELS)]
    inputs, targets, sizes = zip(*prepared)
    runs = [ModelRun("float", float_path), ModelRun("int8", int8_path), ModelRun("exact", int8_path, {PRECISION_KEY: "1"})]
    avx2 = run_emulated(EMULATORS["valgrind"], runs, list(inputs), timeout=TIMEOUT_S)
    maps = {label: map50_of(avx2.outputs[label], targets, sizes) for label in avx2.outputs}
    assert maps["float"] > 0.5, f"the tiny SSD did not learn (float mAP {maps['float']:.3f})"
    assert maps["int8"] >= maps["float"] - INT8_MAP_MARGIN, maps
    assert maps["exact"] >= maps["float"] - INT8_MAP_MARGIN, maps
    print(f"tiny SSD true mAP@0.5 on AVX2 kernels: {maps}")


def test_avx2check_without_its_emulator_says_what_to_install(monkeypatch, capsys):
    from export import avx2check
    from export.emulate import Emulator

    monkeypatch.setitem(avx2check.EMULATORS, "qemu", Emulator("qemu", ("qemu-x86_64-static-not-installed",), "test"))
    assert avx2check.main(["--emulator", "qemu"]) == 78
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "qemu-x86_64-static-not-installed not found" in err[0] and "install" in err[0]


def test_avx2check_cpuid_without_cpuid_faulting_says_why(monkeypatch, capsys):
    from export import avx2check

    monkeypatch.setattr(cpumask, "unavailable", lambda: "this CPU or its hypervisor has no CPUID faulting (test)")
    assert avx2check.main(["--emulator", "cpuid"]) == 78
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CPUID faulting" in err[0], err
