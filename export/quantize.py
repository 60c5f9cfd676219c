"""Static int8 quantization with onnxruntime: QDQ, per-channel signed int8 weights.

What is quantized is chosen by :class:`QuantOptions`, each choice measured
(docs/export.md): by default every convolution, the residual additions and
the L2Norm chain are int8; the detection heads' convolutions
(``loc_layers.*``, ``conf_layers.*``) are int8 too, their outputs dequantized
to float before the transpose, reshape and concatenation; the box decoding,
the softmax and the input normalisation before the first convolution always
stay float.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import re
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from tqdm import tqdm

from export.graph import set_metadata
from rover.core.contract import INPUT_NAME, ModelInfo
from rover.detector import int8mode

CALIB_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
#: Chosen by measurement (docs/export.md): best int8-vs-float agreement.
DEFAULT_CALIB_METHOD = "percentile"
#: Activation types. uint8 is the default: onnxruntime's x86 int8 kernels
#: are u8 x s8 (AVX2 vpmaddubsw, AVX-512 VNNI vpdpbusd), so on x86 it rewrites
#: int8 activations to uint8 before fusing, and only where a QuantizeLinear has
#: one reader (``QDQS8ToU8Transformer``); uint8 needs no rewrite, so every
#: convolution and residual addition fuses. On ARM both have dot-product
#: kernels (``MlasConvSymU8DispatchDot`` / ``...S8DispatchDot``). Asymmetric
#: int8 and uint8 encode the same grid: identical accuracy (docs/export.md).
ACTIVATION_TYPES = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
DEFAULT_ACTIVATIONS = "uint8"
#: The L2Norm chain after stage 2: x / sqrt(sum(x^2)) * weight.
L2NORM_OPS = {"Pow", "ReduceSum", "Sqrt", "Clip", "Max", "Div", "Mul"}
#: A Conv whose weight initializer is named like this is a detection head.
HEAD_WEIGHT = re.compile(r"(^|\.)(loc|conf)_layers\.\d+\.weight$")


class FrameReader(CalibrationDataReader):
    """Feeds calibration inputs (``uint8 [1, H, W, 3]``) to onnxruntime, with a progress bar.

    Supports ``set_range`` so onnxruntime calibrates in strides of a few
    frames: the histogram calibrators keep every intermediate tensor of one
    stride in memory (about 0.1 GB per 300x300 frame for this backbone).
    """

    def __init__(self, inputs: Sequence[np.ndarray], progress: bool = True) -> None:
        self._inputs = list(inputs)
        self._bar = tqdm(total=len(self._inputs), desc="calibrating", unit="frame", disable=not progress)
        self._next, self._end = 0, len(self._inputs)

    def __len__(self) -> int:
        return len(self._inputs)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._next, self._end = start_index, min(end_index, len(self._inputs))

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= self._end:
            if self._end >= len(self._inputs):
                self._bar.close()
            return None
        item = self._inputs[self._next]
        self._next += 1
        self._bar.update(1)
        return {INPUT_NAME: item}


def calibration_stride(count: int, most: int = 4) -> int:
    """The largest stride <= ``most`` that divides ``count`` (onnxruntime requires it)."""
    return next(s for s in range(min(most, max(count, 1)), 0, -1) if count % s == 0)


@dataclasses.dataclass(frozen=True)
class QuantOptions:
    """What to quantize and how; the defaults are the measured choice (docs/export.md)."""

    method: str = DEFAULT_CALIB_METHOD
    activations: str = DEFAULT_ACTIVATIONS
    #: The 12 head convolutions in int8 (per-channel weights, int8 output
    #: dequantized before the reshape and concat), or float32.
    int8_heads: bool = True
    #: The first convolution (3 input channels) in int8, or float32.
    int8_first_conv: bool = True
    #: The L2Norm chain after stage 2 (pow, sum, sqrt, clamp, div, mul) in int8, or float32.
    int8_l2norm: bool = True
    #: Fold the input normalisation's divisions into the first convolution (:func:`fold_input_scale`).
    fold_input_scale: bool = True
    #: Weight precision: 8, or 7 (onnxruntime's ``reduce_range``: weights in -64..64, so x86
    #: without VNNI cannot saturate its int16 pair sums; docs/export.md, "On AVX2-only CPUs").
    weight_bits: int = 8

    def __post_init__(self) -> None:
        if self.method not in CALIB_METHODS:
            raise ValueError(f"calibration method must be one of {sorted(CALIB_METHODS)}, got {self.method!r}")
        if self.activations not in ACTIVATION_TYPES:
            raise ValueError(f"activations must be one of {sorted(ACTIVATION_TYPES)}, got {self.activations!r}")
        if self.weight_bits not in (7, 8):
            raise ValueError(f"weight bits must be 7 or 8, got {self.weight_bits!r}")

    def metadata(self) -> dict[str, str]:
        """The ``rover.*`` metadata properties recording these choices in the int8 model
        (read back by :func:`rover.detector.int8mode.quant_info`)."""
        precision = {True: "int8", False: "float"}
        return {
            int8mode.WEIGHT_BITS_KEY: str(self.weight_bits),
            int8mode.ACTIVATIONS_KEY: self.activations,
            int8mode.HEADS_KEY: precision[self.int8_heads],
            int8mode.FIRST_CONV_KEY: precision[self.int8_first_conv],
            int8mode.L2NORM_KEY: precision[self.int8_l2norm],
            int8mode.CALIB_METHOD_KEY: self.method,
        }


def float_nodes(model: onnx.ModelProto, options: QuantOptions = QuantOptions()) -> list[str]:
    """Names of the nodes to keep in float.

    Always: pre-processing, every node that does not depend on any Conv
    output (the uint8 cast, normalisation and the prior-box constants), and
    everything after the heads (transpose, reshape, concat, box decode,
    softmax). Per ``options``: the heads themselves (the Convs whose weight
    is a ``loc_layers``/``conf_layers`` initializer), the first Conv, and the
    L2Norm chain.
    """
    nodes = list(model.graph.node)
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in nodes:
        for name in node.input:
            consumers[name].append(node)
    heads = head_convs(model)
    after_heads = _reachable(heads, consumers) - {id(h) for h in heads}
    convs = [n for n in nodes if n.op_type == "Conv"]
    after_convs = _reachable(convs, consumers)
    keep = {id(n) for n in nodes if id(n) in after_heads or id(n) not in after_convs}
    if not options.int8_heads:
        keep |= {id(h) for h in heads}
    if not options.int8_first_conv:
        producer = {out: n for n in nodes for out in n.output}
        keep |= {id(c) for c in convs if c.input[0] not in producer or id(producer[c.input[0]]) not in after_convs}
    if not options.int8_l2norm:
        keep |= {id(n) for n in l2norm_chain(model)}
    return [n.name for n in nodes if id(n) in keep]


def l2norm_chain(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The L2Norm nodes: from each ``Pow`` on through ``ReduceSum, Sqrt, Clip, Div, Mul`` (empty if none)."""
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            consumers[name].append(node)
    chain: list[onnx.NodeProto] = []
    stack = [n for n in model.graph.node if n.op_type == "Pow"]
    while stack:
        node = stack.pop()
        if node.op_type not in L2NORM_OPS or any(node is c for c in chain):
            continue
        chain.append(node)
        for out in node.output:
            stack.extend(consumers.get(out, ()))
    return chain


