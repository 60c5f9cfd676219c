"""The package layout says what a module may use, and the old flat paths keep working.

Each folder of ``rover/`` is one part of the system; :data:`MAY_USE` is the
rule a newcomer reads in the README's Development paragraph, checked here on
every module's imports (module level and inside functions alike).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from rover import _moved

ROVER = Path(__file__).resolve().parents[1] / "rover"

#: part -> the other parts its modules may import (itself always allowed).
MAY_USE: dict[str, set[str]] = {
    "core": set(),
    "sources": {"core"},
    "detector": {"core", "sources"},
    "hw": {"core"},
    "drive": {"core", "hw"},
    "stream": {"core", "sources"},  # rover capture reads the camera
    "view": {"core", "detector", "drive"},  # it shows the detector's preview and the drive's status streams
    "sim": {"core", "drive", "hw"},
    "cli": {"core", "stream"},
}

#: single modules another part may use, with the reason.
EXCEPTIONS: dict[str, set[str]] = {
    # whether and how to publish preview frames is said in the [view] section
    "detector": {"rover.view.config"},
    # rover capture: the [camera] section is the detector's, and it reads the detector's preview wire format
    "stream": {"rover.detector.config", "rover.detector.preview"},
}


def _part(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "rover" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "rover":
                names.update(f"rover.{alias.name}" for alias in node.names)
    return {name for name in names if name == "rover" or name.startswith("rover.")}


def test_every_part_is_in_the_rule() -> None:
    folders = {p.name for p in ROVER.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == set(MAY_USE), "a new folder in rover/ needs its line in MAY_USE and the README's layout"


@pytest.mark.parametrize("part", sorted(MAY_USE))
def test_a_part_imports_only_what_its_place_allows(part: str) -> None:
    allowed = MAY_USE[part] | {part}
    broken = []
    for path in sorted((ROVER / part).rglob("*.py")):
        for name in _imports(path):
            used = _part(name)
            if used is None or used in allowed or name in EXCEPTIONS.get(part, set()):
                continue
            if name in _moved.MOVED:
                broken.append(f"{path.relative_to(ROVER.parent)} imports the old path {name}: use {_moved.MOVED[name]}")
            else:
                broken.append(f"{path.relative_to(ROVER.parent)} imports {name}")
    assert not broken, f"rover.{part} may use only {sorted(allowed)}:\n" + "\n".join(broken)


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_an_old_module_path_is_the_same_module(old: str) -> None:
    new = _moved.MOVED[old]
    assert importlib.import_module(old) is importlib.import_module(new)


def test_an_exception_from_the_old_path_is_the_same_class() -> None:
    from rover.errors import ConfigError as old  # the path that code written before the regrouping uses

    from rover.core.errors import ConfigError as new

    assert old is new


@pytest.mark.parametrize("old", ["rover.bench", "rover.listen", "rover.safestop"])
def test_python_dash_m_on_an_old_path_runs_the_program(old: str) -> None:
    proc = subprocess.run([sys.executable, "-m", old, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:")
