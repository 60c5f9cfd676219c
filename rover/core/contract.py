"""The model contract: the only thing ``rover`` knows about a detection model.

Any detector exported to this contract runs in ``rover`` unchanged:

- one input ``image``: ``uint8``, shape ``[1, H, W, 3]``, RGB, pixel values
  0-255. Resizing to ``H x W`` is the caller's job; normalisation is inside
  the graph.
- output ``boxes``: ``float32``, ``[1, N, 4]``, corners ``x1, y1, x2, y2``
  normalised to ``[0, 1]`` of the input image (decoding against the priors is
  inside the graph).
- output ``scores``: ``float32``, ``[1, N, C]``, softmax probabilities; class
  0 is the background.
- metadata properties (``onnx`` ``metadata_props``), all strings:

  ===================== ==================================================
  ``labels``            JSON list of the C class names, ``labels[0]`` the
                        background (e.g. ``"__background__"``)
  ``input_size``        JSON object ``{"width": W, "height": H}``
  ``architecture``      e.g. ``"ssd300-resnet50"``
  ``precision``         ``"float32"`` or ``"int8"``
  ``source_sha256``     sha256 of the checkpoint the model was exported from
  ``exporter_version``  version of the exporter that wrote the file
  ``contract``          version of this contract, ``"1"``
  ===================== ==================================================

This module is pure: it checks descriptions of inputs and outputs (anything
with ``name``, ``type`` and ``shape`` attributes, as onnxruntime's ``NodeArg``
has) so it can be tested without a model file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

from rover.core.errors import ModelError
from rover.core.messages import MAX_ITEMS, MAX_STRING

CONTRACT_VERSION = "1"
INPUT_NAME = "image"
BOXES_NAME = "boxes"
SCORES_NAME = "scores"
REQUIRED_METADATA = (
    "labels",
    "input_size",
    "architecture",
    "precision",
    "source_sha256",
    "exporter_version",
)


class TensorSpec(Protocol):
    """What the contract check needs to know of one graph input or output."""

    name: str
    type: str  # onnxruntime spelling, e.g. "tensor(uint8)"
    shape: Sequence[Any]  # ints, or None / str for symbolic dimensions


@dataclass(frozen=True)
class ModelInfo:
    """What a conforming model declares about itself."""

    labels: tuple[str, ...]
    input_width: int
    input_height: int
    architecture: str
    precision: str
    source_sha256: str
    exporter_version: str

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def name(self) -> str:
        return self.architecture

    def metadata(self) -> dict[str, str]:
        """The metadata properties that describe this model in an ONNX file."""
        return {
            "labels": json.dumps(list(self.labels)),
            "input_size": json.dumps({"width": self.input_width, "height": self.input_height}),
            "architecture": self.architecture,
            "precision": self.precision,
            "source_sha256": self.source_sha256,
            "exporter_version": self.exporter_version,
            "contract": CONTRACT_VERSION,
        }


def parse_metadata(metadata: Mapping[str, str], where: str = "model") -> ModelInfo:
    """Read and check the metadata properties; raise ModelError naming the key."""
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ModelError(
            f"{where} lacks metadata {', '.join(missing)}: it was not exported to the rover "
            "model contract (re-export it with `python -m export`)"
        )
    try:
        labels = json.loads(metadata["labels"])
        size = json.loads(metadata["input_size"])
        width, height = int(size["width"]), int(size["height"])
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"{where} has malformed labels or input_size metadata ({exc}): re-export it") from None
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise ModelError(f"{where} metadata 'labels' must be a JSON list of at least 2 class names: re-export it")
    if width <= 0 or height <= 0:
        raise ModelError(f"{where} metadata input_size must be positive, got {width}x{height}")
    # Every detection message lists labels[1:] as model.labels: beyond the
    # message schema's limits each one would be refused by every subscriber.
    if len(labels) - 1 > MAX_ITEMS:
        raise ModelError(
            f"{where} has {len(labels) - 1} class labels (background excluded) but a detection message carries "
            f"at most {MAX_ITEMS}: re-export it with at most {MAX_ITEMS} classes"
        )
    long = next((label for label in labels if len(label) > MAX_STRING), None)
    if long is not None:
        raise ModelError(
            f"{where} label {long[:40]!r}... is {len(long)} characters but a detection message carries at most "
            f"{MAX_STRING}: re-export it with shorter class names"
        )
    for key in ("architecture", "precision", "source_sha256"):
        if len(str(metadata[key])) > MAX_STRING:
            raise ModelError(
                f"{where} metadata '{key}' is {len(str(metadata[key]))} characters but a detection message carries "
                f"at most {MAX_STRING}: re-export it with a shorter {key}"
            )
    return ModelInfo(
        labels=tuple(labels),
        input_width=width,
        input_height=height,
        architecture=str(metadata["architecture"]),
        precision=str(metadata["precision"]),
        source_sha256=str(metadata["source_sha256"]),
        exporter_version=str(metadata["exporter_version"]),
    )


def check_io(inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], info: ModelInfo, where: str = "model") -> None:
    """Check the graph's inputs and outputs against the contract and metadata."""
    fix = "export it to the rover model contract (`python -m export`)"
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
        names = [i.name for i in inputs]
        raise ModelError(f"{where} must have exactly one input named '{INPUT_NAME}', has {names}: {fix}")
    image = inputs[0]
    if image.type != "tensor(uint8)":
        raise ModelError(f"{where} input '{INPUT_NAME}' must be uint8, is {image.type}: {fix}")
    expected = [1, info.input_height, info.input_width, 3]
    if not _shape_matches(image.shape, expected):
        raise ModelError(f"{where} input '{INPUT_NAME}' must have shape {expected} (NHWC RGB), has {list(image.shape)}: {fix}")
    by_name = {o.name: o for o in outputs}
    for name, last in ((BOXES_NAME, 4), (SCORES_NAME, info.num_classes)):
        out = by_name.get(name)
        if out is None:
            raise ModelError(f"{where} has no output '{name}' (outputs: {sorted(by_name)}): {fix}")
        if out.type != "tensor(float)":
            raise ModelError(f"{where} output '{name}' must be float32, is {out.type}: {fix}")
        if len(out.shape) != 3 or not _shape_matches(out.shape, [1, None, last]):
            raise ModelError(f"{where} output '{name}' must have shape [1, N, {last}], has {list(out.shape)}: {fix}")
    n_boxes, n_scores = by_name[BOXES_NAME].shape[1], by_name[SCORES_NAME].shape[1]
    if isinstance(n_boxes, int) and isinstance(n_scores, int) and n_boxes != n_scores:
        raise ModelError(f"{where} outputs disagree on N: boxes has {n_boxes}, scores has {n_scores}: {fix}")


def _shape_matches(shape: Sequence[Any], expected: Sequence[int | None]) -> bool:
    if len(shape) != len(expected):
        return False
    for have, want in zip(shape, expected):
        if want is None or not isinstance(have, int):
            continue  # symbolic dimension, checked at run time
        if have != want:
            return False
    return True
