"""Which labels ``--follow`` may name.

Before the first message the drive can only check a label against the
class names of the datasets rover's models are trained on (Pascal VOC, which
the seed SSD300 uses, and COCO): that catches typos such as ``persn`` before
anything moves. The first message's ``model.labels`` (the model's own list,
which rover-detector always sends) is then authoritative; a stream without
it is accepted with a warning.
"""

from __future__ import annotations

import difflib
from typing import Sequence

from rover.core.errors import ConfigError

#: The 20 Pascal VOC classes, in the seed model's order (index 1..20).
VOC_LABELS = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
#: The 80 COCO detection classes.
COCO_LABELS = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)
KNOWN_LABELS = frozenset(VOC_LABELS) | frozenset(COCO_LABELS)
BACKGROUND_LABELS = frozenset({"__background__", "background"})


def check_label(label: str, model_labels: Sequence[str] | None = None) -> str | None:
    """Refuse a label the model cannot detect; return a warning when unverifiable.

    With ``model_labels`` (the model's own list, background excluded) that
    list decides. Without it, ``label`` must be a VOC or COCO class name.
    Raises ConfigError naming the labels available.
    """
    if model_labels is not None:
        available = [name for name in model_labels if name not in BACKGROUND_LABELS]
        if label not in available:
            raise ConfigError(
                f"--follow {label!r}: the model has no such label{_suggest(label, available)}; "
                f"its labels are: {', '.join(available)}"
            )
        return None
    if label not in KNOWN_LABELS:
        raise ConfigError(
            f"--follow {label!r} is not a VOC or COCO class name{_suggest(label, sorted(KNOWN_LABELS))}; "
            f"the seed model's labels are: {', '.join(VOC_LABELS)}"
        )
    return (f"cannot verify that the model detects {label!r}: the detection stream does not list the model's "
            "labels; following it anyway")


def _suggest(label: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(label, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
