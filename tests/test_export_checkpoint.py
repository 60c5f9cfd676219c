"""Loading the author's checkpoint, and one clear line for every bad input."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from export.checkpoint import PUBLISHED, RENAMED, load_checkpoint, make_random_checkpoint
from export.model import SSD300ResNet50, make_priors
from rover.core.errors import EXIT_CONFIG, ModelError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    return {
        PUBLISHED: make_random_checkpoint(folder / "published.pth", seed=1, variant=PUBLISHED),
        RENAMED: make_random_checkpoint(folder / "renamed.pth", seed=1, variant=RENAMED),
    }


def test_published_checkpoint_has_the_author_keys(checkpoints):
    state = torch.load(checkpoints[PUBLISHED], map_location="cpu", weights_only=True)
    assert {"default_boxes", "default_boxes_xyxy", "stage1.0.weight", "stage1.1.running_mean", "stage1.4.0.conv1.weight",
            "l2norm.weight", "extra3.0.weight", "loc_layers.5.bias", "conf_layers.0.weight"} <= set(state)  # fmt: skip
    assert state["conf_layers.0.weight"].shape == (6 * 21, 512, 3, 3)
    renamed = torch.load(checkpoints[RENAMED], map_location="cpu", weights_only=True)
    assert "priors" in renamed and "default_boxes" not in renamed and "default_boxes_xyxy" not in renamed


def test_both_variants_load_to_the_same_weights(checkpoints):
    a, b = load_checkpoint(checkpoints[PUBLISHED]), load_checkpoint(checkpoints[RENAMED])
    assert (a.variant, b.variant) == (PUBLISHED, RENAMED)
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key
    assert torch.equal(a.model.default_boxes_xyxy, make_priors()[1])
    assert len(a.sha256) == 64 and a.sha256 != b.sha256


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ModelError, match=r"nope\.pth does not exist: pass --weights"):
        load_checkpoint(tmp_path / "nope.pth")


def test_a_text_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    with pytest.raises(ModelError, match="is not a PyTorch checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "write",
    [
        lambda path: torch.save({"w": torch.zeros(2), "args": argparse.Namespace(lr=0.1)}, path),  # Python objects
        lambda path: path.write_text("hello world\n"),  # the unpickler's own reason was "(101)"
        lambda path: path.write_bytes(b""),
    ],
    ids=["python-objects", "text", "empty"],
)
def test_a_file_torch_cannot_load_safely_gets_our_one_line_message(tmp_path, write):
    path = tmp_path / "odd.pth"
    write(path)
    with pytest.raises(ModelError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert message == (
        f"{path} is not a PyTorch checkpoint of tensors (it contains Python objects or is not a torch file); "
        "refused: export the state_dict with torch.save(model.state_dict(), ...)"
    )
    assert "\x1b" not in message and "weights_only" not in message


def test_a_pickled_list_is_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(ModelError, match="holds a list, not a bare state_dict"):
        load_checkpoint(path)


def test_another_architecture_names_the_first_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(ModelError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "missing keys default_boxes" in message or "missing keys stage1.0.weight" in message
    assert "unexpected keys conv1.weight, bn1.weight, bn1.bias and" in message


def test_a_wrong_class_count_names_the_mis_shaped_key(tmp_path):
    path = tmp_path / "coco.pth"
    torch.manual_seed(0)
    torch.save(SSD300ResNet50(num_classes=81).state_dict(), path)
    with pytest.raises(ModelError, match=r"conf_layers\.0\.weight has shape \[486, 512, 3, 3\], expected \[126, 512, 3, 3\]"):
        load_checkpoint(path)


def test_an_extra_key_is_refused(tmp_path, checkpoints):
    state = torch.load(checkpoints[PUBLISHED], map_location="cpu", weights_only=True)
    state["head.extra.weight"] = torch.zeros(1)
    path = tmp_path / "extra.pth"
    torch.save(state, path)
    with pytest.raises(ModelError, match=r"unexpected keys head\.extra\.weight$"):
        load_checkpoint(path)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "export", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_cli_bad_inputs_give_one_line_and_exit_78(tmp_path, checkpoints):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "broken.jpg").write_bytes(b"not a jpeg")
    cases = [
        (["--weights", str(tmp_path / "missing.pth"), "--calib", str(empty)], "missing.pth does not exist"),
        (["--weights", str(not_a_folder), "--calib", str(empty)], "is not a PyTorch checkpoint"),
        (["--weights", str(checkpoints[PUBLISHED]), "--calib", str(empty)], "has no readable frames"),
        (["--weights", str(checkpoints[PUBLISHED]), "--calib", str(tmp_path / "nowhere.avi")], "nowhere.avi does not exist"),
    ]
    for args, message in cases:
        result = _cli(*args, "--out", str(tmp_path / "out"))
        assert result.returncode == EXIT_CONFIG, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    result = _cli("--weights", str(checkpoints[PUBLISHED]), "--calib", str(empty), "--out", str(not_a_folder / "sub"))
    assert result.returncode == EXIT_CONFIG and "cannot be written" in result.stderr and "Traceback" not in result.stderr


def test_cli_help_documents_the_exit_codes():
    result = _cli("--help")
    assert result.returncode == 0
    assert "78" in result.stdout and "exit codes" in result.stdout and "--calib-method" in result.stdout
