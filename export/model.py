"""The author's SSD300 (ResNet-50 backbone) and its priors, as in seed-model.md.

The module names match the author's ``state_dict`` key for key, so the
published checkpoint loads strictly. ``forward`` returns ``(loc, conf,
priors_xyxy)``: raw box offsets ``(N, P, 4)``, raw class logits ``(N, P, C)``
and the corner-form priors ``(P, 4)``. Every export function in this package
accepts any module with that forward, which is how the tests run the same
export and quantization path on a tiny SSD they can train in seconds.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torchvision
from torch import nn

ARCHITECTURE = "ssd300-resnet50"
INPUT_SIZE = 300
#: Class names in the checkpoint's order; index 0 is the background.
VOC_LABELS = (
    "__background__",
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
NUM_CLASSES = len(VOC_LABELS)
ANCHORS_PER_CELL = 6
#: Cells a side of the six feature maps at 300x300 (stage2 .. extra3).
FEATURE_SIZES = (38, 19, 10, 5, 3, 2)
#: Prior scale of each feature map, as a fraction of the input side.
SCALES = (0.2, 0.34, 0.48, 0.62, 0.76, 0.9)
HEAD_CHANNELS = (512, 1024, 2048, 512, 256, 256)


def make_priors(feature_sizes: Sequence[int] = FEATURE_SIZES, scales: Sequence[float] = SCALES) -> tuple[torch.Tensor, torch.Tensor]:
    """Default boxes as ``(centre-size, corners)``, each ``(P, 4)`` in ``[0, 1]``.

    Six boxes per cell, row by row, in the order the heads emit them:
    ``(s, s)``, ``(sqrt(s s'), sqrt(s s'))``, then for aspect ratios 2 and 0.5
    ``(s sqrt(ar), s / sqrt(ar))`` and its transpose. ``s'`` is the next map's
    scale (1.0 after the last). The 2:1 and 1:2 boxes appear twice: the model
    was trained that way.
    """
    boxes = []
    for k, size in enumerate(feature_sizes):
        s = scales[k]
        s_next = scales[k + 1] if k + 1 < len(scales) else 1.0
        shapes = [(s, s), (math.sqrt(s * s_next),) * 2]
        for ar in (2.0, 0.5):
            shapes += [(s * math.sqrt(ar), s / math.sqrt(ar)), (s / math.sqrt(ar), s * math.sqrt(ar))]
        for i in range(size):
            for j in range(size):
                cx, cy = (j + 0.5) / size, (i + 0.5) / size
                boxes.extend((cx, cy, w, h) for w, h in shapes)
    cxcywh = torch.tensor(boxes, dtype=torch.float32).clamp(0.0, 1.0)
    xyxy = torch.cat([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], dim=1).clamp(0.0, 1.0)
    return cxcywh, xyxy


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation times a learned per-channel scale (init 20)."""

    def __init__(self, channels: int, scale: float = 20.0, eps: float = 1e-10) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), scale))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt().clamp(min=self.eps)
        return x / norm * self.weight.view(1, -1, 1, 1)


def make_heads(channels: Sequence[int], num_classes: int, anchors: int = ANCHORS_PER_CELL) -> tuple[nn.ModuleList, nn.ModuleList]:
    """The 3x3 box (``loc_layers``) and class (``conf_layers``) heads, one per feature map."""
    loc = nn.ModuleList(nn.Conv2d(c, anchors * 4, 3, padding=1) for c in channels)
    conf = nn.ModuleList(nn.Conv2d(c, anchors * num_classes, 3, padding=1) for c in channels)
    return loc, conf


def apply_heads(features: Sequence[torch.Tensor], loc_layers: nn.ModuleList, conf_layers: nn.ModuleList, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the heads and flatten them NHWC, so prior ``p`` is (row, column, anchor)."""
    n = features[0].shape[0]
    loc = [head(f).permute(0, 2, 3, 1).reshape(n, -1, 4) for f, head in zip(features, loc_layers)]
    conf = [head(f).permute(0, 2, 3, 1).reshape(n, -1, num_classes) for f, head in zip(features, conf_layers)]
    return torch.cat(loc, dim=1), torch.cat(conf, dim=1)


class SSD300ResNet50(nn.Module):
    """SSD300 on a torchvision ResNet-50 (no pretrained weights: nothing is downloaded)."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.num_classes = num_classes
        resnet = torchvision.models.resnet50(weights=None)
        self.stage1 = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1)
        self.stage2 = resnet.layer2
        self.l2norm = L2Norm(512)
        self.stage3 = resnet.layer3
        self.stage4 = resnet.layer4
        self.extra1 = nn.Sequential(nn.Conv2d(2048, 512, 1), nn.ReLU(inplace=True), nn.Conv2d(512, 512, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.extra2 = nn.Sequential(nn.Conv2d(512, 256, 1), nn.ReLU(inplace=True), nn.Conv2d(256, 256, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.extra3 = nn.Sequential(nn.Conv2d(256, 256, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.loc_layers, self.conf_layers = make_heads(HEAD_CHANNELS, num_classes)
        cxcywh, xyxy = make_priors()
        self.register_buffer("default_boxes", cxcywh)
        self.register_buffer("default_boxes_xyxy", xyxy)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x``: normalised float ``(N, 3, 300, 300)``; returns ``(loc, conf, priors_xyxy)``."""
        f1 = self.l2norm(self.stage2(self.stage1(x)))
        f2 = self.stage3(f1)
        f3 = self.stage4(f2)
        f4 = self.extra1(f3)
        f5 = self.extra2(f4)
        f6 = self.extra3(f5)
        loc, conf = apply_heads((f1, f2, f3, f4, f5, f6), self.loc_layers, self.conf_layers, self.num_classes)
        return loc, conf, self.default_boxes_xyxy
