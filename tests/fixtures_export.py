"""Shared pytest fixtures for the export tests (imported by tests/conftest.py).

``exported_models`` runs the real command line (``export.__main__.main``) ONCE
per test session on a fixed-seed random-weight checkpoint in the author's
format, with a handful of calibration frames, and hands out the paths. The
detector's end-to-end tests use ``exported_models.int8_path`` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


@pytest.fixture(scope="session")
def exported_models(tmp_path_factory: pytest.TempPathFactory) -> ExportedModels:
    """Float and int8 models exported by ``python -m export.demo`` (the real export command line on a
    fixed-seed random-weight checkpoint in the author's format)."""
    from export import demo
    from export.pipeline import FLOAT_NAME, INT8_NAME
    from export.report import REPORT_JSON

    work = tmp_path_factory.mktemp("export")
    code = demo.main([
        "--work-dir", str(work), "--calib-frames", str(FIXTURE_CALIB_FRAMES), "--val-frames", str(FIXTURE_VAL_FRAMES),
        "--latency-runs", "3", "--no-progress",
    ])  # fmt: skip
    assert code == 0, f"python -m export.demo exited {code}"
    out = work / "models"
    calib = demo.VIDEO if demo.VIDEO.is_file() else work / "synthetic_frames"
    return ExportedModels(out / FLOAT_NAME, out / INT8_NAME, work / "ssd_weights.pth", out / REPORT_JSON, out, calib)


@pytest.fixture(scope="session")
def trained_tiny_ssd():
    """The tiny SSD of tests/test_export_trained.py, trained once per session on one torch thread
    (training is most of those tests' time; the AVX2 tests score the same model)."""
    import torch

    from tests.test_export_trained import TinySSD, train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # with other work on the machine, more threads only contend
    try:
        return train(TinySSD())
    finally:
        torch.set_num_threads(threads)
