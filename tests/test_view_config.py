"""The [view] section: example file, generated reference, refusals and flags of both programs."""

from __future__ import annotations

from pathlib import Path

import pytest

from rover.core.config import load_sections, reference
from rover.core.errors import ConfigError
from rover.detector.__main__ import build_parser as detector_parser
from rover.detector.__main__ import load_preview
from rover.view.__main__ import build_parser, load_config
from rover.view.config import SECTIONS, ViewSection

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "rover.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rover.toml"
    path.write_text(text)
    return path


def test_example_section_is_the_defaults_and_safe_ones():
    view = load_sections(EXAMPLE, SECTIONS)["view"]
    assert view == ViewSection()
    assert (view.preview, view.host, view.port, view.width, view.max_fps) == (False, "127.0.0.1", 8080, 320, 5.0)


def test_the_docs_hold_the_generated_reference():
    assert reference(SECTIONS) in (REPO / "docs" / "view.md").read_text(), (
        "regenerate docs/view.md's table: python -c 'from rover.core.config import reference; "
        "from rover.view.config import SECTIONS; print(reference(SECTIONS))'"
    )


@pytest.mark.parametrize(("text", "message"), [
    ("[view]\nwidht = 320\n", r"unknown key view\.widht .*known keys are .*width"),
    ("[view]\nwidth = 8\n", r"view.width must be in \[16, 4096\]"),
    ("[view]\nmax_fps = 0\n", r"view.max_fps must be in \(0, 60\]"),
    ("[view]\njpeg_quality = 101\n", r"view.jpeg_quality must be in \[1, 100\]"),
    ("[view]\nport = 70000\n", r"view.port must be in"),
    ("[view]\nport = '8080'\n", r"view.port .* must be int"),
    ("[view]\nhost = ''\n", r"view.host must be an address"),
    ("[view]\noffline_after_s = 0\n", r"view.offline_after_s must be positive"),
])
def test_bad_values_are_refused_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_sections(write(tmp_path, text), SECTIONS)


def test_view_flags_override_the_file(tmp_path):
    path = write(tmp_path, "[view]\nport = 9000\nhost = '0.0.0.0'\ndrive = 'ipc:///x'\n")
    args = build_parser().parse_args(["--config", str(path), "--port", "0", "--drive", "", "--frames", "ipc:///f"])
    view = load_config(args)
    assert (view.port, view.host, view.drive, view.frames) == (0, "0.0.0.0", "", "ipc:///f")


def test_detector_preview_flag_overrides_the_file(tmp_path):
    path = write(tmp_path, "[view]\npreview = true\nwidth = 160\n")
    assert load_preview(detector_parser().parse_args(["--config", str(path)])).preview
    view = load_preview(detector_parser().parse_args(["--config", str(path), "--no-preview"]))
    assert not view.preview and view.width == 160
