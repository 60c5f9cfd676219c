"""The SSD300-ResNet50 architecture and its priors, as seed-model.md describes them."""

from __future__ import annotations

import math

import pytest
import torch

from export.graph import decode
from export.model import L2Norm, SSD300ResNet50, make_priors


def test_there_are_11658_priors_in_head_order():
    cxcywh, xyxy = make_priors()
    assert cxcywh.shape == xyxy.shape == (11658, 4)
    # First cell of the 38x38 map: six boxes at its centre, scale 0.2.
    first = cxcywh[:6]
    assert torch.allclose(first[:, :2], torch.tensor([0.5 / 38, 0.5 / 38]).expand(6, 2))
    s, s2 = 0.2, math.sqrt(0.2 * 0.34)
    expected_wh = [(s, s), (s2, s2), (s * math.sqrt(2), s / math.sqrt(2)), (s / math.sqrt(2), s * math.sqrt(2)),
                   (s * math.sqrt(0.5), s / math.sqrt(0.5)), (s / math.sqrt(0.5), s * math.sqrt(0.5))]  # fmt: skip
    assert torch.allclose(first[:, 2:], torch.tensor(expected_wh), atol=1e-6)
    # Second cell moves one column right; the last map's boxes use s' = 1.0.
    assert cxcywh[6, 0].item() == pytest.approx(1.5 / 38)
    assert cxcywh[-6, 2].item() == pytest.approx(0.9) and cxcywh[-5, 2].item() == pytest.approx(math.sqrt(0.9))
    assert xyxy.min() >= 0 and xyxy.max() <= 1


def test_corner_priors_are_the_clamped_centre_size_priors():
    cxcywh, xyxy = make_priors()
    corners = torch.cat([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], 1).clamp(0, 1)
    assert torch.equal(xyxy, corners)


def test_l2norm_scales_unit_vectors_by_the_learned_weight():
    norm = L2Norm(2)
    x = torch.tensor([[[[3.0]], [[4.0]]]])
    assert torch.allclose(norm(x).flatten(), torch.tensor([0.6 * 20, 0.8 * 20]))
    assert torch.isfinite(norm(torch.zeros(1, 2, 1, 1))).all()  # eps clamp: no division by zero


def test_zero_offsets_decode_to_the_priors_themselves():
    _, xyxy = make_priors()
    boxes = decode(torch.zeros(1, len(xyxy), 4), xyxy)
    assert torch.allclose(boxes[0], xyxy, atol=1e-6)
    shifted = decode(torch.tensor([[[10.0, 0.0, 0.0, 0.0]]]), torch.tensor([[0.2, 0.2, 0.4, 0.4]]))
    assert torch.allclose(shifted, torch.tensor([[[0.4, 0.2, 0.6, 0.4]]]))  # dx*0.1*w = 0.2


def test_forward_returns_loc_conf_and_priors_for_a_300_frame():
    torch.manual_seed(0)
    model = SSD300ResNet50().eval()
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(34.5e6, rel=0.01)
    with torch.no_grad():
        loc, conf, priors = model(torch.zeros(1, 3, 300, 300))
    assert loc.shape == (1, 11658, 4) and conf.shape == (1, 11658, 21) and priors.shape == (11658, 4)
    assert set(k.split(".")[0] for k in model.state_dict()) == {
        "stage1", "stage2", "l2norm", "stage3", "stage4", "extra1", "extra2", "extra3",
        "loc_layers", "conf_layers", "default_boxes", "default_boxes_xyxy",
    }  # fmt: skip
