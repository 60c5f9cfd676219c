"""The export report: a JSON file for machines, a Markdown file and a PNG for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from rover.detector.postprocess import RawDetections

REPORT_JSON = "export_report.json"
REPORT_MD = "export_report.md"
PICTURE = "export_detections.png"
_FLOAT_COLOUR = (40, 200, 40)  # RGB
_INT8_COLOUR = (230, 120, 20)


def write_json(report: Mapping[str, Any], out_dir: Path) -> Path:
    path = Path(out_dir) / REPORT_JSON
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    return path


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _yes(report: Mapping[str, Any], part: str) -> str:
    return "yes" if report.get("quantized", {}).get(part, True) else "no (float32)"


def markdown(report: Mapping[str, Any]) -> str:
    """The human-readable report."""
    src, files, par, agr, lat = (report[k] for k in ("source", "files", "parity", "agreement", "latency_ms"))
    lines = [
        f"# Export report: {report['architecture']}",
        "",
        f"- checkpoint: `{src['checkpoint']}` ({src['variant']}), sha256 `{src['sha256']}`",
        f"- exporter {report['exporter_version']}, opset {report['opset']}, calibration `{report['calibration']['method']}`, {report['calibration']['activations']} activations "
        f"on {report['calibration']['frames']} frames of `{report['calibration']['source']}`",
        f"- in int8: heads {_yes(report, 'heads')}, first convolution {_yes(report, 'first_conv')}, L2Norm {_yes(report, 'l2norm')}",
        f"- held-out frames: {report['held_out']['frames']} of `{report['held_out']['source']}`",
        "",
        "| | float32 | int8 |",
        "| --- | --- | --- |",
        f"| file | `{files['float']['name']}` | `{files['int8']['name']}` |",
        f"| size (MB) | {files['float']['bytes'] / 1e6:.1f} | {files['int8']['bytes'] / 1e6:.1f} "
        f"({files['int8_over_float']:.1%} of float) |",
        f"| median latency (ms, {lat['threads']} threads, {lat['runs']} runs) | {lat['float']:.1f} | {lat['int8']:.1f} |",
    ]
    voc = report.get("voc")
    if voc:
        lines.append(f"| VOC mAP@0.5 ({voc['images']} test images) | {voc['float']:.4f} | {voc['int8']:.4f} |")
    lines += [
        "",
        "## PyTorch vs float ONNX",
        f"Max absolute difference over {par['frames']} held-out frames: boxes {_fmt(par['max_abs_boxes'], '.2e')}, "
        f"scores {_fmt(par['max_abs_scores'], '.2e')}.",
        "",
        "## int8 vs float",
        f"- mAP@0.5 of int8 detections (score >= 0.01) against float detections (score >= "
        f"{agr['truth_threshold']}) as ground truth: **{_fmt(agr['map50'], '.4f')}** "
        f"({agr['float_detections']} float, {agr['int8_detections']} int8 detections over {agr['frames']} frames)",
        f"- mean absolute score difference {agr['mean_abs_score_diff']:.2e} (max {agr['max_abs_score_diff']:.3f}); "
        f"mean absolute box-coordinate difference {agr['mean_abs_box_diff']:.2e}",
        "",
        f"![float (left) and int8 (right) detections]({report['picture']})",
        "",
    ]
    return "\n".join(lines)


def write_markdown(report: Mapping[str, Any], out_dir: Path) -> Path:
    path = Path(out_dir) / REPORT_MD
    path.write_text(markdown(report))
    return path


def draw(rgb: np.ndarray, det: RawDetections, labels: Sequence[str], colour: tuple[int, int, int], title: str) -> np.ndarray:
    """A copy of ``rgb`` with ``det``'s boxes (normalised) and labels drawn on it."""
    image = rgb.copy()
    h, w = image.shape[:2]
    for cls, score, box in zip(det.class_ids, det.scores, det.boxes):
        x1, y1, x2, y2 = (int(round(v)) for v in box * np.array([w, h, w, h]))
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
        text = f"{labels[int(cls)]} {score:.2f}"
        cv2.putText(image, text, (x1 + 2, max(y1 - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    cv2.rectangle(image, (0, 0), (w, 22), (0, 0, 0), -1)
    cv2.putText(image, f"{title}: {len(det)} detections", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def write_picture(
    rgb: np.ndarray, float_det: RawDetections, int8_det: RawDetections, labels: Sequence[str], out_dir: Path
) -> Path:
    """One frame, float detections on the left and int8 on the right, as PNG."""
    left = draw(rgb, float_det, labels, _FLOAT_COLOUR, "float32")
    right = draw(rgb, int8_det, labels, _INT8_COLOUR, "int8")
    gap = np.full((rgb.shape[0], 8, 3), 255, dtype=np.uint8)
    path = Path(out_dir) / PICTURE
    if not cv2.imwrite(str(path), cv2.cvtColor(np.hstack([left, gap, right]), cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
    return path
