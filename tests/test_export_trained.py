"""Quantization accuracy on a model that has learned something.

Random weights say little about what int8 does to accuracy, so this trains a
tiny SSD (same heads, priors, decode, wrapper, export, quantization and
report code as the real model; a 4-conv backbone) on generated rectangles and
circles for a few seconds, writes a VOC-format test folder of new shapes, and
runs :func:`export.pipeline.export_all` with ``voc_images``: the int8 model's
true mAP@0.5 must stay within 0.05 of the float model's.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from export.frames import Frame
from export.graph import CENTER_VARIANCE, SIZE_VARIANCE, normalise
from export.model import apply_heads, make_heads, make_priors
from export.pipeline import ExportOptions, export_all
from export.voc import read_split
from rover.core.contract import ModelInfo

pytestmark = pytest.mark.slow

LABELS = ("__background__", "rectangle", "circle")
SIZE = 64
#: Stated margin: int8 may lose at most this much true mAP@0.5.
INT8_MAP_MARGIN = 0.05


class TinySSD(nn.Module):
    """SSD heads on a 4-conv backbone; forward returns ``(loc, conf, priors_xyxy)``."""

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

        self.stem = nn.Sequential(block(3, 16), block(16, 32))  # 16x16
        self.down1, self.down2 = block(32, 64), block(64, 64)  # 8x8, 4x4
        self.loc_layers, self.conf_layers = make_heads((32, 64, 64), len(LABELS))
        self.register_buffer("priors", make_priors((16, 8, 4), (0.15, 0.35, 0.6))[1])

    def forward(self, x):
        f0 = self.stem(x)
        f1 = self.down1(f0)
        f2 = self.down2(f1)
        loc, conf = apply_heads((f0, f1, f2), self.loc_layers, self.conf_layers, len(LABELS))
        return loc, conf, self.priors


def make_scene(rng: np.random.Generator, size: int = SIZE) -> tuple[np.ndarray, list[tuple[int, list[float]]]]:
    """An RGB image of noise with 1-2 shapes, and their (class, normalised box)."""
    image = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
    objects = []
    for _ in range(int(rng.integers(1, 3))):
        side = int(rng.integers(size // 5, size // 2))
        x, y = int(rng.integers(0, size - side)), int(rng.integers(0, size - side))
        colour = tuple(int(c) for c in rng.integers(130, 256, 3))
        if rng.random() < 0.5:
            cv2.rectangle(image, (x, y), (x + side - 1, y + side - 1), colour, -1)
            objects.append((1, [x / size, y / size, (x + side) / size, (y + side) / size]))
        else:
            cv2.circle(image, (x + side // 2, y + side // 2), side // 2, colour, -1)
            objects.append((2, [x / size, y / size, (x + side) / size, (y + side) / size]))
    return image, objects


def ssd_loss(loc, conf, priors, boxes, labels):
    """Matching at IoU 0.5, smooth-L1 on encoded offsets, CE with 3:1 hard negatives.

    ``boxes`` (B, M, 4) and ``labels`` (B, M) are padded with label 0.
    """
    p_wh = priors[:, 2:] - priors[:, :2]
    p_c = priors[:, :2] + p_wh / 2
    lt = torch.maximum(priors[None, :, None, :2], boxes[:, None, :, :2])
    rb = torch.minimum(priors[None, :, None, 2:], boxes[:, None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    iou = inter / (area(priors)[None, :, None] + area(boxes)[:, None, :] - inter)
    iou = torch.where(labels[:, None, :] > 0, iou, torch.full_like(iou, -1.0))
    best_iou, best = iou.max(2)
    for m in range(boxes.shape[1]):  # every object gets at least its best prior
        rows = (labels[:, m] > 0).nonzero().squeeze(1)
        top = iou[rows, :, m].argmax(1)
        best_iou[rows, top], best[rows, top] = 1.0, m
    cls = torch.where(best_iou >= 0.5, labels.gather(1, best), 0)
    pos = cls > 0
    g = boxes.gather(1, best[..., None].expand(-1, -1, 4))
    g_wh, g_c = g[..., 2:] - g[..., :2], (g[..., :2] + g[..., 2:]) / 2
    enc = torch.cat([(g_c - p_c) / (CENTER_VARIANCE * p_wh), torch.log(g_wh.clamp(min=1e-6) / p_wh) / SIZE_VARIANCE], -1)
    loc_loss = F.smooth_l1_loss(loc[pos], enc[pos], reduction="sum")
    ce = F.cross_entropy(conf.reshape(-1, conf.shape[-1]), cls.reshape(-1), reduction="none").view_as(cls)
    neg = ce.detach().masked_fill(pos, 0.0)
    rank = neg.argsort(1, descending=True).argsort(1)
    hard = rank < 3 * pos.sum(1, keepdim=True)
    return (loc_loss + ce[pos | hard].sum()) / pos.sum().clamp(min=1)


def train(model: TinySSD, steps: int = 250, batch: int = 32, seed: int = 0) -> TinySSD:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        scenes = [make_scene(rng) for _ in range(batch)]
        boxes = torch.zeros(batch, 2, 4)
        labels = torch.zeros(batch, 2, dtype=torch.int64)
        for i, (_, objects) in enumerate(scenes):
            for m, (c, b) in enumerate(objects):
                boxes[i, m], labels[i, m] = torch.tensor(b), c
        images = normalise(torch.from_numpy(np.stack([s[0] for s in scenes])))
        loc, conf, priors = model(images)
        loss = ssd_loss(loc, conf, priors, boxes, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def write_voc(root, rng: np.random.Generator, count: int, scale: int = 2) -> None:
    """A VOC year folder of ``count`` new scenes, saved at ``scale`` x the model input."""
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    ids = []
    for i in range(count):
        image, objects = make_scene(rng)
        big = cv2.resize(image, (SIZE * scale, SIZE * scale), interpolation=cv2.INTER_NEAREST)
        image_id = f"{i:06d}"
        cv2.imwrite(str(root / "JPEGImages" / f"{image_id}.jpg"), cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        objs = "".join(
            f"<object><name>{LABELS[c]}</name><difficult>0</difficult><bndbox><xmin>{b[0] * SIZE * scale:.0f}</xmin>"
            f"<ymin>{b[1] * SIZE * scale:.0f}</ymin><xmax>{b[2] * SIZE * scale:.0f}</xmax><ymax>{b[3] * SIZE * scale:.0f}</ymax></bndbox></object>"
            for c, b in objects
        )
        (root / "Annotations" / f"{image_id}.xml").write_text(f"<annotation><filename>{image_id}.jpg</filename>{objs}</annotation>")
        ids.append(image_id)
    (root / "ImageSets" / "Main" / "test.txt").write_text("\n".join(ids) + "\n")


def test_int8_keeps_the_true_map_of_a_trained_detector(tmp_path, trained_tiny_ssd):
    model = trained_tiny_ssd
    rng = np.random.default_rng(123)
    calib = [Frame(f"calib{i}", make_scene(rng)[0]) for i in range(16)]
    held_out = [Frame(f"val{i}", make_scene(rng)[0]) for i in range(8)]
    write_voc(tmp_path / "VOC", rng, 40)
    info = ModelInfo(LABELS, SIZE, SIZE, "tiny-ssd-test", "float32", "0" * 64, "test")
    result = export_all(
        model, info, calib, held_out, tmp_path / "out", {"checkpoint": "trained in test"},
        ExportOptions(threads=1, latency_runs=2, progress=False), read_split(tmp_path / "VOC", LABELS),
    )  # fmt: skip
    voc = result.report["voc"]
    assert voc["images"] == 40
    assert voc["float"] > 0.5, f"the tiny SSD did not learn (float mAP {voc['float']:.3f})"
    assert voc["int8"] >= voc["float"] - INT8_MAP_MARGIN, voc
    assert result.report["agreement"]["map50"] > 0.5
    assert result.report["parity"]["max_abs_scores"] < 1e-4
    print(f"tiny SSD VOC mAP@0.5: float {voc['float']:.4f}, int8 {voc['int8']:.4f}")