def quantize_int8(
    float_path: Path,
    int8_path: Path,
    calib_inputs: Sequence[np.ndarray],
    info: ModelInfo,
    options: QuantOptions = QuantOptions(),
    progress: bool = True,
) -> Path:
    """Pre-process, calibrate on ``calib_inputs`` and write the int8 QDQ model.

    ``info`` is the float model's description; the int8 file gets the same
    metadata with ``precision = "int8"``, plus ``options``' choices
    (:meth:`QuantOptions.metadata`: weight bits, activations, heads ...).
    """
    with tempfile.TemporaryDirectory(prefix="rover-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_path), str(prepared))
        model = onnx.load(str(prepared))
        if options.fold_input_scale:
            fold_input_scale(model)
            onnx.save_model(model, str(prepared))
        exclude = float_nodes(model, options)
        with contextlib.redirect_stdout(sys.stderr):  # onnxruntime print()s its progress
            quantize_static(
                str(prepared),
                str(int8_path),
                FrameReader(calib_inputs, progress),
                quant_format=QuantFormat.QDQ,
                activation_type=ACTIVATION_TYPES[options.activations],
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=options.weight_bits == 7,
                nodes_to_exclude=exclude,
                calibrate_method=CALIB_METHODS[options.method],
                extra_options={"CalibStridedMinMax": calibration_stride(len(calib_inputs))},
            )
    model = onnx.load(str(int8_path))
    if options.activations == "int8":
        dedicate_activation_qdq(model)  # the x86 workaround; uint8 needs none
    store_head_weights_half(model)
    set_metadata(model, {**info.metadata(), "precision": "int8", **options.metadata()})  # weights int8 either way
    onnx.save_model(model, str(int8_path))
    return Path(int8_path)


def fold_input_scale(model: onnx.ModelProto) -> bool:
    """Fold the normalisation's divisions into the first convolution's weights.

    The exported graph normalises with ``((x / 255) - mean) / std`` right
    before the first Conv; onnxruntime runs those element-wise ops on the
    NHWC image with a 3-wide broadcast, which costs about 6 % of the int8
    model's time (measured: docs/export.md). ``(x / a - b) / c`` equals
    ``(x - a b) / (a c)``, and a per-input-channel factor commutes with the
    convolution and with its zero padding, so the graph becomes
    ``x - 255 mean`` into the Conv with its weights divided by ``255 std``
    per input channel: the same function up to float rounding, one
    element-wise op instead of three. Returns whether the pattern was found.
    """
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {out: n for n in graph.node for out in n.output}
    uses: dict[str, int] = defaultdict(int)
    for node in graph.node:
        for name in node.input:
            uses[name] += 1

    def const(node: onnx.NodeProto, op: str) -> np.ndarray | None:
        if node is None or node.op_type != op or node.input[1] not in inits or uses[node.output[0]] != 1:
            return None
        return numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)

    for conv in graph.node:
        if conv.op_type != "Conv" or len(conv.input) < 2 or conv.input[1] not in inits or uses[conv.input[1]] != 1:
            continue
        div_std = producer.get(conv.input[0])
        std = const(div_std, "Div")
        sub = producer.get(div_std.input[0]) if std is not None else None
        mean = const(sub, "Sub")
        div_255 = producer.get(sub.input[0]) if mean is not None else None
        scale = const(div_255, "Div")
        if scale is None or scale.size != 1:
            continue
        weight = numpy_helper.to_array(inits[conv.input[1]])
        channels = weight.shape[1]
        per_channel = np.broadcast_to(scale.reshape(-1) * std.reshape(-1), (channels,))
        folded = weight / per_channel.reshape(1, channels, 1, 1).astype(np.float64)
        inits[conv.input[1]].CopyFrom(numpy_helper.from_array(folded.astype(weight.dtype), conv.input[1]))
        offset = (scale.reshape(-1) * mean).astype(np.float32)
        name = sub.input[1] + "_times_" + div_255.input[1]
        graph.initializer.append(numpy_helper.from_array(offset, name))
        sub.input[0], sub.input[1] = div_255.input[0], name
        conv.input[0] = sub.output[0]
        graph.node.remove(div_255)
        graph.node.remove(div_std)
        for unused in (div_255.input[1], div_std.input[1]):
            if uses[unused] == 1:
                graph.initializer.remove(inits[unused])
        return True
    return False


