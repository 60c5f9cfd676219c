"""Shared pytest fixtures for the export tests (imported by tests/conftest.py).

``exported_models`` runs the real command line (``export.__main__.main``) ONCE
per test session on a fixed-seed random-weight checkpoint in the author's
format, with a handful of calibration frames, and hands out the paths. The
detector's end-to-end tests use ``exported_models.int8_path`` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vtest.avi"
#: Few frames so the whole export (trace, quantize, report) takes ~1 minute.
FIXTURE_CALIB_FRAMES = 6
FIXTURE_VAL_FRAMES = 3


@dataclass(frozen=True)
class ExportedModels:
    float_path: Path
    int8_path: Path
    checkpoint_path: Path
    report_json_path: Path
    out_dir: Path
    calib_path: Path


def write_synthetic_frames(folder: Path, count: int = 12, seed: int = 0, size: tuple[int, int] = (320, 240)) -> Path:
    """PNG frames of coloured rectangles and circles on noise (a stand-in camera)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    for i in range(count):
        image = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
        for _ in range(3):
            colour = tuple(int(c) for c in rng.integers(60, 256, 3))
            x, y = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
            if rng.random() < 0.5:
                cv2.rectangle(image, (x, y), (x + int(rng.integers(20, 60)), y + int(rng.integers(20, 60))), colour, -1)
            else:
                cv2.circle(image, (x + 30, y + 30), int(rng.integers(10, 30)), colour, -1)
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), image)
    return folder


@pytest.fixture(scope="session")
def exported_models(tmp_path_factory: pytest.TempPathFactory) -> ExportedModels:
    """Float and int8 models exported by ``python -m export`` from a random-weight checkpoint."""
    from export.__main__ import main
    from export.checkpoint import make_random_checkpoint
    from export.pipeline import FLOAT_NAME, INT8_NAME
    from export.report import REPORT_JSON

    work = tmp_path_factory.mktemp("export")
    checkpoint = make_random_checkpoint(work / "ssd_weights.pth", seed=0)
    calib = SHARED_VIDEO if SHARED_VIDEO.is_file() else write_synthetic_frames(work / "frames")
    out = work / "models"
    code = main([
        "--weights", str(checkpoint), "--calib", str(calib), "--out", str(out),
        "--calib-frames", str(FIXTURE_CALIB_FRAMES), "--val-frames", str(FIXTURE_VAL_FRAMES),
        "--latency-runs", "3", "--no-progress",
    ])  # fmt: skip
    assert code == 0, f"python -m export exited {code}"
    return ExportedModels(out / FLOAT_NAME, out / INT8_NAME, checkpoint, out / REPORT_JSON, out, calib)
