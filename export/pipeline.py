"""One export run: float model, int8 model, checks, measurements, report.

Takes any detector whose forward returns ``(loc, conf, priors_xyxy)``; the
command line (``export.__main__``), the demo and the tests all call
:func:`export_all`, so the tiny trained SSD of the tests goes through exactly
the code the real checkpoint goes through.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from torch import nn

import export
from export import evaluate, quantize, report
from export.frames import Frame, to_input
from export.graph import OPSET, export_onnx
from export.voc import VocImage, voc_map50
from rover.core.contract import ModelInfo, check_io, parse_metadata
from rover.core.errors import ConfigError
from rover.detector.postprocess import PostprocessConfig, select

FLOAT_NAME = "ssd300_voc.onnx"
INT8_NAME = "ssd300_voc_int8.onnx"


@dataclass
class ExportOptions:
    quant: quantize.QuantOptions = field(default_factory=quantize.QuantOptions)
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    latency_runs: int = 20
    progress: bool = True
    float_name: str = FLOAT_NAME
    int8_name: str = INT8_NAME


@dataclass(frozen=True)
class ExportResult:
    float_path: Path
    int8_path: Path
    report_json_path: Path
    report_md_path: Path
    picture_path: Path
    report: dict[str, Any]


def prepare_out_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` and prove it is writable; ConfigError with the fix otherwise."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".rover-export-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"output folder {out_dir} cannot be written ({exc.strerror or exc}): pass a writable --out") from None
    return out_dir


def checked_info(path: Path) -> ModelInfo:
    """Open a written model and check it against the rover contract."""
    session = evaluate.open_session(str(path), 1)
    info = parse_metadata(session.get_modelmeta().custom_metadata_map, str(path))
    check_io(session.get_inputs(), session.get_outputs(), info, str(path))
    return info


def export_all(
    detector: nn.Module,
    info: ModelInfo,
    calib: Sequence[Frame],
    held_out: Sequence[Frame],
    out_dir: Path,
    source: dict[str, str],
    options: ExportOptions | None = None,
    voc_images: Sequence[VocImage] | None = None,
) -> ExportResult:
    """Write both models, check them, measure them and write the report.

    ``source`` describes the provenance for the report: ``checkpoint``,
    ``variant``, ``calib`` and ``held_out`` (paths as the user gave them).
    """
    opts = options or ExportOptions()
    out_dir = prepare_out_dir(out_dir)
    detector = detector.eval()
    w, h = info.input_width, info.input_height
    calib_inputs = [to_input(f.rgb, w, h) for f in calib]
    val_frames = list(held_out) or list(calib)
    val_inputs = [to_input(f.rgb, w, h) for f in val_frames]

    float_path = export_onnx(detector, info, out_dir / opts.float_name)
    int8_path = quantize.quantize_int8(float_path, out_dir / opts.int8_name, calib_inputs, info, opts.quant, opts.progress)
    for path in (float_path, int8_path):
        checked_info(path)

    f_sess = evaluate.open_session(str(float_path), opts.threads)
    q_sess = evaluate.open_session(str(int8_path), opts.threads)
    par = evaluate.parity(detector, f_sess, val_inputs, opts.progress)
    agr = evaluate.agreement(f_sess, q_sess, val_inputs, progress=opts.progress)
    latency = {
        **evaluate.median_latencies_ms({"float": f_sess, "int8": q_sess}, val_inputs[0], opts.latency_runs),
        "threads": opts.threads,
        "runs": opts.latency_runs,
    }
    voc = None
    if voc_images:
        maps = voc_map50({"float": f_sess, "int8": q_sess}, voc_images, w, h, opts.progress)
        voc = {**maps, "images": len(voc_images)}

    # The picture: the held-out frame where float finds the most detections,
    # with the robot's default post-processing (score 0.5, NMS 0.45, top 20).
    truth = evaluate.AGREEMENT_POSTPROCESS
    shown = PostprocessConfig()
    dets = [(select(*evaluate.run(f_sess, x), shown), x) for x in val_inputs]
    best = max(range(len(dets)), key=lambda i: len(dets[i][0]))
    float_det, best_input = dets[best]
    int8_det = select(*evaluate.run(q_sess, best_input), shown)
    picture = report.write_picture(val_frames[best].rgb, float_det, int8_det, info.labels, out_dir)

    float_bytes, int8_bytes = float_path.stat().st_size, int8_path.stat().st_size
    data: dict[str, Any] = {
        "architecture": info.architecture,
        "exporter_version": export.__version__,
        "opset": OPSET,
        "source": {"checkpoint": source.get("checkpoint", ""), "variant": source.get("variant", ""), "sha256": info.source_sha256},
        "calibration": {"method": opts.quant.method, "activations": opts.quant.activations, "frames": len(calib), "source": source.get("calib", "")},
        "quantized": {"heads": opts.quant.int8_heads, "first_conv": opts.quant.int8_first_conv, "l2norm": opts.quant.int8_l2norm,
                      "weight_bits": opts.quant.weight_bits},
        "held_out": {"frames": len(val_frames), "source": source.get("held_out", "")},
        "files": {
            "float": {"name": float_path.name, "bytes": float_bytes},
            "int8": {"name": int8_path.name, "bytes": int8_bytes},
            "int8_over_float": int8_bytes / float_bytes,
        },
        "parity": vars(par),
        "agreement": {**vars(agr), "truth_threshold": truth.score_threshold},
        "latency_ms": latency,
        "voc": voc,
        "picture": picture.name,
        "picture_frame": val_frames[best].name,
    }
    json_path = report.write_json(data, out_dir)
    md_path = report.write_markdown(data, out_dir)
    return ExportResult(float_path, int8_path, json_path, md_path, picture, data)
