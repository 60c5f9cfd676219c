"""messages.decode and the published JSON Schema agree on what a valid message is."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from rover.core.errors import MessageError
from rover.core.messages import Detection, DetectionMessage, FrameInfo, ModelRef, Timing, decode, encode

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "rover" / "schemas" / "detection-v1.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

VALID = DetectionMessage(
    seq=7, t_publish_ns=2_000_000, status="ok", model=ModelRef("ssd300-resnet50", "int8", "ab" * 32), fps=9.5,
    frame=FrameInfo(9, 1_000_000, 1.7e9, 640, 480), timing_ms=Timing(1.0, 80.0, 0.5, 90.0),
    detections=(Detection("person", 15, 0.9, (0.1, 0.2, 0.4, 0.9)),),
).to_dict()


def accepted_by_decode(data: dict) -> bool:
    try:
        decode(b"detections " + json.dumps(data).encode())
    except MessageError:
        return False
    return True


MUTATIONS = {
    "negative seq": lambda d: d.update(seq=-1),
    "negative frame seq": lambda d: d["frame"].update(seq=-1),
    "negative fps": lambda d: d.update(fps=-0.5),
    "negative timing": lambda d: d["timing_ms"].update(inference=-1.0),
    "ok without frame": lambda d: d.update(frame=None),
    "status message with detections": lambda d: d.update(status="no_frame", frame=None, timing_ms=None),
    "score above 1": lambda d: d["detections"][0].update(score=1.5),
    "box outside [0, 1]": lambda d: d["detections"][0].update(box=[0.1, 0.2, 1.4, 0.9]),
    "unknown key": lambda d: d.update(extra=1),
    "version 2": lambda d: d.update(v=2),
    "zero width frame": lambda d: d["frame"].update(width=0),
    "negative class id": lambda d: d["detections"][0].update(class_id=-1),
    "null model labels": lambda d: d["model"].update(labels=None),
}


def test_a_valid_message_passes_both():
    assert VALIDATOR.is_valid(VALID) and accepted_by_decode(VALID)
    assert json.loads(encode(decode(b"detections " + json.dumps(VALID).encode())).split(b" ", 1)[1]) == VALID


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_schema_and_decode_refuse_the_same_defects(name):
    data = copy.deepcopy(VALID)
    MUTATIONS[name](data)
    assert not VALIDATOR.is_valid(data)
    assert not accepted_by_decode(data)


def test_status_message_passes_both():
    status = DetectionMessage(seq=8, t_publish_ns=3, status="camera_error", model=ModelRef("m", "int8", "x"), fps=0.0).to_dict()
    assert VALIDATOR.is_valid(status) and accepted_by_decode(status)
