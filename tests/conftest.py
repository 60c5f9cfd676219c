"""Fixtures shared by the whole suite.

Area-specific fixtures live in ``tests/fixtures_<area>.py`` and are imported
here so every test module can use them by name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures_detector import *  # noqa: F401,F403
from tests.fixtures_drive import *  # noqa: F401,F403
from tests.fixtures_export import *  # noqa: F401,F403

REPO = Path(__file__).resolve().parents[1]
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
