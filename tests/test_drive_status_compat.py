"""Drive status schema v1 across its revisions: old recordings still read, newer versions refused.

``tests/recordings/drive-v1-94813f8.jsonl`` was written by rover at commit
94813f8, the last one before ``estimate``, ``target_faster`` and ``limits``
joined the status: its own ``tests.test_drive_loop.Rig`` followed a person
for 2.5 s (4 frames/s, then the person gone: SAFE), and every detection
message and every fifth drive status went through that version's
``rover.stream.record.to_line``. So its drive lines are exactly what a drive
of that time published.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import zmq

from rover.core import messages
from rover.core.errors import MessageError
from rover.drive.status import (
    OPTIONAL_DEFAULTS,
    REQUIRED_KEYS,
    SCHEMA_VERSION,
    DriveStatus,
    LimitsInfo,
    decode,
    encode,
    from_dict,
)
from tests.fixtures_detector import wait_until
from tests.test_drive_status import SCHEMA, sample

OLD_RECORDING = Path(__file__).resolve().parent / "recordings" / "drive-v1-94813f8.jsonl"


def old_lines(topic: str) -> list[dict]:
    records = [json.loads(line) for line in OLD_RECORDING.read_text().splitlines()]
    return [r["message"] for r in records if r["topic"] == topic]


def test_the_recording_is_of_the_first_v1_drive() -> None:
    drive = old_lines("drive")
    assert len(drive) >= 10 and {"SAFE", "ARMED", "FOLLOWING"} <= {m["state"] for m in drive}
    assert all(m["v"] == 1 and m.keys() == REQUIRED_KEYS for m in drive)  # none of the later keys


def test_every_old_drive_line_decodes_with_the_documented_values_for_the_absent_keys() -> None:
    for message in old_lines("drive"):
        jsonschema.validate(message, SCHEMA)  # the published schema accepts it too
        status = decode(b"drive " + json.dumps(message).encode())
        assert (status.estimate, status.target_faster, status.limits, status.bumper) == (None, None, None, None)
        assert OPTIONAL_DEFAULTS == {"estimate": None, "target_faster": None, "limits": None, "bumper": None}
        # Nothing the old drive said is lost: the status gives back its message (estimate: null = no estimate).
        assert status.to_dict() == {**message, "estimate": None}
    moving = [from_dict(m) for m in old_lines("drive") if m["state"] == "FOLLOWING"]
    assert moving and all(s.throttle > 0 and s.target is not None for s in moving)


def test_a_line_of_todays_drive_decodes_with_every_key() -> None:
    limits = LimitsInfo(max_age_ms=500.0, deadman_ms=500.0, speed_limit_mps=0.9, travel_bound_m=1.5)
    status = sample(target_faster=True, limits=limits, bumper="obstacle")
    raw = encode(status)
    sent = json.loads(raw.partition(b" ")[2])
    assert sent.keys() == REQUIRED_KEYS | OPTIONAL_DEFAULTS.keys()
    jsonschema.validate(sent, SCHEMA)
    assert decode(raw) == status


@pytest.mark.parametrize("key, value", [("target_faster", None), ("limits", None), ("limits", {"max_age_ms": 1}),
                                        ("bumper", None), ("bumper", "blocked"), ("bumper", ["unknown"])])
def test_an_optional_key_when_present_has_its_type(key: str, value: object) -> None:
    data = {**sample(target_faster=False, limits=LimitsInfo(1.0, 1.0, 1.0, 1.0), bumper="clear").to_dict(), key: value}
    with pytest.raises(MessageError):
        from_dict(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)


@pytest.mark.parametrize("version", [2, 0, "1", True])
def test_another_version_is_refused_with_one_line_naming_both(version: object) -> None:
    # A v2 may have renamed anything: the version is what the reader must complain about.
    data = {"v": version, "seq": 1, "t_ns": 5, "state": "SAFE", "mode": "something new"}
    with pytest.raises(MessageError) as caught:
        from_dict(data)
    text = str(caught.value)
    assert f"version {version!r}" in text and f"reads version {SCHEMA_VERSION}" in text and "update rover" in text
    assert "\n" not in text


def test_missing_and_unknown_keys_are_named() -> None:
    data = sample().to_dict()
    del data["counters"]
    with pytest.raises(MessageError, match="status lacks counters"):
        from_dict(data)
    with pytest.raises(MessageError, match="status has unknown keys bumpr"):
        from_dict({**sample().to_dict(), "bumpr": "clear"})


def test_the_old_recording_replays_and_its_drive_lines_reach_the_view(tmp_path: Path) -> None:
    """``rover replay`` publishes its detections; its drive lines, published again, are shown by rover-view."""
    from tests.test_view_server import Rig

    endpoint = f"ipc://{tmp_path / 'replayed'}"
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.linger = 0
    sub.setsockopt(zmq.SUBSCRIBE, messages.TOPIC_BYTES)
    rig = Rig(tmp_path)
    try:
        sub.connect(endpoint)
        replay = subprocess.Popen([sys.executable, "-m", "rover.stream.replay", str(OLD_RECORDING), "--publish", endpoint,
                                   "--wait", "1", "--speed", "4"], stderr=subprocess.PIPE, text=True)
        received = []
        while len(received) < len(old_lines("detections")) and sub.poll(10_000):
            received.append(messages.decode(sub.recv()))
        _, err = replay.communicate(timeout=30)
        assert replay.returncode == 0, err
        assert [m.seq for m in received] == [m["seq"] for m in old_lines("detections")]

        old = old_lines("drive")
        deadline = time.monotonic() + 10
        while rig.state.snapshot()["drive"].get("state") != old[-1]["state"] or rig.state.snapshot()["drive"].get("follow") is None:
            assert time.monotonic() < deadline, rig.state.snapshot()
            for message in old:
                rig.drive.send(b"drive " + json.dumps(message).encode())
            time.sleep(0.05)
        wait_until(lambda: rig.state.snapshot()["drive"]["online"], 10)
        panel = rig.state.snapshot()
        assert panel["invalid"]["drive"] == 0 and panel["drive"]["follow"] == "person"
    finally:
        rig.close()
        sub.close(0)
        context.term()


def test_the_drive_sends_every_key() -> None:
    """The writer side of the rule: what rover-drive publishes always carries the optional keys."""
    from tests.test_drive_fakes import person
    from tests.test_drive_loop import Rig as LoopRig

    rig = LoopRig()
    rig.play(lambda t: [person(centre_x=0.4, height=0.25)], 0.0, 1.0)
    rig.run_for(1.0)
    assert rig.published
    for raw in rig.published:
        assert json.loads(raw.partition(b" ")[2]).keys() >= REQUIRED_KEYS | OPTIONAL_DEFAULTS.keys()
        assert isinstance(decode(raw), DriveStatus)
