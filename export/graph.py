"""The exported graph: uint8 NHWC RGB in, decoded boxes and softmax scores out.

:class:`ContractWrapper` puts everything the robot must not do in Python into
the graph: uint8 to float, NHWC to NCHW, ImageNet normalisation, the detector,
box decoding against the priors (variances 0.1 and 0.2) and the softmax.
:func:`export_onnx` writes it to the :mod:`rover.core.contract` with its metadata.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from rover.core.contract import BOXES_NAME, INPUT_NAME, SCORES_NAME, ModelInfo

#: ImageNet statistics the backbone was trained with (RGB, on 0-1 pixels).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
#: SSD box-coding variances: centre offsets scaled by 0.1, log-sizes by 0.2.
CENTER_VARIANCE = 0.1
SIZE_VARIANCE = 0.2
OPSET = 18


def decode(loc: torch.Tensor, priors_xyxy: torch.Tensor) -> torch.Tensor:
    """Box offsets ``(N, P, 4)`` against corner-form priors ``(P, 4)`` to corners in ``[0, 1]``."""
    p_wh = priors_xyxy[:, 2:] - priors_xyxy[:, :2]
    p_c = priors_xyxy[:, :2] + p_wh / 2
    centre = loc[..., :2] * CENTER_VARIANCE * p_wh + p_c
    size = torch.exp(loc[..., 2:] * SIZE_VARIANCE) * p_wh
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1).clamp(0.0, 1.0)


def normalise(image: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` RGB to ImageNet-normalised float ``(N, 3, H, W)``."""
    x = image.permute(0, 3, 1, 2).to(torch.float32) / 255.0
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


class ContractWrapper(nn.Module):
    """Wraps any detector whose forward returns ``(loc, conf, priors_xyxy)``."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, conf, priors = self.detector(normalise(image))
        return decode(loc, priors), torch.softmax(conf, dim=-1)


def export_onnx(detector: nn.Module, info: ModelInfo, path: Path, opset: int = OPSET) -> Path:
    """Export ``detector`` wrapped to the contract as one self-contained ONNX file.

    Uses the dynamo exporter (torch.export + onnxscript), the only one torch
    keeps maintaining; its graph is constant-folded and has no Python-side
    control flow. The input is a fixed ``[1, H, W, 3]``: the robot runs one
    frame at a time and a fixed shape lets onnxruntime plan memory once.
    """
    wrapper = ContractWrapper(detector).eval()
    example = torch.zeros((1, info.input_height, info.input_width, 3), dtype=torch.uint8)
    path = Path(path)
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(
            wrapper,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[BOXES_NAME, SCORES_NAME],
            opset_version=opset,
            optimize=True,
            external_data=False,
        )
    model = program.model_proto
    set_metadata(model, info.metadata())
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return path


def set_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    """Replace the model's ``metadata_props`` keys given in ``metadata``."""
    keep = [p for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)


@contextlib.contextmanager
def _quiet():
    """Silence the exporter's progress chatter (it prints to stdout and logs)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
