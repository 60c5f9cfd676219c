"""The detector's config sections, the example file, and flag overrides."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from rover.core.config import load_sections
from rover.core.errors import ConfigError
from rover.detector.__main__ import build_parser, load_config
from rover.detector.config import SECTIONS, CameraSection, DetectorSection, StreamSection

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "rover.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rover.toml"
    path.write_text(text)
    return path


def test_example_config_loads_and_only_departs_from_defaults_where_it_says_so():
    sections = load_sections(EXAMPLE, SECTIONS)
    assert sections["detector"] == DetectorSection(classes=["person"])
    assert sections["camera"] == CameraSection()
    assert sections["stream"] == StreamSection()


def test_no_file_gives_the_documented_defaults():
    sections = load_sections(None, SECTIONS)
    assert sections["stream"].bind == "ipc://detections" and sections["detector"].intra_op_threads == 0
    assert sections["stream"].local_bind == ""  # loopback TCP for other programs: an explicit choice


def test_unknown_key_is_refused_by_its_dotted_name(tmp_path):
    path = write(tmp_path, "[camera]\nsorce = '0'\n")
    with pytest.raises(ConfigError, match=r"unknown key camera\.sorce in .*known keys are .*source"):
        load_sections(path, SECTIONS)


def test_unknown_section_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown section \[detectr\]"):
        load_sections(write(tmp_path, "[detectr]\n"), SECTIONS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[detector]\nscore_threshold = 1.5\n", "score_threshold must be in"),
        ("[detector]\ntop_k = 0\n", "top_k must be at least 1"),
        ("[detector]\nclasses = 'person'\n", "detector.classes .* must be a list"),
        ("[camera]\nformat = 'YUV420'\n", "camera.format .* must be one of"),
        ("[camera]\nwidth = 'wide'\n", "camera.width .* must be int"),
        ("[camera]\ncapture_timeout_s = 12.0\n", r"camera.capture_timeout_s must be in \(0, 5\] .*watchdog"),
        ("[stream]\nstatus_interval_s = 2.0\n", "2 Hz or more"),
        ("[stream]\nclient_keys_dir = '/etc/rover/keys'\n", "must be set together"),
        ("[stream]\nbind = 'tcp://127.0.0.1:5555'\nlan_bind = 'tcp://127.0.0.1:5555'\n", "lan_bind .* same endpoint as stream.bind"),
        ("[stream]\nlan_bind = 'tcp://127.0.0.1:5565'\n", "lan_bind .* stays on this host"),
        ("[stream]\nlan_bind = 'ipc:///run/rover/lan'\n", "lan_bind .* stays on this host"),
        ("[stream]\nbind = 'tcp://127.0.0.1:5555'\nlan_bind = 'tcp://0.0.0.0:5555'\n", "same port 5555"),
        ("[stream]\nlocal_bind = 'tcp://0.0.0.0:5555'\n", "local_bind .* must be TCP on loopback"),
        ("[stream]\nlocal_bind = 'ipc:///tmp/d'\n", "local_bind .* must be TCP on loopback"),
        ("[stream]\nlan_bind = 'tcp://0.0.0.0:5565'\n", r"lan_bind .* reachable from the network.*server_secret_key"),
        ("[stream]\nlan_bind = 'udp://0.0.0.0:5565'\nallow_insecure_lan = true\n", "must be tcp://"),
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_sections(write(tmp_path, text), SECTIONS)


def test_other_programs_sections_are_tolerated(tmp_path):
    path = write(tmp_path, "[drive]\nanything = 1\n[detector]\ntop_k = 3\n")
    assert load_sections(path, SECTIONS)["detector"].top_k == 3


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_flags_override_the_file(tmp_path):
    path = write(tmp_path, "[detector]\nmodel = '/a.onnx'\nmax_frames = 5\n[camera]\nsource = '0'\n[stream]\nbind = 'ipc:///x'\n")
    detector, camera, stream = load_config(parse("--config", str(path), "--model", "/b.onnx", "--source", "clip.avi",
                                                  "--bind", "tcp://127.0.0.1:7000", "--classes", "person, car",
                                                  "--no-pace", "--loop"))
    assert detector.model == Path("/b.onnx") and detector.max_frames == 5
    assert detector.classes == ["person", "car"]
    assert (camera.source, camera.pace, camera.loop) == ("clip.avi", False, True)
    assert stream.bind == "tcp://127.0.0.1:7000"


def test_a_bad_flag_value_is_a_config_error():
    with pytest.raises(ConfigError, match="max_frames"):
        load_config(parse("--config", str(EXAMPLE), "--max-frames", "-1"))


def test_lan_bind_with_keys_or_the_opt_in_is_accepted_and_bind_stays_local(tmp_path):
    keyed = write(tmp_path, "[stream]\nlan_bind = 'tcp://0.0.0.0:5565'\n"
                            "server_secret_key = '/k/server.key_secret'\nclient_keys_dir = '/k/authorized'\n")
    stream = load_sections(keyed, SECTIONS)["stream"]
    assert (stream.bind, stream.lan_bind) == ("ipc://detections", "tcp://0.0.0.0:5565")
    insecure = write(tmp_path, "[stream]\nlan_bind = 'tcp://0.0.0.0:5565'\nallow_insecure_lan = true\n")
    assert load_sections(insecure, SECTIONS)["stream"].lan_bind == "tcp://0.0.0.0:5565"
    assert StreamSection().lan_bind == ""  # off by default


def test_lan_bind_flag_overrides_the_file_and_is_checked(tmp_path):
    path = write(tmp_path, "[stream]\nlan_bind = 'tcp://0.0.0.0:5565'\nallow_insecure_lan = true\n")
    assert load_config(parse("--config", str(path), "--lan-bind", "tcp://0.0.0.0:6000"))[2].lan_bind == "tcp://0.0.0.0:6000"
    assert load_config(parse("--config", str(path), "--lan-bind", ""))[2].lan_bind == ""
    with pytest.raises(ConfigError, match="stays on this host"):
        load_config(parse("--config", str(path), "--lan-bind", "tcp://127.0.0.1:6000"))
    with pytest.raises(ConfigError, match="reachable from the network"):
        load_config(parse("--config", str(EXAMPLE), "--lan-bind", "tcp://0.0.0.0:6000"))
