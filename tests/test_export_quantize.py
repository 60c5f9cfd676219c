"""What the int8 export quantizes, how the normalisation is folded, and the profiling helpers (small models, fast)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from export.graph import export_onnx
from export.profile import (
    conv_macs,
    fp32_peak,
    int8_peak,
    int8_share,
    optimized_op_counts,
    shares_from_profile,
)
from export.quantize import (
    QuantOptions,
    float_nodes,
    fold_input_scale,
    head_convs,
    quantize_int8,
)
from rover.core.contract import ModelInfo
from tests.test_export_trained import LABELS, SIZE, TinySSD

INFO = ModelInfo(LABELS, SIZE, SIZE, "tiny-ssd-test", "float32", "0" * 64, "test")


@pytest.fixture(scope="module")
def tiny_float(tmp_path_factory):
    """An untrained TinySSD (6 head convs, 4 backbone convs) exported to the contract."""
    torch.manual_seed(0)
    model = TinySSD().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding them matters
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return export_onnx(model, INFO, tmp_path_factory.mktemp("tiny") / "float.onnx")


def _images(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8) for _ in range(count)]


def _run(model: onnx.ModelProto | str, image: np.ndarray) -> list[np.ndarray]:
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, {"image": image})


def test_folding_the_normalisation_into_the_first_conv_keeps_the_outputs(tiny_float):
    model = onnx.load(str(tiny_float))
    divs = sum(n.op_type == "Div" for n in model.graph.node)
    assert fold_input_scale(model)
    assert sum(n.op_type == "Div" for n in model.graph.node) == divs - 2
    producer = {out: n for n in model.graph.node for out in n.output}
    first = next(n for n in model.graph.node if n.op_type == "Conv")
    sub = producer[first.input[0]]
    assert sub.op_type == "Sub" and producer[sub.input[0]].op_type == "Cast"
    onnx.checker.check_model(model)
    for image in _images(3):  # the zero padding of the border pixels too: random images fill every pixel
        for before, after in zip(_run(str(tiny_float), image), _run(model, image)):
            np.testing.assert_allclose(after, before, atol=2e-5)


def test_folding_finds_nothing_in_a_graph_without_the_normalisation(tiny_float):
    model = onnx.load(str(tiny_float))
    assert fold_input_scale(model)
    assert not fold_input_scale(model)  # already folded: the pattern is gone


def test_float_nodes_follow_the_options(tiny_float):
    model = onnx.load(str(tiny_float))
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    heads = {n.name for n in head_convs(model)}
    assert len(heads) == 6 and len(convs) == 10
    default = set(float_nodes(model))
    assert not default & {c.name for c in convs}  # every conv quantized
    assert {"Softmax", "Exp", "Concat"} <= {n.op_type for n in model.graph.node if n.name in default}
    assert heads <= set(float_nodes(model, QuantOptions(int8_heads=False)))
    first_float = set(float_nodes(model, QuantOptions(int8_first_conv=False)))
    assert [c.name for c in convs if c.name in first_float] == [convs[0].name]


def test_quant_options_reject_unknown_choices():
    with pytest.raises(ValueError, match="calibration method"):
        QuantOptions(method="median")
    with pytest.raises(ValueError, match="activations"):
        QuantOptions(activations="int4")
    with pytest.raises(ValueError, match="weight bits must be 7 or 8"):
        QuantOptions(weight_bits=4)


def test_weight_bits_7_keeps_every_weight_in_minus_64_to_64(tiny_float, tmp_path):
    """``--weight-bits 7``: the int8 weights fit in 7 bits, so x86 without VNNI cannot saturate (docs/export.md)."""
    from onnx import numpy_helper

    from export.__main__ import build_parser, quant_options

    args = build_parser().parse_args(["--weights", "w.pth", "--calib", "c", "--weight-bits", "7"])
    options = quant_options(args)
    assert options.weight_bits == 7
    calib = _images(4)
    peaks = {}
    for bits in (8, 7):
        path = quantize_int8(tiny_float, tmp_path / f"w{bits}.onnx", calib, INFO, QuantOptions(weight_bits=bits), progress=False)
        model = onnx.load(str(path))
        peaks[bits] = max(int(np.abs(numpy_helper.to_array(t).astype(np.int32)).max()) for t in model.graph.initializer
                          if t.data_type == onnx.TensorProto.INT8)  # fmt: skip
    assert peaks[7] <= 64 < peaks[8], peaks


@pytest.mark.parametrize("int8_heads, fused", [(True, 10), (False, 4)])
def test_onnxruntime_fuses_the_convs_the_options_quantize(tiny_float, tmp_path, int8_heads, fused):
    path = quantize_int8(tiny_float, tmp_path / "int8.onnx", _images(4), INFO, QuantOptions(int8_heads=int8_heads), progress=False)
    for rules in (None, {"session.qdqisint8allowed": "1"}):  # x86's rules and ARM's
        ops = optimized_op_counts(path, rules)
        assert ops["QLinearConv"] == fused and ops["Conv"] == 10 - fused, ops
    boxes, scores = _run(str(path), _images(1, seed=5)[0])
    ref_boxes, ref_scores = _run(str(tiny_float), _images(1, seed=5)[0])
    assert np.abs(scores - ref_scores).mean() < 0.02 and np.abs(boxes - ref_boxes).mean() < 0.02


def test_conv_macs_counts_every_convolution(tiny_float):
    model, expected, heads = TinySSD().eval(), [], []

    def hook(module, inputs, output):
        count = output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        expected.append(count)
        if module.out_channels in (6 * 4, 6 * len(LABELS)) and module.kernel_size == (3, 3) and module.stride == (1, 1):
            heads.append(count)

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, SIZE, SIZE))
    assert conv_macs(tiny_float) == {"conv": sum(expected), "heads": sum(heads)}


def test_op_shares_sum_node_kernel_times_per_op_after_the_skipped_runs():
    events = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
        {"cat": "Node", "name": "conv_kernel_time", "ts": 10, "dur": 90, "args": {"op_name": "QLinearConv"}},
        {"cat": "Session", "name": "model_run", "ts": 1000, "dur": 100},
        {"cat": "Node", "name": "conv_kernel_time", "ts": 1010, "dur": 60, "args": {"op_name": "QLinearConv"}},
        {"cat": "Node", "name": "conv_fence_before", "ts": 1070, "dur": 5, "args": {"op_name": "QLinearConv"}},
        {"cat": "Node", "name": "sub_kernel_time", "ts": 1080, "dur": 20, "args": {"op_name": "Sub"}},
        {"cat": "Node", "name": "dq_kernel_time", "ts": 1090, "dur": 20, "args": {"op_name": "DequantizeLinear"}},
    ]
    shares = shares_from_profile(json.loads(json.dumps(events)), skip_runs=1)
    assert shares == pytest.approx({"QLinearConv": 0.6, "Sub": 0.2, "DequantizeLinear": 0.2})
    assert next(iter(shares)) == "QLinearConv"
    assert int8_share(shares) == pytest.approx(0.6)


CPUINFO = "processor\t: 0\ncpu MHz\t\t: 2596.118\nflags\t\t: fpu sse2 avx2 fma {extra}\n"


def test_peak_follows_the_widest_int8_instruction_and_the_clock():
    vnni = int8_peak(2, cpuinfo=CPUINFO.format(extra="avx512f avx512_vnni"))
    assert (vnni.macs_per_cycle, vnni.clock_ghz) == (128, pytest.approx(2.596118))
    assert vnni.gmacs == pytest.approx(2 * 2.596118 * 128)
    assert "vpdpbusd zmm" in vnni.describe() and "2 cores" in vnni.describe()
    assert int8_peak(4, 3.5, CPUINFO.format(extra="")).macs_per_cycle == 32  # AVX2 only
    assert int8_peak(1, cpuinfo="processor : 0\nFeatures : fp asimd asimddp\n") is None  # ARM: not in the table
    assert fp32_peak(2, 3.5, CPUINFO.format(extra="avx512f")).gmacs == pytest.approx(2 * 3.5 * 32)
