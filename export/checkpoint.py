"""Load the author's checkpoint strictly, or say in one line what is wrong with it.

The checkpoint is a bare ``state_dict`` (seed-model.md). Two variants exist:
the published one with the ``default_boxes`` (centre-size) and
``default_boxes_xyxy`` (corner) prior buffers, and the author's inference
variant that drops ``default_boxes`` and renames ``default_boxes_xyxy`` to
``priors``. Both load; anything else that differs is refused, naming the
first keys that differ, because a silently half-loaded detector is the worst
possible outcome on a robot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from export.model import SSD300ResNet50, make_priors
from rover.core.errors import ModelError

PUBLISHED = "published"
RENAMED = "renamed-priors"
#: How many differing key names an error message lists before "and N more".
_SHOW_KEYS = 3


@dataclass(frozen=True)
class LoadedCheckpoint:
    model: SSD300ResNet50
    sha256: str
    variant: str  # PUBLISHED or RENAMED


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load`` with ``weights_only=True`` on CPU; ModelError if it is not a state_dict."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ModelError(f"checkpoint {path} {what}: pass --weights PATH/TO/ssd_weights.pth")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise ModelError(f"checkpoint {path} cannot be read ({exc.strerror or exc}): check its permissions") from None
    except Exception:  # noqa: BLE001 - UnpicklingError for Python objects; IndexError, KeyError, EOFError... on foreign bytes
        # torch's own text (ANSI escapes, advice to set weights_only=False) and the
        # unpickler's bare reasons ("101") help no one: say what it is and the fix.
        raise ModelError(
            f"{path} is not a PyTorch checkpoint of tensors (it contains Python objects or is not a torch file); "
            "refused: export the state_dict with torch.save(model.state_dict(), ...)"
        ) from None
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(
            f"{path} holds a {type(obj).__name__}, not a bare state_dict of tensors: "
            "save it with torch.save(model.state_dict(), path)"
        )
    return dict(obj)


def normalise_variant(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Turn the renamed-``priors`` variant into the published key set."""
    if "priors" in state and "default_boxes_xyxy" not in state and "default_boxes" not in state:
        state = dict(state)
        state["default_boxes_xyxy"] = state.pop("priors")
        # The centre-size buffer is not used by forward; regenerate it so the
        # strict load below still checks every other key.
        state["default_boxes"] = make_priors()[0]
        return state, RENAMED
    return state, PUBLISHED


def check_keys(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], where: str) -> None:
    """ModelError naming the first missing, unexpected or mis-shaped keys."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    problems = []
    if missing:
        problems.append(f"missing keys {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_names(unexpected)}")
    if problems:
        raise ModelError(
            f"{where} is not an SSD300-ResNet50 checkpoint of the author's architecture: {'; '.join(problems)}"
        )
    for key, want in expected.items():
        have = state[key]
        if tuple(have.shape) != tuple(want.shape):
            raise ModelError(
                f"{where} does not fit the SSD300-ResNet50 architecture: {key} has shape "
                f"{list(have.shape)}, expected {list(want.shape)}"
            )


def load_checkpoint(path: Path) -> LoadedCheckpoint:
    """Build the architecture with no pretrained weights and load ``path`` into it strictly."""
    path = Path(path)
    state, variant = normalise_variant(read_state_dict(path))
    model = SSD300ResNet50()
    check_keys(state, model.state_dict(), str(path))
    model.load_state_dict(state, strict=True)
    return LoadedCheckpoint(model=model.eval(), sha256=sha256_of(path), variant=variant)


def save_author_format(model: SSD300ResNet50, path: Path, variant: str = PUBLISHED) -> Path:
    """Save ``model`` exactly as the author did (a bare state_dict), in either variant."""
    state = model.state_dict()
    if variant == RENAMED:
        state = {k: v for k, v in state.items() if k != "default_boxes"}
        state["priors"] = state.pop("default_boxes_xyxy")
    torch.save(state, Path(path))
    return Path(path)


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOW_KEYS])
    more = len(keys) - _SHOW_KEYS
    return f"{shown} and {more} more" if more > 0 else shown


def make_random_checkpoint(path: Path, seed: int = 0, variant: str = PUBLISHED) -> Path:
    """A fixed-seed random-weight checkpoint in the author's format (for demo, bench, tests).

    Random weights detect nothing real; they exercise loading, export and
    quantization exactly as the trained checkpoint does.
    """
    torch.manual_seed(seed)
    return save_author_format(SSD300ResNet50().eval(), path, variant)