def dedicate_activation_qdq(model: onnx.ModelProto) -> int:
    """Give every consumer of a shared activation ``DequantizeLinear`` its own Q -> DQ pair.

    Why: on x86 onnxruntime only fuses QDQ groups with uint8 activations; it
    first rewrites int8 Q -> DQ pairs to uint8 (``QDQS8ToU8Transformer``),
    but only where the Q node has exactly one output edge. A tensor read by
    two nodes (each ResNet block's input: first 1x1 conv and downsample conv
    or residual Add; the extras' outputs: next conv and two heads) gets one
    Q whose DQ onnxruntime splits per consumer (``EnsureUniqueDQForNodeUnit``),
    so the Q has two edges, stays int8, and its consumers stay float Conv.
    One Q -> DQ pair per consumer (same scale and zero point, so the same
    quantized values) lets all of them convert and fuse. Each copy gets its
    own scale/zero-point initializers: with shared ones onnxruntime's common
    subexpression elimination merges the copies straight back.
    (``DedicatedQDQPair`` does the same only between quantized consumers and
    shares the initializers, so CSE undoes it.) Not fixable this way: a
    conv whose own output has several readers (extra1.2, extra2.2, extra3.0
    feed the next extra and two heads) now ends in several Qs, and ORT's
    conv fusion wants exactly one; those 3 small convs stay float, as do the
    residual Adds (same reason). Returns the pairs added. Used only with
    ``activations="int8"``: with uint8 (the default) no rewrite is needed and
    one Q per tensor lets every conv and Add fuse, on x86 and on ARM.
    """
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    added = 0
    for q in list(graph.node):
        if q.op_type != "QuantizeLinear" or q.input[0] in inits:
            continue
        dqs = consumers[q.output[0]]
        if len(dqs) != 1 or dqs[0].op_type != "DequantizeLinear" or len(consumers[dqs[0].output[0]]) < 2:
            continue
        dq = dqs[0]
        for k, user in enumerate(consumers[dq.output[0]][1:], start=1):
            q2, dq2 = copy.deepcopy(q), copy.deepcopy(dq)
            q2.name, dq2.name = f"{q.name}_pair{k}", f"{dq.name}_pair{k}"
            q2.output[0] = dq2.input[0] = f"{q.output[0]}_pair{k}"
            dq2.output[0] = f"{dq.output[0]}_pair{k}"
            for node in (q2, dq2):
                for i in range(1, len(node.input)):  # scale, zero point
                    own = copy.deepcopy(inits[node.input[i]])
                    own.name = f"{node.input[i]}_{node.name}"
                    graph.initializer.append(own)
                    node.input[i] = own.name
            for i, name in enumerate(user.input):
                if name == dq.output[0]:
                    user.input[i] = dq2.output[0]
            position = list(graph.node).index(user)
            graph.node.insert(position, dq2)
            graph.node.insert(position, q2)
            added += 1
    return added


