"""rover.detector.int8mode: the export records its quantization in the model, and the detector says what
it means on this CPU (exact mode, its cost, the re-export that removes it)."""

from __future__ import annotations

import json
import logging

import numpy as np
import onnxruntime as ort
import pytest

from export.quantize import QuantOptions
from rover.detector import model as detector_model_module
from rover.detector.cpu import cpu_flags
from rover.detector.int8mode import WEIGHT_BITS_KEY, QuantInfo, int8_mode, quant_info
from rover.detector.model import Detector
from tests.fixtures_detector import make_contract_model

#: /proc/cpuinfo flags (abridged to the vector extensions), as in tests/test_detector_cpu.py.
ZEN3 = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2"  # AVX2, no VNNI
ZEN5 = ZEN3 + " avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni avx_vnni"
EIGHT_BIT = QuantInfo(weight_bits=8, activations="uint8", heads="int8")
SEVEN_BIT = QuantInfo(weight_bits=7, activations="uint8", heads="int8")


def _flags(names: str) -> frozenset[str]:
    return cpu_flags(f"flags\t\t: {names}\n")


def test_avx2_with_an_8bit_model_says_exact_mode_costs_and_names_the_re_export():
    mode = int8_mode("x86_64", _flags(ZEN3), "int8", EIGHT_BIT)
    assert (mode.mode, mode.advice) == ("exact", True)
    assert "session.x64quantprecision=1" in mode.message
    assert "~1.4x" in mode.message
    assert "python -m export" in mode.message and "--weight-bits 7" in mode.message
    assert "8-bit weights, uint8 activations, int8 heads" in mode.message


def test_avx2_with_a_7bit_model_says_exact_mode_is_free():
    mode = int8_mode("x86_64", _flags(ZEN3), "int8", SEVEN_BIT)
    assert (mode.mode, mode.advice) == ("exact", False)
    assert "no cost" in mode.message and "--weight-bits" not in mode.message


def test_avx2_with_a_model_that_records_nothing_gives_the_cost_conditionally():
    mode = int8_mode("x86_64", _flags(ZEN3), "int8", QuantInfo())
    assert (mode.mode, mode.advice) == ("exact", True)
    assert "does not record its weight bits" in mode.message and "--weight-bits 7" in mode.message


@pytest.mark.parametrize("machine, flags, cpu", [("x86_64", ZEN5, "x86 with VNNI"), ("aarch64", "", "aarch64")],
                         ids=["vnni", "arm"])  # fmt: skip
@pytest.mark.parametrize("quant", [EIGHT_BIT, SEVEN_BIT, QuantInfo()], ids=["8bit", "7bit", "unrecorded"])
def test_vnni_and_arm_need_no_exact_mode_and_no_advice(machine, flags, cpu, quant):
    mode = int8_mode(machine, _flags(flags), "int8", quant)
    assert (mode.mode, mode.advice) == ("native", False)
    assert cpu in mode.message and "x64quantprecision" not in mode.message and "--weight-bits" not in mode.message


def test_a_float_model_has_no_int8_mode_on_any_cpu():
    for machine, flags in (("x86_64", ZEN3), ("x86_64", ZEN5), ("aarch64", "")):
        mode = int8_mode(machine, _flags(flags), "float32", QuantInfo())
        assert (mode.mode, mode.advice) == ("float", False)


def test_quant_info_reads_what_the_export_options_write_and_ignores_what_it_cannot_read():
    options = QuantOptions(weight_bits=7, activations="int8", int8_heads=False, int8_l2norm=False, method="minmax")
    assert quant_info(options.metadata()) == QuantInfo(7, "int8", "float", "int8", "float", "minmax")
    assert quant_info({}) == QuantInfo()
    assert quant_info({WEIGHT_BITS_KEY: "six"}).weight_bits is None
    assert QuantInfo().summary() == "quantization not recorded"


def test_the_exported_int8_model_records_its_quantization_and_rover_reads_it(exported_models, monkeypatch, caplog):
    int8_meta = ort.InferenceSession(str(exported_models.int8_path), providers=["CPUExecutionProvider"]).get_modelmeta()
    recorded = quant_info(int8_meta.custom_metadata_map)
    defaults = QuantOptions()
    assert recorded == quant_info(defaults.metadata())
    assert recorded.weight_bits == json.loads(exported_models.report_json_path.read_text())["quantized"]["weight_bits"] == 8
    float_meta = ort.InferenceSession(str(exported_models.float_path), providers=["CPUExecutionProvider"]).get_modelmeta()
    assert WEIGHT_BITS_KEY not in float_meta.custom_metadata_map  # only the int8 file is quantized

    monkeypatch.setattr(detector_model_module, "this_cpu", lambda: ("x86_64", _flags(ZEN3)))
    with caplog.at_level(logging.INFO, logger="rover.detector.model"):
        detector = Detector(exported_models.int8_path)
    assert detector.quant == recorded and detector.int8_mode.mode == "exact"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "--weight-bits 7" in warnings[0]


def test_the_loader_accepts_a_model_without_quantization_metadata(tmp_path, monkeypatch, caplog):
    path = make_contract_model(tmp_path / "foreign_int8.onnx", precision="int8")
    monkeypatch.setattr(detector_model_module, "this_cpu", lambda: ("x86_64", _flags(ZEN5)))
    with caplog.at_level(logging.INFO, logger="rover.detector.model"):
        detector = Detector(path)
    assert detector.quant == QuantInfo()
    assert detector.int8_mode.mode == "native"
    assert any("quantization not recorded" in r.getMessage() for r in caplog.records)
    result = detector.detect(np.zeros((96, 128, 3), np.uint8), "bgr")
    assert [d.label for d in result.detections] == ["person", "car"]  # it detects as any contract model does
