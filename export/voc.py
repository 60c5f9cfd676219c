"""True mAP@0.5 on a Pascal VOC test split, measured the way the author did.

A VOCdevkit year folder (e.g. ``VOCdevkit/VOC2007``) holds ``JPEGImages/``,
``Annotations/*.xml`` and ``ImageSets/Main/test.txt``. Each test image goes
through the robot's own path (plain resize to the model input, the ONNX
model, :func:`rover.detector.postprocess.select` at score 0.01 and per-class NMS 0.45),
and torchmetrics' ``MeanAveragePrecision(iou_thresholds=[0.5])`` scores the
boxes in pixels. Objects marked ``difficult`` are passed as ``iscrowd`` so a
detection on them is neither rewarded nor punished, as VOC's own protocol
ignores them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import onnxruntime as ort
import torch
from torchmetrics.detection import MeanAveragePrecision
from tqdm import tqdm

from export.evaluate import MAP_POSTPROCESS, run, to_metric
from export.frames import to_input
from rover.core.errors import ConfigError
from rover.detector.postprocess import select


@dataclass(frozen=True)
class VocObject:
    label: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    difficult: bool


@dataclass(frozen=True)
class VocImage:
    image_id: str
    path: Path
    objects: tuple[VocObject, ...]


def read_split(root: Path, labels: Sequence[str], split: str = "test") -> list[VocImage]:
    """The images and annotations of ``ImageSets/Main/<split>.txt``; ConfigError naming what is missing."""
    root = Path(root)
    ids_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not ids_file.is_file():
        raise ConfigError(f"--voc {root} has no {ids_file.relative_to(root)}: give a VOCdevkit year folder (e.g. VOCdevkit/VOC2007)")
    image_ids = [line.split()[0] for line in ids_file.read_text().splitlines() if line.strip()]
    if not image_ids:
        raise ConfigError(f"{ids_file} lists no images: give a VOC year folder with a {split} split")
    index = {name: i for i, name in enumerate(labels)}
    return [_read_image(root, image_id, index) for image_id in image_ids]


def _read_image(root: Path, image_id: str, index: dict[str, int]) -> VocImage:
    xml_path = root / "Annotations" / f"{image_id}.xml"
    image_path = root / "JPEGImages" / f"{image_id}.jpg"
    if not image_path.is_file():
        raise ConfigError(f"VOC image {image_path} is missing: the folder does not match its {root.name} test split")
    try:
        tree = ET.parse(xml_path)
    except FileNotFoundError:
        raise ConfigError(f"VOC annotation {xml_path} is missing: the folder does not match its test split") from None
    except ET.ParseError as exc:
        raise ConfigError(f"VOC annotation {xml_path} is not valid XML ({exc})") from None
    objects = []
    for obj in tree.getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in index or index[name] == 0:
            raise ConfigError(f"VOC annotation {xml_path} names class {name!r}, which the model does not know")
        bnd = obj.find("bndbox")
        try:
            box = tuple(float(bnd.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[union-attr, arg-type]
        except (AttributeError, TypeError, ValueError):
            raise ConfigError(f"VOC annotation {xml_path} has an object without a numeric bndbox") from None
        objects.append(VocObject(index[name], box, (obj.findtext("difficult") or "0").strip() == "1"))  # type: ignore[arg-type]
    return VocImage(image_id, image_path, tuple(objects))


def target_of(image: VocImage) -> dict[str, torch.Tensor]:
    """torchmetrics' target dict, difficult objects as ``iscrowd``."""
    boxes = np.array([o.box for o in image.objects], dtype=np.float32).reshape(-1, 4)
    return {
        "boxes": torch.from_numpy(boxes),
        "labels": torch.tensor([o.label for o in image.objects], dtype=torch.int64),
        "iscrowd": torch.tensor([int(o.difficult) for o in image.objects], dtype=torch.int64),
    }


def prepare(image: VocImage, width: int, height: int) -> tuple[np.ndarray, dict[str, torch.Tensor], tuple[int, int]]:
    """The model input of one test image (the robot's resize), its target, and the image's ``(width, height)``."""
    bgr = cv2.imread(str(image.path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ConfigError(f"VOC image {image.path} cannot be decoded")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return to_input(rgb, width, height), target_of(image), (rgb.shape[1], rgb.shape[0])


def map50_of(outputs: Sequence[tuple[np.ndarray, np.ndarray]], targets: Sequence[dict[str, torch.Tensor]], sizes: Sequence[tuple[int, int]]) -> float:
    """mAP@0.5 of model outputs ``(boxes, scores)`` already computed on the prepared images (same order)."""
    metric = MeanAveragePrecision(iou_thresholds=[0.5])
    for (boxes, scores), target, (w, h) in zip(outputs, targets, sizes, strict=True):
        metric.update([to_metric(select(boxes, scores, MAP_POSTPROCESS), w, h)], [target])
    return float(metric.compute()["map_50"])


def voc_map50(
    sessions: dict[str, ort.InferenceSession],
    images: Sequence[VocImage],
    width: int,
    height: int,
    progress: bool = True,
) -> dict[str, float]:
    """mAP@0.5 of each named session on ``images`` (one image in memory at a time)."""
    metrics = {name: MeanAveragePrecision(iou_thresholds=[0.5]) for name in sessions}
    for image in tqdm(images, desc="VOC mAP", unit="image", disable=not progress):
        model_input, target, (w, h) = prepare(image, width, height)
        for name, session in sessions.items():
            det = select(*run(session, model_input), MAP_POSTPROCESS)
            metrics[name].update([to_metric(det, w, h)], [target])
    return {name: float(metric.compute()["map_50"]) for name, metric in metrics.items()}