def head_convs(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The detection heads' Conv nodes (weight named ``loc_layers.K.weight`` / ``conf_layers.K.weight``)."""
    return [n for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 1 and HEAD_WEIGHT.search(n.input[1])]


def store_head_weights_half(model: onnx.ModelProto) -> int:
    """Store the float heads' weights as float16 with a Cast back to float32.

    The heads still compute in float32 (onnxruntime folds the Cast into a
    float32 constant when the session starts); only the file shrinks. The
    heads hold 6.2 M of the 34.5 M parameters, so kept at 4 bytes they
    would make the int8 file 39 % of the float one; at 2 bytes it is under
    30 %. float16 rounding (relative 2^-11) is far below int8 noise.
    Returns the number of weights converted.
    """
    inits = {t.name: t for t in model.graph.initializer}
    converted = 0
    for node in head_convs(model):
        weight = inits.get(node.input[1])
        if weight is None or weight.data_type != onnx.TensorProto.FLOAT:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(weight).astype(np.float16), weight.name + "_fp16")
        model.graph.initializer.remove(weight)
        model.graph.initializer.append(half)
        cast = helper.make_node("Cast", [half.name], [weight.name], to=onnx.TensorProto.FLOAT, name=weight.name + "_to_float")
        position = list(model.graph.node).index(node)
        model.graph.node.insert(position, cast)
        converted += 1
    return converted


def _reachable(starts: Iterable[onnx.NodeProto], consumers: dict[str, list[onnx.NodeProto]]) -> set[int]:
    """ids of ``starts`` and of every node downstream of them."""
    seen: set[int] = set()
    stack = list(starts)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for out in node.output:
            stack.extend(consumers.get(out, ()))
    return seen
