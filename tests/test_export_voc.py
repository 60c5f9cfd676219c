"""Reading a VOC-format test split, and mAP scored as the author scored it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export.evaluate import cap_candidates, map50
from export.model import VOC_LABELS
from export.voc import read_split, target_of
from rover.core.errors import ConfigError


def _voc(root, annotations: dict[str, str]):
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for image_id, objects in annotations.items():
        (root / "JPEGImages" / f"{image_id}.jpg").write_bytes(b"")
        (root / "Annotations" / f"{image_id}.xml").write_text(f"<annotation>{objects}</annotation>")
    (root / "ImageSets" / "Main" / "test.txt").write_text("\n".join(annotations) + "\n")
    return root


def _obj(name: str, box=(10, 20, 110, 220), difficult: int = 0) -> str:
    x1, y1, x2, y2 = box
    return (f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
            f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")  # fmt: skip


def test_test_split_objects_and_difficult_flags_are_read(tmp_path):
    root = _voc(tmp_path / "VOC2007", {"000001": _obj("person") + _obj("dog", (1, 2, 3, 4), 1), "000002": ""})
    images = read_split(root, VOC_LABELS)
    assert [i.image_id for i in images] == ["000001", "000002"]
    first = images[0].objects
    assert [(o.label, o.box, o.difficult) for o in first] == [(15, (10.0, 20.0, 110.0, 220.0), False), (12, (1.0, 2.0, 3.0, 4.0), True)]
    target = target_of(images[0])
    assert target["iscrowd"].tolist() == [0, 1] and target["labels"].tolist() == [15, 12]
    assert target_of(images[1])["boxes"].shape == (0, 4)


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("no_split", "has no ImageSets/Main/test.txt"),
        ("no_xml", "000001.xml is missing"),
        ("bad_xml", "is not valid XML"),
        ("unknown_class", "names class 'unicorn'"),
        ("no_image", "000001.jpg is missing"),
    ],
)
def test_a_broken_voc_folder_names_what_is_wrong(tmp_path, breakage, message):
    root = _voc(tmp_path / "VOC", {"000001": _obj("unicorn" if breakage == "unknown_class" else "cat")})
    if breakage == "no_split":
        (root / "ImageSets" / "Main" / "test.txt").unlink()
    elif breakage == "no_xml":
        (root / "Annotations" / "000001.xml").unlink()
    elif breakage == "bad_xml":
        (root / "Annotations" / "000001.xml").write_text("<annotation><object>")
    elif breakage == "no_image":
        (root / "JPEGImages" / "000001.jpg").unlink()
    with pytest.raises(ConfigError, match=message):
        read_split(root, VOC_LABELS)


def test_map50_is_one_for_perfect_detections_and_drops_for_a_wrong_class():
    target = [{"boxes": torch.tensor([[10.0, 10.0, 50.0, 50.0]]), "labels": torch.tensor([15])}]
    perfect = [{"boxes": torch.tensor([[11.0, 10.0, 50.0, 51.0]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([15])}]
    wrong = [{"boxes": torch.tensor([[11.0, 10.0, 50.0, 51.0]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([7])}]
    assert map50(perfect, target) == pytest.approx(1.0)
    assert map50(wrong, target) == pytest.approx(0.0)
    assert map50(perfect, [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]) is None


def test_candidate_cap_keeps_each_class_best_priors_only():
    scores = np.tile(np.linspace(0.0, 1.0, 500, dtype=np.float32)[:, None], (1, 3))
    capped = cap_candidates(scores, per_class=10)
    assert (np.count_nonzero(capped, axis=0) == 10).all()
    assert np.array_equal(capped[-10:], scores[-10:])
