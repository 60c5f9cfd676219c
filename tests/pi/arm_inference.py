"""Run inside the emulated Pi with rover's venv: one inference per model on a given tensor.

    python arm_inference.py TENSOR.npy OUT_DIR MODEL.onnx [MODEL.onnx ...]

For each model (opened the way rover opens it, rover.detector.model.open_session,
plus the optimised graph written out) it saves OUT_DIR/<stem>.npz with the
boxes and scores, and OUT_DIR/<stem>.optimized.onnx, the graph onnxruntime
built for this CPU; prints one JSON line per model with the seconds taken.
The host compares these with x86 onnxruntime's (tests/test_pi_numbers.py).
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def main(argv):
    tensor = np.load(argv[0])
    out = Path(argv[1])
    for model in map(Path, argv[2:]):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(out / f"{model.stem}.optimized.onnx")
        options.log_severity_level = 3
        t0 = time.perf_counter()
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        t1 = time.perf_counter()
        boxes, scores = session.run(["boxes", "scores"], {"image": tensor})
        t2 = time.perf_counter()
        np.savez(out / f"{model.stem}.npz", boxes=boxes, scores=scores)
        print(json.dumps({"model": model.name, "load_s": round(t1 - t0, 1), "inference_s": round(t2 - t1, 1),
                          "onnxruntime": ort.__version__}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
