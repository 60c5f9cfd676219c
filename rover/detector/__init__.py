"""The on-robot detection service (``python -m rover.detector``): frame -> detections -> stream.

Modules, in the order a frame meets them: ``preprocess`` (frame -> model
input), ``model`` (:class:`Detector`: the onnxruntime session on a contract
model), ``postprocess`` (raw outputs -> detections), ``publisher`` (the
detection stream's PUB sockets), ``preview`` (small JPEGs for the live view);
around them ``service`` (the main loop), ``stats`` (frame rate and latency),
``config`` (its TOML sections), ``bench`` (where the time goes) and
``__main__`` (the program). Frames come from :mod:`rover.sources`.
Nothing is imported here, so ``rover.detector.config`` stays cheap for tools
such as ``rover listen`` that need no onnxruntime.
"""
