"""``rover config``: the whole file checked at once; the README's reference is current."""

from __future__ import annotations

from pathlib import Path

from rover import cli
from rover.cli.configcheck import all_sections
from rover.core.config import reference

REPO = Path(__file__).resolve().parents[1]


def test_the_example_file_is_valid_for_every_program(capsys) -> None:
    assert cli.main(["config", "check", "--config", str(REPO / "config" / "rover.example.toml")]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "[drive]" in out and "[picar_b]" in out


def test_a_typo_in_any_section_is_named_with_exit_78(tmp_path: Path, capsys) -> None:
    path = tmp_path / "rover.toml"
    path.write_text("[camera]\nsource = '0'\n\n[drive]\ndeadman = 0.5\n")
    assert cli.main(["config", "check", "--config", str(path)]) == 78
    err = capsys.readouterr().err
    assert "drive.deadman" in err and "deadman_s" in err and len(err.strip().splitlines()) == 1


def test_a_missing_file_is_one_line_with_exit_78(tmp_path: Path, capsys) -> None:
    assert cli.main(["config", "check", "--config", str(tmp_path / "nope.toml")]) == 78
    assert "nope.toml" in capsys.readouterr().err


def test_a_directory_or_a_non_utf8_file_is_one_line_with_exit_78(tmp_path: Path, capsys) -> None:
    assert cli.main(["config", "check", "--config", str(tmp_path)]) == 78
    err = capsys.readouterr().err
    assert f"{tmp_path} is a directory" in err and "--config" in err and len(err.strip().splitlines()) == 1
    latin1 = tmp_path / "rover.toml"
    latin1.write_bytes("[camera]\nsource = 'caméra'\n".encode("latin-1"))
    assert cli.main(["config", "check", "--config", str(latin1)]) == 78
    err = capsys.readouterr().err
    assert "rover.toml is not UTF-8" in err and len(err.strip().splitlines()) == 1


def test_the_readme_holds_the_current_reference(capsys) -> None:
    assert cli.main(["config", "reference"]) == 0
    table = capsys.readouterr().out.strip()
    assert table == reference(all_sections())
    assert table in (REPO / "README.md").read_text(), "regenerate the README's table: rover config reference"


def test_reference_write_replaces_only_the_text_between_the_markers(tmp_path: Path, capsys) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- rover config reference: start -->\nold table\n<!-- rover config reference: end -->\noutro\n")
    assert cli.main(["config", "reference", "--write", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("end -->\noutro\n") and "old table" not in text
    assert reference(all_sections()) in text
    (tmp_path / "plain.md").write_text("no markers\n")
    assert cli.main(["config", "reference", "--write", str(tmp_path / "plain.md")]) == 78
    assert "plain.md has no" in capsys.readouterr().err


def test_the_default_file_is_used_when_present_and_never_silently_skipped_when_unreadable(tmp_path: Path, monkeypatch) -> None:
    import rover.core.config
    from rover.core.config import default_config_path

    missing = tmp_path / "missing.toml"
    monkeypatch.setattr(rover.core.config, "DEFAULT_CONFIG_PATH", missing)
    assert default_config_path() is None  # built-in defaults
    present = tmp_path / "rover.toml"
    present.write_text("")
    monkeypatch.setattr(rover.core.config, "DEFAULT_CONFIG_PATH", present)
    assert default_config_path() == present

    class Unreadable(type(Path())):
        def is_file(self) -> bool:
            raise PermissionError(13, "Permission denied", str(self))

    hidden = Unreadable(tmp_path / "etc-rover" / "rover.toml")
    monkeypatch.setattr(rover.core.config, "DEFAULT_CONFIG_PATH", hidden)
    assert default_config_path() == hidden  # so reading it fails with one line, not the defaults in silence
