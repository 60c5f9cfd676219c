"""Detector: contract check on load, allow-list by label, NMS, top-k, non-finite outputs."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto

from rover.core.errors import ConfigError, ModelError
from rover.core.messages import MAX_ITEMS, MAX_STRING, DetectionMessage, ModelRef, decode, encode
from rover.detector.model import Detector, resolve_classes
from tests.fixtures_detector import make_contract_model

pytestmark = pytest.mark.slow  # loads ONNX models (tiny ones: the whole file runs in about a second)

DARK = np.zeros((96, 128, 3), np.uint8)
WHITE = np.full((96, 128, 3), 255, np.uint8)


def test_labels_and_input_size_come_from_the_model(contract_model):
    detector = Detector(contract_model)
    assert detector.labels == ("__background__", "person", "car")
    assert (detector.preprocess.width, detector.preprocess.height) == (64, 48)


def test_detections_are_labelled_normalised_and_overlaps_suppressed(contract_model):
    result = Detector(contract_model).detect(DARK, "bgr")
    assert [(d.label, d.class_id) for d in result.detections] == [("person", 1), ("car", 2)]
    person = result.detections[0]
    assert person.score == pytest.approx(np.exp(6) / (np.exp(6) + 2), rel=1e-5)
    assert person.box == pytest.approx((0.10, 0.20, 0.40, 0.90), abs=1e-6)  # the overlapping 2nd box is gone
    assert all(0.0 <= v <= 1.0 for d in result.detections for v in d.box)
    assert min(result.preprocess_ms, result.inference_ms, result.postprocess_ms) >= 0.0


def test_output_follows_the_frame_content(contract_model):
    detector = Detector(contract_model, score_threshold=0.99)
    assert [d.label for d in detector.detect(DARK, "bgr").detections] == ["person"]
    assert detector.detect(WHITE, "bgr").detections == ()


def test_allow_list_keeps_only_named_classes(contract_model):
    result = Detector(contract_model, classes=["car"]).detect(DARK, "bgr")
    assert [d.label for d in result.detections] == ["car"]


def test_top_k_keeps_the_best(contract_model):
    result = Detector(contract_model, top_k=1).detect(DARK, "bgr")
    assert [d.label for d in result.detections] == ["person"]


def test_unknown_class_is_refused_naming_the_models_labels(contract_model):
    with pytest.raises(ConfigError, match=r"'dog'.*its labels are person, car"):
        Detector(contract_model, classes=["person", "dog"])


def test_background_is_not_a_class_one_can_ask_for():
    with pytest.raises(ConfigError):
        resolve_classes(["__background__"], ["__background__", "person"])
    assert resolve_classes([], ["__background__", "person"]) is None


def test_a_different_detector_exported_to_the_contract_runs_unchanged(tmp_path):
    labels = ("bg", "cat", "dog", "person", "bike")
    logits = [[0, 0, 0, 7, 0], [0, 5, 0, 0, 0], [9, 0, 0, 0, 0]]
    boxes = [[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.1, 0.1, 0.2, 0.2]]
    path = make_contract_model(tmp_path / "other.onnx", labels=labels, logits=logits, boxes=boxes,
                               input_size=(32, 40), architecture="other-net", precision="int8")
    detector = Detector(path, classes=["person"])
    assert (detector.info.architecture, detector.info.precision) == ("other-net", "int8")
    assert [d.label for d in detector.detect(DARK, "rgb").detections] == ["person"]


def test_non_finite_outputs_are_dropped_and_counted(tmp_path):
    boxes = [[0.1, 0.1, 0.3, 0.3], [np.nan, 0.1, 0.3, 0.3], [0.5, 0.5, 0.9, 0.9]]
    logits = [[0, 6, 0], [0, 6, 0], [0, 0, np.inf]]
    path = make_contract_model(tmp_path / "nan.onnx", boxes=boxes, logits=logits)
    result = Detector(path).detect(DARK, "bgr")
    assert [d.box for d in result.detections] == [pytest.approx((0.1, 0.1, 0.3, 0.3))]
    assert result.dropped_nonfinite == 2


def test_inverted_boxes_are_dropped_not_published(tmp_path):
    boxes = [[0.4, 0.1, 0.2, 0.3], [0.5, 0.5, 0.9, 0.9], [0.0, 0.0, 1.0, 1.0]]
    logits = [[0, 6, 0], [0, 0, 6], [6, 0, 0]]
    result = Detector(make_contract_model(tmp_path / "inv.onnx", boxes=boxes, logits=logits)).detect(DARK, "bgr")
    assert [d.label for d in result.detections] == ["car"]  # the inverted person box is no detection
    assert result.dropped_nonfinite == 0  # and not a non-finite value either


def test_missing_model_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(ModelError, match=r"nope.onnx does not exist: export one"):
        Detector(tmp_path / "nope.onnx")


def test_corrupt_model_is_refused(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    with pytest.raises(ModelError, match="cannot be loaded by onnxruntime"):
        Detector(bad)


def test_model_without_contract_metadata_is_refused(tmp_path):
    path = make_contract_model(tmp_path / "nometa.onnx", drop_metadata=("labels",))
    with pytest.raises(ModelError, match="lacks metadata labels"):
        Detector(path)


def test_labels_beyond_the_message_schema_limits_are_refused(tmp_path):
    def model(name, labels):
        return make_contract_model(tmp_path / name, labels=labels, logits=[[0.0] * len(labels)] * 4)

    at_limit = ["__background__", *(f"c{i}" for i in range(MAX_ITEMS - 1)), "x" * MAX_STRING]
    info = Detector(model("limit.onnx", at_limit)).info  # exactly what a message carries: accepted end to end
    ref = ModelRef(info.architecture, info.precision, info.source_sha256, info.labels[1:])
    assert decode(encode(DetectionMessage(seq=0, t_publish_ns=0, status="starting", model=ref, fps=0.0))).model == ref
    with pytest.raises(ModelError, match=rf"{MAX_ITEMS + 1} class labels .* at most {MAX_ITEMS}") as many:
        Detector(model("many.onnx", [*at_limit, "one-more"]))
    assert many.value.exit_code == 78
    with pytest.raises(ModelError, match=rf"is {MAX_STRING + 1} characters .* at most {MAX_STRING}"):
        Detector(model("long.onnx", ["__background__", "y" * (MAX_STRING + 1)]))
    with pytest.raises(ModelError, match="metadata 'architecture'"):
        Detector(make_contract_model(tmp_path / "arch.onnx", architecture="a" * (MAX_STRING + 1)))


def test_model_with_float_input_is_refused(tmp_path):
    path = make_contract_model(tmp_path / "float.onnx", input_dtype=TensorProto.FLOAT)
    with pytest.raises(ModelError, match="must be uint8"):
        Detector(path)


def test_bare_run_matches_detect_inference(contract_model):
    detector = Detector(contract_model)
    boxes, scores = detector.run(detector.preprocess(DARK, "bgr"))
    assert boxes.shape == (1, 4, 4) and scores.shape == (1, 4, 3)
    np.testing.assert_allclose(scores.sum(axis=-1), 1.0, rtol=1e-5)
