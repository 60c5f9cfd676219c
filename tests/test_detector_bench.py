"""python -m rover.detector.bench runs end to end and reports every stage (figures are not asserted)."""

from __future__ import annotations

import pytest

from rover.detector import bench
from tests.fixtures_detector import write_video


@pytest.mark.slow
def test_bench_reports_each_stage_throughput_latency_and_memory(tmp_path, contract_model, capsys):
    video = write_video(tmp_path / "clip.avi", 8)
    code = bench.main(["--model", str(contract_model), "--source", str(video), "--frames", "12", "--rounds", "2",
                       "--classes", "person"])
    out = capsys.readouterr().out
    assert code == 0
    for name, _ in bench.STAGES:
        assert f"| {name} |" in out
    assert "| bare session.run |" in out
    assert "throughput (median of 2 alternating rounds)" in out and "peak RSS" in out
    assert "12 frames through the service" in out


def test_bench_bad_model_is_one_line_and_exit_78(tmp_path, capsys):
    code = bench.main(["--model", str(tmp_path / "none.onnx"), "--source", str(tmp_path)])
    assert code == 78 and "none.onnx does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_preview_reports_the_with_without_ratio_and_encode_times(tmp_path, contract_model, capsys):
    video = write_video(tmp_path / "clip.avi", 8, size=(640, 480))
    code = bench.main(["--model", str(contract_model), "--source", str(video), "--frames", "16", "--rounds", "2",
                       "--preview", "--preview-fps", "60", "--preview-segment", "2"])
    out = capsys.readouterr().out
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("preview (320 px, <= 60 fps"))
    assert "service throughput with preview / without:" in line and "adjacent off/on segment pairs" in line
    assert "resize + encode p50" in line and " 0 preview frames sent" not in line
    assert "preview encoder load at 60 fps" in out


def test_bench_bad_preview_rate_is_one_line_and_exit_78(tmp_path, capsys, contract_model):
    code = bench.main(["--model", str(contract_model), "--source", str(tmp_path), "--preview", "--preview-fps", "0"])
    assert code == 78 and "--preview-fps must be in (0, 60]" in capsys.readouterr().err
