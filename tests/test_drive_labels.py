"""Which labels --follow may name."""

from __future__ import annotations

import pytest

from rover.core.errors import EXIT_CONFIG, ConfigError
from rover.drive.labels import VOC_LABELS, check_label


def test_a_known_label_is_accepted_with_a_warning_when_the_model_cannot_be_asked() -> None:
    warning = check_label("person")
    assert warning is not None and "cannot verify" in warning


def test_a_typo_is_refused_with_a_suggestion_and_the_seed_models_labels() -> None:
    with pytest.raises(ConfigError) as info:
        check_label("persn")
    message = str(info.value)
    assert info.value.exit_code == EXIT_CONFIG
    assert "did you mean 'person'" in message and all(name in message for name in VOC_LABELS)


def test_the_models_own_labels_decide_when_the_stream_lists_them() -> None:
    labels = ["__background__", "person", "robot"]
    assert check_label("robot", labels) is None  # not a VOC/COCO name, but this model has it
    with pytest.raises(ConfigError, match="its labels are: person, robot$"):
        check_label("cat", labels)
