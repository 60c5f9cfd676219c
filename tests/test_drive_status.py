"""The drive status message: round trip, the published JSON Schema, and refusals."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import jsonschema
import pytest

from rover.core.errors import MessageError
from rover.drive.status import OPTIONAL_DEFAULTS, REQUIRED_KEYS, DriveStatus, TargetInfo, decode, encode

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "rover" / "schemas" / "drive-v1.schema.json").read_text())


def sample(**changes: object) -> DriveStatus:
    fields = dict(seq=7, t_ns=123_456_789, state="FOLLOWING", follow="person", throttle=0.4, steering=-0.25,
                  pan=0.0, scale=0.8, target=TargetInfo((0.1, 0.2, 0.3, 0.9), 0.87), detection_age_ms=180.0,
                  latency_ms=150.5, obstacle_m=1.2, counters={"fresh": 10, "stale": 2, "invalid": 1, "status": 0})
    fields.update(changes)
    return DriveStatus(**fields)


@pytest.mark.parametrize("status", [sample(), sample(state="SAFE", target=None, detection_age_ms=None, latency_ms=None, obstacle_m=None, throttle=0.0)])
def test_round_trip_and_schema(status: DriveStatus) -> None:
    raw = encode(status)
    assert raw.startswith(b"drive {")
    assert decode(raw) == status
    jsonschema.validate(json.loads(raw.partition(b" ")[2]), SCHEMA)


def test_schema_is_a_valid_draft_2020_12_schema_and_lists_every_field() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert set(SCHEMA["required"]) == REQUIRED_KEYS  # the first v1 drive's keys; the later ones are optional
    assert set(SCHEMA["properties"]) == REQUIRED_KEYS | OPTIONAL_DEFAULTS.keys() == {f.name for f in fields(DriveStatus)}


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"state": "DANCING"},
        {"state": [1]},  # unhashable: once a TypeError that killed rover-view's stream thread
        {"state": {"FOLLOWING": 1}},
        {"throttle": 1.5},
        {"steering": "left"},
        {"target": {"box": [0, 0, 2, 1], "score": 0.5}},
        {"counters": {"fresh": 1}},
        {"extra": 1},
        {"seq": -1},
    ],
)
def test_decode_and_schema_refuse_the_same_defects(change: dict) -> None:
    data = {**sample().to_dict(), **change}
    raw = b"drive " + json.dumps(data).encode()
    with pytest.raises(MessageError):
        decode(raw)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)


def test_decode_refuses_another_topic_and_non_finite_numbers() -> None:
    with pytest.raises(MessageError):
        decode(encode(sample()).replace(b"drive", b"detections", 1))
    with pytest.raises(MessageError):
        decode(encode(sample()).replace(b'"throttle":0.4', b'"throttle":NaN'))
