"""The exported float and int8 models: contract, parity, quantization layout, size, report."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from export.checkpoint import load_checkpoint
from export.frames import sample, to_input
from export.model import VOC_LABELS
from export.profile import optimized_op_counts
from export.quantize import HEAD_WEIGHT
from rover.core.contract import check_io, parse_metadata

pytestmark = pytest.mark.slow


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _inputs(exported_models, count=2):
    return [to_input(f.rgb, 300, 300) for f in sample(exported_models.calib_path, count)]


def _numpy_decode(loc: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """seed-model.md's decode, written independently of export.graph."""
    pw, ph = priors[:, 2] - priors[:, 0], priors[:, 3] - priors[:, 1]
    pcx, pcy = priors[:, 0] + pw / 2, priors[:, 1] + ph / 2
    cx, cy = loc[..., 0] * 0.1 * pw + pcx, loc[..., 1] * 0.1 * ph + pcy
    w, h = np.exp(loc[..., 2] * 0.2) * pw, np.exp(loc[..., 3] * 0.2) * ph
    return np.clip(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1), 0, 1)


@pytest.mark.parametrize("which, precision", [("float_path", "float32"), ("int8_path", "int8")])
def test_both_models_satisfy_the_rover_contract(exported_models, which, precision):
    path = getattr(exported_models, which)
    session = _session(path)
    info = parse_metadata(session.get_modelmeta().custom_metadata_map, str(path))
    check_io(session.get_inputs(), session.get_outputs(), info, str(path))
    assert info.labels == VOC_LABELS and info.labels[15] == "person"
    assert (info.input_width, info.input_height) == (300, 300)
    assert info.architecture == "ssd300-resnet50"
    assert info.precision == precision
    assert info.source_sha256 == load_checkpoint(exported_models.checkpoint_path).sha256
    assert [i.shape for i in session.get_inputs()] == [[1, 300, 300, 3]]
    boxes, scores = session.run(None, {"image": _inputs(exported_models, 1)[0]})
    assert boxes.shape == (1, 11658, 4) and scores.shape == (1, 11658, 21)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    assert boxes.min() >= 0.0 and boxes.max() <= 1.0
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-4)


def test_float_model_matches_pytorch_and_the_documented_decode(exported_models):
    model = load_checkpoint(exported_models.checkpoint_path).model
    session = _session(exported_models.float_path)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    for image in _inputs(exported_models, 2):
        x = ((image[0] / 255.0 - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
        with torch.no_grad():
            loc, conf, priors = (t.numpy() for t in model(torch.from_numpy(x)))
        ref_boxes = _numpy_decode(loc, priors)
        ref_scores = torch.softmax(torch.from_numpy(conf), -1).numpy()
        boxes, scores = session.run(None, {"image": image})
        np.testing.assert_allclose(boxes, ref_boxes, atol=1e-4)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-4)


def test_int8_quantizes_every_conv_and_keeps_decode_and_softmax_float(exported_models):
    graph = onnx.load(str(exported_models.int8_path)).graph
    producer = {out: node for node in graph.node for out in node.output}
    initializers = {t.name: t for t in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) == 70  # 53 ResNet-50 convs + 5 extras + 12 heads
    heads = [n for n in convs if HEAD_WEIGHT.search(producer[n.input[1]].input[0].removesuffix("_quantized"))]
    assert len(heads) == 12
    for conv in convs:  # activation and weight both come through DequantizeLinear, weights int8 per channel
        assert producer[conv.input[0]].op_type == "DequantizeLinear", conv.name
        weight_dq = producer[conv.input[1]]
        assert weight_dq.op_type == "DequantizeLinear", conv.name
        assert initializers[weight_dq.input[0]].data_type == onnx.TensorProto.INT8
        assert len(initializers[weight_dq.input[1]].dims) == 1, f"{conv.name}: weights not per channel"
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    # Each head's int8 output is dequantized once, and nothing after that is quantized again:
    # transpose, reshape, concat, box decoding and softmax run in float.
    seen, stack = set(), []
    for head in heads:
        (q,) = consumers[head.output[0]]
        (dq,) = consumers[q.output[0]]
        assert (q.op_type, dq.op_type) == ("QuantizeLinear", "DequantizeLinear"), head.name
        stack.extend(dq.output)
    while stack:
        for node in consumers.get(stack.pop(), []):
            assert node.op_type not in ("QuantizeLinear", "DequantizeLinear"), f"{node.name} quantizes after a head"
            if node.name not in seen:
                seen.add(node.name)
                stack.extend(node.output)
    assert {"Softmax", "Exp", "Concat", "Reshape"} <= {n.op_type for n in graph.node if n.name in seen}


#: Session config for onnxruntime's ARM rules: signed int8 QDQ groups fuse
#: directly, as on the Pi (QDQIsInt8Allowed() is true only on ARM builds).
ARM_RULES = {"session.qdqisint8allowed": "1"}


@pytest.mark.parametrize("rules", [None, ARM_RULES], ids=["x86", "arm-rules"])
def test_onnxruntime_runs_every_conv_and_residual_add_as_int8_kernels(exported_models, rules):
    """In the graph onnxruntime actually executes, all 70 convolutions are QLinearConv and the 16 residual Adds QLinearAdd.

    With int8 activations on x86 (the former default) only 55 convolutions
    and no Add fused (docs/export.md). The two Adds left are the box
    decoding's, in float on purpose.
    """
    ops = optimized_op_counts(exported_models.int8_path, rules)
    assert ops["QLinearConv"] == 70 and ops["Conv"] == 0, ops
    assert ops["QLinearAdd"] == 16, ops
    assert ops["QuantizeLinear"] <= 2, ops  # the input's, and no Q/DQ pair left between int8 kernels


def test_int8_file_is_about_a_quarter_of_float(exported_models):
    ratio = exported_models.int8_path.stat().st_size / exported_models.float_path.stat().st_size
    assert ratio < 0.27


def test_int8_scores_stay_close_to_float(exported_models):
    """Stated measure: mean |score difference| below 0.01 and no box moves more than 0.1 on average."""
    f_sess, q_sess = _session(exported_models.float_path), _session(exported_models.int8_path)
    for image in _inputs(exported_models, 2):
        f_boxes, f_scores = f_sess.run(None, {"image": image})
        q_boxes, q_scores = q_sess.run(None, {"image": image})
        assert np.abs(q_scores - f_scores).mean() < 0.01
        assert np.abs(q_boxes - f_boxes).mean() < 0.1


def test_report_holds_every_requested_figure(exported_models):
    report = json.loads(exported_models.report_json_path.read_text())
    assert report["parity"]["max_abs_scores"] < 1e-4 and report["parity"]["max_abs_boxes"] < 1e-4
    assert report["agreement"]["frames"] == 3 and report["calibration"]["frames"] == 6
    assert 0.0 <= report["agreement"]["mean_abs_score_diff"] < 0.01
    assert report["agreement"]["map50"] is None or 0.0 <= report["agreement"]["map50"] <= 1.0
    assert report["latency_ms"]["float"] > 0 and report["latency_ms"]["int8"] > 0
    assert report["files"]["float"]["bytes"] == exported_models.float_path.stat().st_size
    assert report["files"]["int8"]["bytes"] == exported_models.int8_path.stat().st_size
    assert report["voc"] is None
    md = (exported_models.out_dir / "export_report.md").read_text()
    assert "int8 vs float" in md and report["source"]["sha256"] in md
    picture = exported_models.out_dir / report["picture"]
    import cv2

    image = cv2.imread(str(picture))
    assert image is not None and image.shape[1] > 2 * image.shape[0] * 0.9  # two frames side by side
