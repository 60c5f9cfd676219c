"""Fixtures shared by the whole suite.

Area-specific fixtures live in ``tests/fixtures_<area>.py`` and are imported
here so every test module can use them by name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.fixtures_detector import *  # noqa: F401,F403
from tests.fixtures_drive import *  # noqa: F401,F403
from tests.fixtures_export import *  # noqa: F401,F403

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _runtime_dir() -> Iterator[Path]:
    """Each test's own runtime directory for relative ipc:// endpoints (ipc://detections...).

    Never this machine's /run/rover or the session's $XDG_RUNTIME_DIR, which
    other tests and programs use; short, since a Unix socket path holds 107 bytes.
    Not through ``monkeypatch``: that would make every test's monkeypatch
    outlive its other fixtures' teardown.
    """
    folder = Path(tempfile.mkdtemp(prefix="rvrt-"))
    before = os.environ.get("ROVER_RUNTIME_DIR")
    os.environ["ROVER_RUNTIME_DIR"] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop("ROVER_RUNTIME_DIR", None)
        else:
            os.environ["ROVER_RUNTIME_DIR"] = before
        shutil.rmtree(folder, ignore_errors=True)
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real test media folder (../shared/data), or skip when it is absent."""
    if not (SHARED_DATA / "vtest.avi").is_file():
        pytest.skip(f"real test media not found at {SHARED_DATA} (a clone outside the rover workspace has no ../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def vtest_video(shared_data: Path) -> Path:
    """The pedestrian video: 795 frames, 768x576, 10 fps."""
    return shared_data / "vtest.avi"
